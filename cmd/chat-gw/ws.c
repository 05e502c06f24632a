/*
 * ws: the libwebsockets side of chat-gw, protocol "chat.v1". It
 * authenticates the handshake, reassembles client frames (the per-connection
 * receive buffer is kept small to keep idle connections cheap, so larger
 * frames arrive in pieces), hands complete frames to the hub, and writes
 * queued frames out. Plain HTTP on the same port (/, /healthz, /metrics) is
 * in http.c.
 *
 * Writes coalesce: every frame in the queue already carries its WebSocket
 * header (frame.c), so the writer copies as many as fit into one buffer and
 * hands them to lws in a single write, which lws sends without adding a
 * header of its own (LWS_WRITE_HTTP on a ws connection is a raw write, and
 * lws keeps any unsent tail and sends it before the next WRITEABLE). Under
 * load one TCP segment then carries many frames instead of one each.
 *
 * Writes happen before the loop waits (after Redis's beforeSleep): a
 * connection that got frames during a turn goes on a dirty list, and a
 * libuv prepare handle writes each one's queue straight to its socket once
 * the turn's input is processed. Only when the kernel does not take it all
 * does lws watch the socket for POLLOUT (a WRITEABLE callback); so the
 * usual delivery costs one write, not an epoll_ctl before and after it.
 * Under load the flush waits while input is still ready, up to
 * FLUSH_DEFER_US: the messages of several reads then leave in one write per
 * connection instead of one write each (lws reads a connection at most
 * its small receive buffer at a time).
 */
#include <libwebsockets.h>
#include <sys/epoll.h>
#include <uv.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "gw.h"
#include "http.h"
#include "head.h"
#include "hub.h"
#include "listen.h"
#include "log.h"
#include "name.h"
#include "tls.h"
#include "ws.h"

#define WRITE_CHUNK (32 * 1024)

static unsigned char *wbuf;   /* shared write buffer, LWS_PRE + capacity */
static size_t wcap;           /* its capacity after LWS_PRE */
bool ws_stopping;             /* SIGTERM: refuse new connections */
static TAILQ_HEAD(, conn) dirty = TAILQ_HEAD_INITIALIZER(dirty);
			      /* connections with frames to write, oldest first */
static uv_prepare_t flusher;  /* writes them before the loop waits */
static uv_timer_t flush_timer;/* bounds how long a flush may wait */
static int64_t defer_since;   /* first turn the flush waited, 0: none */
static int64_t turn_last_us;  /* the last prepare, 0 before the first */
static uint64_t turn_idle_us; /* libuv's idle time then */
static int64_t turn_cpu_us;   /* this thread's CPU time then */
static struct conn *sweep_next;/* where the next ping sweep goes on */
static struct frame *ping_frame;/* the one ping every client is sent */

#define FLUSH_DEFER_US 1000   /* longest a flush waits for more input */
#define FLUSH_BATCH 1024      /* connections one flush writes, at most */

static void dirty_remove(struct conn *c)
{
	if (!c->dirty)
		return;
	TAILQ_REMOVE(&dirty, c, dirty_entry);
	c->dirty = false;
}

static void ws_wake(struct conn *c)
{
	if (!c->wsi || c->dirty)
		return;
	c->dirty = true;
	TAILQ_INSERT_TAIL(&dirty, c, dirty_entry);
}

static void ws_kill(struct conn *c)
{
	/* The peer may not read at all: the close frame goes out if it can,
	 * and the connection is dropped after a few seconds if it cannot. */
	if (c->wsi) {
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE, 5);
		lws_callback_on_writable(c->wsi);
	}
}

static int ws_write_queued(struct lws *wsi, struct conn *c);

/* A full queue: write it now, if the socket takes it (not while lws holds
 * an unsent tail: then the kernel is full too). */
static void ws_drain(struct conn *c)
{
	if (!c->wsi || !c->established || c->close_code || lws_partial_buffered(c->wsi))
		return;
	gw_m.early_writes.value++;
	if (ws_write_queued(c->wsi, c) < 0)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
}

void ws_setup(void)
{
	conn_hooks.wake = ws_wake;
	conn_hooks.kill = ws_kill;
	conn_hooks.drain = ws_drain;
}

static int ws_wbuf_reserve(size_t n)
{
	unsigned char *p;

	if (n <= wcap)
		return 0;
	p = realloc(wbuf, LWS_PRE + n);
	if (!p)
		return -1;
	wbuf = p;
	wcap = n;
	return 0;
}

/* Append a close frame (code and reason, at most 123 bytes) at wbuf+n.
 * Returns its length. */
static size_t ws_close_frame(size_t n, uint16_t code, const char *reason)
{
	unsigned char *p = wbuf + LWS_PRE + n;
	size_t rl = strlen(reason);

	if (rl > 123)
		rl = 123;
	p[0] = 0x88; /* FIN, close */
	p[1] = (unsigned char)(2 + rl);
	p[2] = (unsigned char)(code >> 8);
	p[3] = (unsigned char)code;
	memcpy(p + 4, reason, rl);
	return 4 + rl;
}

/* Write what is queued for c, up to a chunk, in one write. Returns 0, 1
 * when frames remain, -1 when the connection must close (its close frame,
 * if any, is out). */
static int ws_write_queued(struct lws *wsi, struct conn *c)
{
	size_t n = 0, nframes = 0;

	if (ws_wbuf_reserve(WRITE_CHUNK) < 0)
		return -1;
	while (c->qlen) {
		struct frame *f = c->q[c->qhead];

		/* (room is kept for a close frame after the last one) */
		if (n + f->len + 128 > wcap) {
			if (n)
				break;
			if (ws_wbuf_reserve(f->len + 128) < 0)
				return -1;
		}
		memcpy(wbuf + LWS_PRE + n, f->data, f->len);
		n += f->len;
		nframes++;
		frame_unref(conn_pop(c));
	}
	/* The close frame goes out in the same write, after what was queued.
	 * It is written like the data frames, raw: libwebsockets' own close
	 * path did not get it out before the socket closed when it runs on
	 * libuv. */
	if (c->close_code && !c->qlen && !c->close_sent)
		n += ws_close_frame(n, c->close_code, c->close_reason);
	if (n) {
		if (lws_write(wsi, wbuf + LWS_PRE, n, LWS_WRITE_HTTP) < (int)n)
			return -1;
		gw_m.writes.value++;
		gw_m.frames_out.value += nframes;
	}
	if (c->qlen)
		return 1;
	if (c->q && c->qcap > 64) {
		/* Drained after a burst: give the big ring back. */
		free(c->q);
		c->q = NULL;
		c->qcap = 0;
		c->qhead = 0;
	}
	if (c->close_code && ws_stopping && c->close_code == 1001) {
		/* Stopping: the 1001 is out; the socket stays open until the
		 * client's close comes back (or a short timeout). Closed at
		 * once, a publish the client sent meanwhile would be unread
		 * at close(), the kernel would answer with a reset, and a
		 * reset can take the close frame with it before the client
		 * reads it: it would see its connection lost, not 1001. */
		if (!c->close_sent) {
			c->close_sent = true;
			lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, 2);
		}
		return 0;
	}
	if (c->close_code)
		return -1; /* the close frame is out: lws closes the socket */
	return 0;
}

static int ws_writeable(struct lws *wsi, struct conn *c)
{
	int r = ws_write_queued(wsi, c);

	if (r == 1)
		lws_callback_on_writable(wsi);
	return r < 0 ? -1 : 0;
}

/* Before the loop waits: write each dirty connection's queue directly.
 * A connection whose socket is backed up (lws holds an unsent tail), or
 * that is closing (lws must close it from its own callback), waits for
 * its WRITEABLE callback instead. */
/* Whether the loop has an event ready right now (a peek: epoll is level
 * triggered, so nothing is taken from it). */
static bool input_ready(uv_loop_t *loop)
{
	struct epoll_event ev;

	return epoll_wait(uv_backend_fd(loop), &ev, 1, 0) > 0;
}

static void flush_timer_cb(uv_timer_t *t)
{
	(void)t; /* the turn it makes runs the flush */
}

/* Before each wait: how long the loop worked since the last one (the
 * time between two prepares less what libuv says it spent waiting), and
 * the CPU time that took (the same, less any time the process waited for
 * a CPU: what the gateway's own work costs, whatever else the machine
 * does). */
static void ws_turn_busy(uv_loop_t *loop)
{
	int64_t now = clock_mono_us(), cpu;
	uint64_t idle = uv_metrics_idle_time(loop) / 1000;
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	cpu = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (turn_last_us) {
		int64_t busy = now - turn_last_us - (int64_t)(idle - turn_idle_us);

		if (busy < 0)
			busy = 0;
		metric_observe(&gw_m.loop_busy, (double)busy / 1e6);
		metric_observe(&gw_m.loop_cpu, (double)(cpu - turn_cpu_us) / 1e6);
		if (cpu - turn_cpu_us > 50000)
			LOG_W("a long loop turn: clients waited", "ms=%lld cpu_ms=%lld "
			      "connections=%zu heads=%u", (long long)(busy / 1000),
			      (long long)((cpu - turn_cpu_us) / 1000), hub.nconns, head_count());
	}
	turn_last_us = now;
	turn_idle_us = idle;
	turn_cpu_us = cpu;
}

static void ws_flush(uv_prepare_t *h)
{
	struct conn *c;
	unsigned n = 0;

	ws_turn_busy(h->loop);
	if (TAILQ_EMPTY(&dirty))
		return;
	if (input_ready(h->loop)) {
		int64_t now = clock_mono_us();

		if (!defer_since) {
			defer_since = now;
			uv_timer_start(&flush_timer, flush_timer_cb, 1, 0);
		}
		if (now - defer_since < FLUSH_DEFER_US)
			return; /* read more first: it leaves in the same writes */
	}
	defer_since = 0;
	uv_timer_stop(&flush_timer);
	while ((c = TAILQ_FIRST(&dirty))) {
		/* A bounded batch per turn: on loopback a write costs the
		 * reader's TCP work too (~10 us), and 5,000 connections made
		 * dirty at once (a presence batch of big rooms) were a 55 ms
		 * turn that every client waited behind. The rest go in the
		 * next turns, oldest first, input read in between. */
		if (n++ == FLUSH_BATCH) {
			uv_timer_start(&flush_timer, flush_timer_cb, 0, 0);
			break;
		}
		dirty_remove(c);
		if (!c->wsi || !c->established)
			continue;
		if (c->close_code || lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			continue;
		}
		switch (ws_write_queued(c->wsi, c)) {
		case 1:
			lws_callback_on_writable(c->wsi);
			break;
		case -1:
			/* a write failed: let lws close it */
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE,
					LWS_TO_KILL_ASYNC);
			break;
		default:
			break;
		}
	}
}

int ws_start(void *loop)
{
	if (uv_prepare_init(loop, &flusher) < 0 ||
	    uv_prepare_start(&flusher, ws_flush) < 0 ||
	    uv_timer_init(loop, &flush_timer) < 0)
		return -1;
	return 0;
}

void ws_stop(void)
{
	frame_unref(ping_frame);
	ping_frame = NULL;
	uv_close((uv_handle_t *)&flusher, NULL);
	uv_close((uv_handle_t *)&flush_timer, NULL);
}

/* Authenticate the upgrade request. Returns 0, or an HTTP status with
 * *why. With --auth jwt and no token in the query string, the connection
 * is let in unauthenticated: its first frame must then be an auth frame
 * (hub.c), within --handshake-timeout (ws_sweep). */
static int ws_auth(struct lws *wsi, struct conn *c, const char **why)
{
	char arg[JWT_MAX + 16];
	const char *v;

	memset(c, 0, sizeof(*c));
	if (gw_cfg.auth == AUTH_NONE)
		return auth_user(c, lws_get_urlarg_by_name(wsi, "user=", arg, sizeof(arg)), why);
	v = lws_get_urlarg_by_name(wsi, "token=", arg, sizeof(arg));
	if (!v)
		return 0; /* the token comes in the first frame */
	return auth_token(c, v, strlen(v), why);
}

static const char *ws_status_text(int status)
{
	switch (status) {
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Refuse an upgrade request with an HTTP status and a one-line reason.
 * The response is written whole here, as HTTP/1.1: libwebsockets writes
 * the status line of a refused upgrade as HTTP/1.0, which common clients
 * (Python's websockets) report as an invalid response instead of the
 * status. */
static int ws_refuse(struct lws *wsi, int status, const char *why)
{
	char resp[LWS_PRE + 512];
	int n = snprintf(resp + LWS_PRE, sizeof(resp) - LWS_PRE,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n"
			 "Cache-Control: no-store\r\n\r\n%s\n",
			 status, ws_status_text(status), strlen(why) + 1, why);

	if (n < 0 || (size_t)n >= sizeof(resp) - LWS_PRE)
		return -1;
	lws_write(wsi, (unsigned char *)resp + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL);
	http_answered++;
	return -1;
}

static int ws_receive(struct lws *wsi, struct conn *c, const char *in, size_t len)
{
	size_t remain = lws_remaining_packet_payload(wsi);
	char *p;

	if (lws_frame_is_binary(wsi)) {
		gw_m.binary.value++;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				 (unsigned char *)"binary frames are not accepted", 30);
		return -1;
	}
	if (c->rxlen + len + remain > gw_cfg.max_frame) {
		gw_m.too_big.value++;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"frame too large", 15);
		return -1;
	}
	if (!c->rx && lws_is_final_fragment(wsi)) {
		hub_frame(&hub, c, in, len); /* the common case: no copy */
		return 0;
	}
	if (len == 0 && !lws_is_final_fragment(wsi))
		return 0; /* an empty fragment adds nothing */
	/* Reassembly grows to what this frame needs, never past
	 * --max-frame, and is freed as soon as the frame is whole. */
	if (c->rxlen + len + remain > c->rxcap) {
		size_t want = c->rxlen + len + remain;

		if (want < 2 * (size_t)c->rxcap)
			want = 2 * (size_t)c->rxcap;
		if (want > gw_cfg.max_frame)
			want = gw_cfg.max_frame;
		p = realloc(c->rx, want);
		if (!p)
			return -1;
		c->rx = p;
		c->rxcap = (uint32_t)want;
	}
	memcpy(c->rx + c->rxlen, in, len);
	c->rxlen += (uint32_t)len;
	if (!lws_is_final_fragment(wsi))
		return 0;
	p = c->rx;
	c->rx = NULL;
	c->rxcap = 0;
	hub_frame(&hub, c, p, c->rxlen);
	c->rxlen = 0;
	free(p);
	return 0;
}

/* Whether a close frame's payload (in, len) is one a client may send:
 * empty, or a code RFC 6455 section 7.4 allows on the wire. */
static bool ws_close_code_ok(const void *in, size_t len)
{
	const unsigned char *p = in;
	unsigned code;

	if (len == 0)
		return true;
	if (len < 2)
		return false;
	code = (unsigned)p[0] << 8 | p[1];
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

/* Whether origin (the Origin header, NULL when absent) may connect. */
static bool ws_origin_ok(const char *origin)
{
	size_t i;

	if (!gw_cfg.norigins || !origin)
		return true; /* no allowlist, or not a browser */
	for (i = 0; i < gw_cfg.norigins; i++)
		if (!strcmp(gw_cfg.origins[i], "*") || !strcasecmp(gw_cfg.origins[i], origin))
			return true;
	return false;
}

/* The upgrade request: refuse it with an HTTP status, or accept it with
 * c filled (user, claims, address). */
static int ws_filter(struct lws *wsi, struct conn *c)
{
	char tmp[512];
	const char *why = "refused";
	int st;

	if (ws_stopping) {
		gw_m.refused_full.value++;
		return ws_refuse(wsi, 503, "shutting down");
	}
	if (lws_hdr_copy(wsi, tmp, sizeof(tmp), WSI_TOKEN_VERSION) <= 0 ||
	    strcmp(tmp, "13")) {
		gw_m.refused_auth.value++;
		return ws_refuse(wsi, 426, "Sec-WebSocket-Version must be 13");
	}
	if (!ws_origin_ok(lws_hdr_copy(wsi, tmp, sizeof(tmp), WSI_TOKEN_ORIGIN) > 0 ?
			  tmp : NULL)) {
		gw_m.refused_origin.value++;
		LOG_I("refused an origin", "origin=%s", log_q(tmp));
		return ws_refuse(wsi, 403, "this origin may not connect");
	}
	if (hub.nconns >= gw_cfg.max_conns) {
		gw_m.refused_full.value++;
		return ws_refuse(wsi, 503, "too many connections; try again later");
	}
	st = ws_auth(wsi, c, &why);
	if (st) {
		gw_m.refused_auth.value++;
		LOG_I("refused connection", "status=%d reason=%s", st, log_q(why));
		conn_release(c);
		return ws_refuse(wsi, st, why);
	}
	lws_get_peer_simple(wsi, c->ip, sizeof(c->ip));
	if (!head_ip_conn_open(c->ip)) {
		gw_m.refused_per_ip.value++;
		conn_release(c);
		return ws_refuse(wsi, 503, "too many connections from this address");
	}
	c->ip_counted = true;
	return 0;
}

/* Every WS_SWEEP_MS: visit a share of the connections, so that each is
 * visited once per --ping-interval and the pings of connections that came
 * at the same time are spread over the interval (5,000 connections pinged
 * every second: 500 pings a tenth of a second, not 5,000 at once). A connection silent for
 * --ping-interval is pinged; one silent for --ping-timeout (no frame, no
 * pong) is dropped. Any frame from the client counts as a sign of life. */
void ws_sweep(void)
{
	int64_t now = clock_mono_us();
	uint64_t per_tick = hub.nconns * WS_SWEEP_MS / gw_cfg.ping_ms + 1, i;

	if (!ping_frame && !(ping_frame = frame_new_ping()))
		return;
	for (i = 0; i < per_tick && hub.nconns; i++) {
		struct conn *c = sweep_next ? sweep_next : LIST_FIRST(&hub.conns);
		int64_t idle = now - c->last_rx_us;

		sweep_next = LIST_NEXT(c, entry);
		if (c->close_code || !c->wsi || c->dropping)
			continue;
		if (!c->user && now - c->opened_us >= (int64_t)gw_cfg.handshake_timeout_ms * 1000) {
			conn_error(c, E_UNAUTHORIZED, NULL, "no auth frame in time");
			conn_close(c, 1008, "no token");
			continue;
		}
		if (idle >= (int64_t)gw_cfg.timeout_ms * 1000) {
			LOG_I("dropping a silent client", "user=%s silent_ms=%lld",
			      log_q(c->user), (long long)(idle / 1000));
			c->dropping = true;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE,
					LWS_TO_KILL_ASYNC);
		} else if (idle >= (int64_t)gw_cfg.ping_ms * 1000) {
			conn_push(c, ping_frame);
		}
	}
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len)
{
	struct conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		head_done(wsi); /* (TLS: the door stops timing it) */
		return http_serve(wsi, in, ws_stopping);

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		head_done(wsi);
		return ws_filter(wsi, c);

	case LWS_CALLBACK_ESTABLISHED:
		c->wsi = wsi;
		c->last_rx_us = c->opened_us = clock_mono_us();
		gw_m.accepted.value++;
		hub_conn_open(&hub, c);
		LOG_D("connected", "user=%s", log_q(c->user));
		break;

	case LWS_CALLBACK_RECEIVE:
		if (!c->established || c->close_code || c->peer_closed)
			return 0; /* nothing counts after a close */
		c->last_rx_us = clock_mono_us();
		return ws_receive(wsi, c, in, len);

	case LWS_CALLBACK_RECEIVE_PONG:
		if (c && c->established)
			c->last_rx_us = clock_mono_us();
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!c->established)
			return -1;
		return ws_writeable(wsi, c);

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c->close_sent)
			return -1; /* the answer to our 1001: close, no echo */
		c->peer_closed = true;
		if (!ws_close_code_ok(in, len)) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR,
					 (unsigned char *)"invalid close code", 18);
			return -1;
		}
		break;

	case LWS_CALLBACK_CLOSED:
		LOG_D("disconnected", "user=%s", log_q(c->user));
		dirty_remove(c);
		if (sweep_next == c)
			sweep_next = LIST_NEXT(c, entry);
		if (c->peer_closed)
			gw_m.client_closes.value++;
		else if (c->close_code == 1001)
			gw_m.shutdown_closes.value++;
		else if (!c->close_code)
			gw_m.dropped.value++;
		c->wsi = NULL;
		hub_conn_close(&hub, c);
		listen_update();
		break;

	case LWS_CALLBACK_WSI_DESTROY:
		head_done(wsi);
		tls_conn_gone(lws_get_vhost(wsi));
		/* Every connection ends here, also one refused after its
		 * token was checked: what the handshake took is freed. */
		if (c) {
			if (c->ip_counted)
				head_ip_conn_close(c->ip);
			c->ip_counted = false;
			if (!c->established)
				conn_release(c);
		}
		listen_update();
		break;

	default:
		break;
	}
	return 0;
}
