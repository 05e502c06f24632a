/*
 * bench_args: the command line of `chat-cli bench` into struct bench's
 * options (the defaults are set here), checked as a whole. A bad option is
 * a usage error (cli_usage_error: the message and the usage on stderr,
 * EX_USAGE); --help prints the help on stdout. Nothing is opened or
 * allocated but the copy of the URL list, freed before it returns.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "bench.h"
#include "cli.h"
#include "log.h"
#include "opt.h"

static const char bench_help[] =
	"Open N connections over the URLs (round-robin) and K rooms, join,\n"
	"publish from P of them at a fixed total rate, check every delivery\n"
	"(latency, seq gaps, duplicates) and report, as text or one JSON object.\n"
	"\n"
	"  --conns N           connections (default 100); users bench-0 ...\n"
	"  --rooms K           rooms PREFIX0 ... PREFIXK-1 (default 1)\n"
	"  --room-prefix P     room names start with P (default bench-)\n"
	"  --publishers P      connections that publish, the first P (default 1)\n"
	"  --rate R            messages per second, all publishers (default 100)\n"
	"  --duration D        measured publishing time (default 10s)\n"
	"  --warmup D          publishing before measuring starts (default 1s)\n"
	"  --size BYTES        body size of each message (default 64)\n"
	"  --window N          refs in flight per publisher (default 1000)\n"
	"  --handshakes N      handshakes in flight at most (default 200)\n"
	"  --timeout D         handshake timeout, setup stall, drain limit and,\n"
	"                      with --reconnect, the wait for an ack (default 10s)\n"
	"  --reconnect         a dropped connection reconnects (next URL first),\n"
	"                      rejoins with since and resends unacked publishes\n"
	"                      with the same ref (default off)\n"
	"  --churn PER_S       close and reopen that many subscribers per second\n"
	"                      on purpose; implies --reconnect (default 0)\n"
	"  --backoff-max D     longest wait between reconnects (default 2s)\n"
	"  --secret-file F     connect with tokens signed with F (--auth jwt)\n"
	"                      instead of ?user=\n"
	"  --json              report as one JSON object\n"
	"  --hold              open and join only, print \"ready N\", hold until\n"
	"                      SIGINT/SIGTERM (or --duration if given)\n"
	"  -v N                log level 0..3 on stderr (default 1)\n";

/* A rate given on the command line: 0..1e7. */
static int bench_args_rate(const char *opt, const char *arg, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || !(*out >= 0) || *out > 1e7)
		return cli_usage_error("bench", "%s: '%s' is not a rate in"
				       " 0..10000000", opt, arg);
	return 0;
}

/* -1 when the run is to go on, else the exit status (0 after --help). */
int bench_args_parse(struct bench *b, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conns", required_argument, NULL, 'c' },
		{ "rooms", required_argument, NULL, 'k' },
		{ "room-prefix", required_argument, NULL, 'P' },
		{ "publishers", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "size", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' },
		{ "handshakes", required_argument, NULL, 'H' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "reconnect", no_argument, NULL, 'R' },
		{ "churn", required_argument, NULL, 'C' },
		{ "backoff-max", required_argument, NULL, 'B' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "hold", no_argument, NULL, 'h' },
		{ "verbose", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, '?' + 256 },
		{ NULL, 0, NULL, 0 },
	};
	char err[256], *list = NULL, *tok, *save;
	uint64_t v;
	int c, rc = -1;

	b->nconns = 100;
	b->nrooms = 1;
	b->npubs = 1;
	b->rate = 100;
	b->duration_ms = 10000;
	b->warmup_ms = 1000;
	b->size = 64;
	b->timeout_ms = 10000;
	b->window = 1000;
	b->handshakes = 200;
	b->backoff_max_ms = 2000;
	snprintf(b->prefix, sizeof(b->prefix), "bench-");
	opterr = 0;
#define BENCH_UINT(field, min, max, name) do { \
		if (opt_uint(optarg, min, max, &v, err, sizeof(err)) < 0) { \
			rc = cli_usage_error("bench", "%s: %s", name, err); \
			goto out; \
		} \
		field = v; \
	} while (0)
#define BENCH_DURATION(field, min, name) do { \
		if (opt_duration_ms(optarg, min, 86400ULL * 1000, &field, err, \
				    sizeof(err)) < 0) { \
			rc = cli_usage_error("bench", "%s: %s", name, err); \
			goto out; \
		} \
	} while (0)
	while ((c = getopt_long(argc, argv, ":v:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': BENCH_UINT(b->nconns, 1, 1000000, "--conns"); break;
		case 'k': BENCH_UINT(b->nrooms, 1, 1000000, "--rooms"); break;
		case 'p': BENCH_UINT(b->npubs, 0, 1000000, "--publishers"); break;
		case 'P':
			if (!*optarg || strlen(optarg) >= sizeof(b->prefix) ||
			    strpbrk(optarg, "\"\\") ||
			    optarg[strcspn(optarg, "\x01\x02\x03\x04\x05\x06\x07"
					   "\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11"
					   "\x12\x13\x14\x15\x16\x17\x18\x19"
					   "\x1a\x1b\x1c\x1d\x1e\x1f")]) {
				rc = cli_usage_error("bench", "--room-prefix: '%s'"
						     " is not 1 to %zu plain"
						     " characters", optarg,
						     sizeof(b->prefix) - 1);
				goto out;
			}
			snprintf(b->prefix, sizeof(b->prefix), "%s", optarg);
			break;
		case 'r':
			if ((rc = bench_args_rate("--rate", optarg, &b->rate)))
				goto out;
			break;
		case 'C':
			if ((rc = bench_args_rate("--churn", optarg, &b->churn)))
				goto out;
			if (b->churn > 0)
				b->reconnect = true;
			break;
		case 'd':
			BENCH_DURATION(b->duration_ms, 1, "--duration");
			b->duration_set = true;
			break;
		case 'W': BENCH_DURATION(b->warmup_ms, 0, "--warmup"); break;
		case 'o': BENCH_DURATION(b->timeout_ms, 1, "--timeout"); break;
		case 'B': BENCH_DURATION(b->backoff_max_ms, 1, "--backoff-max"); break;
		case 's':
			if (opt_size(optarg, 0, 1 << 20, &b->size, err,
				     sizeof(err)) < 0) {
				rc = cli_usage_error("bench", "--size: %s", err);
				goto out;
			}
			break;
		case 'w': BENCH_UINT(b->window, 1, 1000000, "--window"); break;
		case 'H': BENCH_UINT(b->handshakes, 1, 100000, "--handshakes"); break;
		case 'R': b->reconnect = true; break;
		case 'S': b->secret_file = optarg; break;
		case 'j': b->json = true; break;
		case 'h': b->hold = true; break;
		case 'v':
			if (opt_uint(optarg, 0, 3, &v, err, sizeof(err)) < 0) {
				rc = cli_usage_error("bench", "-v: %s", err);
				goto out;
			}
			log_level = (int)v;
			break;
		case '?' + 256:
			fputs(cli_usage_bench, stdout);
			fputs("\n", stdout);
			fputs(bench_help, stdout);
			rc = 0;
			goto out;
		case ':':
			rc = cli_usage_error("bench", "option '%s' needs a value",
					     argv[optind - 1]);
			goto out;
		default:
			rc = cli_usage_error("bench", "unknown option '%s'",
					     argv[optind - 1]);
			goto out;
		}
	}
#undef BENCH_UINT
#undef BENCH_DURATION
	if (optind >= argc) {
		rc = cli_usage_error("bench", "missing URL");
		goto out;
	}
	list = strdup(argv[optind++]);
	if (!list) {
		rc = EX_OSERR;
		goto out;
	}
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (b->nurls == BENCH_URLS_MAX) {
			rc = cli_usage_error("bench", "at most %d URLs", BENCH_URLS_MAX);
			goto out;
		}
		if (cli_url_parse(tok, &b->urls[b->nurls++], err, sizeof(err)) < 0) {
			rc = cli_usage_error("bench", "%s", err);
			goto out;
		}
	}
	if (b->nurls == 0) {
		rc = cli_usage_error("bench", "missing URL");
		goto out;
	}
	if (optind < argc) {
		rc = cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (b->npubs > b->nconns) {
		rc = cli_usage_error("bench", "--publishers (%" PRIu32 ") exceeds"
				     " --conns (%" PRIu32 ")", b->npubs, b->nconns);
		goto out;
	}
	rc = -1; /* parsed: the run goes on */
out:
	free(list);
	return rc;
}
