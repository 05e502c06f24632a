/*
 * b64url: base64url without padding, for JSON Web Tokens (jwt.c, chat-cli
 * token). No I/O, no allocation: the caller gives the output room.
 */
#ifndef CHAT_B64URL_H
#define CHAT_B64URL_H

#include <stddef.h>

/* base64url without padding. Encode: out must hold 4*((n+2)/3)+1 bytes;
 * returns the length. Decode: returns the length, or -1 on a bad
 * character; out must hold 3*(n/4)+3 bytes. */
size_t b64url_encode(const void *in, size_t n, char *out);
long b64url_decode(const char *in, size_t n, unsigned char *out);

#endif
