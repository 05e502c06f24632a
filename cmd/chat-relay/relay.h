/*
 * chat-relay: the declarations its modules share. The relay moves JSON lines
 * between a pipe (stdin/stdout, or a child's stdout/stdin) and RabbitMQ:
 *   args.c    command line -> struct relay_opts
 *   line.c    what an input line is (publish, ack/nack control, bad) and
 *             how a delivery becomes an output line; no I/O
 *   window.c  the bounded window of unconfirmed publishes
 *   bus.c     the AMQP connection (rabbitmq-c): connect, declare, publish,
 *             frames -> events; the only file that includes <amqp.h>
 *   child.c   running CMD with pipes
 *   relay.c   the one poll() loop that ties them together
 * Memory: options point into argv or the environment (borrowed for the life
 * of the process); everything else is owned by the module that made it.
 */
#ifndef CHAT_RELAY_H
#define CHAT_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define RELAY_BINDS_MAX 32
#define RELAY_ROUTE_MAX 255          /* AMQP short string */
#define RELAY_DEFAULT_URL "amqp://guest:guest@127.0.0.1:5672/"
#define RELAY_INGEST_QUEUE "chat.ingest"
#define RELAY_INGEST_KEY "ingest"
#define RELAY_FANOUT_EXCHANGE "chat"
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
	const char *url;              /* AMQP URL (--url, CHAT_AMQP_URL) */
	const char *exchange;         /* publish exchange, "chat" */
	const char *route;            /* default routing key or NULL */
	const char *queue;            /* queue to declare/consume or NULL */
	struct relay_bind binds[RELAY_BINDS_MAX]; /* --bind EXCHANGE:KEY */
	int nbinds;                   /* how many binds */
	bool exclusive;               /* exclusive auto-delete queue */
	bool manual_ack;              /* deliveries acked by ack lines */
	bool quorum;                  /* durable queues are quorum queues */
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
enum { ARGS_RUN = 0, ARGS_HELP = 1, ARGS_VERSION = 2, ARGS_USAGE = -1 };
/* Fill o from argv and the environment (CHAT_AMQP_URL). Returns ARGS_RUN,
 * ARGS_HELP, ARGS_VERSION, or ARGS_USAGE with a reason in err. */
int relay_args(int argc, char **argv, struct relay_opts *o, char *err,
	       size_t errlen);
/* The usage lines (SYNOPSIS) and, when full, the option list. */
void relay_usage(int fd, bool full);

/* line.c */
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
	uint64_t tag;                        /* ack/nack: the delivery tag */
	bool requeue;                        /* nack: requeue (default true) */
	char err[128];                       /* RLINE_BAD: the reason */
};

/* Classify one input line (without its newline). default_route is used when
 * the line has no "route" (NULL: such a line is bad). Control lines are
 * recognised only when control is true. The caller frees l->confirm. */
void relay_line_parse(const char *line, size_t len, const char *default_route,
		      bool control, struct relay_line *l);
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
	bool nacked;        /* broker answered with basic.nack */
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
/* Make a message (body, route, confirm taken over). NULL when out of memory
 * (confirm is then freed). */
struct relay_msg *relay_msg_new(const char *body, size_t len, const char *route,
				char *confirm);
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
/* Pop the oldest entry if the broker answered it; NULL otherwise. The caller
 * frees it. */
struct relay_msg *relay_window_pop(struct relay_window *w);
/* The channel is gone: every held entry must be published again. Returns
 * how many had been sent. */
size_t relay_window_rewind(struct relay_window *w);

/* child.c */
/* Run argv[0] with its stdin and stdout on pipes. Returns the pid and sets
 * *to_child (write end, non-blocking) and *from_child (read end,
 * non-blocking), or -1 with errno. */
pid_t relay_child_spawn(char **argv, int *to_child, int *from_child);
/* Exit status the relay reports for a child's wait status. */
int relay_child_exit_code(int wstatus);

/* relay.c */
/* Run the relay until done; returns the process exit status. */
int relay_run(const struct relay_opts *o);

#endif
