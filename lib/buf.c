/*
 * buf: growable, bounded byte buffer (see buf.h). Every line reader, frame
 * assembler and output queue of the project is built on it, so the bound
 * (max) lives here once instead of at each caller.
 */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char buf_empty[1];

void buf_init(struct buf *b, size_t max)
{
	b->data = buf_empty;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = 0;
}

void buf_release(struct buf *b)
{
	if (b->cap)
		free(b->data);
	buf_init(b, b->max);
}

/* Record a failure (the first one sticks) and report it. */
static int buf_fail(struct buf *b, int e)
{
	if (!b->err)
		b->err = e;
	errno = e;
	return -1;
}

int buf_grow(struct buf *b, size_t n)
{
	size_t want, ncap;
	char *p;

	if (b->max && (n > b->max || b->len > b->max - n))
		return buf_fail(b, ENOBUFS);
	if (n > SIZE_MAX - 1 - b->len)
		return buf_fail(b, ENOMEM);
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < want)
		ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
	if (b->max && ncap > b->max + 1)
		ncap = b->max + 1;
	p = b->cap ? realloc(b->data, ncap) : malloc(ncap);
	if (!p)
		return buf_fail(b, ENOMEM);
	if (!b->cap)
		p[0] = '\0';
	b->data = p;
	b->cap = ncap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return buf_fail(b, EINVAL);
	if (buf_grow(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return r;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->cap)
		b->data[0] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p;

	if (len)
		*len = b->len;
	if (!b->cap) {
		p = malloc(1);
		if (p)
			p[0] = '\0';
		return p;
	}
	p = b->data;
	buf_init(b, b->max);
	return p;
}
