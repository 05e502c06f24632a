/*
 * upstream: the gateway's side of the bus (see upstream.h and the BUS
 * PROTOCOL of chat-protocol(7)).
 *
 * Lines from the relay are read with lib/skim.c, not decoded: a message
 * whose room has no member here or whose seq was delivered already is
 * dropped after a look at three members, and one that is delivered is
 * checked once (skim_valid) and framed as it came, the bus members some
 * relays leave in it cut out. The rarer answers are read the same way, so
 * a message inside an answer is forwarded byte for byte too.
 */
#include "upstream.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "catchup.h"
#include "clock.h"
#include "gw.h"
#include "log.h"
#include "name.h"
#include "presence.h"
#include "render.h"
#include "shard.h"
#include "skim.h"

static struct upstream *up_of(struct hub *h)
{
	return h->mode;
}

/* Send a query of type what to route rpc.ROUTE for c's request q, with
 * extra members (JSON text starting with a comma, or NULL). Returns 0, or
 * -1 after answering the client unavailable. */
static int up_query(struct upstream *u, struct conn *c, const struct request *q,
		    enum query_kind kind, const char *what, const char *route,
		    const char *extra)
{
	struct buf b = BUF_INIT(0);
	char key[QUERY_KEY_MAX];

	query_key(&u->qs, key);
	if (!query_add(&u->qs, key, kind, c, q->ref, q->room)) {
		conn_error(c, E_UNAVAILABLE, q->ref, "too many requests waiting for the bus");
		return -1;
	}
	buf_addf(&b, "{\"type\":\"%s\",\"route\":\"rpc.%s\",\"expire\":%llu,\"rpc\":\"%s\","
		 "\"node\":\"%s\",\"conn\":%llu,\"room\":\"%s\"%s}", what, route,
		 (unsigned long long)gw_cfg.bus_timeout_ms, key, gw_cfg.node,
		 (unsigned long long)c->id, q->room, extra ? extra : "");
	if (query_send(&u->qs, &b) < 0) {
		query_free(&u->qs, query_take(&u->qs, key));
		conn_error(c, E_UNAVAILABLE, q->ref, "the bus is not taking requests; retry");
		return -1;
	}
	return 0;
}

/* ---- the operations ---- */

static void up_join(struct hub *h, struct conn *c, struct room *r,
		    const struct request *q)
{
	struct upstream *u = up_of(h);
	struct member *m;
	struct buf b = BUF_INIT(0);
	char extra[48] = "";

	if (!q->has_since && r->seq_known) {
		render_joined(&b, r->name, q->ref, r->seq, 0, 0);
		if (conn_send_buf(c, &b) == CONN_QUEUED && !member_of(c, r) &&
		    !room_add_member(&h->rooms, r, c))
			conn_error(c, E_INTERNAL, q->ref, "out of memory");
		return;
	}
	/* The archive knows the room's seq and has what was missed: hold
	 * live messages for this member until its answer, so everything
	 * leaves in seq order. Without since, the query asks for the seq
	 * alone. */
	if (q->has_since)
		snprintf(extra, sizeof(extra), ",\"since\":%llu",
			 (unsigned long long)q->since);
	if (up_query(u, c, q, QUERY_RECOVER, "recover", "history", extra) < 0) {
		room_maybe_drop(&h->rooms, r);
		return;
	}
	m = member_of(c, r);
	if (!m && !(m = room_add_member(&h->rooms, r, c))) {
		conn_error(c, E_INTERNAL, q->ref, "out of memory");
		return;
	}
	m->recovering = true;
}

static void up_publish(struct hub *h, struct conn *c, struct room *r,
		       const struct request *q, const struct hub_publish *p)
{
	struct upstream *u = up_of(h);
	struct buf b = BUF_INIT(0);
	struct query *pe;
	struct refent *e;

	if (query_find(&u->qs, p->id)) {
		/* The same id is still on its way (a retry after a timeout
		 * whose confirm came in late): its confirm answers this too. */
		gw_m.dedupe_hits.value++;
		return;
	}
	pe = query_add(&u->qs, p->id, QUERY_PUBLISH, c, q->ref, r->name);
	if (!pe) {
		conn_error(c, E_UNAVAILABLE, q->ref, "too many publishes waiting for the bus; retry");
		return;
	}
	pe->ts = p->ts;
	pe->t0_us = p->t0_us;
	buf_addf(&b, "{\"type\":\"publish\",\"route\":\"ingest.%u\",\"confirm\":\"%s\","
		 "\"id\":\"%s\",\"room\":\"%s\",\"from\":\"%s\",\"ts\":%lld,\"node\":\"%s\","
		 "\"body\":", shard_of(r->name, strlen(r->name), (uint32_t)gw_cfg.ingest_shards),
		 p->id, p->id, r->name, c->user, (long long)p->ts, gw_cfg.node);
	buf_add(&b, p->body, p->bodylen);
	buf_adds(&b, "}");
	if (query_send(&u->qs, &b) < 0) {
		query_free(&u->qs, query_take(&u->qs, p->id));
		conn_error(c, E_UNAVAILABLE, q->ref,
			   "the bus is not taking messages; retry with the same ref");
		if (p->refkey)
			conn_ref_remember(c, p->refkey, p->id, NULL);
		return;
	}
	if (p->refkey && (e = conn_ref_remember(c, p->refkey, p->id, NULL)))
		e->pending = true;
}

static void up_history(struct hub *h, struct conn *c, const struct request *q,
		       uint64_t limit)
{
	char extra[64];
	int n = snprintf(extra, sizeof(extra), ",\"limit\":%llu", (unsigned long long)limit);

	if (q->has_before)
		snprintf(extra + n, sizeof(extra) - (size_t)n, ",\"before\":%llu",
			 (unsigned long long)q->before);
	up_query(up_of(h), c, q, QUERY_HISTORY, "history", "history", extra);
}

static void up_presence(struct hub *h, struct conn *c, const struct request *q,
			uint64_t limit)
{
	char extra[32];

	snprintf(extra, sizeof(extra), ",\"limit\":%llu", (unsigned long long)limit);
	up_query(up_of(h), c, q, QUERY_PRESENCE, "presence", "presence", extra);
}

static void up_typing(struct hub *h, struct room *r, const char *from)
{
	struct buf b = BUF_INIT(0);

	/* Ephemeral: straight to the other gateways, never stored. */
	buf_addf(&b, "{\"type\":\"typing\",\"room\":\"%s\",\"from\":\"%s\","
		 "\"node\":\"%s\",\"route\":\"evt.%s\"}", r->name, from, gw_cfg.node,
		 r->name);
	query_send(&up_of(h)->qs, &b);
}

static void up_presence_changed(struct hub *h, struct room *r,
				const struct map *joined, const struct map *left)
{
	struct upstream *u = up_of(h);
	struct buf b = BUF_INIT(0), j = BUF_INIT(0), l = BUF_INIT(0);
	struct frame *f;

	if (!gw_cfg.presence_local) {
		/* chat-presence counts users across gateways and tells
		 * every gateway's members, ours included. */
		if (!u->down)
			presence_lines(&u->qs, r, joined, left);
		return;
	}
	render_names(&j, joined, 0);
	render_names(&l, left, 0);
	render_presence_change(&b, r->name, j.data, j.len, l.data, l.len);
	f = b.err || j.err || l.err ? NULL : frame_new(b.data, b.len);
	if (!f) {
		LOG_W("out of memory: presence changes not sent", "room=%s", log_q(r->name));
		goto out;
	}
	if (room_presence_quiet(r))
		gw_m.presence_quiet.value++;
	else
		room_fanout(r, f, NULL);
	frame_unref(f);
	/* Other gateways tell their members too. */
	b.len--; /* drop the closing brace */
	b.data[b.len] = '\0';
	buf_addf(&b, ",\"node\":\"%s\",\"route\":\"evt.%s\"}", gw_cfg.node, r->name);
	query_send(&u->qs, &b);
out:
	buf_release(&b);
	buf_release(&j);
	buf_release(&l);
}

/* ---- what comes back ---- */

/* The contents of a string member without escapes (names, ids, keys) into
 * out (size bytes). Returns false when it is not such a string. */
static bool span_name(const struct skim_field *f, char *out, size_t size)
{
	size_t n;

	if (!f->v || f->vlen < 2 || f->v[0] != '"' || f->v[f->vlen - 1] != '"')
		return false;
	n = f->vlen - 2;
	if (n == 0 || n >= size || memchr(f->v + 1, '\\', n) || memchr(f->v + 1, '\0', n))
		return false;
	memcpy(out, f->v + 1, n);
	out[n] = '\0';
	return true;
}

/* Whether a member's value is the literal true. */
static bool span_true(const struct skim_field *f)
{
	return f->v && f->vlen == 4 && !memcmp(f->v, "true", 4);
}

/* A typing or presence event: to local members, unless it is our own. */
static void up_event(struct upstream *u, const char *line, size_t n, struct room *r,
		     const struct skim_field *node, bool presence)
{
	char who[ID_NODE_MAX + 1];
	struct frame *f;

	if (node->v && span_name(node, who, sizeof(who)) && !strcmp(who, gw_cfg.node))
		return; /* our own: the local members had it already */
	if (presence && room_presence_quiet(r)) {
		gw_m.presence_quiet.value++;
		return;
	}
	if (!skim_valid(line, n) || !(f = frame_from_bus(line, n, 0))) {
		gw_m.bus_bad.value++;
		LOG_W("bus event that is not valid JSON: dropped", "room=%s",
		      log_q(r->name));
		return;
	}
	room_fanout(r, f, NULL);
	frame_unref(f);
}

static void up_confirm(struct upstream *u, const char *key, bool ok)
{
	struct query *p = query_take(&u->qs, key);
	struct buf b = BUF_INIT(0);
	struct refent *e;
	struct frame *ack;
	struct conn *c;

	if (!p || p->kind != QUERY_PUBLISH) {
		/* Late (timed out already) or not ours: nothing waits. */
		LOG_D("confirm without a waiting publish", "confirm=%s", log_q(key));
		if (p)
			query_free(&u->qs, p);
		return;
	}
	c = hub_conn_by_id(u->qs.h, p->conn);
	e = c && p->ref ? conn_ref_find(c, p->ref) : NULL;
	if (e)
		e->pending = false;
	if (!c || c->close_code)
		goto out;
	if (!ok) {
		gw_m.bus_nacks.value++;
		conn_error(c, E_UNAVAILABLE, p->ref,
			   "the broker refused the message; retry with the same ref");
		goto out;
	}
	render_ack(&b, p->ref, key, p->ts);
	ack = b.err ? NULL : frame_new(b.data, b.len);
	buf_release(&b);
	if (!ack) {
		conn_error(c, E_INTERNAL, p->ref, "out of memory");
		goto out;
	}
	conn_push(c, ack);
	if (e)
		conn_ref_remember(c, p->ref, key, ack);
	frame_unref(ack);
	metric_observe(&gw_m.ack_latency, (double)(clock_mono_us() - p->t0_us) / 1e6);
out:
	query_free(&u->qs, p);
}

/* Sort frames by seq, keeping the order of equal ones (insertion: a
 * member holds at most --send-queue). */
static void sort_by_seq(struct frame **f, uint32_t n)
{
	uint32_t i, j;

	for (i = 1; i < n; i++) {
		struct frame *x = f[i];

		for (j = i; j > 0 && f[j - 1]->seq > x->seq; j--)
			f[j] = f[j - 1];
		f[j] = x;
	}
}

/* The answer to a join's recover: joined, the missed messages flagged
 * recovered, then what arrived live meanwhile and is newer. */
static void answer_recover(struct upstream *u, struct conn *c, struct query *p,
			   const struct skim_field *seqf, const struct skim_field *msgs,
			   const struct skim_field *gapf)
{
	struct room *r = room_get(&u->qs.h->rooms, p->room, false);
	struct member *m = r ? member_of(c, r) : NULL;
	struct skim_field g[2] = { { .name = "from" }, { .name = "to" } };
	struct skim_field s[1] = { { .name = "seq" } };
	struct buf b = BUF_INIT(0), clean = BUF_INIT(0);
	uint64_t last = 0, maxseq = 0, from = 0, to = 0;
	int64_t v;
	const char *e;
	size_t elen, pos = 0;
	uint32_t i;

	if (!m || !m->recovering)
		return; /* left meanwhile */
	if (skim_int(seqf, &v) && v > 0)
		last = (uint64_t)v;
	/* The first answer tells the room where its stream is. Later ones
	 * leave the room's seq alone: an answer can overtake on the bus the
	 * live copies of the messages it counts (serve and the store's
	 * fan-out are two paths), and those still go to the other members;
	 * this one skips them by its own seq. */
	if (!r->seq_known && last > r->seq)
		r->seq = last;
	r->seq_known = true;
	if (gapf->v && skim_object(gapf->v, gapf->vlen, g, 2) == 0 &&
	    skim_int(&g[0], &v) && v > 0) {
		from = (uint64_t)v;
		to = skim_int(&g[1], &v) && v > 0 ? (uint64_t)v : from;
	}
	render_joined(&b, r->name, p->ref, last > r->seq ? last : r->seq, from, to);
	if (conn_send_buf(c, &b) != CONN_QUEUED)
		goto out;
	while (msgs->v && skim_array_next(msgs->v, msgs->vlen, &pos, &e, &elen) == 1) {
		if (skim_object(e, elen, s, 1) < 0)
			continue;
		if (skim_int(&s[0], &v) && v > 0 && (uint64_t)v > maxseq)
			maxseq = (uint64_t)v;
		if (frame_bus_clean(e, elen, &clean) == 1)
			render_recovered(&b, clean.data, clean.len);
		else
			render_recovered(&b, e, elen);
		buf_reset(&clean);
		if (conn_send_buf(c, &b) != CONN_QUEUED)
			goto out;
	}
	/* Then what arrived live meanwhile, minus what recovery already sent
	 * (or, with nothing to recover, what came before the joined seq):
	 * events as they came, then messages in seq order, each once (before
	 * the room knew its seq, they went out as the bus handed them). */
	if (maxseq == 0)
		maxseq = last;
	m->recovering = false;
	for (i = 0; i < m->nheld; i++)
		if (m->held[i]->seq == 0)
			conn_push(c, m->held[i]);
	sort_by_seq(m->held, m->nheld);
	for (i = 0; i < m->nheld; i++) {
		if (m->held[i]->seq > maxseq) {
			maxseq = m->held[i]->seq;
			conn_push(c, m->held[i]);
		}
	}
	m->seq = maxseq;
	member_unhold(m);
out:
	buf_release(&clean);
}

/* A history answer: its messages as they came, unless one carries bus
 * members (then each without them). */
static void answer_history(struct conn *c, const struct query *p,
			   const struct skim_field *msgs, bool more)
{
	struct buf b = BUF_INIT(0), arr = BUF_INIT(0), clean = BUF_INIT(0);
	const char *e;
	size_t elen, pos = 0;
	bool dirty = false;
	int k = 0;

	if (!msgs->v || msgs->v[0] != '[') {
		render_history(&b, p->room, p->ref, "[]", 2, false);
		conn_send_buf(c, &b);
		return;
	}
	buf_adds(&arr, "[");
	while (skim_array_next(msgs->v, msgs->vlen, &pos, &e, &elen) == 1) {
		if (k++)
			buf_adds(&arr, ",");
		if (frame_bus_clean(e, elen, &clean) == 1) {
			dirty = true;
			buf_add(&arr, clean.data, clean.len);
		} else {
			buf_add(&arr, e, elen);
		}
		buf_reset(&clean);
	}
	buf_adds(&arr, "]");
	if (dirty)
		render_history(&b, p->room, p->ref, arr.data, arr.len, more);
	else
		render_history(&b, p->room, p->ref, msgs->v, msgs->vlen, more);
	if (arr.err)
		b.err = arr.err;
	buf_release(&arr);
	buf_release(&clean);
	conn_send_buf(c, &b);
}

/* An error answer's text, for the client's unavailable. */
static void error_text(const struct skim_field *f, char *out, size_t size)
{
	json_t *s = json_loadb(f->v, f->vlen, JSON_DECODE_ANY, NULL);

	snprintf(out, size, "%s", json_is_string(s) ? json_string_value(s) : "query failed");
	json_decref(s);
}

enum { A_TYPE, A_RPC, A_ROOM, A_SEQ, A_MSGS, A_GAP, A_MORE, A_USERS, A_COUNT,
       A_ERROR, A_N };

static void up_answer(struct upstream *u, const char *line, size_t n, const char *rpc,
		      bool ours)
{
	struct skim_field a[A_N] = {
		[A_TYPE] = { .name = "type" }, [A_RPC] = { .name = "rpc" },
		[A_ROOM] = { .name = "room" }, [A_SEQ] = { .name = "seq" },
		[A_MSGS] = { .name = "messages" }, [A_GAP] = { .name = "gap" },
		[A_MORE] = { .name = "more" }, [A_USERS] = { .name = "users" },
		[A_COUNT] = { .name = "count" }, [A_ERROR] = { .name = "error" },
	};
	struct query *p;
	struct buf b = BUF_INIT(0);
	char room[NAME_MAX_LEN + 1];
	struct conn *c;
	int64_t count;

	if (!query_find(&u->qs, rpc)) {
		LOG_D("answer without a waiting query", "rpc=%s", log_q(rpc));
		return;
	}
	if (!skim_valid(line, n) || skim_object(line, n, a, A_N) < 0) {
		gw_m.bus_bad.value++;
		LOG_W("answer that is not valid JSON: dropped", "rpc=%s", log_q(rpc));
		return;
	}
	if (ours && !a[A_MSGS].v && !a[A_USERS].v && !a[A_ERROR].v &&
	    !skim_str_is(&a[A_TYPE], "recovered"))
		return; /* our own query, seen on the bus: not an answer */
	p = query_find(&u->qs, rpc);
	if (!span_name(&a[A_ROOM], room, sizeof(room)) || strcmp(room, p->room)) {
		/* Meant for someone else (a process before us with our
		 * node): its room must never reach this client. */
		gw_m.bus_stale.value++;
		LOG_W("answer for another room: dropped", "rpc=%s room=%s", log_q(rpc),
		      log_q(p->room));
		return;
	}
	p = query_take(&u->qs, rpc);
	if (p->kind == QUERY_ROOM) {
		struct room *r = room_get(&u->qs.h->rooms, p->room, false);

		if (r && a[A_ERROR].v)
			catchup_failed(&u->qs, r);
		else if (r)
			catchup_answer(&u->qs, r, &a[A_MSGS]);
		goto out;
	}
	c = hub_conn_by_id(u->qs.h, p->conn);
	if (!c || c->close_code)
		goto out;
	if (a[A_ERROR].v) {
		struct room *r = room_get(&u->qs.h->rooms, p->room, false);
		struct member *m = r ? member_of(c, r) : NULL;
		char msg[256];

		error_text(&a[A_ERROR], msg, sizeof(msg));
		conn_error(c, E_UNAVAILABLE, p->ref, msg);
		if (p->kind == QUERY_RECOVER && m && m->recovering)
			room_remove_member(&u->qs.h->rooms, m);
		goto out;
	}
	switch (p->kind) {
	case QUERY_RECOVER:
		answer_recover(u, c, p, &a[A_SEQ], &a[A_MSGS], &a[A_GAP]);
		break;
	case QUERY_HISTORY:
		answer_history(c, p, &a[A_MSGS], span_true(&a[A_MORE]));
		break;
	case QUERY_PRESENCE:
		if (a[A_USERS].v && a[A_USERS].v[0] == '[') {
			if (!skim_int(&a[A_COUNT], &count) || count < 0) {
				size_t pos = 0, elen;
				const char *e;

				for (count = 0; skim_array_next(a[A_USERS].v, a[A_USERS].vlen,
								&pos, &e, &elen) == 1;)
					count++;
			}
			render_presence_list(&b, p->room, p->ref, a[A_USERS].v,
					     a[A_USERS].vlen, (uint64_t)count,
					     span_true(&a[A_MORE]));
		} else {
			render_presence_list(&b, p->room, p->ref, "[]", 2, 0, false);
		}
		conn_send_buf(c, &b);
		break;
	default:
		break;
	}
out:
	buf_release(&b);
	query_free(&u->qs, p);
}

enum { F_TYPE, F_ROOM, F_SEQ, F_NODE, F_RPC, F_CONFIRM, F_STATE, F_N };

void up_line(struct upstream *u, const char *line, size_t n)
{
	struct skim_field f[F_N] = {
		[F_TYPE] = { .name = "type" }, [F_ROOM] = { .name = "room" },
		[F_SEQ] = { .name = "seq" }, [F_NODE] = { .name = "node" },
		[F_RPC] = { .name = "rpc" }, [F_CONFIRM] = { .name = "confirm" },
		[F_STATE] = { .name = "state" },
	};
	char type[16], room[NAME_MAX_LEN + 1], key[ID_MAX + 24], who[ID_NODE_MAX + 1];
	struct room *r;
	int64_t seq;

	gw_m.bus_in.value++;
	if (skim_object(line, n, f, F_N) < 0 || !span_name(&f[F_TYPE], type, sizeof(type))) {
		gw_m.bus_bad.value++;
		LOG_W("malformed bus line", "line=%s", log_q(line));
		return;
	}
	if (!strcmp(type, "confirm") || !strcmp(type, "nack")) {
		if (span_name(&f[F_CONFIRM], key, sizeof(key)))
			up_confirm(u, key, !strcmp(type, "confirm"));
		else
			gw_m.bus_bad.value++;
		return;
	}
	if (f[F_RPC].v) {
		if (span_name(&f[F_RPC], key, sizeof(key)))
			up_answer(u, line, n, key, f[F_NODE].v &&
				  span_name(&f[F_NODE], who, sizeof(who)) &&
				  !strcmp(who, gw_cfg.node));
		else
			gw_m.bus_bad.value++;
		return;
	}
	if (!strcmp(type, "bus")) {
		LOG_I("relay reports the broker", "state=%s",
		      log_q(skim_str_is(&f[F_STATE], "up") ? "up" : "down"));
		if (skim_str_is(&f[F_STATE], "up"))
			catchup_all(&u->qs);
		return;
	}
	if (strcmp(type, "message") && strcmp(type, "typing") && strcmp(type, "presence")) {
		gw_m.bus_bad.value++;
		LOG_W("unknown bus line type", "type=%s", log_q(type));
		return;
	}
	if (!span_name(&f[F_ROOM], room, sizeof(room)) ||
	    !name_room_valid(room, strlen(room))) {
		gw_m.bus_bad.value++;
		LOG_W("bus line without a valid room", "type=%s", log_q(type));
		return;
	}
	if (!strcmp(type, "message") && (!skim_int(&f[F_SEQ], &seq) || seq <= 0)) {
		gw_m.bus_bad.value++;
		LOG_W("bus message without a seq", "room=%s", log_q(room));
		return;
	}
	r = room_get(&u->qs.h->rooms, room, false);
	if (!r)
		return; /* no members here */
	if (!strcmp(type, "message"))
		catchup_message(&u->qs, r, line, n, (uint64_t)seq);
	else
		up_event(u, line, n, r, &f[F_NODE], !strcmp(type, "presence"));
}

static void up_expire(struct upstream *u, int64_t now_us);

static void up_tick(struct hub *h, int64_t now_us)
{
	struct upstream *u = up_of(h);

	if (!gw_cfg.presence_local && !u->down &&
	    now_us - u->beat_us >= (int64_t)gw_cfg.presence_interval_ms * 1000) {
		u->beat_us = now_us;
		presence_heartbeat(&u->qs, &h->rooms);
	}
	up_expire(u, now_us);
}

/* Answer what waited past --bus-timeout. */
static void up_expire(struct upstream *u, int64_t now_us)
{
	struct hub *h = u->qs.h;
	int64_t limit = (int64_t)gw_cfg.bus_timeout_ms * 1000;
	struct map_ent *e = NULL;
	size_t bucket = 0, n = 0, i;
	char **keys;

	if (!u->qs.waiting.n)
		return;
	keys = malloc(u->qs.waiting.n * sizeof(*keys));
	if (!keys)
		return;
	while (map_next(&u->qs.waiting, &bucket, &e))
		if (now_us - ((struct query *)e->val)->t0_us >= limit)
			keys[n++] = strdup(e->key);
	for (i = 0; i < n; i++) {
		struct query *p = keys[i] ? query_take(&u->qs, keys[i]) : NULL;
		struct conn *c = p && p->conn ? hub_conn_by_id(h, p->conn) : NULL;

		free(keys[i]);
		if (!p)
			continue;
		gw_m.bus_timeouts.value++;
		if (p->kind == QUERY_ROOM) {
			struct room *r = room_get(&h->rooms, p->room, false);

			if (r)
				catchup_failed(&u->qs, r);
		} else if (c && !c->close_code) {
			struct refent *re = p->ref ? conn_ref_find(c, p->ref) : NULL;
			struct room *r = room_get(&h->rooms, p->room, false);
			struct member *m = r ? member_of(c, r) : NULL;

			if (re)
				re->pending = false;
			conn_error(c, E_UNAVAILABLE, p->ref, p->kind == QUERY_PUBLISH ?
				   "no confirm from the bus in time; retry with the same ref" :
				   "no answer from the bus in time; retry");
			if (p->kind == QUERY_RECOVER && m && m->recovering)
				room_remove_member(&h->rooms, m);
		}
		query_free(&u->qs, p);
	}
	free(keys);
}

void up_init(struct upstream *u, struct hub *h)
{
	queries_init(&u->qs, h);
	u->down = false;
	u->beat_us = 0;
}

void up_start(struct upstream *u)
{
	/* A process before us with our node may have died: its users go. */
	if (!gw_cfg.presence_local)
		presence_down(&u->qs);
	u->beat_us = clock_mono_us();
}

void up_stop(struct upstream *u)
{
	if (gw_cfg.presence_local || u->down)
		return;
	u->down = true;
	if (presence_down(&u->qs) < 0)
		LOG_W("the bus did not take the down line: chat-presence will drop this "
		      "gateway's users after their ttl", NULL);
}

void up_free(struct upstream *u)
{
	queries_free(&u->qs);
}

const struct hub_ops up_ops = {
	.name = "bus",
	.join = up_join,
	.publish = up_publish,
	.history = up_history,
	.presence = up_presence,
	.typing = up_typing,
	.presence_changed = up_presence_changed,
	.tick = up_tick,
};
