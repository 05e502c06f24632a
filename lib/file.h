/*
 * file: read a small file whole (a secret, a token), the one way every
 * program does it, so that a secret read by chat-cli to sign a token and by
 * chat-gw to verify it is the same bytes.
 */
#ifndef CHAT_FILE_H
#define CHAT_FILE_H

#include <stddef.h>

/* Read path whole, at most max bytes, and strip trailing white space.
 * Returns a malloc'd NUL-terminated string (its length in *len), or NULL
 * with errno set (ENOBUFS: longer than max). */
char *file_read_small(const char *path, size_t max, size_t *len);

#endif
