/*
 * head: each new connection's request head, read before libwebsockets
 * sees the connection (see head.h).
 *
 * A head is watched with its own libuv poll handle. Heads wait on a list
 * in the order they came, so the oldest is checked first against
 * --handshake-timeout by one timer. A refused head gets a short HTTP/1.1
 * response; the socket is then shut for writing and drained for up to a
 * second before it is closed, so that the response is not lost to a reset
 * when the client had sent more than was read.
 */
#include "head.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>
#include <uv.h>

#include "clock.h"
#include "gw.h"
#include "http.h"
#include "log.h"
#include "map.h"
#include "tls.h"

#define HEAD_FIRST 1024          /* a head's first buffer; grows to --max-header */
#define HEAD_DRAIN_US 1000000    /* how long a refused head is drained */

/* What one address holds. */
struct peer {
	unsigned heads;              /* heads in the door */
	unsigned conns;              /* established WebSocket connections */
};

struct head {
	int fd;                      /* the socket */
	struct lws *wsi;             /* TLS: libwebsockets has it already */
	uv_poll_t poll;              /* its watcher */
	int64_t deadline_us;         /* read the head, or finish draining, by */
	bool draining;               /* refused: reading and dropping until EOF */
	char ip[HEAD_IP_MAX];        /* the peer's address */
	char *buf;                   /* what was read */
	size_t len;                  /* bytes in buf */
	size_t cap;                  /* bytes allocated */
	TAILQ_ENTRY(head) entry;     /* reading or draining, oldest first */
};

static TAILQ_HEAD(, head) reading = TAILQ_HEAD_INITIALIZER(reading);
static TAILQ_HEAD(, head) draining = TAILQ_HEAD_INITIALIZER(draining);
static unsigned nheads;          /* heads on either list */
static struct map peers;         /* address -> struct peer */
static uv_loop_t *hloop;
static uv_timer_t timer;         /* checks deadlines while heads wait */
static bool timer_on;

static struct peer *peer_get(const char *ip, bool create)
{
	struct peer *p = map_get(&peers, ip);

	if (p || !create)
		return p;
	p = calloc(1, sizeof(*p));
	if (p && !map_put(&peers, ip, p)) {
		free(p);
		p = NULL;
	}
	return p;
}

static void peer_maybe_drop(const char *ip, struct peer *p)
{
	if (p && !p->heads && !p->conns)
		free(map_del(&peers, ip));
}

static void head_closed(uv_handle_t *h)
{
	struct head *hd = h->data;

	free(hd->buf);
	free(hd);
}

/* Take hd off its list and forget it; the fd is closed unless it was
 * handed over (keep_fd). */
static void head_drop(struct head *hd, bool keep_fd)
{
	struct peer *p = peer_get(hd->ip, false);

	if (hd->draining)
		TAILQ_REMOVE(&draining, hd, entry);
	else
		TAILQ_REMOVE(&reading, hd, entry);
	nheads--;
	if (!hd->draining && p) {
		p->heads--;
		peer_maybe_drop(hd->ip, p);
	}
	if (hd->wsi) {
		/* TLS: the socket is libwebsockets'; only the entry goes */
		lws_set_opaque_user_data(hd->wsi, NULL);
		free(hd);
		return;
	}
	/* uv_close takes the fd out of the loop at once; the handle's
	 * memory goes in the callback. */
	uv_close((uv_handle_t *)&hd->poll, head_closed);
	if (!keep_fd)
		close(hd->fd);
}

static const char *head_status_text(int status)
{
	switch (status) {
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	default: return "Bad Request";
	}
}

/* Answer status with a one-line reason, then drain the socket until the
 * client closes or a second passes. */
static void head_refuse(struct head *hd, int status, const char *why)
{
	char resp[512];
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
			 status, head_status_text(status), strlen(why) + 1, why);
	struct peer *p = peer_get(hd->ip, false);

	LOG_I("refused a request", "status=%d reason=%s ip=%s", status, log_q(why),
	      log_q(hd->ip));
	(void)!write(hd->fd, resp, (size_t)n);
	shutdown(hd->fd, SHUT_WR);
	TAILQ_REMOVE(&reading, hd, entry);
	if (p) {
		p->heads--;
		peer_maybe_drop(hd->ip, p);
	}
	hd->draining = true;
	hd->deadline_us = clock_mono_us() + HEAD_DRAIN_US;
	free(hd->buf);
	hd->buf = NULL;
	hd->len = hd->cap = 0;
	TAILQ_INSERT_TAIL(&draining, hd, entry);
}

/* Whether the request target (p, up to a space or a line end) has only
 * whole percent-escapes and none of NUL: libwebsockets' decoder closes
 * the connection without a word at %00 and answers a broken escape with
 * an HTML page of its own. */
static bool target_ok(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n'; i++) {
		if (p[i] != '%')
			continue;
		if (i + 2 >= n || !isxdigit((unsigned char)p[i + 1]) ||
		    !isxdigit((unsigned char)p[i + 2]) ||
		    (p[i + 1] == '0' && p[i + 2] == '0'))
			return false;
		i += 2;
	}
	return true;
}

/* The head is whole (its blank line ends at end): check the method and
 * the target, before libwebsockets gets the connection with every byte
 * read. */
int head_scan(const char *buf, size_t len, size_t from)
{
	size_t mlen;


	if (from > 3)
		from -= 3; /* the blank line may have begun in what came before */
	else
		from = 0;
	if (from >= len || !memmem(buf + from, len - from, "\r\n\r\n", 4))
		return HEAD_MORE;
	/* A request line is METHOD SP TARGET SP VERSION. */
	mlen = len >= 4 && !memcmp(buf, "GET ", 4) ? 4 :
	       len >= 5 && !memcmp(buf, "HEAD ", 5) ? 5 : 0;
	if (!mlen)
		return HEAD_BAD_METHOD;
	return target_ok(buf + mlen, len - mlen) ? HEAD_WHOLE : HEAD_BAD_TARGET;
}

static void head_complete(struct head *hd, int state)
{
	unsigned long answered;
	int fd = hd->fd;

	if (state == HEAD_BAD_METHOD) {
		gw_m.refused_method.value++;
		head_refuse(hd, 405, "only GET is served here");
		return;
	}
	if (state == HEAD_BAD_TARGET) {
		gw_m.refused_target.value++;
		head_refuse(hd, 400, "a broken or NUL percent-escape in the request target");
		return;
	}
	head_drop(hd, true);
	answered = http_answered;
	if (!lws_adopt_socket_vhost_readbuf(tls_vhost(), fd, hd->buf, hd->len) &&
	    http_answered == answered) {
		/* lws closed it unanswered: its descriptor table is full (a
		 * request answered and closed within the adoption, a refused
		 * upgrade say, comes back NULL too, and is no failure). */
		gw_m.accept_paused.value++;
		LOG_W("unable to adopt a connection", "ip=%s", log_q(hd->ip));
	}
}

static void head_read(struct head *hd)
{
	char drop[4096];

	for (;;) {
		size_t scan;
		ssize_t n;
		int state;

		if (hd->draining) {
			n = read(hd->fd, drop, sizeof(drop));
			if (n > 0)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			head_drop(hd, false);
			return;
		}
		if (hd->len == hd->cap) {
			size_t ncap = hd->cap ? hd->cap * 2 : HEAD_FIRST;
			char *nb;

			if (hd->cap >= gw_cfg.max_header) {
				gw_m.refused_header.value++;
				head_refuse(hd, 431, "the request head is larger than --max-header");
				continue;
			}
			if (ncap > gw_cfg.max_header)
				ncap = gw_cfg.max_header;
			nb = realloc(hd->buf, ncap + 1);
			if (!nb) {
				head_drop(hd, false);
				return;
			}
			hd->buf = nb;
			hd->cap = ncap;
		}
		n = read(hd->fd, hd->buf + hd->len, hd->cap - hd->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			head_drop(hd, false); /* gone before its head was whole */
			return;
		}
		scan = hd->len;
		hd->len += (size_t)n;
		hd->buf[hd->len] = '\0';
		state = head_scan(hd->buf, hd->len, scan);
		if (state != HEAD_MORE) {
			head_complete(hd, state);
			return;
		}
	}
}

static void head_on_poll(uv_poll_t *h, int status, int events)
{
	struct head *hd = h->data;

	(void)events;
	if (status < 0) {
		head_drop(hd, false);
		return;
	}
	head_read(hd);
}

static void head_on_timer(uv_timer_t *t)
{
	int64_t now = clock_mono_us();
	struct head *hd;

	(void)t;
	while ((hd = TAILQ_FIRST(&reading)) && hd->deadline_us <= now) {
		gw_m.refused_timeout.value++;
		if (hd->wsi) {
			/* TLS: no status can be read in clear: close */
			LOG_I("refused a request", "status=408 ip=%s tls=1", log_q(hd->ip));
			lws_set_timeout(hd->wsi, PENDING_TIMEOUT_USER_REASON_BASE,
					LWS_TO_KILL_ASYNC);
			head_drop(hd, true);
			continue;
		}
		head_refuse(hd, 408, "the request head did not come in time");
	}
	while ((hd = TAILQ_FIRST(&draining)) && hd->deadline_us <= now)
		head_drop(hd, false);
	if (!nheads) {
		uv_timer_stop(&timer);
		timer_on = false;
	}
}

/* TLS: the door cannot read the head (it is encrypted): the connection
 * goes to libwebsockets at once, and the door keeps only its deadline and
 * its address's count, until libwebsockets reports the request
 * (head_done) or the deadline passes. */
static void head_accept_tls(struct head *hd, struct peer *p)
{
	struct lws_vhost *vh = tls_vhost();

	if (gw_cfg.max_heads_per_ip && p->heads >= gw_cfg.max_heads_per_ip) {
		gw_m.refused_per_ip.value++;
		close(hd->fd);
		peer_maybe_drop(hd->ip, p);
		free(hd);
		return;
	}
	hd->wsi = lws_adopt_socket_vhost(vh, hd->fd);
	if (!hd->wsi) {
		gw_m.accept_paused.value++;
		LOG_W("unable to adopt a connection", "ip=%s", log_q(hd->ip));
		peer_maybe_drop(hd->ip, p);
		free(hd);
		return;
	}
	tls_conn_add(vh);
	lws_set_opaque_user_data(hd->wsi, hd);
	hd->deadline_us = clock_mono_us() + (int64_t)gw_cfg.handshake_timeout_ms * 1000;
	TAILQ_INSERT_TAIL(&reading, hd, entry);
	nheads++;
	p->heads++;
	if (!timer_on) {
		uv_timer_start(&timer, head_on_timer, 100, 100);
		timer_on = true;
	}
}

void head_done(struct lws *wsi)
{
	struct head *hd = lws_get_opaque_user_data(wsi);

	if (hd && hd->wsi == wsi)
		head_drop(hd, true);
}

void head_accept(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct head *hd = calloc(1, sizeof(*hd));
	struct peer *p;

	(void)addrlen;
	if (!hd) {
		close(fd);
		return;
	}
	hd->fd = fd;
	if (addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr,
			  hd->ip, sizeof(hd->ip));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr,
			  hd->ip, sizeof(hd->ip));
	if (tls_on()) {
		p = peer_get(hd->ip, true);
		if (!p) {
			close(fd);
			free(hd);
			return;
		}
		head_accept_tls(hd, p);
		return;
	}
	if (uv_poll_init(hloop, &hd->poll, fd) < 0) {
		close(fd);
		free(hd);
		return;
	}
	hd->poll.data = hd;
	hd->deadline_us = clock_mono_us() + (int64_t)gw_cfg.handshake_timeout_ms * 1000;
	TAILQ_INSERT_TAIL(&reading, hd, entry);
	nheads++;
	p = peer_get(hd->ip, true);
	if (!p) {
		head_drop(hd, false);
		return;
	}
	p->heads++;
	if (!timer_on) {
		uv_timer_start(&timer, head_on_timer, 100, 100);
		timer_on = true;
	}
	if (gw_cfg.max_heads_per_ip && p->heads > gw_cfg.max_heads_per_ip) {
		gw_m.refused_per_ip.value++;
		head_refuse(hd, 429, "too many requests in progress from this address");
	}
	uv_poll_start(&hd->poll, UV_READABLE, head_on_poll);
	/* Most heads are in the socket already: read now, not a turn later. */
	head_read(hd);
}

unsigned head_count(void)
{
	return nheads;
}

bool head_ip_conn_open(const char *ip)
{
	struct peer *p = peer_get(ip, true);

	if (!p)
		return false;
	if (gw_cfg.max_conns_per_ip && p->conns >= gw_cfg.max_conns_per_ip) {
		peer_maybe_drop(ip, p);
		return false;
	}
	p->conns++;
	return true;
}

void head_ip_conn_close(const char *ip)
{
	struct peer *p = peer_get(ip, false);

	if (p && p->conns) {
		p->conns--;
		peer_maybe_drop(ip, p);
	}
}

int head_start(void *loop, struct lws_vhost *vh)
{
	struct map empty = MAP_INIT;

	hloop = loop;
	(void)vh;
	peers = empty;
	return uv_timer_init(hloop, &timer) < 0 ? -1 : 0;
}

void head_stop(void)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;
	struct head *hd;

	while ((hd = TAILQ_FIRST(&reading)))
		head_drop(hd, false);
	while ((hd = TAILQ_FIRST(&draining)))
		head_drop(hd, false);
	uv_close((uv_handle_t *)&timer, NULL);
	while (map_next(&peers, &bucket, &e))
		free(e->val);
	map_free(&peers);
}
