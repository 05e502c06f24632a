/*
 * request: client frame parser and validator (see request.h). All checks of
 * what a client may send live here; the hub only sees well-formed requests.
 */
#include "request.h"

#include <string.h>

#include "name.h"

static const char *const req_names[] = { "join", "leave", "publish", "history",
					 "presence", "typing", "auth" };

void request_free(struct request *r)
{
	json_decref(r->root);
	memset(r, 0, sizeof(*r));
}

/* An optional non-negative integer field. 0 absent, 1 present, -1 bad. */
static int req_uint(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 1;
}

int request_parse(const char *text, size_t n, struct request *r, const char **msg)
{
	json_t *v;
	const char *type;
	size_t i;
	int k;

	memset(r, 0, sizeof(*r));
	r->root = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!r->root) {
		*msg = "frame is not valid JSON";
		return -1;
	}
	if (!json_is_object(r->root)) {
		*msg = "frame is not a JSON object";
		return -1;
	}
	v = json_object_get(r->root, "ref");
	if (v && ((json_is_string(v) && json_string_length(v) <= REQ_REF_MAX) ||
		  json_is_integer(v))) {
		size_t len = json_dumpb(v, r->reftext, sizeof(r->reftext) - 1,
					JSON_COMPACT | JSON_ENCODE_ANY);

		if (len == 0 || len >= sizeof(r->reftext)) {
			*msg = "ref must be a string of at most 128 bytes or an integer";
			return -1;
		}
		r->reftext[len] = '\0';
		r->ref = r->reftext;
	} else if (v) {
		*msg = "ref must be a string of at most 128 bytes or an integer";
		return -1;
	}
	v = json_object_get(r->root, "type");
	if (!json_is_string(v)) {
		*msg = "missing type";
		return -1;
	}
	type = json_string_value(v);
	for (i = 0; i < sizeof(req_names) / sizeof(req_names[0]); i++)
		if (!strcmp(type, req_names[i]))
			break;
	if (i == sizeof(req_names) / sizeof(req_names[0])) {
		*msg = "unknown type";
		return -1;
	}
	r->type = (enum req_type)i;

	if (r->type == REQ_AUTH) {
		v = json_object_get(r->root, "token");
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 4096) {
			*msg = "auth needs a token (a string of at most 4096 bytes)";
			return -1;
		}
		r->token = json_string_value(v);
		r->tokenlen = json_string_length(v);
		return 0;
	}
	v = json_object_get(r->root, "room");
	if (!json_is_string(v)) {
		*msg = "missing room";
		return -1;
	}
	if (!name_room_valid(json_string_value(v), json_string_length(v))) {
		*msg = "room must be 1-128 characters of A-Z a-z 0-9 _ . : @ / -";
		return -1;
	}
	r->room = json_string_value(v);

	switch (r->type) {
	case REQ_JOIN:
		k = req_uint(r->root, "since", &r->since);
		if (k < 0) {
			*msg = "since must be a non-negative integer";
			return -1;
		}
		r->has_since = k == 1;
		break;
	case REQ_PUBLISH:
		r->body = json_object_get(r->root, "body");
		if (!r->body) {
			*msg = "missing body";
			return -1;
		}
		break;
	case REQ_HISTORY:
		k = req_uint(r->root, "before", &r->before);
		if (k < 0) {
			*msg = "before must be a non-negative integer";
			return -1;
		}
		r->has_before = k == 1;
		/* fall through */
	case REQ_PRESENCE:
		k = req_uint(r->root, "limit", &r->limit);
		if (k < 0 || (k == 1 && r->limit == 0)) {
			*msg = "limit must be a positive integer";
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}
