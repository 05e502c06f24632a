/*
 * skim: pick a few members out of one JSON object without building it, for
 * hot paths that see every line or frame (chat-cli bench at every
 * subscriber, chat-gw's bus deliveries, chat-relay's publishes). It checks
 * only the structure it walks over, so a caller that must trust a value
 * validates it (or the whole text) itself. Values it returns are spans into
 * the input, valid as long as the input is.
 */
#ifndef CHAT_SKIM_H
#define CHAT_SKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct skim_field {
	const char *name;   /* member to find (no escapes in it) */
	const char *v;      /* out: its value's first byte, NULL if absent */
	size_t vlen;        /* out: the value's length (strings with quotes) */
	const char *m;      /* out: the member's first byte (its key's quote) */
	size_t mlen;        /* out: the member's length, key to end of value */
};

/* Walk the top-level object in p[0..len) and fill the fields found.
 * Returns 0, or -1 when p is not an object. */
int skim_object(const char *p, size_t len, struct skim_field *f, int nf);
/* The value as a decimal integer; false if it is not one. */
bool skim_int(const struct skim_field *f, int64_t *out);
/* Whether the value is the JSON string s (without escapes). */
bool skim_str_is(const struct skim_field *f, const char *s);
/* The elements of the array in p[0..len), one per call: start with
 * *pos = 0. Returns 1 with *v, *vlen set to the next element's span, 0 at
 * the end of the array, -1 when p is not an array. */
int skim_array_next(const char *p, size_t len, size_t *pos, const char **v,
		    size_t *vlen);
/* Whether p[0..len) is exactly one JSON value (RFC 8259, surrounding white
 * space allowed) in valid UTF-8, nested at most SKIM_DEPTH_MAX deep: the
 * check a text must pass before it is sent to a client as it came. */
bool skim_valid(const char *p, size_t len);
#define SKIM_DEPTH_MAX 2048

/* Copy the object in p[0..len) to out without the top-level members whose
 * names are in drop (ndrop of them), other bytes unchanged. Returns how
 * many members were dropped, or -1 when p is not an object or out is full
 * (out is then as it was). */
int skim_without(const char *p, size_t len, const char *const *drop, int ndrop,
		 struct buf *out);

#endif
