/*
 * opt: option value parsers (see opt.h). They never print and never exit:
 * main() turns an error into the usage message and exit status 64.
 */
#include "opt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int opt_num(const char *s, uint64_t *v, const char **rest)
{
	char *end;
	unsigned long long n;

	/* strtoull() would take a sign and leading white space: digits only. */
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	*v = n;
	*rest = end;
	return 0;
}

static int opt_range(const char *s, uint64_t v, uint64_t min, uint64_t max,
		     uint64_t *out, char *err, size_t errlen)
{
	if (v < min || v > max) {
		snprintf(err, errlen, "'%s' is out of range (%llu to %llu)", s,
			 (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int opt_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
	     char *err, size_t errlen)
{
	const char *rest;
	uint64_t v;

	if (opt_num(s, &v, &rest) < 0 || *rest) {
		snprintf(err, errlen, "'%s' is not a number", s ? s : "");
		return -1;
	}
	return opt_range(s, v, min, max, out, err, errlen);
}

int opt_size(const char *s, uint64_t min, uint64_t max, uint64_t *out,
	     char *err, size_t errlen)
{
	const char *rest;
	uint64_t v, mul = 1;

	if (opt_num(s, &v, &rest) < 0)
		goto bad;
	switch (*rest) {
	case '\0': break;
	case 'k': case 'K': mul = 1024; rest++; break;
	case 'm': case 'M': mul = 1024 * 1024; rest++; break;
	case 'g': case 'G': mul = 1024ULL * 1024 * 1024; rest++; break;
	default: goto bad;
	}
	if (*rest == 'B' || *rest == 'b')
		rest++;
	if (*rest)
		goto bad;
	if (v > UINT64_MAX / mul)
		goto bad;
	return opt_range(s, v * mul, min, max, out, err, errlen);
bad:
	snprintf(err, errlen, "'%s' is not a size (like 4096, 64K, 1M)", s ? s : "");
	return -1;
}

int opt_duration_ms(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		    char *err, size_t errlen)
{
	const char *rest;
	uint64_t v, mul;

	if (opt_num(s, &v, &rest) < 0)
		goto bad;
	if (!strcmp(rest, "ms"))
		mul = 1;
	else if (!strcmp(rest, "s") || !*rest)
		mul = 1000;
	else if (!strcmp(rest, "m"))
		mul = 60000;
	else if (!strcmp(rest, "h"))
		mul = 3600000;
	else
		goto bad;
	if (v > UINT64_MAX / mul)
		goto bad;
	return opt_range(s, v * mul, min, max, out, err, errlen);
bad:
	snprintf(err, errlen, "'%s' is not a duration (like 500ms, 30s, 5m)",
		 s ? s : "");
	return -1;
}

int opt_addr(const char *s, char *host, size_t hostlen, int *port, char *err,
	     size_t errlen)
{
	const char *colon, *h = s;
	size_t hl;
	uint64_t p;

	if (!s || !(colon = strrchr(s, ':')))
		goto bad;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		h = s + 1;
		hl -= 2;
	} else if (memchr(s, ':', hl)) {
		goto bad; /* a bare IPv6 address needs brackets */
	}
	if (hl == 0) {
		h = "127.0.0.1";
		hl = strlen(h);
	}
	if (hl >= hostlen)
		goto bad;
	if (opt_uint(colon + 1, 0, 65535, &p, err, errlen) < 0)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not ADDR:PORT", s ? s : "");
	return -1;
}
