/*
 * hub: the client protocol of one gateway. It takes parsed requests,
 * checks what every mode checks (room claims, membership, rate, dedupe,
 * sizes) and hands the rest to its mode: a small table of operations,
 * standalone (local.c: the gateway sequences, keeps history and answers
 * itself) or on the bus (upstream.c: chat-relay carries publishes and
 * queries to chat-archive and chat-presence). The hub knows nothing of
 * sockets (conn.h's hooks) or of pipes (the bus_write hook), so it is
 * unit-tested without either (tests/unit/test_hub.c).
 * Memory: the hub owns its rooms; connections are the transport's storage.
 */
#ifndef CHAT_GW_HUB_H
#define CHAT_GW_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"
#include "conn.h"
#include "id.h"
#include "map.h"
#include "request.h"
#include "room.h"

struct hub;

/* A publish that passed the hub's checks. */
struct hub_publish {
	const char *refkey;          /* the ref as JSON text, or NULL */
	const char *id;              /* its message id (a retry keeps its id) */
	int64_t ts;                  /* its time, ms since the epoch */
	const char *body;            /* compact JSON text */
	size_t bodylen;              /* its length */
	int64_t t0_us;               /* when the request came, for latency */
};

/* What standalone and bus mode do differently; every hook is set. */
struct hub_ops {
	const char *name;            /* "standalone" or "bus", for logs */
	/* A join the hub allowed: answer joined (and what since asks for),
	 * and make c a member of r. */
	void (*join)(struct hub *h, struct conn *c, struct room *r,
		     const struct request *q);
	/* A publish into r, c a member. */
	void (*publish)(struct hub *h, struct conn *c, struct room *r,
			const struct request *q, const struct hub_publish *p);
	/* A history request, limit clamped to 1..HUB_HISTORY_MAX. */
	void (*history)(struct hub *h, struct conn *c, const struct request *q,
			uint64_t limit);
	/* A presence listing, limit clamped to 1..HUB_PRESENCE_MAX. */
	void (*presence)(struct hub *h, struct conn *c, const struct request *q,
			 uint64_t limit);
	/* A typing notice went to r's local members: tell the others. */
	void (*typing)(struct hub *h, struct room *r, const char *from);
	/* A batch of r's presence changes on this gateway. */
	void (*presence_changed)(struct hub *h, struct room *r,
				 const struct map *joined, const struct map *left);
	/* Once a second (now: monotonic us). */
	void (*tick)(struct hub *h, int64_t now_us);
};

struct hub {
	struct rooms rooms;          /* every room with members or history */
	LIST_HEAD(, conn) conns;     /* every established connection */
	size_t nconns;               /* how many */
	struct map by_id;            /* connection number -> struct conn */
	uint64_t next_conn;          /* last connection number given */
	struct id_gen ids;           /* message ids */
	const struct hub_ops *ops;   /* the mode */
	void *mode;                  /* the mode's own state */
	int (*bus_write)(const char *line, size_t n); /* bus: a line for the relay */
};

#define HUB_HISTORY_DEFAULT 50
#define HUB_HISTORY_MAX 200
#define HUB_PRESENCE_DEFAULT 100
#define HUB_PRESENCE_MAX 1000

extern struct hub hub;

/* Set up the hub for node in a mode (ops, with its state). Returns 0, or
 * -1 if the node name is bad. */
int hub_init(struct hub *h, const char *node, const struct hub_ops *ops, void *mode);
void hub_free(struct hub *h);
/* A connection is established / gone. */
void hub_conn_open(struct hub *h, struct conn *c);
void hub_conn_close(struct hub *h, struct conn *c);
/* The connection numbered id, or NULL when it is gone. */
struct conn *hub_conn_by_id(struct hub *h, uint64_t id);
/* One complete client text frame. */
void hub_frame(struct hub *h, struct conn *c, const char *text, size_t n);
/* Send the batched presence changes of every room (every --presence-batch). */
void hub_presence_flush(struct hub *h);
/* Periodic work, once a second: token expiry, the mode's deadlines. */
void hub_tick(struct hub *h, int64_t now_ms);
/* Queue a close with code on every connection. */
void hub_close_all(struct hub *h, uint16_t code, const char *reason);

#endif
