/*
 * auth: who a connection is. With --auth jwt, a token (from the upgrade's
 * query string, or the connection's first frame) is checked against the
 * keys of --jwt-secret-file (HS256) and --jwt-key-file (RS256, ES256: PEM
 * or JWKS), with --jwt-issuer, --jwt-audience and --jwt-leeway; with
 * --auth none the user is taken as named (development). The key files are
 * read again on SIGHUP: connections keep the claims they were let in with.
 * Memory: the module owns the key set; a conn's user and claims are the
 * conn's (conn_release frees them).
 */
#ifndef CHAT_GW_AUTH_H
#define CHAT_GW_AUTH_H

#include <stddef.h>

#include "conn.h"

/* Read the key files of the configuration. Returns 0, or -1 with a reason
 * in err (errlen bytes). */
int auth_load(char *err, size_t errlen);
/* Read them again (SIGHUP): on success the new keys are used from now on;
 * on failure the keys in use stay and err says why. Returns 0 or -1. */
int auth_reload(char *err, size_t errlen);
void auth_free(void);
/* Check token (n bytes) and make c that user: c->user, c->claims (kept
 * when a rooms or publish claim limits it), c->exp. Returns 0, or an
 * HTTP status (401, or 500 out of memory) with *why a short reason that
 * never holds the token. */
int auth_token(struct conn *c, const char *token, size_t n, const char **why);
/* --auth none: make c the user named (a valid user name). Returns 0 or an
 * HTTP status with *why. */
int auth_user(struct conn *c, const char *user, const char **why);
/* When c's token stops being good (its exp plus the leeway), seconds
 * since the epoch; 0: never. */
int64_t auth_expiry(const struct conn *c);

#endif
