/*
 * room: rooms, members, history ring, fan-out and presence batching (see
 * room.h).
 *
 * Rooms without members wait on an idle list, oldest first, so that at
 * --max-rooms the oldest can be forgotten (with its history) in constant
 * time, and a join is refused in constant time when every room has
 * members.
 *
 * Presence changes are batched per room and sent every --presence-batch:
 * in a room of N members, N joins in a burst cost a few frames per member
 * instead of N each (N squared in all). A join and a leave of the same
 * user within one batch cancel out, which is safe only because nobody can
 * have seen the join: a listing of the room's users flushes the batch first
 * (room_presence_flush).
 */
#include "room.h"

#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"

void rooms_init(struct rooms *t)
{
	struct map empty = MAP_INIT;

	t->by_name = empty;
	STAILQ_INIT(&t->pdirty);
	TAILQ_INIT(&t->idle);
	t->presence_out = NULL;
	t->presence_arg = NULL;
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

/* Take r out of the table and free it. */
static void room_forget(struct rooms *t, struct room *r)
{
	if (r->idle)
		TAILQ_REMOVE(&t->idle, r, ientry);
	map_del(&t->by_name, r->name);
	room_free(r);
	gw_m.rooms.value--;
}

void rooms_free(struct rooms *t)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;

	while (map_next(&t->by_name, &bucket, &e))
		room_free(e->val);
	map_free(&t->by_name);
	rooms_init(t);
}

void room_update_idle(struct rooms *t, struct room *r)
{
	bool idle = r->nmembers == 0 && !r->pdirty && !r->recovering;

	if (idle == r->idle)
		return;
	if (idle)
		TAILQ_INSERT_TAIL(&t->idle, r, ientry);
	else
		TAILQ_REMOVE(&t->idle, r, ientry);
	r->idle = idle;
}

struct room *room_get(struct rooms *t, const char *name, bool create)
{
	struct room *r = map_get(&t->by_name, name);
	struct map_ent *e;

	if (r || !create)
		return r;
	if (t->by_name.n >= gw_cfg.max_rooms) {
		struct room *old = TAILQ_FIRST(&t->idle);

		if (!old)
			return NULL;
		room_forget(t, old);
		gw_m.rooms_evicted.value++;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	e = map_put(&t->by_name, name, r);
	if (!e) {
		free(r);
		return NULL;
	}
	r->name = e->key;
	LIST_INIT(&r->members);
	gw_m.rooms.value++;
	room_update_idle(t, r);
	return r;
}

void room_maybe_drop(struct rooms *t, struct room *r)
{
	if (r->nmembers || r->rlen || r->seq || r->recovering || r->pdirty)
		return;
	room_forget(t, r);
}

struct member *member_of(const struct conn *c, const struct room *r)
{
	struct member *m;

	LIST_FOREACH(m, &c->rooms, centry)
		if (m->r == r)
			return m;
	return NULL;
}

/* A user came in (first connection) or went out (last one). */
static void room_presence_event(struct rooms *t, struct room *r, const char *user,
				bool joined)
{
	struct map *add = joined ? &r->pjoined : &r->pleft;
	struct map *undo = joined ? &r->pleft : &r->pjoined;

	if (!map_del(undo, user) && !map_put(add, user, (void *)1))
		LOG_W("out of memory: a presence change is lost", "room=%s user=%s",
		      log_q(r->name), log_q(user));
	if (!r->pdirty) {
		r->pdirty = true;
		STAILQ_INSERT_TAIL(&t->pdirty, r, pentry);
		room_update_idle(t, r);
	}
}

struct member *room_add_member(struct rooms *t, struct room *r, struct conn *c)
{
	struct member *m = calloc(1, sizeof(*m));
	struct map_ent *e;
	uintptr_t n;

	if (!m)
		return NULL;
	e = map_find(&r->users, c->user);
	n = e ? (uintptr_t)e->val : 0;
	if (!map_put(&r->users, c->user, (void *)(n + 1))) {
		free(m);
		return NULL;
	}
	m->c = c;
	m->r = r;
	m->seq = r->seq; /* what its joined frame says */
	LIST_INSERT_HEAD(&r->members, m, rentry);
	r->nmembers++;
	LIST_INSERT_HEAD(&c->rooms, m, centry);
	c->nrooms++;
	room_update_idle(t, r);
	if (n == 0)
		room_presence_event(t, r, c->user, true);
	return m;
}

void room_remove_member(struct rooms *t, struct member *m)
{
	struct room *r = m->r;
	struct conn *c = m->c;
	uintptr_t n;

	LIST_REMOVE(m, rentry);
	r->nmembers--;
	LIST_REMOVE(m, centry);
	c->nrooms--;
	member_unhold(m);
	free(m);
	n = (uintptr_t)map_get(&r->users, c->user);
	if (n <= 1) {
		map_del(&r->users, c->user);
		room_presence_event(t, r, c->user, false);
	} else {
		map_put(&r->users, c->user, (void *)(n - 1));
	}
	room_update_idle(t, r);
	room_maybe_drop(t, r);
}

void member_unhold(struct member *m)
{
	uint32_t i;

	for (i = 0; i < m->nheld; i++)
		frame_unref(m->held[i]);
	free(m->held);
	m->held = NULL;
	m->nheld = 0;
}

void member_hold(struct member *m, struct frame *f)
{
	struct frame **nh;

	if (m->c->close_code)
		return;
	if (m->nheld >= gw_cfg.send_queue) {
		member_unhold(m);
		m->recovering = false;
		gw_m.slow.value++;
		conn_cut(m->c, 4008, "slow consumer");
		return;
	}
	nh = realloc(m->held, (m->nheld + 1) * sizeof(*nh));
	if (!nh) {
		member_unhold(m);
		m->recovering = false;
		gw_m.internal_closes.value++;
		conn_cut(m->c, 1011, "out of memory");
		return;
	}
	m->held = nh;
	m->held[m->nheld++] = frame_ref(f);
}

uint32_t room_fanout(struct room *r, struct frame *f, const struct conn *except)
{
	struct member *m;
	uint32_t n = 0;

	LIST_FOREACH(m, &r->members, rentry) {
		if (m->c == except)
			continue;
		if (m->recovering) {
			member_hold(m, f);
			continue;
		}
		if (f->seq) {
			if (f->seq <= m->seq)
				continue; /* it had this one (recovered) */
			m->seq = f->seq;
		}
		if (conn_push(m->c, f) == CONN_QUEUED)
			n++;
	}
	return n;
}

void room_history_add(struct room *r, struct frame *f)
{
	if (gw_cfg.history == 0)
		return;
	if (r->rlen == r->rcap && r->rcap < gw_cfg.history) {
		uint32_t ncap = r->rcap ? r->rcap * 2 : 16, i;
		struct frame **nr;

		if (ncap > gw_cfg.history)
			ncap = (uint32_t)gw_cfg.history;
		nr = malloc(ncap * sizeof(*nr));
		if (nr) {
			for (i = 0; i < r->rlen; i++)
				nr[i] = r->ring[(r->rhead + i) % r->rcap];
			free(r->ring);
			r->ring = nr;
			r->rhead = 0;
			r->rcap = ncap;
		} else if (!r->rcap) {
			return; /* no ring at all: the room has no history */
		}
		/* else the ring stays at its size: the oldest goes sooner */
	}
	if (r->rlen == r->rcap) {
		frame_unref(r->ring[r->rhead]);
		r->ring[r->rhead] = frame_ref(f);
		r->rhead = (r->rhead + 1) % r->rcap;
		return;
	}
	r->ring[(r->rhead + r->rlen++) % r->rcap] = frame_ref(f);
}

uint64_t room_history_first(const struct room *r)
{
	return r->seq - r->rlen + 1;
}

struct frame *room_history_at(const struct room *r, uint64_t s)
{
	uint64_t first = room_history_first(r);

	if (!r->rlen || s < first || s > r->seq)
		return NULL;
	return r->ring[(r->rhead + (s - first)) % r->rcap];
}

void room_presence_flush(struct rooms *t, struct room *r)
{
	if (!r->pdirty)
		return;
	STAILQ_REMOVE(&t->pdirty, r, room, pentry);
	r->pdirty = false;
	if ((r->pjoined.n || r->pleft.n) && t->presence_out)
		t->presence_out(r, &r->pjoined, &r->pleft, t->presence_arg);
	map_free(&r->pjoined);
	map_free(&r->pleft);
	room_update_idle(t, r);
	room_maybe_drop(t, r);
}

void rooms_presence_flush(struct rooms *t)
{
	struct room *r;

	while ((r = STAILQ_FIRST(&t->pdirty)))
		room_presence_flush(t, r);
}
