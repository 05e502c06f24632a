/*
 * store: chat-presence's Redis side, in three layers:
 *   rconn.c  one pipelined, non-blocking connection (hiredis without its
 *            async layer, so the poll loop owns the socket): a bounded
 *            FIFO of callbacks, AUTH and SELECT, timeouts, a sticky error
 *   store.c  the key layout and the Lua scripts that decide transitions
 *            atomically, one room's keys per script (one Cluster slot)
 *   sweep.c  the expiry sweep and the purge of a node that went down
 * Memory: a redisReply handed to a callback is valid only during the
 * callback (hiredis frees it after), and so is everything that points into
 * it (struct store_change).
 */
#ifndef CHAT_PRESENCE_STORE_H
#define CHAT_PRESENCE_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "map.h"
#include "presence.h"

/* --- rconn ----------------------------------------------------------- */

/* r is the reply, or NULL when the connection went before it came (the
 * command may or may not have run). An error reply is a reply. */
typedef void rconn_cb(void *priv, redisReply *r);

enum rconn_state {
	RC_DOWN,       /* no connection */
	RC_CONNECTING, /* TCP connect in progress */
	RC_HELLO,      /* AUTH / SELECT in flight */
	RC_UP,         /* commands may be sent */
};

struct rconn_pending {
	rconn_cb *cb;  /* called once, with the reply or NULL */
	void *priv;    /* its argument */
	int64_t at_us; /* monotonic time it was queued */
};

struct rconn {
	struct rurl url;             /* where to connect (a copy) */
	redisContext *c;             /* hiredis context, NULL when down */
	enum rconn_state state;      /* see enum */
	struct rconn_pending *ring;  /* callbacks in the order of replies */
	size_t cap;                  /* ring slots */
	size_t head;                 /* oldest pending */
	size_t count;                /* pending */
	size_t max_pending;          /* rconn_full() at this many */
	uint64_t connect_timeout_ms; /* connect + AUTH + SELECT */
	uint64_t timeout_ms;         /* a reply takes at most this */
	int64_t started_us;          /* when the connect began */
	int dispatching;             /* inside a callback */
	bool drop_later;             /* rconn_drop() called in a callback */
	char errstr[160];            /* why the last connection went */
	void (*on_up)(void *arg);    /* connection usable */
	void (*on_down)(void *arg);  /* connection gone (pending failed) */
	void *arg;                   /* hooks' argument */
};

/* A connection to u, not yet started. NULL when out of memory. */
struct rconn *rconn_new(const struct rurl *u, uint64_t connect_timeout_ms,
			uint64_t timeout_ms, size_t max_pending);
void rconn_free(struct rconn *rc);
/* Begin connecting (non-blocking). Returns 0, or -1 with errstr set when it
 * failed at once (on_down is not called then). */
int rconn_start(struct rconn *rc);
/* Close the connection: every pending callback gets NULL, then on_down
 * runs. Inside a callback the drop happens after it returns. */
void rconn_drop(struct rconn *rc, const char *why);
/* The socket to poll and the events wanted (-1 / 0 when down). */
int rconn_fd(const struct rconn *rc);
short rconn_events(const struct rconn *rc);
/* Handle poll results; writes what is queued, reads and dispatches. */
void rconn_io(struct rconn *rc, short revents);
/* Write what is queued now (after a batch of commands). */
void rconn_flush(struct rconn *rc);
/* Drop the connection when connecting or a reply takes too long. */
void rconn_tick(struct rconn *rc, int64_t now_us);
/* Monotonic us by which rconn_tick() must run, or -1. */
int64_t rconn_deadline_us(const struct rconn *rc);
/* Queue a command (argv form). Returns 0, or -1 when not up (cb is not
 * called then). */
int rconn_cmd(struct rconn *rc, rconn_cb *cb, void *priv, int argc, const char **argv,
	      const size_t *argvlen);
/* Queue a command (hiredis printf form, %s and %b). */
int rconn_cmdf(struct rconn *rc, rconn_cb *cb, void *priv, const char *fmt, ...);
static inline bool rconn_up(const struct rconn *rc)
{
	return rc->state == RC_UP;
}
/* Whether the pipeline holds max_pending commands (stop feeding it). */
static inline bool rconn_full(const struct rconn *rc)
{
	return rc->count >= rc->max_pending;
}

/* --- sync.c: the blocking connection of online and watch ------------- */

/* Connect to u within o's --connect-timeout, replies within --timeout,
 * AUTH and SELECT done. Returns the context, or NULL with a reason in err
 * and *code the exit status (69 unreachable, 78 refused credentials). */
redisContext *sync_connect(const struct pres_opts *o, const struct rurl *u, char *err,
			   size_t errlen, int *code);

/* --- store ----------------------------------------------------------- */

enum { SCRIPT_ADD, SCRIPT_DEL, SCRIPT_QUERY, SCRIPT_COUNT };

/* The result of a script that changes presence: the users that became
 * present (add) or absent (del) in the room. */
struct store_change {
	const char *room;   /* the room of the call */
	const char **users; /* pointers into the reply */
	size_t nusers;      /* how many */
	int64_t t_us;       /* Redis time of the change */
	int64_t seen_us;    /* the room's last query stamp, 0 if none */
	int64_t rest;       /* del: entries the node still has in the room */
	bool more;          /* del expire: the limit cut the removal */
	int64_t removed;    /* del: entries removed */
};

/* ch NULL: the command failed (connection lost or error, logged). */
typedef void store_change_fn(void *priv, const struct store_change *ch);
/* users NULL: failed; err is a short reason for the asker. */
typedef void store_query_fn(void *priv, const char *const *users, size_t nusers,
			    uint64_t count, const char *err);

struct store {
	struct rconn *rc;           /* the connection (owned) */
	const char *prefix;         /* --prefix, borrowed */
	char sha[SCRIPT_COUNT][41]; /* SHA1 of each loaded script */
	bool ready;                 /* handshake done: ops may be queued */
	int hello_left;             /* handshake replies still awaited */
	bool hello_failed;          /* a handshake reply was wrong */
	char epoch[40];             /* the Redis state's epoch, "" unknown */
	char my_epoch[40];          /* the one this process proposes */
	bool fatal;                 /* Redis cannot serve us (too old) */
	char fatal_why[160];        /* why */
	void (*on_ready)(void *arg, bool state_lost); /* handshake done */
	void (*on_down)(void *arg);                   /* connection gone */
	void *arg;                                    /* hooks' argument */
};

/* A store on connection rc (taken over). */
void store_init(struct store *st, struct rconn *rc, const char *prefix);
void store_free(struct store *st);

/* Key names (into out, outlen bytes), the layout of chat-presence(1):
 *   PREFIX:{ROOM}:users       ZSET user -> 0: present in the room
 *   PREFIX:{ROOM}:node:NODE   ZSET user -> deadline ms: NODE's entries
 *   PREFIX:{ROOM}:nodes       SET nodes with entries in the room
 *   PREFIX:{ROOM}:seen        STRING Redis time (us) of the last query
 *   PREFIX:node:{NODE}:hb     HASH deadline, ttl: the node's liveness
 *   PREFIX:node:{NODE}:rooms  SET rooms where NODE may have entries
 *   PREFIX:nodes              SET nodes that may have entries
 *   PREFIX:epoch              STRING changes when Redis lost the state
 *   PREFIX:events             pub/sub channel of every change (watch) */
void store_room_key(const struct store *st, char *out, size_t outlen,
		    const char *room, const char *what);
void store_room_node_key(const struct store *st, char *out, size_t outlen,
			 const char *room, const char *node);
void store_node_key(const struct store *st, char *out, size_t outlen,
		    const char *node, const char *what);
void store_global_key(const struct store *st, char *out, size_t outlen,
		      const char *what);

/* Add (or refresh) node's entries for users in room, with deadline_ms.
 * Returns 0, or -1 when not ready (fn is not called then). */
int store_add(struct store *st, const char *room, const char *node,
	      const char *const *users, size_t n, int64_t deadline_ms,
	      store_change_fn *fn, void *priv);
/* Remove node's entries for users in room (a leave). */
int store_leave(struct store *st, const char *room, const char *node,
		const char *const *users, size_t n, store_change_fn *fn, void *priv);
/* Remove at most limit of node's entries in room whose deadline is at
 * most bound_ms (the sweep, a down line). */
int store_expire(struct store *st, const char *room, const char *node,
		 int64_t bound_ms, unsigned limit, store_change_fn *fn, void *priv);
/* The node is alive until deadline_ms and holds entries in rooms: its
 * liveness and index keys, after the room scripts. */
int store_node_touch(struct store *st, const char *node, int64_t deadline_ms,
		     int64_t ttl_ms, const char *const *rooms, size_t nrooms);
/* Who is in room: the first limit users in byte order and the exact
 * count; stamps the room as seen. */
int store_query(struct store *st, const char *room, uint64_t limit,
		store_query_fn *fn, void *priv);
/* Publish a change line on PREFIX:events for watch (fire and forget). */
int store_publish(struct store *st, const char *line, size_t len);
/* Log an error reply (or a lost one) of a fire-and-forget command; true
 * when r is a good reply. */
bool store_reply_ok(const char *what, const redisReply *r);

/* --- sweep ----------------------------------------------------------- */

/* Who gets the changes the sweep and purges make: room's users that
 * became absent. */
typedef void sweep_left_fn(void *arg, const char *room, const struct store_change *ch);
typedef void sweep_done_fn(void *arg, bool ok);

struct sw_node;
struct sw_room;

struct sweep {
	struct store *st;      /* borrowed */
	uint64_t ttl_ms;       /* --ttl: bound of a dead node's entries */
	sweep_left_fn *left;   /* changes go there */
	void *arg;             /* its argument */
	bool running;          /* a sweep run is under way */
	int run_refs;          /* run-level replies awaited */
	bool run_failed;       /* the run lost its connection */
	int64_t run_now_ms;    /* wall time the run started */
	struct sw_node *nodes; /* node jobs of the run and purges */
	struct sw_room *rooms; /* room jobs, oldest first */
	struct sw_room *rooms_tail;
	size_t nrooms;      /* room jobs queued */
	struct map cursors; /* node -> alive-cycle SSCAN cursor */
	uint64_t runs;      /* completed runs */
	uint64_t expired;   /* entries removed */
};

void sweep_init(struct sweep *sw, struct store *st, uint64_t ttl_ms,
		sweep_left_fn *left, void *arg);
void sweep_free(struct sweep *sw);
/* Start a run at wall time now_ms unless one is under way. Returns 0, or
 * -1 when not started (busy or not ready). */
int sweep_start(struct sweep *sw, int64_t now_ms);
/* Remove every entry of node with deadline at most bound_ms, now (a down
 * line); done(arg, ok) when finished (ok false: the connection went). */
int sweep_purge(struct sweep *sw, const char *node, int64_t bound_ms,
		sweep_done_fn *done, void *arg);
/* Issue queued work while the pipeline has room. */
void sweep_pump(struct sweep *sw);
/* The connection went (in-flight callbacks got NULL already): queued
 * work fails, the run ends, purges report done(arg, false). */
void sweep_lost(struct sweep *sw);
/* Whether a run or a purge is under way. */
bool sweep_busy(const struct sweep *sw);

#endif
