/*
 * fuzz_request: libFuzzer target for chat-gw's client frame parser, which
 * reads every frame a client sends. Checks the promises of request.h: a
 * parse that succeeds has a valid room and the fields its type needs, and
 * numbers that came from JSON integers (never past INT64_MAX); a ref, on
 * success or failure, is JSON text of a string of at most 128 bytes or an
 * integer; a parse that fails has an explanation; nothing leaks.
 */
/* links: cmd/chat-gw/request.c lib/name.c */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "name.h"
#include "../../cmd/chat-gw/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ref(const char *ref)
{
	json_t *v;

	if (!ref)
		return;
	v = json_loads(ref, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!v || !((json_is_string(v) && json_string_length(v) <= REQ_REF_MAX) ||
		    json_is_integer(v)))
		__builtin_trap();
	json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request r;
	const char *msg = NULL;

	if (request_parse((const char *)data, size, &r, &msg) == 0) {
		if (!r.room || !name_room_valid(r.room, strlen(r.room)))
			__builtin_trap();
		if (r.type == REQ_PUBLISH && !r.body)
			__builtin_trap();
		if ((r.has_before && r.before > INT64_MAX) ||
		    (r.has_since && r.since > INT64_MAX) || r.limit > INT64_MAX)
			__builtin_trap();
		if (r.limit && r.type != REQ_HISTORY && r.type != REQ_PRESENCE)
			__builtin_trap();
		check_ref(r.ref);
	} else {
		if (!msg || !*msg)
			__builtin_trap();
		check_ref(r.ref);
	}
	request_free(&r);
	return 0;
}
