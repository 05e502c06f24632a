/*
 * token: `chat-cli token` prints a token for tests, development and
 * operators (lib/jwt.h does the signing): HS256 with the secret in a file,
 * read whole with trailing whitespace removed the way chat-gw reads
 * --jwt-secret-file, or RS256/ES256 with a PEM private key (the public half
 * of which chat-gw --jwt-key-file verifies with).
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
	"Print a token for user U: HS256 signed with the secret in a file, or\n"
	"RS256/ES256 signed with a PEM private key.\n"
	"\n"
	"  --secret-file F     the HS256 shared secret (trailing whitespace ignored)\n"
	"  --key-file F        a PEM private key: RSA for RS256, EC P-256 for ES256\n"
	"  --alg A             HS256 (with --secret-file, the default), RS256 or\n"
	"                      ES256 (with --key-file, required)\n"
	"  --sub U             the user (the token's sub claim)\n"
	"  --ttl D             lifetime, like 30s, 15m, 1h; 0 for no exp\n"
	"                      (default 1h)\n"
	"  --nbf D             not valid before now + D (claim nbf; default none)\n"
	"  --kid K             the key id in the header (default none)\n"
	"  --iss I             the issuer claim (default none)\n"
	"  --aud A             the audience claim (default none)\n"
	"  --rooms JSON_ARRAY  room patterns the user may join, e.g.\n"
	"                      '[\"team-*\",\"lobby\"]' (default: all rooms)\n"
	"  --publish JSON_ARRAY\n"
	"                      room patterns the user may publish to, a read-only\n"
	"                      room being one of --rooms but not of --publish\n"
	"                      (default: those of --rooms)\n"
	"  -v N                log level 0..3 (default 1)\n";

/* Whether s is a JSON array of at most JWT_ROOMS_MAX strings. */
static bool token_patterns_ok(const char *s)
{
	json_t *a = json_loads(s, 0, NULL);
	bool ok = json_is_array(a) && json_array_size(a) <= JWT_ROOMS_MAX;
	size_t i;

	for (i = 0; ok && i < json_array_size(a); i++)
		ok = json_is_string(json_array_get(a, i));
	json_decref(a);
	return ok;
}

int cli_token_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "secret-file", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "alg", required_argument, NULL, 'a' },
		{ "sub", required_argument, NULL, 'u' },
		{ "ttl", required_argument, NULL, 't' },
		{ "nbf", required_argument, NULL, 'n' },
		{ "kid", required_argument, NULL, 'i' },
		{ "iss", required_argument, NULL, 'I' },
		{ "aud", required_argument, NULL, 'A' },
		{ "rooms", required_argument, NULL, 'r' },
		{ "publish", required_argument, NULL, 'p' },
		{ "verbose", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *secret_file = NULL, *key_file = NULL, *file;
	struct jwt_spec sp = { 0 };
	uint64_t ttl_ms = 3600 * 1000, nbf_ms = 0, v;
	bool has_nbf = false;
	char err[256], *key, *tok;
	size_t keylen;
	int64_t now;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': secret_file = optarg; break;
		case 'k': key_file = optarg; break;
		case 'a': sp.alg = optarg; break;
		case 'u': sp.sub = optarg; break;
		case 'i': sp.kid = optarg; break;
		case 'I': sp.iss = optarg; break;
		case 'A': sp.aud = optarg; break;
		case 'r': sp.rooms_json = optarg; break;
		case 'p': sp.publish_json = optarg; break;
		case 't':
			if (opt_duration_ms(optarg, 0, 10ULL * 365 * 86400 * 1000,
					    &ttl_ms, err, sizeof(err)) < 0)
				return cli_usage_error("token", "--ttl: %s", err);
			break;
		case 'n':
			if (opt_duration_ms(optarg, 0, 10ULL * 365 * 86400 * 1000,
					    &nbf_ms, err, sizeof(err)) < 0)
				return cli_usage_error("token", "--nbf: %s", err);
			has_nbf = true;
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
	if (!secret_file == !key_file)
		return cli_usage_error("token", "one of --secret-file and --key-file is required");
	if (secret_file && sp.alg && strcmp(sp.alg, "HS256"))
		return cli_usage_error("token", "--secret-file signs HS256 only, not '%s'",
				       sp.alg);
	if (key_file && (!sp.alg || (strcmp(sp.alg, "RS256") && strcmp(sp.alg, "ES256"))))
		return cli_usage_error("token", "--key-file needs --alg RS256 or ES256");
	if (!sp.sub || !*sp.sub)
		return cli_usage_error("token", "--sub is required");
	if (sp.kid && (!*sp.kid || strlen(sp.kid) > JWT_KID_MAX))
		return cli_usage_error("token", "--kid: 1 to %d bytes", JWT_KID_MAX);
	if (sp.rooms_json && !token_patterns_ok(sp.rooms_json))
		return cli_usage_error("token",
				       "--rooms: '%s' is not a JSON array of at most %d strings",
				       sp.rooms_json, JWT_ROOMS_MAX);
	if (sp.publish_json && !token_patterns_ok(sp.publish_json))
		return cli_usage_error("token",
				       "--publish: '%s' is not a JSON array of at most %d strings",
				       sp.publish_json, JWT_ROOMS_MAX);
	file = secret_file ? secret_file : key_file;
	key = file_read_small(file, 1 << 20, &keylen);
	if (!key) {
		LOG_F(secret_file ? "unable to read secret file" : "unable to read key file",
		      "file=%s err=%s", log_q(file), log_q(strerror(errno)));
		return EX_NOINPUT;
	}
	if (keylen == 0) {
		LOG_F(secret_file ? "secret file is empty" : "key file is empty", "file=%s",
		      log_q(file));
		free(key);
		return EX_DATAERR;
	}
	now = (int64_t)time(NULL);
	if (ttl_ms)
		sp.exp = now + (int64_t)((ttl_ms + 999) / 1000);
	if (has_nbf)
		sp.nbf = now + (int64_t)(nbf_ms / 1000);
	tok = jwt_sign_spec(&sp, key, keylen, err, sizeof(err));
	memset(key, 0, keylen);
	free(key);
	if (!tok) {
		/* The key file holds no usable key for the alg: bad input. */
		LOG_F("unable to sign token", "file=%s err=%s", log_q(file), log_q(err));
		return key_file ? EX_DATAERR : EX_SOFTWARE;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
}
