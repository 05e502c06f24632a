/*
 * skim: pick a few members out of one JSON object without building it, for
 * bench's hot path (every delivery at every subscriber). It checks only the
 * structure it walks over; values it returns are spans into the input,
 * valid as long as the input is.
 */
#ifndef CHAT_CLI_SKIM_H
#define CHAT_CLI_SKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct skim_field {
	const char *name;   /* member to find (no escapes in it) */
	const char *v;      /* out: its value's first byte, NULL if absent */
	size_t vlen;        /* out: the value's length (strings with quotes) */
};

/* Walk the top-level object in p[0..len) and fill the fields found.
 * Returns 0, or -1 when p is not an object. */
int skim_object(const char *p, size_t len, struct skim_field *f, int nf);
/* The value as a decimal integer; false if it is not one. */
bool skim_int(const struct skim_field *f, int64_t *out);
/* Whether the value is the JSON string s (without escapes). */
bool skim_str_is(const struct skim_field *f, const char *s);

#endif
