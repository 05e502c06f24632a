/*
 * args: chat-archive's command line (see man/chat-archive.1). One
 * subcommand word, options before or after it; each option belongs to the
 * subcommands listed in its table entry, and one given to another
 * subcommand is a usage error (a --batch given to serve would otherwise be
 * silently ignored). Nothing here prints or exits: main() reports a usage
 * error and exits 64.
 */
#include "archive.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "name.h"
#include "opt.h"

static const char usage_text[] =
	"usage: chat-archive [options] init\n"
	"       chat-archive [options] store [--batch N] [--batch-delay DUR] "
	"[--max-pending N] [--max-body SIZE]\n"
	"       chat-archive [options] serve [--recover-limit N] "
	"[--history-max N]\n"
	"       chat-archive [options] history --room ROOM "
	"[--since SEQ | --before SEQ] [--limit N]\n"
	"       chat-archive [options] stats [--top N]\n"
	"       chat-archive [options] prune --older-than DUR\n";

static const char options_text[] =
	"\n"
	"The sequencer of the chat toolkit: stores messages in PostgreSQL,\n"
	"gives each its room seq, answers history and recovery queries.\n"
	"See chat-archive(1).\n"
	"\n"
	"options:\n"
	"  --db CONNINFO           libpq conninfo or URI (default $CHAT_DB_URL,\n"
	"                          else libpq's PG* variables)\n"
	"  --db-file FILE          read the conninfo from FILE\n"
	"  --retry-budget DUR      how long PostgreSQL may be away (60s)\n"
	"  --backoff-max DUR       longest wait between reconnects (5s)\n"
	"  --connect-timeout DUR   one connection attempt (5s)\n"
	"  --max-line SIZE         longest line in or out (1M)\n"
	"  --batch N               most lines in one transaction (500)\n"
	"  --batch-delay DUR       wait for a batch to fill (0ms: none)\n"
	"  --max-pending N         lines held: read, being stored, awaiting\n"
	"                          their confirm (8192)\n"
	"  --max-body SIZE         largest message body (64K)\n"
	"  --recover-limit N       most messages in a recovered answer (1000)\n"
	"  --history-max N         largest limit of a history query (1000)\n"
	"  --room ROOM             history: the room\n"
	"  --since SEQ             history: messages after SEQ, oldest first\n"
	"  --before SEQ            history: the last messages before SEQ\n"
	"  --limit N               history: most messages, 0 all (100)\n"
	"  --top N                 stats: rooms listed (10)\n"
	"  --older-than DUR        prune: delete messages older (like 720h, 30d)\n"
	"  --metrics-file PATH     write Prometheus metrics there\n"
	"  --stats-interval DUR    metrics file and stats log line (10s; 0 off)\n"
	"  -v N                    0 fatal, 1 warn (default), 2 info, 3 debug\n"
	"  --help, --version\n";

void archive_usage(int fd, bool full)
{
	(void)!write(fd, usage_text, sizeof(usage_text) - 1);
	if (full)
		(void)!write(fd, options_text, sizeof(options_text) - 1);
}

enum {
	O_DB = 256, O_DB_FILE, O_RETRY_BUDGET, O_BACKOFF_MAX, O_CONNECT_TIMEOUT,
	O_MAX_LINE, O_BATCH, O_BATCH_DELAY, O_MAX_PENDING, O_MAX_BODY,
	O_RECOVER_LIMIT, O_HISTORY_MAX, O_ROOM, O_SINCE, O_BEFORE, O_LIMIT,
	O_TOP, O_OLDER_THAN, O_METRICS_FILE, O_STATS_INTERVAL, O_HELP,
	O_VERSION,
};

static const struct option longopts[] = {
	{ "db", required_argument, NULL, O_DB },
	{ "db-file", required_argument, NULL, O_DB_FILE },
	{ "retry-budget", required_argument, NULL, O_RETRY_BUDGET },
	{ "backoff-max", required_argument, NULL, O_BACKOFF_MAX },
	{ "connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT },
	{ "max-line", required_argument, NULL, O_MAX_LINE },
	{ "batch", required_argument, NULL, O_BATCH },
	{ "batch-delay", required_argument, NULL, O_BATCH_DELAY },
	{ "max-pending", required_argument, NULL, O_MAX_PENDING },
	{ "max-body", required_argument, NULL, O_MAX_BODY },
	{ "recover-limit", required_argument, NULL, O_RECOVER_LIMIT },
	{ "history-max", required_argument, NULL, O_HISTORY_MAX },
	{ "room", required_argument, NULL, O_ROOM },
	{ "since", required_argument, NULL, O_SINCE },
	{ "before", required_argument, NULL, O_BEFORE },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "top", required_argument, NULL, O_TOP },
	{ "older-than", required_argument, NULL, O_OLDER_THAN },
	{ "metrics-file", required_argument, NULL, O_METRICS_FILE },
	{ "stats-interval", required_argument, NULL, O_STATS_INTERVAL },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

#define C(x) (1u << (x))
#define ALL (C(CMD_INIT) | C(CMD_STORE) | C(CMD_SERVE) | C(CMD_HISTORY) | \
	     C(CMD_STATS) | C(CMD_PRUNE))

/* Which subcommands take an option; options not listed take all. */
static const struct {
	int opt;
	unsigned cmds;
} owners[] = {
	{ O_MAX_LINE, C(CMD_STORE) | C(CMD_SERVE) },
	{ O_BATCH, C(CMD_STORE) },
	{ O_BATCH_DELAY, C(CMD_STORE) },
	{ O_MAX_PENDING, C(CMD_STORE) },
	{ O_MAX_BODY, C(CMD_STORE) },
	{ O_RECOVER_LIMIT, C(CMD_SERVE) },
	{ O_HISTORY_MAX, C(CMD_SERVE) },
	{ O_ROOM, C(CMD_HISTORY) },
	{ O_SINCE, C(CMD_HISTORY) },
	{ O_BEFORE, C(CMD_HISTORY) },
	{ O_LIMIT, C(CMD_HISTORY) },
	{ O_TOP, C(CMD_STATS) },
	{ O_OLDER_THAN, C(CMD_PRUNE) },
	{ O_METRICS_FILE, C(CMD_STORE) | C(CMD_SERVE) },
	{ O_STATS_INTERVAL, C(CMD_STORE) | C(CMD_SERVE) },
};

static const char *const cmd_names[] = {
	[CMD_INIT] = "init", [CMD_STORE] = "store", [CMD_SERVE] = "serve",
	[CMD_HISTORY] = "history", [CMD_STATS] = "stats", [CMD_PRUNE] = "prune",
};

static unsigned args_owner(int opt)
{
	size_t i;

	for (i = 0; i < sizeof(owners) / sizeof(owners[0]); i++)
		if (owners[i].opt == opt)
			return owners[i].cmds;
	return ALL;
}

static const char *args_name(int opt)
{
	const struct option *lo;

	for (lo = longopts; lo->name; lo++)
		if (lo->val == opt)
			return lo->name;
	return "?";
}

static void args_defaults(struct archive_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->retry_budget_ms = 60000;
	o->backoff_max_ms = 5000;
	o->connect_timeout_ms = 5000;
	o->max_line = 1024 * 1024;
	o->batch = 500;
	o->batch_delay_ms = 0;
	o->max_pending = 8192;
	o->max_body = 64 * 1024;
	o->recover_limit = 1000;
	o->history_max = 1000;
	o->since = o->before = -1;
	o->limit = 100;
	o->top = 10;
	o->stats_interval_ms = 10000;
	o->verbosity = 1;
}

/* A duration that may also be days ("30d"), for retention. */
static int args_days(const char *v, uint64_t *out, char *err, size_t errlen)
{
	size_t n = strlen(v);
	char num[32];
	uint64_t d;

	if (n >= 2 && n < sizeof(num) && v[n - 1] == 'd') {
		memcpy(num, v, n - 1);
		num[n - 1] = '\0';
		if (opt_uint(num, 1, 100000, &d, err, errlen) < 0)
			return -1;
		*out = d * 86400000ULL;
		return 0;
	}
	return opt_duration_ms(v, 1, 100000 * 86400000ULL, out, err, errlen);
}

static int args_seq(const char *v, int64_t *out, char *err, size_t errlen)
{
	uint64_t n;

	if (opt_uint(v, 0, INT64_MAX, &n, err, errlen) < 0)
		return -1;
	*out = (int64_t)n;
	return 0;
}

static int args_value(int c, const char *v, struct archive_opts *o, char *err,
		      size_t errlen)
{
	uint64_t n;

	switch (c) {
	case O_DB:
		o->db = v;
		o->db_on_argv = true;
		return 0;
	case O_DB_FILE:
		o->db_file = v;
		return 0;
	case O_RETRY_BUDGET:
		return opt_duration_ms(v, 0, 7 * 86400000ULL,
				       &o->retry_budget_ms, err, errlen);
	case O_BACKOFF_MAX:
		return opt_duration_ms(v, 1, 3600000, &o->backoff_max_ms, err,
				       errlen);
	case O_CONNECT_TIMEOUT:
		return opt_duration_ms(v, 1000, 600000, &o->connect_timeout_ms,
				       err, errlen);
	case O_MAX_LINE:
		if (opt_size(v, 4096, 128 * 1024 * 1024, &n, err, errlen) < 0)
			return -1;
		o->max_line = (size_t)n;
		return 0;
	case O_BATCH:
		if (opt_uint(v, 1, 10000, &n, err, errlen) < 0)
			return -1;
		o->batch = (unsigned)n;
		return 0;
	case O_BATCH_DELAY:
		return opt_duration_ms(v, 0, 1000, &o->batch_delay_ms, err,
				       errlen);
	case O_MAX_PENDING:
		if (opt_uint(v, 1, 1000000, &n, err, errlen) < 0)
			return -1;
		o->max_pending = (unsigned)n;
		return 0;
	case O_MAX_BODY:
		if (opt_size(v, 16, 64 * 1024 * 1024, &n, err, errlen) < 0)
			return -1;
		o->max_body = (size_t)n;
		return 0;
	case O_RECOVER_LIMIT:
		if (opt_uint(v, 1, 1000000, &n, err, errlen) < 0)
			return -1;
		o->recover_limit = (unsigned)n;
		return 0;
	case O_HISTORY_MAX:
		if (opt_uint(v, 1, 1000000, &n, err, errlen) < 0)
			return -1;
		o->history_max = (unsigned)n;
		return 0;
	case O_ROOM:
		if (!name_room_valid(v, strlen(v))) {
			snprintf(err, errlen, "'%s' is not a room name "
				 "(1..128 of A-Z a-z 0-9 _ . : @ / -)", v);
			return -1;
		}
		o->room = v;
		return 0;
	case O_SINCE:
		return args_seq(v, &o->since, err, errlen);
	case O_BEFORE:
		return args_seq(v, &o->before, err, errlen);
	case O_LIMIT:
		return opt_uint(v, 0, 100000000, &o->limit, err, errlen);
	case O_TOP:
		if (opt_uint(v, 0, 100000, &n, err, errlen) < 0)
			return -1;
		o->top = (unsigned)n;
		return 0;
	case O_OLDER_THAN:
		return args_days(v, &o->older_than_ms, err, errlen);
	case O_METRICS_FILE:
		if (!*v) {
			snprintf(err, errlen, "--metrics-file needs a path");
			return -1;
		}
		o->metrics_file = v;
		return 0;
	case O_STATS_INTERVAL:
		return opt_duration_ms(v, 0, 86400000, &o->stats_interval_ms,
				       err, errlen);
	case 'v':
		if (opt_uint(v, 0, 3, &n, err, errlen) < 0)
			return -1;
		o->verbosity = (int)n;
		return 0;
	}
	snprintf(err, errlen, "unknown option");
	return -1;
}

/* The conninfo: --db, --db-file, $CHAT_DB_URL, else "" (libpq's PG*). */
static int args_db(struct archive_opts *o, char *err, size_t errlen)
{
	const char *env = getenv("CHAT_DB_URL");
	size_t len;

	if (o->db && o->db_file) {
		snprintf(err, errlen, "--db and --db-file do not go together");
		return ARGS_USAGE;
	}
	if (o->db_file) {
		o->db_owned = file_read_small(o->db_file, 65536, &len);
		if (!o->db_owned) {
			snprintf(err, errlen, "unable to read '%s': %s",
				 o->db_file, errno == ENOBUFS ?
				 "longer than 64K" : strerror(errno));
			return ARGS_CONFIG;
		}
		o->db = o->db_owned;
	} else if (!o->db) {
		o->db = env ? env : "";
	}
	return ARGS_RUN;
}

int archive_args(int argc, char **argv, struct archive_opts *o, char *err,
		 size_t errlen)
{
	int c, i, given[O_VERSION + 1] = { 0 };
	const char *mode = NULL;
	size_t k;

	args_defaults(o);
	err[0] = '\0';
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hv:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case O_HELP:
			return ARGS_HELP;
		case O_VERSION:
			return ARGS_VERSION;
		case '?':
			if (optopt)
				snprintf(err, errlen, "unknown option '-%c'",
					 optopt);
			else
				snprintf(err, errlen, "unknown option '%s'",
					 argv[optind - 1]);
			return ARGS_USAGE;
		case ':':
			snprintf(err, errlen, "option '%s' needs a value",
				 argv[optind - 1]);
			return ARGS_USAGE;
		default:
			if (args_value(c, optarg, o, err, errlen) < 0)
				return ARGS_USAGE;
			if (c >= O_DB && c <= O_VERSION)
				given[c] = 1;
		}
	}
	for (i = optind; i < argc; i++) {
		if (mode) {
			snprintf(err, errlen, "unexpected argument '%s'",
				 argv[i]);
			return ARGS_USAGE;
		}
		mode = argv[i];
	}
	if (!mode) {
		snprintf(err, errlen, "no subcommand given");
		return ARGS_USAGE;
	}
	for (k = 0; k < sizeof(cmd_names) / sizeof(cmd_names[0]); k++)
		if (!strcmp(mode, cmd_names[k]))
			break;
	if (k == sizeof(cmd_names) / sizeof(cmd_names[0])) {
		snprintf(err, errlen, "unknown subcommand '%s'", mode);
		return ARGS_USAGE;
	}
	o->cmd = (enum archive_cmd)k;
	for (c = O_DB; c <= O_VERSION; c++)
		if (given[c] && !(args_owner(c) & C(o->cmd))) {
			snprintf(err, errlen, "%s takes no --%s", mode,
				 args_name(c));
			return ARGS_USAGE;
		}

	switch (o->cmd) {
	case CMD_HISTORY:
		if (!o->room) {
			snprintf(err, errlen, "history needs --room");
			return ARGS_USAGE;
		}
		if (o->since >= 0 && o->before >= 0) {
			snprintf(err, errlen, "--since and --before do not go "
				 "together");
			return ARGS_USAGE;
		}
		break;
	case CMD_PRUNE:
		if (!o->older_than_ms) {
			snprintf(err, errlen, "prune needs --older-than");
			return ARGS_USAGE;
		}
		break;
	case CMD_STORE:
		if (o->max_body + 1024 > o->max_line) {
			snprintf(err, errlen, "--max-body must be at least 1K "
				 "below --max-line");
			return ARGS_USAGE;
		}
		break;
	default:
		break;
	}
	return args_db(o, err, errlen);
}

void archive_args_free(struct archive_opts *o)
{
	if (o->db_owned) {
		/* A password may be in it: do not leave it in freed memory. */
		explicit_bzero(o->db_owned, strlen(o->db_owned));
		free(o->db_owned);
	}
	o->db_owned = NULL;
}
