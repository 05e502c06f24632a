/*
 * line: what `chat-cli connect` makes of one line of stdin. A JSON object
 * with a "type" is a request of its own and goes out as it is; anything
 * else becomes the body of a publish to the first room: valid JSON as that
 * JSON, any other text as a string. Pure functions, no I/O, so the rules
 * are easy to test.
 */
#include "line.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

int line_classify(const char *line, size_t len, bool text_only,
		  struct line_req *out)
{
	json_t *v = NULL;

	memset(out, 0, sizeof(*out));
	if (!text_only)
		v = json_loadb(line, len, JSON_DECODE_ANY, NULL);
	if (v && json_is_object(v) && json_object_get(v, "type")) {
		json_t *t = json_object_get(v, "type");

		out->kind = LINE_RAW;
		out->is_publish = json_is_string(t) &&
				  !strcmp(json_string_value(t), "publish");
		if (out->is_publish) {
			json_t *ref = json_object_get(v, "ref");

			if (ref)
				out->ref_key = json_dumps(ref, JSON_COMPACT |
							  JSON_ENCODE_ANY);
		}
		json_decref(v);
		return 0;
	}
	if (!v) {
		v = json_stringn(line, len);
		if (!v)
			return -1; /* not UTF-8 */
	}
	out->kind = LINE_BODY;
	out->body = v;
	return 0;
}

char *line_publish(const char *room, json_t *body, const char *ref)
{
	json_t *o;
	char *s;

	o = json_pack("{s:s,s:s,s:O,s:s}", "type", "publish", "room", room,
		      "body", body, "ref", ref);
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

char *line_ref_key(json_t *frame)
{
	json_t *ref = json_object_get(frame, "ref");

	return ref ? json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

void line_req_free(struct line_req *r)
{
	json_decref(r->body);
	free(r->ref_key);
	memset(r, 0, sizeof(*r));
}
