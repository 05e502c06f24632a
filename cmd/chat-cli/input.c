/*
 * input: what `chat-cli connect` makes of one line of stdin. A JSON object
 * with a "type" is a request of its own and goes out as it is; anything
 * else becomes the body of a publish to the first room: valid JSON as that
 * JSON, any other text as a string. Pure functions, no I/O, so the rules
 * are easy to test.
 */
#include "input.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

int line_classify(const char *line, size_t len, bool text_only,
		  struct line_req *out)
{
	json_t *v = NULL;

	memset(out, 0, sizeof(*out));
	if (!text_only)
		v = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (v && json_is_object(v) && json_object_get(v, "type")) {
		json_t *t = json_object_get(v, "type");

		out->kind = LINE_RAW;
		if (json_is_string(t))
			out->type = strdup(json_string_value(t));
		out->ref_key = line_ref_key(v);
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

const char *line_reply_type(const char *type)
{
	static const char *const map[][2] = {
		{ "publish", "ack" }, { "join", "joined" }, { "leave", "left" },
		{ "history", "history" }, { "presence", "presence" },
	};
	size_t i;

	if (type && !strcmp(type, "typing"))
		return NULL;
	for (i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(type, map[i][0]))
			return map[i][1];
	return "error";
}

char *line_ref_key(json_t *frame)
{
	json_t *ref = json_object_get(frame, "ref");

	return ref ? json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

void line_req_free(struct line_req *r)
{
	json_decref(r->body);
	free(r->type);
	free(r->ref_key);
	memset(r, 0, sizeof(*r));
}
