/*
 * bench: `chat-cli bench` opens many WebSocket connections from one process
 * and one lws loop, spread round-robin over the gateway URLs and the rooms,
 * joins each to its room, and has the first P of them publish at a fixed
 * aggregate rate. Every subscriber checks every message it gets: latency
 * (now minus the send time the body carries) into a log-linear histogram,
 * and the room's seq, which must grow by exactly one: a jump counts the
 * messages skipped as lost, a repeat counts as a duplicate. At the end it
 * waits (bounded) for the last acks and deliveries, and reports
 * (bench_report.c).
 *
 * With --reconnect a connection that drops comes back: after a capped,
 * jittered backoff (lib/backoff) it connects to the next URL of the list,
 * rejoins its room with since = the last seq it saw, and goes on checking
 * seqs across the gap, which the recovered messages fill. A seq jump (a
 * gateway that could not recover all, a joined frame with a gap) is asked
 * for with history requests, as the protocol tells clients to do; only
 * what history does not have either counts as lost. A publisher
 * (bench_pub.c) keeps, per ref, whether it was acked; a ref left without an answer by a
 * drop, or answered unavailable, is written again with the same ref and
 * the same body once the connection is back (after a backoff for
 * unavailable), and one that stays unanswered for --timeout closes the
 * connection, which then reconnects. --churn closes and reopens
 * subscribers on purpose at a fixed rate. Reconnects and joins due later
 * wait in one heap (timeq.c), taken in the scheduler's tick.
 *
 * --hold only opens and joins, prints "ready N", and holds the connections
 * (to measure a gateway's memory per idle connection).
 *
 * The command line is read by bench_args.c, the report written by
 * bench_report.c.
 *
 * Per connection the bench keeps one struct bconn (about 80 bytes) besides
 * lws' own wsi; per message a publisher keeps 5 bytes; frames are parsed
 * by skim.c, not built as JSON trees. Handshakes are paced (at most
 * --handshakes in flight) so a gateway's accept backlog is never flooded.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <uv.h>

#include "bench.h"
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "file.h"
#include "hist.h"
#include "jwt.h"
#include "log.h"
#include "sig.h"
#include "skim.h"

#define BENCH_RX_CHUNK 1024          /* lws rx buffer per connection */
#define BENCH_FRAME_MAX (1 << 20)    /* longer frames are skipped */
#define BENCH_TICK_US 1000           /* publish scheduler period */
#define BENCH_CHECK_US 50000         /* drain progress check period */
#define BENCH_PUBCHECK_US 10000      /* publishers' resend/timeout check */
#define BENCH_BACKOFF_BASE_MS 100    /* first reconnect delay (nominal) */

static struct bench *B; /* the loop's callbacks find the run here */

/* No client-side validity pings: the gateway pings us, and a timer per
 * connection on lws' sorted timer list costs O(connections) per insert. */
static const lws_retry_bo_t bench_idle_policy = { 0 };

static void bench_count(struct bcount *t, const char *name)
{
	int i;

	for (i = 0; i < BENCH_CODES; i++) {
		if (!t[i].n || !strcmp(t[i].name, name)) {
			snprintf(t[i].name, sizeof(t[i].name), "%s", name);
			t[i].n++;
			return;
		}
	}
	t[BENCH_CODES - 1].n++; /* the rest share the last slot */
}

static void bench_connect_next(struct bench *b);
static void bench_phase_setup_done(struct bench *b);
static void bench_phase_close(struct bench *b);
static void bench_schedule_tick(struct bench *b, lws_usec_t us);

/* Leave the loop. */
static void bench_done(struct bench *b)
{
	b->phase = PH_DONE;
	uv_stop(&b->loop);
}

/* Setup is over when every connection has settled one way or another. */
static void bench_settle_check(struct bench *b)
{
	if (b->phase == PH_SETUP && b->settled >= b->nconns)
		bench_phase_setup_done(b);
}

static void bench_settle(struct bench *b, struct bconn *c)
{
	if (c->settled)
		return;
	c->settled = 1;
	b->settled++;
	bench_settle_check(b);
}

/* Have c's next step (connect or join, from its state) happen in delay_ms. */
static void bench_later(struct bench *b, struct bconn *c, uint64_t delay_ms)
{
	if (c->queued)
		return;
	if (timeq_push(&b->due, clock_mono_us() + (int64_t)delay_ms * 1000,
		       (uint32_t)(c - b->conns)) == 0)
		c->queued = 1;
	if (b->phase != PH_RUN)
		bench_schedule_tick(b, delay_ms * 1000 < BENCH_CHECK_US ?
				       (lws_usec_t)(delay_ms * 1000 + 500) :
				       BENCH_CHECK_US);
}

/* Start c's handshake to its URL. */
static void bench_connect_one(struct bench *b, struct bconn *c)
{
	struct lws_client_connect_info ci;
	struct cli_url *u = &b->urls[c->url % (uint32_t)b->nurls];
	char path[CLI_PATH_MAX + 64], user[32];
	const char *cred;
	char *tok = NULL;
	uint32_t i = (uint32_t)(c - b->conns);

	snprintf(user, sizeof(user), "bench-%" PRIu32, i);
	cred = user;
	if (b->secret) {
		tok = jwt_sign(user, 0, NULL, b->secret, b->secretlen);
		cred = tok ? tok : "";
	}
	{
		struct cli_url tmp = *u;

		if (cli_url_add_query(&tmp, b->secret ? "token" : "user", cred) < 0)
			tmp.path[0] = '\0';
		snprintf(path, sizeof(path), "%s", tmp.path);
	}
	free(tok);
	memset(&ci, 0, sizeof(ci));
	ci.context = b->ctx;
	ci.address = u->host;
	ci.port = u->port;
	ci.path = path;
	ci.host = u->host;
	ci.origin = u->host;
	ci.protocol = "chat.v1";
	ci.local_protocol_name = "chat.v1";
	ci.ssl_connection = u->tls ? LCCSCF_USE_SSL : 0;
	ci.opaque_user_data = c;
	ci.retry_and_idle_policy = &bench_idle_policy;
	ci.pwsi = &c->wsi;
	c->state = BC_CONNECTING;
	b->in_flight++;
	if (!lws_client_connect_via_info(&ci) && c->state == BC_CONNECTING) {
		/* Failed before any callback. */
		c->wsi = NULL;
		b->in_flight--;
		b->connect_errors++;
		if (b->reconnect && b->phase < PH_CLOSE) {
			c->state = BC_IDLE;
			bench_settle(b, c);
			bench_later(b, c, bench_delay_ms(b, &c->attempt));
		} else {
			c->state = BC_FAILED;
			b->failed++;
			bench_settle(b, c);
		}
		if (b->connect_errors == 1)
			LOG_W("unable to connect", "url=%s", log_q(u->text));
	}
}

/* Whether c has a seq jump waiting for history. */
static bool bench_hole_open(const struct bconn *c)
{
	return c->holes && c->holes->n;
}

/* Ask for history when c's first jump is there to ask about. */
static void bench_hole_ask(struct bconn *c)
{
	c->want_hist = 1;
	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

/* Note that c skipped seqs lo..hi, for history to fill. Returns false when
 * c has BENCH_HOLES_MAX open already (or no memory): then they are lost. */
static bool bench_hole_add(struct bench *b, struct bconn *c, uint64_t lo,
			   uint64_t hi)
{
	struct bholes *h = c->holes, *nh;
	uint32_t cap;

	if (!h || h->n == h->cap) {
		cap = h ? h->cap * 2 : 4;
		if (cap > BENCH_HOLES_MAX)
			return false;
		nh = realloc(h, sizeof(*nh) + cap * sizeof(nh->h[0]));
		if (!nh)
			return false;
		if (!h)
			nh->n = 0;
		nh->cap = cap;
		c->holes = h = nh;
	}
	h->h[h->n].lo = lo;
	h->h[h->n].hi = hi;
	h->n++;
	b->holes++;
	if (h->n == 1)
		bench_hole_ask(c);
	return true;
}

/* c's first jump is settled (filled or lost): on to the next. */
static void bench_hole_done(struct bconn *c)
{
	struct bholes *h = c->holes;

	memmove(h->h, h->h + 1, (h->n - 1) * sizeof(h->h[0]));
	h->n--;
	if (h->n)
		bench_hole_ask(c);
}

/* Whatever is due from the heap: a connection to open again (on the next
 * URL), or a join to try again. */
static bool bench_due_one(struct bench *b, int64_t now)
{
	struct timeq_ent e;
	struct bconn *c;

	if (!timeq_peek(&b->due, &e) || e.at > now)
		return false;
	c = &b->conns[e.id];
	if (!c->wsi && c->state == BC_IDLE && b->in_flight >= b->handshakes)
		return false; /* no handshake slot: it waits its turn */
	timeq_pop(&b->due);
	c->queued = 0;
	if (!c->wsi && c->state == BC_IDLE) {
		c->url = (uint8_t)((c->url + 1) % (uint32_t)b->nurls);
		bench_connect_one(b, c);
	} else if (c->wsi && c->state == BC_JOINING) {
		c->want_join = 1;
		lws_callback_on_writable(c->wsi);
	} else if (c->wsi && c->state == BC_JOINED && bench_hole_open(c)) {
		c->want_hist = 1;
		lws_callback_on_writable(c->wsi);
	}
	return true;
}

/* Start handshakes up to the in-flight limit: the first ones while setting
 * up, then what the heap has due. */
static void bench_connect_next(struct bench *b)
{
	int64_t now = clock_mono_us();
	struct bconn *c;

	while (b->phase == PH_SETUP && b->next_conn < b->nconns &&
	       b->in_flight < b->handshakes) {
		c = &b->conns[b->next_conn];
		c->url = (uint8_t)(b->next_conn % (uint32_t)b->nurls);
		b->next_conn++;
		bench_connect_one(b, c);
	}
	while (b->phase < PH_CLOSE && bench_due_one(b, now))
		;
	bench_settle_check(b);
}

static void bench_write_join(struct bench *b, struct bconn *c)
{
	unsigned char buf[LWS_PRE + 256];
	char room[BENCH_PREFIX_MAX + 16], since[40] = "";
	int n;

	bench_room_name(b, c->room, room, sizeof(room));
	if (c->was_joined)
		snprintf(since, sizeof(since), ",\"since\":%" PRIu64, c->last_seq);
	n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
		     "{\"type\":\"join\",\"room\":\"%s\",\"ref\":\"j\"%s}", room,
		     since);
	lws_write(c->wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT);
}

/* Ask history for the newest part of c's first seq jump (it answers the
 * last `limit` messages before `before`, oldest first). */
static void bench_write_hist(struct bench *b, struct bconn *c)
{
	unsigned char buf[LWS_PRE + 256];
	char room[BENCH_PREFIX_MAX + 16];
	struct bhole *h = &c->holes->h[0];
	uint64_t n = h->hi - h->lo + 1;
	int len;

	bench_room_name(b, c->room, room, sizeof(room));
	len = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
		       "{\"type\":\"history\",\"room\":\"%s\",\"before\":%" PRIu64
		       ",\"limit\":%" PRIu64 ",\"ref\":\"h\"}", room, h->hi + 1,
		       n < 500 ? n : 500);
	lws_write(c->wsi, buf + LWS_PRE, (size_t)len, LWS_WRITE_TEXT);
}

static void bench_message(struct bench *b, struct bconn *c,
			  struct skim_field *top)
{
	struct skim_field body[3] = {
		{ .name = "t" }, { .name = "p" }, { .name = "n" },
	};
	int64_t seq, t, now, pi, n;
	struct broom *r = &b->rooms[c->room];

	if (!skim_int(&top[1], &seq) || seq < 0) {
		b->frames_bad++;
		return;
	}
	c->received++;
	if ((uint64_t)seq <= c->last_seq) {
		c->dups++;
		return; /* neither timed nor counted as a delivery */
	}
	if ((uint64_t)seq > c->last_seq + 1) {
		/* Skipped: ask history (--reconnect), else lost. */
		if (b->reconnect && c->state == BC_JOINED &&
		    bench_hole_add(b, c, c->last_seq + 1, (uint64_t)seq - 1))
			LOG_I("seq jump: asking history", "conn=%ld from=%" PRIu64
			      " to=%" PRIu64 " recovered=%d", (long)(c - b->conns),
			      c->last_seq + 1, (uint64_t)seq - 1, top[4].v != NULL);
		else
			c->gaps += (uint64_t)seq - c->last_seq - 1;
	}
	c->last_seq = (uint64_t)seq;
	if ((uint64_t)seq > r->max_seq)
		r->max_seq = (uint64_t)seq;
	if (top[4].v && top[4].vlen == 4 && !memcmp(top[4].v, "true", 4))
		b->recovered++;
	if (!top[2].v || skim_object(top[2].v, top[2].vlen, body, 3) < 0)
		return;
	if (skim_int(&body[0], &t) && t >= b->t_measure && t < b->t_end) {
		now = clock_mono_us();
		hist_add(&b->lat, (uint64_t)(now > t ? now - t : 0));
		b->measured++;
	}
	if (skim_int(&body[1], &pi) && skim_int(&body[2], &n))
		bench_pub_seen(b, pi, n, (uint64_t)seq);
}

static void bench_joined(struct bench *b, struct bconn *c, uint64_t seq)
{
	struct broom *r = &b->rooms[c->room];

	c->state = BC_JOINED;
	c->attempt = 0;
	c->dropped = 0;
	r->members++;
	b->t_progress = clock_mono_us();
	if (c->was_joined) {
		/* A rejoin: its seqs go on from where they were. */
		b->reconnects++;
		hist_add(&b->resume, (uint64_t)(clock_mono_us() - c->t_down));
		if (seq < c->last_seq) {
			b->resets++;
			if (b->resets <= 3 || log_enabled(LOG_INFO))
				LOG_W("the room's seq went back: its history was lost",
				      "conn=%ld last_seq=%" PRIu64 " joined_seq=%"
				      PRIu64, (long)(c - b->conns), c->last_seq, seq);
			if (c->epoch == r->epoch) {
				r->prev_max = r->max_seq;
				r->max_seq = seq;
				r->epoch++;
			}
			if (r->prev_max > c->last_seq)
				c->gaps += r->prev_max - c->last_seq;
			c->epoch = r->epoch;
			c->last_seq = seq;
			if (seq > r->max_seq)
				r->max_seq = seq;
		}
	} else {
		c->last_seq = seq;
		c->acked_base = r->acked;
		c->epoch = r->epoch;
		c->was_joined = 1;
		b->joined++;
		if (c->last_seq > r->max_seq)
			r->max_seq = c->last_seq;
	}
	if (bench_hole_open(c))
		c->want_hist = 1; /* its answer went with the old connection */
	if ((c->pub >= 0 || c->want_hist) && c->wsi)
		lws_callback_on_writable(c->wsi);
	bench_settle(b, c);
}

/* A join answered by an error: tried again later when the gateway cannot
 * serve it now (with --reconnect); else the connection stays open but
 * is no subscriber. */
static void bench_join_error(struct bench *b, struct bconn *c, const char *code,
			     const char *message)
{
	if (b->reconnect && code && (!strcmp(code, "unavailable") ||
				     !strcmp(code, "rate_limited"))) {
		b->join_retries++;
		if (b->join_retries <= 3 || log_enabled(LOG_INFO))
			LOG_W("join refused for now: trying again", "conn=%ld"
			      " code=%s message=%s", (long)(c - b->conns),
			      log_q(code), log_q(message));
		bench_later(b, c, bench_delay_ms(b, &c->attempt));
		return;
	}
	LOG_W("join refused", "room=%" PRIu32 " code=%s", c->room, log_q(code));
	c->state = BC_JOINED; /* open but not a subscriber */
	if (c->was_joined) {
		c->dropped = 1; /* what it misses from now on is lost */
	} else {
		c->acked_base = UINT64_MAX;
		b->join_failed++;
	}
	bench_settle(b, c);
}

/* A history answer for c's first seq jump: what it holds of the jump is
 * delivered (counted as filled); the rest is asked for again, unless
 * history had none of it: then it is lost. */
static void bench_history(struct bench *b, struct bconn *c, json_t *f)
{
	json_t *msgs = json_object_get(f, "messages"), *m, *body;
	uint64_t lo = UINT64_MAX, n = 0, hi;
	struct bhole *h;
	int64_t seq;
	size_t i;

	if (!bench_hole_open(c)) {
		b->frames_other++;
		return;
	}
	h = &c->holes->h[0];
	hi = h->hi;
	json_array_foreach(msgs, i, m) {
		seq = json_integer_value(json_object_get(m, "seq"));
		if (seq < 1 || (uint64_t)seq < h->lo || (uint64_t)seq > hi)
			continue;
		n++;
		c->received++;
		b->filled++;
		if ((uint64_t)seq < lo)
			lo = (uint64_t)seq;
		body = json_object_get(m, "body");
		bench_pub_seen(b, json_integer_value(json_object_get(body, "p")),
			       json_integer_value(json_object_get(body, "n")),
			       (uint64_t)seq);
	}
	if (!n) {
		/* History has none of it: a real hole. */
		c->gaps += hi - h->lo + 1;
		LOG_W("a seq gap history cannot fill: lost", "conn=%ld from=%"
		      PRIu64 " to=%" PRIu64, (long)(c - b->conns), h->lo, hi);
		bench_hole_done(c);
		return;
	}
	/* What lo..hi lacks (history is contiguous, unless messages are
	 * missing from the store too) is lost; below lo, ask again. */
	c->gaps += (hi - lo + 1) - n;
	if (lo <= h->lo) {
		bench_hole_done(c);
	} else {
		h->hi = lo - 1;
		bench_hole_ask(c);
	}
	if (b->phase == PH_DRAIN)
		b->t_progress = clock_mono_us();
}

/* The rare frames: joined, history and error, with jansson. */
static void bench_frame_slow(struct bench *b, struct bconn *c, const char *p,
			     size_t len, const char *type)
{
	json_t *f = json_loadb(p, len, JSON_ALLOW_NUL, NULL);
	const char *code, *ref;

	if (!f) {
		b->frames_bad++;
		return;
	}
	ref = json_string_value(json_object_get(f, "ref"));
	if (!strcmp(type, "joined") && c->state == BC_JOINING) {
		bench_joined(b, c, (uint64_t)json_integer_value(json_object_get(f, "seq")));
	} else if (!strcmp(type, "history") && ref && !strcmp(ref, "h")) {
		bench_history(b, c, f);
	} else if (!strcmp(type, "error")) {
		code = json_string_value(json_object_get(f, "code"));
		bench_count(b->errors, code ? code : "?");
		if (ref && !strcmp(ref, "h") && bench_hole_open(c))
			bench_later(b, c, bench_delay_ms(b, &c->attempt));
		else if (c->state == BC_JOINING && (!ref || !strcmp(ref, "j")))
			bench_join_error(b, c, code, json_string_value(
						 json_object_get(f, "message")));
		else if (c->pub >= 0)
			bench_pub_error(b, c, ref, code, json_string_value(
						json_object_get(f, "message")));
	} else {
		b->frames_other++;
	}
	json_decref(f);
}

static void bench_frame(struct bench *b, struct bconn *c, const char *p,
			size_t len)
{
	struct skim_field top[5] = {
		{ .name = "type" }, { .name = "seq" }, { .name = "body" },
		{ .name = "ref" }, { .name = "recovered" },
	};
	char type[16];

	if (skim_object(p, len, top, 5) < 0 || !top[0].v || top[0].vlen < 2 ||
	    top[0].vlen > sizeof(type) + 1) {
		if (top[0].v && top[0].vlen > sizeof(type) + 1) {
			b->frames_other++;
			return;
		}
		b->frames_bad++;
		return;
	}
	if (skim_str_is(&top[0], "message")) {
		bench_message(b, c, top);
		return;
	}
	if (skim_str_is(&top[0], "ack")) {
		bench_pub_ack(b, c, &top[3]);
		return;
	}
	if (skim_str_is(&top[0], "presence") || skim_str_is(&top[0], "typing")) {
		b->frames_other++;
		return;
	}
	memcpy(type, top[0].v + 1, top[0].vlen - 2);
	type[top[0].vlen - 2] = '\0';
	bench_frame_slow(b, c, p, len, type);
}

static void bench_closed(struct bench *b, struct bconn *c)
{
	bool ours = b->phase == PH_CLOSE || b->phase == PH_DONE;
	bool churn = c->churn;
	char code[16];
	uint64_t n;

	if (c->state == BC_JOINED && c->acked_base != UINT64_MAX && !c->dropped) {
		c->acked_end = b->rooms[c->room].acked;
		b->rooms[c->room].members--;
	}
	if (!ours && !churn) {
		c->dropped = 1;
		b->drops++;
		snprintf(code, sizeof(code), "%u", c->close_code);
		bench_count(b->closes, c->timed_out ? "timeout" :
				       c->close_code ? code : "lost");
		if (b->drops <= 3 || log_enabled(LOG_INFO))
			LOG_W("connection closed during the run", "conn=%ld code=%s",
			      (long)(c - b->conns), c->timed_out ? "timeout" :
			      c->close_code ? code : "lost");
		if (c->state == BC_JOINING && !c->was_joined)
			bench_settle(b, c); /* closed before it joined */
	}
	if (c->pub >= 0) {
		struct bpub *p = &b->pubs[c->pub];

		if (b->reconnect && !ours) {
			/* Unanswered refs go again on the next connection. */
			for (n = p->lo; n <= p->sent; n++) {
				if (p->st[n] & PS_WAIT) {
					p->st[n] = (uint8_t)((p->st[n] & ~PS_WAIT) |
							     PS_RESEND);
					p->nresend++;
				}
			}
			p->retry_at = 0;
		} else {
			b->unsent += p->due - p->sent;
			p->due = p->sent;
		}
	}
	c->wsi = NULL;
	c->t_down = clock_mono_us();
	c->churn = 0;
	c->timed_out = 0;
	c->close_code = 0;
	c->want_join = 0;
	c->want_close = 0;
	c->want_hist = 0;
	b->open_now--;
	if (c->frag) {
		buf_release(c->frag);
		free(c->frag);
		c->frag = NULL;
	}
	if (!ours && b->reconnect) {
		c->state = BC_IDLE;
		bench_later(b, c, churn ? 0 : bench_delay_ms(b, &c->attempt));
	} else {
		c->state = BC_CLOSED;
	}
	if (b->phase == PH_CLOSE && b->open_now == 0)
		bench_done(b);
}

static void bench_connection_error(struct bench *b, struct bconn *c,
				   struct lws *wsi, const char *why)
{
	if (c->state != BC_CONNECTING)
		return;
	c->wsi = NULL;
	b->in_flight--;
	b->connect_errors++;
	if (b->phase == PH_SETUP)
		b->t_progress = clock_mono_us();
	if (b->connect_errors <= 3 || log_enabled(LOG_INFO)) {
		unsigned int st = why && !strcmp(why, "HS: ws upgrade response not 101") ?
				  lws_http_client_http_response(wsi) : 0;

		LOG_W("unable to connect", "conn=%ld url=%s err=%s status=%u",
		      (long)(c - b->conns), log_q(b->urls[c->url].text),
		      log_q(why ? why : "?"), st);
	}
	if (b->reconnect && b->phase < PH_CLOSE) {
		c->state = BC_IDLE;
		bench_settle(b, c);
		bench_later(b, c, bench_delay_ms(b, &c->attempt));
	} else {
		c->state = BC_FAILED;
		b->failed++;
		bench_settle(b, c);
	}
	bench_connect_next(b);
}

static int bench_ws_cb(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	struct bench *b = B;
	struct bconn *c = lws_get_opaque_user_data(wsi);

	if (!c)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		bench_connection_error(b, c, wsi, in);
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->state = BC_JOINING;
		c->wsi = wsi;
		c->want_join = 1;
		b->in_flight--;
		if (!c->opened) {
			c->opened = 1;
			b->opened++;
		}
		b->open_now++;
		b->t_progress = clock_mono_us();
		if (b->phase >= PH_CLOSE)
			c->want_close = 1;
		lws_callback_on_writable(wsi);
		bench_connect_next(b);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi) &&
		    !c->frag) {
			bench_frame(b, c, in, len); /* the usual case */
			break;
		}
		if (!c->frag) {
			c->frag = malloc(sizeof(*c->frag));
			if (!c->frag)
				break;
			buf_init(c->frag, BENCH_FRAME_MAX);
			c->frag_skip = 0;
		}
		if (!c->frag_skip && buf_add(c->frag, in, len) < 0)
			c->frag_skip = 1;
		if (lws_is_final_fragment(wsi)) {
			if (c->frag_skip)
				b->frames_other++;
			else
				bench_frame(b, c, c->frag->data, c->frag->len);
			buf_release(c->frag);
			free(c->frag);
			c->frag = NULL;
		}
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c->want_close) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		if (c->want_join) {
			c->want_join = 0;
			bench_write_join(b, c);
			break;
		}
		if (c->want_hist && c->state == BC_JOINED) {
			c->want_hist = 0;
			bench_write_hist(b, c);
			if (c->pub >= 0)
				lws_callback_on_writable(wsi);
			break;
		}
		if (c->pub < 0 || c->state != BC_JOINED ||
		    (b->phase != PH_RUN && b->phase != PH_DRAIN))
			break;
		if (bench_pub_write(b, &b->pubs[c->pub]))
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (len >= 2)
			c->close_code = (uint16_t)(((const unsigned char *)in)[0] << 8 |
						   ((const unsigned char *)in)[1]);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c->wsi)
			bench_closed(b, c);
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* lws tells a handshake's end by CLIENT_CONNECTION_ERROR only
		 * in some states (not while it writes the request, say): one
		 * gone without a word would wait forever, holding its
		 * handshake slot. Whatever ends without an end of its own
		 * ends here. */
		if (c->wsi != wsi)
			break;
		if (c->state == BC_CONNECTING)
			bench_connection_error(b, c, wsi, "closed during the handshake");
		else if (c->state == BC_JOINING || c->state == BC_JOINED)
			bench_closed(b, c);
		break;
	default:
		break;
	}
	return 0;
}

static void bench_signal(struct bench *b)
{
	int sig;

	while ((sig = sig_next()) != 0) {
		if (++b->signals > 1) {
			sig_reset();
			raise(sig);
		}
		LOG_I("signal: finishing", "signal=%d", sig);
		switch (b->phase) {
		case PH_SETUP:
		case PH_HOLD:
			bench_phase_close(b);
			break;
		case PH_RUN:
			/* Stop the schedule where it is; the tick moves on. */
			b->t_end = clock_mono_us();
			b->planned = b->scheduled;
			break;
		default:
			break;
		}
	}
}

static int bench_raw_cb(struct lws *wsi, enum lws_callback_reasons reason,
			void *user, void *in, size_t len)
{
	if (reason == LWS_CALLBACK_RAW_RX_FILE)
		bench_signal(B);
	return 0;
}

static const struct lws_protocols bench_protocols[] = {
	{ "chat.v1", bench_ws_cb, 0, BENCH_RX_CHUNK, 0, NULL, 0 },
	{ "chat-cli-signal", bench_raw_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void bench_tick(lws_sorted_usec_list_t *sul);

static void bench_schedule_tick(struct bench *b, lws_usec_t us)
{
	/* Never later than what is already asked for. */
	if (b->sul_tick.us && b->sul_tick.list.owner &&
	    b->sul_tick.us <= lws_now_usecs() + us)
		return;
	lws_sul_schedule(b->ctx, 0, &b->sul_tick, bench_tick, us);
}

static void bench_phase_setup_done(struct bench *b)
{
	int64_t now = clock_mono_us();

	if (b->phase != PH_SETUP)
		return;
	b->t_ready = now;
	LOG_I("connections ready", "joined=%" PRIu32 " failed=%" PRIu32
	      " setup_ms=%" PRId64, b->joined, b->failed,
	      (now - b->t_setup) / 1000);
	if (b->joined == 0) {
		LOG_F("no connection could join", "failed=%" PRIu32
		      " join_failed=%" PRIu32 " connect_errors=%" PRIu64,
		      b->failed, b->join_failed, b->connect_errors);
		b->rc = EX_UNAVAILABLE;
		bench_phase_close(b);
		return;
	}
	if (b->hold) {
		b->phase = PH_HOLD;
		printf("ready %" PRIu32 "\n", b->joined);
		fflush(stdout);
		if (b->joined < b->nconns)
			LOG_W("some connections did not join", "failed=%" PRIu32
			      " join_failed=%" PRIu32, b->nconns - b->opened,
			      b->join_failed);
		b->t_end = b->duration_set ?
			   now + (int64_t)b->duration_ms * 1000 : INT64_MAX;
		bench_schedule_tick(b, BENCH_CHECK_US);
		return;
	}
	b->phase = PH_RUN;
	b->t_start = now;
	b->t_measure = now + (int64_t)b->warmup_ms * 1000;
	b->t_end = b->t_measure + (int64_t)b->duration_ms * 1000;
	b->planned = b->npubs ? (uint64_t)llround(b->rate *
				      (double)(b->warmup_ms + b->duration_ms) / 1000.0) : 0;
	bench_schedule_tick(b, BENCH_TICK_US);
}

static void bench_phase_close(struct bench *b)
{
	uint32_t i;

	LOG_I("closing the connections", "open=%" PRIu32, b->open_now);
	b->phase = PH_CLOSE;
	b->t_progress = clock_mono_us();
	for (i = 0; i < b->nconns; i++) {
		struct bconn *c = &b->conns[i];

		if (c->wsi && c->state != BC_CONNECTING) {
			c->want_close = 1;
			lws_callback_on_writable(c->wsi);
		}
	}
	if (b->open_now == 0 && b->in_flight == 0)
		bench_done(b);
	else
		bench_schedule_tick(b, BENCH_CHECK_US);
}

/* Whether every acked message reached every subscriber: with --reconnect,
 * also every publish answered and every subscriber back and up to its
 * room's last seq. */
static bool bench_drained(struct bench *b, bool why)
{
	uint32_t i;

	for (i = 0; i < b->npubs; i++) {
		struct bpub *p = &b->pubs[i];

		if (!b->reconnect && !p->c->wsi)
			continue; /* closed: what it had in flight is lost */
		if (p->due > p->sent || p->lo <= p->sent) {
			if (why)
				LOG_W("drain: a publisher is not done", "publisher=%"
				      PRIu32 " due=%" PRIu64 " sent=%" PRIu64
				      " unanswered_from=%" PRIu64 " resend=%" PRIu64
				      " state=%u", i, p->due, p->sent, p->lo,
				      p->nresend, p->c->state);
			return false;
		}
	}
	for (i = 0; i < b->nconns; i++) {
		struct bconn *c = &b->conns[i];
		bool back = c->state == BC_JOINED && !c->dropped;

		if (!c->was_joined || c->acked_base == UINT64_MAX)
			continue;
		if ((b->reconnect && (!back || bench_hole_open(c) ||
				      c->last_seq < b->rooms[c->room].max_seq)) ||
		    (back && c->received - c->dups <
			     b->rooms[c->room].acked - c->acked_base)) {
			if (why)
				LOG_W("drain: a subscriber is not done", "conn=%"
				      PRIu32 " state=%u last_seq=%" PRIu64
				      " room_seq=%" PRIu64 " received=%" PRIu64
				      " acked=%" PRIu64 " jumps_open=%" PRIu32,
				      i, c->state, c->last_seq,
				      b->rooms[c->room].max_seq,
				      c->received - c->dups,
				      b->rooms[c->room].acked - c->acked_base,
				      c->holes ? c->holes->n : 0);
			return false;
		}
	}
	return true;
}

/* --churn: close the next joined subscriber that does not publish. */
static void bench_churn_one(struct bench *b)
{
	uint32_t k;

	for (k = 0; k < b->nconns; k++) {
		struct bconn *c = &b->conns[b->churn_next];

		b->churn_next = (b->churn_next + 1) % b->nconns;
		if (c->pub >= 0 || c->state != BC_JOINED || !c->wsi ||
		    c->want_close || c->dropped)
			continue;
		c->churn = 1;
		c->want_close = 1;
		b->churned++;
		lws_callback_on_writable(c->wsi);
		return;
	}
}

static void bench_tick(lws_sorted_usec_list_t *sul)
{
	struct bench *b = lws_container_of(sul, struct bench, sul_tick);
	int64_t now = clock_mono_us();
	struct timeq_ent e;
	lws_usec_t next = BENCH_CHECK_US;
	uint64_t due;

	if (b->phase < PH_CLOSE && b->due.n)
		bench_connect_next(b);
	if ((b->phase == PH_RUN || b->phase == PH_DRAIN) &&
	    now - b->t_pubcheck >= BENCH_PUBCHECK_US) {
		b->t_pubcheck = now;
		bench_pub_check(b, now);
	}
	switch (b->phase) {
	case PH_SETUP:
		if (now - b->t_progress > (int64_t)b->timeout_ms * 1000) {
			LOG_W("setup stalled: going on with the joined connections",
			      "joined=%" PRIu32 " pending=%" PRIu32, b->joined,
			      b->nconns - b->settled);
			bench_phase_setup_done(b);
			return;
		}
		break;
	case PH_HOLD:
		if (now >= b->t_end) {
			bench_phase_close(b);
			return;
		}
		break;
	case PH_RUN:
		/* Message k (from 0) is due at t_start + k / rate. */
		due = b->rate > 0 ? (uint64_t)((double)(now - b->t_start) *
					       b->rate / 1e6) + 1 : 0;
		if (due > b->planned || now >= b->t_end)
			due = b->planned;
		while (b->scheduled < due && b->npubs) {
			struct bpub *p = &b->pubs[b->rr];

			b->rr = (b->rr + 1) % b->npubs;
			b->scheduled++;
			if (!b->reconnect && !p->c->wsi) {
				b->unsent++;
				continue;
			}
			p->due++;
			if (p->c->wsi && p->c->state == BC_JOINED)
				lws_callback_on_writable(p->c->wsi);
		}
		if (b->churn > 0) {
			due = (uint64_t)((double)(now - b->t_start) * b->churn / 1e6);
			while (b->churn_due < due) {
				b->churn_due++;
				bench_churn_one(b);
			}
		}
		if (now >= b->t_end) {
			b->phase = PH_DRAIN;
			b->t_progress = now;
			LOG_I("publishing done, draining", "published=%" PRIu64
			      " acked=%" PRIu64, b->published, b->acked);
			break;
		}
		next = BENCH_TICK_US;
		break;
	case PH_DRAIN:
		if (bench_drained(b, false)) {
			b->t_drained = now;
			bench_phase_close(b);
			return;
		}
		if (now - b->t_progress > (int64_t)b->timeout_ms * 1000) {
			bench_drained(b, true);
			LOG_W("drain timed out: reporting what arrived",
			      "unacked=%" PRIu64 " down=%" PRIu32,
			      b->published - b->acked - b->pub_errors,
			      b->nconns - b->open_now);
			b->t_drained = now;
			bench_phase_close(b);
			return;
		}
		break;
	case PH_CLOSE:
		if (b->open_now == 0 || now - b->t_progress > 3 * 1000000) {
			bench_done(b);
			return;
		}
		break;
	case PH_DONE:
		return;
	}
	/* Sooner when something waits in the heap. */
	if (b->phase < PH_CLOSE && timeq_peek(&b->due, &e)) {
		int64_t in = e.at - now;

		if (in < (int64_t)next)
			next = in < BENCH_TICK_US ? BENCH_TICK_US : (lws_usec_t)in;
	}
	lws_sul_schedule(b->ctx, 0, &b->sul_tick, bench_tick, next);
}

static int bench_run(struct bench *b)
{
	static const int sigs[] = { SIGINT, SIGTERM, 0 };
	struct cli_ctx_opts co;
	lws_sock_file_fd_type fd;
	uint64_t nofile;
	uint32_t i;
	int sfd;
	bool tls = false;

	nofile = cli_raise_nofile((uint64_t)b->nconns + 1024);
	if (nofile < (uint64_t)b->nconns + 32)
		LOG_W("the fd limit is below the connections asked for",
		      "nofile=%" PRIu64 " conns=%" PRIu32, nofile, b->nconns);
	for (i = 0; i < (uint32_t)b->nurls; i++)
		tls |= b->urls[i].tls;
	memset(&co, 0, sizeof(co));
	co.protocols = bench_protocols;
	/* No fd_limit_per_thread: with it lws 4.1 finds a wsi by a linear
	 * scan of every fd; without, by indexing a table sized from the
	 * RLIMIT_NOFILE raised above. */
	co.fd_limit = 0;
	co.timeout_s = (unsigned int)((b->timeout_ms + 999) / 1000);
	co.tls = tls;
	co.header_pool = b->handshakes + 4;
	co.user = b;
	/* epoll through libuv: with thousands of connections, poll() would
	 * scan them all every turn and the client would measure itself. */
	if (uv_loop_init(&b->loop) != 0) {
		LOG_F("unable to create the event loop", NULL);
		return EX_OSERR;
	}
	co.uv_loop = &b->loop;
	co.pcontext = &b->ctx;
	b->ctx = cli_ctx_new(&co);
	if (!b->ctx) {
		LOG_F("unable to create the lws context", NULL);
		return EX_OSERR;
	}
	sfd = sig_init(sigs);
	if (sfd >= 0) {
		fd.filefd = sfd;
		b->sig_wsi = lws_adopt_descriptor_vhost(
			lws_get_vhost_by_name(b->ctx, "default"),
			LWS_ADOPT_RAW_FILE_DESC, fd, "chat-cli-signal", NULL);
	}
	b->t_setup = b->t_progress = clock_mono_us();
	b->phase = PH_SETUP;
	bench_schedule_tick(b, BENCH_CHECK_US);
	bench_connect_next(b);
	if (b->phase != PH_DONE)
		uv_run(&b->loop, UV_RUN_DEFAULT);
	lws_sul_cancel(&b->sul_tick);
	b->phase = PH_DONE;
	LOG_I("closed", "open=%" PRIu32, b->open_now);
	/* On libuv, destroying a context with connections open takes loop
	 * turns: destroy, let the loop close lws' handles, and destroy again
	 * to free what is left (lws clears b->ctx once it is all gone). */
	lws_context_destroy(b->ctx);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	if (b->ctx)
		lws_context_destroy(b->ctx);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uv_loop_close(&b->loop);
	LOG_D("context destroyed", NULL);
	if (!b->hold && b->rc == 0)
		bench_report(b);
	if (b->rc == 0 && b->opened == 0)
		b->rc = EX_UNAVAILABLE;
	return b->rc;
}

int cli_bench_main(int argc, char **argv)
{
	struct bench *b;
	uint32_t i;
	int rc;

	b = calloc(1, sizeof(*b));
	if (!b)
		return EX_OSERR;
	rc = bench_args_parse(b, argc, argv);
	if (rc >= 0)
		goto out;
	if (b->secret_file) {
		b->secret = file_read_small(b->secret_file, 1 << 20, &b->secretlen);
		if (!b->secret) {
			LOG_F("unable to read secret file", "file=%s err=%s",
			      log_q(b->secret_file), log_q(strerror(errno)));
			rc = EX_NOINPUT;
			goto out;
		}
	}
	b->conns = calloc(b->nconns, sizeof(*b->conns));
	b->pubs = calloc(b->npubs ? b->npubs : 1, sizeof(*b->pubs));
	b->rooms = calloc(b->nrooms, sizeof(*b->rooms));
	b->pad = malloc(b->size + 1);
	if (!b->conns || !b->pubs || !b->rooms || !b->pad ||
	    timeq_init(&b->due, b->nconns) < 0) {
		LOG_F("out of memory", "conns=%" PRIu32, b->nconns);
		rc = EX_OSERR;
		goto out;
	}
	memset(b->pad, 'x', b->size);
	for (i = 0; i < b->nconns; i++) {
		b->conns[i].room = i % b->nrooms;
		b->conns[i].pub = i < b->npubs ? (int32_t)i : -1;
	}
	if (bench_pub_init(b) < 0) {
		rc = EX_OSERR;
		goto out;
	}
	backoff_init(&b->bo, BENCH_BACKOFF_BASE_MS, b->backoff_max_ms,
		     (uint64_t)getpid() ^ (uint64_t)clock_mono_us());
	hist_init(&b->lat);
	hist_init(&b->ack_lat);
	hist_init(&b->resume);
	B = b;
	rc = bench_run(b);
out:
	bench_pub_free(b);
	timeq_free(&b->due);
	if (b->conns)
		for (i = 0; i < b->nconns; i++)
			free(b->conns[i].holes);
	free(b->conns);
	free(b->pubs);
	free(b->rooms);
	free(b->pad);
	free(b->secret);
	free(b);
	return rc;
}
