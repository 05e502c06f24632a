/*
 * test_jwt: HS256 tokens: sign and verify round trip, each refusal with its
 * own code (bad signature, expired, alg none, malformed, truncated), the
 * rooms claim with fnmatch patterns, and base64url at every length 0..64.
 * Then RS256 and ES256 (keys made here, tokens signed here with OpenSSL
 * directly, not only by jwt_sign_spec): PEM and JWKS key sets, kid
 * selection, alg confusion, ES256 signatures of the wrong form, tokens at
 * exactly JWT_MAX bytes, every claim refusal (nbf, iat, iss, aud, leeway),
 * the publish claim, and the key file parser's refusals.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "b64url.h"
#include "jwt.h"
#include "testhelp.h"

#define SECRET "s3cret-for-tests"
#define NOW 1700000000LL

/* A token of any header and payload text, signed with SECRET. */
static char *forge(const char *hdr, const char *payload, const char *secret)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t hn = strlen(hdr), pn = strlen(payload), o;
	char *t = malloc(2 * (hn + pn) + 128);

	o = b64url_encode(hdr, hn, t);
	t[o++] = '.';
	o += b64url_encode(payload, pn, t + o);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)t, o, mac, &maclen);
	t[o++] = '.';
	b64url_encode(mac, maclen, t + o);
	return t;
}

static enum jwt_err verify(const char *tok, struct jwt_claims *c)
{
	return jwt_verify(tok, strlen(tok), SECRET, strlen(SECRET), NOW, c);
}

/* Verify a token forged from hdr and payload; the claims are freed. */
static enum jwt_err verify_forged(const char *hdr, const char *payload)
{
	struct jwt_claims c;
	char *t = forge(hdr, payload, SECRET);
	enum jwt_err e = verify(t, &c);

	jwt_claims_free(&c);
	free(t);
	return e;
}

static int empty_claims(const struct jwt_claims *c)
{
	return c->sub == NULL && c->exp == 0 && c->nrooms == -1;
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* ---- RS256, ES256, key sets, claims ------------------------------------ */

static EVP_PKEY *rsa_key, *rsa_key2, *ec_key, *ec_key2;
static char *rsa_pub, *rsa_priv, *rsa2_pub, *ec_pub, *ec_priv, *ec2_pub;

/* The PEM text of a key's public or private half, malloc'd. */
static char *pem_of(EVP_PKEY *pk, int private)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	if (private)
		PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_PUBKEY(b, pk);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

/* A token of header and payload text signed with pk by OpenSSL here (not by
 * lib/jwt): RS256 for an RSA key, ES256 (raw r||s) for an EC key, unless
 * der, which leaves the ES256 signature in DER as OpenSSL makes it. */
static char *forge_pk(const char *hdr, const char *payload, EVP_PKEY *pk, int der)
{
	unsigned char sig[1024], raw[64];
	size_t hn = strlen(hdr), pn = strlen(payload), o, sl = sizeof(sig);
	char *t = malloc(2 * (hn + pn) + 2048);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const unsigned char *p = sig;
	ECDSA_SIG *es;

	o = b64url_encode(hdr, hn, t);
	t[o++] = '.';
	o += b64url_encode(payload, pn, t + o);
	EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk);
	EVP_DigestSign(md, sig, &sl, (unsigned char *)t, o);
	EVP_MD_CTX_free(md);
	t[o++] = '.';
	if (EVP_PKEY_is_a(pk, "EC") && !der) {
		es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
		ECDSA_SIG_free(es);
		b64url_encode(raw, 64, t + o);
	} else {
		b64url_encode(sig, sl, t + o);
	}
	return t;
}

/* A token whose signature part is replaced by the base64url of n bytes. */
static char *with_sig(const char *tok, const unsigned char *sig, size_t n)
{
	size_t h = (size_t)(strrchr(tok, '.') - tok) + 1;
	char *t = malloc(h + 4 * n / 3 + 8);

	memcpy(t, tok, h);
	b64url_encode(sig, n, t + h);
	return t;
}

static struct jwt_keys *keys_of(const char *text)
{
	char err[256];
	struct jwt_keys *k = jwt_keys_parse(text, strlen(text), err, sizeof(err));

	if (!k)
		printf("# jwt_keys_parse: %s\n", err);
	return k;
}

/* Verify tok against k with opts; the claims are freed. */
static enum jwt_err vk(const char *tok, const struct jwt_keys *k,
		       const struct jwt_opts *o)
{
	struct jwt_claims c;
	enum jwt_err e = jwt_verify_keys(tok, strlen(tok), k, o, NOW, &c);

	if (e != JWT_OK && (c.sub || c.nrooms != -1 || c.npublish != -1))
		e = (enum jwt_err)99; /* a refusal must leave empty claims */
	jwt_claims_free(&c);
	return e;
}

/* forge_pk, verified against k, the token freed. */
static enum jwt_err vk_forged(const char *hdr, const char *payload, EVP_PKEY *pk,
			      const struct jwt_keys *k, const struct jwt_opts *o)
{
	char *t = forge_pk(hdr, payload, pk, 0);
	enum jwt_err e = vk(t, k, o);

	free(t);
	return e;
}

/* The JWK member text of one key: RSA n/e or EC x/y, with kid. */
static char *jwk_of(EVP_PKEY *pk, const char *kid, const char *extra)
{
	unsigned char buf[1024];
	char a[1500], b[200], *out = malloc(4096);
	BIGNUM *bn = NULL;
	size_t n = 0;

	if (EVP_PKEY_is_a(pk, "RSA")) {
		EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn);
		b64url_encode(buf, (size_t)BN_bn2bin(bn, buf), a);
		BN_free(bn);
		bn = NULL;
		EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &bn);
		b64url_encode(buf, (size_t)BN_bn2bin(bn, buf), b);
		BN_free(bn);
		snprintf(out, 4096, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}",
			 kid, a, b, extra);
	} else {
		EVP_PKEY_set_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
					       "uncompressed");
		EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, buf,
						 sizeof(buf), &n);
		b64url_encode(buf + 1, 32, a);
		b64url_encode(buf + 33, 32, b);
		snprintf(out, 4096, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\","
			 "\"x\":\"%s\",\"y\":\"%s\"%s}", kid, a, b, extra);
	}
	return out;
}

#define RS256 "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES256 "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

static void make_keys(void)
{
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa_pub = pem_of(rsa_key, 0);
	rsa_priv = pem_of(rsa_key, 1);
	rsa2_pub = pem_of(rsa_key2, 0);
	ec_pub = pem_of(ec_key, 0);
	ec_priv = pem_of(ec_key, 1);
	ec2_pub = pem_of(ec_key2, 0);
}

static void test_hs256_claims(void)
{
	struct jwt_keys *k = jwt_keys_secret(SECRET, strlen(SECRET));
	struct jwt_opts o = jwt_opts_default(), none = { NULL, NULL, 0 };
	struct jwt_claims c;
	char p[256], *t;
	enum jwt_err e;

	TEST("jwt_keys_secret: one key", k && jwt_keys_count(k) == 1);
	TEST("jwt_keys_secret refuses an empty secret", jwt_keys_secret("", 0) == NULL);
	t = forge(HS256, "{\"sub\":\"a\"}", SECRET);
	TEST("HS256 with a secret key set and default options", vk(t, k, NULL) == JWT_OK);
	TEST("jwt_verify_keys with no key set: JWT_MALFORMED", vk(t, NULL, NULL) == JWT_MALFORMED);
	free(t);

	/* exp and the leeway. */
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"exp\":%lld}", NOW - 29);
	t = forge(HS256, p, SECRET);
	TEST("exp 29 s ago: fine with the default leeway of 30 s", vk(t, k, &o) == JWT_OK);
	TEST("exp 29 s ago: JWT_EXPIRED without leeway", vk(t, k, &none) == JWT_EXPIRED);
	free(t);
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"exp\":%lld}", NOW - 30);
	t = forge(HS256, p, SECRET);
	TEST("exp 30 s ago: JWT_EXPIRED with the default leeway", vk(t, k, &o) == JWT_EXPIRED);
	o.leeway = 120;
	TEST("exp 30 s ago: fine with a leeway of 120 s", vk(t, k, &o) == JWT_OK);
	o.leeway = -5;
	TEST("a negative leeway counts as 0", vk(t, k, &o) == JWT_EXPIRED);
	o.leeway = INT64_MAX;
	TEST("a huge leeway: no overflow", vk(t, k, &o) == JWT_OK);
	o.leeway = JWT_LEEWAY_DEFAULT;
	free(t);

	/* nbf and iat. */
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"nbf\":%lld}", NOW + 30);
	t = forge(HS256, p, SECRET);
	e = jwt_verify_keys(t, strlen(t), k, &o, NOW, &c);
	TEST("nbf 30 s ahead: fine with the leeway, nbf kept", e == JWT_OK && c.nbf == NOW + 30);
	jwt_claims_free(&c);
	TEST("nbf 30 s ahead: JWT_NOT_YET_VALID without leeway",
	     vk(t, k, &none) == JWT_NOT_YET_VALID);
	free(t);
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"nbf\":%lld}", NOW + 31);
	t = forge(HS256, p, SECRET);
	TEST("nbf 31 s ahead: JWT_NOT_YET_VALID", vk(t, k, &o) == JWT_NOT_YET_VALID);
	free(t);
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"nbf\":%lld,\"iat\":%lld}", NOW - 10, NOW - 10);
	t = forge(HS256, p, SECRET);
	e = jwt_verify_keys(t, strlen(t), k, &o, NOW, &c);
	TEST("nbf and iat in the past: fine, kept", e == JWT_OK && c.iat == NOW - 10 &&
	     c.nbf == NOW - 10);
	jwt_claims_free(&c);
	free(t);
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"iat\":%lld}", NOW + 3600);
	t = forge(HS256, p, SECRET);
	TEST("iat an hour ahead: JWT_NOT_YET_VALID", vk(t, k, &o) == JWT_NOT_YET_VALID);
	free(t);
	TEST("nbf or iat not a number: JWT_MALFORMED",
	     verify_forged(HS256, "{\"sub\":\"a\",\"nbf\":\"1\"}") == JWT_MALFORMED &&
	     verify_forged(HS256, "{\"sub\":\"a\",\"iat\":null}") == JWT_MALFORMED);
	TEST("nbf 1e300: JWT_NOT_YET_VALID, -1e300: fine",
	     verify_forged(HS256, "{\"sub\":\"a\",\"nbf\":1e300}") == JWT_NOT_YET_VALID &&
	     verify_forged(HS256, "{\"sub\":\"a\",\"nbf\":-1e300}") == JWT_OK);

	/* iss. */
	o.issuer = "https://id.example";
	t = forge(HS256, "{\"sub\":\"a\",\"iss\":\"https://id.example\"}", SECRET);
	TEST("iss as expected: fine", vk(t, k, &o) == JWT_OK);
	TEST("iss present, none expected: fine", vk(t, k, &none) == JWT_OK);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"iss\":\"https://evil.example\"}", SECRET);
	TEST("another iss: JWT_BAD_ISSUER", vk(t, k, &o) == JWT_BAD_ISSUER);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"iss\":\"https://id.example/\"}", SECRET);
	TEST("iss with a trailing slash: JWT_BAD_ISSUER (exact match)",
	     vk(t, k, &o) == JWT_BAD_ISSUER);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\"}", SECRET);
	TEST("no iss when one is expected: JWT_BAD_ISSUER", vk(t, k, &o) == JWT_BAD_ISSUER);
	free(t);
	TEST("iss not a string: JWT_MALFORMED",
	     verify_forged(HS256, "{\"sub\":\"a\",\"iss\":[\"x\"]}") == JWT_MALFORMED);
	o.issuer = NULL;

	/* aud. */
	o.audience = "chat";
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":\"chat\"}", SECRET);
	TEST("aud string as expected: fine", vk(t, k, &o) == JWT_OK);
	TEST("aud present, no audience expected: JWT_BAD_AUDIENCE (RFC 7519 4.1.3)",
	     vk(t, k, &none) == JWT_BAD_AUDIENCE);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":[\"mail\",\"chat\"]}", SECRET);
	TEST("aud array naming us: fine", vk(t, k, &o) == JWT_OK);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":[\"mail\",\"chat2\"]}", SECRET);
	TEST("aud array not naming us: JWT_BAD_AUDIENCE", vk(t, k, &o) == JWT_BAD_AUDIENCE);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":\"mail\"}", SECRET);
	TEST("another aud: JWT_BAD_AUDIENCE", vk(t, k, &o) == JWT_BAD_AUDIENCE);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\"}", SECRET);
	TEST("no aud when one is expected: JWT_BAD_AUDIENCE", vk(t, k, &o) == JWT_BAD_AUDIENCE);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":[]}", SECRET);
	TEST("empty aud array: JWT_MALFORMED", vk(t, k, &o) == JWT_MALFORMED);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":[\"chat\",7]}", SECRET);
	TEST("aud array with a non-string: JWT_MALFORMED", vk(t, k, &o) == JWT_MALFORMED);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":{\"chat\":1}}", SECRET);
	TEST("aud an object: JWT_MALFORMED", vk(t, k, &o) == JWT_MALFORMED);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"aud\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
		  "\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"chat\"]}", SECRET);
	TEST("aud of 17 entries: JWT_MALFORMED", vk(t, k, &o) == JWT_MALFORMED);
	free(t);
	o.audience = NULL;

	/* publish. */
	t = forge(HS256, "{\"sub\":\"a\",\"rooms\":[\"team-*\",\"lobby\"],"
		  "\"publish\":[\"team-*\",\"other\"]}", SECRET);
	e = jwt_verify_keys(t, strlen(t), k, &o, NOW, &c);
	TEST("publish claim parsed", e == JWT_OK && c.npublish == 2 &&
	     !strcmp(c.publish[1], "other"));
	TEST("publish: a room of both claims", jwt_publish_allowed(&c, "team-a"));
	TEST("publish: a room one may join but not publish to (read-only)",
	     jwt_room_allowed(&c, "lobby") && !jwt_publish_allowed(&c, "lobby"));
	TEST("publish: never a room one may not join",
	     !jwt_room_allowed(&c, "other") && !jwt_publish_allowed(&c, "other"));
	jwt_claims_free(&c);
	TEST("jwt_claims_free empties the publish claim", c.npublish == -1 && !c.sub);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"rooms\":[\"team-*\"]}", SECRET);
	e = jwt_verify_keys(t, strlen(t), k, &o, NOW, &c);
	TEST("no publish claim: publish where one may join", e == JWT_OK && c.npublish == -1 &&
	     jwt_publish_allowed(&c, "team-x") && !jwt_publish_allowed(&c, "lobby"));
	jwt_claims_free(&c);
	free(t);
	t = forge(HS256, "{\"sub\":\"a\",\"publish\":[]}", SECRET);
	e = jwt_verify_keys(t, strlen(t), k, &o, NOW, &c);
	TEST("publish [] without rooms: join all, publish nowhere", e == JWT_OK &&
	     jwt_room_allowed(&c, "x") && !jwt_publish_allowed(&c, "x"));
	jwt_claims_free(&c);
	free(t);
	TEST("publish not an array of strings: JWT_MALFORMED",
	     verify_forged(HS256, "{\"sub\":\"a\",\"publish\":\"x\"}") == JWT_MALFORMED &&
	     verify_forged(HS256, "{\"sub\":\"a\",\"rooms\":[\"a\"],\"publish\":[1]}") ==
		     JWT_MALFORMED);

	/* Header extras. */
	TEST("crit header: JWT_MALFORMED",
	     verify_forged("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"a\"}") ==
		     JWT_MALFORMED);
	TEST("kid not a string, or empty: JWT_MALFORMED",
	     verify_forged("{\"alg\":\"HS256\",\"kid\":1}", "{\"sub\":\"a\"}") == JWT_MALFORMED &&
	     verify_forged("{\"alg\":\"HS256\",\"kid\":\"\"}", "{\"sub\":\"a\"}") == JWT_MALFORMED);
	TEST("a kid with a secret set of no kid: the secret is tried",
	     verify_forged("{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{\"sub\":\"a\"}") == JWT_OK);
	jwt_keys_free(k);
	jwt_keys_free(NULL);
}

static void test_asymmetric(void)
{
	struct jwt_keys *rk = keys_of(rsa_pub), *ek = keys_of(ec_pub), *both;
	struct jwt_spec sp = { 0 };
	struct jwt_opts o = jwt_opts_default();
	struct jwt_claims c;
	unsigned char raw[600];
	char err[256], *t, *t2, *pem2;
	enum jwt_err e;
	long n;
	int i, bad;

	TEST("PEM RSA public key: one key", rk && jwt_keys_count(rk) == 1);
	TEST("PEM EC public key: one key", ek && jwt_keys_count(ek) == 1);
	pem2 = malloc(strlen(rsa_pub) + strlen(ec_pub) + 1);
	strcpy(pem2, rsa_pub);
	strcat(pem2, ec_pub);
	both = keys_of(pem2);
	free(pem2);
	TEST("PEM with two blocks: two keys", both && jwt_keys_count(both) == 2);

	/* Tokens signed by OpenSSL here. */
	t = forge_pk(RS256, "{\"sub\":\"alice\",\"rooms\":[\"r\"]}", rsa_key, 0);
	e = jwt_verify_keys(t, strlen(t), rk, NULL, NOW, &c);
	TEST("RS256 signed by OpenSSL verifies with the PEM key", e == JWT_OK &&
	     !strcmp(c.sub, "alice") && c.nrooms == 1);
	jwt_claims_free(&c);
	TEST("OpenSSL's error queue is empty after verifying", ERR_peek_error() == 0);
	TEST("RS256 with the set of an RSA and an EC key", vk(t, both, NULL) == JWT_OK);
	TEST("RS256 against an EC key only: JWT_BAD_ALG", vk(t, ek, NULL) == JWT_BAD_ALG);
	t2 = strdup(t);
	t2[strlen(t2) - 5] ^= 1;
	TEST("RS256 with a changed signature: JWT_BAD_SIGNATURE",
	     vk(t2, rk, NULL) == JWT_BAD_SIGNATURE);
	TEST("OpenSSL's error queue is empty after a refusal", ERR_peek_error() == 0);
	free(t2);
	n = b64url_decode(strrchr(t, '.') + 1, strlen(strrchr(t, '.') + 1), raw);
	t2 = with_sig(t, raw, (size_t)n - 1);
	TEST("RS256 signature one byte short: JWT_BAD_SIGNATURE",
	     vk(t2, rk, NULL) == JWT_BAD_SIGNATURE);
	free(t2);
	raw[n] = 0;
	t2 = with_sig(t, raw, (size_t)n + 1);
	TEST("RS256 signature with a byte more: JWT_BAD_SIGNATURE",
	     vk(t2, rk, NULL) == JWT_BAD_SIGNATURE);
	free(t2);
	free(t);
	TEST("RS256 signed with another RSA key: JWT_BAD_SIGNATURE",
	     vk_forged(RS256, "{\"sub\":\"a\"}", rsa_key2, rk, NULL) == JWT_BAD_SIGNATURE);

	t = forge_pk(ES256, "{\"sub\":\"bob\"}", ec_key, 0);
	TEST("ES256 signed by OpenSSL (r||s) verifies with the PEM key",
	     vk(t, ek, NULL) == JWT_OK && vk(t, both, NULL) == JWT_OK);
	TEST("ES256 against an RSA key only: JWT_BAD_ALG", vk(t, rk, NULL) == JWT_BAD_ALG);
	n = b64url_decode(strrchr(t, '.') + 1, strlen(strrchr(t, '.') + 1), raw);
	TEST("ES256 signature is 64 bytes", n == 64);
	for (i = 0, bad = 0; i < 66; i++) {
		if (i == 64)
			continue;
		memset(raw + 64, 0, 2);
		t2 = with_sig(t, raw, (size_t)i);
		if (vk(t2, ek, NULL) != JWT_BAD_SIGNATURE)
			bad++;
		free(t2);
	}
	TEST("ES256 signature of any length but 64 (0..65): JWT_BAD_SIGNATURE", bad == 0);
	t2 = with_sig(t, raw, 64);
	TEST("the same 64 bytes again: fine", vk(t2, ek, NULL) == JWT_OK);
	free(t2);
	memset(raw + 32, 0, 32);
	t2 = with_sig(t, raw, 64);
	TEST("ES256 with s = 0: JWT_BAD_SIGNATURE", vk(t2, ek, NULL) == JWT_BAD_SIGNATURE);
	free(t2);
	memset(raw, 0, 64);
	t2 = with_sig(t, raw, 64);
	TEST("ES256 with r = s = 0: JWT_BAD_SIGNATURE", vk(t2, ek, NULL) == JWT_BAD_SIGNATURE);
	free(t2);
	free(t);
	t = forge_pk(ES256, "{\"sub\":\"bob\"}", ec_key, 1);
	TEST("ES256 with a DER signature (OpenSSL's own form): JWT_BAD_SIGNATURE",
	     vk(t, ek, NULL) == JWT_BAD_SIGNATURE);
	free(t);
	TEST("ES256 signed with another EC key: JWT_BAD_SIGNATURE",
	     vk_forged(ES256, "{\"sub\":\"a\"}", ec_key2, ek, NULL) == JWT_BAD_SIGNATURE);
	TEST("ES256 claims are checked too",
	     vk_forged(ES256, "{\"sub\":\"a\",\"exp\":1}", ec_key, ek, &o) == JWT_EXPIRED &&
	     vk_forged(ES256, "{\"sub\":\"\"}", ec_key, ek, &o) == JWT_MALFORMED);

	/* Alg confusion: the public key's PEM text used as an HS256 secret. */
	t = forge(HS256, "{\"sub\":\"root\"}", rsa_pub);
	TEST("alg confusion: HS256 signed with the RSA public PEM as secret: JWT_BAD_ALG",
	     vk(t, rk, NULL) == JWT_BAD_ALG && vk(t, both, NULL) == JWT_BAD_ALG);
	free(t);
	t = forge(HS256, "{\"sub\":\"root\"}", ec_pub);
	TEST("alg confusion with the EC public PEM: JWT_BAD_ALG", vk(t, ek, NULL) == JWT_BAD_ALG);
	free(t);
	TEST("alg none, RS512, ES384, PS256 with asymmetric keys: JWT_BAD_ALG",
	     vk_forged("{\"alg\":\"none\"}", "{\"sub\":\"a\"}", rsa_key, both, NULL) == JWT_BAD_ALG &&
	     vk_forged("{\"alg\":\"RS512\"}", "{\"sub\":\"a\"}", rsa_key, both, NULL) == JWT_BAD_ALG &&
	     vk_forged("{\"alg\":\"ES384\"}", "{\"sub\":\"a\"}", ec_key, both, NULL) == JWT_BAD_ALG &&
	     vk_forged("{\"alg\":\"PS256\"}", "{\"sub\":\"a\"}", rsa_key, both, NULL) == JWT_BAD_ALG);
	TEST("an RS256 header on an EC signature: JWT_BAD_SIGNATURE",
	     vk_forged(RS256, "{\"sub\":\"a\"}", ec_key, both, NULL) == JWT_BAD_SIGNATURE);

	/* Secret and public keys together. */
	jwt_keys_add_secret(both, SECRET, strlen(SECRET));
	t = jwt_sign("carol", 0, NULL, SECRET, strlen(SECRET));
	TEST("jwt_keys_add_secret: HS256 and RS256 in one set",
	     jwt_keys_count(both) == 3 && vk(t, both, NULL) == JWT_OK &&
	     vk_forged(RS256, "{\"sub\":\"a\"}", rsa_key, both, NULL) == JWT_OK);
	free(t);

	/* jwt_sign_spec. */
	sp.alg = "RS256";
	sp.sub = "dave";
	sp.kid = "k1";
	sp.iss = "https://id.example";
	sp.aud = "chat";
	sp.exp = NOW + 60;
	sp.nbf = NOW - 1;
	sp.iat = NOW - 1;
	sp.rooms_json = "[\"team-*\"]";
	sp.publish_json = "[\"team-a\"]";
	t = jwt_sign_spec(&sp, rsa_priv, strlen(rsa_priv), err, sizeof(err));
	o.issuer = "https://id.example";
	o.audience = "chat";
	e = t ? jwt_verify_keys(t, strlen(t), rk, &o, NOW, &c) : JWT_MALFORMED;
	TEST("jwt_sign_spec RS256 with every claim verifies", e == JWT_OK &&
	     !strcmp(c.sub, "dave") && c.exp == NOW + 60 && c.nbf == NOW - 1 &&
	     c.iat == NOW - 1 && c.nrooms == 1 && c.npublish == 1 &&
	     jwt_publish_allowed(&c, "team-a") && !jwt_publish_allowed(&c, "team-b"));
	jwt_claims_free(&c);
	free(t);
	sp.alg = "ES256";
	t = jwt_sign_spec(&sp, ec_priv, strlen(ec_priv), err, sizeof(err));
	TEST("jwt_sign_spec ES256 verifies", t && vk(t, ek, &o) == JWT_OK &&
	     vk(t, rk, &o) == JWT_BAD_ALG);
	free(t);
	t = jwt_sign_spec(&sp, rsa_priv, strlen(rsa_priv), err, sizeof(err));
	TEST("jwt_sign_spec ES256 with an RSA key: refused, said why", !t && strstr(err, "EC"));
	sp.alg = "RS256";
	t = jwt_sign_spec(&sp, ec_priv, strlen(ec_priv), err, sizeof(err));
	TEST("jwt_sign_spec RS256 with an EC key: refused", !t && strstr(err, "RSA"));
	t = jwt_sign_spec(&sp, rsa_pub, strlen(rsa_pub), err, sizeof(err));
	TEST("jwt_sign_spec with a public key: refused", !t && strstr(err, "private key"));
	sp.alg = "none";
	t = jwt_sign_spec(&sp, SECRET, strlen(SECRET), err, sizeof(err));
	TEST("jwt_sign_spec alg none: refused", !t && strstr(err, "not supported"));
	sp.alg = "HS256";
	sp.publish_json = "[1]";
	t = jwt_sign_spec(&sp, SECRET, strlen(SECRET), err, sizeof(err));
	TEST("jwt_sign_spec publish not of strings: refused", !t && strstr(err, "publish"));
	TEST("OpenSSL's error queue is empty after signing", ERR_peek_error() == 0);

	jwt_keys_free(rk);
	jwt_keys_free(ek);
	jwt_keys_free(both);
}

static void test_jwks(void)
{
	char doc[8192], *j1, *j2, *j3, *t;
	struct jwt_keys *k;
	struct jwt_claims c;
	enum jwt_err e;

	j1 = jwk_of(rsa_key, "r1", ",\"use\":\"sig\",\"alg\":\"RS256\"");
	j2 = jwk_of(rsa_key2, "r2", "");
	j3 = jwk_of(ec_key, "e1", ",\"alg\":\"ES256\"");
	snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,%s,"
		 "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"czNjcmV0LWZvci10ZXN0cw\"}]}", j1, j2, j3);
	k = keys_of(doc);
	TEST("JWKS with two RSA keys, an EC key and a secret: four keys",
	     k && jwt_keys_count(k) == 4);

	t = forge_pk("{\"alg\":\"RS256\",\"kid\":\"r2\"}", "{\"sub\":\"a\"}", rsa_key2, 0);
	e = jwt_verify_keys(t, strlen(t), k, NULL, NOW, &c);
	TEST("kid r2 picks the second RSA key", e == JWT_OK && !strcmp(c.sub, "a"));
	jwt_claims_free(&c);
	free(t);
	TEST("kid r1 on a token signed with r2's key: JWT_BAD_SIGNATURE (no other key tried)",
	     vk_forged("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"a\"}", rsa_key2, k,
		       NULL) == JWT_BAD_SIGNATURE);
	TEST("kid of no key: JWT_UNKNOWN_KID",
	     vk_forged("{\"alg\":\"RS256\",\"kid\":\"r9\"}", "{\"sub\":\"a\"}", rsa_key, k,
		       NULL) == JWT_UNKNOWN_KID);
	TEST("kid of the EC key on an RS256 token: JWT_BAD_ALG",
	     vk_forged("{\"alg\":\"RS256\",\"kid\":\"e1\"}", "{\"sub\":\"a\"}", rsa_key, k,
		       NULL) == JWT_BAD_ALG);
	TEST("no kid: every RSA key is tried",
	     vk_forged(RS256, "{\"sub\":\"a\"}", rsa_key, k, NULL) == JWT_OK &&
	     vk_forged(RS256, "{\"sub\":\"a\"}", rsa_key2, k, NULL) == JWT_OK);
	TEST("ES256 by kid and without kid",
	     vk_forged("{\"alg\":\"ES256\",\"kid\":\"e1\"}", "{\"sub\":\"a\"}", ec_key, k,
		       NULL) == JWT_OK &&
	     vk_forged(ES256, "{\"sub\":\"a\"}", ec_key, k, NULL) == JWT_OK);
	TEST("ES256 by a key not in the set: JWT_BAD_SIGNATURE",
	     vk_forged(ES256, "{\"sub\":\"a\"}", ec_key2, k, NULL) == JWT_BAD_SIGNATURE);
	t = forge("{\"alg\":\"HS256\",\"kid\":\"h1\"}", "{\"sub\":\"a\"}", SECRET);
	TEST("an oct JWK verifies HS256 by kid", vk(t, k, NULL) == JWT_OK);
	free(t);
	t = forge("{\"alg\":\"HS256\",\"kid\":\"r1\"}", "{\"sub\":\"a\"}", rsa_pub);
	TEST("HS256 naming an RSA kid: JWT_BAD_ALG", vk(t, k, NULL) == JWT_BAD_ALG);
	free(t);
	jwt_keys_free(k);

	/* Skipped keys. */
	snprintf(doc, sizeof(doc), "{\"keys\":[%s,"
		 "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
		 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"},"
		 "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AA\",\"e\":\"AQAB\"},"
		 "{\"kty\":\"RSA\",\"alg\":\"RS512\",\"n\":\"AA\",\"e\":\"AQAB\"},"
		 "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
		 j3);
	k = keys_of(doc);
	TEST("JWKS: P-384, OKP, use enc, alg RS512 keys are skipped",
	     k && jwt_keys_count(k) == 1);
	jwt_keys_free(k);
	free(j1);
	free(j2);
	free(j3);
}

/* A token of exactly total bytes (HS256 with SECRET, or RS256 with
 * rsa_key), padded with a "pad" claim; NULL when no header variant fits. */
static char *token_of_size(size_t total, int rsa)
{
	char hdr[64], *pl, *t;
	size_t siglen = rsa ? 342 : 43, kidlen, hlen, target, n, base;

	for (kidlen = 1; kidlen <= 4; kidlen++) {
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%.*s\"}",
			 rsa ? "RS256" : "HS256", (int)kidlen, "kkkk");
		hlen = (4 * strlen(hdr) + 2) / 3;
		target = total - hlen - 2 - siglen;
		if (target % 4 == 1)
			continue;
		n = target / 4 * 3 + (target % 4 ? target % 4 - 1 : 0);
		base = strlen("{\"sub\":\"big\",\"pad\":\"\"}");
		pl = malloc(n + 1);
		snprintf(pl, n + 1, "{\"sub\":\"big\",\"pad\":\"%0*d\"}", (int)(n - base), 0);
		t = rsa ? forge_pk(hdr, pl, rsa_key, 0) : forge(hdr, pl, SECRET);
		free(pl);
		return t;
	}
	return NULL;
}

static void test_max_size(void)
{
	struct jwt_keys *rk = keys_of(rsa_pub), *k;
	struct jwt_claims c;
	char *t;
	enum jwt_err e;

	k = jwt_keys_secret(SECRET, strlen(SECRET));
	t = token_of_size(3200, 0);
	TEST("HS256 token of 3200 bytes (over the old 3.1 KB bound): JWT_OK",
	     t && strlen(t) == 3200 && vk(t, k, NULL) == JWT_OK);
	free(t);
	t = token_of_size(JWT_MAX, 0);
	e = t ? jwt_verify(t, strlen(t), SECRET, strlen(SECRET), NOW, &c) : JWT_MALFORMED;
	TEST("HS256 token of exactly JWT_MAX bytes: JWT_OK (jwt_verify)",
	     t && strlen(t) == JWT_MAX && e == JWT_OK && !strcmp(c.sub, "big"));
	jwt_claims_free(&c);
	free(t);
	t = token_of_size(JWT_MAX, 1);
	TEST("RS256 token of exactly JWT_MAX bytes: JWT_OK",
	     t && strlen(t) == JWT_MAX && vk(t, rk, NULL) == JWT_OK);
	free(t);
	t = token_of_size(JWT_MAX + 1, 0);
	TEST("HS256 token of JWT_MAX + 1 bytes, validly signed: JWT_MALFORMED",
	     t && strlen(t) == JWT_MAX + 1 && vk(t, k, NULL) == JWT_MALFORMED);
	free(t);
	jwt_keys_free(k);
	jwt_keys_free(rk);
}

/* jwt_keys_parse must refuse text, and say something. */
static int refused(const char *text, size_t len, const char *want)
{
	char err[256] = "";
	struct jwt_keys *k = jwt_keys_parse(text, len, err, sizeof(err));

	if (k || !strstr(err, want)) {
		printf("# key text refused with '%s', wanted '%s'%s\n", err, want,
		       k ? " (but it loaded)" : "");
		jwt_keys_free(k);
		return 0;
	}
	return 1;
}

#define REFUSED(lit, want) refused(lit, sizeof(lit) - 1, want)

static void test_key_files(void)
{
	char path[] = "/tmp/test_jwt.XXXXXX", err[512], doc[4096], *j, *big, *ec384;
	struct jwt_keys *k;
	EVP_PKEY *small, *p384;
	int fd, i, ok;

	fd = mkstemp(path);
	ok = fd >= 0 && write(fd, ec_pub, strlen(ec_pub)) == (ssize_t)strlen(ec_pub);
	close(fd);
	k = ok ? jwt_keys_load(path, err, sizeof(err)) : NULL;
	TEST("jwt_keys_load reads a PEM file", k && jwt_keys_count(k) == 1);
	jwt_keys_free(k);
	unlink(path);
	k = jwt_keys_load(path, err, sizeof(err));
	TEST("jwt_keys_load of a missing file: NULL, the path and reason in err",
	     !k && strstr(err, path) && strstr(err, "No such file"));
	big = calloc(1, JWT_KEYFILE_MAX + 1);
	memset(big, 'x', JWT_KEYFILE_MAX + 1);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok = fd >= 0 && write(fd, big, JWT_KEYFILE_MAX + 1) == JWT_KEYFILE_MAX + 1;
	close(fd);
	free(big);
	k = ok ? jwt_keys_load(path, err, sizeof(err)) : NULL;
	TEST("jwt_keys_load of a file over JWT_KEYFILE_MAX: NULL, said so",
	     ok && !k && strstr(err, "larger than 65536 bytes"));
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok = fd >= 0 && write(fd, "{\"keys\":[]}\n", 12) == 12;
	close(fd);
	k = ok ? jwt_keys_load(path, err, sizeof(err)) : NULL;
	TEST("jwt_keys_load of a bad file: NULL, the path and the reason in err",
	     ok && !k && strstr(err, "bad key file") && strstr(err, path) &&
	     strstr(err, "no RSA"));
	unlink(path);

	TEST("empty text refused", REFUSED("", "neither"));
	TEST("blank text refused", REFUSED(" \n", "neither"));
	TEST("garbage refused", REFUSED("hello", "neither PEM nor"));
	TEST("JSON that is not an object of keys refused",
	     REFUSED("{\"k\":[]}", "no \"keys\" array") && REFUSED("{", "not JSON") &&
	     REFUSED("{\"keys\":{}}", "no \"keys\" array"));
	TEST("JWKS without a usable key refused",
	     REFUSED("{\"keys\":[]}", "no RSA") &&
	     REFUSED("{\"keys\":[{\"kty\":\"OKP\"}]}", "no RSA"));
	TEST("JWKS key not an object, or kty missing, refused",
	     REFUSED("{\"keys\":[1]}", "key 0 is not an object") &&
	     REFUSED("{\"keys\":[{\"n\":\"AQAB\"}]}", "kty missing"));
	TEST("JWKS RSA key without n refused",
	     REFUSED("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", "'n' missing"));
	TEST("JWKS RSA modulus not base64url refused",
	     REFUSED("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"a+b/\",\"e\":\"AQAB\"}]}",
		     "not base64url"));
	TEST("JWKS RSA modulus of 16 bits refused",
	     REFUSED("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQE\",\"e\":\"AQAB\"}]}", "key 0"));
	TEST("JWKS EC x of 31 bytes refused",
	     REFUSED("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
		     "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"y\":"
		     "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}", "32 bytes"));
	snprintf(doc, sizeof(doc), "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
		 "\"y\":\"%s\"}]}", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		 "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	TEST("JWKS EC point not on P-256 refused", refused(doc, strlen(doc), "key 0"));
	TEST("JWKS kid not a string, empty or too long refused",
	     REFUSED("{\"keys\":[{\"kty\":\"oct\",\"kid\":5,\"k\":\"AA\"}]}", "not a string") &&
	     REFUSED("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"\",\"k\":\"AA\"}]}", "kid empty"));
	TEST("JWKS duplicate member refused",
	     REFUSED("{\"keys\":[],\"keys\":[]}", "not JSON"));
	TEST("JWKS with a NUL byte inside refused",
	     refused("{\"keys\":[]}\0", 12, "not JSON"));

	/* More than JWT_KEYS_MAX keys. */
	j = jwk_of(ec_key, "e", "");
	big = malloc(20 * 4096);
	strcpy(big, "{\"keys\":[");
	for (i = 0; i < JWT_KEYS_MAX; i++) {
		strcat(big, j);
		strcat(big, ",");
	}
	strcpy(big + strlen(big) - 1, "]}");
	k = keys_of(big);
	TEST("JWKS of JWT_KEYS_MAX keys: fine", k && jwt_keys_count(k) == JWT_KEYS_MAX);
	jwt_keys_free(k);
	strcpy(big + strlen(big) - 2, ",");
	strcat(big, j);
	strcat(big, "]}");
	TEST("JWKS of JWT_KEYS_MAX + 1 keys refused", refused(big, strlen(big), "more than 16"));
	free(j);
	free(big);
	big = malloc(JWT_KEYFILE_MAX + 2);
	memset(big, ' ', JWT_KEYFILE_MAX + 1);
	memcpy(big, "{\"keys\":[]}", 11);
	TEST("a key file over JWT_KEYFILE_MAX bytes refused",
	     refused(big, JWT_KEYFILE_MAX + 1, "larger than 65536"));
	free(big);

	j = jwk_of(rsa_key, "r", "");
	memcpy(strstr(j, "\"e\":\"AQAB\""), "\"e\":\"AQ\"  ", 10);
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j);
	TEST("JWKS RSA key with e = 1 (signature = message) refused",
	     refused(doc, strlen(doc), "consistency check"));
	memcpy(strstr(j, "\"e\":\"AQ\"  "), "\"e\":\"AAI\" ", 10);
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j);
	TEST("JWKS RSA key with an even e refused", refused(doc, strlen(doc), "consistency check"));
	free(j);

	/* PEM. */
	TEST("PEM with a private key only refused",
	     refused(rsa_priv, strlen(rsa_priv), "no PUBLIC KEY"));
	j = strdup(rsa_pub);
	j[40] = j[40] == 'A' ? 'B' : 'A';
	j[41] = '!';
	TEST("PEM with a corrupt block refused", refused(j, strlen(j), "bad PEM"));
	free(j);
	small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	j = pem_of(small, 0);
	TEST("PEM RSA key of 1024 bits refused", refused(j, strlen(j), "1024 bits"));
	free(j);
	j = jwk_of(small, "s", "");
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j);
	TEST("JWKS RSA key of 1024 bits refused", refused(doc, strlen(doc), "1024 bits"));
	free(j);
	EVP_PKEY_free(small);
	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	ec384 = pem_of(p384, 0);
	TEST("PEM EC key on P-384 refused", refused(ec384, strlen(ec384), "P-256"));
	free(ec384);
	EVP_PKEY_free(p384);
	small = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	j = pem_of(small, 0);
	TEST("PEM Ed25519 key refused", refused(j, strlen(j), "not supported"));
	free(j);
	EVP_PKEY_free(small);
	TEST("OpenSSL's error queue is empty after refused key files", ERR_peek_error() == 0);
}

int main(void)
{
	struct jwt_claims c;
	unsigned char in[64], dec[64 + 8];
	char enc[100], *tok, *t2, *d1, *d2, rooms[1024];
	size_t n, i, len;
	long dl;
	int ok, bad, r;
	enum jwt_err e;

	/* base64url */
	TEST("b64url known vectors",
	     b64url_encode("", 0, enc) == 0 && !strcmp(enc, "") &&
	     b64url_encode("f", 1, enc) == 2 && !strcmp(enc, "Zg") &&
	     b64url_encode("fo", 2, enc) == 3 && !strcmp(enc, "Zm8") &&
	     b64url_encode("foo", 3, enc) == 4 && !strcmp(enc, "Zm9v") &&
	     b64url_encode("foobar", 6, enc) == 8 && !strcmp(enc, "Zm9vYmFy"));
	TEST("b64url uses - and _", b64url_encode("\xfb\xff", 2, enc) == 3 &&
	     !strcmp(enc, "-_8"));
	srand(1);
	for (n = 0, ok = 1; n <= 64; n++) {
		for (i = 0; i < n; i++)
			in[i] = (unsigned char)(n == 63 ? 0xff : n == 64 ? 0 : rand());
		len = b64url_encode(in, n, enc);
		if (len != (4 * n + 2) / 3 || strlen(enc) != len ||
		    strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789-_") != len)
			ok = 0;
		memset(dec, 0xaa, sizeof(dec));
		dl = b64url_decode(enc, len, dec);
		if (dl != (long)n || memcmp(dec, in, n))
			ok = 0;
		if (!ok) {
			printf("# length %zu failed: %s\n", n, enc);
			break;
		}
	}
	TEST("b64url round trip for every length 0..64 (incl. all-0xff, all-0)", ok);
	TEST("b64url decode refuses + / = and spaces",
	     b64url_decode("ab+d", 4, dec) == -1 && b64url_decode("ab/d", 4, dec) == -1 &&
	     b64url_decode("Zg==", 4, dec) == -1 && b64url_decode("Zm 9", 4, dec) == -1);
	TEST("b64url decode refuses a length of 4k+1",
	     b64url_decode("Zm9vY", 5, dec) == -1 && b64url_decode("Z", 1, dec) == -1);
	TEST("b64url decode refuses non-zero unused bits (one encoding per value)",
	     b64url_decode("Zh", 2, dec) == -1 && b64url_decode("Zm9", 3, dec) == -1 &&
	     b64url_decode("Zg", 2, dec) == 1 && b64url_decode("Zm8", 3, dec) == 2);
	TEST("b64url decode of nothing", b64url_decode("", 0, dec) == 0);

	/* Round trip. */
	tok = jwt_sign("alice", NOW + 60, NULL, SECRET, strlen(SECRET));
	TEST("jwt_sign gives a token of three parts", tok && (d1 = strchr(tok, '.')) &&
	     (d2 = strchr(d1 + 1, '.')) && !strchr(d2 + 1, '.'));
	e = verify(tok, &c);
	TEST("round trip verifies", e == JWT_OK);
	TEST("claims: sub, exp, no rooms claim", c.sub && !strcmp(c.sub, "alice") &&
	     c.exp == NOW + 60 && c.nrooms == -1);
	TEST("no rooms claim: every room allowed", jwt_room_allowed(&c, "general") &&
	     jwt_room_allowed(&c, "anything.at-all"));
	jwt_claims_free(&c);
	TEST("jwt_claims_free leaves empty claims, twice is fine",
	     (jwt_claims_free(&c), empty_claims(&c)));

	e = jwt_verify(tok, strlen(tok), "wrong", 5, NOW, &c);
	TEST("wrong secret: JWT_BAD_SIGNATURE", e == JWT_BAD_SIGNATURE && empty_claims(&c));
	e = jwt_verify(tok, strlen(tok), SECRET, strlen(SECRET) - 1, NOW, &c);
	TEST("secret one byte short: JWT_BAD_SIGNATURE", e == JWT_BAD_SIGNATURE);
	e = jwt_verify(tok, strlen(tok), SECRET, strlen(SECRET), NOW + 60, &c);
	TEST("exp == now: JWT_EXPIRED", e == JWT_EXPIRED && empty_claims(&c));
	e = jwt_verify(tok, strlen(tok), SECRET, strlen(SECRET), NOW + 59, &c);
	TEST("one second before exp: JWT_OK", e == JWT_OK);
	jwt_claims_free(&c);

	/* Tampering. */
	t2 = strdup(tok);
	len = strlen(t2);
	for (i = 0, bad = 0; i < len; i++) {
		char was = t2[i];

		if (was == '.')
			continue;
		t2[i] = was == 'A' ? 'B' : 'A';
		r = verify(t2, &c);
		if (r == JWT_OK || !empty_claims(&c))
			bad++;
		jwt_claims_free(&c);
		t2[i] = was;
	}
	TEST("changing any one character of the token never verifies", bad == 0);
	free(t2);
	for (n = 0, bad = 0; n < strlen(tok); n++) {
		d2 = strrchr(tok, '.');
		e = jwt_verify(tok, n, SECRET, strlen(SECRET), NOW, &c);
		/* Up to the second dot: at most two parts. After it: "H.P." and
		 * partial signatures. */
		if (e != (n <= (size_t)(d2 - tok) ? JWT_MALFORMED : JWT_BAD_SIGNATURE))
			bad++;
		jwt_claims_free(&c);
	}
	TEST("truncated before the signature: JWT_MALFORMED; inside it: JWT_BAD_SIGNATURE",
	     bad == 0);
	e = verify("", &c);
	TEST("empty token: JWT_MALFORMED", e == JWT_MALFORMED);
	free(tok);

	tok = forge(HS256, "{\"sub\":\"root\"}", SECRET);
	d2 = strrchr(tok, '.');
	t2 = jwt_sign("bob", 0, NULL, SECRET, strlen(SECRET));
	memcpy(rooms, t2, (size_t)(strrchr(t2, '.') - t2));
	strcpy(rooms + (strrchr(t2, '.') - t2), d2);
	TEST("another token's signature: JWT_BAD_SIGNATURE",
	     verify(rooms, &c) == JWT_BAD_SIGNATURE);
	e = verify(t2, &c);
	TEST("no exp: JWT_OK with exp 0", e == JWT_OK && c.exp == 0 && !strcmp(c.sub, "bob"));
	jwt_claims_free(&c);
	free(t2);
	free(tok);

	/* Algorithms. */
	tok = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"eve\"}", SECRET);
	*(strrchr(tok, '.') + 1) = '\0';
	TEST("alg none without signature: JWT_BAD_ALG", verify(tok, &c) == JWT_BAD_ALG &&
	     empty_claims(&c));
	free(tok);
	TEST("alg none, even signed: JWT_BAD_ALG",
	     verify_forged("{\"alg\":\"none\"}", "{\"sub\":\"eve\"}") == JWT_BAD_ALG);
	TEST("alg HS512, RS256, hs256: JWT_BAD_ALG",
	     verify_forged("{\"alg\":\"HS512\"}", "{\"sub\":\"eve\"}") == JWT_BAD_ALG &&
	     verify_forged("{\"alg\":\"RS256\"}", "{\"sub\":\"eve\"}") == JWT_BAD_ALG &&
	     verify_forged("{\"alg\":\"hs256\"}", "{\"sub\":\"eve\"}") == JWT_BAD_ALG);
	TEST("no alg, alg not a string: JWT_BAD_ALG",
	     verify_forged("{\"typ\":\"JWT\"}", "{\"sub\":\"eve\"}") == JWT_BAD_ALG &&
	     verify_forged("{\"alg\":256}", "{\"sub\":\"eve\"}") == JWT_BAD_ALG);
	TEST("header without typ is fine", verify_forged("{\"alg\":\"HS256\"}",
							"{\"sub\":\"eve\"}") == JWT_OK);

	/* Malformed, though correctly signed. */
	TEST("header not JSON / not an object: JWT_MALFORMED",
	     verify_forged("{alg:HS256}", "{\"sub\":\"a\"}") == JWT_MALFORMED &&
	     verify_forged("[\"HS256\"]", "{\"sub\":\"a\"}") == JWT_MALFORMED);
	TEST("payload not JSON / not an object: JWT_MALFORMED",
	     verify_forged(HS256, "{\"sub\":") == JWT_MALFORMED &&
	     verify_forged(HS256, "\"alice\"") == JWT_MALFORMED &&
	     verify_forged(HS256, "") == JWT_MALFORMED);
	TEST("no sub, sub not a string, empty sub: JWT_MALFORMED",
	     verify_forged(HS256, "{\"user\":\"a\"}") == JWT_MALFORMED &&
	     verify_forged(HS256, "{\"sub\":7}") == JWT_MALFORMED &&
	     verify_forged(HS256, "{\"sub\":\"\"}") == JWT_MALFORMED);
	memset(rooms, 'u', 129);
	snprintf(rooms + 200, 300, "{\"sub\":\"%.128s\"}", rooms);
	TEST("sub of 128 bytes is fine", verify_forged(HS256, rooms + 200) == JWT_OK);
	snprintf(rooms + 200, 300, "{\"sub\":\"%.129s\"}", rooms);
	TEST("sub of 129 bytes: JWT_MALFORMED", verify_forged(HS256, rooms + 200) == JWT_MALFORMED);
	TEST("sub with \\u0000: JWT_MALFORMED",
	     verify_forged(HS256, "{\"sub\":\"a\\u0000b\"}") == JWT_MALFORMED);
	TEST("duplicate keys: JWT_MALFORMED",
	     verify_forged(HS256, "{\"sub\":\"a\",\"sub\":\"root\"}") == JWT_MALFORMED);
	TEST("exp not a number: JWT_MALFORMED",
	     verify_forged(HS256, "{\"sub\":\"a\",\"exp\":\"2099\"}") == JWT_MALFORMED);
	TEST("exp as a real number is honoured",
	     verify_forged(HS256, "{\"sub\":\"a\",\"exp\":1700000000.5}") == JWT_OK &&
	     verify_forged(HS256, "{\"sub\":\"a\",\"exp\":1699999999.5}") == JWT_EXPIRED);
	TEST("exp far out of int64 range: no overflow",
	     verify_forged(HS256, "{\"sub\":\"a\",\"exp\":1e300}") == JWT_OK &&
	     verify_forged(HS256, "{\"sub\":\"a\",\"exp\":-1e300}") == JWT_EXPIRED);
	TEST("exp 0 is in the past", verify_forged(HS256, "{\"sub\":\"a\",\"exp\":0}") == JWT_EXPIRED);

	/* Garbage. */
	{
		static const char *garbage[] = {
			"abc", "a.b", "a.b.c.d", "..", "...", "!!!.!!!.!!!",
			"eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9.", ".e30.",
			"eyJhbGciOiJIUzI1NiJ9.e30.x.y", "Zg==.Zg==.Zg==",
			"\xff\xfe.\x01.\x02", NULL,
		};
		for (i = 0, bad = 0; garbage[i]; i++) {
			e = verify(garbage[i], &c);
			if (e != JWT_MALFORMED) {
				printf("# '%s' gave %d\n", garbage[i], e);
				bad++;
			}
			jwt_claims_free(&c);
		}
		TEST("garbage strings: JWT_MALFORMED", bad == 0);
	}
	tok = jwt_sign("alice", 0, NULL, SECRET, strlen(SECRET));
	len = strlen(tok);
	t2 = malloc(len + 1);
	memcpy(t2, tok, len + 1);
	t2[3] = '\0';
	TEST("a NUL byte inside the token: JWT_MALFORMED",
	     jwt_verify(t2, len, SECRET, strlen(SECRET), NOW, &c) == JWT_MALFORMED);
	free(t2);
	free(tok);
	t2 = malloc(JWT_MAX + 2);
	memset(t2, 'A', JWT_MAX + 1);
	t2[10] = t2[20] = '.';
	TEST("token longer than JWT_MAX: JWT_MALFORMED",
	     jwt_verify(t2, JWT_MAX + 1, SECRET, strlen(SECRET), NOW, &c) == JWT_MALFORMED);
	free(t2);

	/* The rooms claim. */
	tok = jwt_sign("carol", NOW + 3600, "[\"general\",\"team-*\",\"dm.carol.?\",\"[ab]x\"]",
		       SECRET, strlen(SECRET));
	e = verify(tok, &c);
	TEST("rooms claim verifies", e == JWT_OK && c.nrooms == 4 &&
	     !strcmp(c.rooms[0], "general") && !strcmp(c.rooms[1], "team-*"));
	TEST("exact room pattern", jwt_room_allowed(&c, "general") &&
	     !jwt_room_allowed(&c, "generalx") && !jwt_room_allowed(&c, "xgeneral"));
	TEST("'*' pattern", jwt_room_allowed(&c, "team-red") && jwt_room_allowed(&c, "team-") &&
	     !jwt_room_allowed(&c, "team"));
	TEST("'?' pattern", jwt_room_allowed(&c, "dm.carol.b") &&
	     !jwt_room_allowed(&c, "dm.carol.bb") && !jwt_room_allowed(&c, "dm.carol."));
	TEST("bracket pattern", jwt_room_allowed(&c, "ax") && jwt_room_allowed(&c, "bx") &&
	     !jwt_room_allowed(&c, "cx"));
	TEST("other rooms refused", !jwt_room_allowed(&c, "random") && !jwt_room_allowed(&c, ""));
	jwt_claims_free(&c);
	free(tok);
	tok = jwt_sign("dave", 0, "[]", SECRET, strlen(SECRET));
	e = verify(tok, &c);
	TEST("empty rooms claim: no room allowed", e == JWT_OK && c.nrooms == 0 &&
	     !jwt_room_allowed(&c, "general"));
	jwt_claims_free(&c);
	free(tok);
	TEST("rooms not an array, or with a non-string: JWT_MALFORMED (no leak)",
	     verify_forged(HS256, "{\"sub\":\"a\",\"rooms\":\"general\"}") == JWT_MALFORMED &&
	     verify_forged(HS256, "{\"sub\":\"a\",\"rooms\":[\"a\",\"b\",3]}") == JWT_MALFORMED);
	n = (size_t)snprintf(rooms, sizeof(rooms), "{\"sub\":\"a\",\"rooms\":[\"r0\"");
	for (i = 1; i < JWT_ROOMS_MAX; i++)
		n += (size_t)snprintf(rooms + n, sizeof(rooms) - n, ",\"r%zu\"", i);
	strcpy(rooms + n, "]}");
	tok = forge(HS256, rooms, SECRET);
	e = verify(tok, &c);
	TEST("32 room patterns: fine", e == JWT_OK && c.nrooms == JWT_ROOMS_MAX &&
	     jwt_room_allowed(&c, "r31"));
	jwt_claims_free(&c);
	free(tok);
	strcpy(rooms + n, ",\"r32\"]}");
	TEST("33 room patterns: JWT_MALFORMED", verify_forged(HS256, rooms) == JWT_MALFORMED);
	TEST("jwt_sign refuses rooms that are not a JSON array",
	     jwt_sign("a", 0, "{}", SECRET, 6) == NULL &&
	     jwt_sign("a", 0, "[", SECRET, 6) == NULL);

	TEST("jwt_strerror names every code",
	     strcmp(jwt_strerror(JWT_OK), jwt_strerror(JWT_MALFORMED)) &&
	     strstr(jwt_strerror(JWT_EXPIRED), "expired") &&
	     strstr(jwt_strerror(JWT_BAD_SIGNATURE), "signature") &&
	     strstr(jwt_strerror(JWT_BAD_ALG), "algorithm") &&
	     strstr(jwt_strerror(JWT_MALFORMED), "malformed") &&
	     strstr(jwt_strerror(JWT_NOT_YET_VALID), "not yet valid") &&
	     strstr(jwt_strerror(JWT_BAD_ISSUER), "issuer") &&
	     strstr(jwt_strerror(JWT_BAD_AUDIENCE), "audience") &&
	     strstr(jwt_strerror(JWT_UNKNOWN_KID), "key id"));
	for (i = 0, bad = 0; i <= JWT_UNKNOWN_KID; i++)
		for (n = 0; n < i; n++)
			if (!strcmp(jwt_strerror((enum jwt_err)i), jwt_strerror((enum jwt_err)n)))
				bad++;
	TEST("jwt_strerror: a distinct text for each code", bad == 0);

	make_keys();
	test_hs256_claims();
	test_asymmetric();
	test_jwks();
	test_max_size();
	test_key_files();
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(rsa_key2);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ec_key2);
	free(rsa_pub);
	free(rsa_priv);
	free(rsa2_pub);
	free(ec_pub);
	free(ec_priv);
	free(ec2_pub);
	return TEST_DONE();
}
