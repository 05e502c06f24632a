/*
 * skim: a JSON object walker (see skim.h). It skips values by
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

/* One member of an object, as skim_walk() finds it. */
struct skim_member {
	const char *k;      /* key, after its opening quote */
	size_t klen;        /* key length, without quotes */
	const char *m;      /* the member's first byte (the key's quote) */
	const char *v;      /* its value's first byte */
	const char *vend;   /* one past the value */
};

/* Walk the top-level object in p[0..len), calling fn for each member in
 * order. Returns 0, or -1 when p is not an object. */
static int skim_walk(const char *p, size_t len,
		     void (*fn)(const struct skim_member *, void *), void *arg)
{
	const char *end = p + len;
	struct skim_member sm;

	p = skim_ws(p, end);
	if (p >= end || *p != '{')
		return -1;
	p = skim_ws(p + 1, end);
	if (p < end && *p == '}')
		return 0;
	while (p < end) {
		if (*p != '"')
			return -1;
		sm.m = p;
		sm.k = p + 1;
		p = skim_string(p, end);
		if (!p)
			return -1;
		sm.klen = (size_t)(p - 1 - sm.k);
		p = skim_ws(p, end);
		if (p >= end || *p != ':')
			return -1;
		p = skim_ws(p + 1, end);
		sm.v = p;
		p = skim_value(p, end);
		if (!p || p == sm.v)
			return -1;
		sm.vend = p;
		fn(&sm, arg);
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

struct skim_find {
	struct skim_field *f;
	int nf;
};

static void skim_find_one(const struct skim_member *sm, void *arg)
{
	struct skim_find *sf = arg;
	int i;

	for (i = 0; i < sf->nf; i++) {
		struct skim_field *f = &sf->f[i];
		size_t n = strlen(f->name);

		if (!f->v && sm->klen == n && !memcmp(sm->k, f->name, n)) {
			f->v = sm->v;
			f->vlen = (size_t)(sm->vend - sm->v);
			f->m = sm->m;
			f->mlen = (size_t)(sm->vend - sm->m);
			break;
		}
	}
}

int skim_object(const char *p, size_t len, struct skim_field *f, int nf)
{
	struct skim_find sf = { f, nf };
	int i;

	for (i = 0; i < nf; i++) {
		f[i].v = f[i].m = NULL;
		f[i].vlen = f[i].mlen = 0;
	}
	return skim_walk(p, len, skim_find_one, &sf);
}

struct skim_copy {
	const char *const *drop;  /* names to leave out */
	int ndrop;
	struct buf *out;
	bool first;               /* no member written yet */
	int dropped;              /* members left out */
	int err;                  /* out was full */
};

static void skim_copy_one(const struct skim_member *sm, void *arg)
{
	struct skim_copy *sc = arg;
	int i;

	for (i = 0; i < sc->ndrop; i++) {
		size_t n = strlen(sc->drop[i]);

		if (sm->klen == n && !memcmp(sm->k, sc->drop[i], n)) {
			sc->dropped++;
			return;
		}
	}
	if ((!sc->first && buf_add(sc->out, ",", 1) < 0) ||
	    buf_add(sc->out, sm->m, (size_t)(sm->vend - sm->m)) < 0)
		sc->err = -1;
	sc->first = false;
}

int skim_without(const char *p, size_t len, const char *const *drop, int ndrop,
		 struct buf *out)
{
	struct skim_copy sc = { drop, ndrop, out, true, 0, 0 };
	size_t old = out->len;

	if (buf_add(out, "{", 1) < 0 || skim_walk(p, len, skim_copy_one, &sc) < 0 ||
	    sc.err < 0 || buf_add(out, "}", 1) < 0) {
		out->len = old;
		out->data[old] = '\0';
		return -1;
	}
	return sc.dropped;
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
