/*
 * relay: chat-relay's event loop. One thread, one poll() over the input
 * (stdin or the child's stdout), the output (stdout or the child's stdin),
 * the AMQP socket and the signal self-pipe.
 *
 * Flow control, all bounded (see man/chat-relay.1, BOUNDS):
 *  - input is read only while the broker is connected, the confirm window
 *    has room (--max-inflight) and the output holds less than
 *    RELAY_OUT_SOFT_MAX bytes; otherwise the writer upstream blocks;
 *  - deliveries are bounded by --prefetch: without --manual-ack the relay
 *    acks a delivery itself once its line has been written out, so a slow
 *    reader holds deliveries back in the broker, not in the relay;
 *  - when the broker goes away, unconfirmed lines stay in the window and are
 *    published again after the reconnect (at-least-once), to the next broker
 *    of the list that answers, and delivery tags handed out on the lost
 *    connection are retired: the broker redelivers.
 * A mandatory line (ingest.*) that the broker returns is answered with a
 * nack. The counters go to the log and to --metrics-file (stats.c).
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "backoff.h"
#include "broker.h"
#include "clock.h"
#include "jsonl.h"
#include "log.h"
#include "sig.h"

#define READ_CHUNK 65536
#define EVENTS_PER_TURN 4096
#define RELAY_NACK_RUN 3 /* broker nacks in a row that drop the connection */
#define BACKOFF_BASE_MS 100
#define TICK_MS 1000

struct autoack {
	uint64_t end;  /* out position after the delivery's line */
	uint64_t tag;  /* broker delivery tag */
};

struct relay {
	const struct relay_opts *o;    /* options, borrowed */
	struct broker *broker;             /* the AMQP connection */
	struct relay_window win;       /* unconfirmed publishes */
	struct jsonl in;               /* input line splitter */
	int in_fd;                     /* input, -1 when closed */
	bool in_eof;                   /* input ended (or was stopped) */
	bool in_done;                  /* ... and every line was taken */
	bool in_stalled;               /* lines wait in `in` for room */
	bool in_owned;                 /* in_fd is ours to close */
	int out_fd;                    /* output, -1 when closed */
	bool out_owned;                /* out_fd is ours to close */
	struct buf out;                /* bytes for out_fd */
	uint64_t out_total;            /* bytes ever appended to out */
	uint64_t out_done;             /* bytes ever written from out */
	struct autoack *aa;            /* deliveries in out, to ack once out */
	size_t aa_cap, aa_head, aa_count;
	uint64_t ack_upto;             /* highest delivered tag written out */
	uint64_t acked_upto;           /* highest tag acked to the broker */
	uint64_t *held;                /* manual-ack: tags handed out, sorted */
	size_t nheld;                  /* how many */
	uint64_t tag_base;             /* relay tag = tag_base + broker tag */
	uint64_t max_tag;              /* highest broker tag this connection */
	pid_t child;                   /* child pid, 0 when none */
	bool child_exited;             /* child was reaped */
	int child_code;                /* its exit status as we report it */
	int term_signals;              /* TERM/INT received */
	int64_t lost_at;               /* mono us the broker went, 0 if up */
	int64_t retry_at;              /* mono us of the next connect */
	struct backoff bo;             /* reconnect delays */
	int fatal;                     /* exit status of a fatal error, or -1 */
	struct buf scratch;            /* a line without its envelope */
	int64_t stats_at;              /* mono us of the next stats turn, 0 off */
	bool metrics_failed;           /* last metrics write failed (logged) */
	unsigned nack_run;             /* broker nacks since the last ack */
	struct relay_stats st;         /* counters */
};

static void relay_fail(struct relay *r, int code)
{
	if (r->fatal < 0)
		r->fatal = code;
}

static void relay_snapshot(struct relay *r, struct relay_gauges *g)
{
	g->broker_up = broker_connected(r->broker);
	g->broker = broker_index(r->broker);
	g->inflight = r->win.count;
	g->inflight_max = r->o->max_inflight;
	g->unacked = r->nheld;
	g->out_bytes = r->out.len;
	r->st.connect_failures = broker_failed_attempts(r->broker);
}

static void relay_log_stats(struct relay *r, int lvl, const char *msg)
{
	struct relay_gauges g;

	relay_snapshot(r, &g);
	relay_stats_log(lvl, msg, &r->st, &g);
}

/* Write --metrics-file (if any). A failure is logged once per run of
 * failures, not at every interval. */
static void relay_write_metrics(struct relay *r)
{
	struct relay_gauges g;

	if (!r->o->metrics_file)
		return;
	relay_snapshot(r, &g);
	if (relay_metrics_write(r->o->metrics_file, &r->st, &g) < 0) {
		if (!r->metrics_failed)
			LOG_W("unable to write the metrics file", "path=%s err=%s",
			      log_q(r->o->metrics_file), log_q(strerror(errno)));
		r->metrics_failed = true;
		return;
	}
	r->metrics_failed = false;
}

/* Every --stats-interval: the metrics file and, at info level, the line. */
static void relay_stats_tick(struct relay *r)
{
	int64_t now = clock_mono_us();

	if (!r->stats_at || now < r->stats_at)
		return;
	r->stats_at = now + (int64_t)r->o->stats_interval_ms * 1000;
	relay_write_metrics(r);
	relay_log_stats(r, LOG_INFO, "stats");
}

/* Non-blocking only for pipes and sockets: O_NONBLOCK lives on the open
 * file description, and a terminal or file we share must stay as it is.
 * Files never block for long; a terminal may, which is acceptable. */
static void relay_nonblock(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* --- the broker connection ------------------------------------------ */

static void relay_appended(struct relay *r, size_t before);

/* Child mode: tell the child the broker is up or down, so that it can
 * recover what it may have missed while its queue was gone (chat-gw
 * recovers every room it has members in). */
static void relay_tell_state(struct relay *r, bool up)
{
	size_t before = r->out.len;

	if (r->o->mode != RELAY_CHILD || r->out_fd < 0)
		return;
	if (buf_addf(&r->out, "{\"type\":\"bus\",\"state\":\"%s\"}\n",
		     up ? "up" : "down") < 0)
		return;
	r->st.lines_out++;
	relay_appended(r, before);
}

static void relay_lost(struct relay *r)
{
	int64_t now = clock_mono_us();
	uint64_t delay;

	LOG_W("lost the broker", "err=%s url=%s inflight=%zu",
	      log_q(broker_error(r->broker)), log_q(broker_url(r->broker)), r->win.count);
	if (r->lost_at == 0) {
		r->lost_at = now;
		relay_tell_state(r, false);
	}
	/* Everything unconfirmed goes out again on the next connection. */
	relay_window_rewind(&r->win);
	/* Tags of this connection die with it: the broker redelivers. */
	r->tag_base += r->max_tag;
	r->max_tag = 0;
	r->aa_head = r->aa_count = 0;
	r->ack_upto = r->acked_upto = 0;
	r->nheld = 0;
	if (r->o->retry_budget_ms == 0) {
		LOG_F("broker lost and no retry budget", "url=%s",
		      log_q(broker_url(r->broker)));
		relay_fail(r, EX_TEMPFAIL);
		return;
	}
	delay = backoff_next_ms(&r->bo);
	r->retry_at = now + (int64_t)delay * 1000;
	LOG_I("reconnecting", "in_ms=%" PRIu64, delay);
}

static void relay_reconnect(struct relay *r)
{
	int64_t now = clock_mono_us();
	uint64_t delay, away_ms;

	if (broker_connect(r->broker) == 0) {
		away_ms = (uint64_t)(now - r->lost_at) / 1000;
		r->st.reconnects++;
		r->st.republished += r->win.count;
		LOG_W("reconnected to the broker",
		      "url=%s broker=%d away_ms=%" PRIu64 " republish=%zu",
		      log_q(broker_url(r->broker)), broker_index(r->broker), away_ms,
		      r->win.count);
		r->lost_at = 0;
		backoff_reset(&r->bo);
		relay_tell_state(r, true);
		if ((r->term_signals || r->out_fd < 0) && broker_cancel(r->broker) < 0)
			relay_lost(r);
		return;
	}
	away_ms = (uint64_t)(now - r->lost_at) / 1000;
	if (away_ms >= r->o->retry_budget_ms) {
		LOG_F("broker lost and the retry budget is spent",
		      "err=%s away_ms=%" PRIu64 " inflight=%zu",
		      log_q(broker_error(r->broker)), away_ms, r->win.count);
		relay_fail(r, EX_TEMPFAIL);
		return;
	}
	delay = backoff_next_ms(&r->bo);
	r->retry_at = now + (int64_t)delay * 1000;
	LOG_I("unable to reconnect", "err=%s retry_in_ms=%" PRIu64,
	      log_q(broker_error(r->broker)), delay);
}

/* Publish every window entry not yet sent on this connection. */
static void relay_publish_unsent(struct relay *r)
{
	struct relay_msg *m;
	uint64_t seq;

	while (broker_connected(r->broker) && (m = relay_window_unsent(&r->win))) {
		if (broker_publish(r->broker, r->o->exchange, m->route, m->data,
				m->len, m->expire_ms, m->mandatory, &seq) < 0) {
			relay_lost(r);
			return;
		}
		relay_window_mark_sent(&r->win, seq);
		r->st.published++;
		LOG_D("published", "seq=%" PRIu64 " route=%s", seq,
		      log_q(m->route));
	}
}

/* --- output ----------------------------------------------------------- */

static void relay_appended(struct relay *r, size_t before)
{
	r->out_total += r->out.len - before;
}

/* Answer settled window entries, oldest first. */
static void relay_pop_settled(struct relay *r)
{
	struct relay_msg *m;

	while ((m = relay_window_pop(&r->win))) {
		if (m->returned) {
			r->st.returned++;
			r->st.nacked++;
		} else if (m->nacked) {
			r->st.nacked++;
			r->nack_run++;
			LOG_W("broker refused a line (basic.nack)", "route=%s",
			      log_q(m->route));
		} else {
			r->st.confirmed++;
			r->nack_run = 0;
		}
		if (m->confirm && r->out_fd >= 0) {
			size_t before = r->out.len;

			if (relay_line_confirm(&r->out, m->confirm, !m->nacked) < 0) {
				LOG_F("unable to queue a confirm line",
				      "err=%s", log_q(strerror(errno)));
				relay_fail(r, EX_SOFTWARE);
			} else {
				r->st.lines_out++;
			}
			relay_appended(r, before);
		}
		relay_msg_free(m);
	}
}

/* Stop writing out. Deliveries not written are not acked: the broker
 * redelivers them once this connection is gone. No new ones are taken:
 * nobody is there to hand them to. */
static void relay_out_stop(struct relay *r)
{
	if (r->out_owned && r->out_fd >= 0)
		close(r->out_fd);
	r->out_fd = -1;
	buf_reset(&r->out);
	r->aa_head = r->aa_count = 0;
	if (broker_connected(r->broker) && broker_cancel(r->broker) < 0)
		relay_lost(r);
}

static void relay_out_closed(struct relay *r, int err)
{
	if (r->o->mode == RELAY_CHILD) {
		LOG_I("child closed its stdin", "err=%s",
		      log_q(err ? strerror(err) : "EOF"));
	} else {
		LOG_F("unable to write to stdout", "err=%s",
		      log_q(strerror(err)));
		relay_fail(r, EX_IOERR);
	}
	relay_out_stop(r);
}

static void relay_flush(struct relay *r)
{
	ssize_t n;

	while (r->out_fd >= 0 && r->out.len > 0) {
		n = write(r->out_fd, r->out.data, r->out.len);
		if (n > 0) {
			buf_consume(&r->out, (size_t)n);
			r->out_done += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		relay_out_closed(r, n < 0 ? errno : EPIPE);
		return;
	}
	/* Deliveries whose line is out are done (without --manual-ack). */
	while (r->aa_count > 0 && r->aa[r->aa_head].end <= r->out_done) {
		r->ack_upto = r->aa[r->aa_head].tag;
		r->aa_head = (r->aa_head + 1) % r->aa_cap;
		r->aa_count--;
	}
}

static void relay_send_acks(struct relay *r)
{
	if (r->ack_upto <= r->acked_upto || !broker_connected(r->broker))
		return;
	if (broker_ack(r->broker, r->ack_upto, true) < 0) {
		relay_lost(r);
		return;
	}
	r->acked_upto = r->ack_upto;
}

/* --- deliveries ------------------------------------------------------ */

static void relay_reject(struct relay *r, uint64_t tag, bool requeue)
{
	if (broker_reject(r->broker, tag, requeue) < 0)
		relay_lost(r);
}

static void relay_held_add(struct relay *r, uint64_t tag)
{
	/* Tags grow on a connection, so appending keeps the array sorted. */
	r->held[r->nheld++] = tag;
}

/* Remove tag from the held set; false when it is not there. */
static bool relay_held_take(struct relay *r, uint64_t tag)
{
	size_t lo = 0, hi = r->nheld;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->held[mid] < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= r->nheld || r->held[lo] != tag)
		return false;
	memmove(&r->held[lo], &r->held[lo + 1],
		(r->nheld - lo - 1) * sizeof(r->held[0]));
	r->nheld--;
	return true;
}

static void relay_delivery(struct relay *r, const struct broker_event *ev)
{
	const struct relay_opts *o = r->o;
	const char *why;
	size_t before = r->out.len;
	uint64_t rtag;

	r->st.deliveries++;
	if (ev->tag > r->max_tag)
		r->max_tag = ev->tag;
	if (r->out_fd < 0 || (o->manual_ack && r->nheld >= o->prefetch) ||
	    (!o->manual_ack && r->aa_count >= r->aa_cap)) {
		/* Nobody to hand it to (or more than prefetch came): back to
		 * the queue for another consumer. */
		relay_reject(r, ev->tag, true);
		return;
	}
	if (ev->oversize) {
		r->st.rejected++;
		LOG_W("delivery refused: body over --max-line",
		      "size=%" PRIu64 " max_line=%zu tag=%" PRIu64, ev->size,
		      o->max_line, ev->tag);
		relay_reject(r, ev->tag, false);
		return;
	}
	rtag = o->manual_ack ? r->tag_base + ev->tag : 0;
	if (relay_line_delivery(&r->out, ev->body, ev->len, rtag, &why) < 0) {
		r->st.rejected++;
		LOG_W("delivery refused", "err=%s size=%zu", log_q(why), ev->len);
		relay_reject(r, ev->tag, false);
		return;
	}
	r->st.lines_out++;
	relay_appended(r, before);
	LOG_D("delivered", "tag=%" PRIu64 " redelivered=%d size=%zu", ev->tag,
	      ev->redelivered, ev->len);
	if (o->manual_ack) {
		relay_held_add(r, ev->tag);
	} else {
		struct autoack *a = &r->aa[(r->aa_head + r->aa_count) % r->aa_cap];

		a->end = r->out_total;
		a->tag = ev->tag;
		r->aa_count++;
	}
}

/* The bus sets no overflow policy, so a broker nacks a publish only when
 * a queue cannot take it: a quorum queue without a leader. RabbitMQ then
 * may go on nacking every publish of that channel after the queue has a
 * new leader (a channel opened on a survivor while the election ran
 * remembers the old one); a new connection publishes. So a run of
 * RELAY_NACK_RUN nacks with no ack between drops the connection: what is
 * unconfirmed goes out again on the next one, as after any loss. */
static void relay_nack_check(struct relay *r)
{
	if (r->nack_run < RELAY_NACK_RUN || !broker_connected(r->broker))
		return;
	LOG_W("the broker nacks every publish; reconnecting",
	      "nacks=%u url=%s", r->nack_run, log_q(broker_url(r->broker)));
	r->nack_run = 0;
	r->st.nack_drops++;
	broker_disconnect(r->broker, false);
	relay_lost(r);
}

static void relay_bus_events(struct relay *r)
{
	struct broker_event ev;
	int i, n;

	for (i = 0; i < EVENTS_PER_TURN && broker_connected(r->broker); i++) {
		n = broker_next(r->broker, &ev);
		if (n == 0)
			break;
		if (n < 0) {
			relay_lost(r);
			break;
		}
		switch (ev.type) {
		case BROKER_EV_ACK:
		case BROKER_EV_NACK:
			if (relay_window_settle(&r->win, ev.tag, ev.multiple,
						ev.type == BROKER_EV_ACK) == 0)
				LOG_D("confirm for no pending line",
				      "seq=%" PRIu64, ev.tag);
			break;
		case BROKER_EV_DELIVERY:
			relay_delivery(r, &ev);
			break;
		case BROKER_EV_RETURN:
			/* Its basic.ack follows and becomes a nack. */
			if (!relay_window_returned(&r->win, ev.tag))
				LOG_D("return for no pending line",
				      "seq=%" PRIu64, ev.tag);
			LOG_W("broker returned a line: no queue takes its route "
			      "(does --ingest-shards agree everywhere?)",
			      "why=%s seq=%" PRIu64, log_q(ev.body), ev.tag);
			break;
		}
	}
	relay_pop_settled(r);
	relay_nack_check(r);
}

/* --- input ----------------------------------------------------------- */

static void relay_control(struct relay *r, const struct relay_line *l)
{
	uint64_t btag;

	if (!r->o->manual_ack) {
		r->st.bad_lines++;
		LOG_W("bad input line", "err=%s line=%" PRIu64,
		      log_q("ack/nack line without --manual-ack"),
		      r->st.lines_in);
		return;
	}
	if (l->tag <= r->tag_base) {
		/* Handed out on a connection that is gone: the broker has
		 * requeued it already. */
		r->st.stale_acks++;
		LOG_D("stale ack ignored", "tag=%" PRIu64, l->tag);
		return;
	}
	btag = l->tag - r->tag_base;
	if (!relay_held_take(r, btag)) {
		r->st.bad_lines++;
		LOG_W("bad input line", "err=%s tag=%" PRIu64 " line=%" PRIu64,
		      log_q("unknown tag (never delivered, or settled already)"),
		      l->tag, r->st.lines_in);
		return;
	}
	r->st.acks++;
	if (l->kind == RLINE_ACK) {
		if (broker_ack(r->broker, btag, false) < 0)
			relay_lost(r);
	} else {
		relay_reject(r, btag, l->requeue);
	}
}

static void relay_take_line(struct relay *r, const char *line, size_t len)
{
	const struct relay_opts *o = r->o;
	struct relay_line l;
	struct relay_msg *m;

	r->st.lines_in++;
	relay_line_parse(line, len, o->route, o->mode != RELAY_PUB, &r->scratch,
			 &l);
	switch (l.kind) {
	case RLINE_ACK:
	case RLINE_NACK:
		relay_control(r, &l);
		return;
	case RLINE_BAD:
		r->st.bad_lines++;
		LOG_W("bad input line, not published", "err=%s line=%" PRIu64,
		      log_q(l.err), r->st.lines_in);
		LOG_D("bad input line text", "text=%s", log_q(line));
		return;
	case RLINE_PUBLISH:
		break;
	}
	if (!o->publish) {
		free(l.confirm);
		r->st.bad_lines++;
		LOG_W("bad input line", "err=%s line=%" PRIu64,
		      log_q("sub takes only ack and nack lines"), r->st.lines_in);
		return;
	}
	m = relay_msg_new(l.body, l.body_len, l.route, l.expire_ms, l.confirm);
	if (!m) {
		LOG_F("out of memory", NULL);
		relay_fail(r, EX_OSERR);
		return;
	}
	relay_window_push(&r->win, m);
	relay_publish_unsent(r);
}

/* Whether one more input line can be taken now. */
static bool relay_can_take(struct relay *r, bool count)
{
	if (!broker_connected(r->broker) || r->fatal >= 0)
		return false;
	if (relay_window_full(&r->win)) {
		if (count)
			r->st.window_full++;
		return false;
	}
	if (r->out.len >= RELAY_OUT_SOFT_MAX) {
		if (count)
			r->st.out_full++;
		return false;
	}
	return true;
}

static void relay_take_lines(struct relay *r)
{
	const char *line;
	size_t len;
	int k;

	r->in_stalled = false;
	while (!r->in_done) {
		if (!relay_can_take(r, true)) {
			r->in_stalled = true;
			break;
		}
		k = jsonl_next(&r->in, &line, &len);
		if (k == JSONL_NONE) {
			if (r->in_eof)
				r->in_done = true;
			break;
		}
		if (k == JSONL_OVERLONG) {
			r->st.lines_in++;
			r->st.overlong++;
			LOG_W("bad input line, not published",
			      "err=%s max_line=%zu line=%" PRIu64,
			      log_q("line longer than --max-line"),
			      r->o->max_line, r->st.lines_in);
			continue;
		}
		relay_take_line(r, line, len);
	}
}

static void relay_close_input(struct relay *r)
{
	if (r->in_fd >= 0 && r->in_owned)
		close(r->in_fd);
	r->in_fd = -1;
	if (!r->in_eof) {
		r->in_eof = true;
		jsonl_finish(&r->in);
	}
}

/* Read what the input has now. until_empty: keep reading until it would
 * block (the child is gone, nothing more will come). */
static void relay_read(struct relay *r, bool until_empty)
{
	char chunk[READ_CHUNK];
	ssize_t n;

	while (r->in_fd >= 0) {
		n = read(r->in_fd, chunk, sizeof(chunk));
		if (n > 0) {
			if (jsonl_feed(&r->in, chunk, (size_t)n) < 0) {
				LOG_F("out of memory", NULL);
				relay_fail(r, EX_OSERR);
				return;
			}
			if (!until_empty)
				return;
			relay_take_lines(r);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (until_empty)
				relay_close_input(r);
			return;
		}
		if (n < 0 && r->o->mode != RELAY_CHILD) {
			LOG_F("unable to read stdin", "err=%s",
			      log_q(strerror(errno)));
			relay_fail(r, EX_IOERR);
		}
		LOG_I("input ended", "lines_in=%" PRIu64, r->st.lines_in);
		relay_close_input(r);
		return;
	}
}

/* --- signals and the child ------------------------------------------- */

static void relay_terminate(struct relay *r, int sig)
{
	r->term_signals++;
	if (r->term_signals > 1) {
		LOG_W("second signal: exiting now", "signal=%d inflight=%zu",
		      sig, r->win.count);
		if (r->child > 0 && !r->child_exited)
			kill(r->child, sig);
		relay_fail(r, 128 + sig);
		return;
	}
	LOG_I("stopping", "signal=%d inflight=%zu", sig, r->win.count);
	if (r->child > 0 && !r->child_exited)
		kill(r->child, sig);
	if (broker_connected(r->broker) && broker_cancel(r->broker) < 0)
		relay_lost(r);
	/* pub and sub stop reading; a child may still write its last lines. */
	if (r->o->mode != RELAY_CHILD)
		relay_close_input(r);
}

static void relay_reap(struct relay *r)
{
	int ws;
	pid_t p;

	if (r->child <= 0 || r->child_exited)
		return;
	p = waitpid(r->child, &ws, WNOHANG);
	if (p != r->child)
		return;
	r->child_exited = true;
	r->child_code = relay_child_exit_code(ws);
	LOG_I("child exited", "pid=%d status=%d", (int)r->child, r->child_code);
	/* What it wrote before exiting is in the pipe now: take it all, but
	 * do not wait for EOF (a grandchild may hold the pipe open). */
	relay_read(r, true);
	relay_out_stop(r);
}

static void relay_signals(struct relay *r)
{
	int sig;

	while ((sig = sig_next()) != 0) {
		switch (sig) {
		case SIGTERM:
		case SIGINT:
			relay_terminate(r, sig);
			break;
		case SIGCHLD:
			relay_reap(r);
			break;
		case SIGUSR1:
			relay_log_stats(r, LOG_WARN, "stats");
			relay_write_metrics(r);
			break;
		case SIGHUP:
			/* "read your configuration again": the child's to do
			 * (chat-gw rereads its keys and certificate) */
			if (r->child > 0)
				kill(r->child, SIGHUP);
			break;
		}
	}
}

/* --- the loop -------------------------------------------------------- */

/* Exit status once the relay is done, or -1 while it is not. */
static int relay_done(struct relay *r)
{
	const struct relay_opts *o = r->o;

	if (r->fatal >= 0)
		return r->fatal;
	switch (o->mode) {
	case RELAY_PUB:
		if (!r->in_done || r->win.count > 0 || r->out.len > 0)
			return -1;
		if (r->st.nacked > 0) {
			LOG_W("the broker refused lines", "nacked=%" PRIu64,
			      r->st.nacked);
			return EX_UNAVAILABLE;
		}
		if (r->st.bad_lines + r->st.overlong > 0) {
			LOG_W("input lines were refused",
			      "bad_lines=%" PRIu64 " overlong=%" PRIu64,
			      r->st.bad_lines, r->st.overlong);
			return EX_DATAERR;
		}
		return EX_OK;
	case RELAY_SUB:
		if (!r->term_signals && !(o->manual_ack && r->in_done))
			return -1;
		if (r->out.len > 0 && r->out_fd >= 0)
			return -1;
		return EX_OK;
	case RELAY_CHILD:
		if (!r->child_exited || !r->in_done || r->win.count > 0)
			return -1;
		return r->child_code;
	}
	return -1;
}

static int relay_loop(struct relay *r, int sigfd)
{
	struct pollfd pfd[4];
	int n, code, timeout, i_sig, i_in, i_out;
	int64_t now;

	for (;;) {
		if ((code = relay_done(r)) >= 0)
			return code;
		n = 0;
		i_in = i_out = -1;
		pfd[n] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		i_sig = n++;
		if (r->in_fd >= 0 && !r->in_eof && relay_can_take(r, false) &&
		    jsonl_pending(&r->in) <= r->o->max_line) {
			pfd[n] = (struct pollfd){ .fd = r->in_fd, .events = POLLIN };
			i_in = n++;
		}
		/* Polled even with nothing to write: a reader that went away
		 * (POLLERR on a pipe) ends a sub, or stops deliveries to a
		 * child, without waiting for the next delivery to fail. */
		if (r->out_fd >= 0) {
			pfd[n] = (struct pollfd){ .fd = r->out_fd,
						  .events = r->out.len ? POLLOUT : 0 };
			i_out = n++;
		}
		if (broker_connected(r->broker)) {
			pfd[n++] = (struct pollfd){ .fd = broker_fd(r->broker), .events = POLLIN };
		}
		timeout = TICK_MS;
		now = clock_mono_us();
		if (!broker_connected(r->broker) && r->lost_at) {
			int64_t ms = (r->retry_at - now + 999) / 1000;

			timeout = ms < 0 ? 0 : ms < TICK_MS ? (int)ms : TICK_MS;
		}
		if (r->stats_at) {
			int64_t ms = (r->stats_at - now + 999) / 1000;

			if (ms < timeout)
				timeout = ms < 0 ? 0 : (int)ms;
		}
		if (broker_pending(r->broker) || (r->in_stalled && relay_can_take(r, false)))
			timeout = 0;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			LOG_F("poll failed", "err=%s", log_q(strerror(errno)));
			return EX_OSERR;
		}
		if (pfd[i_sig].revents)
			relay_signals(r);
		if (broker_connected(r->broker))
			relay_bus_events(r);
		if (i_in >= 0 && pfd[i_in].revents)
			relay_read(r, false);
		relay_take_lines(r);
		relay_publish_unsent(r);
		if (i_out >= 0 && r->out_fd >= 0 && r->out.len == 0 &&
		    (pfd[i_out].revents & (POLLERR | POLLHUP | POLLNVAL)))
			relay_out_closed(r, EPIPE);
		relay_flush(r);
		relay_send_acks(r);
		if (!broker_connected(r->broker) && r->lost_at && r->fatal < 0 &&
		    clock_mono_us() >= r->retry_at &&
		    !(r->o->mode == RELAY_SUB && r->term_signals))
			relay_reconnect(r);
		relay_stats_tick(r);
	}
}

static void relay_ready(const struct relay_opts *o)
{
	if (o->ready_fd < 0)
		return;
	(void)!write(o->ready_fd, "\n", 1);
	close(o->ready_fd);
}

int relay_run(const struct relay_opts *o)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGCHLD, SIGUSR1, SIGHUP, 0 };
	struct relay r;
	char err[256], env_node[sizeof(o->node) + 16], env_shards[48];
	char *child_env[] = { env_node, env_shards, NULL };
	int sigfd, code;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.fatal = -1;
	r.in_fd = r.out_fd = -1;
	if (o->url_password_argv)
		LOG_W("broker password given on the command line",
		      "why=%s", log_q("ps shows a command line to every user of "
				      "the machine: use --url-file or "
				      "CHAT_AMQP_URL"));
	jsonl_init(&r.in, o->max_line);
	buf_init(&r.scratch, o->max_line); /* a line less some members */
	relay_metrics_init(o->node);
	buf_init(&r.out, RELAY_OUT_SOFT_MAX +
			 ((size_t)o->prefetch + o->max_inflight) *
				 (o->max_line + 64));
	backoff_init(&r.bo, BACKOFF_BASE_MS, o->backoff_max_ms,
		     (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32));
	r.aa_cap = o->prefetch;
	r.aa = calloc(r.aa_cap, sizeof(*r.aa));
	r.held = calloc(o->prefetch, sizeof(*r.held));
	if (!r.aa || !r.held || relay_window_init(&r.win, o->max_inflight) < 0) {
		LOG_F("out of memory", NULL);
		code = EX_OSERR;
		goto out_free;
	}
	sigfd = sig_init(sigs);
	if (sigfd < 0) {
		LOG_F("unable to set up signals", "err=%s", log_q(strerror(errno)));
		code = EX_OSERR;
		goto out_free;
	}
	r.broker = broker_new(o, err, sizeof(err));
	if (!r.broker) {
		LOG_F("bad broker URL", "err=%s", log_q(err));
		code = EX_USAGE;
		goto out_free;
	}
	if (broker_connect(r.broker) < 0) {
		LOG_F("unable to start on the broker", "err=%s",
		      log_q(broker_error(r.broker)));
		code = EX_UNAVAILABLE;
		goto out_free;
	}
	LOG_I("connected", "url=%s broker=%d queue=%s node=%s",
	      log_q(broker_url(r.broker)), broker_index(r.broker), log_q(broker_queue(r.broker)),
	      log_q(o->node));
	r.st.connect_failures = broker_failed_attempts(r.broker);
	if (o->stats_interval_ms)
		r.stats_at = clock_mono_us() + (int64_t)o->stats_interval_ms * 1000;
	relay_write_metrics(&r);

	if (o->mode == RELAY_CHILD) {
		/* The readiness fd is ours to close: a child holding a copy
		 * would keep a reader waiting for EOF from seeing it. */
		if (o->ready_fd >= 0)
			fcntl(o->ready_fd, F_SETFD,
			      fcntl(o->ready_fd, F_GETFD) | FD_CLOEXEC);
		snprintf(env_node, sizeof(env_node), "CHAT_NODE=%s", o->node);
		snprintf(env_shards, sizeof(env_shards), "CHAT_INGEST_SHARDS=%u",
			 o->ingest_shards);
		r.child = relay_child_spawn(o->child_argv, child_env, &r.out_fd,
					    &r.in_fd);
		if (r.child < 0) {
			LOG_F("unable to start the child", "cmd=%s err=%s",
			      log_q(o->child_argv[0]), log_q(strerror(errno)));
			code = EX_OSERR;
			goto out_free;
		}
		r.in_owned = r.out_owned = true;
		LOG_I("child started", "pid=%d cmd=%s", (int)r.child,
		      log_q(o->child_argv[0]));
	} else {
		r.out_fd = STDOUT_FILENO;
		relay_nonblock(STDOUT_FILENO);
		if (o->publish || o->manual_ack) {
			r.in_fd = STDIN_FILENO;
			relay_nonblock(STDIN_FILENO);
		} else {
			r.in_eof = r.in_done = true;
		}
	}
	relay_ready(o);

	code = relay_loop(&r, sigfd);

	if (code == EX_OK || o->mode == RELAY_CHILD)
		relay_flush(&r);
	relay_send_acks(&r);
	broker_disconnect(r.broker, r.fatal < 0);
	if (r.child > 0 && !r.child_exited) {
		/* Leaving early (fatal error): the child must not outlive us
		 * unnoticed; it also sees EOF on its stdin. */
		kill(r.child, SIGTERM);
	}
	relay_log_stats(&r, LOG_INFO, "exit");
	relay_write_metrics(&r);
out_free:
	if (r.in_owned && r.in_fd >= 0)
		close(r.in_fd);
	if (r.out_owned && r.out_fd >= 0)
		close(r.out_fd);
	broker_free(r.broker);
	relay_window_free(&r.win);
	jsonl_free(&r.in);
	buf_release(&r.out);
	buf_release(&r.scratch);
	free(r.aa);
	free(r.held);
	return code;
}
