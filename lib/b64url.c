/*
 * b64url: base64url without padding (RFC 4648 section 5), strict: the
 * decoder refuses what the encoder would never write (see b64url.h).
 */
#include "b64url.h"

#include <stdint.h>

static const char b64url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64url_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
		out[o++] = b64url_chars[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static int b64url_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long b64url_decode(const char *in, size_t n, unsigned char *out)
{
	uint32_t acc = 0;
	size_t i;
	long o = 0;
	int bits = 0;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		int v = b64url_val(in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	/* Unused low bits of the last character must be zero, so that each
	 * byte string has exactly one encoding (no malleable signatures). */
	if (acc & ((1u << bits) - 1))
		return -1;
	return o;
}
