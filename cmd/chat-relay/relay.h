/*
 * chat-relay: the declarations its modules share. The relay moves JSON lines
 * between a pipe (stdin/stdout, or a child's stdout/stdin) and RabbitMQ:
 *   args.c    command line (and CHAT_* environment) -> struct relay_opts
 *   pipe.c    the pipe side: what an input line is (publish, ack/nack
 *             control, bad), its envelope members stripped, and how a
 *             delivery becomes an output line; no I/O
 *   window.c  the bounded window of unconfirmed publishes
 *   broker.c  the broker side, one AMQP connection (rabbitmq-c): connect (to one of several
 *             brokers, TCP or TLS), declare, publish, frames -> events; the
 *             only file that includes <amqp.h>
 *   child.c   running CMD with pipes
 *   stats.c   the counters, as a log line and as a Prometheus text file
 *   relay.c   the one poll() loop that ties them together
 * Memory: options point into argv or the environment, or into copies that
 * relay_opts_free() releases (borrowed for the life of the process);
 * everything else is owned by the module that made it.
 */
#ifndef CHAT_RELAY_H
#define CHAT_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define RELAY_BINDS_MAX 32
#define RELAY_URLS_MAX 16            /* brokers tried in turn */
#define RELAY_ROUTE_MAX 255          /* AMQP short string */
#define RELAY_DEFAULT_URL "amqp://guest:guest@127.0.0.1:5672/"
#define RELAY_INGEST_QUEUE "chat.ingest." /* + shard number */
#define RELAY_INGEST_KEY "ingest."   /* + shard number; published mandatory */
#define RELAY_NODE_KEY "node."       /* + node: answers to one gateway */
#define RELAY_FANOUT_EXCHANGE "chat"
#define RELAY_EXPIRE_MAX 86400000u   /* "expire" at most one day, in ms */
#define RELAY_URL_FILE_MAX 65536     /* longest --url-file */
#define RELAY_OUT_SOFT_MAX (1024 * 1024) /* stop reading input above this */

enum relay_mode {
	RELAY_PUB,    /* stdin lines -> broker, confirms -> stdout */
	RELAY_SUB,    /* deliveries -> stdout, ack lines <- stdin */
	RELAY_CHILD,  /* child's stdout -> broker, deliveries -> child's stdin */
};

struct relay_bind {
	const char *exchange;  /* points into argv */
	char key[RELAY_ROUTE_MAX + 1]; /* binding key */
};

struct relay_opts {
	enum relay_mode mode;         /* pub, sub or child */
	char *urls[RELAY_URLS_MAX];   /* brokers, tried in turn (owned) */
	int nurls;                    /* how many, >= 1 after relay_args */
	bool url_password_argv;       /* a --url carried a password */
	const char *ca_file;          /* --ca: CA certificates for amqps */
	bool insecure;                /* --insecure: no TLS verification */
	char node[64 + 1];            /* --node, or host-pid */
	unsigned ingest_shards;       /* --ingest-shards, 1..SHARD_MAX */
	const char *metrics_file;     /* --metrics-file or NULL */
	uint64_t stats_interval_ms;   /* --stats-interval, 0 off */
	const char *exchange;         /* publish exchange, "chat" */
	const char *route;            /* default routing key or NULL */
	const char *queue;            /* queue to declare/consume or NULL */
	struct relay_bind binds[RELAY_BINDS_MAX]; /* --bind EXCHANGE:KEY */
	int nbinds;                   /* how many binds */
	bool exclusive;               /* exclusive auto-delete queue */
	bool manual_ack;              /* deliveries acked by ack lines */
	bool quorum;                  /* durable queues are quorum queues */
	bool single_active;           /* --queue has a single active consumer */
	bool consume;                 /* derived: deliveries wanted */
	bool publish;                 /* derived: input lines are published */
	unsigned prefetch;            /* unacked deliveries, 1..65535 */
	unsigned max_inflight;        /* unconfirmed publishes, 1..65535 */
	size_t max_line;              /* longest line in or out, bytes */
	uint64_t retry_budget_ms;     /* how long the broker may be away */
	uint64_t backoff_max_ms;      /* cap of the reconnect delay */
	uint64_t connect_timeout_ms;  /* TCP connect, login, each declare */
	unsigned heartbeat_s;         /* AMQP heartbeat, 0 off */
	int ready_fd;                 /* -1 or fd to notify readiness on */
	int verbosity;                /* -v N */
	char **child_argv;            /* CMD ARGS... (child mode) */
};

/* args.c */
enum {
	ARGS_RUN = 0, ARGS_HELP = 1, ARGS_VERSION = 2,
	ARGS_USAGE = -1,   /* fix the command line: exit 64 */
	ARGS_CONFIG = -2,  /* a file or variable it names is bad: exit 78 */
};
/* Fill o from argv and the environment (CHAT_AMQP_URL, CHAT_INGEST_SHARDS).
 * Returns ARGS_RUN, ARGS_HELP, ARGS_VERSION, or ARGS_USAGE/ARGS_CONFIG with
 * a reason in err. The password of a --url is overwritten in argv (after
 * it is copied), so that ps shows it for as short a time as we can. Call
 * relay_opts_free(o) afterwards, whatever it returned. */
int relay_args(int argc, char **argv, struct relay_opts *o, char *err,
	       size_t errlen);
void relay_opts_free(struct relay_opts *o);
/* The usage lines (SYNOPSIS) and, when full, the option list. */
void relay_usage(int fd, bool full);
/* Where the password of url is: true with *off and *len set when url has
 * userinfo with a ':' (the password may be empty), false otherwise. */
bool relay_url_password(const char *url, size_t *off, size_t *len);

/* pipe.c */
enum relay_line_kind {
	RLINE_PUBLISH,  /* publish: route set, confirm maybe */
	RLINE_ACK,      /* {"type":"ack","tag":N} */
	RLINE_NACK,     /* {"type":"nack","tag":N,"requeue":B} */
	RLINE_BAD,      /* not acceptable: err says why */
};

struct relay_line {
	enum relay_line_kind kind;           /* what the line is */
	char route[RELAY_ROUTE_MAX + 1];     /* routing key to publish with */
	char *confirm;                       /* malloc'd JSON text of "confirm" */
	uint32_t expire_ms;                  /* "expire", 0 when absent */
	const char *body;                    /* publish: what to publish */
	size_t body_len;                     /* its length */
	uint64_t tag;                        /* ack/nack: the delivery tag */
	bool requeue;                        /* nack: requeue (default true) */
	char err[128];                       /* RLINE_BAD: the reason */
};

/* Classify one input line (without its newline). default_route is used when
 * the line has no "route" (NULL: such a line is bad). Control lines are
 * recognised only when control is true. A publish line's envelope members
 * ("route", "confirm", "expire") are the relay's instructions: l->body is
 * the line without them, every other byte as written (the line itself when
 * it has none, else a copy in scratch, which the caller owns and which must
 * outlive the use of l->body). The caller frees l->confirm. */
void relay_line_parse(const char *line, size_t len, const char *default_route,
		      bool control, struct buf *scratch, struct relay_line *l);
/* Whether lines on route are published mandatory (an unroutable one is
 * returned by the broker, and its confirm is a nack): the ingest shards. */
bool relay_route_mandatory(const char *route);
/* Append a delivery body to out as one line (with "\n"); when tag is not 0,
 * "tag":N is added as the object's last member. Returns 0, or -1 with *why
 * set when the body is not a one-line JSON object (out unchanged) or out is
 * full. */
int relay_line_delivery(struct buf *out, const char *body, size_t len,
			uint64_t tag, const char **why);
/* Append {"type":"confirm"|"nack","confirm":X}\n to out. Returns 0/-1. */
int relay_line_confirm(struct buf *out, const char *confirm, bool ok);

/* window.c: unconfirmed publishes, oldest first. Entry i (from the oldest)
 * that was published on the current channel has sequence number
 * first_seq + i; entries at i >= sent wait to be (re)published. */
struct relay_msg {
	char *confirm;      /* JSON text to answer with, or NULL */
	bool done;          /* broker answered */
	bool nacked;        /* broker answered with basic.nack, or returned it */
	bool mandatory;     /* published mandatory (relay_route_mandatory) */
	bool returned;      /* broker returned it (basic.return) */
	uint32_t expire_ms; /* per-message expiration, 0 none */
	size_t len;         /* body length */
	char *route;        /* points into data, after the body */
	char data[];        /* body, NUL, route, NUL */
};

struct relay_window {
	struct relay_msg **ring;  /* cap slots */
	size_t cap;               /* max_inflight */
	size_t head;              /* slot of the oldest entry */
	size_t count;             /* entries held */
	size_t sent;              /* entries published on the current channel */
	uint64_t first_seq;       /* seq of the oldest entry when sent > 0 */
};

int relay_window_init(struct relay_window *w, size_t cap);
void relay_window_free(struct relay_window *w);
static inline bool relay_window_full(const struct relay_window *w)
{
	return w->count >= w->cap;
}
/* Make a message (body and route copied, confirm taken over). NULL when out
 * of memory (confirm is then freed). */
struct relay_msg *relay_msg_new(const char *body, size_t len, const char *route,
				uint32_t expire_ms, char *confirm);
void relay_msg_free(struct relay_msg *m);
/* Add m as the newest entry; the window must not be full. */
void relay_window_push(struct relay_window *w, struct relay_msg *m);
/* The next entry to publish, or NULL when all are sent. */
struct relay_msg *relay_window_unsent(const struct relay_window *w);
/* Record that the entry from relay_window_unsent() went out as seq. */
void relay_window_mark_sent(struct relay_window *w, uint64_t seq);
/* Apply a basic.ack (ok) or basic.nack for tag (and below when multiple).
 * Returns how many entries it newly settled (0: unknown or stale tag). */
size_t relay_window_settle(struct relay_window *w, uint64_t tag, bool multiple,
			   bool ok);
/* The broker returned the entry published as seq (basic.return, which
 * comes before its basic.ack): its answer will be a nack. Returns false for
 * an unknown seq. */
bool relay_window_returned(struct relay_window *w, uint64_t seq);
/* Pop the oldest entry if the broker answered it; NULL otherwise. The caller
 * frees it. */
struct relay_msg *relay_window_pop(struct relay_window *w);
/* The channel is gone: every held entry must be published again. Returns
 * how many had been sent. */
size_t relay_window_rewind(struct relay_window *w);

/* stats.c: the counters (what hit a bound, what was refused, what went
 * through), logged as one logfmt line and written as a Prometheus text file
 * (--metrics-file). */
struct relay_stats {
	uint64_t lines_in;     /* input lines seen, of every kind */
	uint64_t lines_out;    /* lines queued for the output, of every kind */
	uint64_t published;    /* basic.publish calls, repeats included */
	uint64_t republished;  /* publishes repeated after a reconnect */
	uint64_t confirmed;    /* lines the broker confirmed */
	uint64_t nacked;       /* lines answered with a nack (returned too) */
	uint64_t returned;     /* mandatory lines the broker could not route */
	uint64_t bad_lines;    /* input lines refused: not JSON, no route... */
	uint64_t overlong;     /* input lines over --max-line */
	uint64_t acks;         /* ack/nack control lines applied */
	uint64_t stale_acks;   /* control lines for tags of a lost connection */
	uint64_t deliveries;   /* messages received from the broker */
	uint64_t rejected;     /* deliveries refused: too big, not a line */
	uint64_t reconnects;   /* successful reconnects */
	uint64_t nack_drops;   /* connections dropped after a run of nacks */
	uint64_t connect_failures; /* connection attempts that failed */
	uint64_t window_full;  /* times input paused on a full window */
	uint64_t out_full;     /* times input paused on a full output */
};

struct relay_gauges {
	bool broker_up;        /* connected now */
	int broker;            /* index of the URL in use (or last used) */
	size_t inflight;       /* unconfirmed publishes held */
	size_t inflight_max;   /* --max-inflight */
	size_t unacked;        /* manual-ack deliveries handed out, not settled */
	size_t out_bytes;      /* bytes waiting to be written out */
};

/* One logfmt line at level lvl with every counter and gauge. */
void relay_stats_log(int lvl, const char *msg, const struct relay_stats *s,
		     const struct relay_gauges *g);
/* Register the chat_relay_* metrics, labelled with node (copied). Once per
 * process. */
void relay_metrics_init(const char *node);
/* Write every metric to path atomically (lib/metrics). Returns 0, or -1
 * with errno. */
int relay_metrics_write(const char *path, const struct relay_stats *s,
			const struct relay_gauges *g);

/* child.c */
/* Run argv[0] with its stdin and stdout on pipes and env (NULL-terminated
 * "NAME=VALUE" strings, NULL for none) added to its environment. Returns the
 * pid and sets *to_child (write end, non-blocking) and *from_child (read
 * end, non-blocking), or -1 with errno. */
pid_t relay_child_spawn(char **argv, char *const *env, int *to_child,
			int *from_child);
/* Exit status the relay reports for a child's wait status. */
int relay_child_exit_code(int wstatus);

/* relay.c */
/* Run the relay until done; returns the process exit status. */
int relay_run(const struct relay_opts *o);

#endif
