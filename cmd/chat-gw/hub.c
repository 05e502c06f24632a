/*
 * hub: the client protocol of chat-gw (see hub.h and chat-protocol(7)).
 *
 * A room holds its members (a list, for fan-out), a count of connections per
 * user (presence: a user with several connections is there once), its last
 * seq and, in standalone mode, a ring of its last --history message frames.
 * A message is serialised once into a frame; every member's send queue and
 * the history ring hold references to that one frame.
 *
 * In bus mode (no --standalone) the gateway does not sequence: a publish
 * becomes a bus line for chat-relay and is acked when the relay's confirm
 * comes back; sequenced messages arrive on the bus and go to the local
 * members; history, presence lists and recovery are queries answered by
 * other programs (chat-archive, chat-presence), each with a deadline.
 */
#include "hub.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "bus.h"
#include "clock.h"
#include "gw.h"
#include "log.h"
#include "name.h"
#include "request.h"

struct hub hub;

struct member {
	struct conn *c;              /* the connection */
	bool recovering;             /* bus: join since, answer not here yet */
	struct frame **held;         /* live frames held while recovering */
	uint32_t nheld;              /* how many */
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
	struct map pjoined;          /* users who joined since the last flush */
	struct map pleft;            /* users who left since the last flush */
	struct room *pnext;          /* in the hub's list of rooms to flush */
	bool pdirty;                 /* on that list */
	bool seq_known;              /* bus: seq is the room's, not a guess */
	bool recovering;             /* bus: catching up after a gap */
	struct frame **held;         /* bus: live frames held meanwhile */
	uint32_t nheld;              /* how many */
};

#define ROOM_HOLD_MAX 65536          /* frames a recovering room may hold */

struct refent {
	char *ref;                   /* the ref as JSON text, malloc'd */
	struct frame *ack;           /* the ack sent for it, NULL until acked */
	char id[ID_MAX];             /* the message id given to it */
	bool pending;                /* bus: published, no confirm yet */
};

/* Bus mode: a publish waiting for its confirm, or a query for its answer. */
enum pending_kind {
	PEND_PUBLISH,   /* a publish waits for its confirm */
	PEND_HISTORY,   /* a history query */
	PEND_PRESENCE,  /* a presence query */
	PEND_RECOVER,   /* a join waits for the room's seq and what was missed */
	PEND_ROOM,      /* the gateway catches a room up after a gap */
};

struct pending {
	enum pending_kind kind;      /* what waits */
	uint64_t conn;               /* connection number of the asker */
	char *ref;                   /* the request's ref as JSON text, or NULL */
	char *room;                  /* the room asked about */
	int64_t t0_us;               /* when it was sent */
	int64_t ts;                  /* publish: the message's ts */
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

static void room_free(struct room *r);
static void member_unhold(struct member *m);

/* At --max-rooms: forget one room that has no members (its history goes
 * with it). Returns 0, or -1 when every room has members. The scan is
 * linear, but it runs only when the table is full. */
static int room_evict(struct hub *h)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;

	while (map_next(&h->rooms, &bucket, &e)) {
		struct room *r = e->val;

		/* Not one with presence changes or a recovery under way:
		 * those are still referred to. */
		if (r->nmembers == 0 && !r->pdirty && !r->recovering) {
			map_del(&h->rooms, r->name);
			room_free(r);
			gw_m.rooms.value--;
			gw_m.rooms_evicted.value++;
			return 0;
		}
	}
	return -1;
}

static struct room *room_get(struct hub *h, const char *name, bool create)
{
	struct room *r = map_get(&h->rooms, name);
	struct map_ent *e;

	if (r || !create)
		return r;
	if (h->rooms.n >= gw_cfg.max_rooms && room_evict(h) < 0)
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
	for (i = 0; i < r->nheld; i++)
		frame_unref(r->held[i]);
	free(r->held);
	map_free(&r->users);
	map_free(&r->pjoined);
	map_free(&r->pleft);
	free(r);
}

/* Rooms with no members and no history are dropped. */
static void room_maybe_drop(struct hub *h, struct room *r)
{
	if (r->nmembers || r->rlen || r->seq || r->recovering || r->pdirty)
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

/* Keep a live frame for a member whose recovery is under way; a member that
 * would hold more than its send queue allows is a slow consumer. */
static void member_hold(struct member *m, struct frame *f)
{
	struct frame **nh;

	if (m->c->close_code)
		return;
	if (m->nheld >= gw_cfg.send_queue) {
		member_unhold(m);
		m->recovering = false;
		conn_queue_clear(m->c);
		gw_m.slow.value++;
		m->c->close_code = 4008;
		m->c->close_reason = "slow consumer";
		hub.kill(m->c);
		return;
	}
	nh = realloc(m->held, (m->nheld + 1) * sizeof(*nh));
	if (!nh)
		return;
	m->held = nh;
	m->held[m->nheld++] = frame_ref(f);
}

static void member_unhold(struct member *m)
{
	uint32_t i;

	for (i = 0; i < m->nheld; i++)
		frame_unref(m->held[i]);
	free(m->held);
	m->held = NULL;
	m->nheld = 0;
}

static void room_fanout(struct room *r, struct frame *f, const struct conn *except)
{
	struct member *m;

	for (m = r->members; m; m = m->rnext) {
		if (m->c == except)
			continue;
		if (m->recovering) {
			member_hold(m, f);
			continue;
		}
		if (conn_push(m->c, f) == 0 && f->seq)
			gw_m.deliveries.value++;
	}
}

/* Presence changes are batched per room and sent every --presence-batch:
 * in a room of N members, N joins in a burst cost a few frames per member
 * instead of N each (N squared in all). A join and a leave of the same user
 * within one batch cancel out. */
static void room_presence_event(struct hub *h, struct room *r, const char *user,
				bool joined)
{
	struct map *add = joined ? &r->pjoined : &r->pleft;
	struct map *undo = joined ? &r->pleft : &r->pjoined;

	if (!map_del(undo, user))
		map_put(add, user, (void *)1);
	if (!r->pdirty) {
		r->pdirty = true;
		r->pnext = h->pdirty;
		h->pdirty = r;
	}
}

static void add_user_list(struct buf *b, const struct map *m)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;
	bool first = true;

	buf_adds(b, "[");
	while (map_next(m, &bucket, &e)) {
		buf_addf(b, "%s\"%s\"", first ? "" : ",", e->key);
		first = false;
	}
	buf_adds(b, "]");
}

void hub_presence_flush(struct hub *h)
{
	struct room *r, *next;

	for (r = h->pdirty, h->pdirty = NULL; r; r = next) {
		struct buf b = BUF_INIT(0);
		struct frame *f;

		next = r->pnext;
		r->pnext = NULL;
		r->pdirty = false;
		if (r->pjoined.n || r->pleft.n) {
			buf_addf(&b, "{\"type\":\"presence\",\"room\":\"%s\",\"joined\":", r->name);
			add_user_list(&b, &r->pjoined);
			buf_adds(&b, ",\"left\":");
			add_user_list(&b, &r->pleft);
			buf_adds(&b, "}");
			f = frame_new(b.data, b.len);
			if (f) {
				room_fanout(r, f, NULL);
				frame_unref(f);
			}
			if (!gw_cfg.standalone) {
				/* Other gateways tell their members too. */
				b.len--; /* drop the closing brace */
				buf_addf(&b, ",\"route\":\"evt.%s\",\"node\":\"%s\"}",
					 r->name, gw_cfg.node);
				if (bus_send(b.data, b.len) == 0)
					gw_m.bus_out.value++;
			}
			buf_release(&b);
			map_free(&r->pjoined);
			map_free(&r->pleft);
		}
		room_maybe_drop(h, r);
	}
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
		room_presence_event(&hub, r, c->user, true);
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
	member_unhold(m);
	free(m);
	n = (uintptr_t)map_get(&r->users, c->user);
	if (n <= 1) {
		map_del(&r->users, c->user);
		room_presence_event(h, r, c->user, false);
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

/* ---- bus mode: what waits for the bus ---- */

static void pending_free(struct pending *p)
{
	free(p->ref);
	free(p->room);
	free(p);
	gw_m.pending.value--;
}

/* Remember what waits under key. Returns it, or NULL when --max-pending are
 * already waiting (the caller answers unavailable). */
static struct pending *pending_add(struct hub *h, const char *key,
				   enum pending_kind kind, struct conn *c,
				   const json_t *ref, const char *room)
{
	struct pending *p;

	if (h->pending.n >= gw_cfg.max_pending)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->kind = kind;
	p->conn = c ? c->id : 0;
	p->ref = ref ? json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	p->room = strdup(room);
	p->t0_us = clock_mono_us();
	if (!map_put(&h->pending, key, p)) {
		free(p->ref);
		free(p->room);
		free(p);
		return NULL;
	}
	gw_m.pending.value++;
	return p;
}

/* Append ,"ref":REF from a pending entry's saved text. */
static void add_saved_ref(struct buf *b, const char *ref)
{
	if (ref)
		buf_addf(b, ",\"ref\":%s", ref);
}

/* Send a query line for kind to route rpc.WHAT; the answer comes back with
 * the same "rpc". Returns 0, or -1 after answering the client unavailable. */
static int bus_query(struct hub *h, struct conn *c, struct request *q,
		     enum pending_kind kind, const char *what, struct buf *extra)
{
	struct buf b = BUF_INIT(0);
	char key[32];
	int r;

	snprintf(key, sizeof(key), "q%llu", (unsigned long long)++h->next_rpc);
	if (!pending_add(h, key, kind, c, q->ref, q->room)) {
		conn_error(c, E_UNAVAILABLE, q->ref, "too many requests waiting for the bus");
		return -1;
	}
	buf_addf(&b, "{\"type\":\"%s\",\"route\":\"rpc.%s\",\"rpc\":\"%s\","
		 "\"node\":\"%s\",\"conn\":%llu,\"room\":\"%s\"", what,
		 kind == PEND_PRESENCE ? "presence" : "history", key, gw_cfg.node,
		 (unsigned long long)c->id, q->room);
	if (extra)
		buf_add(&b, extra->data, extra->len);
	buf_adds(&b, "}");
	r = bus_send(b.data, b.len);
	buf_release(&b);
	if (r < 0) {
		pending_free(map_del(&h->pending, key));
		gw_m.bus_full.value++;
		conn_error(c, E_UNAVAILABLE, q->ref, "the bus is not taking requests; retry");
		return -1;
	}
	gw_m.bus_out.value++;
	return 0;
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
	if (!gw_cfg.standalone && (q->has_since || !r->seq_known)) {
		/* The archive knows the room's seq and has what was missed:
		 * hold live messages for this member until its answer, so
		 * everything leaves in seq order. Without since, the query
		 * asks for the seq alone. */
		struct member *m;
		struct buf extra = BUF_INIT(0);

		if (q->has_since)
			buf_addf(&extra, ",\"since\":%llu", (unsigned long long)q->since);
		if (bus_query(h, c, q, PEND_RECOVER, "recover", &extra) < 0) {
			buf_release(&extra);
			room_maybe_drop(h, r);
			return;
		}
		buf_release(&extra);
		if (!(m = member_of(c, r))) {
			room_add_member(r, c);
			m = member_of(c, r);
		}
		if (m)
			m->recovering = true;
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
		for (s = q->since + 1 > first ? q->since + 1 : first;
		     s <= r->seq && s != 0; s++) {
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

/* Remember ref key with its message id and, once there is one, its ack. */
static struct refent *ref_remember(struct conn *c, const char *key,
				   const char *id, struct frame *ack)
{
	struct refent *e = ref_find(c, key);

	if (!gw_cfg.dedupe)
		return NULL;
	if (!e) {
		if (!c->refs && !(c->refs = calloc(gw_cfg.dedupe, sizeof(*c->refs))))
			return NULL;
		e = &c->refs[c->refnext];
		c->refnext = (uint32_t)((c->refnext + 1) % gw_cfg.dedupe);
		free(e->ref);
		frame_unref(e->ack);
		e->ref = strdup(key);
		e->ack = NULL;
	}
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->pending = false;
	if (ack) {
		frame_unref(e->ack);
		e->ack = frame_ref(ack);
	}
	return e;
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

/* The body as compact JSON text in out (emptied first), encoded once:
 * into the room out already has, again only when it did not fit. Returns
 * 0 or -1 (out of memory). */
static int body_text(const json_t *body, struct buf *out)
{
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	size_t room, n;

	buf_reset(out);
	if (buf_grow(out, 1024) < 0)
		return -1;
	room = out->cap - 1;
	n = json_dumpb(body, out->data, room, flags);
	if (n > room) {
		if (buf_grow(out, n) < 0)
			return -1;
		n = json_dumpb(body, out->data, n, flags);
	}
	out->len = n;
	out->data[n] = '\0';
	return 0;
}

/* One publish's body text at a time: the loop is single-threaded. */
static struct buf body_buf = BUF_INIT(0);

/* Bus mode: hand the publish to the relay for the durable ingest queue; the
 * ack waits for the broker's confirm (hub_bus_line). */
static void publish_bus(struct hub *h, struct conn *c, struct request *q,
			const char *refkey, const char *id, int64_t ts)
{
	struct buf b = BUF_INIT(0);
	struct pending *p;
	struct refent *e;

	if (map_find(&h->pending, id)) {
		/* The same id is still on its way (a retry after a timeout
		 * whose confirm came in late): its confirm answers this too. */
		gw_m.dedupe_hits.value++;
		return;
	}
	p = pending_add(h, id, PEND_PUBLISH, c, q->ref, q->room);
	if (!p) {
		conn_error(c, E_UNAVAILABLE, q->ref, "too many publishes waiting for the bus; retry");
		return;
	}
	p->ts = ts;
	buf_addf(&b, "{\"type\":\"publish\",\"route\":\"ingest\",\"confirm\":\"%s\","
		 "\"node\":\"%s\",\"id\":\"%s\",\"room\":\"%s\",\"from\":\"%s\","
		 "\"ts\":%lld,\"body\":", id, gw_cfg.node, id, q->room, c->user,
		 (long long)ts);
	if (buf_add(&b, body_buf.data, body_buf.len) < 0 || buf_adds(&b, "}") < 0 ||
	    bus_send(b.data, b.len) < 0) {
		pending_free(map_del(&h->pending, id));
		gw_m.bus_full.value++;
		conn_error(c, E_UNAVAILABLE, q->ref,
			   "the bus is not taking messages; retry with the same ref");
		if (refkey)
			ref_remember(c, refkey, id, NULL);
		buf_release(&b);
		return;
	}
	gw_m.bus_out.value++;
	buf_release(&b);
	if (refkey && (e = ref_remember(c, refkey, id, NULL)))
		e->pending = true;
}

static void do_publish(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(h, q->room, false);
	struct buf b = BUF_INIT(0);
	char id[ID_MAX], *refkey = NULL;
	struct refent *seen;
	struct frame *f, *ack;
	int64_t t0 = clock_mono_us(), ts;

	if (!r || !member_of(c, r)) {
		conn_error(c, E_NOT_JOINED, q->ref, "join the room before publishing");
		return;
	}
	if (q->ref) {
		refkey = json_dumps(q->ref, JSON_COMPACT | JSON_ENCODE_ANY);
		seen = refkey ? ref_find(c, refkey) : NULL;
		if (seen && (seen->ack || seen->pending)) {
			/* Answered already, or the answer is on its way. */
			gw_m.dedupe_hits.value++;
			if (seen->ack)
				conn_push(c, seen->ack);
			free(refkey);
			return;
		}
	}
	if (body_text(q->body, &body_buf) < 0)
		goto out_internal;
	if (body_buf.len > gw_cfg.max_body) {
		conn_error(c, E_TOO_LARGE, q->ref, "body is larger than the gateway's --max-body");
		goto out;
	}
	if (!rate_ok(c)) {
		conn_error(c, E_RATE_LIMITED, q->ref, "publishing too fast; slow down");
		goto out;
	}
	ts = clock_wall_ms();
	if (refkey && (seen = ref_find(c, refkey)))
		snprintf(id, sizeof(id), "%s", seen->id); /* a retry keeps its id */
	else
		id_next(&h->ids, id);
	if (!gw_cfg.standalone) {
		publish_bus(h, c, q, refkey, id, ts);
		goto out;
	}
	buf_addf(&b, "{\"type\":\"message\",\"room\":\"%s\",\"seq\":%llu,\"id\":\"%s\","
		 "\"from\":\"%s\",\"ts\":%lld,\"body\":", r->name,
		 (unsigned long long)(r->seq + 1), id, c->user, (long long)ts);
	if (buf_add(&b, body_buf.data, body_buf.len) < 0 || buf_adds(&b, "}") < 0)
		goto out_internal;
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
			ref_remember(c, refkey, id, ack);
		frame_unref(ack);
	}
	metric_observe(&gw_m.ack_latency, (double)(clock_mono_us() - t0) / 1e6);
	goto out;
out_internal:
	conn_error(c, E_INTERNAL, q->ref, "out of memory");
out:
	buf_release(&b);
	free(refkey);
	if (body_buf.cap > 64 * 1024)
		buf_release(&body_buf); /* keep the usual size only */
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
	if (!gw_cfg.standalone) {
		struct buf extra = BUF_INIT(0);

		buf_addf(&extra, ",\"limit\":%llu", (unsigned long long)limit);
		if (q->has_before)
			buf_addf(&extra, ",\"before\":%llu", (unsigned long long)q->before);
		bus_query(h, c, q, PEND_HISTORY, "history", &extra);
		buf_release(&extra);
		return;
	}
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
	if (!gw_cfg.standalone) {
		bus_query(h, c, q, PEND_PRESENCE, "presence", NULL);
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
	if (f) {
		room_fanout(r, f, c);
		frame_unref(f);
	}
	if (!gw_cfg.standalone) {
		/* Ephemeral: straight to the other gateways, never stored. */
		b.len--;
		buf_addf(&b, ",\"route\":\"evt.%s\",\"node\":\"%s\"}", r->name,
			 gw_cfg.node);
		if (bus_send(b.data, b.len) == 0)
			gw_m.bus_out.value++;
	}
	buf_release(&b);
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

/* ---- bus mode: what comes back ---- */

/* Fan out a sequenced frame in order: the room's seq moves to it. */
static void room_deliver_seq(struct room *r, struct frame *f)
{
	r->seq = f->seq;
	gw_m.messages.value++;
	room_fanout(r, f, NULL);
}

/* Deliver what a recovering room held (what is newer than its seq, in
 * order) and stop holding. */
static void room_release(struct room *r)
{
	uint32_t i;

	r->recovering = false;
	for (i = 0; i < r->nheld; i++) {
		if (r->held[i]->seq > r->seq)
			room_deliver_seq(r, r->held[i]);
		frame_unref(r->held[i]);
	}
	free(r->held);
	r->held = NULL;
	r->nheld = 0;
}

/* Ask the sequencer for what this room missed since its seq (a gap seen,
 * or the relay's queue was gone for a while). Live messages are held until
 * the answer. */
static void room_recover(struct hub *h, struct room *r)
{
	struct buf b = BUF_INIT(0);
	char key[32];

	if (gw_cfg.standalone || r->recovering || !r->seq_known)
		return;
	snprintf(key, sizeof(key), "q%llu", (unsigned long long)++h->next_rpc);
	if (!pending_add(h, key, PEND_ROOM, NULL, NULL, r->name))
		return;
	buf_addf(&b, "{\"type\":\"recover\",\"route\":\"rpc.history\",\"rpc\":\"%s\","
		 "\"node\":\"%s\",\"room\":\"%s\",\"since\":%llu}", key, gw_cfg.node,
		 r->name, (unsigned long long)r->seq);
	if (bus_send(b.data, b.len) < 0) {
		pending_free(map_del(&h->pending, key));
		gw_m.bus_full.value++;
	} else {
		gw_m.bus_out.value++;
		gw_m.room_recoveries.value++;
		r->recovering = true;
		LOG_I("recovering a room", "room=%s since=%llu", log_q(r->name),
		      (unsigned long long)r->seq);
	}
	buf_release(&b);
}

/* The answer to room_recover: the missed messages, then what was held. */
static void room_recovered(struct hub *h, struct room *r, json_t *ans)
{
	json_t *msgs = json_object_get(ans, "messages"), *v;
	size_t k;

	if (!r->recovering)
		return;
	json_array_foreach(msgs, k, v) {
		json_t *sv = json_object_get(v, "seq");
		struct frame *f;
		char *s;

		if (!json_is_object(v) || !json_is_integer(sv) ||
		    (uint64_t)json_integer_value(sv) <= r->seq)
			continue;
		s = json_dumps(v, JSON_COMPACT);
		f = s ? frame_new(s, strlen(s)) : NULL;
		free(s);
		if (!f)
			continue;
		f->seq = (uint64_t)json_integer_value(sv);
		room_deliver_seq(r, f);
		frame_unref(f);
	}
	room_release(r);
}

/* The relay's broker connection is back: its queue may have been gone, so
 * catch up every room that has members here. */
static void hub_bus_up(struct hub *h)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;

	while (map_next(&h->rooms, &bucket, &e)) {
		struct room *r = e->val;

		if (r->nmembers)
			room_recover(h, r);
	}
}

static struct conn *conn_by_id(struct hub *h, uint64_t id)
{
	char key[24];

	snprintf(key, sizeof(key), "%llu", (unsigned long long)id);
	return map_get(&h->by_id, key);
}

static void bus_confirm(struct hub *h, const char *key, bool ok)
{
	struct pending *p = map_find(&h->pending, key) ? map_del(&h->pending, key) : NULL;
	struct buf b = BUF_INIT(0);
	struct refent *e;
	struct frame *ack;
	struct conn *c;

	if (!p || p->kind != PEND_PUBLISH) {
		/* Late (timed out already) or not ours: nothing waits. */
		LOG_D("confirm without a waiting publish", "confirm=%s", log_q(key));
		if (p)
			pending_free(p);
		return;
	}
	c = conn_by_id(h, p->conn);
	e = c && p->ref ? ref_find(c, p->ref) : NULL;
	if (e)
		e->pending = false;
	if (!c) {
		pending_free(p);
		return;
	}
	if (!ok) {
		gw_m.bus_nacks.value++;
		conn_error(c, E_UNAVAILABLE, NULL, "the broker refused the message; retry with the same ref");
		pending_free(p);
		return;
	}
	buf_adds(&b, "{\"type\":\"ack\"");
	add_saved_ref(&b, p->ref);
	buf_addf(&b, ",\"id\":\"%s\",\"ts\":%lld}", key, (long long)p->ts);
	ack = frame_new(b.data, b.len);
	if (ack) {
		conn_push(c, ack);
		if (e)
			ref_remember(c, p->ref, key, ack);
		frame_unref(ack);
	}
	metric_observe(&gw_m.ack_latency, (double)(clock_mono_us() - p->t0_us) / 1e6);
	buf_release(&b);
	pending_free(p);
}

/* Send obj (a message object) with "recovered":true. Returns its seq. */
static uint64_t send_recovered(struct conn *c, json_t *obj)
{
	json_t *seq = json_object_get(obj, "seq");
	char *s;

	json_object_set_new(obj, "recovered", json_true());
	s = json_dumps(obj, JSON_COMPACT);
	if (s) {
		conn_send_text(c, s, strlen(s));
		free(s);
	}
	return json_is_integer(seq) ? (uint64_t)json_integer_value(seq) : 0;
}

static void bus_recovered(struct hub *h, struct conn *c, struct pending *p,
			  json_t *ans)
{
	struct room *r = room_get(h, p->room, false);
	struct member *m = r ? member_of(c, r) : NULL;
	json_t *msgs = json_object_get(ans, "messages"), *v, *gap;
	struct buf b = BUF_INIT(0);
	uint64_t last = 0, maxseq = 0, s;
	uint32_t i;
	size_t k;

	if (!m || !m->recovering)
		return; /* left meanwhile */
	v = json_object_get(ans, "seq");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		last = (uint64_t)json_integer_value(v);
	if (last > r->seq)
		r->seq = last;
	r->seq_known = true;
	buf_addf(&b, "{\"type\":\"joined\",\"room\":\"%s\"", r->name);
	add_saved_ref(&b, p->ref);
	buf_addf(&b, ",\"seq\":%llu", (unsigned long long)r->seq);
	gap = json_object_get(ans, "gap");
	if (json_is_object(gap)) {
		char *g = json_dumps(gap, JSON_COMPACT);

		if (g)
			buf_addf(&b, ",\"gap\":%s", g);
		free(g);
	}
	buf_adds(&b, "}");
	conn_send_buf(c, &b);
	json_array_foreach(msgs, k, v) {
		if (!json_is_object(v))
			continue;
		s = send_recovered(c, v);
		if (s > maxseq)
			maxseq = s;
	}
	/* Then what arrived live meanwhile, minus what recovery already sent
	 * (or, with nothing to recover, what came before the joined seq). */
	if (maxseq == 0)
		maxseq = last;
	m->recovering = false;
	for (i = 0; i < m->nheld; i++)
		if (m->held[i]->seq == 0 || m->held[i]->seq > maxseq)
			conn_push(c, m->held[i]);
	member_unhold(m);
}

static void bus_answer(struct hub *h, const char *rpc, json_t *ans)
{
	struct pending *p = map_find(&h->pending, rpc) ? map_del(&h->pending, rpc) : NULL;
	struct buf b = BUF_INIT(0);
	json_t *err = json_object_get(ans, "error");
	struct conn *c;
	char *s;

	if (!p) {
		LOG_D("answer without a waiting query", "rpc=%s", log_q(rpc));
		return;
	}
	if (p->kind == PEND_ROOM) {
		struct room *r = room_get(h, p->room, false);

		if (r && err)
			room_release(r);
		else if (r)
			room_recovered(h, r, ans);
		goto out;
	}
	c = conn_by_id(h, p->conn);
	if (!c || c->close_code)
		goto out;
	if (err) {
		struct room *r = room_get(h, p->room, false);
		struct member *m = r ? member_of(c, r) : NULL;

		conn_error(c, E_UNAVAILABLE, NULL,
			   json_is_string(err) ? json_string_value(err) : "query failed");
		if (p->kind == PEND_RECOVER && m && m->recovering)
			room_remove_member(h, m);
		goto out;
	}
	switch (p->kind) {
	case PEND_RECOVER:
		bus_recovered(h, c, p, ans);
		break;
	case PEND_HISTORY:
		buf_addf(&b, "{\"type\":\"history\",\"room\":\"%s\"", p->room);
		add_saved_ref(&b, p->ref);
		s = json_dumps(json_is_array(json_object_get(ans, "messages")) ?
			       json_object_get(ans, "messages") : json_array(), JSON_COMPACT);
		buf_addf(&b, ",\"messages\":%s,\"more\":%s}", s ? s : "[]",
			 json_is_true(json_object_get(ans, "more")) ? "true" : "false");
		free(s);
		conn_send_buf(c, &b);
		break;
	case PEND_PRESENCE:
		buf_addf(&b, "{\"type\":\"presence\",\"room\":\"%s\"", p->room);
		add_saved_ref(&b, p->ref);
		s = json_is_array(json_object_get(ans, "users")) ?
			json_dumps(json_object_get(ans, "users"), JSON_COMPACT) : NULL;
		buf_addf(&b, ",\"users\":%s}", s ? s : "[]");
		free(s);
		conn_send_buf(c, &b);
		break;
	default:
		break;
	}
out:
	buf_release(&b);
	pending_free(p);
}

/* A sequenced message or an event from another gateway: to local members. */
static void bus_deliver(struct hub *h, json_t *root, const char *type)
{
	const char *room = json_string_value(json_object_get(root, "room"));
	const char *node = json_string_value(json_object_get(root, "node"));
	json_t *seqv = json_object_get(root, "seq");
	struct room *r;
	struct frame *f;
	uint64_t seq = 0;
	char *s;

	if (!room || !name_room_valid(room, strlen(room))) {
		gw_m.bus_bad.value++;
		LOG_W("bus line without a valid room", "type=%s", log_q(type));
		return;
	}
	if (!strcmp(type, "message")) {
		if (!json_is_integer(seqv) || json_integer_value(seqv) <= 0) {
			gw_m.bus_bad.value++;
			LOG_W("bus message without a seq", "room=%s", log_q(room));
			return;
		}
		seq = (uint64_t)json_integer_value(seqv);
	} else if (node && !strcmp(node, gw_cfg.node)) {
		return; /* our own event: the local members had it already */
	}
	r = room_get(h, room, false);
	if (!r)
		return; /* no members here */
	if (seq && r->seq_known && seq <= r->seq && !r->recovering) {
		gw_m.bus_dups.value++; /* at-least-once: seen already */
		return;
	}
	json_object_del(root, "route");
	json_object_del(root, "node");
	json_object_del(root, "tag");
	json_object_del(root, "confirm");
	json_object_del(root, "conn");
	s = json_dumps(root, JSON_COMPACT);
	if (!s)
		return;
	f = frame_new(s, strlen(s));
	free(s);
	if (!f)
		return;
	f->seq = seq;
	if (!seq) {
		room_fanout(r, f, NULL);
	} else if (!r->seq_known) {
		/* The first join's answer is on its way: members hold it. */
		if (seq > r->seq)
			r->seq = seq;
		gw_m.messages.value++;
		room_fanout(r, f, NULL);
	} else if (r->recovering || seq > r->seq + 1) {
		/* A gap: hold live messages and ask for what is missing. */
		room_recover(h, r);
		if (r->recovering && r->nheld < ROOM_HOLD_MAX) {
			struct frame **nh = realloc(r->held, (r->nheld + 1) * sizeof(*nh));

			if (nh) {
				r->held = nh;
				r->held[r->nheld++] = frame_ref(f);
			}
		} else {
			/* Cannot ask or cannot hold: deliver, the client sees
			 * the gap and can ask history. */
			if (r->recovering)
				room_release(r);
			if (seq > r->seq)
				room_deliver_seq(r, f);
		}
	} else {
		room_deliver_seq(r, f);
	}
	frame_unref(f);
}

void hub_bus_line(struct hub *h, const char *line, size_t n)
{
	json_t *root = json_loadb(line, n, 0, NULL), *v;
	const char *type;

	gw_m.bus_in.value++;
	if (!root || !json_is_object(root) ||
	    !(type = json_string_value(json_object_get(root, "type")))) {
		gw_m.bus_bad.value++;
		LOG_W("malformed bus line", "line=%s", log_q(line));
		json_decref(root);
		return;
	}
	if (!strcmp(type, "confirm") || !strcmp(type, "nack")) {
		v = json_object_get(root, "confirm");
		if (json_is_string(v))
			bus_confirm(h, json_string_value(v), !strcmp(type, "confirm"));
		else
			gw_m.bus_bad.value++;
	} else if (json_is_string(v = json_object_get(root, "rpc"))) {
		const char *node = json_string_value(json_object_get(root, "node"));

		/* Our own query seen on the bus is not an answer. */
		if (!json_object_get(root, "route") || !node || strcmp(node, gw_cfg.node) ||
		    strncmp(json_string_value(json_object_get(root, "route")), "rpc.", 4))
			bus_answer(h, json_string_value(v), root);
	} else if (!strcmp(type, "bus")) {
		const char *st = json_string_value(json_object_get(root, "state"));

		LOG_I("relay reports the broker", "state=%s", log_q(st));
		if (st && !strcmp(st, "up"))
			hub_bus_up(h);
	} else if (!strcmp(type, "message") || !strcmp(type, "typing") ||
		   !strcmp(type, "presence")) {
		bus_deliver(h, root, type);
	} else {
		gw_m.bus_bad.value++;
		LOG_W("unknown bus line type", "type=%s", log_q(type));
	}
	json_decref(root);
}

static void pending_expire(struct hub *h, int64_t now_us)
{
	int64_t limit = (int64_t)gw_cfg.bus_timeout_ms * 1000;
	struct map_ent *e = NULL;
	size_t bucket = 0, n = 0, i;
	char **keys;

	if (!h->pending.n)
		return;
	keys = malloc(h->pending.n * sizeof(*keys));
	if (!keys)
		return;
	while (map_next(&h->pending, &bucket, &e))
		if (now_us - ((struct pending *)e->val)->t0_us >= limit)
			keys[n++] = strdup(e->key);
	for (i = 0; i < n; i++) {
		struct pending *p = keys[i] ? map_del(&h->pending, keys[i]) : NULL;
		struct conn *c = p ? conn_by_id(h, p->conn) : NULL;

		if (p)
			gw_m.bus_timeouts.value++;
		if (p && p->kind == PEND_ROOM) {
			struct room *r = room_get(h, p->room, false);

			if (r)
				room_release(r);
		} else if (c && !c->close_code) {
			struct refent *re = p->ref ? ref_find(c, p->ref) : NULL;
			struct room *r = room_get(h, p->room, false);
			struct member *m = r ? member_of(c, r) : NULL;
			json_t *ref = p->ref ? json_loads(p->ref, JSON_DECODE_ANY, NULL) : NULL;

			if (re)
				re->pending = false;
			conn_error(c, E_UNAVAILABLE, ref, p->kind == PEND_PUBLISH ?
				   "no confirm from the bus in time; retry with the same ref" :
				   "no answer from the bus in time; retry");
			json_decref(ref);
			if (p->kind == PEND_RECOVER && m && m->recovering)
				room_remove_member(h, m);
		}
		if (p)
			pending_free(p);
		free(keys[i]);
	}
	free(keys);
}

/* ---- connections ---- */

int hub_init(struct hub *h, const char *node)
{
	struct map empty = MAP_INIT;

	h->rooms = empty;
	h->by_id = empty;
	h->pending = empty;
	h->conns = NULL;
	h->nconns = 0;
	h->next_conn = 0;
	h->next_rpc = 0;
	h->pdirty = NULL;
	return id_init(&h->ids, node, clock_wall_ms());
}

void hub_free(struct hub *h)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;

	while (map_next(&h->rooms, &bucket, &e))
		room_free(e->val);
	map_free(&h->rooms);
	e = NULL;
	bucket = 0;
	while (map_next(&h->pending, &bucket, &e))
		pending_free(e->val);
	map_free(&h->pending);
	map_free(&h->by_id);
	buf_release(&body_buf);
}

void hub_conn_open(struct hub *h, struct conn *c)
{
	char key[24];

	c->established = true;
	c->id = ++h->next_conn;
	snprintf(key, sizeof(key), "%llu", (unsigned long long)c->id);
	map_put(&h->by_id, key, c);
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
	char key[24];

	if (!c->established)
		return;
	c->established = false;
	snprintf(key, sizeof(key), "%llu", (unsigned long long)c->id);
	map_del(&h->by_id, key);
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
		if (c->exp && c->exp <= now_ms / 1000 && !c->close_code) {
			gw_m.expired.value++;
			conn_error(c, E_UNAUTHORIZED, NULL, "token expired");
			conn_close(c, 1008, "token expired");
		}
	}
	pending_expire(h, clock_mono_us());
}
