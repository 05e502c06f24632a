/*
 * test_shard: the ingest shard of a room is FNV-1a 32 modulo the shard
 * count, as chat-protocol(7) documents, so programs written elsewhere can
 * compute it too. The reference values are FNV-1a's published test vectors.
 */
#include <stdio.h>
#include <string.h>

#include "shard.h"
#include "testhelp.h"

int main(void)
{
	uint32_t seen[4] = { 0, 0, 0, 0 };
	char room[16];
	int i;

	TEST("FNV-1a of the empty string", shard_hash("", 0) == 0x811c9dc5u);
	TEST("FNV-1a of \"a\"", shard_hash("a", 1) == 0xe40c292cu);
	TEST("FNV-1a of \"foobar\"", shard_hash("foobar", 6) == 0xbf9cf968u);
	TEST("one shard: always 0", shard_of("lobby", 5, 1) == 0 && shard_of("x", 1, 0) == 0);
	TEST("the shard is the hash modulo the count",
	     shard_of("foobar", 6, 7) == 0xbf9cf968u % 7);
	for (i = 0; i < 400; i++) {
		snprintf(room, sizeof(room), "room%d", i);
		seen[shard_of(room, strlen(room), 4)]++;
	}
	TEST("400 rooms spread over 4 shards, each gets some",
	     seen[0] > 50 && seen[1] > 50 && seen[2] > 50 && seen[3] > 50);
	return TEST_DONE();
}
