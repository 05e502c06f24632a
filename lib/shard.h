/*
 * shard: which ingest shard sequences a room. Every gateway and relay of a
 * system must agree, so the function is fixed and documented in
 * chat-protocol(7): FNV-1a, 32 bits, over the room name's bytes, modulo the
 * shard count.
 */
#ifndef CHAT_SHARD_H
#define CHAT_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define SHARD_MAX 1024   /* most ingest shards a system may have */

/* The FNV-1a 32-bit hash of s (n bytes). */
uint32_t shard_hash(const char *s, size_t n);
/* The shard of room (n bytes) among shards (>= 1): 0 .. shards-1. */
static inline uint32_t shard_of(const char *room, size_t n, uint32_t shards)
{
	return shards > 1 ? shard_hash(room, n) % shards : 0;
}

#endif
