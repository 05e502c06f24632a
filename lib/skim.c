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
	const char *p = f->v, *end;
	bool neg = false;
	int64_t n = 0;

	if (!p || !f->vlen)
		return false;
	end = p + f->vlen;
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

int skim_array_next(const char *p, size_t len, size_t *pos, const char **v,
		    size_t *vlen)
{
	const char *end = p + len, *q = p + *pos, *e;

	if (*pos == 0) {
		q = skim_ws(p, end);
		if (q >= end || *q != '[')
			return -1;
		q = skim_ws(q + 1, end);
		if (q < end && *q == ']') {
			*pos = (size_t)(q + 1 - p);
			return 0;
		}
	} else {
		q = skim_ws(q, end);
		if (q < end && *q == ']')
			return 0;
		if (q >= end || *q != ',')
			return -1;
		q = skim_ws(q + 1, end);
	}
	e = skim_value(q, end);
	if (!e || e == q)
		return -1;
	*v = q;
	*vlen = (size_t)(e - q);
	*pos = (size_t)(e - p);
	return 1;
}

/* ---- validation ---- */

/* One UTF-8 sequence at p (p < end, *p >= 0x80): its length, or 0 when it
 * is not a valid, shortest-form encoding of a scalar value. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n, i;
	unsigned cp;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* p at '"': past the closing quote of a valid string, or NULL. */
static const unsigned char *valid_string(const unsigned char *p, const unsigned char *end)
{
	for (p++; p < end;) {
		unsigned char c = *p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (p + 1 >= end)
				return NULL;
			switch (p[1]) {
			case '"': case '\\': case '/': case 'b': case 'f':
			case 'n': case 'r': case 't':
				p += 2;
				break;
			case 'u':
				if (end - p < 6 || !is_hex(p[2]) || !is_hex(p[3]) ||
				    !is_hex(p[4]) || !is_hex(p[5]))
					return NULL;
				p += 6;
				break;
			default:
				return NULL;
			}
			continue;
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		{
			size_t n = utf8_seq(p, end);

			if (!n)
				return NULL;
			p += n;
		}
	}
	return NULL;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static const unsigned char *valid_number(const unsigned char *p, const unsigned char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < end && is_digit(*p))
			p++;
	} else {
		return NULL;
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	return p;
}

static const unsigned char *valid_ws(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const unsigned char *valid_value(const unsigned char *p, const unsigned char *end,
					int depth);

/* p at '{' or '[': past its closing bracket, or NULL. */
static const unsigned char *valid_container(const unsigned char *p,
					    const unsigned char *end, int depth)
{
	bool object = *p == '{';
	unsigned char close = object ? '}' : ']';

	if (depth >= SKIM_DEPTH_MAX)
		return NULL;
	p = valid_ws(p + 1, end);
	if (p < end && *p == close)
		return p + 1;
	for (;;) {
		if (object) {
			if (p >= end || *p != '"' || !(p = valid_string(p, end)))
				return NULL;
			p = valid_ws(p, end);
			if (p >= end || *p != ':')
				return NULL;
			p = valid_ws(p + 1, end);
		}
		p = valid_value(p, end, depth + 1);
		if (!p)
			return NULL;
		p = valid_ws(p, end);
		if (p < end && *p == ',') {
			p = valid_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == close)
			return p + 1;
		return NULL;
	}
}

static const unsigned char *valid_literal(const unsigned char *p, const unsigned char *end,
					  const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - p) < n || memcmp(p, lit, n))
		return NULL;
	return p + n;
}

static const unsigned char *valid_value(const unsigned char *p, const unsigned char *end,
					int depth)
{
	if (p >= end)
		return NULL;
	switch (*p) {
	case '{': case '[': return valid_container(p, end, depth);
	case '"': return valid_string(p, end);
	case 't': return valid_literal(p, end, "true");
	case 'f': return valid_literal(p, end, "false");
	case 'n': return valid_literal(p, end, "null");
	default: return valid_number(p, end);
	}
}

bool skim_valid(const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p, *end = s + len;

	s = valid_value(valid_ws(s, end), end, 0);
	return s && valid_ws(s, end) == end;
}
