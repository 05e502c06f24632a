/*
 * jwt: JSON Web Tokens: verification for chat-gw, signing for chat-cli and
 * the tests. Algorithms HS256 (a shared secret), RS256 (RSA, 2048 to 8192
 * bits) and ES256 (ECDSA P-256), each bound to its kind of key: an RSA or
 * EC key never verifies an HS256 token, a secret never an RS256 one, and
 * "none" is always refused. Keys come as a key set (struct jwt_keys) made
 * from a secret, a PEM public key file or a JWKS document.
 * Claims: sub (the user, required), exp, nbf, iat (seconds since the epoch,
 * optional, checked with a leeway), iss and aud (checked when the verifier
 * expects values), rooms (fnmatch(3) patterns the user may join) and
 * publish (patterns of rooms the user may publish to).
 * Memory: arguments are borrowed for the call. jwt_verify*() fill a claims
 * object the caller frees with jwt_claims_free(); claims never point into
 * the key set, so a set may be freed (swapped on reload) while claims live.
 * A key set is immutable once made: free it with jwt_keys_free().
 */
#ifndef CHAT_JWT_H
#define CHAT_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX 4096             /* longest token accepted, in bytes */
#define JWT_ROOMS_MAX 32         /* most patterns in a rooms or publish claim */
#define JWT_KEYS_MAX 16          /* most keys in a set */
#define JWT_KEYFILE_MAX 65536    /* largest key file, in bytes */
#define JWT_KID_MAX 128          /* longest kid, in bytes */
#define JWT_AUD_MAX 16           /* most audiences in an aud array */
#define JWT_LEEWAY_DEFAULT 30    /* seconds of clock skew allowed */

enum jwt_err {
	JWT_OK = 0,
	JWT_MALFORMED,      /* not three base64url parts, bad JSON, no sub, bad claim type */
	JWT_BAD_ALG,        /* alg none, unknown, or not one the chosen keys take */
	JWT_BAD_SIGNATURE,  /* no candidate key verifies the signature */
	JWT_EXPIRED,        /* exp is past (beyond the leeway) */
	JWT_NOT_YET_VALID,  /* nbf or iat is ahead (beyond the leeway) */
	JWT_BAD_ISSUER,     /* iss missing or not the expected issuer */
	JWT_BAD_AUDIENCE,   /* aud missing or without the expected audience, or
			     * aud present when no audience is expected */
	JWT_UNKNOWN_KID,    /* the token's kid names no key of the set */
};

struct jwt_claims {
	char *sub;                     /* user name, malloc'd */
	int64_t exp;                   /* 0 when the token has no exp */
	int64_t nbf;                   /* 0 when the token has no nbf */
	int64_t iat;                   /* 0 when the token has no iat */
	int nrooms;                    /* -1: no rooms claim (all rooms) */
	char *rooms[JWT_ROOMS_MAX];    /* patterns, malloc'd */
	int npublish;                  /* -1: no publish claim (as rooms) */
	char *publish[JWT_ROOMS_MAX];  /* patterns, malloc'd */
};

/* What jwt_verify_keys() checks beyond the signature. All zero is fine
 * (no iss or aud expected, no leeway); jwt_opts_default() gives the
 * default leeway. The strings are borrowed for the call. */
struct jwt_opts {
	const char *issuer;    /* iss must equal it; NULL: iss not checked */
	const char *audience;  /* aud must name it; NULL: a token with aud is refused */
	int64_t leeway;        /* seconds allowed past exp and before nbf/iat */
};

struct jwt_keys; /* opaque set of verification keys */

/* A key set from the file at path: PEM public keys ("BEGIN PUBLIC KEY",
 * RSA or EC P-256; several blocks allowed) or a JWKS document
 * ({"keys":[...]}, kty RSA, EC with crv P-256, or oct for an HS256
 * secret). JWKS keys of other types, curves, algs or "use" are skipped.
 * At most JWT_KEYFILE_MAX bytes and JWT_KEYS_MAX keys. Returns a new set,
 * or NULL with a message in err (errlen bytes, at least 1). */
struct jwt_keys *jwt_keys_load(const char *path, char *err, size_t errlen);
/* The same from len bytes of text (no I/O: what the fuzzer drives). */
struct jwt_keys *jwt_keys_parse(const void *text, size_t len, char *err,
				size_t errlen);
/* A set of one HS256 secret (len > 0), without kid. NULL when out of
 * memory or len is 0. */
struct jwt_keys *jwt_keys_secret(const void *secret, size_t len);
/* Add an HS256 secret without kid to k (before k is in use), so a gateway
 * may take shared-secret and public-key tokens together. Returns 0, or -1
 * when k is full, len is 0 or memory runs out. */
int jwt_keys_add_secret(struct jwt_keys *k, const void *secret, size_t len);
/* How many keys the set holds. */
int jwt_keys_count(const struct jwt_keys *k);
void jwt_keys_free(struct jwt_keys *k);

/* Options with the default leeway and nothing expected. */
struct jwt_opts jwt_opts_default(void);

/* Check token against the keys at time now (seconds since the epoch).
 * The key: with a kid in the token's header, the keys with that kid, or
 * when none has it the keys without kid (else JWT_UNKNOWN_KID); without
 * kid, every key. Of those, the ones whose type takes the token's alg are
 * tried (none: JWT_BAD_ALG), at most JWT_KEYS_MAX. The payload is parsed
 * only once a signature checks. opts NULL: jwt_opts_default(). Returns
 * JWT_OK and fills c, or an error code (c is then empty: sub NULL, nrooms
 * and npublish -1). */
enum jwt_err jwt_verify_keys(const char *token, size_t len,
			     const struct jwt_keys *keys,
			     const struct jwt_opts *opts, int64_t now,
			     struct jwt_claims *c);
/* HS256 only, with the secret, no leeway, no iss expected (what chat-gw
 * --jwt-secret-file has always done). Same results as jwt_verify_keys. */
enum jwt_err jwt_verify(const char *token, size_t len, const void *secret,
			size_t secretlen, int64_t now, struct jwt_claims *c);
/* Words for an error code, for logs and close reasons. */
const char *jwt_strerror(enum jwt_err e);
/* Free what c holds and leave it empty; fine to call twice. */
void jwt_claims_free(struct jwt_claims *c);
/* Whether the claims allow joining room. */
bool jwt_room_allowed(const struct jwt_claims *c, const char *room);
/* Whether the claims allow publishing to room: a room the user may join
 * (jwt_room_allowed) that matches the publish claim; without a publish
 * claim, every room the user may join. */
bool jwt_publish_allowed(const struct jwt_claims *c, const char *room);

/* A token to make. NULL and 0 fields are left out. */
struct jwt_spec {
	const char *alg;           /* "HS256" (NULL too), "RS256" or "ES256" */
	const char *kid;           /* header kid */
	const char *sub;           /* required */
	int64_t exp, nbf, iat;     /* seconds since the epoch */
	const char *iss;
	const char *aud;           /* one audience, as a string */
	const char *rooms_json;    /* JSON array text of patterns */
	const char *publish_json;  /* JSON array text of patterns */
};

/* Make a token: key is the secret for HS256, or the text of a PEM private
 * key (RSA for RS256, EC P-256 for ES256). Returns a malloc'd string, or
 * NULL with a message in err (errlen bytes, at least 1). */
char *jwt_sign_spec(const struct jwt_spec *s, const void *key, size_t keylen,
		    char *err, size_t errlen);
/* HS256 token for sub with exp (0: none) and an optional JSON array text
 * of room patterns (NULL: none). Returns a malloc'd string or NULL. */
char *jwt_sign(const char *sub, int64_t exp, const char *rooms_json,
	       const void *secret, size_t secretlen);

#endif
