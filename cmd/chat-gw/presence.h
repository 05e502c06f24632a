/*
 * presence: bus mode's presence lines for chat-presence (route
 * "presence"), when presence belongs to the presence service (the default
 * on the bus; see chat-protocol(7)): a join or leave line per room per
 * --presence-batch for the users whose first connection to the room came
 * or whose last one went on this gateway, a heartbeat round every
 * --presence-interval naming every user of every room here (split so that
 * no line passes --max-line), and a down line when the gateway starts or
 * stops, so that chat-presence drops this node's users at once.
 * Lines go out through query.h's query_send.
 */
#ifndef CHAT_GW_PRESENCE_H
#define CHAT_GW_PRESENCE_H

#include <stdbool.h>

#include "map.h"
#include "query.h"
#include "room.h"

/* r's batched changes on this gateway, as join and leave lines. */
void presence_lines(struct queries *qs, struct room *r, const struct map *joined,
		    const struct map *left);
/* One heartbeat round over every room with members. Returns how many
 * lines went out, or -1 when the bus would not take one (the rest of the
 * round is dropped, counted; the next round makes up for it). */
int presence_heartbeat(struct queries *qs, struct rooms *t);
/* {"type":"down"} for this node. Returns 0 or -1. */
int presence_down(struct queries *qs);

#endif
