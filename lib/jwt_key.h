/*
 * jwt_key: the inside of a key set (struct jwt_keys of jwt.h) and the
 * signature primitives over OpenSSL EVP, shared by jwt.c (tokens, claims)
 * and jwt_keys.c (loading PEM and JWKS). Only those two include it.
 * Memory: a key owns its kid, its EVP_PKEY and its secret; the set owns
 * its keys. Signing and verifying borrow everything for the call.
 */
#ifndef CHAT_JWT_KEY_H
#define CHAT_JWT_KEY_H

#include <stddef.h>

#include <openssl/evp.h>

#include "jwt.h"

#define JWT_SIG_MAX 1024 /* longest signature: RSA 8192 bits */

enum jwt_kty {
	JWT_KTY_OCT,  /* HS256 secret */
	JWT_KTY_RSA,  /* RS256, 2048 to 8192 bits */
	JWT_KTY_EC,   /* ES256, P-256 */
};

struct jwt_key {
	enum jwt_kty kty;        /* which alg this key takes, and only that one */
	char *kid;               /* malloc'd, NULL without kid */
	EVP_PKEY *pkey;          /* RSA or EC public key */
	unsigned char *secret;   /* oct: malloc'd */
	size_t secretlen;        /* oct: > 0 */
};

struct jwt_keys {
	int n;                            /* keys in k */
	struct jwt_key k[JWT_KEYS_MAX];   /* in file order */
};

/* The key type alg takes ("HS256", "RS256", "ES256"); -1 for any other. */
int jwt_alg_kty(const char *alg);
/* Whether sig (siglen bytes, JOSE form: raw r||s for ES256) signs data
 * with k. Leaves OpenSSL's error queue empty. */
bool jwt_key_verify(const struct jwt_key *k, const void *data, size_t len,
		    const unsigned char *sig, size_t siglen);
/* Sign data with the PEM private key text for alg (RS256 or ES256) into
 * sig (JWT_SIG_MAX bytes), JOSE form. Returns the length, or -1 with a
 * message in err. */
long jwt_pem_sign(const char *alg, const void *pem, size_t pemlen,
		  const void *data, size_t len, unsigned char *sig, char *err,
		  size_t errlen);

#endif
