/*
 * jsonl: splits a byte stream into lines with a bounded length. It does no
 * I/O: feed it what read() returned, then pull lines until there are none.
 * A line longer than the bound is skipped up to its newline and reported once
 * as JSONL_OVERLONG, so one bad line never ends the stream.
 * Memory: a line returned by jsonl_next() points into the reader and stays
 * valid until the next jsonl_feed() or jsonl_next() call.
 */
#ifndef CHAT_JSONL_H
#define CHAT_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum {
	JSONL_NONE = 0,     /* no complete line yet: feed more */
	JSONL_LINE = 1,     /* *line holds one line, without its newline */
	JSONL_OVERLONG = 2, /* a line over the bound was dropped */
};

struct jsonl {
	struct buf in;      /* unconsumed input */
	size_t pos;         /* start of the next line in in.data */
	size_t scan;        /* where the search for a newline resumes */
	size_t max_line;    /* longest line accepted, in bytes */
	bool skipping;      /* inside an overlong line: drop up to newline */
	bool eof;           /* jsonl_finish() was called */
	uint64_t overlong;  /* lines dropped for length */
};

/* Set up a reader for lines of at most max_line bytes. */
void jsonl_init(struct jsonl *j, size_t max_line);
/* Free what the reader holds. */
void jsonl_free(struct jsonl *j);
/* Add n bytes of input. Returns 0, or -1 (ENOMEM) when out of memory. */
int jsonl_feed(struct jsonl *j, const void *data, size_t n);
/* Mark the end of input: a last line without a newline becomes a line. */
void jsonl_finish(struct jsonl *j);
/* Pull the next line. Returns JSONL_LINE (with *line, *len set; the line is
 * NUL-terminated in place), JSONL_OVERLONG, or JSONL_NONE. A trailing "\r"
 * is removed; empty lines are skipped. */
int jsonl_next(struct jsonl *j, const char **line, size_t *len);
/* Bytes the reader holds that are not yet returned as lines; the caller
 * stops reading its fd while this is at the bound (backpressure). */
size_t jsonl_pending(const struct jsonl *j);

#endif
