/*
 * session_args: the command lines of `chat-cli connect` and `chat-cli
 * send` into struct session's options (the defaults are set here), checked
 * as a whole: a bad option is a usage error (cli_usage_error: the message
 * and the usage on stderr, EX_USAGE); --help prints the help on stdout.
 * The credentials go where they are sent: a token in the first frame
 * ({"type":"auth"}, out of URLs and logs) unless --token-in-url, a user
 * name in the URL's query.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "cli.h"
#include "file.h"
#include "log.h"
#include "opt.h"
#include "session.h"

static const char session_common_help[] =
	"  --user U            connect as U (gateway with --auth none)\n"
	"  --token T           connect with the token T (gateway with --auth jwt)\n"
	"  --token-file F      read the token from file F\n"
	"  --token-in-url      send the token in the URL (?token=), for gateways\n"
	"                      older than the auth frame (default: the first frame)\n"
	"  --ca F              wss://: trust the certificates in F (PEM)\n"
	"  --insecure          wss://: accept any certificate (tests only)\n"
	"  --timeout D         handshake timeout and bounded wait for acks, like\n"
	"                      500ms, 10s (default 10s)\n"
	"  -v N                log level 0..3 on stderr (default 1)\n";

static const char connect_help[] =
	"Print every frame from the server as one JSON line on stdout. Each stdin\n"
	"line is a request: a JSON object with a \"type\" is sent as it is; any\n"
	"other line is published to the first --room (text as a string body,\n"
	"other JSON as that JSON). At end of input wait for the acks, close.\n"
	"\n"
	"  --room R            join R once connected (repeatable); the first\n"
	"                      one receives the publishes\n"
	"  --since SEQ         join with since SEQ: replay what came after SEQ\n"
	"  --text              every line is a string body, never JSON\n"
	"  --no-stdin          do not read stdin; run until closed or signalled\n"
	"  --window N          stop reading stdin while N publishes await their\n"
	"                      ack (default 256)\n";

static const char send_help[] =
	"Join R, publish MESSAGE, print its ack on stdout, close.\n"
	"\n"
	"  --room R            the room (required)\n"
	"  --json              MESSAGE is JSON (any value) instead of text\n";

int session_args_parse(struct session *s, enum session_mode mode, int argc,
		       char **argv, char **tok)
{
	static const struct option longopts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "token-in-url", no_argument, NULL, 'U' },
		{ "ca", required_argument, NULL, 'C' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "room", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "text", no_argument, NULL, 'x' },
		{ "no-stdin", no_argument, NULL, 'n' },
		{ "window", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = mode == MODE_SEND ? "send" : "connect";
	const char *user = NULL, *token = NULL, *token_file = NULL;
	char err[256];
	uint64_t v;
	int c, nauth = 0;
	bool token_in_url = false;

	s->mode = mode;
	s->window = 256;
	s->timeout_ms = 10000;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v:h", longopts, NULL)) != -1) {
		bool connect_only = c == 's' || c == 'x' || c == 'n' || c == 'w';

		if ((connect_only && mode != MODE_CONNECT) ||
		    (c == 'j' && mode != MODE_SEND))
			return cli_usage_error(cmd, "unknown option '%s'",
					       argv[optind - 1]);
		switch (c) {
		case 'u': user = optarg; nauth++; break;
		case 't': token = optarg; nauth++; break;
		case 'T': token_file = optarg; nauth++; break;
		case 'U': token_in_url = true; break;
		case 'C': s->ca_file = optarg; break;
		case 'I': s->insecure = true; break;
		case 'r':
			if (s->nrooms == SESSION_ROOMS_MAX)
				return cli_usage_error(cmd, "at most %d --room",
						       SESSION_ROOMS_MAX);
			if (!*optarg)
				return cli_usage_error(cmd, "--room: empty room name");
			s->rooms[s->nrooms++] = optarg;
			break;
		case 's':
			if (opt_uint(optarg, 0, (1ULL << 53), &s->since, err,
				     sizeof(err)) < 0)
				return cli_usage_error(cmd, "--since: %s", err);
			s->have_since = true;
			break;
		case 'x': s->text_only = true; break;
		case 'n': s->no_stdin = true; break;
		case 'j': s->json_body = true; break;
		case 'w':
			if (opt_uint(optarg, 1, 1000000, &s->window, err,
				     sizeof(err)) < 0)
				return cli_usage_error(cmd, "--window: %s", err);
			break;
		case 'o':
			if (opt_duration_ms(optarg, 1, 86400ULL * 1000,
					    &s->timeout_ms, err, sizeof(err)) < 0)
				return cli_usage_error(cmd, "--timeout: %s", err);
			break;
		case 'v':
			if (opt_uint(optarg, 0, 3, &v, err, sizeof(err)) < 0)
				return cli_usage_error(cmd, "-v: %s", err);
			log_level = (int)v;
			break;
		case 'h':
			fputs(mode == MODE_SEND ? cli_usage_send :
			      cli_usage_connect, stdout);
			fputs("\n", stdout);
			fputs(mode == MODE_SEND ? send_help : connect_help, stdout);
			fputs(session_common_help, stdout);
			return 0;
		case ':':
			return cli_usage_error(cmd, "option '%s' needs a value",
					       argv[optind - 1]);
		default:
			return cli_usage_error(cmd, "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error(cmd, "missing URL");
	if (cli_url_parse(argv[optind++], &s->url, err, sizeof(err)) < 0)
		return cli_usage_error(cmd, "%s", err);
	if (mode == MODE_SEND) {
		if (optind >= argc)
			return cli_usage_error(cmd, "missing MESSAGE");
		s->message = argv[optind++];
		if (s->nrooms != 1)
			return cli_usage_error(cmd, "send needs exactly one --room");
		if (s->json_body) {
			json_error_t jerr;
			json_t *j = json_loads(s->message, JSON_DECODE_ANY, &jerr);

			if (!j)
				return cli_usage_error(cmd, "--json: MESSAGE is not JSON: %s",
						       jerr.text);
			json_decref(j);
		} else {
			json_t *j = json_string(s->message);

			if (!j)
				return cli_usage_error(cmd, "MESSAGE is not valid UTF-8");
			json_decref(j);
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (nauth != 1)
		return cli_usage_error(cmd, "give exactly one of --user, --token, --token-file");
	if (token_file) {
		size_t n;

		*tok = file_read_small(token_file, 1 << 20, &n);
		if (!*tok) {
			LOG_F("unable to read token file", "file=%s err=%s",
			      log_q(token_file), log_q(strerror(errno)));
			return EX_NOINPUT;
		}
		token = *tok;
	}
	if (token && !token_in_url) {
		s->auth_token = token;
	} else if (cli_url_add_query(&s->url, user ? "user" : "token",
				     user ? user : token) < 0) {
		return cli_usage_error(cmd, "URL with credentials is too long");
	}
	return -1;
}
