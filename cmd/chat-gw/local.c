/*
 * local: standalone mode (--standalone), the operations of hub.h when the
 * gateway is the whole chat server: it gives each message its room seq,
 * keeps the last --history of each room in a ring of frames, answers
 * history, since and presence from memory, and fans everything out to its
 * own members only.
 */
#include "local.h"

#include <string.h>

#include "clock.h"
#include "gw.h"
#include "log.h"
#include "render.h"

static void local_join(struct hub *h, struct conn *c, struct room *r,
		       const struct request *q)
{
	struct buf b = BUF_INIT(0);
	uint64_t first = room_history_first(r), s, gap_from = 0, bytes = 0;

	/* What is recovered is bounded by half the connection's queue in
	 * bytes: the older part is then a gap, for history to page. */
	if (q->has_since) {
		for (s = r->seq; s > q->since && s >= first && s != 0; s--) {
			struct frame *f = room_history_at(r, s);

			if (f && (bytes += f->len) > gw_cfg.send_queue_bytes / 2)
				break;
		}
		if (s > q->since && s >= first && s != 0)
			first = s + 1;
	}
	if (q->has_since && q->since + 1 < first)
		gap_from = q->since + 1;
	render_joined(&b, r->name, q->ref, r->seq, gap_from, first - 1);
	if (conn_send_buf(c, &b) != CONN_QUEUED)
		return;
	if (q->has_since) {
		for (s = q->since + 1 > first ? q->since + 1 : first;
		     s <= r->seq && s != 0; s++) {
			struct frame *f = room_history_at(r, s), *rf;

			if (!f)
				continue;
			/* one recovered copy per message, shared by every
			 * client that recovers it */
			rf = frame_recovered(f);
			if (!rf) {
				conn_error(c, E_INTERNAL, q->ref, "out of memory");
				return;
			}
			if (conn_push(c, rf) != CONN_QUEUED)
				return;
		}
	}
	if (!member_of(c, r) && !room_add_member(&h->rooms, r, c))
		conn_error(c, E_INTERNAL, q->ref, "out of memory");
}

static void local_publish(struct hub *h, struct conn *c, struct room *r,
			  const struct request *q, const struct hub_publish *p)
{
	struct buf b = BUF_INIT(0);
	struct frame *f, *ack;

	render_message(&b, r->name, r->seq + 1, p->id, c->user, p->ts, p->body,
		       p->bodylen);
	f = b.err ? NULL : frame_new(b.data, b.len);
	buf_release(&b);
	if (!f) {
		conn_error(c, E_INTERNAL, q->ref, "out of memory");
		return;
	}
	f->seq = ++r->seq;
	gw_m.messages.value++;
	room_history_add(r, f);
	gw_m.deliveries.value += room_fanout(r, f, NULL);
	frame_unref(f);

	render_ack(&b, q->ref, p->id, p->ts);
	ack = b.err ? NULL : frame_new(b.data, b.len);
	buf_release(&b);
	if (!ack) {
		conn_error(c, E_INTERNAL, q->ref, "out of memory");
		return;
	}
	conn_push(c, ack);
	if (p->refkey)
		conn_ref_remember(c, p->refkey, p->id, ack);
	frame_unref(ack);
	metric_observe(&gw_m.ack_latency, (double)(clock_mono_us() - p->t0_us) / 1e6);
}

static void local_history(struct hub *h, struct conn *c, const struct request *q,
			  uint64_t limit)
{
	struct room *r = room_get(&h->rooms, q->room, false);
	struct buf b = BUF_INIT(0), msgs = BUF_INIT(0);
	uint64_t hi, lo = 0, s, first;
	bool more = false;

	buf_adds(&msgs, "[");
	if (r && r->rlen && (!q->has_before || q->before > 0)) {
		first = room_history_first(r);
		hi = q->has_before ? q->before - 1 : r->seq;
		if (hi > r->seq)
			hi = r->seq;
		if (hi >= first) {
			lo = hi >= first + limit - 1 ? hi - limit + 1 : first;
			for (s = lo; s <= hi; s++) {
				struct frame *f = room_history_at(r, s);

				if (s > lo)
					buf_adds(&msgs, ",");
				buf_add(&msgs, frame_payload(f), frame_payload_len(f));
			}
			more = lo > first;
		}
	}
	buf_adds(&msgs, "]");
	render_history(&b, q->room, q->ref, msgs.data, msgs.len, more);
	if (msgs.err)
		b.err = msgs.err;
	buf_release(&msgs);
	conn_send_buf(c, &b);
}

static void local_presence(struct hub *h, struct conn *c, const struct request *q,
			   uint64_t limit)
{
	struct room *r = room_get(&h->rooms, q->room, false);
	struct buf b = BUF_INIT(0), users = BUF_INIT(0);
	struct map none = MAP_INIT;

	if (r)
		room_presence_flush(&h->rooms, r); /* nothing shown is undone later */
	r = room_get(&h->rooms, q->room, false); /* (the flush may drop it) */
	render_names(&users, r ? &r->users : &none, limit);
	render_presence_list(&b, q->room, q->ref, users.data, users.len,
			     r ? r->users.n : 0, r && r->users.n > limit);
	if (users.err)
		b.err = users.err;
	buf_release(&users);
	conn_send_buf(c, &b);
}

static void local_typing(struct hub *h, struct room *r, const char *from)
{
	/* nobody else to tell */
}

static void local_presence_changed(struct hub *h, struct room *r,
				   const struct map *joined, const struct map *left)
{
	struct buf b = BUF_INIT(0), j = BUF_INIT(0), l = BUF_INIT(0);
	struct frame *f;

	if (room_presence_quiet(r)) {
		gw_m.presence_quiet.value++;
		return;
	}
	render_names(&j, joined, 0);
	render_names(&l, left, 0);
	render_presence_change(&b, r->name, j.data, j.len, l.data, l.len);
	f = b.err || j.err || l.err ? NULL : frame_new(b.data, b.len);
	if (f) {
		room_fanout(r, f, NULL);
		frame_unref(f);
	} else {
		LOG_W("out of memory: presence changes not sent", "room=%s", log_q(r->name));
	}
	buf_release(&b);
	buf_release(&j);
	buf_release(&l);
}

static void local_tick(struct hub *h, int64_t now_us)
{
}

const struct hub_ops local_ops = {
	.name = "standalone",
	.join = local_join,
	.publish = local_publish,
	.history = local_history,
	.presence = local_presence,
	.typing = local_typing,
	.presence_changed = local_presence_changed,
	.tick = local_tick,
};
