/* Unit tests of chat-gw's client frame parser (cmd/chat-gw/request.c). */
#include <string.h>

#include "../../cmd/chat-gw/request.h"
#include "testhelp.h"

static int parse(const char *s, struct request *r, const char **msg)
{
	*msg = NULL;
	return request_parse(s, strlen(s), r, msg);
}

int main(void)
{
	struct request r;
	const char *msg;

	TEST("join with since", parse("{\"type\":\"join\",\"room\":\"lobby\",\"since\":7}", &r, &msg) == 0 &&
	     r.type == REQ_JOIN && !strcmp(r.room, "lobby") && r.has_since && r.since == 7);
	request_free(&r);
	TEST("join without since", parse("{\"type\":\"join\",\"room\":\"a.b:c@d/e-f_g\"}", &r, &msg) == 0 &&
	     !r.has_since);
	request_free(&r);
	TEST("since null is no since", parse("{\"type\":\"join\",\"room\":\"r\",\"since\":null}", &r, &msg) == 0 &&
	     !r.has_since);
	request_free(&r);
	TEST("negative since refused", parse("{\"type\":\"join\",\"room\":\"r\",\"since\":-1}", &r, &msg) < 0 &&
	     strstr(msg, "since"));
	request_free(&r);
	TEST("publish keeps body and ref", parse("{\"type\":\"publish\",\"room\":\"r\",\"body\":[1],\"ref\":\"x\"}", &r, &msg) == 0 &&
	     json_is_array(r.body) && r.ref && !strcmp(r.ref, "\"x\""));
	request_free(&r);
	TEST("publish with a null body is a body", parse("{\"type\":\"publish\",\"room\":\"r\",\"body\":null}", &r, &msg) == 0 &&
	     json_is_null(r.body));
	request_free(&r);
	TEST("publish without body refused", parse("{\"type\":\"publish\",\"room\":\"r\"}", &r, &msg) < 0 &&
	     !strcmp(msg, "missing body"));
	request_free(&r);
	TEST("integer ref kept on error", parse("{\"type\":\"nope\",\"ref\":42}", &r, &msg) < 0 &&
	     r.ref && !strcmp(r.ref, "42") && !strcmp(msg, "unknown type"));
	request_free(&r);
	TEST("object ref refused", parse("{\"type\":\"join\",\"room\":\"r\",\"ref\":{}}", &r, &msg) < 0 && !r.ref);
	request_free(&r);
	TEST("history limit 0 refused", parse("{\"type\":\"history\",\"room\":\"r\",\"limit\":0}", &r, &msg) < 0);
	request_free(&r);
	TEST("history limit null is default", parse("{\"type\":\"history\",\"room\":\"r\",\"limit\":null}", &r, &msg) == 0 &&
	     r.limit == 0);
	request_free(&r);
	TEST("history before", parse("{\"type\":\"history\",\"room\":\"r\",\"before\":3,\"limit\":2}", &r, &msg) == 0 &&
	     r.has_before && r.before == 3 && r.limit == 2);
	request_free(&r);
	TEST("room with a space refused", parse("{\"type\":\"leave\",\"room\":\"a b\"}", &r, &msg) < 0);
	request_free(&r);
	TEST("room of 129 bytes refused", parse("{\"type\":\"leave\",\"room\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", &r, &msg) < 0);
	request_free(&r);
	TEST("not JSON", parse("hello", &r, &msg) < 0 && !strcmp(msg, "frame is not valid JSON"));
	request_free(&r);
	TEST("not an object", parse("[]", &r, &msg) < 0 && !strcmp(msg, "frame is not a JSON object"));
	request_free(&r);
	TEST("duplicate keys refused", parse("{\"type\":\"join\",\"room\":\"a\",\"room\":\"b\"}", &r, &msg) < 0);
	request_free(&r);
	{
		/* A raw NUL byte inside the room string, with the whole frame
		 * (closing brace included) passed: it must not end the text. */
		static const char nul[] = "{\"type\":\"join\",\"room\":\"a\0b\"}";

		TEST("a raw NUL byte in a string is refused",
		     request_parse(nul, sizeof(nul) - 1, &r, &msg) < 0 &&
		     !strcmp(msg, "frame is not valid JSON"));
		request_free(&r);
	}
	TEST("an escaped NUL in a body is any JSON",
	     parse("{\"type\":\"publish\",\"room\":\"r\",\"body\":\"a\\u0000b\"}", &r, &msg) == 0 &&
	     json_string_length(r.body) == 3);
	request_free(&r);
	TEST("an escaped NUL in a room is a bad room",
	     parse("{\"type\":\"join\",\"room\":\"a\\u0000b\"}", &r, &msg) < 0 &&
	     strstr(msg, "room"));
	request_free(&r);
	TEST("a ref string is echoed as JSON text, escapes kept",
	     parse("{\"type\":\"join\",\"room\":\"r\",\"ref\":\"a\\\"b\"}", &r, &msg) == 0 &&
	     !strcmp(r.ref, "\"a\\\"b\""));
	request_free(&r);
	TEST("presence takes a limit", parse("{\"type\":\"presence\",\"room\":\"r\",\"limit\":5}", &r, &msg) == 0 &&
	     r.limit == 5);
	request_free(&r);
	return TEST_DONE();
}
