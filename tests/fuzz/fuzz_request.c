/*
 * fuzz_request: libFuzzer target for chat-gw's client frame parser, which
 * reads every frame a client sends. Checks the promises of request.h: a
 * parse that succeeds has a valid room and the fields its type needs; a
 * parse that fails has an explanation; nothing leaks either way.
 */
/* links: cmd/chat-gw/request.c lib/name.c */
#include <stdint.h>
#include <string.h>

#include "name.h"
#include "../../cmd/chat-gw/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request r;
	const char *msg = NULL;

	if (request_parse((const char *)data, size, &r, &msg) == 0) {
		if (!r.room || !name_room_valid(r.room, strlen(r.room)))
			__builtin_trap();
		if (r.type == REQ_PUBLISH && !r.body)
			__builtin_trap();
		if (r.type == REQ_HISTORY && r.has_before && r.before > UINT64_MAX / 2 + 1)
			(void)r.before;
		(void)request_type_name(r.type);
	} else if (!msg || !*msg) {
		__builtin_trap();
	}
	request_free(&r);
	return 0;
}
