/*
 * chat-presence: the declarations its Redis-free modules share. The program
 * keeps who is in which room across every gateway in Redis (see
 * man/chat-presence.1):
 *   args.c     command line -> struct pres_opts
 *   url.c      redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] -> struct rurl
 *   line.c     what a bus line is (join, leave, heartbeat, down, query);
 *              no I/O, fuzzed
 *   coal.c     presence changes coalesced per room over a short window,
 *              with the rule for a join and a leave that cancel; no I/O
 *   render.c   the lines chat-presence writes (changes, answers, errors),
 *              prefix pres_render_ (chat-gw has a render module too)
 *   pmetrics.c every metric chat-presence exports
 * and, with hiredis (store.h): rconn.c (the pipelined connection), store.c
 * (key layout and Lua scripts), sweep.c (expiry), track.c (the track
 * loop), online.c and watch.c (the shell subcommands).
 * Memory: options point into argv or the environment (borrowed for the life
 * of the process); every other object is owned by the module that made it,
 * and strings handed to a function are borrowed for the call.
 */
#ifndef CHAT_PRESENCE_H
#define CHAT_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "map.h"
#include "metrics.h"

#define PRES_DEFAULT_URL "redis://127.0.0.1:6379/0"
#define PRES_PREFIX_MAX 64
#define PRES_LIMIT_DEFAULT 100

enum pres_cmd {
	PRES_TRACK,  /* apply bus lines, publish changes, answer queries */
	PRES_ONLINE, /* print who is present, for shells */
	PRES_WATCH,  /* print presence changes as they happen */
};

struct pres_opts {
	enum pres_cmd cmd;           /* the subcommand */
	const char *url;             /* --redis, $CHAT_REDIS_URL or default */
	const char *url_file;        /* --redis-file or NULL */
	bool url_on_argv;            /* url came from --redis */
	const char *prefix;          /* --prefix, key prefix ("chat") */
	uint64_t ttl_ms;             /* --ttl: longest life without refresh */
	uint64_t sweep_ms;           /* --sweep: expiry sweep interval */
	uint64_t coalesce_ms;        /* --coalesce: change window per room */
	size_t max_line;             /* --max-line: longest line in or out */
	size_t backlog;              /* --backlog: bytes held while Redis is away */
	unsigned max_pending;        /* --max-pending: commands in flight */
	uint64_t retry_budget_ms;    /* --retry-budget: Redis away at most */
	uint64_t backoff_max_ms;     /* --backoff-max: longest reconnect wait */
	uint64_t connect_timeout_ms; /* --connect-timeout */
	uint64_t timeout_ms;         /* --timeout: a reply takes at most */
	const char *metrics_file;    /* --metrics-file or NULL */
	uint64_t stats_interval_ms;  /* --stats-interval, 0 off */
	int ready_fd;                /* --ready-fd or -1 */
	const char *room;            /* online/watch --room or NULL */
	unsigned limit;              /* online --limit */
	int verbosity;               /* -v N */
};

/* args.c */
enum { ARGS_RUN = 0, ARGS_HELP = 1, ARGS_VERSION = 2, ARGS_USAGE = -1 };
/* Fill o from argv and the environment ($CHAT_REDIS_URL). Returns ARGS_RUN,
 * ARGS_HELP, ARGS_VERSION, or ARGS_USAGE with a reason in err. */
int pres_args(int argc, char **argv, struct pres_opts *o, char *err, size_t errlen);
/* The usage lines (SYNOPSIS) and, when full, the option list. */
void pres_usage(int fd, bool full);

/* url.c */
struct rurl {
	char host[256];     /* host name or address */
	int port;           /* TCP port (6379) */
	int db;             /* database number (0) */
	char user[128];     /* ACL user name, or "" */
	char password[256]; /* password, or "" (no AUTH) */
};

/* Parse redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (percent-escapes
 * decoded in USER and PASSWORD). Returns 0, or -1 with a reason in err
 * (which never contains the password). */
int rurl_parse(const char *s, struct rurl *u, char *err, size_t errlen);
/* The URL for logs, with the password masked: into out (outlen bytes). */
void rurl_masked(const struct rurl *u, char *out, size_t outlen);

/* line.c */
enum pline_kind {
	PL_JOIN,      /* users whose first connection to room arrived */
	PL_LEAVE,     /* users whose last connection to room went */
	PL_HEARTBEAT, /* everything node holds (or part of it) */
	PL_DOWN,      /* every entry of node goes now */
	PL_QUERY,     /* rpc.presence: who is in room */
	PL_BUS,       /* the relay's {"type":"bus","state":...} */
	PL_BAD,       /* refused: err says why */
};

struct pline_room {
	const char *room;   /* valid room name */
	const char **users; /* valid user names */
	size_t nusers;      /* how many */
};

struct pline {
	enum pline_kind kind;     /* what the line is */
	const char *node;         /* gateway (all but PL_BUS) */
	struct pline_room *rooms; /* join, leave, query: one; heartbeat: any */
	size_t nrooms;            /* how many */
	int64_t ttl_ms;           /* heartbeat "ttl", or -1 */
	char *rpc;                /* query: JSON text of "rpc", malloc'd */
	uint64_t limit;           /* query: "limit" (PRES_LIMIT_DEFAULT) */
	bool bus_up;              /* PL_BUS: state is "up" */
	size_t bad_names;         /* users or rooms skipped as invalid */
	char err[160];            /* PL_BAD: the reason */
	void *root;               /* the parsed JSON (json_t), owns strings */
	const char **names;       /* storage for every users array */
};

/* Parse one line (without its newline). Always fills pl; the caller calls
 * pline_free() whatever the kind. Names that are not valid (lib/name.h) are
 * skipped and counted in bad_names; a line whose node or room is not valid
 * is PL_BAD. */
void pline_parse(const char *line, size_t len, struct pline *pl);
void pline_free(struct pline *pl);
/* The name of a kind, for logs and metric labels. */
const char *pline_kind_name(enum pline_kind k);

/* render.c: the lines chat-presence writes, each with its "\n". Names are
 * valid (lib/name.h) and need no escaping. Return 0, or -1 when out is
 * full (out is then as it was). */
/* A presence change without "route" (what watch prints): joined and left
 * as given. */
int pres_render_change(struct buf *out, const char *room, const char *const *joined,
		       size_t njoined, const char *const *left, size_t nleft);
/* The same change as a bus line: "route":"evt.ROOM" last. line is a change
 * from pres_render_change() (with its newline). */
int pres_render_change_routed(struct buf *out, const char *room, const char *line,
			      size_t len);
/* A query's answer; users are cut to what fits in max_line (then more is
 * true whatever more says). */
int pres_render_answer(struct buf *out, const char *rpc, const char *node,
		       const char *room, const char *const *users, size_t nusers,
		       uint64_t count, bool more, size_t max_line);
/* {"type":"error","rpc":Q,"room":R,"error":TEXT,"route":"node.NODE"} */
int pres_render_error(struct buf *out, const char *rpc, const char *node,
		      const char *room, const char *text);
/* online's line: {"room":R,"users":[...],"count":N,"more":B} */
int pres_render_online(struct buf *out, const char *room, const char *const *users,
		       size_t nusers, uint64_t count, bool more);

/* coal.c: presence changes wait per room for the window (--coalesce) so a
 * storm of joins and leaves becomes a bounded number of lines. A join and
 * a leave of one user in one window cancel, but only when nobody could
 * have seen the first of the two: every presence query stamps the room in
 * Redis with the server's time (seen_us), every transition carries the
 * server's time it happened at (t_us); a query that looked after the first
 * transition forbids the cancel, and the pending line is published at once
 * instead, so that the asker hears of the second transition too. */
struct coal_user {
	bool joined;  /* pending as joined (else left) */
	int64_t t_us; /* Redis time of the transition */
};

struct coal_room {
	struct map users;       /* user -> struct coal_user * */
	int64_t due_ms;         /* monotonic ms the line goes out */
	size_t bytes;           /* estimate of the line's length */
	struct coal_room *prev; /* older pending room */
	struct coal_room *next; /* newer pending room (windows are equal, so
				 * this is the order of due_ms) */
	char name[];            /* room name */
};

/* Called with each line to publish: room, the line without "route"
 * (pres_render_change(), with its newline). */
typedef void coal_emit_fn(void *arg, const char *room, const char *line, size_t len);

struct coal {
	struct map rooms;       /* room name -> struct coal_room * */
	struct coal_room *head; /* oldest pending room */
	struct coal_room *tail; /* newest pending room */
	uint64_t window_ms;     /* --coalesce */
	size_t max_line;        /* longest line to emit */
	size_t max_users;       /* pending users beyond this: flush all */
	size_t nusers;          /* pending users */
	coal_emit_fn *emit;     /* where lines go */
	void *arg;              /* its argument */
	uint64_t cancelled;     /* join/leave pairs that cancelled */
	uint64_t seen_flushes;  /* early flushes because a query looked */
	uint64_t lines;         /* lines emitted */
	int err;                /* sticky: errno of the first failure */
};

void coal_init(struct coal *c, uint64_t window_ms, size_t max_line, size_t max_users,
	       coal_emit_fn *emit, void *arg);
void coal_free(struct coal *c);
/* A transition of user in room (joined or left) that happened at Redis
 * time t_us; seen_us is the room's last query stamp as the same script
 * read it (0: none). now_ms is the monotonic clock. Returns 0, or -1 when
 * out of memory (sticky in c->err; the change is then emitted at once). */
int coal_add(struct coal *c, const char *room, const char *user, bool joined,
	     int64_t t_us, int64_t seen_us, int64_t now_ms);
/* Emit the rooms whose window ended by now_ms. */
void coal_flush_due(struct coal *c, int64_t now_ms);
/* Emit room now (before a query's answer about it), if pending. */
void coal_flush_room(struct coal *c, const char *room);
/* Emit everything now (shutdown). */
void coal_flush_all(struct coal *c);
/* Monotonic ms of the next window's end, or -1 when nothing waits. */
int64_t coal_next_due(const struct coal *c);

/* pmetrics.c: every metric chat-presence exports (Prometheus text). */
struct pres_metrics {
	struct metric lines;        /* input lines, every kind */
	struct metric bad_lines;    /* refused lines */
	struct metric bad_names;    /* user/room names skipped */
	struct metric overlong;     /* lines over --max-line */
	struct metric joins;        /* users named by join lines */
	struct metric leaves;       /* users named by leave lines */
	struct metric heartbeats;   /* heartbeat lines */
	struct metric refreshed;    /* entries named by heartbeats */
	struct metric downs;        /* down lines */
	struct metric queries;      /* presence queries */
	struct metric query_errors; /* queries answered with an error */
	struct metric joined;       /* users that became present */
	struct metric left;         /* users that became absent */
	struct metric expired;      /* users made absent by the sweep */
	struct metric cancelled;    /* join/leave pairs that cancelled */
	struct metric events;       /* change lines published */
	struct metric sweeps;       /* sweeps completed */
	struct metric reconnects;   /* Redis reconnects */
	struct metric gaps;         /* times Redis went away */
	struct metric gap_ms;       /* total ms Redis was away */
	struct metric state_lost;   /* reconnects to a Redis that lost state */
	struct metric lost_ops;     /* commands whose reply was lost */
	struct metric redis_errors; /* error replies */
	struct metric backlog;      /* gauge: lines held while Redis is away */
	struct metric dropped;      /* lines dropped: backlog full */
	struct metric pending;      /* gauge: commands in flight */
	struct metric paused;       /* times input paused (backpressure) */
	struct metric out_dropped;  /* output lines dropped: output full */
};

extern struct pres_metrics pm;
void pres_metrics_init(void);

/* track.c, online.c, watch.c: run a subcommand; return the exit status. */
int track_run(const struct pres_opts *o, const struct rurl *u);
int online_run(const struct pres_opts *o, const struct rurl *u);
int watch_run(const struct pres_opts *o, const struct rurl *u);

#endif
