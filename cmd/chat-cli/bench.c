/*
 * bench: `chat-cli bench` opens many WebSocket connections from one process
 * and one lws loop, spread round-robin over the gateway URLs and the rooms,
 * joins each to its room, and has the first P of them publish at a fixed
 * aggregate rate. Every subscriber checks every message it gets: latency
 * (now minus the send time the body carries) into a log-linear histogram,
 * and the room's seq, which must grow by exactly one: a jump counts the
 * messages skipped as lost, a repeat counts as a duplicate. At the end it
 * waits (bounded) for the last acks and deliveries, and reports.
 *
 * --hold only opens and joins, prints "ready N", and holds the connections
 * (to measure a gateway's memory per idle connection).
 *
 * Per connection the bench keeps one struct bconn (about 80 bytes) besides
 * lws' own wsi; frames are parsed by skim.c, not built as JSON trees.
 * Handshakes are paced (at most --handshakes in flight) so a gateway's
 * accept backlog is never flooded.
 */
#include <errno.h>
#include <getopt.h>
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

#include "buf.h"
#include "cli.h"
#include "file.h"
#include "clock.h"
#include "hist.h"
#include "jwt.h"
#include "log.h"
#include "opt.h"
#include "sig.h"
#include "skim.h"

#define BENCH_URLS_MAX 64
#define BENCH_RX_CHUNK 1024          /* lws rx buffer per connection */
#define BENCH_FRAME_MAX (1 << 20)    /* longer frames are skipped */
#define BENCH_TICK_US 1000           /* publish scheduler period */
#define BENCH_CHECK_US 50000         /* drain progress check period */
#define BENCH_CODES 8                /* distinct error / close codes kept */

enum bconn_state {
	BC_IDLE = 0,     /* not started */
	BC_CONNECTING,   /* handshake in flight */
	BC_JOINING,      /* open, join sent or to send */
	BC_JOINED,       /* joined: counts as a subscriber */
	BC_FAILED,       /* never opened */
	BC_CLOSED,       /* closed after opening */
};

/* One connection: kept small, 10,000+ of them live in one array. */
struct bconn {
	struct lws *wsi;         /* NULL unless connecting or open */
	struct buf *frag;        /* frame being reassembled, usually NULL */
	uint64_t last_seq;       /* last seq of the room seen (join base) */
	uint64_t received;       /* messages received, duplicates included */
	uint64_t dups;           /* messages with seq <= last_seq */
	uint64_t gaps;           /* messages skipped by seq jumps */
	uint64_t acked_base;     /* room's acked count when it joined */
	uint64_t acked_end;      /* room's acked count when it closed */
	uint32_t room;           /* room index */
	int32_t pub;             /* publisher index, or -1 */
	uint16_t close_code;     /* code of the server's close frame */
	uint8_t state;           /* enum bconn_state */
	uint8_t want_join : 1;   /* join to write */
	uint8_t want_close : 1;  /* close to write */
	uint8_t frag_skip : 1;   /* current frame over BENCH_FRAME_MAX */
	uint8_t was_joined : 1;  /* joined its room at some point */
	uint8_t dropped : 1;     /* closed by the server during the run */
};

/* One publisher: a connection that also publishes. */
struct bpub {
	struct bconn *c;         /* its connection */
	uint64_t due;            /* messages the schedule gave it */
	uint64_t sent;           /* messages written */
	uint64_t acked;          /* acks received */
	uint64_t errors;         /* error frames for its publishes */
	int64_t *sent_at;        /* send time per ref % window, for ack latency */
};

struct broom {
	uint64_t acked;          /* publishes into the room acked */
	uint64_t max_seq;        /* highest seq any subscriber saw */
	uint32_t members;        /* joined connections, open */
};

struct bcount {
	char name[32];           /* error code or close code */
	uint64_t n;              /* how many */
};

enum bench_phase { PH_SETUP, PH_HOLD, PH_RUN, PH_DRAIN, PH_CLOSE, PH_DONE };

struct bench {
	uv_loop_t loop;           /* the event loop */
	/* options */
	struct cli_url urls[BENCH_URLS_MAX]; /* gateways */
	int nurls;                /* how many */
	uint32_t nconns;          /* --conns */
	uint32_t nrooms;          /* --rooms */
	uint32_t npubs;           /* --publishers */
	double rate;              /* --rate, messages/s, all publishers */
	uint64_t duration_ms;     /* --duration */
	bool duration_set;        /* --duration given (for --hold) */
	uint64_t warmup_ms;       /* --warmup */
	uint64_t size;            /* --size: body bytes */
	uint64_t timeout_ms;      /* --timeout: handshake, setup stall, drain */
	uint64_t window;          /* --window: unacked per publisher */
	uint32_t handshakes;      /* --handshakes: in flight at most */
	bool json;                /* --json */
	bool hold;                /* --hold */
	const char *secret_file;  /* --secret-file: tokens instead of ?user */
	char *secret;             /* its contents */
	size_t secretlen;         /* its length */

	/* state */
	struct lws_context *ctx;  /* the one loop */
	struct bconn *conns;      /* nconns connections */
	struct bpub *pubs;        /* npubs publishers */
	struct broom *rooms;      /* nrooms rooms */
	enum bench_phase phase;   /* where the run is */
	uint32_t next_conn;       /* next connection to start */
	uint32_t in_flight;       /* handshakes in flight */
	uint32_t opened;          /* connections that opened */
	uint32_t failed;          /* connections that never opened */
	uint32_t joined;          /* connections that joined */
	uint32_t join_failed;     /* joins answered by an error */
	uint32_t dropped;         /* closed by the server or lost during the run */
	uint32_t settled;         /* joined, refused, failed or closed first */
	uint32_t open_now;        /* connections open now */
	int64_t t_setup;          /* mono us: bench start */
	int64_t t_ready;          /* mono us: all joined */
	int64_t t_start;          /* mono us: publishing starts */
	int64_t t_measure;        /* mono us: warmup over */
	int64_t t_end;            /* mono us: publishing stops */
	int64_t t_drained;        /* mono us: drain over */
	int64_t t_progress;       /* mono us: last setup/drain progress */
	uint64_t scheduled;       /* messages handed to publishers */
	uint64_t planned;         /* messages the run will publish */
	uint32_t rr;              /* next publisher for the schedule */
	uint64_t published;       /* frames written */
	uint64_t unsent;          /* scheduled for a publisher that closed */
	uint64_t unacked_lost;    /* sent by a publisher that closed, unacked */
	uint64_t acked;           /* acks */
	uint64_t pub_errors;      /* error frames for publishes */
	uint64_t skipped_window;  /* schedule slots delayed by the window */
	uint64_t measured;        /* deliveries of measured messages */
	uint64_t frames_other;    /* presence, typing, ... */
	uint64_t frames_bad;      /* frames we could not read */
	struct bcount errors[BENCH_CODES]; /* error frames by code */
	struct bcount closes[BENCH_CODES]; /* server closes by code */
	struct hist lat;          /* delivery latency, us */
	struct hist ack_lat;      /* publish to ack, us */
	char *pad;                /* body padding */
	int signals;              /* TERM/INT seen */
	struct lws *sig_wsi;      /* the signal self-pipe */
	int rc;                   /* exit status */
	lws_sorted_usec_list_t sul_tick;   /* scheduler / phase clock */
};

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
static void bench_phase_close(struct bench *b);

/* Start handshakes up to the in-flight limit. */
static void bench_connect_next(struct bench *b)
{
	struct lws_client_connect_info ci;
	struct cli_url *u;
	struct bconn *c;
	char path[CLI_PATH_MAX + 64], user[32];
	const char *cred;
	char *tok = NULL;
	uint32_t i;

	while (b->phase == PH_SETUP && b->next_conn < b->nconns &&
	       b->in_flight < b->handshakes) {
		i = b->next_conn++;
		c = &b->conns[i];
		u = &b->urls[i % (uint32_t)b->nurls];
		snprintf(user, sizeof(user), "bench-%" PRIu32, i);
		cred = user;
		if (b->secret) {
			tok = jwt_sign(user, 0, NULL, b->secret, b->secretlen);
			cred = tok ? tok : "";
		}
		{
			struct cli_url tmp = *u;

			if (cli_url_add_query(&tmp, b->secret ? "token" : "user",
					      cred) < 0)
				tmp.path[0] = '\0';
			snprintf(path, sizeof(path), "%s", tmp.path);
		}
		free(tok);
		tok = NULL;
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
			c->state = BC_FAILED;
			c->wsi = NULL;
			b->in_flight--;
			b->failed++;
			b->settled++;
			if (b->failed == 1)
				LOG_W("unable to connect", "url=%s", log_q(u->text));
		}
	}
	bench_settle_check(b);
}

static void bench_write_join(struct bench *b, struct bconn *c)
{
	unsigned char buf[LWS_PRE + 128];
	int n;

	n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
		     "{\"type\":\"join\",\"room\":\"bench-%" PRIu32 "\"}", c->room);
	lws_write(c->wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT);
}

/* Write one publish of publisher p; false when the window is full. */
static bool bench_write_publish(struct bench *b, struct bpub *p)
{
	size_t cap = LWS_PRE + 256 + b->size;
	unsigned char stackbuf[LWS_PRE + 1024], *buf = stackbuf;
	uint64_t n = p->sent + 1;
	size_t have, padn;
	int64_t now;
	int len, head;

	if (p->sent - p->acked - p->errors >= b->window)
		return false;
	if (cap > sizeof(stackbuf)) {
		buf = malloc(cap);
		if (!buf)
			return false;
	}
	now = clock_mono_us();
	head = snprintf((char *)buf + LWS_PRE, cap - LWS_PRE,
			"{\"type\":\"publish\",\"room\":\"bench-%" PRIu32 "\","
			"\"ref\":\"%" PRIu64 "\",\"body\":", p->c->room, n);
	len = head + snprintf((char *)buf + LWS_PRE + head, cap - LWS_PRE - head,
			      "{\"t\":%" PRId64 ",\"p\":%ld,\"n\":%" PRIu64
			      ",\"x\":\"", now, (long)(p - b->pubs), n);
	/* Pad the body {"t":..,"p":..,"n":..,"x":"..."} to --size bytes. */
	have = (size_t)(len - head) + 2;
	padn = b->size > have ? b->size - have : 0;
	memcpy(buf + LWS_PRE + len, b->pad, padn);
	len += (int)padn;
	memcpy(buf + LWS_PRE + len, "\"}}", 3);
	len += 3;
	if (lws_write(p->c->wsi, buf + LWS_PRE, (size_t)len, LWS_WRITE_TEXT) <
	    len) {
		if (buf != stackbuf)
			free(buf);
		return false;
	}
	if (buf != stackbuf)
		free(buf);
	p->sent_at[n % b->window] = now;
	p->sent++;
	b->published++;
	return true;
}

static void bench_message(struct bench *b, struct bconn *c, const char *p,
			  size_t len, struct skim_field *top)
{
	struct skim_field body[1] = { { .name = "t" } };
	int64_t seq, t, now;
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
	c->gaps += (uint64_t)seq - c->last_seq - 1;
	c->last_seq = (uint64_t)seq;
	if ((uint64_t)seq > r->max_seq)
		r->max_seq = (uint64_t)seq;
	if (top[2].v && skim_object(top[2].v, top[2].vlen, body, 1) == 0 &&
	    skim_int(&body[0], &t) && t >= b->t_measure && t < b->t_end) {
		now = clock_mono_us();
		hist_add(&b->lat, (uint64_t)(now > t ? now - t : 0));
		b->measured++;
	}
}

static void bench_ack(struct bench *b, struct bconn *c, struct skim_field *ref)
{
	struct bpub *p;
	int64_t n;

	if (c->pub < 0 || !skim_int(ref, &n) || n < 1)
		return;
	p = &b->pubs[c->pub];
	if ((uint64_t)n > p->sent)
		return;
	p->acked++;
	b->acked++;
	b->rooms[c->room].acked++;
	if ((uint64_t)n + b->window > p->sent) {
		int64_t now = clock_mono_us(), at = p->sent_at[(uint64_t)n % b->window];

		if (at >= b->t_measure && at < b->t_end)
			hist_add(&b->ack_lat, (uint64_t)(now - at));
	}
	if (p->due > p->sent && c->wsi)
		lws_callback_on_writable(c->wsi);
}

/* The rare frames: joined and error, with jansson. */
static void bench_frame_slow(struct bench *b, struct bconn *c, const char *p,
			     size_t len, const char *type)
{
	json_t *f = json_loadb(p, len, 0, NULL);
	const char *code;

	if (!f) {
		b->frames_bad++;
		return;
	}
	if (!strcmp(type, "joined") && c->state == BC_JOINING) {
		c->last_seq = (uint64_t)json_integer_value(json_object_get(f, "seq"));
		c->acked_base = b->rooms[c->room].acked;
		c->state = BC_JOINED;
		c->was_joined = 1;
		b->rooms[c->room].members++;
		b->joined++;
		b->t_progress = clock_mono_us();
		if (c->last_seq > b->rooms[c->room].max_seq)
			b->rooms[c->room].max_seq = c->last_seq;
		b->settled++;
		bench_settle_check(b);
	} else if (!strcmp(type, "error")) {
		code = json_string_value(json_object_get(f, "code"));
		bench_count(b->errors, code ? code : "?");
		if (c->state == BC_JOINING) {
			LOG_W("join refused", "room=%" PRIu32 " code=%s", c->room,
			      log_q(code));
			c->state = BC_JOINED; /* open but not a subscriber */
			c->acked_base = UINT64_MAX;
			c->was_joined = 0;
			b->join_failed++;
			b->settled++;
			bench_settle_check(b);
		} else if (c->pub >= 0) {
			b->pubs[c->pub].errors++;
			b->pub_errors++;
			if (b->pub_errors == 1)
				LOG_W("publish refused", "code=%s message=%s",
				      log_q(code), log_q(json_string_value(
					      json_object_get(f, "message"))));
		}
	} else {
		b->frames_other++;
	}
	json_decref(f);
}

static void bench_frame(struct bench *b, struct bconn *c, const char *p,
			size_t len)
{
	struct skim_field top[4] = {
		{ .name = "type" }, { .name = "seq" }, { .name = "body" },
		{ .name = "ref" },
	};
	char type[16];

	if (skim_object(p, len, top, 4) < 0 || !top[0].v || top[0].vlen < 2 ||
	    top[0].vlen > sizeof(type) + 1) {
		if (top[0].v && top[0].vlen > sizeof(type) + 1) {
			b->frames_other++;
			return;
		}
		b->frames_bad++;
		return;
	}
	if (skim_str_is(&top[0], "message")) {
		bench_message(b, c, p, len, top);
		return;
	}
	if (skim_str_is(&top[0], "ack")) {
		bench_ack(b, c, &top[3]);
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
	char code[16];

	if (c->state == BC_JOINED && c->acked_base != UINT64_MAX) {
		c->acked_end = b->rooms[c->room].acked;
		b->rooms[c->room].members--;
	}
	if (b->phase != PH_CLOSE && b->phase != PH_DONE) {
		c->dropped = 1;
		b->dropped++;
		snprintf(code, sizeof(code), "%u", c->close_code);
		bench_count(b->closes, c->close_code ? code : "lost");
		if (b->dropped <= 3 || log_enabled(LOG_INFO))
			LOG_W("connection closed during the run", "conn=%ld code=%u",
			      (long)(c - b->conns), c->close_code);
		if (c->state == BC_JOINING) {
			b->settled++; /* closed before it joined */
			bench_settle_check(b);
		}
	}
	if (c->pub >= 0) {
		struct bpub *p = &b->pubs[c->pub];

		b->unsent += p->due - p->sent;
		p->due = p->sent;
		b->unacked_lost += p->sent - p->acked - p->errors;
	}
	c->state = BC_CLOSED;
	c->wsi = NULL;
	b->open_now--;
	if (c->frag) {
		buf_release(c->frag);
		free(c->frag);
		c->frag = NULL;
	}
	if (b->phase == PH_CLOSE && b->open_now == 0)
		bench_done(b);
}

static int bench_ws_cb(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	struct bench *b = B;
	struct bconn *c = lws_get_opaque_user_data(wsi);
	struct bpub *p;

	if (!c)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c->state != BC_CONNECTING)
			break;
		c->state = BC_FAILED;
		c->wsi = NULL;
		b->in_flight--;
		b->failed++;
		b->settled++;
		b->t_progress = clock_mono_us();
		if (b->failed <= 3 || log_enabled(LOG_INFO)) {
			unsigned int st = in && !strcmp(in, "HS: ws upgrade response not 101") ?
					  lws_http_client_http_response(wsi) : 0;

			LOG_W("unable to connect", "conn=%ld err=%s status=%u",
			      (long)(c - b->conns), log_q(in ? (char *)in : "?"), st);
		}
		bench_connect_next(b);
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->state = BC_JOINING;
		c->wsi = wsi;
		c->want_join = 1;
		b->in_flight--;
		b->opened++;
		b->open_now++;
		b->t_progress = clock_mono_us();
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
			if (c->pub >= 0 && b->pubs[c->pub].due > b->pubs[c->pub].sent)
				lws_callback_on_writable(wsi);
			break;
		}
		if (c->pub < 0 || (b->phase != PH_RUN && b->phase != PH_DRAIN))
			break;
		p = &b->pubs[c->pub];
		if (p->due > p->sent && bench_write_publish(b, p) &&
		    p->due > p->sent)
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
		      " join_failed=%" PRIu32, b->failed, b->join_failed);
		b->rc = EX_UNAVAILABLE;
		bench_phase_close(b);
		return;
	}
	if (b->hold) {
		b->phase = PH_HOLD;
		printf("ready %" PRIu32 "\n", b->joined);
		fflush(stdout);
		if (b->failed || b->join_failed)
			LOG_W("some connections did not join", "failed=%" PRIu32
			      " join_failed=%" PRIu32, b->failed, b->join_failed);
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

/* Whether every acked message reached every subscriber. */
static bool bench_drained(struct bench *b)
{
	uint32_t i;

	if (b->published + b->unsent < b->scheduled ||
	    b->acked + b->pub_errors + b->unacked_lost < b->published)
		return false;
	for (i = 0; i < b->nconns; i++) {
		struct bconn *c = &b->conns[i];

		if (c->state == BC_JOINED && c->acked_base != UINT64_MAX &&
		    c->received - c->dups < b->rooms[c->room].acked - c->acked_base)
			return false;
	}
	return true;
}

static void bench_tick(lws_sorted_usec_list_t *sul)
{
	struct bench *b = lws_container_of(sul, struct bench, sul_tick);
	int64_t now = clock_mono_us();
	uint64_t due;

	switch (b->phase) {
	case PH_SETUP:
		if (now - b->t_progress > (int64_t)b->timeout_ms * 1000) {
			LOG_W("setup stalled: going on with the joined connections",
			      "joined=%" PRIu32 " pending=%" PRIu32, b->joined,
			      b->nconns - b->settled);
			bench_phase_setup_done(b);
			return;
		}
		bench_schedule_tick(b, BENCH_CHECK_US);
		return;
	case PH_HOLD:
		if (now >= b->t_end)
			bench_phase_close(b);
		else
			bench_schedule_tick(b, BENCH_CHECK_US);
		return;
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
			if (!p->c->wsi) {
				b->unsent++;
				continue;
			}
			p->due++;
			lws_callback_on_writable(p->c->wsi);
		}
		if (now >= b->t_end) {
			b->phase = PH_DRAIN;
			b->t_progress = now;
			LOG_I("publishing done, draining", "published=%" PRIu64
			      " acked=%" PRIu64, b->published, b->acked);
			bench_schedule_tick(b, BENCH_CHECK_US);
			return;
		}
		bench_schedule_tick(b, BENCH_TICK_US);
		return;
	case PH_DRAIN:
		if (bench_drained(b)) {
			b->t_drained = now;
			bench_phase_close(b);
			return;
		}
		if (now - b->t_progress > (int64_t)b->timeout_ms * 1000) {
			LOG_W("drain timed out: reporting what arrived",
			      "unacked=%" PRIu64,
			      b->published - b->acked - b->pub_errors);
			b->t_drained = now;
			bench_phase_close(b);
			return;
		}
		bench_schedule_tick(b, BENCH_CHECK_US);
		return;
	case PH_CLOSE:
		if (b->open_now == 0 || now - b->t_progress > 3 * 1000000) {
			bench_done(b);
			return;
		}
		bench_schedule_tick(b, BENCH_CHECK_US);
		return;
	case PH_DONE:
		return;
	}
}

struct bench_totals {
	uint64_t expected;        /* deliveries that should have happened */
	uint64_t received;        /* distinct deliveries */
	uint64_t dups;            /* duplicates */
	uint64_t lost;            /* missing: gaps and tail */
	uint64_t gaps;            /* of which seq jumps */
};

static void bench_totals(struct bench *b, struct bench_totals *t)
{
	uint32_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < b->nconns; i++) {
		struct bconn *c = &b->conns[i];
		uint64_t exp, uniq, miss;

		if (!c->was_joined)
			continue;
		if (c->state == BC_JOINED)
			c->acked_end = b->rooms[c->room].acked;
		exp = c->acked_end - c->acked_base;
		uniq = c->received - c->dups;
		/* Missing: what seq skipped, plus the room's last messages it
		 * never saw; or the shortfall against the acks, if larger. */
		miss = c->gaps;
		if (!c->dropped && b->rooms[c->room].max_seq > c->last_seq)
			miss += b->rooms[c->room].max_seq - c->last_seq;
		if (exp > uniq && exp - uniq > miss)
			miss = exp - uniq;
		t->expected += exp;
		t->received += uniq;
		t->dups += c->dups;
		t->gaps += c->gaps;
		t->lost += miss;
	}
}

static void bench_report(struct bench *b)
{
	struct bench_totals t;
	double secs = (double)b->duration_ms / 1000.0;
	double run_s;
	json_t *o, *e;
	char *s;
	int i;

	bench_totals(b, &t);
	if (b->t_end > b->t_measure && b->t_end != INT64_MAX)
		secs = (double)(b->t_end - b->t_measure) / 1e6;
	run_s = b->t_end > b->t_start ? (double)(b->t_end - b->t_start) / 1e6 : 0;
	if (b->json) {
		o = json_pack("{s:I,s:I,s:I,s:f,s:f,s:f,s:I}",
			      "conns", (json_int_t)b->nconns,
			      "rooms", (json_int_t)b->nrooms,
			      "publishers", (json_int_t)b->npubs,
			      "rate", b->rate,
			      "duration_s", secs,
			      "warmup_s", (double)b->warmup_ms / 1000.0,
			      "size", (json_int_t)b->size);
		json_object_set_new(o, "connections", json_pack(
			"{s:I,s:I,s:I,s:I,s:f,s:f}",
			"opened", (json_int_t)b->opened,
			"failed", (json_int_t)b->failed,
			"join_failed", (json_int_t)b->join_failed,
			"dropped", (json_int_t)b->dropped,
			"setup_s", (double)(b->t_ready - b->t_setup) / 1e6,
			"drain_s", b->t_drained > b->t_end ?
				   (double)(b->t_drained - b->t_end) / 1e6 : 0.0));
		json_object_set_new(o, "messages", json_pack(
			"{s:I,s:I,s:I,s:I,s:f}",
			"planned", (json_int_t)b->planned,
			"published", (json_int_t)b->published,
			"acked", (json_int_t)b->acked,
			"refused", (json_int_t)b->pub_errors,
			"publish_rate", run_s > 0 ? (double)b->published / run_s : 0.0));
		json_object_set_new(o, "deliveries", json_pack(
			"{s:I,s:I,s:I,s:I,s:I,s:f}",
			"expected", (json_int_t)t.expected,
			"received", (json_int_t)t.received,
			"lost", (json_int_t)t.lost,
			"gaps", (json_int_t)t.gaps,
			"duplicates", (json_int_t)t.dups,
			"per_s", secs > 0 ? (double)b->measured / secs : 0.0));
		json_object_set_new(o, "latency_us", json_pack(
			"{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I}",
			"min", (json_int_t)(b->lat.count ? b->lat.min : 0),
			"p50", (json_int_t)hist_quantile(&b->lat, 0.50),
			"p90", (json_int_t)hist_quantile(&b->lat, 0.90),
			"p99", (json_int_t)hist_quantile(&b->lat, 0.99),
			"p999", (json_int_t)hist_quantile(&b->lat, 0.999),
			"max", (json_int_t)b->lat.max,
			"mean", b->lat.count ? b->lat.sum / (double)b->lat.count : 0.0,
			"count", (json_int_t)b->lat.count));
		json_object_set_new(o, "ack_latency_us", json_pack(
			"{s:I,s:I,s:I,s:I,s:I}",
			"p50", (json_int_t)hist_quantile(&b->ack_lat, 0.50),
			"p90", (json_int_t)hist_quantile(&b->ack_lat, 0.90),
			"p99", (json_int_t)hist_quantile(&b->ack_lat, 0.99),
			"max", (json_int_t)b->ack_lat.max,
			"count", (json_int_t)b->ack_lat.count));
		e = json_object();
		for (i = 0; i < BENCH_CODES && b->errors[i].n; i++)
			json_object_set_new(e, b->errors[i].name,
					    json_integer((json_int_t)b->errors[i].n));
		json_object_set_new(o, "errors", e);
		e = json_object();
		for (i = 0; i < BENCH_CODES && b->closes[i].n; i++)
			json_object_set_new(e, b->closes[i].name,
					    json_integer((json_int_t)b->closes[i].n));
		json_object_set_new(o, "closes", e);
		json_object_set_new(o, "frames_other",
				    json_integer((json_int_t)b->frames_other));
		json_object_set_new(o, "frames_bad",
				    json_integer((json_int_t)b->frames_bad));
		s = json_dumps(o, JSON_COMPACT);
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
		return;
	}
	printf("connections  %" PRIu32 " opened, %" PRIu32 " failed, %" PRIu32
	       " join refused, %" PRIu32 " dropped (setup %.2f s)\n",
	       b->opened, b->failed, b->join_failed, b->dropped,
	       (double)(b->t_ready - b->t_setup) / 1e6);
	printf("messages     %" PRIu64 " published of %" PRIu64 " planned"
	       " (%.0f/s), %" PRIu64 " acked, %" PRIu64 " refused\n",
	       b->published, b->planned,
	       run_s > 0 ? (double)b->published / run_s : 0.0, b->acked,
	       b->pub_errors);
	printf("deliveries   %" PRIu64 " expected, %" PRIu64 " received, %" PRIu64
	       " lost, %" PRIu64 " duplicates\n", t.expected, t.received,
	       t.lost, t.dups);
	printf("throughput   %.0f deliveries/s over %.2f s\n",
	       secs > 0 ? (double)b->measured / secs : 0.0, secs);
	printf("latency      p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms,"
	       " max %.3f ms (%" PRIu64 " samples)\n",
	       hist_quantile(&b->lat, 0.50) / 1e3,
	       hist_quantile(&b->lat, 0.90) / 1e3,
	       hist_quantile(&b->lat, 0.99) / 1e3,
	       hist_quantile(&b->lat, 0.999) / 1e3, b->lat.max / 1e3,
	       b->lat.count);
	printf("ack latency  p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
	       hist_quantile(&b->ack_lat, 0.50) / 1e3,
	       hist_quantile(&b->ack_lat, 0.99) / 1e3, b->ack_lat.max / 1e3);
	for (i = 0; i < BENCH_CODES && b->errors[i].n; i++)
		printf("errors       %s: %" PRIu64 "\n", b->errors[i].name,
		       b->errors[i].n);
	for (i = 0; i < BENCH_CODES && b->closes[i].n; i++)
		printf("closes       %s: %" PRIu64 "\n", b->closes[i].name,
		       b->closes[i].n);
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

static const char bench_help[] =
	"Open N connections over the URLs (round-robin) and K rooms, join,\n"
	"publish from P of them at a fixed total rate, check every delivery\n"
	"(latency, seq gaps, duplicates) and report, as text or one JSON object.\n"
	"\n"
	"  --conns N           connections (default 100); users bench-0 ...\n"
	"  --rooms K           rooms bench-0 ... bench-K-1 (default 1)\n"
	"  --publishers P      connections that publish, the first P (default 1)\n"
	"  --rate R            messages per second, all publishers (default 100)\n"
	"  --duration D        measured publishing time (default 10s)\n"
	"  --warmup D          publishing before measuring starts (default 1s)\n"
	"  --size BYTES        body size of each message (default 64)\n"
	"  --window N          unacked publishes per publisher (default 1000)\n"
	"  --handshakes N      handshakes in flight at most (default 200)\n"
	"  --timeout D         handshake timeout, setup stall and drain limit\n"
	"                      (default 10s)\n"
	"  --secret-file F     connect with tokens signed with F (--auth jwt)\n"
	"                      instead of ?user=\n"
	"  --json              report as one JSON object\n"
	"  --hold              open and join only, print \"ready N\", hold until\n"
	"                      SIGINT/SIGTERM (or --duration if given)\n"
	"  -v N                log level 0..3 on stderr (default 1)\n";

int cli_bench_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conns", required_argument, NULL, 'c' },
		{ "rooms", required_argument, NULL, 'k' },
		{ "publishers", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "size", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' },
		{ "handshakes", required_argument, NULL, 'H' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "hold", no_argument, NULL, 'h' },
		{ "verbose", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, '?' + 256 },
		{ NULL, 0, NULL, 0 },
	};
	struct bench *b;
	char err[256], *list = NULL, *tok, *save;
	uint64_t v;
	uint32_t i;
	int c, rc;

	b = calloc(1, sizeof(*b));
	if (!b)
		return EX_OSERR;
	b->nconns = 100;
	b->nrooms = 1;
	b->npubs = 1;
	b->rate = 100;
	b->duration_ms = 10000;
	b->warmup_ms = 1000;
	b->size = 64;
	b->timeout_ms = 10000;
	b->window = 1000;
	b->handshakes = 200;
	opterr = 0;
#define BENCH_UINT(field, min, max, name) do { \
		if (opt_uint(optarg, min, max, &v, err, sizeof(err)) < 0) { \
			rc = cli_usage_error("bench", "%s: %s", name, err); \
			goto out; \
		} \
		field = v; \
	} while (0)
	while ((c = getopt_long(argc, argv, ":v:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': BENCH_UINT(b->nconns, 1, 1000000, "--conns"); break;
		case 'k': BENCH_UINT(b->nrooms, 1, 1000000, "--rooms"); break;
		case 'p': BENCH_UINT(b->npubs, 0, 1000000, "--publishers"); break;
		case 'r': {
			char *end;

			errno = 0;
			b->rate = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(b->rate >= 0) ||
			    b->rate > 1e7) {
				rc = cli_usage_error("bench", "--rate: '%s' is not a"
						     " rate in 0..10000000", optarg);
				goto out;
			}
			break;
		}
		case 'd':
			if (opt_duration_ms(optarg, 1, 86400ULL * 1000,
					    &b->duration_ms, err, sizeof(err)) < 0) {
				rc = cli_usage_error("bench", "--duration: %s", err);
				goto out;
			}
			b->duration_set = true;
			break;
		case 'W':
			if (opt_duration_ms(optarg, 0, 86400ULL * 1000,
					    &b->warmup_ms, err, sizeof(err)) < 0) {
				rc = cli_usage_error("bench", "--warmup: %s", err);
				goto out;
			}
			break;
		case 'o':
			if (opt_duration_ms(optarg, 1, 86400ULL * 1000,
					    &b->timeout_ms, err, sizeof(err)) < 0) {
				rc = cli_usage_error("bench", "--timeout: %s", err);
				goto out;
			}
			break;
		case 's':
			if (opt_size(optarg, 0, 1 << 20, &b->size, err,
				     sizeof(err)) < 0) {
				rc = cli_usage_error("bench", "--size: %s", err);
				goto out;
			}
			break;
		case 'w': BENCH_UINT(b->window, 1, 1000000, "--window"); break;
		case 'H': BENCH_UINT(b->handshakes, 1, 100000, "--handshakes"); break;
		case 'S': b->secret_file = optarg; break;
		case 'j': b->json = true; break;
		case 'h': b->hold = true; break;
		case 'v':
			if (opt_uint(optarg, 0, 3, &v, err, sizeof(err)) < 0) {
				rc = cli_usage_error("bench", "-v: %s", err);
				goto out;
			}
			log_level = (int)v;
			break;
		case '?' + 256:
			fputs(cli_usage_bench, stdout);
			fputs("\n", stdout);
			fputs(bench_help, stdout);
			rc = 0;
			goto out;
		case ':':
			rc = cli_usage_error("bench", "option '%s' needs a value",
					     argv[optind - 1]);
			goto out;
		default:
			rc = cli_usage_error("bench", "unknown option '%s'",
					     argv[optind - 1]);
			goto out;
		}
	}
#undef BENCH_UINT
	if (optind >= argc) {
		rc = cli_usage_error("bench", "missing URL");
		goto out;
	}
	list = strdup(argv[optind++]);
	if (!list) {
		rc = EX_OSERR;
		goto out;
	}
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (b->nurls == BENCH_URLS_MAX) {
			rc = cli_usage_error("bench", "at most %d URLs", BENCH_URLS_MAX);
			goto out;
		}
		if (cli_url_parse(tok, &b->urls[b->nurls++], err, sizeof(err)) < 0) {
			rc = cli_usage_error("bench", "%s", err);
			goto out;
		}
	}
	if (b->nurls == 0) {
		rc = cli_usage_error("bench", "missing URL");
		goto out;
	}
	if (optind < argc) {
		rc = cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (b->npubs > b->nconns) {
		rc = cli_usage_error("bench", "--publishers (%" PRIu32 ") exceeds"
				     " --conns (%" PRIu32 ")", b->npubs, b->nconns);
		goto out;
	}
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
	if (!b->conns || !b->pubs || !b->rooms || !b->pad) {
		LOG_F("out of memory", "conns=%" PRIu32, b->nconns);
		rc = EX_OSERR;
		goto out;
	}
	memset(b->pad, 'x', b->size);
	for (i = 0; i < b->nconns; i++) {
		b->conns[i].room = i % b->nrooms;
		b->conns[i].pub = i < b->npubs ? (int32_t)i : -1;
	}
	for (i = 0; i < b->npubs; i++) {
		b->pubs[i].c = &b->conns[i];
		b->pubs[i].sent_at = calloc(b->window, sizeof(int64_t));
		if (!b->pubs[i].sent_at) {
			rc = EX_OSERR;
			goto out;
		}
	}
	hist_init(&b->lat);
	hist_init(&b->ack_lat);
	B = b;
	rc = bench_run(b);
out:
	if (b->pubs)
		for (i = 0; i < b->npubs; i++)
			free(b->pubs[i].sent_at);
	free(b->conns);
	free(b->pubs);
	free(b->rooms);
	free(b->pad);
	free(b->secret);
	free(list);
	free(b);
	return rc;
}
