/*
 * fuzz_jwks: libFuzzer target for the key file parser (jwt_keys_parse):
 * PEM public keys and JWKS documents, as chat-gw --jwt-key-file reads them
 * at start and on every SIGHUP. A file is the operator's, but it may come
 * from an identity provider's JWKS URL, so it is parsed as hostile. What
 * loads must hold 1 to JWT_KEYS_MAX keys and take tokens without harm; what
 * does not must say why; neither may leave errors on OpenSSL's queue.
 */
/* links: lib/jwt.c lib/jwt_keys.c lib/b64url.c lib/file.c lib/buf.c */
#include <openssl/err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

#define NOW 1700000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* HS256 tokens for the secret "s3cret" (a JWK {"kty":"oct","k":
	 * "czNjcmV0"}), with kid k1 and without; an RS256
	 * and an ES256 one with garbage signatures: the key choice runs
	 * over whatever keys loaded. */
	static const char *toks[] = {
		"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhIn0."
		"r4gBBOIsu7gDD--yyHURfAhcHgzl_OPsoE-YviJk-Ak",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.mqAmrh2WdzBr6yHqk3GzQS0R4Gt2WJHVPWYguKRJWhQ",
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.AAAA",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImUxIn0.eyJzdWIiOiJhIn0."
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	struct jwt_claims c;
	struct jwt_keys *k;
	char err[256];
	size_t i;
	enum jwt_err e;

	err[0] = '\0';
	k = jwt_keys_parse(data, size, err, sizeof(err));
	if (ERR_peek_error())
		__builtin_trap();
	if (!k) {
		if (!err[0])
			__builtin_trap(); /* a refusal says why */
		return 0;
	}
	if (jwt_keys_count(k) < 1 || jwt_keys_count(k) > JWT_KEYS_MAX)
		__builtin_trap();
	for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
		e = jwt_verify_keys(toks[i], strlen(toks[i]), k, NULL, NOW, &c);
		if (ERR_peek_error() || (e != JWT_OK && c.sub) ||
		    (e == JWT_OK && i >= 2))
			__builtin_trap();
		jwt_claims_free(&c);
	}
	jwt_keys_free(k);
	return 0;
}
