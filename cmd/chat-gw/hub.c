/*
 * hub: the client protocol of chat-gw (see hub.h and chat-protocol(7)).
 *
 * A room holds its members (a list, for fan-out), a count of connections per
 * user (presence: a user with several connections is there once), its last
 * seq and, in standalone mode, a ring of its last --history message frames.
 * A message is serialised once into a frame; every member's send queue and
 * the history ring hold references to that one frame.
 */
#include "hub.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "gw.h"
#include "log.h"
#include "request.h"

struct hub hub;

struct member {
	struct conn *c;              /* the connection */
	struct room *r;              /* the room */
	struct member *rprev, *rnext;/* in the room's member list */
	struct member *cnext;        /* in the connection's room list */
};

struct room {
	const char *name;            /* the map entry's key */
	uint64_t seq;                /* last seq given (standalone) or seen */
	struct member *members;      /* members, newest first */
	uint32_t nmembers;           /* how many */
	struct map users;            /* user -> connections in the room */
	struct frame **ring;         /* history, NULL until the first message */
	uint32_t rhead;              /* index of the oldest frame */
	uint32_t rlen;               /* frames in the ring */
	uint32_t rcap;               /* ring size, grows to --history */
};

struct refent {
	char *ref;                   /* the ref as JSON text, malloc'd */
	struct frame *ack;           /* the ack sent for it */
};

#define HISTORY_DEFAULT_LIMIT 50
#define HISTORY_MAX_LIMIT 200

/* ---- send queue ---- */

int conn_push(struct conn *c, struct frame *f)
{
	if (c->close_code)
		return 0; /* closing: what is queued is all it gets */
	if (c->qlen == c->qcap) {
		uint32_t ncap = c->qcap ? c->qcap * 2 : 8, i;
		struct frame **nq;

		if (ncap > gw_cfg.send_queue)
			ncap = (uint32_t)gw_cfg.send_queue;
		if (c->qlen >= ncap) {
			gw_m.slow.value++;
			LOG_I("closing slow consumer", "user=%s queued=%u",
			      log_q(c->user), c->qlen);
			conn_queue_clear(c);
			c->close_code = 4008;
			c->close_reason = "slow consumer";
			hub.kill(c);
			return -1;
		}
		nq = malloc(ncap * sizeof(*nq));
		if (!nq)
			return -1;
		for (i = 0; i < c->qlen; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = nq;
		c->qhead = 0;
		c->qcap = ncap;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = frame_ref(f);
	if (c->qlen++ == 0)
		hub.wake(c);
	return 0;
}

void conn_queue_clear(struct conn *c)
{
	while (c->qlen) {
		frame_unref(c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
	}
	free(c->q);
	c->q = NULL;
	c->qhead = c->qcap = 0;
}

int conn_send_text(struct conn *c, const char *text, size_t n)
{
	struct frame *f = frame_new(text, n);
	int r;

	if (!f)
		return -1;
	r = conn_push(c, f);
	frame_unref(f);
	return r;
}

static void conn_send_buf(struct conn *c, struct buf *b)
{
	conn_send_text(c, b->data, b->len);
	buf_release(b);
}

/* Append ,"ref":REF when the request had one. */
static void add_ref(struct buf *b, const json_t *ref)
{
	char tmp[REQ_REF_MAX * 6 + 8];
	size_t n;

	if (!ref)
		return;
	n = json_dumpb(ref, tmp, sizeof(tmp), JSON_COMPACT | JSON_ENCODE_ANY);
	if (n == 0 || n > sizeof(tmp))
		return;
	buf_adds(b, ",\"ref\":");
	buf_add(b, tmp, n);
}

const char *const gw_err_names[E_COUNT] = {
	"bad_request", "unauthorized", "forbidden", "not_joined", "too_large",
	"rate_limited", "unavailable", "internal",
};

void conn_error(struct conn *c, int code, const void *ref, const char *msg)
{
	struct buf b = BUF_INIT(0);
	json_t *m = json_string(msg);
	char *ms = m ? json_dumps(m, JSON_ENCODE_ANY) : NULL;

	gw_m.errors[code].value++;
	buf_addf(&b, "{\"type\":\"error\"");
	add_ref(&b, ref);
	buf_addf(&b, ",\"code\":\"%s\",\"message\":%s}", gw_err_names[code],
		 ms ? ms : "\"\"");
	conn_send_buf(c, &b);
	free(ms);
	json_decref(m);
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
	if (c->close_code)
		return;
	c->close_code = code;
	c->close_reason = reason;
	hub.wake(c);
}

/* ---- rooms ---- */

static struct room *room_get(struct hub *h, const char *name, bool create)
{
	struct room *r = map_get(&h->rooms, name);
	struct map_ent *e;

	if (r || !create)
		return r;
	if (h->rooms.n >= gw_cfg.max_rooms)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	e = map_put(&h->rooms, name, r);
	if (!e) {
		free(r);
		return NULL;
	}
	r->name = e->key;
	gw_m.rooms.value++;
	return r;
}

static void room_free(struct room *r)
{
	uint32_t i;

	for (i = 0; i < r->rlen; i++)
		frame_unref(r->ring[(r->rhead + i) % r->rcap]);
	free(r->ring);
	map_free(&r->users);
	free(r);
}

/* Rooms with no members and no history are dropped. */
static void room_maybe_drop(struct hub *h, struct room *r)
{
	if (r->nmembers || r->rlen || r->seq)
		return;
	map_del(&h->rooms, r->name);
	room_free(r);
	gw_m.rooms.value--;
}

static struct member *member_of(const struct conn *c, const struct room *r)
{
	struct member *m;

	for (m = c->rooms; m; m = m->cnext)
		if (m->r == r)
			return m;
	return NULL;
}

static void room_history_add(struct room *r, struct frame *f)
{
	if (gw_cfg.history == 0)
		return;
	if (r->rlen == r->rcap && r->rcap < gw_cfg.history) {
		uint32_t ncap = r->rcap ? r->rcap * 2 : 16, i;
		struct frame **nr;

		if (ncap > gw_cfg.history)
			ncap = (uint32_t)gw_cfg.history;
		nr = malloc(ncap * sizeof(*nr));
		if (!nr)
			return;
		for (i = 0; i < r->rlen; i++)
			nr[i] = r->ring[(r->rhead + i) % r->rcap];
		free(r->ring);
		r->ring = nr;
		r->rhead = 0;
		r->rcap = ncap;
	}
	if (r->rlen == r->rcap) {
		frame_unref(r->ring[r->rhead]);
		r->ring[r->rhead] = frame_ref(f);
		r->rhead = (r->rhead + 1) % r->rcap;
		return;
	}
	r->ring[(r->rhead + r->rlen++) % r->rcap] = frame_ref(f);
}

/* The history frame with seq s, or NULL when it is not in the ring. */
static struct frame *room_history_at(const struct room *r, uint64_t s)
{
	uint64_t first = r->seq - r->rlen + 1;

	if (!r->rlen || s < first || s > r->seq)
		return NULL;
	return r->ring[(r->rhead + (s - first)) % r->rcap];
}

static void room_fanout(struct room *r, struct frame *f, const struct conn *except)
{
	struct member *m;

	for (m = r->members; m; m = m->rnext) {
		if (m->c == except)
			continue;
		if (conn_push(m->c, f) == 0 && f->seq)
			gw_m.deliveries.value++;
	}
}

static void room_presence_event(struct room *r, const char *user, bool joined)
{
	struct buf b = BUF_INIT(0);
	struct frame *f;

	buf_addf(&b, "{\"type\":\"presence\",\"room\":\"%s\",\"joined\":[%s%s%s],"
		 "\"left\":[%s%s%s]}", r->name,
		 joined ? "\"" : "", joined ? user : "", joined ? "\"" : "",
		 joined ? "" : "\"", joined ? "" : user, joined ? "" : "\"");
	f = frame_new(b.data, b.len);
	buf_release(&b);
	if (!f)
		return;
	room_fanout(r, f, NULL);
	frame_unref(f);
}

static void room_add_member(struct room *r, struct conn *c)
{
	struct member *m = calloc(1, sizeof(*m));
	struct map_ent *e;
	uintptr_t n;

	if (!m)
		return;
	m->c = c;
	m->r = r;
	m->rnext = r->members;
	if (r->members)
		r->members->rprev = m;
	r->members = m;
	r->nmembers++;
	m->cnext = c->rooms;
	c->rooms = m;
	c->nrooms++;
	e = map_find(&r->users, c->user);
	n = e ? (uintptr_t)e->val : 0;
	map_put(&r->users, c->user, (void *)(n + 1));
	if (n == 0)
		room_presence_event(r, c->user, true);
}

static void room_remove_member(struct hub *h, struct member *m)
{
	struct room *r = m->r;
	struct conn *c = m->c;
	struct member **pp;
	uintptr_t n;

	if (m->rprev)
		m->rprev->rnext = m->rnext;
	else
		r->members = m->rnext;
	if (m->rnext)
		m->rnext->rprev = m->rprev;
	r->nmembers--;
	for (pp = &c->rooms; *pp; pp = &(*pp)->cnext) {
		if (*pp == m) {
			*pp = m->cnext;
			break;
		}
	}
	c->nrooms--;
	free(m);
	n = (uintptr_t)map_get(&r->users, c->user);
	if (n <= 1) {
		map_del(&r->users, c->user);
		room_presence_event(r, c->user, false);
	} else {
		map_put(&r->users, c->user, (void *)(n - 1));
	}
	room_maybe_drop(h, r);
}

/* ---- requests ---- */

static bool rate_ok(struct conn *c)
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

static bool room_allowed(const struct conn *c, const char *room)
{
	return !c->claims || jwt_room_allowed(c->claims, room);
}

/* The JSON array of history frames from seq lo to hi, each one's text. */
static void add_history_span(struct buf *b, const struct room *r, uint64_t lo,
			     uint64_t hi)
{
	uint64_t s;
	bool first = true;

	for (s = lo; s <= hi && s != 0; s++) {
		struct frame *f = room_history_at(r, s);

		if (!f)
			continue;
		if (!first)
			buf_adds(b, ",");
		buf_add(b, frame_payload(f), frame_payload_len(f));
		first = false;
	}
}

static void do_join(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r;
	struct buf b = BUF_INIT(0);
	uint64_t s, first;

	if (!room_allowed(c, q->room)) {
		conn_error(c, E_FORBIDDEN, q->ref, "this token does not allow that room");
		return;
	}
	r = room_get(h, q->room, true);
	if (!r) {
		conn_error(c, E_UNAVAILABLE, q->ref, "too many rooms on this gateway");
		return;
	}
	if (member_of(c, r)) {
		/* Joining twice is harmless: answer again, recover again. */
	} else if (c->nrooms >= gw_cfg.rooms_per_conn) {
		conn_error(c, E_FORBIDDEN, q->ref, "too many rooms on this connection");
		room_maybe_drop(h, r);
		return;
	}
	first = r->rlen ? r->seq - r->rlen + 1 : r->seq + 1;
	buf_addf(&b, "{\"type\":\"joined\",\"room\":\"%s\"", r->name);
	add_ref(&b, q->ref);
	buf_addf(&b, ",\"seq\":%llu", (unsigned long long)r->seq);
	if (q->has_since && q->since + 1 < first)
		buf_addf(&b, ",\"gap\":{\"from\":%llu,\"to\":%llu}",
			 (unsigned long long)(q->since + 1),
			 (unsigned long long)(first - 1));
	buf_adds(&b, "}");
	conn_send_buf(c, &b);
	if (q->has_since) {
		for (s = q->since + 1; s <= r->seq && s != 0; s++) {
			struct frame *f = room_history_at(r, s);

			if (!f)
				continue;
			/* A recovered copy: the same text with a flag in front. */
			buf_adds(&b, "{\"recovered\":true,");
			buf_add(&b, frame_payload(f) + 1, frame_payload_len(f) - 1);
			conn_send_buf(c, &b);
		}
	}
	if (!member_of(c, r))
		room_add_member(r, c);
}

static void do_leave(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(h, q->room, false);
	struct member *m = r ? member_of(c, r) : NULL;
	struct buf b = BUF_INIT(0);

	if (!m) {
		conn_error(c, E_NOT_JOINED, q->ref, "not a member of that room");
		return;
	}
	buf_addf(&b, "{\"type\":\"left\",\"room\":\"%s\"", r->name);
	add_ref(&b, q->ref);
	buf_adds(&b, "}");
	conn_send_buf(c, &b);
	room_remove_member(h, m);
}

static struct refent *ref_find(struct conn *c, const char *key)
{
	uint64_t i;

	if (!c->refs)
		return NULL;
	for (i = 0; i < gw_cfg.dedupe; i++)
		if (c->refs[i].ref && !strcmp(c->refs[i].ref, key))
			return &c->refs[i];
	return NULL;
}

static void ref_remember(struct conn *c, const char *key, struct frame *ack)
{
	struct refent *e;

	if (!gw_cfg.dedupe)
		return;
	if (!c->refs && !(c->refs = calloc(gw_cfg.dedupe, sizeof(*c->refs))))
		return;
	e = &c->refs[c->refnext];
	c->refnext = (uint32_t)((c->refnext + 1) % gw_cfg.dedupe);
	free(e->ref);
	frame_unref(e->ack);
	e->ref = strdup(key);
	e->ack = frame_ref(ack);
}

static void refs_free(struct conn *c)
{
	uint64_t i;

	if (!c->refs)
		return;
	for (i = 0; i < gw_cfg.dedupe; i++) {
		free(c->refs[i].ref);
		frame_unref(c->refs[i].ack);
	}
	free(c->refs);
	c->refs = NULL;
}

static void do_publish(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(h, q->room, false);
	struct buf b = BUF_INIT(0);
	char id[ID_MAX], *refkey = NULL;
	struct refent *seen;
	struct frame *f, *ack;
	size_t bodylen, mark;
	int64_t t0 = clock_mono_us(), ts;

	if (!r || !member_of(c, r)) {
		conn_error(c, E_NOT_JOINED, q->ref, "join the room before publishing");
		return;
	}
	if (q->ref) {
		refkey = json_dumps(q->ref, JSON_COMPACT | JSON_ENCODE_ANY);
		if (refkey && (seen = ref_find(c, refkey))) {
			gw_m.dedupe_hits.value++;
			conn_push(c, seen->ack);
			free(refkey);
			return;
		}
	}
	if (!rate_ok(c)) {
		conn_error(c, E_RATE_LIMITED, q->ref, "publishing too fast; slow down");
		goto out;
	}
	ts = clock_wall_ms();
	id_next(&h->ids, id);
	buf_addf(&b, "{\"type\":\"message\",\"room\":\"%s\",\"seq\":%llu,\"id\":\"%s\","
		 "\"from\":\"%s\",\"body\":", r->name,
		 (unsigned long long)(r->seq + 1), id, c->user);
	mark = b.len;
	bodylen = json_dumpb(q->body, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (bodylen > gw_cfg.max_body) {
		buf_release(&b);
		conn_error(c, E_TOO_LARGE, q->ref, "body is larger than the gateway's --max-body");
		goto out;
	}
	if (buf_grow(&b, bodylen + 64) < 0)
		goto out_internal;
	b.len += json_dumpb(q->body, b.data + mark, bodylen, JSON_COMPACT | JSON_ENCODE_ANY);
	buf_addf(&b, ",\"ts\":%lld}", (long long)ts);
	f = frame_new(b.data, b.len);
	if (!f)
		goto out_internal;
	f->seq = ++r->seq;
	gw_m.messages.value++;
	room_history_add(r, f);
	room_fanout(r, f, NULL);
	frame_unref(f);

	buf_reset(&b);
	buf_adds(&b, "{\"type\":\"ack\"");
	add_ref(&b, q->ref);
	buf_addf(&b, ",\"id\":\"%s\",\"ts\":%lld}", id, (long long)ts);
	ack = frame_new(b.data, b.len);
	if (ack) {
		conn_push(c, ack);
		if (refkey)
			ref_remember(c, refkey, ack);
		frame_unref(ack);
	}
	metric_observe(&gw_m.ack_latency, (double)(clock_mono_us() - t0) / 1e6);
	goto out;
out_internal:
	conn_error(c, E_INTERNAL, q->ref, "out of memory");
out:
	buf_release(&b);
	free(refkey);
}

static void do_history(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(h, q->room, false);
	struct buf b = BUF_INIT(0);
	uint64_t hi, lo, limit, first;

	if (!room_allowed(c, q->room)) {
		conn_error(c, E_FORBIDDEN, q->ref, "this token does not allow that room");
		return;
	}
	limit = q->limit ? q->limit : HISTORY_DEFAULT_LIMIT;
	if (limit > HISTORY_MAX_LIMIT)
		limit = HISTORY_MAX_LIMIT;
	buf_addf(&b, "{\"type\":\"history\",\"room\":\"%s\"", q->room);
	add_ref(&b, q->ref);
	buf_adds(&b, ",\"messages\":[");
	lo = hi = 0;
	if (r && r->rlen) {
		first = r->seq - r->rlen + 1;
		hi = q->has_before ? q->before - (q->before > 0) : r->seq;
		if (hi > r->seq)
			hi = r->seq;
		if (hi >= first && (!q->has_before || q->before > 0)) {
			lo = hi >= first + limit - 1 ? hi - limit + 1 : first;
			add_history_span(&b, r, lo, hi);
		}
	}
	buf_addf(&b, "],\"more\":%s}",
		 r && r->rlen && lo > r->seq - r->rlen + 1 ? "true" : "false");
	conn_send_buf(c, &b);
}

static void do_presence(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(h, q->room, false);
	struct buf b = BUF_INIT(0);
	struct map_ent *e = NULL;
	size_t bucket = 0;
	bool first = true;

	if (!room_allowed(c, q->room)) {
		conn_error(c, E_FORBIDDEN, q->ref, "this token does not allow that room");
		return;
	}
	buf_addf(&b, "{\"type\":\"presence\",\"room\":\"%s\"", q->room);
	add_ref(&b, q->ref);
	buf_adds(&b, ",\"users\":[");
	while (r && map_next(&r->users, &bucket, &e)) {
		buf_addf(&b, "%s\"%s\"", first ? "" : ",", e->key);
		first = false;
	}
	buf_adds(&b, "]}");
	conn_send_buf(c, &b);
}

static void do_typing(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(h, q->room, false);
	struct buf b = BUF_INIT(0);
	struct frame *f;

	if (!r || !member_of(c, r)) {
		conn_error(c, E_NOT_JOINED, q->ref, "join the room before typing");
		return;
	}
	if (!rate_ok(c)) {
		conn_error(c, E_RATE_LIMITED, q->ref, "sending too fast; slow down");
		return;
	}
	buf_addf(&b, "{\"type\":\"typing\",\"room\":\"%s\",\"from\":\"%s\"}",
		 r->name, c->user);
	f = frame_new(b.data, b.len);
	buf_release(&b);
	if (!f)
		return;
	room_fanout(r, f, c);
	frame_unref(f);
}

void hub_frame(struct hub *h, struct conn *c, const char *text, size_t n)
{
	struct request q;
	const char *msg;

	gw_m.frames_in.value++;
	if (request_parse(text, n, &q, &msg) < 0) {
		conn_error(c, E_BAD_REQUEST, q.ref, msg);
		request_free(&q);
		return;
	}
	switch (q.type) {
	case REQ_JOIN: do_join(h, c, &q); break;
	case REQ_LEAVE: do_leave(h, c, &q); break;
	case REQ_PUBLISH: do_publish(h, c, &q); break;
	case REQ_HISTORY: do_history(h, c, &q); break;
	case REQ_PRESENCE: do_presence(h, c, &q); break;
	case REQ_TYPING: do_typing(h, c, &q); break;
	}
	request_free(&q);
}

/* ---- connections ---- */

int hub_init(struct hub *h, const char *node)
{
	struct map empty = MAP_INIT;

	h->rooms = empty;
	h->conns = NULL;
	h->nconns = 0;
	return id_init(&h->ids, node, clock_wall_ms());
}

void hub_free(struct hub *h)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;

	while (map_next(&h->rooms, &bucket, &e))
		room_free(e->val);
	map_free(&h->rooms);
}

void hub_conn_open(struct hub *h, struct conn *c)
{
	c->established = true;
	c->prev = NULL;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->nconns++;
	gw_m.conns.value++;
}

void hub_conn_close(struct hub *h, struct conn *c)
{
	if (!c->established)
		return;
	c->established = false;
	c->close_code = c->close_code ? c->close_code : 1000;
	while (c->rooms)
		room_remove_member(h, c->rooms);
	conn_queue_clear(c);
	refs_free(c);
	free(c->rx);
	c->rx = NULL;
	if (c->claims) {
		jwt_claims_free(c->claims);
		free(c->claims);
		c->claims = NULL;
	}
	free(c->user);
	c->user = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	gw_m.conns.value--;
}

void hub_tick(struct hub *h, int64_t now_ms)
{
	struct conn *c;

	for (c = h->conns; c; c = c->next) {
		if (c->exp && c->exp * 1000 <= now_ms && !c->close_code) {
			gw_m.expired.value++;
			conn_error(c, E_UNAUTHORIZED, NULL, "token expired");
			conn_close(c, 1008, "token expired");
		}
	}
}
