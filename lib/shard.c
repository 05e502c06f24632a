/* shard: FNV-1a over a room name (see shard.h). */
#include "shard.h"

uint32_t shard_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}
