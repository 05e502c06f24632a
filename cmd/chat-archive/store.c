/*
 * store: chat-archive's sequencer loop. One thread, one poll() over stdin
 * (ingest lines, and the relay's confirms and nacks), stdout (message lines,
 * acks, nacks), the PostgreSQL socket and the signal self-pipe.
 *
 * A line goes through three places, each bounded (see BOUNDS in
 * man/chat-archive.1):
 *   wait     read and parsed, waiting for a transaction; the first of them
 *            (at most --batch lines, ARCHIVE_BATCH_BYTES bytes) are the
 *            batch in flight, one at a time;
 *   out      after COMMIT, its message line, with "confirm":N when the line
 *            was a delivery (it had a "tag");
 *   pend     a delivery whose message line is out, waiting for the relay's
 *            confirm: then it is acked; on a nack it is nacked with
 *            requeue, so the broker delivers it again (same id, same seq).
 * Nothing is acked before its COMMIT and its confirm. Lines held (wait and
 * pend) are at most --max-pending: past it a delivery is nacked back to the
 * queue at once (the relay's --prefetch should be below it), and a plain
 * line (no tag) stops the reading of stdin until there is room, which is
 * backpressure on the writer. stdin is otherwise always read, because the
 * confirms that free room arrive there.
 *
 * PostgreSQL going away (a restart) loses no line: the batch in flight stays
 * in wait and is sent again after the reconnect (capped jittered backoff);
 * when the COMMIT was sent but its answer lost, the second run finds the
 * ids stored and gives them the same seqs. The reconnect budget is
 * --retry-budget; when it is spent store exits 75.
 */
#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "db.h"
#include "jsonl.h"
#include "log.h"
#include "seqtx.h"
#include "sig.h"

#define READ_CHUNK 65536
#define TICK_MS 1000
#define BACKOFF_BASE_MS 100
#define DRAIN_MS 5000               /* after TERM: wait for confirms */
#define OUT_SOFT_MAX (4u << 20)     /* stop reading plain lines above */
#define HELD_BYTES_MAX (32u << 20)  /* line bytes held in wait */
#define RETRIES_MAX 10              /* transient failures in a row */

struct pend {
	uint64_t tag;  /* the delivery to ack */
	bool done;     /* acked or nacked already */
};

struct store {
	const struct archive_opts *o;  /* options, borrowed */
	struct adb *db;                /* the connection */
	struct seqtx tx;               /* the batch transaction */
	struct jsonl in;               /* stdin line splitter */
	int in_fd;                     /* stdin, -1 once closed */
	bool in_eof;                   /* stdin ended */
	bool in_done;                  /* ... and every line was taken */
	struct bentry *stash;          /* a plain line waiting for room */
	struct bentry **wait;          /* ring of lines waiting, oldest first */
	size_t wait_head, wait_n;      /* its oldest entry and its count */
	size_t wait_bytes;             /* line bytes in wait */
	size_t fly_n;                  /* the first fly_n of wait are sent */
	bool flying;                   /* a transaction is in flight */
	bool need_flush;               /* libpq holds unsent bytes */
	unsigned retries;              /* transient failures in a row */
	size_t solo;                   /* lines to send one per transaction */
	struct pend *pend;             /* ring of deliveries awaiting confirm */
	size_t pend_head, pend_n;      /* oldest entry, count */
	uint64_t pend_first;           /* confirm number of the oldest */
	uint64_t next_confirm;         /* the next confirm number */
	struct buf out;                /* bytes for stdout */
	int out_fd;                    /* stdout, -1 once failed */
	int64_t lost_at;               /* mono us PostgreSQL went, 0 if up */
	int64_t retry_at;              /* mono us of the next connect */
	struct backoff bo;             /* reconnect delays */
	bool refusing;                 /* deliveries are being requeued */
	bool tagged_seen;              /* a delivery was read: a relay feeds us */
	int term;                      /* TERM/INT received */
	int64_t drain_until;           /* after TERM: exit by then */
	int64_t next_stats;            /* mono us of the next stats report */
	int fatal;                     /* exit status of a fatal error, or -1 */
};

static void store_fail(struct store *s, int code)
{
	if (s->fatal < 0)
		s->fatal = code;
}

static size_t store_held(const struct store *s)
{
	return s->wait_n + s->pend_n + (s->stash ? 1 : 0);
}

static void store_gauge(struct store *s)
{
	am.pending.value = store_held(s);
}

static struct bentry *store_wait_at(struct store *s, size_t i)
{
	return s->wait[(s->wait_head + i) % s->o->max_pending];
}

static void bentry_free(struct bentry *e)
{
	if (!e)
		return;
	free(e->line);
	free(e);
}

/* --- output -------------------------------------------------------- */

static void store_out(struct store *s, const char *fmt, uint64_t tag)
{
	if (buf_addf(&s->out, fmt, tag) < 0) {
		LOG_F("output buffer full", "bytes=%zu", s->out.len);
		store_fail(s, EX_SOFTWARE);
	}
}

static void store_ack(struct store *s, uint64_t tag)
{
	store_out(s, "{\"type\":\"ack\",\"tag\":%" PRIu64 "}\n", tag);
	am.acks.value++;
}

static void store_nack(struct store *s, uint64_t tag)
{
	store_out(s, "{\"type\":\"nack\",\"tag\":%" PRIu64
		  ",\"requeue\":true}\n", tag);
}

static void store_flush(struct store *s)
{
	ssize_t n;

	while (s->out_fd >= 0 && s->out.len > 0) {
		n = write(s->out_fd, s->out.data, s->out.len);
		if (n > 0) {
			buf_consume(&s->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		LOG_F("unable to write to stdout", "err=%s",
		      log_q(strerror(n < 0 ? errno : EPIPE)));
		s->out_fd = -1;
		store_fail(s, EX_IOERR);
	}
}

/* --- confirms ------------------------------------------------------ */

static void store_confirm(struct store *s, uint64_t confirm, bool ok)
{
	struct pend *p;

	if (confirm < s->pend_first || confirm - s->pend_first >= s->pend_n) {
		am.unknown_confirms.value++;
		LOG_D("confirm for nothing pending", "confirm=%" PRIu64,
		      confirm);
		return;
	}
	p = &s->pend[(s->pend_head + (confirm - s->pend_first)) %
		     s->o->max_pending];
	if (p->done) {
		am.unknown_confirms.value++;
		return;
	}
	p->done = true;
	if (ok) {
		store_ack(s, p->tag);
	} else {
		am.nacks.value++;
		LOG_W("message refused by the broker: delivery requeued",
		      "tag=%" PRIu64, p->tag);
		store_nack(s, p->tag);
	}
	while (s->pend_n > 0 && s->pend[s->pend_head].done) {
		s->pend_head = (s->pend_head + 1) % s->o->max_pending;
		s->pend_first++;
		s->pend_n--;
	}
	store_gauge(s);
}

/* --- the database -------------------------------------------------- */

static void store_lost(struct store *s)
{
	int64_t now = clock_mono_us();
	uint64_t delay;

	am.db_errors.value++;
	LOG_W("lost PostgreSQL", "err=%s db=%s in_flight=%zu waiting=%zu",
	      log_q(adb_error(s->db)), log_q(adb_where(s->db)),
	      s->flying ? s->fly_n : 0, s->wait_n);
	adb_drop(s->db);
	seqtx_clear(&s->tx);
	s->flying = s->need_flush = false;
	s->fly_n = 0;
	s->retries = 0;
	if (s->lost_at == 0)
		s->lost_at = now;
	if (s->o->retry_budget_ms == 0) {
		LOG_F("PostgreSQL lost and no retry budget", NULL);
		store_fail(s, EX_TEMPFAIL);
		return;
	}
	delay = backoff_next_ms(&s->bo);
	s->retry_at = now + (int64_t)delay * 1000;
	LOG_I("reconnecting", "in_ms=%" PRIu64, delay);
}

/* Connect and prepare. Returns 0, or -1 with adb_error() set. */
static int store_connect(struct store *s)
{
	if (adb_connect(s->db, ARCHIVE_SCHEMA_VERSION) < 0)
		return -1;
	if (seqtx_prepare(s->db) < 0) {
		adb_drop(s->db);
		return -1;
	}
	return 0;
}

static void store_reconnect(struct store *s)
{
	int64_t now = clock_mono_us();
	uint64_t delay, away_ms = (uint64_t)(now - s->lost_at) / 1000;

	if (store_connect(s) == 0) {
		am.db_reconnects.value++;
		LOG_W("reconnected to PostgreSQL",
		      "db=%s away_ms=%" PRIu64 " waiting=%zu",
		      log_q(adb_where(s->db)), away_ms, s->wait_n);
		s->lost_at = 0;
		backoff_reset(&s->bo);
		return;
	}
	if (adb_failure(s->db) == ADB_SCHEMA) {
		LOG_F("unusable database", "err=%s db=%s",
		      log_q(adb_error(s->db)), log_q(adb_where(s->db)));
		store_fail(s, EX_CONFIG);
		return;
	}
	if (away_ms >= s->o->retry_budget_ms) {
		LOG_F("PostgreSQL lost and the retry budget is spent",
		      "err=%s away_ms=%" PRIu64 " waiting=%zu",
		      log_q(adb_error(s->db)), away_ms, s->wait_n);
		store_fail(s, EX_TEMPFAIL);
		return;
	}
	delay = backoff_next_ms(&s->bo);
	s->retry_at = now + (int64_t)delay * 1000;
	LOG_I("unable to reconnect", "err=%s retry_in_ms=%" PRIu64,
	      log_q(adb_error(s->db)), delay);
}

/* Whether the batch in wait should go now. */
static bool store_batch_ready(struct store *s, int64_t now)
{
	const struct archive_opts *o = s->o;

	if (s->flying || s->wait_n == 0 || !adb_up(s->db) || s->fatal >= 0)
		return false;
	if (o->batch_delay_ms == 0 || s->wait_n >= o->batch || s->in_eof ||
	    s->term || s->stash || store_held(s) >= o->max_pending)
		return true;
	return now >= store_wait_at(s, 0)->in_us +
			     (int64_t)o->batch_delay_ms * 1000;
}

static void store_send(struct store *s)
{
	struct bentry *batch[10000];
	size_t n, bytes = 0, max = s->solo ? 1 : s->o->batch;
	int r;

	for (n = 0; n < s->wait_n && n < max; n++) {
		struct bentry *e = store_wait_at(s, n);

		if (n > 0 && bytes + e->len > ARCHIVE_BATCH_BYTES)
			break;
		bytes += e->len;
		batch[n] = e;
	}
	if (seqtx_send(&s->tx, s->db, batch, n) < 0) {
		store_lost(s);
		return;
	}
	s->fly_n = n;
	s->flying = true;
	r = seqtx_flush(s->db);
	if (r < 0) {
		store_lost(s);
		return;
	}
	s->need_flush = r > 0;
	LOG_D("batch sent", "lines=%zu bytes=%zu", n, bytes);
}

/* Take the n first lines of wait out of it. */
static void store_wait_drop(struct store *s, size_t n)
{
	while (n-- > 0) {
		struct bentry *e = store_wait_at(s, 0);

		s->wait_bytes -= e->len;
		bentry_free(e);
		s->wait_head = (s->wait_head + 1) % s->o->max_pending;
		s->wait_n--;
	}
}

/* A committed batch: each line's message goes out, deliveries to pend. */
static void store_committed(struct store *s)
{
	int64_t now = clock_mono_us();
	struct seqtx_row row;
	struct msgline m;
	size_t i;

	for (i = 0; i < s->fly_n; i++) {
		struct bentry *e = store_wait_at(s, i), *src = e;
		uint64_t confirm = 0;

		seqtx_row(&s->tx, i, &row);
		if (row.src >= 0 && (size_t)row.src < s->fly_n)
			src = store_wait_at(s, (size_t)row.src);
		if (row.src == (long)i)
			am.stored.value++;
		else
			am.duplicates.value++;
		if (row.src < 0) {
			m = row.old;
		} else {
			const struct ingest *in = &src->in;

			m.room = src->line + in->room.off;
			m.room_len = in->room.len;
			m.from = src->line + in->from.off;
			m.from_len = in->from.len;
			m.ts = in->ts;
			m.body = src->line + in->body.off;
			m.body_len = in->body.len;
		}
		m.seq = row.seq;
		m.id = e->line + e->in.id.off;
		m.id_len = e->in.id.len;
		if (e->in.tagged) {
			struct pend *p = &s->pend[(s->pend_head + s->pend_n) %
						  s->o->max_pending];

			confirm = ++s->next_confirm;
			if (s->pend_n == 0)
				s->pend_first = confirm;
			p->tag = e->in.tag;
			p->done = false;
			s->pend_n++;
		}
		if (msgline_render(&s->out, &m, true, confirm) < 0 ||
		    buf_add(&s->out, "\n", 1) < 0) {
			LOG_F("output buffer full", "bytes=%zu", s->out.len);
			store_fail(s, EX_SOFTWARE);
			return;
		}
		am.out_lines.value++;
		LOG_D("sequenced", "room=%s seq=%" PRId64 " latency_us=%" PRId64,
		      log_q(m.room), m.seq, now - e->in_us);
	}
	stats_batch(s->fly_n, (double)(now - s->tx.sent_us) / 1e6);
	if (s->solo)
		s->solo -= s->solo < s->fly_n ? s->solo : s->fly_n;
	store_wait_drop(s, s->fly_n);
	seqtx_clear(&s->tx);
	s->flying = false;
	s->fly_n = 0;
	s->retries = 0;
	store_gauge(s);
}

/* A batch that PostgreSQL refused as a whole: by kind of failure. */
static void store_failed(struct store *s)
{
	enum adb_class cls = s->tx.cls;
	size_t n = s->fly_n;

	if (cls == ADB_LOST) {
		/* The batch stays in wait and goes again after the
		 * reconnect. */
		store_lost(s);
		return;
	}
	am.db_errors.value++;
	s->flying = false;
	s->fly_n = 0;
	seqtx_clear(&s->tx);
	switch (cls) {
	case ADB_LOST:
		return;
	case ADB_CONFIG:
		LOG_F("PostgreSQL refused the batch transaction",
		      "err=%s db=%s", log_q(adb_error(s->db)),
		      log_q(adb_where(s->db)));
		store_fail(s, EX_CONFIG);
		return;
	case ADB_RETRY:
		am.batch_retries.value++;
		LOG_I("batch transaction failed, retrying", "err=%s lines=%zu",
		      log_q(adb_error(s->db)), n);
		if (++s->retries > RETRIES_MAX)
			store_lost(s);
		return;
	case ADB_DATA:
		break;
	}
	if (n > 1) {
		/* One line is refused: find it by sending them one by one. */
		am.batch_retries.value++;
		LOG_W("batch refused, sending its lines one by one",
		      "err=%s lines=%zu", log_q(adb_error(s->db)), n);
		s->solo = n;
		return;
	}
	{
		struct bentry *e = store_wait_at(s, 0);

		am.bad_lines.value++;
		LOG_W("bad input line, refused by PostgreSQL", "err=%s tag=%"
		      PRIu64, log_q(adb_error(s->db)), e->in.tag);
		if (e->in.tagged)
			store_ack(s, e->in.tag);
		if (s->solo)
			s->solo--;
		store_wait_drop(s, 1);
		store_gauge(s);
	}
}

static void store_db_io(struct store *s, short revents)
{
	int r;

	if (s->need_flush && (revents & (POLLOUT | POLLERR | POLLHUP))) {
		r = seqtx_flush(s->db);
		if (r < 0) {
			store_lost(s);
			return;
		}
		s->need_flush = r > 0;
	}
	if (!(revents & (POLLIN | POLLERR | POLLHUP)))
		return;
	if (!s->flying) {
		/* Nothing asked: the server is closing (a shutdown). */
		if (!PQconsumeInput(adb_conn(s->db)) ||
		    PQstatus(adb_conn(s->db)) != CONNECTION_OK) {
			adb_classify(s->db, NULL);
			store_lost(s);
		}
		return;
	}
	switch (seqtx_poll(&s->tx, s->db)) {
	case SEQTX_BUSY:
		return;
	case SEQTX_DONE:
		am.batches.value++;
		store_committed(s);
		return;
	case SEQTX_FAILED:
		store_failed(s);
		return;
	}
}

/* --- input ----------------------------------------------------------- */

/* Whether a line of len bytes can be held now (besides a stashed one). A
 * plain line also waits for the output to drain (backpressure on its
 * writer); a delivery does not: it is bounded by its count, and stalling
 * it would stall the confirms behind it. A line is always taken when
 * nothing is held, however long it is. */
static bool store_room(struct store *s, size_t len, bool tagged)
{
	size_t held = s->wait_n + s->pend_n;

	if (held == 0)
		return true;
	return held < s->o->max_pending &&
	       s->wait_bytes + len + s->out.len <= HELD_BYTES_MAX &&
	       (tagged || s->out.len < OUT_SOFT_MAX);
}

static void store_wait_push(struct store *s, struct bentry *e)
{
	s->wait[(s->wait_head + s->wait_n) % s->o->max_pending] = e;
	s->wait_n++;
	s->wait_bytes += e->len;
	store_gauge(s);
}

static void store_publish(struct store *s, const char *line, size_t len,
			  const struct ingest *in)
{
	struct bentry *e;

	if (in->tagged)
		s->tagged_seen = true;
	if (s->term) {
		/* Stopping: a delivery goes back to the queue for whoever
		 * comes next; a plain line is left unread. */
		if (in->tagged)
			store_nack(s, in->tag);
		return;
	}
	if (in->tagged && !store_room(s, len, true)) {
		/* Logged once per run of refusals, counted each time. */
		if (!s->refusing)
			LOG_W("more deliveries than --max-pending: requeued "
			      "(is the relay's --prefetch above it?)",
			      "tag=%" PRIu64 " held=%zu", in->tag,
			      store_held(s));
		s->refusing = true;
		am.refused.value++;
		store_nack(s, in->tag);
		return;
	}
	s->refusing = false;
	e = malloc(sizeof(*e));
	if (!e || !(e->line = malloc(len + 1))) {
		free(e);
		LOG_F("out of memory", NULL);
		store_fail(s, EX_OSERR);
		return;
	}
	memcpy(e->line, line, len);
	e->line[len] = '\0';
	e->len = len;
	e->in = *in;
	e->in_us = clock_mono_us();
	if (!in->tagged && !store_room(s, len, false)) {
		am.input_paused.value++;
		s->stash = e;
		store_gauge(s);
		return;
	}
	store_wait_push(s, e);
}

static void store_take_line(struct store *s, const char *line, size_t len)
{
	struct ingest in;

	am.lines_in.value++;
	ingest_parse(line, len, s->o->max_body, &in);
	switch (in.kind) {
	case INGEST_PUBLISH:
		store_publish(s, line, len, &in);
		return;
	case INGEST_CONFIRM:
	case INGEST_NACK:
		store_confirm(s, in.confirm, in.kind == INGEST_CONFIRM);
		return;
	case INGEST_OTHER:
		LOG_D("relay line", "text=%s", log_q(line));
		return;
	case INGEST_BAD:
		break;
	}
	am.bad_lines.value++;
	if (in.tagged) {
		LOG_W("bad input line, acked", "err=%s tag=%" PRIu64
		      " line=%" PRIu64, log_q(in.why), in.tag,
		      am.lines_in.value);
		store_ack(s, in.tag);
	} else {
		LOG_W("bad input line", "err=%s line=%" PRIu64, log_q(in.why),
		      am.lines_in.value);
	}
	LOG_D("bad input line text", "text=%s", log_q(line));
}

static void store_take_lines(struct store *s)
{
	const char *line;
	size_t len;
	int k;

	if (s->stash) {
		if (!store_room(s, s->stash->len, false))
			return;
		store_wait_push(s, s->stash);
		s->stash = NULL;
	}
	while (!s->in_done && !s->stash && s->fatal < 0) {
		k = jsonl_next(&s->in, &line, &len);
		if (k == JSONL_NONE) {
			if (s->in_eof)
				s->in_done = true;
			return;
		}
		if (k == JSONL_OVERLONG) {
			am.lines_in.value++;
			am.bad_lines.value++;
			/* Its tag is lost with it: the relay's prefetch slot
			 * stays taken until the relay reconnects. */
			LOG_W("bad input line, dropped",
			      "err=%s max_line=%zu line=%" PRIu64,
			      log_q("line longer than --max-line"),
			      s->o->max_line, am.lines_in.value);
			continue;
		}
		store_take_line(s, line, len);
	}
}

static void store_close_input(struct store *s)
{
	if (s->in_fd >= 0 && s->in_fd != STDIN_FILENO)
		close(s->in_fd);
	s->in_fd = -1;
	if (!s->in_eof) {
		s->in_eof = true;
		jsonl_finish(&s->in);
	}
}

static void store_read(struct store *s)
{
	char chunk[READ_CHUNK];
	ssize_t n;

	for (;;) {
		n = read(s->in_fd, chunk, sizeof(chunk));
		if (n > 0) {
			if (jsonl_feed(&s->in, chunk, (size_t)n) < 0) {
				LOG_F("out of memory", NULL);
				store_fail(s, EX_OSERR);
			}
			return;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			LOG_F("unable to read stdin", "err=%s",
			      log_q(strerror(errno)));
			store_fail(s, EX_IOERR);
		}
		LOG_I("input ended", "lines_in=%" PRIu64, am.lines_in.value);
		store_close_input(s);
		return;
	}
}

/* --- signals, the end -------------------------------------------------- */

static void store_terminate(struct store *s, int sig)
{
	if (++s->term > 1) {
		LOG_W("second signal: exiting now", "signal=%d held=%zu", sig,
		      store_held(s));
		store_fail(s, 128 + sig);
		return;
	}
	LOG_I("stopping", "signal=%d held=%zu", sig, store_held(s));
	s->drain_until = clock_mono_us() + DRAIN_MS * 1000;
	/* Plain lines stop here. Under a relay, stdin is read on for the
	 * confirms of what is held (deliveries read meanwhile are nacked
	 * back to the queue); otherwise it is closed. */
	if (s->stash) {
		bentry_free(s->stash);
		s->stash = NULL;
	}
	if (!s->tagged_seen)
		store_close_input(s);
}

static void store_signals(struct store *s)
{
	int sig;

	while ((sig = sig_next()) != 0) {
		switch (sig) {
		case SIGTERM:
		case SIGINT:
			store_terminate(s, sig);
			break;
		case SIGUSR1:
			stats_report(s->o, LOG_WARN, "stats");
			break;
		}
	}
}

/* Exit status once store is done, or -1 while it is not. */
static int store_done(struct store *s)
{
	bool idle = s->wait_n == 0 && !s->flying && !s->stash;
	bool flushed = s->out.len == 0 || s->out_fd < 0;

	if (s->fatal >= 0)
		return s->fatal;
	if (s->term && ((idle && flushed && (s->pend_n == 0 || s->in_done)) ||
			clock_mono_us() >= s->drain_until)) {
		if (s->pend_n || !idle)
			LOG_W("stopped with lines not done (deliveries are "
			      "delivered again by the broker)",
			      "pending=%zu waiting=%zu", s->pend_n, s->wait_n);
		return EX_OK;
	}
	if (s->in_done && idle && flushed) {
		if (s->pend_n)
			LOG_I("input ended with deliveries unconfirmed "
			      "(the broker delivers them again)",
			      "pending=%zu", s->pend_n);
		return EX_OK;
	}
	return -1;
}

static bool store_want_input(struct store *s)
{
	return s->in_fd >= 0 && !s->in_eof && !s->stash && s->fatal < 0 &&
	       jsonl_pending(&s->in) <= s->o->max_line;
}

static int store_timeout(struct store *s, int64_t now)
{
	int64_t t = now + TICK_MS * 1000;

	if (s->lost_at && s->retry_at < t)
		t = s->retry_at;
	if (!s->flying && s->wait_n > 0 && adb_up(s->db)) {
		int64_t due = store_wait_at(s, 0)->in_us +
			      (int64_t)s->o->batch_delay_ms * 1000;

		if (due < t)
			t = due;
	}
	if (s->next_stats && s->next_stats < t)
		t = s->next_stats;
	if (s->term && s->drain_until < t)
		t = s->drain_until;
	return t <= now ? 0 : (int)((t - now + 999) / 1000);
}

static int store_loop(struct store *s, int sigfd)
{
	struct pollfd pfd[4];
	int n, code, i_in, i_out, i_db;
	int64_t now;

	for (;;) {
		if ((code = store_done(s)) >= 0)
			return code;
		n = 0;
		i_in = i_out = i_db = -1;
		pfd[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		if (store_want_input(s)) {
			pfd[n] = (struct pollfd){ .fd = s->in_fd, .events = POLLIN };
			i_in = n++;
		}
		if (s->out_fd >= 0 && s->out.len > 0) {
			pfd[n] = (struct pollfd){ .fd = s->out_fd, .events = POLLOUT };
			i_out = n++;
		}
		if (adb_up(s->db)) {
			pfd[n] = (struct pollfd){
				.fd = PQsocket(adb_conn(s->db)),
				.events = POLLIN | (s->need_flush ? POLLOUT : 0) };
			i_db = n++;
		}
		now = clock_mono_us();
		if (poll(pfd, (nfds_t)n, store_timeout(s, now)) < 0 &&
		    errno != EINTR) {
			LOG_F("poll failed", "err=%s", log_q(strerror(errno)));
			return EX_OSERR;
		}
		if (pfd[0].revents)
			store_signals(s);
		if (i_in >= 0 && pfd[i_in].revents)
			store_read(s);
		store_take_lines(s);
		if (i_db >= 0 && pfd[i_db].revents && adb_up(s->db))
			store_db_io(s, pfd[i_db].revents);
		now = clock_mono_us();
		if (store_batch_ready(s, now))
			store_send(s);
		if (i_out >= 0 || s->out.len > 0)
			store_flush(s);
		if (s->lost_at && s->fatal < 0 && now >= s->retry_at)
			store_reconnect(s);
		if (s->next_stats && now >= s->next_stats) {
			stats_report(s->o, LOG_INFO, "stats");
			s->next_stats = now + (int64_t)s->o->stats_interval_ms * 1000;
		}
	}
}

/* Non-blocking only for pipes and sockets (a terminal or a file we share
 * must stay as it is; a file never blocks for long). */
static void store_nonblock(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int store_run(const struct archive_opts *o, struct adb *db)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1, 0 };
	struct store s;
	int sigfd, code;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.db = db;
	s.fatal = -1;
	s.in_fd = STDIN_FILENO;
	s.out_fd = STDOUT_FILENO;
	seqtx_init(&s.tx);
	jsonl_init(&s.in, o->max_line);
	buf_init(&s.out, 2 * (size_t)HELD_BYTES_MAX + OUT_SOFT_MAX +
			 (size_t)o->max_pending * 256 + o->max_line);
	backoff_init(&s.bo, BACKOFF_BASE_MS, o->backoff_max_ms,
		     (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32));
	s.wait = calloc(o->max_pending, sizeof(*s.wait));
	s.pend = calloc(o->max_pending, sizeof(*s.pend));
	if (!s.wait || !s.pend) {
		LOG_F("out of memory", NULL);
		code = EX_OSERR;
		goto out_free;
	}
	sigfd = sig_init(sigs);
	if (sigfd < 0) {
		LOG_F("unable to set up signals", "err=%s",
		      log_q(strerror(errno)));
		code = EX_OSERR;
		goto out_free;
	}
	if (store_connect(&s) < 0) {
		LOG_F("unable to start on PostgreSQL", "err=%s db=%s",
		      log_q(adb_error(db)), log_q(adb_where(db)));
		code = adb_failure(db) == ADB_SCHEMA ? EX_CONFIG : EX_UNAVAILABLE;
		goto out_free;
	}
	LOG_I("connected", "db=%s batch=%u batch_delay_ms=%" PRIu64,
	      log_q(adb_where(db)), o->batch, o->batch_delay_ms);
	store_nonblock(STDIN_FILENO);
	store_nonblock(STDOUT_FILENO);
	if (o->stats_interval_ms)
		s.next_stats = clock_mono_us() +
			       (int64_t)o->stats_interval_ms * 1000;

	code = store_loop(&s, sigfd);

	if (code == EX_OK)
		store_flush(&s);
	stats_report(o, LOG_INFO, "exit");
out_free:
	while (s.wait_n > 0)
		store_wait_drop(&s, 1);
	bentry_free(s.stash);
	seqtx_free(&s.tx);
	jsonl_free(&s.in);
	buf_release(&s.out);
	free(s.wait);
	free(s.pend);
	return code;
}
