/*
 * serve: answers history and recover queries, one at a time, in the order
 * they come: read a line, one statement (one snapshot: the room's last seq
 * and its messages agree), write the answer. Blocking I/O is the simple and
 * right shape here: a query has nothing to overlap with, and a slow reader
 * of the answers (the relay) holds the queries back in the broker, where
 * they expire. Several serve processes may share the query queue.
 *
 * PostgreSQL going away: the query gets one reconnect and one more try;
 * after that it gets an error answer, and later queries try to reconnect
 * (capped jittered backoff) until --retry-budget is spent (exit 75).
 */
#include "archive.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "db.h"
#include "jsonl.h"
#include "log.h"
#include "sig.h"

#define READ_CHUNK 65536
#define BACKOFF_BASE_MS 100

#define SQL_HISTORY \
	"SELECT seq, id, sender, ts, body FROM messages" \
	" WHERE room = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"

/* One statement, one snapshot: the last seq and the messages after since
 * (newest first, at most $3). Always one row at least (m.* NULL). */
#define SQL_RECOVER \
	"SELECT r.last_seq, m.seq, m.id, m.sender, m.ts, m.body" \
	"  FROM (SELECT coalesce((SELECT last_seq FROM rooms" \
	"                          WHERE room = $1), 0) AS last_seq) r" \
	"  LEFT JOIN LATERAL (SELECT seq, id, sender, ts, body FROM messages" \
	"                      WHERE room = $1 AND seq > $2" \
	"                        AND seq <= r.last_seq" \
	"                      ORDER BY seq DESC LIMIT $3) m ON true"

struct serve {
	const struct archive_opts *o;  /* options, borrowed */
	struct adb *db;                /* the connection */
	struct jsonl in;               /* stdin line splitter */
	struct buf out;                /* the answer being written */
	int64_t lost_at;               /* mono us PostgreSQL went, 0 if up */
	int64_t retry_at;              /* mono us of the next connect */
	struct backoff bo;             /* reconnect delays */
	int term;                      /* TERM/INT received */
	int fatal;                     /* exit status, or -1 */
};

static void serve_fail(struct serve *s, int code)
{
	if (s->fatal < 0)
		s->fatal = code;
}

static void serve_write(struct serve *s)
{
	size_t off = 0;
	ssize_t n;

	while (off < s->out.len && s->fatal < 0) {
		n = write(STDOUT_FILENO, s->out.data + off, s->out.len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		LOG_F("unable to write to stdout", "err=%s",
		      log_q(strerror(n < 0 ? errno : EPIPE)));
		serve_fail(s, EX_IOERR);
	}
	buf_reset(&s->out);
}

static void serve_lost(struct serve *s)
{
	int64_t now = clock_mono_us();

	am.db_errors.value++;
	LOG_W("lost PostgreSQL", "err=%s db=%s", log_q(adb_error(s->db)),
	      log_q(adb_where(s->db)));
	adb_drop(s->db);
	if (!s->lost_at)
		s->lost_at = now;
	s->retry_at = now + (int64_t)backoff_next_ms(&s->bo) * 1000;
}

/* Make sure of a connection. now: try even before the backoff is over.
 * Returns 0 when connected. */
static int serve_connect(struct serve *s, bool now)
{
	int64_t t = clock_mono_us();
	uint64_t away_ms;

	if (adb_up(s->db))
		return 0;
	if (!now && t < s->retry_at)
		return -1;
	if (adb_connect(s->db, ARCHIVE_SCHEMA_VERSION) == 0) {
		am.db_reconnects.value++;
		LOG_W("reconnected to PostgreSQL", "db=%s away_ms=%" PRId64,
		      log_q(adb_where(s->db)), (t - s->lost_at) / 1000);
		s->lost_at = 0;
		backoff_reset(&s->bo);
		return 0;
	}
	if (adb_failure(s->db) == ADB_SCHEMA) {
		LOG_F("unusable database", "err=%s", log_q(adb_error(s->db)));
		serve_fail(s, EX_CONFIG);
		return -1;
	}
	away_ms = (uint64_t)(t - s->lost_at) / 1000;
	if (away_ms >= s->o->retry_budget_ms) {
		LOG_F("PostgreSQL lost and the retry budget is spent",
		      "err=%s away_ms=%" PRIu64, log_q(adb_error(s->db)),
		      away_ms);
		serve_fail(s, EX_TEMPFAIL);
		return -1;
	}
	s->retry_at = t + (int64_t)backoff_next_ms(&s->bo) * 1000;
	return -1;
}

/* Run the query's statement; NULL when it failed (after one reconnect). */
static PGresult *serve_exec(struct serve *s, const struct query *q)
{
	char p2[24], p3[24];
	const char *params[3] = { q->room, p2, p3 };
	const char *sql;
	PGresult *res;
	int attempt;

	if (q->kind == QUERY_HISTORY) {
		sql = SQL_HISTORY;
		snprintf(p2, sizeof(p2), "%" PRId64,
			 q->before < 0 ? INT64_MAX : q->before);
		snprintf(p3, sizeof(p3), "%u", q->limit + 1);
	} else {
		sql = SQL_RECOVER;
		snprintf(p2, sizeof(p2), "%" PRId64, q->since < 0 ? 0 : q->since);
		snprintf(p3, sizeof(p3), "%u",
			 q->since < 0 ? 0 : s->o->recover_limit);
	}
	for (attempt = 0; attempt < 2; attempt++) {
		if (serve_connect(s, attempt > 0) < 0)
			return NULL;
		res = PQexecParams(adb_conn(s->db), sql, 3, NULL, params, NULL,
				   NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			return res;
		switch (adb_classify(s->db, res)) {
		case ADB_LOST:
			PQclear(res);
			serve_lost(s);
			continue;
		case ADB_RETRY:
			PQclear(res);
			continue;
		default:
			am.db_errors.value++;
			LOG_W("query failed", "err=%s room=%s",
			      log_q(adb_error(s->db)), log_q(q->room));
			PQclear(res);
			return NULL;
		}
	}
	return NULL;
}

static void serve_row(const PGresult *res, int row, int col,
		      const struct query *q, struct msgline *m)
{
	m->room = q->room;
	m->room_len = strlen(q->room);
	m->seq = strtoll(PQgetvalue(res, row, col), NULL, 10);
	m->id = PQgetvalue(res, row, col + 1);
	m->id_len = (size_t)PQgetlength(res, row, col + 1);
	m->from = PQgetvalue(res, row, col + 2);
	m->from_len = (size_t)PQgetlength(res, row, col + 2);
	m->ts = strtoll(PQgetvalue(res, row, col + 3), NULL, 10);
	m->body = PQgetvalue(res, row, col + 4);
	m->body_len = (size_t)PQgetlength(res, row, col + 4);
}

/* The answer to q from res (a NULL res: an error answer). */
static int serve_render(struct serve *s, const struct query *q,
			const PGresult *res)
{
	struct answer_cut cut = { 0, false };
	struct msgline *m;
	int i, n, first = 0, r;
	int64_t last = 0;
	bool older = false;

	if (!res) {
		am.answers_error.value++;
		return answer_error(&s->out, q, "archive database unavailable");
	}
	n = PQntuples(res);
	if (q->kind == QUERY_HISTORY && n > (int)q->limit) {
		older = true;
		n = (int)q->limit;
	}
	if (q->kind == QUERY_RECOVER) {
		last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		first = 1;
		if (PQgetisnull(res, 0, 1))
			n = 0;
	}
	m = calloc(n ? (size_t)n : 1, sizeof(*m));
	if (!m)
		return -1;
	for (i = 0; i < n; i++)
		serve_row(res, i, first, q, &m[i]);
	if (q->kind == QUERY_HISTORY) {
		r = answer_history(&s->out, q, m, (size_t)n, older,
				   s->o->max_line, &cut);
		am.answers_history.value++;
	} else {
		r = answer_recover(&s->out, q, last, m, (size_t)n,
				   s->o->max_line, &cut);
		am.answers_recovered.value++;
	}
	if (cut.cut) {
		am.answer_cuts.value++;
		LOG_I("answer cut to fit --max-line", "room=%s kept=%zu of=%d",
		      log_q(q->room), cut.kept, n);
	}
	free(m);
	return r;
}

static void serve_line(struct serve *s, const char *line, size_t len)
{
	struct query q;
	PGresult *res;

	am.lines_in.value++;
	query_parse(line, len, s->o->history_max, &q);
	switch (q.kind) {
	case QUERY_OTHER:
		LOG_D("relay line", "text=%s", log_q(line));
		return;
	case QUERY_BAD:
		am.bad_lines.value++;
		LOG_W("bad query, not answered", "err=%s line=%" PRIu64,
		      log_q(q.why), am.lines_in.value);
		LOG_D("bad query text", "text=%s", log_q(line));
		goto out_ack;
	default:
		break;
	}
	am.queries.value++;
	res = serve_exec(s, &q);
	if (serve_render(s, &q, res) < 0) {
		LOG_F("out of memory", NULL);
		serve_fail(s, EX_OSERR);
	}
	PQclear(res);
out_ack:
	if (q.tagged)
		buf_addf(&s->out, "{\"type\":\"ack\",\"tag\":%" PRIu64 "}\n",
			 q.tag);
	serve_write(s);
}

static void serve_signals(struct serve *s)
{
	int sig;

	while ((sig = sig_next()) != 0) {
		if (sig == SIGUSR1) {
			stats_report(s->o, LOG_WARN, "stats");
			continue;
		}
		if (++s->term > 1)
			serve_fail(s, 128 + sig);
		LOG_I("stopping", "signal=%d", sig);
	}
}

int serve_run(const struct archive_opts *o, struct adb *db)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1, 0 };
	char chunk[READ_CHUNK];
	struct serve s;
	struct pollfd pfd[2];
	int64_t next_stats = 0, now;
	const char *line;
	size_t len;
	ssize_t n;
	int sigfd, k, timeout, code;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.db = db;
	s.fatal = -1;
	jsonl_init(&s.in, o->max_line);
	buf_init(&s.out, o->max_line + 128);
	backoff_init(&s.bo, BACKOFF_BASE_MS, o->backoff_max_ms,
		     (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32));
	sigfd = sig_init(sigs);
	if (sigfd < 0) {
		LOG_F("unable to set up signals", "err=%s",
		      log_q(strerror(errno)));
		code = EX_OSERR;
		goto out_free;
	}
	if (adb_connect(db, ARCHIVE_SCHEMA_VERSION) < 0) {
		LOG_F("unable to start on PostgreSQL", "err=%s db=%s",
		      log_q(adb_error(db)), log_q(adb_where(db)));
		code = adb_failure(db) == ADB_SCHEMA ? EX_CONFIG : EX_UNAVAILABLE;
		goto out_free;
	}
	LOG_I("connected", "db=%s", log_q(adb_where(db)));
	if (o->stats_interval_ms)
		next_stats = clock_mono_us() + (int64_t)o->stats_interval_ms * 1000;

	while (s.fatal < 0 && !s.term) {
		pfd[0] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		timeout = -1;
		if (next_stats) {
			now = clock_mono_us();
			timeout = next_stats <= now ? 0
				  : (int)((next_stats - now + 999) / 1000);
		}
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			LOG_F("poll failed", "err=%s", log_q(strerror(errno)));
			serve_fail(&s, EX_OSERR);
			break;
		}
		if (pfd[0].revents)
			serve_signals(&s);
		if (next_stats && clock_mono_us() >= next_stats) {
			stats_report(o, LOG_INFO, "stats");
			next_stats = clock_mono_us() +
				     (int64_t)o->stats_interval_ms * 1000;
		}
		if (!pfd[1].revents || s.term)
			continue;
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			LOG_F("unable to read stdin", "err=%s",
			      log_q(strerror(errno)));
			serve_fail(&s, EX_IOERR);
			break;
		}
		if (n == 0)
			jsonl_finish(&s.in);
		else if (jsonl_feed(&s.in, chunk, (size_t)n) < 0) {
			serve_fail(&s, EX_OSERR);
			break;
		}
		while (s.fatal < 0 &&
		       (k = jsonl_next(&s.in, &line, &len)) != JSONL_NONE) {
			if (k == JSONL_OVERLONG) {
				am.lines_in.value++;
				am.bad_lines.value++;
				LOG_W("bad query, not answered", "err=%s",
				      log_q("line longer than --max-line"));
				continue;
			}
			serve_line(&s, line, len);
		}
		if (n == 0)
			break;
	}
	code = s.fatal >= 0 ? s.fatal : EX_OK;
	stats_report(o, LOG_INFO, "exit");
out_free:
	jsonl_free(&s.in);
	buf_release(&s.out);
	return code;
}
