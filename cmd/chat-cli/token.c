/*
 * token: `chat-cli token` prints an HS256 token signed with the secret in a
 * file, for tests and development (lib/jwt.h does the signing). The secret
 * file is read whole, trailing whitespace removed, the way chat-gw reads
 * --jwt-secret-file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "file.h"
#include "jwt.h"
#include "log.h"
#include "opt.h"

static const char token_help[] =
	"Print an HS256 token for user U, signed with the secret in file F.\n"
	"\n"
	"  --secret-file F     the shared secret (trailing whitespace ignored)\n"
	"  --sub U             the user (the token's sub claim)\n"
	"  --ttl D             lifetime, like 30s, 15m, 1h; 0 for no exp\n"
	"                      (default 1h)\n"
	"  --rooms JSON_ARRAY  room patterns the user may join, e.g.\n"
	"                      '[\"team-*\",\"lobby\"]' (default: all rooms)\n"
	"  -v N                log level 0..3 (default 1)\n";

int cli_token_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "secret-file", required_argument, NULL, 's' },
		{ "sub", required_argument, NULL, 'u' },
		{ "ttl", required_argument, NULL, 't' },
		{ "rooms", required_argument, NULL, 'r' },
		{ "verbose", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *secret_file = NULL, *sub = NULL, *rooms = NULL;
	uint64_t ttl_ms = 3600 * 1000, v;
	char err[256], *secret, *tok;
	size_t secretlen;
	int c, i;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': secret_file = optarg; break;
		case 'u': sub = optarg; break;
		case 'r': rooms = optarg; break;
		case 't':
			if (opt_duration_ms(optarg, 0, 10ULL * 365 * 86400 * 1000,
					    &ttl_ms, err, sizeof(err)) < 0)
				return cli_usage_error("token", "--ttl: %s", err);
			break;
		case 'v':
			if (opt_uint(optarg, 0, 3, &v, err, sizeof(err)) < 0)
				return cli_usage_error("token", "-v: %s", err);
			log_level = (int)v;
			break;
		case 'h':
			fputs(cli_usage_token, stdout);
			fputs("\n", stdout);
			fputs(token_help, stdout);
			return 0;
		case ':':
			return cli_usage_error("token", "option '%s' needs a value",
					       argv[optind - 1]);
		default:
			return cli_usage_error("token", "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("token", "unexpected argument '%s'",
				       argv[optind]);
	if (!secret_file)
		return cli_usage_error("token", "--secret-file is required");
	if (!sub || !*sub)
		return cli_usage_error("token", "--sub is required");
	if (rooms) {
		json_error_t jerr;
		json_t *a = json_loads(rooms, 0, &jerr);
		bool ok = json_is_array(a) && json_array_size(a) <= JWT_ROOMS_MAX;

		for (i = 0; ok && (size_t)i < json_array_size(a); i++)
			ok = json_is_string(json_array_get(a, (size_t)i));
		json_decref(a);
		if (!ok)
			return cli_usage_error("token",
					       "--rooms: '%s' is not a JSON array of at most %d strings",
					       rooms, JWT_ROOMS_MAX);
	}
	secret = file_read_small(secret_file, 1 << 20, &secretlen);
	if (!secret) {
		LOG_F("unable to read secret file", "file=%s err=%s",
		      log_q(secret_file), log_q(strerror(errno)));
		return EX_NOINPUT;
	}
	if (secretlen == 0) {
		LOG_F("secret file is empty", "file=%s", log_q(secret_file));
		free(secret);
		return EX_DATAERR;
	}
	tok = jwt_sign(sub, ttl_ms ? (int64_t)time(NULL) + (int64_t)((ttl_ms + 999) / 1000) : 0,
		       rooms, secret, secretlen);
	free(secret);
	if (!tok) {
		LOG_F("unable to sign token", NULL);
		return EX_SOFTWARE;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
}
