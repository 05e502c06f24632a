/*
 * chat-archive: the declarations its modules share. The archive is the
 * sequencer of the chat toolkit: it stores published messages in PostgreSQL,
 * gives each its room seq, and answers history and recovery queries.
 *   args.c    command line -> struct archive_opts (never prints or exits)
 *   ingest.c  what a line on store's stdin is (publish, confirm, nack, bus
 *             state, bad); no I/O
 *   msgline.c the one renderer of a message line, for store's output, for
 *             answers and for the history command; no I/O
 *   query.c   what a line on serve's stdin is, and the answers, cut to fit
 *             --max-line; no I/O
 *   db.c      the PostgreSQL connection (libpq): connect, schema check,
 *             error classes; sticky error text
 *   schema.c  the versioned schema: init creates or migrates it
 *   seqtx.c   the batch transaction that gives messages their seq, sent in
 *             one round trip (libpq pipeline mode)
 *   store.c   store: the poll() loop over stdin, stdout and PostgreSQL
 *   serve.c   serve: answers queries
 *   shell.c   init, history, stats and prune for shells
 *   stats.c   counters and histograms (Prometheus text, a stats log line)
 * Memory: options point into argv or the environment (borrowed for the life
 * of the process); everything else is owned by the module that made it.
 */
#ifndef CHAT_ARCHIVE_H
#define CHAT_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"

#define ARCHIVE_SCHEMA_VERSION 1     /* what this program needs */
#define ARCHIVE_ID_MAX 96            /* longest message id (lib/id.h) */
#define ARCHIVE_RPC_MAX 256          /* longest "rpc" value of a query */
#define ARCHIVE_NODE_MAX 64          /* longest node name (lib/id.h) */
#define ARCHIVE_BATCH_BYTES (8u << 20) /* most line bytes in one batch */

enum archive_cmd {
	CMD_INIT,     /* create or migrate the schema */
	CMD_STORE,    /* sequence ingest lines */
	CMD_SERVE,    /* answer history and recover queries */
	CMD_HISTORY,  /* print a room's messages */
	CMD_STATS,    /* print counts */
	CMD_PRUNE,    /* delete old messages */
};

struct archive_opts {
	enum archive_cmd cmd;         /* the subcommand */
	const char *db;               /* conninfo, "" for libpq's PG* */
	const char *db_file;          /* --db-file, or NULL */
	bool db_on_argv;              /* the conninfo came from --db */
	char *db_owned;               /* conninfo read from --db-file */
	uint64_t retry_budget_ms;     /* how long PostgreSQL may be away */
	uint64_t backoff_max_ms;      /* cap of the reconnect delay */
	uint64_t connect_timeout_ms;  /* one connection attempt */
	size_t max_line;              /* longest line in or out */
	size_t max_body;              /* largest message body */
	unsigned batch;               /* most lines in one transaction */
	uint64_t batch_delay_ms;      /* wait for a batch to fill */
	unsigned max_pending;         /* lines held by store */
	unsigned recover_limit;       /* most messages in a recovered answer */
	unsigned history_max;         /* largest history "limit" */
	const char *room;             /* history --room */
	int64_t since;                /* history --since, -1 when absent */
	int64_t before;               /* history --before, -1 when absent */
	uint64_t limit;               /* history --limit, 0: all */
	unsigned top;                 /* stats --top */
	uint64_t older_than_ms;       /* prune --older-than, 0 when absent */
	const char *metrics_file;     /* --metrics-file, or NULL */
	uint64_t stats_interval_ms;   /* --stats-interval, 0 off */
	int verbosity;                /* -v N */
};

/* args.c */
enum { ARGS_RUN = 0, ARGS_HELP = 1, ARGS_VERSION = 2, ARGS_USAGE = -1,
       ARGS_CONFIG = -2 };
/* Fill o from argv and the environment (CHAT_DB_URL). Returns ARGS_RUN,
 * ARGS_HELP, ARGS_VERSION, ARGS_USAGE (a usage error) or ARGS_CONFIG (the
 * --db-file cannot be read), with a reason in err. Free with
 * archive_args_free(). */
int archive_args(int argc, char **argv, struct archive_opts *o, char *err,
		 size_t errlen);
void archive_args_free(struct archive_opts *o);
/* The usage lines (SYNOPSIS) and, when full, the option list. */
void archive_usage(int fd, bool full);

/* ingest.c: one line on store's stdin. Spans are offsets into the line. */
enum ingest_kind {
	INGEST_PUBLISH,  /* a message to store */
	INGEST_CONFIRM,  /* {"type":"confirm","confirm":N} from the relay */
	INGEST_NACK,     /* {"type":"nack","confirm":N} from the relay */
	INGEST_OTHER,    /* a relay line store has no use for (bus state) */
	INGEST_BAD,      /* not acceptable: why says why */
};

struct span {
	size_t off;  /* first byte, from the start of the line */
	size_t len;  /* bytes */
};

struct ingest {
	enum ingest_kind kind;  /* what the line is */
	struct span id;         /* publish: the id, without quotes */
	struct span room;       /* publish: the room, without quotes */
	struct span from;       /* publish: the user, without quotes */
	struct span body;       /* publish: the body's JSON text, verbatim */
	int64_t ts;             /* publish: milliseconds since the epoch */
	bool tagged;            /* a delivery with "tag" (to be acked) */
	uint64_t tag;           /* its tag */
	uint64_t confirm;       /* confirm/nack: the number store gave */
	char why[128];          /* bad: the reason */
};

/* Classify one line (without its newline). A line with a valid "tag" is a
 * delivery: tagged is set even when the line is bad, so that it can be
 * acked. */
void ingest_parse(const char *line, size_t len, size_t max_body,
		  struct ingest *in);
/* Whether s (n bytes) is a message id: 1..96 of [A-Za-z0-9_.:-]. */
bool ingest_id_valid(const char *s, size_t n);

/* msgline.c */
struct msgline {
	const char *room;   /* room name */
	size_t room_len;
	int64_t seq;        /* its seq */
	const char *id;     /* message id */
	size_t id_len;
	const char *from;   /* user */
	size_t from_len;
	int64_t ts;         /* ms since the epoch */
	const char *body;   /* the body's JSON text, written verbatim */
	size_t body_len;
};

/* Append the message line (no newline):
 * {"type":"message","room":R,"seq":N,"id":ID,"from":U,"ts":MS,"body":BODY}
 * plus ,"route":"msg.R" when route and ,"confirm":N when confirm is not 0,
 * before the closing brace. Strings are escaped as JSON needs (valid names
 * need none). Returns 0, or -1 when out is full (out is then as it was). */
int msgline_render(struct buf *out, const struct msgline *m, bool route,
		   uint64_t confirm);
/* Append s (n bytes) as a JSON string, with quotes. Returns 0/-1. */
int msgline_str(struct buf *out, const char *s, size_t n);

/* query.c: one line on serve's stdin. */
enum query_kind {
	QUERY_HISTORY,  /* the last messages before a seq */
	QUERY_RECOVER,  /* the room's last seq and what came after since */
	QUERY_OTHER,    /* a relay line serve has no use for (bus state) */
	QUERY_BAD,      /* not a query: why says why */
};

struct query {
	enum query_kind kind;               /* what the line is */
	char rpc[ARCHIVE_RPC_MAX + 1];      /* the "rpc" value, JSON verbatim */
	char room[129];                     /* the room */
	char node[ARCHIVE_NODE_MAX + 1];    /* who asked: answer to node.NODE */
	int64_t before;                     /* history: -1 for the latest */
	int64_t since;                      /* recover: -1 for LAST only */
	unsigned limit;                     /* history: 1..history_max */
	bool tagged;                        /* a delivery with "tag" */
	uint64_t tag;                       /* its tag */
	char why[128];                      /* bad: the reason */
};

/* Classify one line. history_max caps "limit" (absent: 50). */
void query_parse(const char *line, size_t len, unsigned history_max,
		 struct query *q);

/* The answers. Messages come newest first (seq descending), as the
 * database returns them; the answer lists them oldest first. The whole
 * answer line, newline included, stays within max_line: the oldest that
 * do not fit are left out. */
struct answer_cut {
	size_t kept;      /* messages in the answer */
	bool cut;         /* some were left out to fit max_line */
};
/* {"type":"history","rpc":Q,"room":R,"messages":[...],"more":B,
 *  "route":"node.NODE"}\n; more when older_exist or some were cut. */
int answer_history(struct buf *out, const struct query *q,
		   const struct msgline *m, size_t n, bool older_exist,
		   size_t max_line, struct answer_cut *cut);
/* {"type":"recovered","rpc":Q,"room":R,"seq":LAST,"messages":[...],
 *  "gap":{"from":A,"to":B}?,"route":"node.NODE"}\n. The messages kept
 * are the newest contiguous run ending at last; gap covers since+1 up to
 * the first one kept. */
int answer_recover(struct buf *out, const struct query *q, int64_t last,
		   const struct msgline *m, size_t n, size_t max_line,
		   struct answer_cut *cut);
/* {"type":"error","rpc":Q,"room":R,"error":TEXT,"route":"node.NODE"}\n */
int answer_error(struct buf *out, const struct query *q, const char *text);

/* The subcommands; each returns the process exit status. The connection
 * is made but not yet connected (store.c, serve.c, shell.c). */
struct adb;
int store_run(const struct archive_opts *o, struct adb *db);
int serve_run(const struct archive_opts *o, struct adb *db);
int shell_init(const struct archive_opts *o, struct adb *db);
int shell_history(const struct archive_opts *o, struct adb *db);
int shell_stats(const struct archive_opts *o, struct adb *db);
int shell_prune(const struct archive_opts *o, struct adb *db);

/* stats.c */
void stats_register(enum archive_cmd cmd);
/* Write the metrics file (when set) and log the counters at lvl. */
void stats_report(const struct archive_opts *o, int lvl, const char *msg);
/* Seconds as a histogram observation of the batch latency, and the size. */
void stats_batch(size_t lines, double seconds);

/* The counters (Prometheus metrics; see stats.c for the names). */
struct archive_metrics {
	struct metric lines_in;       /* input lines, of every kind */
	struct metric bad_lines;      /* lines refused */
	struct metric stored;         /* messages stored (new rows) */
	struct metric duplicates;     /* lines whose id was stored already */
	struct metric out_lines;      /* message lines written */
	struct metric batches;        /* transactions committed */
	struct metric batch_size;     /* histogram: lines per transaction */
	struct metric batch_seconds;  /* histogram: transaction latency */
	struct metric batch_retries;  /* transactions sent again */
	struct metric acks;           /* ack lines written */
	struct metric nacks;          /* nacks received (requeued) */
	struct metric refused;        /* tagged lines over --max-pending */
	struct metric unknown_confirms; /* confirms for nothing pending */
	struct metric input_paused;   /* times stdin was paused (bounds) */
	struct metric pending;        /* gauge: lines held */
	struct metric db_reconnects;  /* successful reconnects */
	struct metric db_errors;      /* failed statements or connections */
	struct metric queries;        /* queries read */
	struct metric answers_history;   /* history answers */
	struct metric answers_recovered; /* recovered answers */
	struct metric answers_error;  /* error answers */
	struct metric answer_cuts;    /* answers cut to fit */
};
extern struct archive_metrics am;

#endif
