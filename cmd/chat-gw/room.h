/*
 * room: the rooms of one gateway: members, the count of connections per
 * user (a user with several connections is present once), the last seq,
 * the history ring (standalone), the live frames held while a room or a
 * member catches up (bus), fan-out, and presence changes batched per room.
 * A message is one frame; every member's queue and the ring hold
 * references to it.
 * Memory: the table owns its rooms and members; a member's frames (held)
 * hold a reference each. Room names are the table's keys, valid while the
 * room is.
 */
#ifndef CHAT_GW_ROOM_H
#define CHAT_GW_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conn.h"
#include "gw.h"
#include "frame.h"
#include "map.h"

struct member {
	struct conn *c;              /* the connection */
	struct room *r;              /* the room */
	bool recovering;             /* bus: join since, answer not here yet */
	uint64_t seq;                /* the highest room seq it was given */
	struct frame **held;         /* live frames held while recovering */
	uint32_t nheld;              /* how many */
	LIST_ENTRY(member) rentry;   /* in the room's member list */
	LIST_ENTRY(member) centry;   /* in the connection's room list */
};

struct room {
	const char *name;            /* the table entry's key */
	uint64_t seq;                /* last seq given (standalone) or seen */
	LIST_HEAD(, member) members; /* members, newest first */
	uint32_t nmembers;           /* how many */
	struct map users;            /* user -> connections in the room */
	struct frame **ring;         /* history, NULL until the first message */
	uint32_t rhead;              /* index of the oldest frame */
	uint32_t rlen;               /* frames in the ring */
	uint32_t rcap;               /* ring size, grows to --history */
	struct map pjoined;          /* users who came in since the last flush */
	struct map pleft;            /* users who went out since the last flush */
	bool pdirty;                 /* on the table's list of rooms to flush */
	bool seq_known;              /* bus: seq is the room's, not a guess */
	bool recovering;             /* bus: catching up after a gap */
	uint8_t recover_tries;       /* bus: recover queries of this catch-up */
	struct frame **held;         /* bus: live frames held meanwhile */
	uint32_t nheld;              /* how many */
	bool idle;                   /* on the idle list: may be evicted */
	STAILQ_ENTRY(room) pentry;   /* the table's rooms to flush */
	TAILQ_ENTRY(room) ientry;    /* the table's idle rooms, oldest first */
};

/* Where a batch of presence changes goes (set by the hub): joined and left
 * hold the users, arg is the table's presence_arg. */
typedef void room_presence_fn(struct room *r, const struct map *joined,
			      const struct map *left, void *arg);

struct rooms {
	struct map by_name;                  /* name -> struct room */
	STAILQ_HEAD(, room) pdirty;          /* rooms with presence changes */
	TAILQ_HEAD(, room) idle;             /* rooms without members, oldest first */
	room_presence_fn *presence_out;      /* where flushed changes go */
	void *presence_arg;                  /* its argument */
};

void rooms_init(struct rooms *t);
void rooms_free(struct rooms *t);
/* The room called name; with create, made when missing (evicting the
 * oldest room without members at --max-rooms). NULL when absent, or when
 * it cannot be made (the table is full of rooms with members: O(1)). */
struct room *room_get(struct rooms *t, const char *name, bool create);
/* Forget r when nothing refers to it (no members, history, seq, pending
 * presence changes or recovery). */
void room_maybe_drop(struct rooms *t, struct room *r);
/* Note that r's recovering or presence state changed (idle list). */
void room_update_idle(struct rooms *t, struct room *r);
/* c's membership of r, or NULL. */
struct member *member_of(const struct conn *c, const struct room *r);
/* Make c a member of r; a user's first connection is a presence change.
 * Returns the member, or NULL when out of memory. */
struct member *room_add_member(struct rooms *t, struct room *r, struct conn *c);
/* End a membership; a user's last connection is a presence change. */
void room_remove_member(struct rooms *t, struct member *m);
/* Queue f on every member but except (a member that is catching up holds
 * it instead). A message goes only to members whose seq is below its own,
 * and moves their seq: no member gets a room seq twice or out of order.
 * Returns how many members it was queued for. */
uint32_t room_fanout(struct room *r, struct frame *f, const struct conn *except);
/* Keep a live frame for a member that is catching up; a member that would
 * hold more than --send-queue is cut as a slow consumer. */
void member_hold(struct member *m, struct frame *f);
void member_unhold(struct member *m);
/* Keep f (a message with f->seq) in r's history ring of --history. */
void room_history_add(struct room *r, struct frame *f);
/* The ring's frame with seq s, or NULL; the first seq the ring holds (the
 * room's seq + 1 when it holds none). */
struct frame *room_history_at(const struct room *r, uint64_t s);
uint64_t room_history_first(const struct room *r);
/* Whether r is too big for presence changes to be pushed to its members
 * (--presence-max-members): they ask with a presence query instead. */
static inline bool room_presence_quiet(const struct room *r)
{
	return gw_cfg.presence_max_members && r->nmembers > gw_cfg.presence_max_members;
}
/* Send the batched presence changes of every room to presence_out. */
void rooms_presence_flush(struct rooms *t);
/* Send r's batched changes now (before a listing of r's users is shown, so
 * that a change in the listing is never cancelled out afterwards). */
void room_presence_flush(struct rooms *t, struct room *r);

#endif
