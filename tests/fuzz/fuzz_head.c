/*
 * fuzz_head: libFuzzer target for the door's view of a request head
 * (head_scan in cmd/chat-gw/head.c), which sees every byte a stranger
 * sends before anything else does. The input is fed whole and in pieces
 * of every size from 1 to 17 (the first byte picks the piece size): the
 * answer must not depend on how the bytes came, WHOLE and BAD_METHOD
 * only once the blank line is there, WHOLE only for "GET " or "HEAD ".
 */
/* links: cmd/chat-gw/head.c cmd/chat-gw/tls.c cmd/chat-gw/gw.c lib/map.c lib/log.c lib/metrics.c lib/buf.c */
#include <stdint.h>
#include <string.h>

#include "../../cmd/chat-gw/head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t piece, len, first_done = 0;
	int whole, st = HEAD_MORE;

	if (size < 1)
		return 0;
	piece = 1 + data[0] % 17;
	p++;
	size--;
	whole = head_scan(p, size, 0);
	if (whole != HEAD_MORE && !memmem(p, size, "\r\n\r\n", 4))
		__builtin_trap();
	if (whole == HEAD_WHOLE && (size < 5 || (memcmp(p, "GET ", 4) && memcmp(p, "HEAD ", 5))))
		__builtin_trap();
	/* piece by piece, as reads deliver it: the first answer other than
	 * MORE comes where the blank line first ends, and is the same */
	for (len = 0; len < size && st == HEAD_MORE;) {
		size_t from = len;

		len = len + piece < size ? len + piece : size;
		st = head_scan(p, len, from);
		first_done = len;
	}
	if (st != HEAD_MORE) {
		const char *end = memmem(p, size, "\r\n\r\n", 4);

		if (!end || (size_t)(end - p) + 4 > first_done ||
		    (size_t)(end - p) + 4 + piece <= first_done)
			__builtin_trap();
		if (head_scan(p, (size_t)(end - p) + 4, 0) != st)
			__builtin_trap();
	}
	if ((st == HEAD_MORE) != (whole == HEAD_MORE))
		__builtin_trap();
	return 0;
}
