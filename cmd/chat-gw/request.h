/*
 * request: parses one client frame (a JSON text) into a request and checks
 * its shape. It does no I/O and keeps no state, so it is unit-tested and
 * fuzzed on its own (tests/fuzz/fuzz_request.c).
 * Memory: request_parse() fills r, which owns the parsed JSON; the strings
 * and JSON values in r are valid until request_free(r).
 */
#ifndef CHAT_GW_REQUEST_H
#define CHAT_GW_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum req_type {
	REQ_JOIN,
	REQ_LEAVE,
	REQ_PUBLISH,
	REQ_HISTORY,
	REQ_PRESENCE,
	REQ_TYPING,
	REQ_AUTH,
};

#define REQ_REF_MAX 128         /* longest ref string */
/* Room for a ref as JSON text: a string of REQ_REF_MAX bytes, each escaped
 * as \u00XX at worst, with its quotes; or an integer. */
#define REQ_REF_TEXT (REQ_REF_MAX * 6 + 3)

struct request {
	enum req_type type;     /* what is asked */
	json_t *root;           /* the parsed frame, owned */
	const char *ref;        /* "ref" as compact JSON text, or NULL */
	char reftext[REQ_REF_TEXT]; /* where ref points */
	const char *room;       /* "room", validated */
	bool has_since;         /* join: "since" given */
	uint64_t since;         /* join: last seq the client saw */
	bool has_before;        /* history: "before" given */
	uint64_t before;        /* history: messages with seq < before */
	uint64_t limit;         /* history, presence: 0 when not given */
	json_t *body;           /* publish: the body, any JSON value */
	const char *token;      /* auth: the token */
	size_t tokenlen;        /* its length */
};

/* Parse text (n bytes, need not be NUL-terminated). Returns 0, or -1 with
 * *msg set to a static explanation for a bad_request error; r->ref is set
 * when the frame had a usable ref, so the error can echo it. Either way the
 * caller calls request_free(). Any JSON is accepted in a body, \u0000
 * included. */
int request_parse(const char *text, size_t n, struct request *r, const char **msg);
void request_free(struct request *r);

#endif
