/*
 * rconn: one pipelined connection to Redis for a poll loop. hiredis's
 * non-blocking context does the protocol (commands appended to its output
 * buffer, replies pulled from its reader); this file owns the socket's
 * readiness, the FIFO of callbacks (bounded: rconn_full() tells the caller
 * to stop feeding it), AUTH and SELECT after each connect, and the two
 * timeouts (connect, reply). When the connection goes, every pending
 * callback gets NULL in order, then on_down runs; reconnecting is the
 * owner's decision (capped jittered backoff in track.c).
 */
#include "store.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"

#define RCONN_RESERVE 64 /* ring slots beyond max_pending (handshakes) */

struct rconn *rconn_new(const struct rurl *u, uint64_t connect_timeout_ms,
			uint64_t timeout_ms, size_t max_pending)
{
	struct rconn *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return NULL;
	rc->url = *u;
	rc->max_pending = max_pending;
	rc->cap = max_pending + RCONN_RESERVE;
	rc->ring = calloc(rc->cap, sizeof(*rc->ring));
	if (!rc->ring) {
		free(rc);
		return NULL;
	}
	rc->connect_timeout_ms = connect_timeout_ms;
	rc->timeout_ms = timeout_ms;
	return rc;
}

static void rconn_close(struct rconn *rc)
{
	if (rc->c) {
		redisFree(rc->c);
		rc->c = NULL;
	}
	rc->state = RC_DOWN;
}

/* Fail every pending callback, oldest first. */
static void rconn_fail_pending(struct rconn *rc)
{
	rc->dispatching++;
	while (rc->count > 0) {
		struct rconn_pending p = rc->ring[rc->head];

		rc->head = (rc->head + 1) % rc->cap;
		rc->count--;
		p.cb(p.priv, NULL);
	}
	rc->dispatching--;
}

void rconn_drop(struct rconn *rc, const char *why)
{
	/* The first reason is the one worth logging. */
	if (why && !rc->drop_later)
		snprintf(rc->errstr, sizeof(rc->errstr), "%s", why);
	if (rc->dispatching) {
		rc->drop_later = true;
		return;
	}
	if (rc->state == RC_DOWN && rc->count == 0) {
		rc->drop_later = false;
		return;
	}
	rconn_close(rc);
	/* Callbacks that drop again only set drop_later: cleared below. */
	rconn_fail_pending(rc);
	rc->drop_later = false;
	if (rc->on_down)
		rc->on_down(rc->arg);
}

void rconn_free(struct rconn *rc)
{
	if (!rc)
		return;
	rc->on_down = NULL;
	rconn_close(rc);
	rconn_fail_pending(rc);
	free(rc->ring);
	free(rc);
}

/* The ring grows past max_pending when one input line needs many
 * commands (a heartbeat of many rooms): max_pending is where the caller
 * stops reading input, not a hard cap. */
static int rconn_push(struct rconn *rc, rconn_cb *cb, void *priv)
{
	struct rconn_pending *p;

	if (rc->count >= rc->cap) {
		size_t ncap = rc->cap * 2, i;
		struct rconn_pending *nr = malloc(ncap * sizeof(*nr));

		if (!nr)
			return -1;
		for (i = 0; i < rc->count; i++)
			nr[i] = rc->ring[(rc->head + i) % rc->cap];
		free(rc->ring);
		rc->ring = nr;
		rc->cap = ncap;
		rc->head = 0;
	}
	p = &rc->ring[(rc->head + rc->count) % rc->cap];
	p->cb = cb;
	p->priv = priv;
	p->at_us = clock_mono_us();
	rc->count++;
	return 0;
}

/* The command is in the output buffer: without its callback the replies
 * would be matched to the wrong ones, so the connection goes. */
static int rconn_pushed(struct rconn *rc, rconn_cb *cb, void *priv)
{
	if (rconn_push(rc, cb, priv) == 0)
		return 0;
	rconn_drop(rc, "out of memory");
	return -1;
}

/* Handshake replies: anything but OK ends the connection. */
static void rconn_hello_reply(void *priv, redisReply *r)
{
	struct rconn *rc = priv;

	if (!r)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		char why[160];

		snprintf(why, sizeof(why), "handshake refused: %.120s", r->str);
		rconn_drop(rc, why);
		return;
	}
	/* The last handshake reply (popped already) makes the connection
	 * usable. */
	if (rc->count == 0 && rc->state == RC_HELLO) {
		rc->state = RC_UP;
		if (rc->on_up)
			rc->on_up(rc->arg);
	}
}

static int rconn_hello_cmd(struct rconn *rc, int argc, const char **argv)
{
	if (redisAppendCommandArgv(rc->c, argc, argv, NULL) != REDIS_OK ||
	    rconn_push(rc, rconn_hello_reply, rc) < 0)
		return -1;
	return 0;
}

/* TCP is up: AUTH and SELECT go first, then the owner's commands. */
static void rconn_connected(struct rconn *rc)
{
	char db[16];
	int n = 0;

	rc->state = RC_HELLO;
	if (rc->url.password[0]) {
		const char *auth[3] = { "AUTH", rc->url.user, rc->url.password };

		if (rc->url.user[0])
			n = rconn_hello_cmd(rc, 3, auth);
		else
			n = rconn_hello_cmd(
			    rc, 2, (const char *[]){ "AUTH", rc->url.password });
	}
	if (n == 0 && rc->url.db != 0) {
		snprintf(db, sizeof(db), "%d", rc->url.db);
		n = rconn_hello_cmd(rc, 2, (const char *[]){ "SELECT", db });
	}
	if (n == 0 && rc->count == 0)
		/* Nothing to say first: PING, so that up waits for proof that
		 * a Redis answers there. */
		n = rconn_hello_cmd(rc, 1, (const char *[]){ "PING" });
	if (n < 0)
		rconn_drop(rc, "out of memory");
}

int rconn_start(struct rconn *rc)
{
	rconn_close(rc);
	rc->errstr[0] = '\0';
	rc->drop_later = false;
	rc->c = redisConnectNonBlock(rc->url.host, rc->url.port);
	if (!rc->c) {
		snprintf(rc->errstr, sizeof(rc->errstr), "out of memory");
		return -1;
	}
	if (rc->c->err) {
		snprintf(rc->errstr, sizeof(rc->errstr), "%s", rc->c->errstr);
		rconn_close(rc);
		return -1;
	}
	redisEnableKeepAlive(rc->c);
	rc->state = RC_CONNECTING;
	rc->started_us = clock_mono_us();
	return 0;
}

int rconn_fd(const struct rconn *rc)
{
	return rc->c ? rc->c->fd : -1;
}

short rconn_events(const struct rconn *rc)
{
	if (!rc->c)
		return 0;
	if (rc->state == RC_CONNECTING)
		return POLLOUT;
	return (short)(POLLIN | (sdslen(rc->c->obuf) > 0 ? POLLOUT : 0));
}

void rconn_flush(struct rconn *rc)
{
	int done = 0;

	if (!rc->c || rc->state == RC_CONNECTING || sdslen(rc->c->obuf) == 0)
		return;
	if (redisBufferWrite(rc->c, &done) != REDIS_OK)
		rconn_drop(rc, rc->c->errstr[0] ? rc->c->errstr : "write failed");
}

/* Take every complete reply and hand it to its callback. */
static void rconn_dispatch(struct rconn *rc)
{
	void *reply;

	rc->dispatching++;
	while (rc->c && !rc->drop_later) {
		if (redisGetReplyFromReader(rc->c, &reply) != REDIS_OK) {
			rconn_drop(rc, rc->c->errstr[0] ? rc->c->errstr :
							  "protocol error");
			break;
		}
		if (!reply)
			break;
		if (rc->count == 0) {
			freeReplyObject(reply);
			rconn_drop(rc, "a reply nobody asked for");
			break;
		}
		{
			struct rconn_pending p = rc->ring[rc->head];

			rc->head = (rc->head + 1) % rc->cap;
			rc->count--;
			p.cb(p.priv, reply);
		}
		freeReplyObject(reply);
	}
	rc->dispatching--;
	if (rc->drop_later && !rc->dispatching)
		rconn_drop(rc, NULL);
}

void rconn_io(struct rconn *rc, short revents)
{
	if (!rc->c || !revents)
		return;
	if (rc->state == RC_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(rc->c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			rconn_drop(rc, strerror(err));
			return;
		}
		if (!(revents & POLLOUT))
			return;
		rconn_connected(rc);
	}
	if (rc->c && (revents & (POLLIN | POLLHUP | POLLERR))) {
		if (redisBufferRead(rc->c) != REDIS_OK) {
			rconn_drop(rc, rc->c->errstr[0] ? rc->c->errstr :
							  "connection lost");
			return;
		}
		rconn_dispatch(rc);
	}
	rconn_flush(rc);
}

int64_t rconn_deadline_us(const struct rconn *rc)
{
	if (!rc->c)
		return -1;
	if (rc->state != RC_UP)
		return rc->started_us + (int64_t)rc->connect_timeout_ms * 1000;
	if (rc->count == 0)
		return -1;
	return rc->ring[rc->head].at_us + (int64_t)rc->timeout_ms * 1000;
}

void rconn_tick(struct rconn *rc, int64_t now_us)
{
	int64_t d = rconn_deadline_us(rc);

	if (d < 0 || now_us < d)
		return;
	rconn_drop(rc, rc->state == RC_UP ? "no reply within --timeout" :
					    "connect timed out");
}

int rconn_cmd(struct rconn *rc, rconn_cb *cb, void *priv, int argc, const char **argv,
	      const size_t *argvlen)
{
	if (rc->state != RC_UP || rc->drop_later)
		return -1;
	if (redisAppendCommandArgv(rc->c, argc, argv, argvlen) != REDIS_OK)
		return -1;
	return rconn_pushed(rc, cb, priv);
}

int rconn_cmdf(struct rconn *rc, rconn_cb *cb, void *priv, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (rc->state != RC_UP || rc->drop_later)
		return -1;
	va_start(ap, fmt);
	r = redisvAppendCommand(rc->c, fmt, ap);
	va_end(ap);
	if (r != REDIS_OK)
		return -1;
	return rconn_pushed(rc, cb, priv);
}
