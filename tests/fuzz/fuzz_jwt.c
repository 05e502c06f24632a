/*
 * fuzz_jwt: libFuzzer target for the token parser, the first thing chat-gw
 * runs on what a stranger sends. The input is tried six ways: as a token
 * against a key set of an HS256 secret, an RSA and an EC key (kid, alg and
 * key choice, RS256 and ES256 verification of what it claims to be); as
 * base64url (b64url_decode, which must round-trip exactly); as the payload
 * and as the header of correctly signed HS256 tokens, so that the claims
 * parser and the header checks behind the signature are reached too; and
 * as the signature bytes of RS256 and ES256 tokens (the r||s to DER
 * conversion takes any length and value).
 */
/* links: lib/jwt.c lib/jwt_keys.c lib/b64url.c lib/file.c lib/buf.c */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "jwt.h"

#define SECRET "fuzz-secret"
#define NOW 1700000000LL

static struct jwt_keys *keys;

static void check_claims(enum jwt_err e, struct jwt_claims *c)
{
	int i;

	if (e == JWT_OK) {
		if (!c->sub || !*c->sub || c->nrooms > JWT_ROOMS_MAX ||
		    c->npublish > JWT_ROOMS_MAX)
			__builtin_trap();
		for (i = 0; i < c->nrooms; i++)
			if (!c->rooms[i])
				__builtin_trap();
		for (i = 0; i < c->npublish; i++)
			if (!c->publish[i])
				__builtin_trap();
		(void)jwt_room_allowed(c, "general");
		if (jwt_publish_allowed(c, "general") && !jwt_room_allowed(c, "general"))
			__builtin_trap(); /* publish only where one may join */
	} else if (c->sub || c->nrooms != -1 || c->npublish != -1 ||
		   !jwt_strerror(e)) {
		__builtin_trap(); /* a refusal leaves the claims empty */
	}
	if (ERR_peek_error())
		__builtin_trap(); /* OpenSSL's queue is shared with lws: keep it clean */
	jwt_claims_free(c);
}

/* Write the PEM public key of a new key of type (arg: the curve) to b. */
static void add_pem(BIO *b, const char *type, const void *arg)
{
	EVP_PKEY *pk = !strcmp(type, "RSA") ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
					    : EVP_PKEY_Q_keygen(NULL, NULL, "EC", arg);

	PEM_write_bio_PUBKEY(b, pk);
	EVP_PKEY_free(pk);
}

static void init(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	char err[256], *p;
	long n;

	add_pem(b, "RSA", NULL);
	add_pem(b, "EC", "P-256");
	n = BIO_get_mem_data(b, &p);
	keys = jwt_keys_parse(p, (size_t)n, err, sizeof(err));
	BIO_free(b);
	if (!keys || jwt_keys_add_secret(keys, SECRET, strlen(SECRET)) < 0)
		__builtin_trap();
}

/* hdr.payload (base64url of each) signed with SECRET, into tok. */
static size_t sign_hs(const void *hdr, size_t hn, const void *pl, size_t pn, char *tok)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t o;

	o = b64url_encode(hdr, hn, tok);
	tok[o++] = '.';
	o += b64url_encode(pl, pn, tok + o);
	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok, o, mac,
	     &maclen);
	tok[o++] = '.';
	o += b64url_encode(mac, maclen, tok + o);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hs[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	static const char pl[] = "{\"sub\":\"fuzz\",\"exp\":1800000000}";
	static const char *sig_hdr[] = {
		"{\"alg\":\"RS256\"}", "{\"alg\":\"ES256\"}", "{\"alg\":\"ES256\",\"kid\":\"x\"}",
	};
	struct jwt_opts o = { "iss", "aud", JWT_LEEWAY_DEFAULT };
	struct jwt_claims c;
	unsigned char *dec;
	char *enc, *tok;
	size_t n0, i;
	long n;

	if (!keys)
		init();

	/* 1. Anything as a token, against the HS256 secret alone and the set. */
	check_claims(jwt_verify((const char *)data, size, SECRET, strlen(SECRET),
				NOW, &c), &c);
	check_claims(jwt_verify_keys((const char *)data, size, keys, &o, NOW, &c), &c);

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

	if (size > JWT_MAX)
		return 0;
	tok = malloc(2 * size + 2 * sizeof(pl) + 2 * sizeof(hs) + 128);

	/* 3. The input as the payload of a token signed with the secret. */
	n0 = sign_hs(hs, sizeof(hs) - 1, data, size, tok);
	check_claims(jwt_verify(tok, n0, SECRET, strlen(SECRET), NOW, &c), &c);
	check_claims(jwt_verify_keys(tok, n0, keys, &o, NOW, &c), &c);
	check_claims(jwt_verify_keys(tok, n0, keys, NULL, NOW, &c), &c);

	/* 4. The input as the header of a token signed with the secret. */
	n0 = sign_hs(data, size, pl, sizeof(pl) - 1, tok);
	check_claims(jwt_verify_keys(tok, n0, keys, NULL, NOW, &c), &c);

	/* 5. The input as the signature of RS256 and ES256 tokens. */
	for (i = 0; i < sizeof(sig_hdr) / sizeof(sig_hdr[0]); i++) {
		n0 = b64url_encode(sig_hdr[i], strlen(sig_hdr[i]), tok);
		tok[n0++] = '.';
		n0 += b64url_encode(pl, sizeof(pl) - 1, tok + n0);
		tok[n0++] = '.';
		n0 += b64url_encode(data, size, tok + n0);
		check_claims(jwt_verify_keys(tok, n0, keys, NULL, NOW, &c), &c);
	}
	free(tok);
	return 0;
}
