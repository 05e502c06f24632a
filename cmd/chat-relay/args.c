/*
 * args: chat-relay's command line (see man/chat-relay.1). Options may come
 * before or after the mode word; in child mode everything after "--" is the
 * command and is never parsed. Nothing here prints or exits: main() reports
 * a usage error and exits 64.
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "id.h"
#include "opt.h"
#include "shard.h"

static const char usage_text[] =
	"usage: chat-relay [options] pub [--exchange NAME] [--route KEY]\n"
	"       chat-relay [options] sub [--queue NAME] [--bind EXCHANGE:KEY]... "
	"[--exclusive] [--manual-ack]\n"
	"       chat-relay [options] [--manual-ack] [--queue NAME] "
	"[--bind EXCHANGE:KEY]... [--exclusive] -- CMD [ARGS...]\n";

static const char options_text[] =
	"\n"
	"Moves JSON lines between stdin/stdout (or a child's stdout/stdin) and\n"
	"RabbitMQ: persistent publishes with publisher confirms, deliveries as\n"
	"lines, reconnects with capped jittered backoff. A line's \"route\",\n"
	"\"confirm\" and \"expire\" members are instructions, cut out of what is\n"
	"published. See chat-relay(1).\n"
	"\n"
	"options:\n"
	"  --url URL[,URL...]        brokers, tried in turn; repeatable (default\n"
	"                            $CHAT_AMQP_URL, else\n"
	"                            " RELAY_DEFAULT_URL ")\n"
	"  --url-file FILE           brokers from FILE, one per line or comma-\n"
	"                            separated: keeps the password out of ps\n"
	"                            (default none)\n"
	"  --ca FILE                 CA certificates to verify amqps brokers\n"
	"                            (default the system's)\n"
	"  --insecure                amqps without verifying the broker (tests\n"
	"                            only; default off)\n"
	"  --exchange NAME           exchange to publish to (default chat)\n"
	"  --route KEY               routing key of lines without \"route\"\n"
	"                            (default none)\n"
	"  --queue NAME              queue to declare and consume, durable\n"
	"                            (default none)\n"
	"  --bind EXCHANGE:KEY       bind the queue (repeatable, at most 32;\n"
	"                            default none)\n"
	"  --exclusive               exclusive auto-delete queue (server-named\n"
	"                            without --queue; default off)\n"
	"  --manual-ack              deliveries carry \"tag\" and are acked by\n"
	"                            {\"type\":\"ack\",\"tag\":N} lines (default off)\n"
	"  --quorum                  durable queues are quorum queues (default off)\n"
	"  --single-active           --queue is declared with a single active\n"
	"                            consumer: other relays on it are standbys\n"
	"                            (default off; always on for chat.ingest.K)\n"
	"  --ingest-shards N         ingest queues chat.ingest.0 .. N-1 (default\n"
	"                            $CHAT_INGEST_SHARDS, else 1)\n"
	"  --node ID                 this relay's node: CHAT_NODE of the child,\n"
	"                            node.ID bound with --exclusive (default the\n"
	"                            short host name and the relay's pid,\n"
	"                            HOST-PID)\n"
	"  --prefetch N              unacked deliveries (default 256)\n"
	"  --max-inflight N          unconfirmed publishes (default 1024)\n"
	"  --max-line BYTES          longest line and body (default 1M)\n"
	"  --retry-budget DURATION   how long the broker may be away (default 60s)\n"
	"  --backoff-max DURATION    longest wait between reconnects (default 5s)\n"
	"  --connect-timeout DURATION  connect, login, each declare (default 5s)\n"
	"  --heartbeat SECONDS       AMQP heartbeat, 0 off (default 30)\n"
	"  --metrics-file PATH       write the counters there, Prometheus text\n"
	"                            format (default none)\n"
	"  --stats-interval DURATION  write --metrics-file and log the counters\n"
	"                            at info level every DURATION, 0 off\n"
	"                            (default 10s)\n"
	"  --ready-fd N              write a newline to fd N once connected\n"
	"                            (default none)\n"
	"  -v N                      0 fatal, 1 warn, 2 info, 3 debug (default 1)\n"
	"  --help, --version\n";

void relay_usage(int fd, bool full)
{
	(void)!write(fd, usage_text, sizeof(usage_text) - 1);
	if (full)
		(void)!write(fd, options_text, sizeof(options_text) - 1);
}

enum {
	O_URL = 256, O_EXCHANGE, O_ROUTE, O_QUEUE, O_BIND, O_EXCLUSIVE,
	O_MANUAL_ACK, O_QUORUM, O_SINGLE, O_PREFETCH, O_MAX_INFLIGHT, O_MAX_LINE,
	O_RETRY_BUDGET, O_BACKOFF_MAX, O_CONNECT_TIMEOUT, O_HEARTBEAT,
	O_READY_FD, O_HELP, O_VERSION, O_URL_FILE, O_CA, O_INSECURE,
	O_INGEST_SHARDS, O_NODE, O_METRICS_FILE, O_STATS_INTERVAL,
};

static const struct option longopts[] = {
	{ "url", required_argument, NULL, O_URL },
	{ "url-file", required_argument, NULL, O_URL_FILE },
	{ "ca", required_argument, NULL, O_CA },
	{ "insecure", no_argument, NULL, O_INSECURE },
	{ "ingest-shards", required_argument, NULL, O_INGEST_SHARDS },
	{ "node", required_argument, NULL, O_NODE },
	{ "metrics-file", required_argument, NULL, O_METRICS_FILE },
	{ "stats-interval", required_argument, NULL, O_STATS_INTERVAL },
	{ "exchange", required_argument, NULL, O_EXCHANGE },
	{ "route", required_argument, NULL, O_ROUTE },
	{ "queue", required_argument, NULL, O_QUEUE },
	{ "bind", required_argument, NULL, O_BIND },
	{ "exclusive", no_argument, NULL, O_EXCLUSIVE },
	{ "manual-ack", no_argument, NULL, O_MANUAL_ACK },
	{ "quorum", no_argument, NULL, O_QUORUM },
	{ "single-active", no_argument, NULL, O_SINGLE },
	{ "prefetch", required_argument, NULL, O_PREFETCH },
	{ "max-inflight", required_argument, NULL, O_MAX_INFLIGHT },
	{ "max-line", required_argument, NULL, O_MAX_LINE },
	{ "retry-budget", required_argument, NULL, O_RETRY_BUDGET },
	{ "backoff-max", required_argument, NULL, O_BACKOFF_MAX },
	{ "connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT },
	{ "heartbeat", required_argument, NULL, O_HEARTBEAT },
	{ "ready-fd", required_argument, NULL, O_READY_FD },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

bool relay_url_password(const char *url, size_t *off, size_t *len)
{
	const char *auth = strstr(url, "://"), *end, *at = NULL, *colon;

	if (!auth)
		return false;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!colon)
		return false;
	*off = (size_t)(colon + 1 - url);
	*len = (size_t)(at - colon - 1);
	return true;
}

void relay_opts_free(struct relay_opts *o)
{
	int i;

	for (i = 0; i < o->nurls; i++) {
		free(o->urls[i]);
		o->urls[i] = NULL;
	}
	o->nurls = 0;
}

/* Add the URLs of text (separated by commas, newlines or blanks; a line
 * starting with '#' is a comment) to o. from_argv: text is an argument,
 * whose passwords are overwritten once copied. */
static int args_urls(struct relay_opts *o, char *text, bool from_argv,
		     const char *what, char *err, size_t errlen)
{
	char *p = text, *tok;
	size_t n, off, plen;

	for (;;) {
		p += strspn(p, ", \t\r\n");
		if (!*p)
			return 0;
		if (*p == '#') {
			p += strcspn(p, "\n");
			continue;
		}
		n = strcspn(p, ", \t\r\n");
		if (o->nurls >= RELAY_URLS_MAX) {
			snprintf(err, errlen, "more than %d broker URLs",
				 RELAY_URLS_MAX);
			return -1;
		}
		tok = strndup(p, n);
		if (!tok) {
			snprintf(err, errlen, "%s: out of memory", what);
			return -1;
		}
		o->urls[o->nurls++] = tok;
		if (from_argv && relay_url_password(tok, &off, &plen) && plen) {
			/* ps shows argv to every user: blank it now, and
			 * relay_run() says why it was a bad place. */
			o->url_password_argv = true;
			memset(p + off, 'x', plen);
		}
		p += n;
	}
}

static int args_url_file(struct relay_opts *o, const char *path, char *err,
			 size_t errlen)
{
	size_t len;
	char *text = file_read_small(path, RELAY_URL_FILE_MAX, &len);
	int nurls = o->nurls, r;

	if (!text) {
		snprintf(err, errlen, "unable to read --url-file '%s': %s", path,
			 errno == ENOBUFS ? "longer than 64K" : strerror(errno));
		return -1;
	}
	r = args_urls(o, text, false, path, err, errlen);
	free(text);
	if (r == 0 && o->nurls == nurls) {
		snprintf(err, errlen, "--url-file '%s' holds no URL", path);
		return -1;
	}
	return r;
}

/* The default node: the short host name (what id_node_valid() refuses
 * turned into '-') and the pid, "vm-4242". */
static void args_default_node(struct relay_opts *o)
{
	char host[256] = "";
	char pid[24];
	size_t n, room;

	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		strcpy(host, "relay");
	host[strcspn(host, ".")] = '\0';
	snprintf(pid, sizeof(pid), "-%d", (int)getpid());
	room = sizeof(o->node) - 1 - strlen(pid);
	n = strlen(host);
	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++) {
		char c = host[i];
		char one[2] = { c, '\0' };

		o->node[i] = id_node_valid(one) ? c : '-';
	}
	o->node[n] = '\0';
	strcat(o->node, pid);
}

static void args_defaults(struct relay_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->exchange = RELAY_FANOUT_EXCHANGE;
	o->prefetch = 256;
	o->max_inflight = 1024;
	o->max_line = 1024 * 1024;
	o->retry_budget_ms = 60000;
	o->backoff_max_ms = 5000;
	o->connect_timeout_ms = 5000;
	o->heartbeat_s = 30;
	o->ready_fd = -1;
	o->verbosity = 1;
	o->ingest_shards = 0; /* 0: not given, see relay_args() */
	o->stats_interval_ms = 10000;
	args_default_node(o);
}

static int args_bind(struct relay_opts *o, const char *s, char *err,
		     size_t errlen)
{
	const char *colon = strchr(s, ':');
	struct relay_bind *b;

	if (!colon || colon == s) {
		snprintf(err, errlen, "'%s' is not EXCHANGE:KEY", s);
		return -1;
	}
	if (strlen(colon + 1) > RELAY_ROUTE_MAX ||
	    (size_t)(colon - s) > RELAY_ROUTE_MAX) {
		snprintf(err, errlen, "'%s': names are at most 255 bytes", s);
		return -1;
	}
	if (o->nbinds >= RELAY_BINDS_MAX) {
		snprintf(err, errlen, "more than %d --bind options",
			 RELAY_BINDS_MAX);
		return -1;
	}
	b = &o->binds[o->nbinds++];
	/* The exchange name is cut out of argv in place: argv is ours. */
	b->exchange = s;
	snprintf(b->key, sizeof(b->key), "%s", colon + 1);
	*(char *)colon = '\0';
	return 0;
}

/* Option values are checked with lib/opt; a failure leaves err set. */
static int args_value(int c, const char *v, struct relay_opts *o, char *err,
		      size_t errlen)
{
	uint64_t n;

	switch (c) {
	case O_URL: {
		int before = o->nurls;

		if (args_urls(o, (char *)v, true, "--url", err, errlen) < 0)
			return -1;
		if (o->nurls == before) {
			snprintf(err, errlen, "--url '%s' holds no URL", v);
			return -1;
		}
		return 0;
	}
	case O_URL_FILE:
		return args_url_file(o, v, err, errlen) < 0 ? ARGS_CONFIG : 0;
	case O_CA:
		if (access(v, R_OK) < 0) {
			snprintf(err, errlen, "unable to read --ca '%s': %s", v,
				 strerror(errno));
			return ARGS_CONFIG;
		}
		o->ca_file = v;
		return 0;
	case O_INSECURE: o->insecure = true; return 0;
	case O_INGEST_SHARDS:
		if (opt_uint(v, 1, SHARD_MAX, &n, err, errlen) < 0)
			return -1;
		o->ingest_shards = (unsigned)n;
		return 0;
	case O_NODE:
		if (!id_node_valid(v)) {
			snprintf(err, errlen, "--node '%s': 1 to 64 of "
				 "A-Z a-z 0-9 _ . : -", v);
			return -1;
		}
		snprintf(o->node, sizeof(o->node), "%s", v);
		return 0;
	case O_METRICS_FILE:
		if (!*v)
			break;
		o->metrics_file = v;
		return 0;
	case O_STATS_INTERVAL:
		return opt_duration_ms(v, 0, 86400000, &o->stats_interval_ms,
				       err, errlen);
	case O_EXCHANGE:
		if (strlen(v) > RELAY_ROUTE_MAX)
			break;
		o->exchange = v;
		return 0;
	case O_ROUTE:
		if (strlen(v) > RELAY_ROUTE_MAX)
			break;
		o->route = v;
		return 0;
	case O_QUEUE:
		if (!*v || strlen(v) > RELAY_ROUTE_MAX)
			break;
		o->queue = v;
		return 0;
	case O_BIND: return args_bind(o, v, err, errlen);
	case O_EXCLUSIVE: o->exclusive = true; return 0;
	case O_MANUAL_ACK: o->manual_ack = true; return 0;
	case O_QUORUM: o->quorum = true; return 0;
	case O_SINGLE: o->single_active = true; return 0;
	case O_PREFETCH:
		if (opt_uint(v, 1, 65535, &n, err, errlen) < 0)
			return -1;
		o->prefetch = (unsigned)n;
		return 0;
	case O_MAX_INFLIGHT:
		if (opt_uint(v, 1, 65535, &n, err, errlen) < 0)
			return -1;
		o->max_inflight = (unsigned)n;
		return 0;
	case O_MAX_LINE:
		if (opt_size(v, 64, 128 * 1024 * 1024, &n, err, errlen) < 0)
			return -1;
		o->max_line = (size_t)n;
		return 0;
	case O_RETRY_BUDGET:
		return opt_duration_ms(v, 0, 7 * 86400000ULL,
				       &o->retry_budget_ms, err, errlen);
	case O_BACKOFF_MAX:
		return opt_duration_ms(v, 1, 3600000, &o->backoff_max_ms, err,
				       errlen);
	case O_CONNECT_TIMEOUT:
		return opt_duration_ms(v, 1, 600000, &o->connect_timeout_ms,
				       err, errlen);
	case O_HEARTBEAT:
		if (opt_uint(v, 0, 3600, &n, err, errlen) < 0)
			return -1;
		o->heartbeat_s = (unsigned)n;
		return 0;
	case O_READY_FD:
		if (opt_uint(v, 0, 65535, &n, err, errlen) < 0)
			return -1;
		if (fcntl((int)n, F_GETFD) < 0) {
			snprintf(err, errlen, "--ready-fd %s: not an open file "
				 "descriptor", v);
			return -1;
		}
		o->ready_fd = (int)n;
		return 0;
	case 'v':
		if (opt_uint(v, 0, 3, &n, err, errlen) < 0)
			return -1;
		o->verbosity = (int)n;
		return 0;
	}
	snprintf(err, errlen, "'%s' is empty or longer than 255 bytes", v);
	return -1;
}

int relay_args(int argc, char **argv, struct relay_opts *o, char *err,
	       size_t errlen)
{
	int dashdash = -1, optc, c, i, r;
	const char *mode = NULL, *env;
	uint64_t n;

	args_defaults(o);
	err[0] = '\0';
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashdash = i;
			break;
		}
	optc = dashdash < 0 ? argc : dashdash;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(optc, argv, ":hv:", longopts, NULL)) != -1) {
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
			r = args_value(c, optarg, o, err, errlen);
			if (r < 0)
				return r == ARGS_CONFIG ? ARGS_CONFIG : ARGS_USAGE;
		}
	}
	for (i = optind; i < optc; i++) {
		if (mode) {
			snprintf(err, errlen, "unexpected argument '%s'",
				 argv[i]);
			return ARGS_USAGE;
		}
		mode = argv[i];
	}

	if (dashdash >= 0) {
		if (mode) {
			snprintf(err, errlen, "'%s' and '-- CMD' do not go "
				 "together", mode);
			return ARGS_USAGE;
		}
		if (dashdash + 1 >= argc) {
			snprintf(err, errlen, "no command after '--'");
			return ARGS_USAGE;
		}
		o->mode = RELAY_CHILD;
		o->child_argv = argv + dashdash + 1;
	} else if (mode && !strcmp(mode, "pub")) {
		o->mode = RELAY_PUB;
	} else if (mode && !strcmp(mode, "sub")) {
		o->mode = RELAY_SUB;
	} else if (mode) {
		snprintf(err, errlen, "unknown mode '%s' (pub, sub or -- CMD)",
			 mode);
		return ARGS_USAGE;
	} else {
		snprintf(err, errlen, "no mode given (pub, sub or -- CMD)");
		return ARGS_USAGE;
	}

	if (o->nurls == 0) {
		env = getenv("CHAT_AMQP_URL");
		if (env && *env) {
			char *copy = strdup(env);

			if (!copy) {
				snprintf(err, errlen, "out of memory");
				return ARGS_CONFIG;
			}
			r = args_urls(o, copy, false, "CHAT_AMQP_URL", err, errlen);
			free(copy);
			if (r < 0)
				return ARGS_CONFIG;
		}
		if (o->nurls == 0 &&
		    args_urls(o, (char[]){ RELAY_DEFAULT_URL }, false, "default",
			      err, errlen) < 0)
			return ARGS_CONFIG;
	}
	if (o->ingest_shards == 0) {
		env = getenv("CHAT_INGEST_SHARDS");
		o->ingest_shards = 1;
		if (env && *env) {
			char why[128];

			if (opt_uint(env, 1, SHARD_MAX, &n, why, sizeof(why)) < 0) {
				snprintf(err, errlen, "CHAT_INGEST_SHARDS: %s", why);
				return ARGS_CONFIG;
			}
			o->ingest_shards = (unsigned)n;
		}
	}

	switch (o->mode) {
	case RELAY_PUB:
		o->publish = true;
		if (o->manual_ack || o->exclusive) {
			snprintf(err, errlen, "pub takes no --manual-ack or "
				 "--exclusive (it consumes nothing)");
			return ARGS_USAGE;
		}
		break;
	case RELAY_SUB:
		o->consume = true;
		if (o->route) {
			snprintf(err, errlen, "sub publishes nothing: no --route");
			return ARGS_USAGE;
		}
		if (!o->queue && !o->nbinds && !o->exclusive) {
			snprintf(err, errlen, "sub needs --queue, --bind or "
				 "--exclusive");
			return ARGS_USAGE;
		}
		break;
	case RELAY_CHILD:
		o->publish = true;
		o->consume = o->queue || o->nbinds || o->exclusive;
		if (o->manual_ack && !o->consume) {
			snprintf(err, errlen, "--manual-ack needs a queue "
				 "(--queue, --bind or --exclusive)");
			return ARGS_USAGE;
		}
		break;
	}
	return ARGS_RUN;
}
