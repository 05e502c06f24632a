/*
 * fuzz_jwt: libFuzzer target for the token parser, the first thing chat-gw
 * runs on what a stranger sends. The input is tried three ways: as a token
 * (jwt_verify), as base64url (b64url_decode, which must round-trip exactly),
 * and as the payload of a correctly signed token, so that the claims parser
 * behind the signature check is reached too.
 */
/* links: lib/jwt.c lib/b64url.c */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "jwt.h"

#define SECRET "fuzz-secret"
#define NOW 1700000000LL

static void check_claims(enum jwt_err e, struct jwt_claims *c)
{
	int i;

	if (e == JWT_OK) {
		if (!c->sub || !*c->sub || c->nrooms > JWT_ROOMS_MAX)
			__builtin_trap();
		for (i = 0; i < c->nrooms; i++)
			if (!c->rooms[i])
				__builtin_trap();
		(void)jwt_room_allowed(c, "general");
	} else if (c->sub || c->nrooms != -1 || !jwt_strerror(e)) {
		__builtin_trap(); /* a refusal leaves the claims empty */
	}
	jwt_claims_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hdr[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* HS256 */
	struct jwt_claims c;
	unsigned char *dec, mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *enc, *tok;
	size_t o;
	long n;

	/* 1. Anything as a token. */
	check_claims(jwt_verify((const char *)data, size, SECRET, strlen(SECRET),
				NOW, &c), &c);

	/* 2. base64url: what decodes must encode back to the same text. */
	dec = malloc(3 * (size / 4) + 3);
	enc = malloc(4 * ((size + 2) / 3) + 1 + 4 * size / 3 + 4);
	n = b64url_decode((const char *)data, size, dec);
	if (n >= 0) {
		if ((size_t)n > 3 * (size / 4) + 2)
			__builtin_trap();
		if (b64url_encode(dec, (size_t)n, enc) != size || memcmp(enc, data, size))
			__builtin_trap();
	}
	free(enc);
	free(dec);

	/* 3. The input as the payload of a token signed with the secret. */
	if (size > JWT_MAX)
		return 0;
	tok = malloc(sizeof(hdr) + 4 * ((size + 2) / 3) + 64);
	memcpy(tok, hdr, sizeof(hdr) - 1);
	o = sizeof(hdr) - 1;
	tok[o++] = '.';
	o += b64url_encode(data, size, tok + o);
	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok, o, mac,
	     &maclen);
	tok[o++] = '.';
	o += b64url_encode(mac, maclen, tok + o);
	check_claims(jwt_verify(tok, o, SECRET, strlen(SECRET), NOW, &c), &c);
	free(tok);
	return 0;
}
