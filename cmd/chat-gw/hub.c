/*
 * hub: request dispatch (see hub.h). Each request is checked here the same
 * way in every mode, in the order chat-protocol(7) gives, and only what
 * differs between standalone and the bus goes to the mode's operations.
 */
#include "hub.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "gw.h"
#include "log.h"
#include "render.h"

struct hub hub;

/* The body of the publish being handled, as compact JSON text: one at a
 * time, the loop is single-threaded. */
static struct buf body_buf = BUF_INIT(0);

static void hub_presence_out(struct room *r, const struct map *joined,
			     const struct map *left, void *arg)
{
	struct hub *h = arg;

	h->ops->presence_changed(h, r, joined, left);
}

int hub_init(struct hub *h, const char *node, const struct hub_ops *ops, void *mode)
{
	struct map empty = MAP_INIT;

	rooms_init(&h->rooms);
	h->rooms.presence_out = hub_presence_out;
	h->rooms.presence_arg = h;
	LIST_INIT(&h->conns);
	h->nconns = 0;
	h->by_id = empty;
	h->next_conn = 0;
	h->ops = ops;
	h->mode = mode;
	return id_init(&h->ids, node, clock_wall_ms());
}

void hub_free(struct hub *h)
{
	rooms_free(&h->rooms);
	map_free(&h->by_id);
	buf_release(&body_buf);
}

static void conn_key(char key[24], uint64_t id)
{
	snprintf(key, 24, "%llu", (unsigned long long)id);
}

void hub_conn_open(struct hub *h, struct conn *c)
{
	char key[24];

	c->established = true;
	c->id = ++h->next_conn;
	LIST_INIT(&c->rooms);
	conn_key(key, c->id);
	if (!map_put(&h->by_id, key, c))
		conn_cut(c, 1011, "out of memory");
	LIST_INSERT_HEAD(&h->conns, c, entry);
	h->nconns++;
	gw_m.conns.value++;
}

void hub_conn_close(struct hub *h, struct conn *c)
{
	char key[24];

	if (!c->established)
		return;
	c->established = false;
	conn_key(key, c->id);
	map_del(&h->by_id, key);
	if (!c->close_code)
		c->close_code = 1000;
	while (!LIST_EMPTY(&c->rooms))
		room_remove_member(&h->rooms, LIST_FIRST(&c->rooms));
	conn_release(c);
	LIST_REMOVE(c, entry);
	h->nconns--;
	gw_m.conns.value--;
}

struct conn *hub_conn_by_id(struct hub *h, uint64_t id)
{
	char key[24];

	conn_key(key, id);
	return map_get(&h->by_id, key);
}

static bool room_allowed(const struct conn *c, const char *room)
{
	return !c->claims || jwt_room_allowed(c->claims, room);
}

/* A request that makes the gateway work or send much draws on the
 * connection's request bucket. Returns false after answering
 * rate_limited. */
static bool work_ok(struct conn *c, const struct request *q)
{
	if (conn_work_ok(c, 1))
		return true;
	conn_error(c, E_RATE_LIMITED, q->ref, "too many requests; slow down");
	return false;
}

static void do_join(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r;

	if (!work_ok(c, q))
		return;
	if (!room_allowed(c, q->room)) {
		conn_error(c, E_FORBIDDEN, q->ref, "this token does not allow that room");
		return;
	}
	r = room_get(&h->rooms, q->room, true);
	if (!r) {
		conn_error(c, E_UNAVAILABLE, q->ref, "too many rooms on this gateway");
		return;
	}
	/* Joining twice is harmless: answered again, recovered again. */
	if (!member_of(c, r) && c->nrooms >= gw_cfg.rooms_per_conn) {
		conn_error(c, E_FORBIDDEN, q->ref, "too many rooms on this connection");
		room_maybe_drop(&h->rooms, r);
		return;
	}
	h->ops->join(h, c, r, q);
}

static void do_leave(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(&h->rooms, q->room, false);
	struct member *m = r ? member_of(c, r) : NULL;
	struct buf b = BUF_INIT(0);

	if (!work_ok(c, q))
		return;
	if (!m) {
		conn_error(c, E_NOT_JOINED, q->ref, "not a member of that room");
		return;
	}
	render_left(&b, r->name, q->ref);
	conn_send_buf(c, &b);
	room_remove_member(&h->rooms, m);
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

static void do_publish(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(&h->rooms, q->room, false);
	struct hub_publish p;
	struct refent *seen = NULL;
	char id[ID_MAX];

	memset(&p, 0, sizeof(p));
	p.t0_us = clock_mono_us();
	if (!r || !member_of(c, r)) {
		conn_error(c, E_NOT_JOINED, q->ref, "join the room before publishing");
		return;
	}
	if (c->claims && !jwt_publish_allowed(c->claims, q->room)) {
		conn_error(c, E_FORBIDDEN, q->ref, "this token may not publish in that room");
		return;
	}
	if (q->ref) {
		p.refkey = q->ref;
		seen = conn_ref_find(c, q->ref);
		if (seen && (seen->ack || seen->pending)) {
			/* Answered already, or the answer is on its way. */
			gw_m.dedupe_hits.value++;
			if (seen->ack)
				conn_push(c, seen->ack);
			return;
		}
	}
	if (!conn_rate_ok(c)) {
		conn_error(c, E_RATE_LIMITED, q->ref, "publishing too fast; slow down");
		return;
	}
	if (body_text(q->body, &body_buf) < 0) {
		conn_error(c, E_INTERNAL, q->ref, "out of memory");
		return;
	}
	if (body_buf.len > gw_cfg.max_body) {
		conn_error(c, E_TOO_LARGE, q->ref, "body is larger than the gateway's --max-body");
		goto out;
	}
	if (seen)
		snprintf(id, sizeof(id), "%s", seen->id); /* a retry keeps its id */
	else
		id_next(&h->ids, id);
	p.id = id;
	p.ts = clock_wall_ms();
	p.body = body_buf.data;
	p.bodylen = body_buf.len;
	h->ops->publish(h, c, r, q, &p);
out:
	if (body_buf.cap > 64 * 1024)
		buf_release(&body_buf); /* keep the usual size only */
}

static void do_history(struct hub *h, struct conn *c, struct request *q)
{
	uint64_t limit = q->limit ? q->limit : HUB_HISTORY_DEFAULT;

	if (!work_ok(c, q))
		return;
	if (!room_allowed(c, q->room)) {
		conn_error(c, E_FORBIDDEN, q->ref, "this token does not allow that room");
		return;
	}
	if (limit > HUB_HISTORY_MAX)
		limit = HUB_HISTORY_MAX;
	h->ops->history(h, c, q, limit);
}

static void do_presence(struct hub *h, struct conn *c, struct request *q)
{
	uint64_t limit = q->limit ? q->limit : HUB_PRESENCE_DEFAULT;

	if (!work_ok(c, q))
		return;
	if (!room_allowed(c, q->room)) {
		conn_error(c, E_FORBIDDEN, q->ref, "this token does not allow that room");
		return;
	}
	if (limit > HUB_PRESENCE_MAX)
		limit = HUB_PRESENCE_MAX;
	h->ops->presence(h, c, q, limit);
}

static void do_typing(struct hub *h, struct conn *c, struct request *q)
{
	struct room *r = room_get(&h->rooms, q->room, false);
	struct buf b = BUF_INIT(0);
	struct frame *f;

	if (!r || !member_of(c, r)) {
		conn_error(c, E_NOT_JOINED, q->ref, "join the room before typing");
		return;
	}
	if (!conn_rate_ok(c)) {
		conn_error(c, E_RATE_LIMITED, q->ref, "sending too fast; slow down");
		return;
	}
	render_typing(&b, r->name, c->user);
	f = b.err ? NULL : frame_new(b.data, b.len);
	buf_release(&b);
	if (!f) {
		conn_error(c, E_INTERNAL, q->ref, "out of memory");
		return;
	}
	room_fanout(r, f, c);
	frame_unref(f);
	h->ops->typing(h, r, c->user);
}

/* The first frame of a connection that came without a token: it must be
 * {"type":"auth","token":JWT}. Anything else, or a bad token, closes it
 * with 1008 after an unauthorized error. */
static void do_auth(struct hub *h, struct conn *c, struct request *q, bool parsed)
{
	struct buf b = BUF_INIT(0);
	const char *why = "authenticate first: {\"type\":\"auth\",\"token\":...}";
	int st;

	(void)h;
	if (parsed && q->type == REQ_AUTH) {
		st = auth_token(c, q->token, q->tokenlen, &why);
		if (st == 0) {
			buf_adds(&b, "{\"type\":\"authed\"");
			if (q->ref)
				buf_addf(&b, ",\"ref\":%s", q->ref);
			buf_addf(&b, ",\"user\":\"%s\"}", c->user);
			conn_send_buf(c, &b);
			return;
		}
		gw_m.refused_auth.value++;
		LOG_I("refused a token", "reason=%s", log_q(why));
	}
	conn_error(c, E_UNAUTHORIZED, parsed ? q->ref : NULL, why);
	conn_close(c, 1008, "unauthorized");
}

void hub_frame(struct hub *h, struct conn *c, const char *text, size_t n)
{
	struct request q;
	const char *msg;
	int r;

	gw_m.frames_in.value++;
	r = request_parse(text, n, &q, &msg);
	if (!c->user) {
		do_auth(h, c, &q, r == 0);
		request_free(&q);
		return;
	}
	if (r < 0) {
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
	case REQ_AUTH:
		conn_error(c, E_BAD_REQUEST, q.ref, "this connection is authenticated already");
		break;
	}
	request_free(&q);
}

void hub_presence_flush(struct hub *h)
{
	rooms_presence_flush(&h->rooms);
}

void hub_tick(struct hub *h, int64_t now_ms)
{
	struct conn *c;

	LIST_FOREACH(c, &h->conns, entry) {
		if (c->exp && auth_expiry(c) <= now_ms / 1000 && !c->close_code) {
			gw_m.expired.value++;
			conn_error(c, E_UNAUTHORIZED, NULL, "token expired");
			conn_close(c, 1008, "token expired");
		}
	}
	h->ops->tick(h, clock_mono_us());
}

void hub_close_all(struct hub *h, uint16_t code, const char *reason)
{
	struct conn *c;

	LIST_FOREACH(c, &h->conns, entry)
		conn_close(c, code, reason);
}
