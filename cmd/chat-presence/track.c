/*
 * track: chat-presence's loop. One thread, one poll() over stdin, stdout,
 * the Redis socket and the signal self-pipe, with timers for the coalesce
 * windows, the sweep, the stats line and reconnects.
 *
 * Flow control, all bounded (man/chat-presence.1, BOUNDS):
 *  - a line is taken only while the output holds less than TRACK_OUT_SOFT
 *    bytes and, with Redis up, fewer than --max-pending commands are in
 *    flight; otherwise stdin is not read and the writer upstream (the
 *    relay, then the broker) holds the lines: backpressure, not loss;
 *  - while Redis is away, lines are kept in a backlog of --backlog bytes
 *    and applied in order after the reconnect; past it they are dropped
 *    and counted (the next heartbeat round restores what they said);
 *    queries are answered at once with an error;
 *  - a down line is a barrier: no further line is taken until every entry
 *    of its node is gone, so the restarted gateway's first joins are never
 *    purged with the old ones.
 */
#include "store.h"

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
#include "jsonl.h"
#include "log.h"
#include "sig.h"

#define READ_CHUNK 65536
#define TRACK_OUT_SOFT (1024 * 1024) /* stop taking lines above this */
#define TRACK_OUT_HARD (64 * 1024 * 1024)
#define TRACK_TICK_MS 1000
#define TRACK_LINES_PER_TURN 256 /* then poll again (fairness) */
#define TRACK_NODES_MAX 100000   /* ttl cache entries */
#define BACKOFF_BASE_MS 100
#define TRACK_COAL_USERS 100000 /* pending changes: then all go out */

struct track {
	const struct pres_opts *o; /* options, borrowed */
	const struct rurl *url;    /* Redis URL, borrowed */
	char url_masked[400];      /* for logs */
	struct store st;           /* Redis (owns the rconn) */
	struct sweep sw;           /* expiry */
	struct coal coal;          /* change windows */
	struct jsonl in;           /* stdin lines */
	int in_fd;                 /* stdin, -1 once ended */
	bool in_eof;               /* stdin ended */
	struct buf out;            /* bytes for stdout */
	bool out_failed;           /* stdout is gone */
	struct buf backlog;        /* lines kept while Redis is away */
	size_t backlog_pos;        /* next line to apply */
	size_t backlog_lines;      /* lines in it */
	struct map node_ttl;       /* node -> ttl ms of its heartbeats */
	char *purge_node;          /* down line under way, or NULL */
	int64_t purge_bound;       /* its bound (wall ms) */
	bool purge_running;        /* sweep_purge() in progress */
	bool starting;             /* first connect not done yet */
	bool ever_ready;           /* the store was ready once */
	int64_t lost_at_us;        /* Redis went then (mono), 0 if up */
	int64_t retry_at_us;       /* next connect attempt, 0 none */
	uint64_t gap_dropped;      /* lines dropped in this gap */
	uint64_t gap_errors;       /* queries refused in this gap */
	struct backoff bo;         /* reconnect delays */
	int64_t next_sweep_us;     /* mono us of the next sweep */
	int64_t next_stats_us;     /* mono us of the next stats line */
	int term;                  /* TERM/INT received */
	bool draining;             /* no more input: finish and exit */
	bool more_lines;           /* the last turn stopped at its limit */
	int fatal;                 /* exit status of a fatal error, or -1 */
};

static void track_fail(struct track *t, int code)
{
	if (t->fatal < 0)
		t->fatal = code;
}

static int64_t now_ms(void)
{
	return clock_mono_us() / 1000;
}

/* --- output --------------------------------------------------------------- */

static void track_out(struct track *t, const struct buf *line)
{
	if (t->out_failed)
		return;
	if (buf_add(&t->out, line->data, line->len) < 0) {
		t->out.err = 0;
		pm.out_dropped.value++;
		LOG_W("output full, line dropped", "bytes=%zu out=%zu", line->len,
		      t->out.len);
	}
}

static void track_flush(struct track *t)
{
	ssize_t n;

	while (!t->out_failed && t->out.len > 0) {
		n = write(STDOUT_FILENO, t->out.data, t->out.len);
		if (n > 0) {
			buf_consume(&t->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		LOG_F("unable to write to stdout", "err=%s",
		      log_q(strerror(n < 0 ? errno : EPIPE)));
		t->out_failed = true;
		buf_reset(&t->out);
		track_fail(t, EX_IOERR);
	}
}

/* A coalesced change: on stdout with its route, on Redis for watch. */
static void track_emit(void *arg, const char *room, const char *line, size_t len)
{
	struct track *t = arg;
	struct buf b = BUF_INIT(0);

	pm.events.value++;
	if (pres_render_change_routed(&b, room, line, len) == 0)
		track_out(t, &b);
	buf_release(&b);
	if (t->st.ready)
		store_publish(&t->st, line, len);
}

static void track_transitions(struct track *t, const struct store_change *ch,
			      bool joined)
{
	int64_t now = now_ms();
	size_t i;

	for (i = 0; i < ch->nusers; i++) {
		if (joined)
			pm.joined.value++;
		else
			pm.left.value++;
		coal_add(&t->coal, ch->room, ch->users[i], joined, ch->t_us,
			 ch->seen_us, now);
	}
	pm.cancelled.value = t->coal.cancelled;
}

static void track_added(void *priv, const struct store_change *ch)
{
	if (ch)
		track_transitions(priv, ch, true);
}

static void track_removed(void *priv, const struct store_change *ch)
{
	if (ch)
		track_transitions(priv, ch, false);
}

static void track_expired(void *arg, const char *room, const struct store_change *ch)
{
	(void)room;
	pm.expired.value += ch->nusers;
	track_transitions(arg, ch, false);
}

/* --- queries -------------------------------------------------------------- */

struct query {
	struct track *t; /* owner */
	char *rpc;       /* JSON text of "rpc" */
	char node[65];   /* asking gateway */
	char room[129];  /* room asked about */
};

static void track_answer_error(struct track *t, const char *rpc, const char *node,
			       const char *room, const char *why)
{
	struct buf b = BUF_INIT(0);

	pm.query_errors.value++;
	if (pres_render_error(&b, rpc, node, room, why) == 0)
		track_out(t, &b);
	buf_release(&b);
}

static void track_answer(void *priv, const char *const *users, size_t n,
			 uint64_t count, const char *err)
{
	struct query *q = priv;
	struct track *t = q->t;
	struct buf b = BUF_INIT(0);

	if (!users) {
		track_answer_error(t, q->rpc, q->node, q->room, err);
	} else {
		/* Changes the asker has not heard of yet go out first, so
		 * that the answer is never older than the events after it. */
		coal_flush_room(&t->coal, q->room);
		if (pres_render_answer(&b, q->rpc, q->node, q->room, users, n, count,
				       count > n, t->o->max_line) == 0)
			track_out(t, &b);
	}
	buf_release(&b);
	free(q->rpc);
	free(q);
}

/* --- lines ---------------------------------------------------------------- */

static int64_t track_node_ttl(struct track *t, const char *node)
{
	void *v = map_get(&t->node_ttl, node);

	return v ? (int64_t)(uintptr_t)v : (int64_t)t->o->ttl_ms;
}

static void track_node_ttl_set(struct track *t, const char *node, int64_t ttl)
{
	if (t->node_ttl.n >= TRACK_NODES_MAX && !map_get(&t->node_ttl, node))
		map_free(&t->node_ttl);
	map_put(&t->node_ttl, node, (void *)(uintptr_t)ttl);
}

static void track_purge_done(void *arg, bool ok);

static void track_purge_start(struct track *t)
{
	if (sweep_purge(&t->sw, t->purge_node, t->purge_bound, track_purge_done, t) == 0)
		t->purge_running = true;
}

static void track_purge_done(void *arg, bool ok)
{
	struct track *t = arg;

	t->purge_running = false;
	if (!ok) {
		/* The connection went: again after the reconnect. */
		LOG_I("purge interrupted, again after the reconnect", "node=%s",
		      log_q(t->purge_node));
		return;
	}
	LOG_I("node down: its entries are gone", "node=%s", log_q(t->purge_node));
	free(t->purge_node);
	t->purge_node = NULL;
}

/* Keep a line for after the reconnect, or drop it (counted). */
static void track_keep(struct track *t, const char *line, size_t len,
		       enum pline_kind kind)
{
	if (buf_add(&t->backlog, line, len) == 0 && buf_add(&t->backlog, "\n", 1) == 0) {
		t->backlog_lines++;
		pm.backlog.value = t->backlog_lines;
		return;
	}
	/* Undo a half-added line. */
	t->backlog.err = 0;
	while (t->backlog.len > 0 && t->backlog.data[t->backlog.len - 1] != '\n')
		t->backlog.len--;
	t->backlog.data[t->backlog.len] = '\0';
	pm.dropped.value++;
	if (t->gap_dropped++ == 0)
		LOG_W("backlog full while Redis is away: dropping lines "
		      "(the next heartbeats restore the state)",
		      "kind=%s backlog=%zu", pline_kind_name(kind), t->backlog.len);
}

/* Apply one parsed line to Redis (the store is ready). */
static void track_apply(struct track *t, struct pline *pl)
{
	int64_t wall = clock_wall_ms(), ttl;
	const char **rooms;
	size_t i;
	int r = 0;

	/* A line that says its node's ttl (every line of chat-gw does) is
	 * believed over what this process saw last: with several trackers
	 * on one queue, each sees only some of a node's lines. */
	if (pl->kind != PL_HEARTBEAT && pl->ttl_ms > 0)
		track_node_ttl_set(t, pl->node, (uint64_t)pl->ttl_ms < t->o->ttl_ms ?
					   pl->ttl_ms : (int64_t)t->o->ttl_ms);
	switch (pl->kind) {
	case PL_JOIN:
		ttl = track_node_ttl(t, pl->node);
		pm.joins.value += pl->rooms[0].nusers;
		r |= store_add(&t->st, pl->rooms[0].room, pl->node, pl->rooms[0].users,
			       pl->rooms[0].nusers, wall + ttl, track_added, t);
		r |= store_node_touch(&t->st, pl->node, wall + ttl, ttl,
				      &pl->rooms[0].room, 1);
		break;
	case PL_LEAVE:
		ttl = track_node_ttl(t, pl->node);
		pm.leaves.value += pl->rooms[0].nusers;
		r |= store_leave(&t->st, pl->rooms[0].room, pl->node,
				 pl->rooms[0].users, pl->rooms[0].nusers,
				 track_removed, t);
		r |= store_node_touch(&t->st, pl->node, wall + ttl, ttl, NULL, 0);
		break;
	case PL_HEARTBEAT:
		ttl = pl->ttl_ms > 0 && (uint64_t)pl->ttl_ms < t->o->ttl_ms ?
			  pl->ttl_ms :
			  (int64_t)t->o->ttl_ms;
		track_node_ttl_set(t, pl->node, ttl);
		pm.heartbeats.value++;
		rooms = malloc((pl->nrooms + 1) * sizeof(*rooms));
		if (!rooms) {
			r = -1;
			break;
		}
		for (i = 0; i < pl->nrooms; i++) {
			pm.refreshed.value += pl->rooms[i].nusers;
			rooms[i] = pl->rooms[i].room;
			r |= store_add(&t->st, pl->rooms[i].room, pl->node,
				       pl->rooms[i].users, pl->rooms[i].nusers,
				       wall + ttl, track_added, t);
		}
		r |= store_node_touch(&t->st, pl->node, wall + ttl, ttl, rooms,
				      pl->nrooms);
		free(rooms);
		break;
	case PL_DOWN:
		pm.downs.value++;
		map_del(&t->node_ttl, pl->node);
		t->purge_node = strdup(pl->node);
		if (!t->purge_node) {
			r = -1;
			break;
		}
		/* Every entry the node could have: deadlines are at most
		 * now + --ttl. */
		t->purge_bound = wall + (int64_t)t->o->ttl_ms;
		LOG_I("node down: removing its entries", "node=%s", log_q(pl->node));
		track_purge_start(t);
		break;
	case PL_QUERY: {
		struct query *q = calloc(1, sizeof(*q));
		uint64_t limit = pl->limit;

		if (limit > t->o->max_line / 4)
			limit = t->o->max_line / 4;
		if (!q) {
			r = -1;
			break;
		}
		q->t = t;
		q->rpc = pl->rpc;
		pl->rpc = NULL;
		snprintf(q->node, sizeof(q->node), "%s", pl->node);
		snprintf(q->room, sizeof(q->room), "%s", pl->rooms[0].room);
		if (store_query(&t->st, q->room, limit, track_answer, q) < 0) {
			track_answer_error(t, q->rpc, q->node, q->room,
					   "presence store unavailable");
			free(q->rpc);
			free(q);
		}
		break;
	}
	default: break;
	}
	if (r < 0)
		/* Not ready any more (the connection went inside) or out of
		 * memory: the next heartbeat round restores it. */
		LOG_W("unable to apply a line", "kind=%s node=%s",
		      pline_kind_name(pl->kind), log_q(pl->node));
}

/* One line: from stdin (fresh) or from the backlog. */
static void track_line(struct track *t, const char *line, size_t len, bool fresh)
{
	struct pline pl;

	if (fresh)
		pm.lines.value++;
	pline_parse(line, len, &pl);
	if (fresh && pl.bad_names) {
		pm.bad_names.value += pl.bad_names;
		LOG_W("invalid names skipped",
		      "kind=%s node=%s count=%zu "
		      "line=%" PRIu64,
		      pline_kind_name(pl.kind), log_q(pl.node), pl.bad_names,
		      pm.lines.value);
	}
	switch (pl.kind) {
	case PL_BAD:
		pm.bad_lines.value++;
		LOG_W("bad input line", "err=%s line=%" PRIu64, log_q(pl.err),
		      pm.lines.value);
		LOG_D("bad input line text", "text=%s", log_q(line));
		goto out;
	case PL_BUS:
		LOG_I("the relay's broker connection", "state=%s",
		      pl.bus_up ? "up" : "down");
		goto out;
	default: break;
	}
	if (fresh && pl.kind == PL_QUERY)
		pm.queries.value++;
	if (!t->st.ready) {
		if (pl.kind == PL_QUERY) {
			t->gap_errors++;
			track_answer_error(t, pl.rpc, pl.node, pl.rooms[0].room,
					   "presence store unavailable");
		} else {
			track_keep(t, line, len, pl.kind);
		}
		goto out;
	}
	track_apply(t, &pl);
out:
	pline_free(&pl);
}

/* Whether one more line may be taken now. */
static bool track_can_take(struct track *t, bool count)
{
	if (t->fatal >= 0 || t->purge_node)
		return false;
	if (t->out.len >= TRACK_OUT_SOFT || (t->st.ready && rconn_full(t->st.rc))) {
		if (count)
			pm.paused.value++;
		return false;
	}
	return true;
}

/* The next backlog line, or false. */
static bool track_backlog_next(struct track *t, const char **line, size_t *len)
{
	char *nl;

	if (t->backlog_pos >= t->backlog.len)
		return false;
	nl = memchr(t->backlog.data + t->backlog_pos, '\n',
		    t->backlog.len - t->backlog_pos);
	*line = t->backlog.data + t->backlog_pos;
	*len = (size_t)(nl - *line);
	*nl = '\0';
	t->backlog_pos += *len + 1;
	t->backlog_lines--;
	pm.backlog.value = t->backlog_lines;
	return true;
}

static void track_take_lines(struct track *t)
{
	const char *line;
	size_t len;
	int k, n;

	t->more_lines = false;
	for (n = 0; track_can_take(t, true); n++) {
		if (n == TRACK_LINES_PER_TURN) {
			t->more_lines = true;
			break;
		}
		if (t->st.ready && t->backlog_pos < t->backlog.len) {
			track_backlog_next(t, &line, &len);
			track_line(t, line, len, false);
			if (t->backlog_pos >= t->backlog.len) {
				buf_reset(&t->backlog);
				t->backlog_pos = 0;
			}
			continue;
		}
		k = jsonl_next(&t->in, &line, &len);
		if (k == JSONL_NONE)
			break;
		if (k == JSONL_OVERLONG) {
			pm.lines.value++;
			pm.overlong.value++;
			LOG_W("bad input line", "err=%s max_line=%zu line=%" PRIu64,
			      log_q("line longer than --max-line"), t->o->max_line,
			      pm.lines.value);
			continue;
		}
		track_line(t, line, len, true);
	}
}

static void track_read(struct track *t)
{
	char chunk[READ_CHUNK];
	ssize_t n;

	n = read(t->in_fd, chunk, sizeof(chunk));
	if (n > 0) {
		if (jsonl_feed(&t->in, chunk, (size_t)n) < 0) {
			LOG_F("out of memory", NULL);
			track_fail(t, EX_OSERR);
		}
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0) {
		LOG_F("unable to read stdin", "err=%s", log_q(strerror(errno)));
		track_fail(t, EX_IOERR);
	}
	LOG_I("input ended", "lines=%" PRIu64, pm.lines.value);
	t->in_eof = true;
	t->in_fd = -1;
	jsonl_finish(&t->in);
}

/* --- Redis up and down ---------------------------------------------------- */

static void track_ready(void *arg, bool state_lost);

static void track_schedule_retry(struct track *t)
{
	int64_t now = clock_mono_us();
	uint64_t away_ms = (uint64_t)(now - t->lost_at_us) / 1000, delay;

	if (away_ms >= t->o->retry_budget_ms) {
		LOG_F("Redis lost and the retry budget is spent",
		      "err=%s "
		      "away_ms=%" PRIu64 " url=%s",
		      log_q(t->st.rc->errstr), away_ms, log_q(t->url_masked));
		track_fail(t, EX_TEMPFAIL);
		return;
	}
	delay = backoff_next_ms(&t->bo);
	t->retry_at_us = now + (int64_t)delay * 1000;
	LOG_I("reconnecting to Redis", "in_ms=%" PRIu64 " err=%s", delay,
	      log_q(t->st.rc->errstr));
}

static void track_down(void *arg)
{
	struct track *t = arg;

	sweep_lost(&t->sw);
	if (t->starting) {
		LOG_F("unable to connect to Redis", "url=%s err=%s",
		      log_q(t->url_masked), log_q(t->st.rc->errstr));
		track_fail(t, EX_UNAVAILABLE);
		return;
	}
	if (t->st.fatal) {
		LOG_F("Redis cannot serve chat-presence", "err=%s",
		      log_q(t->st.fatal_why));
		track_fail(t, EX_UNAVAILABLE);
		return;
	}
	if (t->lost_at_us == 0) {
		t->lost_at_us = clock_mono_us();
		t->gap_dropped = t->gap_errors = 0;
		pm.gaps.value++;
		LOG_W("lost Redis: lines are kept until it is back",
		      "err=%s url=%s backlog_max=%zu", log_q(t->st.rc->errstr),
		      log_q(t->url_masked), t->o->backlog);
	}
	if (t->term) {
		track_fail(t, EX_OK);
		return;
	}
	track_schedule_retry(t);
}

static void track_ready(void *arg, bool state_lost)
{
	struct track *t = arg;
	int64_t now = clock_mono_us();

	if (t->lost_at_us) {
		uint64_t away = (uint64_t)(now - t->lost_at_us) / 1000;

		pm.reconnects.value++;
		pm.gap_ms.value += away;
		LOG_W("reconnected to Redis",
		      "away_ms=%" PRIu64 " backlog_lines=%zu dropped=%" PRIu64
		      " queries_refused=%" PRIu64 " url=%s",
		      away, t->backlog_lines, t->gap_dropped, t->gap_errors,
		      log_q(t->url_masked));
		t->lost_at_us = 0;
	}
	if (state_lost) {
		pm.state_lost.value++;
		LOG_W("Redis lost the presence state (restarted without "
		      "persistence): the next heartbeat round rebuilds it",
		      "url=%s", log_q(t->url_masked));
	}
	backoff_reset(&t->bo);
	t->retry_at_us = 0;
	if (!t->ever_ready) {
		t->ever_ready = true;
		LOG_I("connected to Redis", "url=%s prefix=%s", log_q(t->url_masked),
		      log_q(t->o->prefix));
		if (t->o->ready_fd >= 0) {
			(void)!write(t->o->ready_fd, "\n", 1);
			close(t->o->ready_fd);
		}
	}
	t->starting = false;
	if (t->purge_node && !t->purge_running)
		track_purge_start(t);
}

static void track_reconnect(struct track *t)
{
	t->retry_at_us = 0;
	if (rconn_start(t->st.rc) < 0)
		track_schedule_retry(t);
}

/* --- stats, signals ------------------------------------------------------- */

static void track_stats(struct track *t, int lvl, const char *msg)
{
	pm.pending.value = t->st.rc->count;
	pm.backlog.value = t->backlog_lines;
	if (t->o->metrics_file && metrics_write_file(t->o->metrics_file) < 0)
		LOG_W("unable to write the metrics file", "path=%s err=%s",
		      log_q(t->o->metrics_file), log_q(strerror(errno)));
	if (!log_enabled(lvl))
		return;
	log_write(lvl, msg,
		  "lines=%" PRIu64 " bad_lines=%" PRIu64 " joins=%" PRIu64
		  " leaves=%" PRIu64 " heartbeats=%" PRIu64 " refreshed=%" PRIu64
		  " downs=%" PRIu64 " queries=%" PRIu64 " query_errors=%" PRIu64
		  " joined=%" PRIu64 " left=%" PRIu64 " expired=%" PRIu64
		  " cancelled=%" PRIu64 " events=%" PRIu64 " sweeps=%" PRIu64
		  " reconnects=%" PRIu64 " gaps=%" PRIu64 " dropped=%" PRIu64
		  " backlog=%zu pending=%zu out_bytes=%zu",
		  pm.lines.value, pm.bad_lines.value, pm.joins.value, pm.leaves.value,
		  pm.heartbeats.value, pm.refreshed.value, pm.downs.value,
		  pm.queries.value, pm.query_errors.value, pm.joined.value,
		  pm.left.value, pm.expired.value, pm.cancelled.value,
		  pm.events.value, pm.sweeps.value, pm.reconnects.value, pm.gaps.value,
		  pm.dropped.value, t->backlog_lines, t->st.rc->count, t->out.len);
}

static void track_signals(struct track *t)
{
	int sig;

	while ((sig = sig_next()) != 0) {
		switch (sig) {
		case SIGTERM:
		case SIGINT:
			if (++t->term > 1) {
				LOG_W("second signal: exiting now", "signal=%d", sig);
				track_fail(t, 128 + sig);
				break;
			}
			LOG_I("stopping", "signal=%d", sig);
			/* Lines already read are applied; no more are read. */
			if (!t->in_eof) {
				t->in_eof = true;
				t->in_fd = -1;
				jsonl_finish(&t->in);
			}
			if (!t->st.ready) {
				/* Redis is away: nothing more can be applied. */
				if (t->backlog_lines)
					LOG_W("stopping with lines not applied",
					      "backlog_lines=%zu", t->backlog_lines);
				track_fail(t, EX_OK);
			}
			break;
		case SIGUSR1: track_stats(t, LOG_WARN, "stats"); break;
		}
	}
}

/* --- the loop ------------------------------------------------------------- */

/* Exit status once done, or -1. Input ended (EOF or a signal): what was
 * read is applied, the replies are waited for, the pending changes go
 * out, then exit 0. */
static int track_done(struct track *t)
{
	if (t->fatal >= 0)
		return t->fatal;
	if (!t->in_eof || t->starting)
		return -1;
	t->draining = true;
	if (jsonl_pending(&t->in) > 0 || t->backlog_pos < t->backlog.len)
		return -1;
	if (t->purge_node || sweep_busy(&t->sw))
		return -1;
	/* Replies may still bring changes: the windows close after them, and
	 * their PUBLISH (for watch) is waited for too. */
	if (t->st.rc->count == 0)
		coal_flush_all(&t->coal);
	if (t->st.rc->count > 0 || (t->out.len > 0 && !t->out_failed))
		return -1;
	return EX_OK;
}

static void track_timers(struct track *t)
{
	int64_t now = clock_mono_us();

	if (t->st.rc->c)
		rconn_tick(t->st.rc, now);
	if (t->retry_at_us && now >= t->retry_at_us && t->fatal < 0)
		track_reconnect(t);
	if (now >= t->next_sweep_us) {
		t->next_sweep_us = now + (int64_t)t->o->sweep_ms * 1000;
		if (!t->draining && t->out.len < TRACK_OUT_SOFT)
			sweep_start(&t->sw, clock_wall_ms());
	}
	if (t->o->stats_interval_ms && now >= t->next_stats_us) {
		t->next_stats_us = now + (int64_t)t->o->stats_interval_ms * 1000;
		track_stats(t, LOG_INFO, "stats");
	}
	coal_flush_due(&t->coal, now / 1000);
}

static int track_timeout(struct track *t, bool busy)
{
	int64_t now = clock_mono_us(), next = now + TRACK_TICK_MS * 1000, d;

	if (busy)
		return 0;
#define EARLIER(x)                      \
	do {                            \
		d = (x);                \
		if (d >= 0 && d < next) \
			next = d;       \
	} while (0)
	EARLIER(rconn_deadline_us(t->st.rc));
	if (t->retry_at_us)
		EARLIER(t->retry_at_us);
	EARLIER(t->next_sweep_us);
	if (t->o->stats_interval_ms)
		EARLIER(t->next_stats_us);
	d = coal_next_due(&t->coal);
	if (d >= 0)
		EARLIER(d * 1000);
#undef EARLIER
	return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

static int track_loop(struct track *t, int sigfd)
{
	struct pollfd pfd[4];
	int n, code, i_sig, i_in, i_out, i_rc;
	bool busy;

	for (;;) {
		if ((code = track_done(t)) >= 0)
			return code;
		n = 0;
		i_in = i_out = i_rc = -1;
		pfd[n] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		i_sig = n++;
		if (t->in_fd >= 0 && !t->in_eof && !t->draining && !t->starting &&
		    track_can_take(t, false) &&
		    jsonl_pending(&t->in) <= t->o->max_line) {
			pfd[n] = (struct pollfd){ .fd = t->in_fd, .events = POLLIN };
			i_in = n++;
		}
		if (t->out.len > 0 && !t->out_failed) {
			pfd[n] =
			    (struct pollfd){ .fd = STDOUT_FILENO, .events = POLLOUT };
			i_out = n++;
		}
		if (rconn_fd(t->st.rc) >= 0) {
			pfd[n] = (struct pollfd){ .fd = rconn_fd(t->st.rc),
						  .events = rconn_events(t->st.rc) };
			i_rc = n++;
		}
		/* Lines already read wait only for room, not for input. */
		busy = t->more_lines && track_can_take(t, false);
		if (poll(pfd, (nfds_t)n, track_timeout(t, busy)) < 0 && errno != EINTR) {
			LOG_F("poll failed", "err=%s", log_q(strerror(errno)));
			return EX_OSERR;
		}
		if (pfd[i_sig].revents)
			track_signals(t);
		if (i_rc >= 0 && pfd[i_rc].revents)
			rconn_io(t->st.rc, pfd[i_rc].revents);
		if (i_in >= 0 && pfd[i_in].revents)
			track_read(t);
		if (!t->starting)
			track_take_lines(t);
		track_timers(t);
		sweep_pump(&t->sw);
		rconn_flush(t->st.rc);
		if (i_out >= 0 || t->out.len > 0)
			track_flush(t);
	}
}

/* Non-blocking only for pipes and sockets (chat-relay's rule: a terminal
 * or a file we share must stay as it is). */
static void track_nonblock(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int track_run(const struct pres_opts *o, const struct rurl *u)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1, 0 };
	struct track t;
	struct rconn *rc;
	int sigfd, code;
	int64_t now;

	memset(&t, 0, sizeof(t));
	t.o = o;
	t.url = u;
	t.fatal = -1;
	t.in_fd = STDIN_FILENO;
	rurl_masked(u, t.url_masked, sizeof(t.url_masked));
	pres_metrics_init();
	jsonl_init(&t.in, o->max_line);
	buf_init(&t.out, TRACK_OUT_HARD + o->max_line);
	buf_init(&t.backlog, o->backlog);
	backoff_init(&t.bo, BACKOFF_BASE_MS, o->backoff_max_ms,
		     (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32));
	coal_init(&t.coal, o->coalesce_ms, o->max_line, TRACK_COAL_USERS, track_emit,
		  &t);
	rc = rconn_new(u, o->connect_timeout_ms, o->timeout_ms, o->max_pending);
	if (!rc) {
		LOG_F("out of memory", NULL);
		code = EX_OSERR;
		goto out_free;
	}
	store_init(&t.st, rc, o->prefix);
	t.st.on_ready = track_ready;
	t.st.on_down = track_down;
	t.st.arg = &t;
	sweep_init(&t.sw, &t.st, o->ttl_ms, track_expired, &t);
	sigfd = sig_init(sigs);
	if (sigfd < 0) {
		LOG_F("unable to set up signals", "err=%s", log_q(strerror(errno)));
		code = EX_OSERR;
		goto out_store;
	}
	track_nonblock(STDIN_FILENO);
	track_nonblock(STDOUT_FILENO);
	t.starting = true;
	if (rconn_start(rc) < 0) {
		LOG_F("unable to connect to Redis", "url=%s err=%s",
		      log_q(t.url_masked), log_q(rc->errstr));
		code = EX_UNAVAILABLE;
		goto out_store;
	}
	now = clock_mono_us();
	/* The first sweep waits one interval: a fresh start has heard no
	 * heartbeat yet, and a node that is alive will be by then. */
	t.next_sweep_us = now + (int64_t)o->sweep_ms * 1000;
	t.next_stats_us = now + (int64_t)o->stats_interval_ms * 1000;

	code = track_loop(&t, sigfd);

	coal_flush_all(&t.coal);
	track_flush(&t);
	track_stats(&t, LOG_INFO, "exit");
	if (code == EX_OK && t.out_failed)
		code = EX_IOERR;
out_store:
	/* The store first: callbacks still pending (a fatal exit) run with
	 * NULL while the sweep, the windows and the output they touch are
	 * still there. */
	store_free(&t.st);
	sweep_free(&t.sw);
out_free:
	coal_free(&t.coal);
	jsonl_free(&t.in);
	buf_release(&t.out);
	buf_release(&t.backlog);
	map_free(&t.node_ttl);
	free(t.purge_node);
	return code;
}
