/*
 * jwt: HS256 JSON Web Tokens: verification for chat-gw, signing for chat-cli
 * and the tests. Only alg HS256 is accepted ("none" and every other alg are
 * refused). Claims used: sub (the user, required), exp (seconds since the
 * epoch, honoured when present), rooms (optional array of fnmatch(3)
 * patterns the user may join).
 * Memory: jwt_verify() fills a claims object the caller frees with
 * jwt_claims_free().
 */
#ifndef CHAT_JWT_H
#define CHAT_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX 4096        /* longest token accepted */
#define JWT_ROOMS_MAX 32    /* most patterns in a rooms claim */

enum jwt_err {
	JWT_OK = 0,
	JWT_MALFORMED,      /* not three base64url parts, bad JSON, no sub */
	JWT_BAD_ALG,        /* alg is not HS256 */
	JWT_BAD_SIGNATURE,  /* signature does not match */
	JWT_EXPIRED,        /* exp is in the past */
};

struct jwt_claims {
	char *sub;                   /* user name, malloc'd */
	int64_t exp;                 /* 0 when the token has no exp */
	int nrooms;                  /* -1: no rooms claim (all rooms) */
	char *rooms[JWT_ROOMS_MAX];  /* patterns, malloc'd */
};

/* Check token against the secret at time now (seconds). Returns JWT_OK and
 * fills c, or an error code (c is then empty). */
enum jwt_err jwt_verify(const char *token, size_t len, const void *secret,
			size_t secretlen, int64_t now, struct jwt_claims *c);
/* Words for an error code, for logs and close reasons. */
const char *jwt_strerror(enum jwt_err e);
void jwt_claims_free(struct jwt_claims *c);
/* Whether the claims allow joining room. */
bool jwt_room_allowed(const struct jwt_claims *c, const char *room);
/* Make a token for sub with exp (0: none) and an optional JSON array text
 * of room patterns (NULL: none). Returns a malloc'd string or NULL. */
char *jwt_sign(const char *sub, int64_t exp, const char *rooms_json,
	       const void *secret, size_t secretlen);

#endif
