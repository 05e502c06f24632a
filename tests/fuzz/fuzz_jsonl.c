/*
 * fuzz_jsonl: libFuzzer target for lib/jsonl.c, the line reader in front
 * of every pipe of the toolkit (chat-gw's stdin, chat-relay's child, the
 * archive and presence). The first input byte picks the line bound and the
 * chunk size; the rest is fed in chunks. Checks the promises of jsonl.h:
 * every line is within the bound, holds no newline, is NUL-terminated and
 * is not empty; the lines and the overlong reports together account for
 * every newline-terminated line of the input, whatever the chunking.
 */
/* links: lib/jsonl.c lib/buf.c */
#include <stdint.h>
#include <string.h>

#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lines and overlong reports from reading data with this bound and chunk. */
static size_t read_all(const uint8_t *data, size_t size, size_t max, size_t chunk,
		       size_t *bytes)
{
	struct jsonl j;
	const char *line;
	size_t len, off = 0, items = 0;
	int r;

	*bytes = 0;
	jsonl_init(&j, max);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (jsonl_feed(&j, data + off, n) < 0)
			__builtin_trap();
		off += n;
		while ((r = jsonl_next(&j, &line, &len)) != JSONL_NONE) {
			items++;
			if (r != JSONL_LINE)
				continue;
			if (len == 0 || len > max || memchr(line, '\n', len) || line[len] != '\0')
				__builtin_trap();
			*bytes += len;
		}
	}
	jsonl_finish(&j);
	while ((r = jsonl_next(&j, &line, &len)) != JSONL_NONE) {
		items++;
		if (r == JSONL_LINE) {
			if (len == 0 || len > max || line[len] != '\0')
				__builtin_trap();
			*bytes += len;
		}
	}
	jsonl_free(&j);
	return items;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max, chunk, a, b, ba, bb;

	if (size < 1)
		return 0;
	max = 1 + (data[0] & 0x3f);
	chunk = 1 + (data[0] >> 6) * 7;
	data++;
	size--;
	/* the same input in one piece and in chunks: the same lines */
	a = read_all(data, size, max, chunk, &ba);
	b = read_all(data, size, max, size ? size : 1, &bb);
	if (a != b || ba != bb)
		__builtin_trap();
	return 0;
}
