/*
 * conn: one client connection as the protocol sees it: its user and
 * claims, its send queue of shared frames, the errors and close it is
 * sent, the refs of its recent publishes (dedupe) and its rate limit.
 * It knows nothing of sockets: queuing a frame calls the wake hook, and a
 * connection that must go now (a slow consumer) calls the kill hook; the
 * transport (ws.c, or a unit test) sets both.
 * Memory: a struct conn is the transport's storage (lws per-session data);
 * this module fills and clears it. Each queued frame holds one reference.
 */
#ifndef CHAT_GW_CONN_H
#define CHAT_GW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"
#include "frame.h"
#include "gw.h"
#include "id.h"
#include "jwt.h"

struct member;
struct refent;

struct conn {
	void *wsi;                 /* transport handle (struct lws *) */
	uint64_t id;               /* connection number, for bus replies */
	char *user;                /* authenticated user, malloc'd; NULL until an
				      auth frame, when the token did not come in
				      the upgrade */
	struct jwt_claims *claims; /* token claims when a rooms claim limits joins */
	int64_t exp;               /* token expiry, seconds; 0 none */
	LIST_HEAD(, member) rooms; /* memberships */
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
	uint32_t refcap;           /* slots in refs, grows to --dedupe */
	uint32_t refnext;          /* next slot to fill or overwrite */
	uint32_t pending;          /* bus: publishes and queries in flight */
	uint64_t qbytes;           /* bytes queued, at most --send-queue-bytes */
	float work;                /* request bucket: joins, history, presence */
	int64_t work_us;           /* its last refill, monotonic us */
	int64_t last_rx_us;        /* when the client was last heard from */
	int64_t opened_us;         /* when it was established */
	char ip[48];               /* the client's address */
	bool ip_counted;           /* counted in its address's connections */
	uint16_t close_code;       /* non-zero: close with this after flush */
	const char *close_reason;  /* static text for the close frame */
	bool established;          /* ESTABLISHED seen, CLOSED not yet */
	bool peer_closed;          /* the client sent a close frame */
	bool close_sent;           /* stopping: our 1001 is out, its answer awaited */
	bool dropping;             /* silent past --ping-timeout: being dropped */
	bool dirty;                /* on the transport's list of queues to write */
	TAILQ_ENTRY(conn) dirty_entry; /* that list */
	LIST_ENTRY(conn) entry;    /* every established connection (hub) */
};

/* What a publish ref is remembered with, for dedupe. */
struct refent {
	char *ref;                 /* the ref as JSON text, malloc'd */
	struct frame *ack;         /* the ack sent for it, NULL until acked */
	char id[ID_MAX];           /* the message id given to it */
	bool pending;              /* bus: published, no confirm yet */
};

/* The transport's side, set once before any connection. */
struct conn_hooks {
	void (*wake)(struct conn *c);  /* frames were queued on an idle queue */
	void (*kill)(struct conn *c);  /* close now: the close frame is set */
	void (*drain)(struct conn *c); /* the queue is full: write now what
					* the kernel takes (may be NULL) */
};
extern struct conn_hooks conn_hooks;

/* What conn_push did with a frame. */
enum { CONN_QUEUED = 0, CONN_CLOSING = 1, CONN_CUT = -1 };

/* Queue a frame (takes a new reference). Returns CONN_QUEUED;
 * CONN_CLOSING when the connection is closing and takes nothing more; or
 * CONN_CUT when this frame did not fit (past --send-queue frames or
 * --send-queue-bytes: closed 4008 as a slow consumer; out of memory:
 * closed 1011) and the queue is dropped. */
int conn_push(struct conn *c, struct frame *f);
/* Take the oldest queued frame (the caller gets its reference), or NULL. */
struct frame *conn_pop(struct conn *c);
/* Queue b's text as one frame and empty b. When b holds a failed append
 * (b->err), the client gets an internal error instead. Returns as
 * conn_push. */
int conn_send_buf(struct conn *c, struct buf *b);
/* Drop every queued frame. */
void conn_queue_clear(struct conn *c);
/* Queue an error frame with code, echoing ref (JSON text, may be NULL). */
void conn_error(struct conn *c, enum gw_err code, const char *ref, const char *msg);
/* Close c after what is queued has gone out. */
void conn_close(struct conn *c, uint16_t code, const char *reason);
/* Close c now, dropping its queue (slow consumer, out of memory). */
void conn_cut(struct conn *c, uint16_t code, const char *reason);
/* Take one token from c's publish bucket (--rate per second, --burst
 * deep). Returns false when it is empty. */
bool conn_rate_ok(struct conn *c);
/* Take n tokens from c's request bucket (--request-rate per second,
 * --request-burst deep): the requests that make the gateway work or send
 * much (join, leave, history, presence). Returns false when it has fewer
 * than n. */
bool conn_work_ok(struct conn *c, double n);
/* The remembered publish with ref key (JSON text), or NULL. */
struct refent *conn_ref_find(struct conn *c, const char *key);
/* Remember ref key with its message id and, once there is one, its ack
 * (a new reference). Returns the entry, or NULL with --dedupe 0 or out of
 * memory. */
struct refent *conn_ref_remember(struct conn *c, const char *key, const char *id,
				 struct frame *ack);
/* Free what c owns (queue, refs, reassembly, claims, user). */
void conn_release(struct conn *c);

#endif
