/*
 * catchup: bus mode's delivery of a room's sequenced messages to its local
 * members, in seq order and once each. A seq delivered already is dropped;
 * a seq that skips ahead makes the room hold its live messages (at most
 * --room-hold), ask the sequencer for what is missing (a recover query,
 * with the deadline --bus-timeout) and, with the answer, deliver the
 * missing messages and then what it held. The relay reporting the broker
 * back after an outage catches every room with members up the same way.
 * Memory: a room's held frames hold a reference each (room.h).
 */
#ifndef CHAT_GW_CATCHUP_H
#define CHAT_GW_CATCHUP_H

#include <stddef.h>
#include <stdint.h>

#include "query.h"
#include "room.h"
#include "skim.h"

#define CATCHUP_TRIES 3 /* recover queries one catch-up sends at most */

/* A sequenced message line (n bytes, an object) of r with seq. */
void catchup_message(struct queries *qs, struct room *r, const char *line, size_t n,
		     uint64_t seq);
/* The answer to r's recover query: msgs is its "messages" member. */
void catchup_answer(struct queries *qs, struct room *r, const struct skim_field *msgs);
/* r's recover query got no answer in time, or an error: ask again (the
 * broker may have nacked it while a queue elected its leader, the archive
 * may have been reconnecting), up to CATCHUP_TRIES queries in all; then,
 * or when it cannot ask, deliver what it held, and the clients see the gap
 * (counted in chat_gw_room_recovery_failures_total). */
void catchup_failed(struct queries *qs, struct room *r);
/* Deliver what r held, in seq order, and end its catch-up. */
void catchup_release(struct queries *qs, struct room *r);
/* Ask for every room with members here (the relay's queue may have been
 * gone). */
void catchup_all(struct queries *qs);

#endif
