/*
 * skim: a JSON object walker for bench (see skim.h). It skips values by
 * their shape: strings with escapes, nested objects and arrays by depth,
 * numbers and literals up to the next delimiter.
 */
#include "skim.h"

#include <string.h>

static const char *skim_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': return the byte after the closing quote, or NULL. */
static const char *skim_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skim_value(const char *p, const char *end)
{
	int depth = 0;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return skim_string(p, end);
	if (*p != '{' && *p != '[') {
		for (; p < end; p++) {
			switch (*p) {
			case ',': case '}': case ']':
			case ' ': case '\t': case '\r': case '\n':
				return p;
			default:
				break;
			}
		}
		return p;
	}
	while (p < end) {
		switch (*p) {
		case '"':
			p = skim_string(p, end);
			if (!p)
				return NULL;
			continue;
		case '{': case '[':
			depth++;
			break;
		case '}': case ']':
			if (--depth == 0)
				return p + 1;
			break;
		default:
			break;
		}
		p++;
	}
	return NULL;
}

int skim_object(const char *p, size_t len, struct skim_field *f, int nf)
{
	const char *end = p + len, *k, *kend, *v;
	int i;

	for (i = 0; i < nf; i++)
		f[i].v = NULL;
	p = skim_ws(p, end);
	if (p >= end || *p != '{')
		return -1;
	p = skim_ws(p + 1, end);
	if (p < end && *p == '}')
		return 0;
	while (p < end) {
		if (*p != '"')
			return -1;
		k = p + 1;
		p = skim_string(p, end);
		if (!p)
			return -1;
		kend = p - 1;
		p = skim_ws(p, end);
		if (p >= end || *p != ':')
			return -1;
		p = skim_ws(p + 1, end);
		v = p;
		p = skim_value(p, end);
		if (!p || p == v)
			return -1;
		for (i = 0; i < nf; i++) {
			size_t n = strlen(f[i].name);

			if (!f[i].v && (size_t)(kend - k) == n &&
			    !memcmp(k, f[i].name, n)) {
				f[i].v = v;
				f[i].vlen = (size_t)(p - v);
				break;
			}
		}
		p = skim_ws(p, end);
		if (p < end && *p == ',') {
			p = skim_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			return 0;
		return -1;
	}
	return -1;
}

bool skim_int(const struct skim_field *f, int64_t *out)
{
	const char *p = f->v, *end = f->v + f->vlen;
	bool neg = false;
	int64_t n = 0;

	if (!p || p == end)
		return false;
	if (*p == '"') { /* a ref is a string holding a number */
		if (f->vlen < 3 || end[-1] != '"')
			return false;
		p++;
		end--;
	}
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p == end)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (*p - '0');
	}
	*out = neg ? -n : n;
	return true;
}

bool skim_str_is(const struct skim_field *f, const char *s)
{
	size_t n = strlen(s);

	return f->v && f->vlen == n + 2 && f->v[0] == '"' &&
	       !memcmp(f->v + 1, s, n) && f->v[n + 1] == '"';
}
