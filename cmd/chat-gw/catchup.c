/*
 * catchup: a room's sequenced messages in order, once each (see
 * catchup.h).
 */
#include "catchup.h"

#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "hub.h"
#include "log.h"

/* Whether some member may lack seq: it was given less, or it is catching
 * up (its answer may count less; what it holds is sorted out then). */
static bool room_lacks(const struct room *r, uint64_t seq)
{
	const struct member *m;

	LIST_FOREACH(m, &r->members, rentry)
		if (m->recovering || m->seq < seq)
			return true;
	return false;
}

/* Fan out a sequenced frame in order: the room's seq moves to it. */
static void room_deliver_seq(struct room *r, struct frame *f)
{
	r->seq = f->seq;
	gw_m.messages.value++;
	gw_m.deliveries.value += room_fanout(r, f, NULL);
}

static int frame_seq_cmp(const void *a, const void *b)
{
	uint64_t x = (*(struct frame *const *)a)->seq, y = (*(struct frame *const *)b)->seq;

	return x < y ? -1 : x > y;
}

void catchup_release(struct queries *qs, struct room *r)
{
	uint32_t i;

	r->recovering = false;
	r->recover_tries = 0;
	if (r->nheld) /* (qsort of NULL is undefined, even for nothing) */
		qsort(r->held, r->nheld, sizeof(*r->held), frame_seq_cmp);
	for (i = 0; i < r->nheld; i++) {
		if (r->held[i]->seq > r->seq)
			room_deliver_seq(r, r->held[i]);
		frame_unref(r->held[i]);
	}
	free(r->held);
	r->held = NULL;
	r->nheld = 0;
	room_update_idle(&qs->h->rooms, r);
}

/* Ask the sequencer for what this room missed since its seq (a gap seen,
 * or the relay's queue was gone for a while). Live messages are held until
 * the answer. */
static void room_recover(struct queries *qs, struct room *r)
{
	struct buf b = BUF_INIT(0);
	char key[QUERY_KEY_MAX];

	if (r->recovering || !r->seq_known)
		return;
	query_key(qs, key);
	if (!query_add(qs, key, QUERY_ROOM, NULL, NULL, r->name))
		return;
	buf_addf(&b, "{\"type\":\"recover\",\"route\":\"rpc.history\",\"expire\":%llu,"
		 "\"rpc\":\"%s\",\"node\":\"%s\",\"room\":\"%s\",\"since\":%llu}",
		 (unsigned long long)gw_cfg.bus_timeout_ms, key, gw_cfg.node, r->name,
		 (unsigned long long)r->seq);
	if (query_send(qs, &b) < 0) {
		query_free(qs, query_take(qs, key));
		return;
	}
	gw_m.room_recoveries.value++;
	r->recovering = true;
	r->recover_tries++;
	room_update_idle(&qs->h->rooms, r);
	LOG_I("recovering a room", "room=%s since=%llu", log_q(r->name),
	      (unsigned long long)r->seq);
}

/* Hold a live frame while r catches up; past --room-hold, stop holding:
 * deliver what is held and this, and the clients see the gap. */
static void room_hold(struct queries *qs, struct room *r, struct frame *f)
{
	struct frame **nh = NULL;

	if (r->nheld < gw_cfg.room_hold)
		nh = realloc(r->held, (r->nheld + 1) * sizeof(*nh));
	if (!nh) {
		gw_m.room_hold_full.value++;
		LOG_W("a recovering room holds too much: delivering with a gap",
		      "room=%s held=%u", log_q(r->name), r->nheld);
		catchup_release(qs, r);
		if (f->seq > r->seq)
			room_deliver_seq(r, f);
		return;
	}
	r->held = nh;
	r->held[r->nheld++] = frame_ref(f);
}

void catchup_message(struct queries *qs, struct room *r, const char *line, size_t n,
		     uint64_t seq)
{
	bool seen = r->seq_known && seq <= r->seq && !r->recovering;
	struct frame *f;

	if (seen && !room_lacks(r, seq)) {
		gw_m.bus_dups.value++; /* at-least-once: every member has it */
		return;
	}
	if (!skim_valid(line, n) || !(f = frame_from_bus(line, n, seq))) {
		gw_m.bus_bad.value++;
		LOG_W("bus message that is not valid JSON: dropped", "room=%s",
		      log_q(r->name));
		return;
	}
	if (seen) {
		/* Behind the room's stream, yet some member may lack it: the
		 * live copy of a message an answer counted and overtook. Those
		 * members get it (room_fanout goes by each member's seq). */
		gw_m.deliveries.value += room_fanout(r, f, NULL);
	} else if (!r->seq_known) {
		/* The first join's answer is on its way: members hold it. */
		if (seq > r->seq)
			r->seq = seq;
		gw_m.messages.value++;
		gw_m.deliveries.value += room_fanout(r, f, NULL);
	} else if (r->recovering || seq > r->seq + 1) {
		/* A gap: hold live messages and ask for what is missing. */
		room_recover(qs, r);
		if (r->recovering)
			room_hold(qs, r, f);
		else if (seq > r->seq)
			room_deliver_seq(r, f); /* cannot ask: the clients see the gap */
	} else {
		room_deliver_seq(r, f);
	}
	frame_unref(f);
}

void catchup_answer(struct queries *qs, struct room *r, const struct skim_field *msgs)
{
	struct skim_field s[1] = { { .name = "seq" } };
	const char *e;
	size_t elen, pos = 0;
	int64_t v;

	if (!r->recovering)
		return;
	while (msgs->v && skim_array_next(msgs->v, msgs->vlen, &pos, &e, &elen) == 1) {
		struct frame *f;

		if (skim_object(e, elen, s, 1) < 0 || !skim_int(&s[0], &v) || v <= 0 ||
		    (uint64_t)v <= r->seq)
			continue;
		f = frame_from_bus(e, elen, (uint64_t)v);
		if (!f)
			continue;
		room_deliver_seq(r, f);
		frame_unref(f);
	}
	catchup_release(qs, r);
}

void catchup_failed(struct queries *qs, struct room *r)
{
	if (!r->recovering)
		return;
	r->recovering = false; /* its query is gone: room_recover may ask */
	if (r->nmembers && r->recover_tries < CATCHUP_TRIES) {
		LOG_I("a room's catch-up got no answer: asking again", "room=%s try=%u",
		      log_q(r->name), r->recover_tries + 1);
		room_recover(qs, r);
	}
	if (!r->recovering) {
		gw_m.room_recovery_failures.value++;
		LOG_W("a room's catch-up failed: delivering with a gap", "room=%s tries=%u",
		      log_q(r->name), r->recover_tries);
		catchup_release(qs, r);
	}
}

void catchup_all(struct queries *qs)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;

	while (map_next(&qs->h->rooms.by_name, &bucket, &e)) {
		struct room *r = e->val;

		if (r->nmembers)
			room_recover(qs, r);
	}
}

