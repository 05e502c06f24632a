/*
 * jwt: token verification and signing (see jwt.h). Only the header is
 * parsed before a signature checks (it names the alg and the kid that
 * choose the key); the payload, and so the claims, reach the JSON parser
 * only once a key of the set has verified the signature. The alg must be
 * the one the key's type takes, so no key is ever used for another alg.
 */
#include "jwt.h"

#include <fnmatch.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "jwt_key.h"

#define SUB_MAX 128        /* longest sub, in bytes */
#define LEEWAY_MAX 86400   /* a larger leeway counts as this (no overflow) */

const char *jwt_strerror(enum jwt_err e)
{
	switch (e) {
	case JWT_OK: return "ok";
	case JWT_MALFORMED: return "malformed token";
	case JWT_BAD_ALG: return "token algorithm not allowed for the key";
	case JWT_BAD_SIGNATURE: return "bad token signature";
	case JWT_EXPIRED: return "token expired";
	case JWT_NOT_YET_VALID: return "token not yet valid";
	case JWT_BAD_ISSUER: return "wrong token issuer";
	case JWT_BAD_AUDIENCE: return "wrong token audience";
	case JWT_UNKNOWN_KID: return "unknown token key id";
	}
	return "bad token";
}

struct jwt_opts jwt_opts_default(void)
{
	struct jwt_opts o = { NULL, NULL, JWT_LEEWAY_DEFAULT };

	return o;
}

static void claims_init(struct jwt_claims *c)
{
	memset(c, 0, sizeof(*c));
	c->nrooms = -1;
	c->npublish = -1;
}

void jwt_claims_free(struct jwt_claims *c)
{
	int i;

	free(c->sub);
	for (i = 0; i < c->nrooms; i++)
		free(c->rooms[i]);
	for (i = 0; i < c->npublish; i++)
		free(c->publish[i]);
	claims_init(c);
}

/* One base64url part of a token (at most JWT_MAX bytes) as JSON. */
static json_t *jwt_part(const char *p, size_t n)
{
	unsigned char dec[3 * (JWT_MAX / 4) + 3];
	long len;

	if (n > JWT_MAX)
		return NULL;
	len = b64url_decode(p, n, dec);
	if (len < 0)
		return NULL;
	return json_loadb((const char *)dec, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
}

/* A numeric date claim: 0 absent (*d untouched), 1 present, -1 not a
 * number. */
static int jwt_date(json_t *pl, const char *name, double *d)
{
	json_t *v = json_object_get(pl, name);

	if (!v)
		return 0;
	if (!json_is_number(v))
		return -1;
	*d = json_number_value(v);
	return 1;
}

/* Seconds as int64_t: converting an out-of-range double is undefined
 * (exp 1e300). */
static int64_t jwt_secs(double d)
{
	if (d >= 9.2e18)
		return INT64_MAX;
	if (d <= -9.2e18)
		return INT64_MIN;
	return (int64_t)d;
}

/* A claim of room patterns into pat[] (*n set, -1 when absent). Returns
 * 0, or -1 when it is not an array of at most JWT_ROOMS_MAX strings or
 * memory runs out (what was copied is counted in *n, to be freed). */
static int jwt_patterns(json_t *pl, const char *name, char **pat, int *n)
{
	json_t *v = json_object_get(pl, name), *r;
	size_t i;

	if (!v)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > JWT_ROOMS_MAX)
		return -1;
	*n = 0;
	json_array_foreach(v, i, r) {
		if (!json_is_string(r))
			return -1;
		pat[*n] = strdup(json_string_value(r));
		if (!pat[*n])
			return -1;
		(*n)++;
	}
	return 0;
}

/* The claims of a verified payload into c. */
static enum jwt_err jwt_claims(json_t *pl, const struct jwt_opts *o, int64_t now,
			       struct jwt_claims *c)
{
	double exp = 0, nbf = 0, iat = 0;
	int has_exp, has_nbf, has_iat;
	int64_t leeway = o->leeway < 0 ? 0 : o->leeway > LEEWAY_MAX ? LEEWAY_MAX
								    : o->leeway;
	json_t *v, *iss, *aud, *a;
	bool aud_ok;
	size_t i;

	if (!json_is_object(pl))
		return JWT_MALFORMED;
	v = json_object_get(pl, "sub");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > SUB_MAX)
		return JWT_MALFORMED;
	has_exp = jwt_date(pl, "exp", &exp);
	has_nbf = jwt_date(pl, "nbf", &nbf);
	has_iat = jwt_date(pl, "iat", &iat);
	if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
		return JWT_MALFORMED;
	iss = json_object_get(pl, "iss");
	if (iss && !json_is_string(iss))
		return JWT_MALFORMED;
	aud = json_object_get(pl, "aud");
	if (json_is_array(aud)) {
		if (json_array_size(aud) == 0 || json_array_size(aud) > JWT_AUD_MAX)
			return JWT_MALFORMED;
		json_array_foreach(aud, i, a)
			if (!json_is_string(a))
				return JWT_MALFORMED;
	} else if (aud && !json_is_string(aud)) {
		return JWT_MALFORMED;
	}
	c->sub = strdup(json_string_value(v));
	if (!c->sub || jwt_patterns(pl, "rooms", c->rooms, &c->nrooms) < 0 ||
	    jwt_patterns(pl, "publish", c->publish, &c->npublish) < 0)
		return JWT_MALFORMED; /* out of memory too: refuse, never half-fill */

	/* Compared as doubles, so that 1e300 or -1e300 cannot overflow. */
	if (has_exp && exp <= (double)(now - leeway))
		return JWT_EXPIRED;
	if ((has_nbf && nbf > (double)(now + leeway)) ||
	    (has_iat && iat > (double)(now + leeway)))
		return JWT_NOT_YET_VALID;
	if (o->issuer && (!iss || strcmp(json_string_value(iss), o->issuer)))
		return JWT_BAD_ISSUER;
	/* RFC 7519 4.1.3: a token meant for named audiences is refused by a
	 * verifier that is none of them, or does not know its own name. */
	if (aud) {
		aud_ok = false;
		if (o->audience && json_is_string(aud))
			aud_ok = !strcmp(json_string_value(aud), o->audience);
		else if (o->audience)
			json_array_foreach(aud, i, a)
				aud_ok = aud_ok || !strcmp(json_string_value(a),
							   o->audience);
		if (!aud_ok)
			return JWT_BAD_AUDIENCE;
	} else if (o->audience) {
		return JWT_BAD_AUDIENCE;
	}
	c->exp = has_exp ? jwt_secs(exp) : 0;
	c->nbf = has_nbf ? jwt_secs(nbf) : 0;
	c->iat = has_iat ? jwt_secs(iat) : 0;
	return JWT_OK;
}

/* Whether key k is a candidate for a token with kid (NULL: none), given
 * whether any key of the set carries that kid. */
static bool jwt_candidate(const struct jwt_key *k, const char *kid, bool kid_known)
{
	if (!kid)
		return true;
	if (kid_known)
		return k->kid && !strcmp(k->kid, kid);
	return !k->kid;
}

enum jwt_err jwt_verify_keys(const char *token, size_t len,
			     const struct jwt_keys *keys,
			     const struct jwt_opts *opts, int64_t now,
			     struct jwt_claims *c)
{
	struct jwt_opts dflt = jwt_opts_default();
	unsigned char sig[3 * (JWT_MAX / 4) + 3];
	const char *d1, *d2, *kid = NULL;
	json_t *hdr = NULL, *pl = NULL, *v;
	enum jwt_err e = JWT_MALFORMED;
	bool kid_known = false, verified = false;
	int kty, i, ncand = 0, nfit = 0;
	long siglen;

	claims_init(c);
	if (!opts)
		opts = &dflt;
	if (!keys || len == 0 || len > JWT_MAX || memchr(token, '\0', len))
		return JWT_MALFORMED;
	d1 = memchr(token, '.', len);
	if (!d1)
		return JWT_MALFORMED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return JWT_MALFORMED;

	hdr = jwt_part(token, (size_t)(d1 - token));
	if (!json_is_object(hdr))
		goto out;
	v = json_object_get(hdr, "alg");
	kty = json_is_string(v) ? jwt_alg_kty(json_string_value(v)) : -1;
	if (kty < 0) {
		e = JWT_BAD_ALG; /* none, HS512, hs256, missing... */
		goto out;
	}
	v = json_object_get(hdr, "kid");
	if (v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > JWT_KID_MAX)
			goto out;
		kid = json_string_value(v);
	}
	/* RFC 7515 4.1.11: extensions we do not understand must be refused. */
	if (json_object_get(hdr, "crit"))
		goto out;

	for (i = 0; kid && i < keys->n; i++)
		kid_known = kid_known || (keys->k[i].kid && !strcmp(keys->k[i].kid, kid));
	siglen = b64url_decode(d2 + 1, (size_t)(token + len - (d2 + 1)), sig);
	for (i = 0; i < keys->n && !verified; i++) {
		const struct jwt_key *k = &keys->k[i];

		if (!jwt_candidate(k, kid, kid_known))
			continue;
		ncand++;
		if ((int)k->kty != kty)
			continue;
		nfit++;
		verified = siglen >= 0 &&
			   jwt_key_verify(k, token, (size_t)(d2 - token), sig,
					  (size_t)siglen);
	}
	if (!verified) {
		e = ncand == 0 ? JWT_UNKNOWN_KID : nfit == 0 ? JWT_BAD_ALG
							      : JWT_BAD_SIGNATURE;
		goto out;
	}

	pl = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
	e = pl ? jwt_claims(pl, opts, now, c) : JWT_MALFORMED;
	if (e != JWT_OK)
		jwt_claims_free(c);
out:
	json_decref(hdr);
	json_decref(pl);
	return e;
}

enum jwt_err jwt_verify(const char *token, size_t len, const void *secret,
			size_t secretlen, int64_t now, struct jwt_claims *c)
{
	struct jwt_opts o = { NULL, NULL, 0 };
	struct jwt_keys k;

	/* A set on the stack: the secret is borrowed, not copied. */
	memset(&k, 0, sizeof(k));
	k.n = 1;
	k.k[0].kty = JWT_KTY_OCT;
	k.k[0].secret = (unsigned char *)secret;
	k.k[0].secretlen = secretlen;
	return jwt_verify_keys(token, len, &k, &o, now, c);
}

bool jwt_room_allowed(const struct jwt_claims *c, const char *room)
{
	int i;

	if (c->nrooms < 0)
		return true;
	for (i = 0; i < c->nrooms; i++)
		if (fnmatch(c->rooms[i], room, 0) == 0)
			return true;
	return false;
}

bool jwt_publish_allowed(const struct jwt_claims *c, const char *room)
{
	int i;

	if (!jwt_room_allowed(c, room))
		return false;
	if (c->npublish < 0)
		return true;
	for (i = 0; i < c->npublish; i++)
		if (fnmatch(c->publish[i], room, 0) == 0)
			return true;
	return false;
}

/* ---- signing --------------------------------------------------------- */

/* Set name in o to the JSON array of strings in text. Returns 0 or -1. */
static int jwt_set_patterns(json_t *o, const char *name, const char *text)
{
	json_t *a = json_loads(text, 0, NULL), *r;
	size_t i;
	int rc = -1;

	if (!json_is_array(a) || json_array_size(a) > JWT_ROOMS_MAX)
		goto out;
	json_array_foreach(a, i, r)
		if (!json_is_string(r))
			goto out;
	rc = json_object_set(o, name, a);
out:
	json_decref(a);
	return rc;
}

char *jwt_sign_spec(const struct jwt_spec *s, const void *key, size_t keylen,
		    char *err, size_t errlen)
{
	const char *alg = s->alg ? s->alg : "HS256";
	unsigned char sig[JWT_SIG_MAX];
	unsigned int maclen = 0;
	json_t *hdr = NULL, *pl = NULL;
	char *hs = NULL, *ps = NULL, *t = NULL;
	size_t hn, pn, o;
	long siglen;
	int kty = jwt_alg_kty(alg);

	snprintf(err, errlen, "out of memory");
	if (kty < 0) {
		snprintf(err, errlen, "alg '%s' not supported (HS256, RS256, ES256)", alg);
		return NULL;
	}
	if (!s->sub || !*s->sub || (kty == JWT_KTY_OCT && keylen == 0)) {
		snprintf(err, errlen, !s->sub || !*s->sub ? "no sub" : "empty secret");
		return NULL;
	}
	hdr = json_pack("{s:s,s:s}", "alg", alg, "typ", "JWT");
	pl = json_pack("{s:s}", "sub", s->sub);
	if (!hdr || !pl)
		goto out;
	if ((s->kid && json_object_set_new(hdr, "kid", json_string(s->kid))) ||
	    (s->iss && json_object_set_new(pl, "iss", json_string(s->iss))) ||
	    (s->aud && json_object_set_new(pl, "aud", json_string(s->aud))) ||
	    (s->exp && json_object_set_new(pl, "exp", json_integer(s->exp))) ||
	    (s->nbf && json_object_set_new(pl, "nbf", json_integer(s->nbf))) ||
	    (s->iat && json_object_set_new(pl, "iat", json_integer(s->iat))))
		goto out;
	if ((s->rooms_json && jwt_set_patterns(pl, "rooms", s->rooms_json) < 0) ||
	    (s->publish_json && jwt_set_patterns(pl, "publish", s->publish_json) < 0)) {
		snprintf(err, errlen, "rooms or publish is not a JSON array of at most "
			 "%d strings", JWT_ROOMS_MAX);
		goto out;
	}
	hs = json_dumps(hdr, JSON_COMPACT);
	ps = json_dumps(pl, JSON_COMPACT);
	if (!hs || !ps)
		goto out;
	hn = strlen(hs);
	pn = strlen(ps);
	/* base64url of each part, two dots, the signature, the NUL */
	t = malloc(4 * ((hn + 2) / 3) + 4 * ((pn + 2) / 3) + 4 * (JWT_SIG_MAX / 3 + 1) + 3);
	if (!t)
		goto out;
	o = b64url_encode(hs, hn, t);
	t[o++] = '.';
	o += b64url_encode(ps, pn, t + o);
	if (kty == JWT_KTY_OCT) {
		siglen = HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)t, o, sig,
			      &maclen) ? (long)maclen : -1;
	} else {
		siglen = jwt_pem_sign(alg, key, keylen, t, o, sig, err, errlen);
	}
	if (siglen < 0) {
		free(t);
		t = NULL;
		goto out;
	}
	t[o++] = '.';
	b64url_encode(sig, (size_t)siglen, t + o);
out:
	free(hs);
	free(ps);
	json_decref(hdr);
	json_decref(pl);
	return t;
}

char *jwt_sign(const char *sub, int64_t exp, const char *rooms_json,
	       const void *secret, size_t secretlen)
{
	struct jwt_spec s = { .alg = "HS256", .sub = sub, .exp = exp,
			      .rooms_json = rooms_json };
	char err[128];

	return jwt_sign_spec(&s, secret, secretlen, err, sizeof(err));
}
