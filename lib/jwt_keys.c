/*
 * jwt_keys: key sets for token verification (see jwt.h) and the signature
 * primitives under them (jwt_key.h), on OpenSSL 3 EVP. A key file is PEM
 * public keys or a JWKS document; every key is checked when it is loaded
 * (RSA 2048 to 8192 bits, EC on the named curve P-256 only, the public
 * key checks of EVP_PKEY_public_check), so that verifying a token never
 * meets a key it could not handle. Nothing here prompts for a passphrase
 * or leaves errors on OpenSSL's queue, which libwebsockets shares.
 */
#include "jwt_key.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "file.h"

#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 8192

static void keys_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void keys_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	ERR_clear_error();
}

/* A PEM passphrase callback that refuses: never prompt on a terminal. */
static int keys_no_pass(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

int jwt_alg_kty(const char *alg)
{
	if (!strcmp(alg, "HS256"))
		return JWT_KTY_OCT;
	if (!strcmp(alg, "RS256"))
		return JWT_KTY_RSA;
	if (!strcmp(alg, "ES256"))
		return JWT_KTY_EC;
	return -1;
}

/* Which of our key types pk is, after the checks in the file comment.
 * Returns the type or -1 with a message in err. */
static int keys_check(EVP_PKEY *pk, bool private, char *err, size_t errlen)
{
	EVP_PKEY_CTX *ctx;
	char group[64];
	int kty, ok, bits;

	if (EVP_PKEY_is_a(pk, "RSA")) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX) {
			keys_err(err, errlen, "RSA key of %d bits (%d to %d allowed)",
				 bits, RSA_BITS_MIN, RSA_BITS_MAX);
			return -1;
		}
		kty = JWT_KTY_RSA;
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		/* Keys with explicit curve parameters have no group name:
		 * refused, whatever curve they describe. */
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
						    group, sizeof(group), NULL) ||
		    strcmp(group, "prime256v1")) {
			keys_err(err, errlen, "EC key not on the named curve P-256");
			return -1;
		}
		kty = JWT_KTY_EC;
	} else {
		keys_err(err, errlen, "key type '%s' not supported (RSA or EC P-256)",
			 EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) :
						       "?");
		return -1;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	if (!ctx) {
		keys_err(err, errlen, "out of memory");
		return -1;
	}
	ok = private ? EVP_PKEY_pairwise_check(ctx) : EVP_PKEY_public_check(ctx);
	EVP_PKEY_CTX_free(ctx);
	if (ok != 1) {
		keys_err(err, errlen, "%s key fails its consistency check",
			 kty == JWT_KTY_RSA ? "RSA" : "EC");
		return -1;
	}
	return kty;
}

static void keys_key_release(struct jwt_key *k)
{
	free(k->kid);
	EVP_PKEY_free(k->pkey);
	if (k->secret)
		OPENSSL_cleanse(k->secret, k->secretlen);
	free(k->secret);
	memset(k, 0, sizeof(*k));
}

void jwt_keys_free(struct jwt_keys *k)
{
	int i;

	if (!k)
		return;
	for (i = 0; i < k->n; i++)
		keys_key_release(&k->k[i]);
	free(k);
}

int jwt_keys_count(const struct jwt_keys *k)
{
	return k ? k->n : 0;
}

int jwt_keys_add_secret(struct jwt_keys *k, const void *secret, size_t len)
{
	struct jwt_key *key;

	if (k->n >= JWT_KEYS_MAX || len == 0 || len > INT32_MAX)
		return -1;
	key = &k->k[k->n];
	key->secret = malloc(len);
	if (!key->secret)
		return -1;
	memcpy(key->secret, secret, len);
	key->secretlen = len;
	key->kty = JWT_KTY_OCT;
	k->n++;
	return 0;
}

struct jwt_keys *jwt_keys_secret(const void *secret, size_t len)
{
	struct jwt_keys *k = calloc(1, sizeof(*k));

	if (k && jwt_keys_add_secret(k, secret, len) < 0) {
		jwt_keys_free(k);
		return NULL;
	}
	return k;
}

/* ---- PEM ------------------------------------------------------------- */

static int keys_parse_pem(struct jwt_keys *k, const void *text, size_t len, char *err,
			  size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long dlen = 0;
	EVP_PKEY *pk;
	int kty, rc = -1;

	if (!bio) {
		keys_err(err, errlen, "out of memory");
		return -1;
	}
	/* Block by block: PEM_read_bio fails with "no start line" at the
	 * end; blocks of other types (a private key, a certificate) are
	 * skipped, a PUBLIC KEY block must be whole and unencrypted. */
	while (PEM_read_bio(bio, &name, &header, &der, &dlen)) {
		if (!strcmp(name, PEM_STRING_PUBLIC)) {
			p = der;
			pk = *header ? NULL : d2i_PUBKEY(NULL, &p, dlen);
			if (!pk || p != der + dlen) {
				EVP_PKEY_free(pk);
				keys_err(err, errlen, "bad PEM public key block");
				goto out_free_block;
			}
			if (k->n >= JWT_KEYS_MAX) {
				EVP_PKEY_free(pk);
				keys_err(err, errlen, "more than %d keys",
					 JWT_KEYS_MAX);
				goto out_free_block;
			}
			kty = keys_check(pk, false, err, errlen);
			if (kty < 0) {
				EVP_PKEY_free(pk);
				goto out_free_block;
			}
			k->k[k->n].kty = (enum jwt_kty)kty;
			k->k[k->n].pkey = pk;
			k->n++;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
	}
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		keys_err(err, errlen, "bad PEM block");
		goto out_free_block;
	}
	if (k->n == 0) {
		keys_err(err, errlen, "no PUBLIC KEY block in the PEM text");
		goto out_free_block;
	}
	rc = 0;
out_free_block:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

/* ---- JWKS ------------------------------------------------------------ */

/* The base64url string member name of o, decoded into a malloc'd buffer
 * of *n bytes. Returns NULL with a message in err. */
static unsigned char *keys_b64_member(json_t *o, const char *name, size_t *n, int i,
				      char *err, size_t errlen)
{
	json_t *v = json_object_get(o, name);
	unsigned char *out;
	size_t len;
	long dl;

	if (!json_is_string(v)) {
		keys_err(err, errlen, "key %d: '%s' missing or not a string", i, name);
		return NULL;
	}
	len = json_string_length(v);
	out = malloc(3 * (len / 4) + 3);
	if (!out) {
		keys_err(err, errlen, "out of memory");
		return NULL;
	}
	dl = b64url_decode(json_string_value(v), len, out);
	if (dl <= 0) {
		keys_err(err, errlen, "key %d: '%s' is not base64url", i, name);
		free(out);
		return NULL;
	}
	*n = (size_t)dl;
	return out;
}

/* An EVP_PKEY from OpenSSL parameters, built by the caller in bld. */
static EVP_PKEY *keys_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static EVP_PKEY *keys_jwk_rsa(json_t *o, int i, char *err, size_t errlen)
{
	unsigned char *nb = NULL, *eb = NULL;
	size_t nlen = 0, elen = 0;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pk = NULL;

	nb = keys_b64_member(o, "n", &nlen, i, err, errlen);
	if (!nb)
		goto out;
	eb = keys_b64_member(o, "e", &elen, i, err, errlen);
	if (!eb)
		goto out;
	/* Bounds before any arithmetic: the modulus at most 8192 bits (a
	 * leading zero byte tolerated), the exponent at most 64 bits. */
	if (nlen > RSA_BITS_MAX / 8 + 1 || elen > 8) {
		keys_err(err, errlen, "key %d: RSA modulus or exponent too long", i);
		goto out;
	}
	n = BN_bin2bn(nb, (int)nlen, NULL);
	e = BN_bin2bn(eb, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
		keys_err(err, errlen, "out of memory");
		goto out;
	}
	pk = keys_fromdata("RSA", bld);
	if (!pk)
		keys_err(err, errlen, "key %d: not a usable RSA public key", i);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nb);
	free(eb);
	return pk;
}

static EVP_PKEY *keys_jwk_ec(json_t *o, int i, char *err, size_t errlen)
{
	unsigned char *x = NULL, *y = NULL, pub[65];
	size_t xlen = 0, ylen = 0;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pk = NULL;

	x = keys_b64_member(o, "x", &xlen, i, err, errlen);
	if (!x)
		goto out;
	y = keys_b64_member(o, "y", &ylen, i, err, errlen);
	if (!y)
		goto out;
	if (xlen != 32 || ylen != 32) {
		keys_err(err, errlen, "key %d: P-256 x and y must be 32 bytes each", i);
		goto out;
	}
	pub[0] = 0x04; /* uncompressed point */
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
					      sizeof(pub))) {
		keys_err(err, errlen, "out of memory");
		goto out;
	}
	pk = keys_fromdata("EC", bld);
	if (!pk)
		keys_err(err, errlen, "key %d: not a point on P-256", i);
out:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pk;
}

/* An optional string member: 0 when absent or a string (*s set, or NULL),
 * -1 when of another type. */
static int keys_opt_string(json_t *o, const char *name, const char **s)
{
	json_t *v = json_object_get(o, name);

	*s = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return -1;
	*s = json_string_value(v);
	return 0;
}

/* Add the JWK o (index i in the document) to k, or skip it when it is of
 * a kind we do not verify with. Returns 0 (added or skipped) or -1. */
static int keys_add_jwk(struct jwt_keys *k, json_t *o, int i, char *err, size_t errlen)
{
	const char *kty, *use, *alg, *kid, *crv;
	char why[96];
	struct jwt_key *key;
	enum jwt_kty t;
	EVP_PKEY *pk = NULL;
	int got;

	if (!json_is_object(o)) {
		keys_err(err, errlen, "key %d is not an object", i);
		return -1;
	}
	if (keys_opt_string(o, "kty", &kty) < 0 || !kty ||
	    keys_opt_string(o, "use", &use) < 0 || keys_opt_string(o, "alg", &alg) < 0 ||
	    keys_opt_string(o, "kid", &kid) < 0 || keys_opt_string(o, "crv", &crv) < 0) {
		keys_err(err, errlen,
			 "key %d: kty missing, or kty, use, alg, kid or "
			 "crv not a string",
			 i);
		return -1;
	}
	if (kid &&
	    (!*kid || json_string_length(json_object_get(o, "kid")) > JWT_KID_MAX)) {
		keys_err(err, errlen, "key %d: kid empty or longer than %d bytes", i,
			 JWT_KID_MAX);
		return -1;
	}
	if (!strcmp(kty, "RSA"))
		t = JWT_KTY_RSA;
	else if (!strcmp(kty, "EC") && crv && !strcmp(crv, "P-256"))
		t = JWT_KTY_EC;
	else if (!strcmp(kty, "oct"))
		t = JWT_KTY_OCT;
	else
		return 0; /* another type or curve: not ours to use */
	if ((use && strcmp(use, "sig")) || (alg && jwt_alg_kty(alg) != (int)t))
		return 0; /* meant for encryption or for another alg */
	if (k->n >= JWT_KEYS_MAX) {
		keys_err(err, errlen, "more than %d keys", JWT_KEYS_MAX);
		return -1;
	}
	key = &k->k[k->n];
	if (t == JWT_KTY_OCT) {
		key->secret = keys_b64_member(o, "k", &key->secretlen, i, err, errlen);
		if (!key->secret)
			return -1;
	} else {
		pk = t == JWT_KTY_RSA ? keys_jwk_rsa(o, i, err, errlen) :
					keys_jwk_ec(o, i, err, errlen);
		if (!pk)
			return -1;
		got = keys_check(pk, false, why, sizeof(why));
		if (got != (int)t) {
			keys_err(err, errlen, "key %d: %s", i,
				 got < 0 ? why : "not of its kty");
			EVP_PKEY_free(pk);
			return -1;
		}
		key->pkey = pk;
	}
	if (kid) {
		key->kid = strdup(kid);
		if (!key->kid) {
			keys_key_release(key);
			keys_err(err, errlen, "out of memory");
			return -1;
		}
	}
	key->kty = t;
	k->n++;
	return 0;
}

static int keys_parse_jwks(struct jwt_keys *k, const void *text, size_t len,
			   char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc, *arr;
	size_t i;
	int rc = -1;

	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		keys_err(err, errlen, "JWKS is not JSON: line %d: %s", jerr.line,
			 jerr.text);
		return -1;
	}
	arr = json_object_get(doc, "keys");
	if (!json_is_array(arr)) {
		keys_err(err, errlen, "JWKS has no \"keys\" array");
		goto out_decref;
	}
	for (i = 0; i < json_array_size(arr); i++)
		if (keys_add_jwk(k, json_array_get(arr, i), (int)i, err, errlen) < 0)
			goto out_decref;
	if (k->n == 0) {
		keys_err(err, errlen, "JWKS has no RSA, EC P-256 or oct signing key");
		goto out_decref;
	}
	rc = 0;
out_decref:
	json_decref(doc);
	return rc;
}

struct jwt_keys *jwt_keys_parse(const void *text, size_t len, char *err, size_t errlen)
{
	const char *p = text;
	struct jwt_keys *k;
	size_t i = 0;
	int rc;

	if (len > JWT_KEYFILE_MAX) {
		keys_err(err, errlen, "key file larger than %d bytes", JWT_KEYFILE_MAX);
		return NULL;
	}
	while (i < len && p[i] && strchr(" \t\r\n", p[i]))
		i++;
	k = calloc(1, sizeof(*k));
	if (!k) {
		keys_err(err, errlen, "out of memory");
		return NULL;
	}
	if (i < len && p[i] == '{')
		rc = keys_parse_jwks(k, p, len, err, errlen);
	else if (len - i >= 10 && !memcmp(p + i, "-----BEGIN", 10))
		rc = keys_parse_pem(k, p, len, err, errlen);
	else {
		keys_err(err, errlen, "neither PEM nor a JWKS document");
		rc = -1;
	}
	if (rc < 0) {
		jwt_keys_free(k);
		return NULL;
	}
	return k;
}

struct jwt_keys *jwt_keys_load(const char *path, char *err, size_t errlen)
{
	struct jwt_keys *k;
	char *text, sub[256];
	size_t len;

	text = file_read_small(path, JWT_KEYFILE_MAX, &len);
	if (!text && errno == ENOBUFS) {
		snprintf(err, errlen, "unable to read '%s': larger than %d bytes", path,
			 JWT_KEYFILE_MAX);
		return NULL;
	}
	if (!text) {
		snprintf(err, errlen, "unable to read '%s': %s", path, strerror(errno));
		return NULL;
	}
	k = jwt_keys_parse(text, len, sub, sizeof(sub));
	if (!k)
		snprintf(err, errlen, "bad key file '%s': %s", path, sub);
	OPENSSL_cleanse(text, len); /* may hold a JWKS oct secret */
	free(text);
	return k;
}

/* ---- signatures ------------------------------------------------------ */

static bool keys_verify_evp(EVP_PKEY *pk, const void *data, size_t len,
			    const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok;

	ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
	     EVP_DigestVerify(md, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* JOSE's ES256 signature, r and s of 32 bytes each, as the DER
 * ECDSA-Sig-Value OpenSSL verifies. Returns its length, or -1. */
static int keys_es256_der(const unsigned char *sig, unsigned char *der, int cap)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *p = der;
	int n = -1;

	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	if (i2d_ECDSA_SIG(es, NULL) <= cap)
		n = i2d_ECDSA_SIG(es, &p);
out:
	ECDSA_SIG_free(es);
	return n;
}

bool jwt_key_verify(const struct jwt_key *k, const void *data, size_t len,
		    const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE], der[80];
	unsigned int maclen = 0;
	bool ok = false;
	int n;

	switch (k->kty) {
	case JWT_KTY_OCT:
		ok = HMAC(EVP_sha256(), k->secret, (int)k->secretlen, data, len, mac,
			  &maclen) &&
		     siglen == maclen && CRYPTO_memcmp(sig, mac, maclen) == 0;
		break;
	case JWT_KTY_RSA:
		ok = siglen == (size_t)EVP_PKEY_get_size(k->pkey) &&
		     keys_verify_evp(k->pkey, data, len, sig, siglen);
		break;
	case JWT_KTY_EC:
		/* Only the JOSE form: 64 bytes, never DER or any other size. */
		if (siglen != 64)
			break;
		n = keys_es256_der(sig, der, (int)sizeof(der));
		ok = n > 0 && keys_verify_evp(k->pkey, data, len, der, (size_t)n);
		break;
	}
	ERR_clear_error();
	return ok;
}

long jwt_pem_sign(const char *alg, const void *pem, size_t pemlen, const void *data,
		  size_t len, unsigned char *sig, char *err, size_t errlen)
{
	unsigned char der[JWT_SIG_MAX];
	const unsigned char *p = der;
	size_t dlen = sizeof(der);
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	EVP_PKEY *pk;
	BIO *bio;
	int want = jwt_alg_kty(alg), kty;
	long n = -1;

	if (want != JWT_KTY_RSA && want != JWT_KTY_EC) {
		keys_err(err, errlen, "alg '%s' does not sign with a PEM key", alg);
		return -1;
	}
	bio = BIO_new_mem_buf(pem, (int)pemlen);
	pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, keys_no_pass, NULL) : NULL;
	BIO_free(bio);
	if (!pk) {
		keys_err(err, errlen, "no unencrypted PEM private key");
		return -1;
	}
	kty = keys_check(pk, true, err, errlen);
	if (kty < 0)
		goto out;
	if (kty != want) {
		keys_err(err, errlen, "%s needs an %s key", alg,
			 want == JWT_KTY_RSA ? "RSA" : "EC P-256");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(md, NULL, &dlen, data, len) != 1 || dlen > sizeof(der) ||
	    EVP_DigestSign(md, der, &dlen, data, len) != 1) {
		keys_err(err, errlen, "unable to sign");
		goto out;
	}
	if (kty == JWT_KTY_RSA) {
		memcpy(sig, der, dlen);
		n = (long)dlen;
		goto out;
	}
	es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32) {
		keys_err(err, errlen, "unable to sign");
		goto out;
	}
	n = 64;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return n;
}
