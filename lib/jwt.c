/*
 * jwt: HS256 token verification and signing (see jwt.h). The signature is
 * checked with a constant-time comparison before the payload is parsed, so
 * an attacker's JSON never reaches the parser without the secret.
 */
#include "jwt.h"

#include <fnmatch.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"


const char *jwt_strerror(enum jwt_err e)
{
	switch (e) {
	case JWT_OK: return "ok";
	case JWT_MALFORMED: return "malformed token";
	case JWT_BAD_ALG: return "token algorithm is not HS256";
	case JWT_BAD_SIGNATURE: return "bad token signature";
	case JWT_EXPIRED: return "token expired";
	}
	return "bad token";
}

void jwt_claims_free(struct jwt_claims *c)
{
	int i;

	free(c->sub);
	for (i = 0; i < c->nrooms; i++)
		free(c->rooms[i]);
	memset(c, 0, sizeof(*c));
	c->nrooms = -1;
}

static json_t *jwt_part(const char *p, size_t n)
{
	unsigned char dec[JWT_MAX];
	long len;

	if (n > JWT_MAX / 4 * 3 - 4)
		return NULL;
	len = b64url_decode(p, n, dec);
	if (len < 0)
		return NULL;
	return json_loadb((const char *)dec, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
}

enum jwt_err jwt_verify(const char *token, size_t len, const void *secret,
			size_t secretlen, int64_t now, struct jwt_claims *c)
{
	const char *d1, *d2;
	unsigned char mac[EVP_MAX_MD_SIZE], sig[64];
	unsigned int maclen = 0;
	json_t *hdr = NULL, *pl = NULL, *v;
	enum jwt_err e = JWT_MALFORMED;
	long siglen;

	memset(c, 0, sizeof(*c));
	c->nrooms = -1;
	if (len == 0 || len > JWT_MAX || memchr(token, '\0', len))
		return JWT_MALFORMED;
	d1 = memchr(token, '.', len);
	if (!d1)
		return JWT_MALFORMED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return JWT_MALFORMED;

	hdr = jwt_part(token, (size_t)(d1 - token));
	if (!hdr || !json_is_object(hdr))
		goto out;
	v = json_object_get(hdr, "alg");
	if (!json_is_string(v) || strcmp(json_string_value(v), "HS256")) {
		e = JWT_BAD_ALG;
		goto out;
	}
	if ((size_t)(token + len - (d2 + 1)) > 86) /* 32 bytes in base64url is 43 */
		goto out_sig;
	siglen = b64url_decode(d2 + 1, (size_t)(token + len - (d2 + 1)), sig);
	if (!HMAC(EVP_sha256(), secret, (int)secretlen, (const unsigned char *)token,
		  (size_t)(d2 - token), mac, &maclen))
		goto out;
	if (siglen != (long)maclen || CRYPTO_memcmp(sig, mac, maclen)) {
out_sig:
		e = JWT_BAD_SIGNATURE;
		goto out;
	}

	pl = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
	if (!pl || !json_is_object(pl))
		goto out;
	v = json_object_get(pl, "sub");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > 128)
		goto out;
	c->sub = strdup(json_string_value(v));
	if (!c->sub)
		goto out; /* out of memory: refuse rather than half-fill c */
	v = json_object_get(pl, "exp");
	if (v) {
		double d;

		if (!json_is_number(v))
			goto out_claims;
		/* Compare as a double: converting an out-of-range double to
		 * int64_t is undefined (exp 1e300). */
		d = json_number_value(v);
		if (d <= (double)now) {
			e = JWT_EXPIRED;
			goto out_claims;
		}
		c->exp = d >= 9.2e18 ? INT64_MAX : (int64_t)d;
	}
	v = json_object_get(pl, "rooms");
	if (v) {
		size_t i;
		json_t *r;

		if (!json_is_array(v) || json_array_size(v) > JWT_ROOMS_MAX)
			goto out_claims;
		c->nrooms = 0;
		json_array_foreach(v, i, r) {
			if (!json_is_string(r))
				goto out_claims;
			c->rooms[c->nrooms] = strdup(json_string_value(r));
			if (!c->rooms[c->nrooms])
				goto out_claims;
			c->nrooms++;
		}
	}
	e = JWT_OK;
	goto out;
out_claims:
	jwt_claims_free(c);
out:
	json_decref(hdr);
	json_decref(pl);
	return e;
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

char *jwt_sign(const char *sub, int64_t exp, const char *rooms_json,
	       const void *secret, size_t secretlen)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	json_t *pl, *rooms = NULL;
	char *pls = NULL, *tok = NULL;
	size_t pn, o;

	pl = json_pack("{s:s}", "sub", sub);
	if (!pl)
		return NULL;
	if (exp)
		json_object_set_new(pl, "exp", json_integer(exp));
	if (rooms_json) {
		rooms = json_loads(rooms_json, 0, NULL);
		if (!json_is_array(rooms))
			goto out;
		json_object_set(pl, "rooms", rooms);
	}
	pls = json_dumps(pl, JSON_COMPACT);
	if (!pls)
		goto out;
	pn = strlen(pls);
	tok = malloc((sizeof(hdr) + pn + 64) * 2);
	if (!tok)
		goto out;
	o = b64url_encode(hdr, sizeof(hdr) - 1, tok);
	tok[o++] = '.';
	o += b64url_encode(pls, pn, tok + o);
	if (!HMAC(EVP_sha256(), secret, (int)secretlen, (unsigned char *)tok, o,
		  mac, &maclen)) {
		free(tok);
		tok = NULL;
		goto out;
	}
	tok[o++] = '.';
	b64url_encode(mac, maclen, tok + o);
out:
	json_decref(rooms);
	json_decref(pl);
	free(pls);
	return tok;
}
