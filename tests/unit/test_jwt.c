/*
 * test_jwt: HS256 tokens: sign and verify round trip, each refusal with its
 * own code (bad signature, expired, alg none, malformed, truncated), the
 * rooms claim with fnmatch patterns, and base64url at every length 0..64.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

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
	     strstr(jwt_strerror(JWT_BAD_ALG), "HS256") &&
	     strstr(jwt_strerror(JWT_MALFORMED), "malformed"));
	return TEST_DONE();
}
