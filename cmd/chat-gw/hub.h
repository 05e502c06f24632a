/*
 * hub: rooms, members, presence, history and fan-out of one gateway. It
 * knows nothing of sockets: requests come in as parsed text, and what goes
 * out is a frame queued on a connection, after which the hub calls the
 * wake hook so the transport asks for a writeable callback. That keeps the
 * protocol logic testable without libwebsockets.
 * Memory: a struct conn is the transport's storage (lws per-session data);
 * the hub only fills and clears it. Frames queued on a conn hold a
 * reference each.
 */
#ifndef CHAT_GW_HUB_H
#define CHAT_GW_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "id.h"
#include "jwt.h"
#include "map.h"

struct room;
struct member;
struct refent;

struct conn {
	void *wsi;                 /* transport handle (struct lws *) */
	uint64_t id;               /* connection number, for bus replies */
	char *user;                /* authenticated user, malloc'd */
	struct jwt_claims *claims; /* token claims when a rooms claim limits joins */
	int64_t exp;               /* token expiry, seconds; 0 none */
	struct member *rooms;      /* memberships, via member.cnext */
	uint32_t nrooms;           /* how many */
	struct frame **q;          /* send queue ring, NULL while empty */
	uint32_t qhead;            /* index of the oldest queued frame */
	uint32_t qlen;             /* frames queued */
	uint32_t qcap;             /* ring size, grows to --send-queue */
	char *rx;                  /* fragment reassembly, NULL unless needed */
	uint32_t rxlen;            /* bytes in rx */
	uint32_t rxcap;            /* bytes allocated for rx */
	float tokens;              /* rate limit bucket */
	int64_t tb_us;             /* last refill, monotonic us */
	struct refent *refs;       /* recent publish refs, NULL until used */
	uint32_t refnext;          /* next slot to overwrite in refs */
	uint16_t close_code;       /* non-zero: close with this after flush */
	const char *close_reason;  /* static text for the close frame */
	bool established;          /* ESTABLISHED seen, CLOSED not yet */
	bool peer_closed;          /* the client sent a close frame */
	bool dirty;                /* on the transport's list of queues to write */
	struct conn *dprev, *dnext;/* that list */
	struct conn *prev, *next;  /* all connections */
};

struct hub {
	struct map rooms;          /* name -> struct room */
	struct conn *conns;        /* every established connection */
	size_t nconns;             /* how many */
	struct id_gen ids;         /* message ids */
	struct map by_id;          /* connection number -> struct conn (bus) */
	uint64_t next_conn;        /* last connection number given */
	struct map pending;        /* bus: publish or query id -> struct pending */
	uint64_t next_rpc;         /* last query number given */
	struct room *pdirty;       /* rooms with presence changes to send */
	void (*wake)(struct conn *c);            /* frames are queued */
	void (*kill)(struct conn *c);            /* close now (4008) */
	int (*bus_write)(const char *line, size_t n); /* full system: to relay */
};

extern struct hub hub;

/* Set up the hub for node; returns 0, or -1 if the node name is bad. */
int hub_init(struct hub *h, const char *node);
void hub_free(struct hub *h);
/* A connection is established / gone. */
void hub_conn_open(struct hub *h, struct conn *c);
void hub_conn_close(struct hub *h, struct conn *c);
/* One complete client text frame. */
void hub_frame(struct hub *h, struct conn *c, const char *text, size_t n);
/* Queue a frame (takes a new reference). Returns 0, or -1 when the queue is
 * full: the connection is then closed as a slow consumer. */
int conn_push(struct conn *c, struct frame *f);
/* Queue a frame built from text. */
int conn_send_text(struct conn *c, const char *text, size_t n);
/* Drop every queued frame. */
void conn_queue_clear(struct conn *c);
/* Queue an error frame with code and message, echoing ref (may be NULL). */
void conn_error(struct conn *c, int code, const void *ref, const char *msg);
/* Close c after what is queued has gone out. */
void conn_close(struct conn *c, uint16_t code, const char *reason);
/* One bus line from the relay (full system). */
void hub_bus_line(struct hub *h, const char *line, size_t n);
/* Send the batched presence changes of every room (every --presence-batch). */
void hub_presence_flush(struct hub *h);
/* Periodic work, once a second: token expiry, bus deadlines. */
void hub_tick(struct hub *h, int64_t now_ms);

#endif
