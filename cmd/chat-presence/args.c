/*
 * args: chat-presence's command line (see man/chat-presence.1). Options may
 * come before or after the subcommand word. Nothing here prints, exits or
 * reads a file: main() reports a usage error and exits 64, and reads
 * --redis-file itself.
 */
#include "presence.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "name.h"
#include "opt.h"

/* clang-format off */
static const char usage_text[] =
	"usage: chat-presence [options] track\n"
	"       chat-presence [options] online [--room ROOM] [--limit N]\n"
	"       chat-presence [options] watch [--room ROOM]\n";
/* clang-format on */

/* clang-format off */
static const char options_text[] =
	"\n"
	"Keeps who is in which room across every gateway in Redis: track\n"
	"applies the gateways' presence lines (stdin) and writes presence\n"
	"changes and query answers (stdout), normally as the child of a\n"
	"chat-relay on the queue chat.presence (see chat-presence(1)).\n"
	"\n"
	"options:\n"
	"  --redis URL               redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]\n"
	"                            (default $CHAT_REDIS_URL, else\n"
	"                            " PRES_DEFAULT_URL ")\n"
	"  --redis-file FILE         read the URL from FILE (keeps a password\n"
	"                            out of ps)\n"
	"  --prefix NAME             prefix of every key (default chat)\n"
	"  --connect-timeout DURATION  connect and handshake (default 5s)\n"
	"  --timeout DURATION        longest wait for a reply (default 10s)\n"
	"  --retry-budget DURATION   how long Redis may be away (default 60s)\n"
	"  --backoff-max DURATION    longest wait between reconnects (default 5s)\n"
	"  -v N                      0 fatal, 1 warn (default), 2 info, 3 debug\n"
	"  --help, --version\n"
	"track:\n"
	"  --ttl DURATION            life of an entry without a heartbeat; caps\n"
	"                            the heartbeat's \"ttl\" (default 60s)\n"
	"  --sweep DURATION          expiry sweep interval (default 5s)\n"
	"  --coalesce DURATION       changes of a room wait this long to go out\n"
	"                            in one line (default 50ms)\n"
	"  --max-line BYTES          longest line in or out (default 1M)\n"
	"  --backlog BYTES           lines held while Redis is away (default 16M)\n"
	"  --max-pending N           commands in flight to Redis (default 1024)\n"
	"  --metrics-file PATH       write metrics there (Prometheus text)\n"
	"  --stats-interval DURATION  stats log line and metrics file (default 10s)\n"
	"  --ready-fd N              write a newline to fd N once ready\n"
	"online:\n"
	"  --room ROOM               only this room (default every room)\n"
	"  --limit N                 users listed per room (default 100)\n"
	"watch:\n"
	"  --room ROOM               only this room's changes\n";
/* clang-format on */

void pres_usage(int fd, bool full)
{
	(void)!write(fd, usage_text, sizeof(usage_text) - 1);
	if (full)
		(void)!write(fd, options_text, sizeof(options_text) - 1);
}

enum {
	O_REDIS = 256,
	O_REDIS_FILE,
	O_PREFIX,
	O_CONNECT_TIMEOUT,
	O_TIMEOUT,
	O_RETRY_BUDGET,
	O_BACKOFF_MAX,
	O_TTL,
	O_SWEEP,
	O_COALESCE,
	O_MAX_LINE,
	O_BACKLOG,
	O_MAX_PENDING,
	O_METRICS_FILE,
	O_STATS_INTERVAL,
	O_READY_FD,
	O_ROOM,
	O_LIMIT,
	O_HELP,
	O_VERSION,
};

/* clang-format off */
static const struct option longopts[] = {
	{ "redis", required_argument, NULL, O_REDIS },
	{ "redis-file", required_argument, NULL, O_REDIS_FILE },
	{ "prefix", required_argument, NULL, O_PREFIX },
	{ "connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "retry-budget", required_argument, NULL, O_RETRY_BUDGET },
	{ "backoff-max", required_argument, NULL, O_BACKOFF_MAX },
	{ "ttl", required_argument, NULL, O_TTL },
	{ "sweep", required_argument, NULL, O_SWEEP },
	{ "coalesce", required_argument, NULL, O_COALESCE },
	{ "max-line", required_argument, NULL, O_MAX_LINE },
	{ "backlog", required_argument, NULL, O_BACKLOG },
	{ "max-pending", required_argument, NULL, O_MAX_PENDING },
	{ "metrics-file", required_argument, NULL, O_METRICS_FILE },
	{ "stats-interval", required_argument, NULL, O_STATS_INTERVAL },
	{ "ready-fd", required_argument, NULL, O_READY_FD },
	{ "room", required_argument, NULL, O_ROOM },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};
/* clang-format on */

static void args_defaults(struct pres_opts *o)
{
	const char *env = getenv("CHAT_REDIS_URL");

	memset(o, 0, sizeof(*o));
	o->url = env && *env ? env : PRES_DEFAULT_URL;
	o->prefix = "chat";
	o->ttl_ms = 60000;
	o->sweep_ms = 5000;
	o->coalesce_ms = 50;
	o->max_line = 1024 * 1024;
	o->backlog = 16 * 1024 * 1024;
	o->max_pending = 1024;
	o->retry_budget_ms = 60000;
	o->backoff_max_ms = 5000;
	o->connect_timeout_ms = 5000;
	o->timeout_ms = 10000;
	o->stats_interval_ms = 10000;
	o->ready_fd = -1;
	o->limit = PRES_LIMIT_DEFAULT;
	o->verbosity = 1;
}

/* The prefix becomes the start of every key and a SCAN pattern: the node
 * name alphabet keeps it free of glob characters and hash-tag braces. */
static bool args_prefix_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PRES_PREFIX_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		      *s == ':' || *s == '-'))
			return false;
	return true;
}

/* Which subcommand an option belongs to (-1: every one). */
static int args_owner(int c)
{
	switch (c) {
	case O_TTL:
	case O_SWEEP:
	case O_COALESCE:
	case O_MAX_LINE:
	case O_BACKLOG:
	case O_MAX_PENDING:
	case O_METRICS_FILE:
	case O_STATS_INTERVAL:
	case O_READY_FD: return PRES_TRACK;
	case O_LIMIT: return PRES_ONLINE;
	}
	return -1;
}

static int args_value(int c, const char *v, struct pres_opts *o, char *err,
		      size_t errlen)
{
	uint64_t n;

	switch (c) {
	case O_REDIS:
		o->url = v;
		o->url_on_argv = true;
		o->url_file = NULL;
		return 0;
	case O_REDIS_FILE:
		o->url_file = v;
		o->url_on_argv = false;
		return 0;
	case O_PREFIX:
		if (!args_prefix_valid(v)) {
			snprintf(err, errlen,
				 "--prefix '%s': 1..%d of "
				 "[A-Za-z0-9_.:-]",
				 v, PRES_PREFIX_MAX);
			return -1;
		}
		o->prefix = v;
		return 0;
	case O_CONNECT_TIMEOUT:
		return opt_duration_ms(v, 1, 600000, &o->connect_timeout_ms, err,
				       errlen);
	case O_TIMEOUT:
		return opt_duration_ms(v, 1, 3600000, &o->timeout_ms, err, errlen);
	case O_RETRY_BUDGET:
		return opt_duration_ms(v, 0, 7 * 86400000ULL, &o->retry_budget_ms,
				       err, errlen);
	case O_BACKOFF_MAX:
		return opt_duration_ms(v, 1, 3600000, &o->backoff_max_ms, err, errlen);
	case O_TTL:
		return opt_duration_ms(v, 100, 7 * 86400000ULL, &o->ttl_ms, err,
				       errlen);
	case O_SWEEP:
		return opt_duration_ms(v, 10, 3600000, &o->sweep_ms, err, errlen);
	case O_COALESCE:
		return opt_duration_ms(v, 0, 60000, &o->coalesce_ms, err, errlen);
	case O_MAX_LINE:
		if (opt_size(v, 1024, 128 * 1024 * 1024, &n, err, errlen) < 0)
			return -1;
		o->max_line = (size_t)n;
		return 0;
	case O_BACKLOG:
		if (opt_size(v, 0, 16ULL * 1024 * 1024 * 1024, &n, err, errlen) < 0)
			return -1;
		o->backlog = (size_t)n;
		return 0;
	case O_MAX_PENDING:
		if (opt_uint(v, 16, 1000000, &n, err, errlen) < 0)
			return -1;
		o->max_pending = (unsigned)n;
		return 0;
	case O_METRICS_FILE:
		if (!*v)
			break;
		o->metrics_file = v;
		return 0;
	case O_STATS_INTERVAL:
		return opt_duration_ms(v, 0, 86400000, &o->stats_interval_ms, err,
				       errlen);
	case O_READY_FD:
		if (opt_uint(v, 0, 65535, &n, err, errlen) < 0)
			return -1;
		if (fcntl((int)n, F_GETFD) < 0) {
			snprintf(err, errlen,
				 "--ready-fd %s: not an open file "
				 "descriptor",
				 v);
			return -1;
		}
		o->ready_fd = (int)n;
		return 0;
	case O_ROOM:
		if (!name_room_valid(v, strlen(v))) {
			snprintf(err, errlen,
				 "--room '%s': 1..%d of "
				 "[A-Za-z0-9_.:@/-]",
				 v, NAME_MAX_LEN);
			return -1;
		}
		o->room = v;
		return 0;
	case O_LIMIT:
		if (opt_uint(v, 0, 1000000, &n, err, errlen) < 0)
			return -1;
		o->limit = (unsigned)n;
		return 0;
	case 'v':
		if (opt_uint(v, 0, 3, &n, err, errlen) < 0)
			return -1;
		o->verbosity = (int)n;
		return 0;
	}
	snprintf(err, errlen, "'%s' is empty", v);
	return -1;
}

static const char *const cmd_names[] = { "track", "online", "watch" };

int pres_args(int argc, char **argv, struct pres_opts *o, char *err, size_t errlen)
{
	int c, i, seen[O_VERSION + 1] = { 0 };
	const char *mode = NULL;
	bool found = false;

	args_defaults(o);
	err[0] = '\0';
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hv:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case O_HELP: return ARGS_HELP;
		case O_VERSION: return ARGS_VERSION;
		case '?':
			if (optopt)
				snprintf(err, errlen, "unknown option '-%c'", optopt);
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
			if (c >= O_REDIS && c <= O_VERSION)
				seen[c] = 1;
		}
	}
	for (i = optind; i < argc; i++) {
		if (mode) {
			snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
			return ARGS_USAGE;
		}
		mode = argv[i];
	}
	if (!mode) {
		snprintf(err, errlen,
			 "no subcommand given (track, online or "
			 "watch)");
		return ARGS_USAGE;
	}
	for (i = 0; i < 3; i++)
		if (!strcmp(mode, cmd_names[i])) {
			o->cmd = (enum pres_cmd)i;
			found = true;
		}
	if (!found) {
		snprintf(err, errlen,
			 "unknown subcommand '%s' (track, online "
			 "or watch)",
			 mode);
		return ARGS_USAGE;
	}
	for (c = O_REDIS; c <= O_VERSION; c++) {
		int owner = args_owner(c);

		if (!seen[c] || owner < 0 || owner == (int)o->cmd)
			continue;
		for (i = 0; longopts[i].name; i++)
			if (longopts[i].val == c)
				break;
		snprintf(err, errlen, "--%s is an option of %s, not of %s",
			 longopts[i].name, cmd_names[owner], mode);
		return ARGS_USAGE;
	}
	if (seen[O_ROOM] && o->cmd == PRES_TRACK) {
		snprintf(err, errlen, "--room is an option of online and watch");
		return ARGS_USAGE;
	}
	if (o->cmd == PRES_TRACK && o->coalesce_ms >= o->ttl_ms) {
		snprintf(err, errlen, "--coalesce must be shorter than --ttl");
		return ARGS_USAGE;
	}
	return ARGS_RUN;
}
