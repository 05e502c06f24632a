/*
 * name: what a room or user name may be. Rooms become parts of AMQP routing
 * keys and Redis keys, so they are kept to a safe alphabet.
 */
#ifndef CHAT_NAME_H
#define CHAT_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 128

/* Room: 1..128 bytes of [A-Za-z0-9_.:@/-]. */
bool name_room_valid(const char *s, size_t n);
/* User: 1..128 bytes of printable ASCII without space, quote or backslash. */
bool name_user_valid(const char *s, size_t n);

#endif
