/*
 * opt: parsing of option values shared by every program: integers with
 * bounds, sizes with K/M/G suffixes, durations, ADDR:PORT. Each parser
 * returns 0, or -1 with a reason in err (for the caller's usage message).
 */
#ifndef CHAT_OPT_H
#define CHAT_OPT_H

#include <stddef.h>
#include <stdint.h>

/* Decimal integer in [min, max]. */
int opt_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
	     char *err, size_t errlen);
/* Size in bytes: 123, 64K, 1M, 2G (powers of 1024), in [min, max]. */
int opt_size(const char *s, uint64_t min, uint64_t max, uint64_t *out,
	     char *err, size_t errlen);
/* Duration in milliseconds: 250ms, 30s, 5m, or a bare number of seconds,
 * in [min, max] milliseconds. */
int opt_duration_ms(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		    char *err, size_t errlen);
/* ADDR:PORT or :PORT (address defaults to 127.0.0.1) into host (hostlen
 * bytes) and port 0..65535 (0: the kernel picks one). "[::1]:80" is accepted too. */
int opt_addr(const char *s, char *host, size_t hostlen, int *port,
	     char *err, size_t errlen);

#endif
