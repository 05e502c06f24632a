/*
 * buf: the one growable byte buffer of the project, after git's strbuf.
 * Invariants: data is never NULL and always NUL-terminated; len never exceeds
 * max. Errors are sticky (hiredis): the first failed add is remembered in
 * err until the buffer is reset, so a caller that builds a frame with many
 * adds checks err once at the end instead of after every add.
 * Memory: the buffer owns data; buf_detach() hands it to the caller.
 */
#ifndef CHAT_BUF_H
#define CHAT_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;  /* contents, NUL-terminated, never NULL */
	size_t len;  /* bytes used, not counting the NUL */
	size_t cap;  /* bytes allocated, 0 while data points at the shared "" */
	size_t max;  /* largest len allowed; 0 means no limit */
	int err;     /* errno of the first failed add since the last reset, or 0 */
};

#define BUF_INIT(m) { buf_empty, 0, 0, (m), 0 }
extern char buf_empty[1];

/* Set up an empty buffer that may grow to max bytes (0: unlimited). */
void buf_init(struct buf *b, size_t max);
/* Free the contents; the buffer is empty and usable again. */
void buf_release(struct buf *b);
/* Make room for n more bytes. Returns 0, or -1 with errno ENOBUFS past max
 * or ENOMEM (and err set, if it was not already). */
int buf_grow(struct buf *b, size_t n);
/* Append n bytes / a string / a formatted string. Return 0 or -1 (see
 * buf_grow); on failure the buffer is unchanged. */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Empty the buffer, keeping its memory; err is cleared. */
void buf_reset(struct buf *b);
/* Hand the contents (malloc'd, NUL-terminated) to the caller and leave the
 * buffer empty. Never returns NULL except when out of memory. */
char *buf_detach(struct buf *b, size_t *len);

#endif
