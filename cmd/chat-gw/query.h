/*
 * query: what bus mode waits for, and the one way a line goes to the
 * relay. Each publish waits for its confirm under its message id, each
 * query (history, presence, recover) for its answer under an rpc key that
 * is unique across gateways and restarts; every wait has the deadline
 * --bus-timeout and the table holds at most --max-pending.
 * Memory: the table owns its entries; query_take hands one to the caller,
 * who frees it with query_free.
 */
#ifndef CHAT_GW_QUERY_H
#define CHAT_GW_QUERY_H

#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "id.h"
#include "map.h"

struct hub;

enum query_kind {
	QUERY_PUBLISH,   /* a publish waits for its confirm */
	QUERY_HISTORY,   /* a history query */
	QUERY_PRESENCE,  /* a presence query */
	QUERY_RECOVER,   /* a join waits for the room's seq and what was missed */
	QUERY_ROOM,      /* the gateway catches a room up after a gap */
};

struct query {
	enum query_kind kind;        /* what waits */
	uint64_t conn;               /* connection number of the asker, 0 none */
	char *ref;                   /* the request's ref as JSON text, or NULL */
	char *room;                  /* the room asked about */
	int64_t t0_us;               /* when it was sent */
	int64_t ts;                  /* publish: the message's ts */
};

struct queries {
	struct hub *h;               /* whose connections ask, whose hook writes */
	struct map waiting;          /* publish id or rpc key -> struct query */
	uint64_t next_rpc;           /* last query number given */
};

#define QUERY_KEY_MAX (ID_MAX + 24)

void queries_init(struct queries *qs, struct hub *h);
/* Free every entry; nobody is answered. */
void queries_free(struct queries *qs);
/* Wait under key for c (NULL: the gateway itself). Returns the entry, or
 * NULL when --max-pending wait already, or --max-pending-per-conn for c
 * (or out of memory). */
struct query *query_add(struct queries *qs, const char *key, enum query_kind kind,
			struct conn *c, const char *ref, const char *room);
/* What waits under key, left in the table; NULL when nothing does. */
struct query *query_find(const struct queries *qs, const char *key);
/* What waits under key, taken out of the table; NULL when nothing does. */
struct query *query_take(struct queries *qs, const char *key);
void query_free(struct queries *qs, struct query *q);
/* A new rpc key: the message id prefix (node, start time), q, a counter. */
void query_key(struct queries *qs, char key[QUERY_KEY_MAX]);
/* Send b's text (one line, without newline) to the relay and empty b.
 * Returns 0, or -1 when it could not go (backlog full, relay gone, a
 * failed append in b); counted either way. */
int query_send(struct queries *qs, struct buf *b);

#endif
