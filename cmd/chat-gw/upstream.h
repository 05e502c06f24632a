/*
 * upstream: bus mode (no --standalone), the operations of hub.h when the
 * gateway is one of many behind chat-relay. A publish becomes an ingest
 * line and is acked on the broker's confirm; history, presence and
 * since-recovery are queries (rpc.*) answered by chat-archive and
 * chat-presence, each with a deadline; sequenced messages and events come
 * back as bus lines (up_line) and go to the local members in seq order,
 * once each: duplicates dropped, a gap recovered from the sequencer while
 * the room's live messages are held.
 * Lines go out through the hub's bus_write hook; nothing here knows pipes.
 * Memory: the upstream owns what waits for an answer (query.h).
 */
#ifndef CHAT_GW_UPSTREAM_H
#define CHAT_GW_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "query.h"

struct upstream {
	struct queries qs;           /* what waits for the bus, and the hub */
	int64_t beat_us;             /* the last presence heartbeat round */
	bool down;                   /* the down line went: no more presence lines */
};

extern const struct hub_ops up_ops;

/* Set up u for h (whose mode state it becomes). */
void up_init(struct upstream *u, struct hub *h);
/* The pipe is up: tell chat-presence to drop what an earlier process with
 * our node left. */
void up_start(struct upstream *u);
/* The gateway stops: tell chat-presence its users are gone (a down line),
 * before the clients' own leaves would trickle in. */
void up_stop(struct upstream *u);
/* Free what waits; nobody is answered. */
void up_free(struct upstream *u);
/* One line from the relay (n bytes, NUL-terminated). */
void up_line(struct upstream *u, const char *line, size_t n);

#endif
