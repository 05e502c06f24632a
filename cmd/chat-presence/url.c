/*
 * url: the Redis URL, redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], the form
 * redis-cli -u and most clients take. Only the password is secret: error
 * messages never quote it, and rurl_masked() hides it in logs.
 */
#include "presence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy s[0..n) into out (outlen bytes) decoding %XX. Returns 0, or -1 on a
 * bad escape, a NUL byte or when it does not fit. */
static int url_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= n)
				return -1;
			h = hexval(s[i + 1]);
			l = hexval(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static int url_number(const char *s, size_t n, long max, int *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 9)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (int)v;
	return 0;
}

int rurl_parse(const char *s, struct rurl *u, char *err, size_t errlen)
{
	const char *p, *at, *end, *host, *hend, *colon, *slash;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(s, "redis://", 8) != 0) {
		snprintf(err, errlen, "not a redis:// URL");
		return -1;
	}
	p = s + 8;
	end = p + strlen(p);
	slash = strchr(p, '/');
	if (!slash)
		slash = end;
	/* The password may hold '@' only escaped; the last '@' before the
	 * path ends the user info. */
	at = NULL;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			at = q;
	host = p;
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (!colon) {
			snprintf(
			    err, errlen,
			    "user info without ':' (use "
			    "redis://:PASSWORD@HOST or redis://USER:PASSWORD@HOST)");
			return -1;
		}
		if (url_decode(p, (size_t)(colon - p), u->user, sizeof(u->user)) < 0 ||
		    url_decode(colon + 1, (size_t)(at - colon - 1), u->password,
			       sizeof(u->password)) < 0) {
			snprintf(err, errlen,
				 "bad user name or password "
				 "(escapes, length)");
			return -1;
		}
		if (!u->password[0]) {
			snprintf(err, errlen, "empty password");
			return -1;
		}
		host = at + 1;
	}
	hend = slash;
	if (host < hend && *host == '[') {
		const char *rb = memchr(host, ']', (size_t)(hend - host));

		if (!rb) {
			snprintf(err, errlen, "unclosed '[' in the host");
			return -1;
		}
		if ((size_t)(rb - host - 1) >= sizeof(u->host) || rb == host + 1)
			goto bad_host;
		memcpy(u->host, host + 1, (size_t)(rb - host - 1));
		colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != hend)
			goto bad_host;
	} else {
		colon = memchr(host, ':', (size_t)(hend - host));
		if ((colon ? colon : hend) == host)
			goto bad_host;
		if ((size_t)((colon ? colon : hend) - host) >= sizeof(u->host))
			goto bad_host;
		memcpy(u->host, host, (size_t)((colon ? colon : hend) - host));
	}
	if (colon &&
	    (url_number(colon + 1, (size_t)(hend - colon - 1), 65535, &u->port) < 0 ||
	     u->port == 0)) {
		snprintf(err, errlen, "bad port");
		return -1;
	}
	if (slash < end && slash + 1 < end &&
	    url_number(slash + 1, (size_t)(end - slash - 1), 1000000, &u->db) < 0) {
		snprintf(err, errlen, "bad database number");
		return -1;
	}
	return 0;
bad_host:
	snprintf(err, errlen, "bad or missing host");
	return -1;
}

void rurl_masked(const struct rurl *u, char *out, size_t outlen)
{
	bool v6 = strchr(u->host, ':') != NULL;

	snprintf(out, outlen, "redis://%s%s%s%s%s%s:%d/%d", u->user,
		 u->password[0] ? ":***" : "", u->password[0] ? "@" : "",
		 v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, u->db);
}
