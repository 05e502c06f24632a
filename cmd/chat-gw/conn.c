/*
 * conn: a connection's queue, errors, dedupe and rate limit (see conn.h).
 *
 * The send queue is a ring of frame references that grows to
 * --send-queue; a client that falls that far behind is a slow consumer: its
 * queue is dropped and it is closed with 4008 (it resumes with since).
 */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "render.h"

#define REFS_FIRST 8 /* slots of a connection's first publish */

struct conn_hooks conn_hooks;

const char *const gw_err_names[E_COUNT] = {
	"bad_request", "unauthorized", "forbidden", "not_joined", "too_large",
	"rate_limited", "unavailable", "internal",
};

void conn_cut(struct conn *c, uint16_t code, const char *reason)
{
	if (c->close_code)
		return; /* closing already: its queue goes out or is dropped */
	conn_queue_clear(c);
	c->close_code = code;
	c->close_reason = reason;
	if (conn_hooks.kill)
		conn_hooks.kill(c);
}

/* Whether f would not fit in c's queue. */
static bool conn_full(const struct conn *c, const struct frame *f)
{
	return (c->qbytes + f->len > gw_cfg.send_queue_bytes && c->qlen) ||
	       c->qlen >= gw_cfg.send_queue;
}

int conn_push(struct conn *c, struct frame *f)
{
	if (c->close_code)
		return CONN_CLOSING; /* what is queued is all it gets */
	/* Full: a slow consumer, unless its queue merely has not been
	 * written yet (a burst of requests answered within one turn): what
	 * the kernel takes now goes first, and only what still does not fit
	 * is the client's fault. */
	if (conn_full(c, f) && conn_hooks.drain) {
		conn_hooks.drain(c);
		if (c->close_code)
			return CONN_CLOSING;
	}
	if (c->qbytes + f->len > gw_cfg.send_queue_bytes && c->qlen) {
		gw_m.slow.value++;
		LOG_I("closing slow consumer", "user=%s queued=%u bytes=%llu",
		      log_q(c->user), c->qlen, (unsigned long long)c->qbytes);
		conn_cut(c, 4008, "slow consumer");
		return CONN_CUT;
	}
	if (c->qlen == c->qcap) {
		uint32_t ncap = c->qcap ? c->qcap * 2 : 8, i;
		struct frame **nq;

		if (ncap > gw_cfg.send_queue)
			ncap = (uint32_t)gw_cfg.send_queue;
		if (c->qlen >= ncap) {
			gw_m.slow.value++;
			LOG_I("closing slow consumer", "user=%s queued=%u",
			      log_q(c->user), c->qlen);
			conn_cut(c, 4008, "slow consumer");
			return CONN_CUT;
		}
		nq = malloc(ncap * sizeof(*nq));
		if (!nq) {
			/* A frame this client should get is lost: it must
			 * not carry on as if nothing happened. */
			gw_m.internal_closes.value++;
			LOG_W("out of memory queuing a frame: closing", "user=%s",
			      log_q(c->user));
			conn_cut(c, 1011, "out of memory");
			return CONN_CUT;
		}
		for (i = 0; i < c->qlen; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = nq;
		c->qhead = 0;
		c->qcap = ncap;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = frame_ref(f);
	c->qbytes += f->len;
	if (c->qlen++ == 0 && conn_hooks.wake)
		conn_hooks.wake(c);
	return CONN_QUEUED;
}

struct frame *conn_pop(struct conn *c)
{
	struct frame *f;

	if (!c->qlen)
		return NULL;
	f = c->q[c->qhead];
	c->q[c->qhead] = NULL;
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
	c->qbytes -= f->len;
	return f;
}

void conn_queue_clear(struct conn *c)
{
	while (c->qlen) {
		frame_unref(c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
	}
	c->qbytes = 0;
	free(c->q);
	c->q = NULL;
	c->qhead = c->qcap = 0;
}

int conn_send_buf(struct conn *c, struct buf *b)
{
	struct frame *f;
	int r;

	if (b->err) {
		buf_release(b);
		conn_error(c, E_INTERNAL, NULL, "out of memory");
		return c->close_code ? CONN_CLOSING : CONN_QUEUED;
	}
	f = frame_new(b->data, b->len);
	buf_release(b);
	if (!f) {
		gw_m.internal_closes.value++;
		conn_cut(c, 1011, "out of memory");
		return CONN_CUT;
	}
	r = conn_push(c, f);
	frame_unref(f);
	return r;
}

void conn_error(struct conn *c, enum gw_err code, const char *ref, const char *msg)
{
	struct buf b = BUF_INIT(0);
	struct frame *f;

	gw_m.errors[code].value++;
	render_error(&b, ref, gw_err_names[code], msg);
	f = b.err ? NULL : frame_new(b.data, b.len);
	buf_release(&b);
	if (!f) {
		gw_m.internal_closes.value++;
		conn_cut(c, 1011, "out of memory");
		return;
	}
	conn_push(c, f);
	frame_unref(f);
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
	if (c->close_code)
		return;
	c->close_code = code;
	c->close_reason = reason;
	if (conn_hooks.wake)
		conn_hooks.wake(c);
}

bool conn_rate_ok(struct conn *c)
{
	int64_t now = clock_mono_us();
	float cap = (float)gw_cfg.burst;

	if (c->tb_us == 0) {
		c->tokens = cap;
	} else {
		c->tokens += (float)(now - c->tb_us) * (float)gw_cfg.rate / 1e6f;
		if (c->tokens > cap)
			c->tokens = cap;
	}
	c->tb_us = now;
	if (c->tokens < 1.0f)
		return false;
	c->tokens -= 1.0f;
	return true;
}

bool conn_work_ok(struct conn *c, double n)
{
	int64_t now = clock_mono_us();
	float cap = (float)gw_cfg.request_burst;

	if (c->work_us == 0) {
		c->work = cap;
	} else {
		c->work += (float)(now - c->work_us) * (float)gw_cfg.request_rate / 1e6f;
		if (c->work > cap)
			c->work = cap;
	}
	c->work_us = now;
	if (c->work < (float)n)
		return false;
	c->work -= (float)n;
	return true;
}

struct refent *conn_ref_find(struct conn *c, const char *key)
{
	uint64_t i;

	for (i = 0; i < c->refcap; i++)
		if (c->refs[i].ref && !strcmp(c->refs[i].ref, key))
			return &c->refs[i];
	return NULL;
}

/* The slot for a new ref: the next free one while refs grows (doubling
 * from REFS_FIRST to --dedupe, so that a connection that publishes little
 * keeps little), then the oldest. NULL when out of memory. */
static struct refent *conn_ref_slot(struct conn *c)
{
	struct refent *e;

	if (c->refnext == c->refcap) {
		uint64_t ncap = c->refcap ? (uint64_t)c->refcap * 2 : REFS_FIRST;
		struct refent *nr;

		if (c->refcap >= gw_cfg.dedupe) {
			c->refnext = 0;
		} else {
			if (ncap > gw_cfg.dedupe)
				ncap = gw_cfg.dedupe;
			nr = realloc(c->refs, ncap * sizeof(*nr));
			if (!nr)
				return NULL;
			memset(nr + c->refcap, 0, (ncap - c->refcap) * sizeof(*nr));
			c->refs = nr;
			c->refcap = (uint32_t)ncap;
		}
	}
	e = &c->refs[c->refnext++];
	free(e->ref);
	frame_unref(e->ack);
	e->ref = NULL;
	e->ack = NULL;
	return e;
}

struct refent *conn_ref_remember(struct conn *c, const char *key, const char *id,
				 struct frame *ack)
{
	struct refent *e = conn_ref_find(c, key);

	if (!gw_cfg.dedupe)
		return NULL;
	if (!e) {
		char *k = strdup(key);

		if (!k || !(e = conn_ref_slot(c))) {
			free(k);
			return NULL;
		}
		e->ref = k;
	}
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->pending = false;
	if (ack) {
		frame_unref(e->ack);
		e->ack = frame_ref(ack);
	}
	return e;
}

static void conn_refs_free(struct conn *c)
{
	uint64_t i;

	for (i = 0; i < c->refcap; i++) {
		free(c->refs[i].ref);
		frame_unref(c->refs[i].ack);
	}
	free(c->refs);
	c->refs = NULL;
	c->refcap = c->refnext = 0;
}

void conn_release(struct conn *c)
{
	conn_queue_clear(c);
	conn_refs_free(c);
	free(c->rx);
	c->rx = NULL;
	c->rxlen = c->rxcap = 0;
	if (c->claims) {
		jwt_claims_free(c->claims);
		free(c->claims);
		c->claims = NULL;
	}
	free(c->user);
	c->user = NULL;
}
