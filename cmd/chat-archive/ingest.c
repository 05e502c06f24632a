/*
 * ingest: what store makes of a line on its stdin, with no I/O so it can be
 * unit tested and fuzzed. The whole line is checked with jansson (valid
 * JSON, valid UTF-8, no duplicate members: the spans below must be the
 * members jansson saw), and the members store keeps are taken as spans of
 * the line with lib/skim, so the body is stored byte for byte as the
 * gateway wrote it, never re-encoded.
 *
 * A publish (the contract in man/chat-archive.1):
 *   {"type":"publish","id":ID,"room":R,"from":U,"ts":MS,"node":N,
 *    "body":JSON,"tag":N?}
 * The relay's own lines: {"type":"confirm"|"nack","confirm":N} and
 * {"type":"bus","state":...}. A line that carries "tag" is a delivery from
 * the ingest queue, whatever its type.
 */
#include "archive.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "name.h"
#include "skim.h"

bool ingest_id_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > ARCHIVE_ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == ':' || c == '-'))
			return false;
	}
	return true;
}

static void ingest_bad(struct ingest *in, const char *why)
{
	in->kind = INGEST_BAD;
	snprintf(in->why, sizeof(in->why), "%s", why);
}

/* Whether skim found f as a string (a member jansson saw may be missing
 * for skim when its key is written with escapes). */
static bool ingest_is_str(const struct skim_field *f)
{
	return f->v && f->vlen >= 2 && f->v[0] == '"';
}

/* The span of a string value without its quotes (skim checked the quotes). */
static struct span ingest_str(const char *line, const struct skim_field *f)
{
	struct span s = { (size_t)(f->v - line) + 1, f->vlen - 2 };

	return s;
}

enum { F_TYPE, F_ID, F_ROOM, F_FROM, F_TS, F_BODY, F_TAG, F_CONFIRM, F_N };

void ingest_parse(const char *line, size_t len, size_t max_body,
		  struct ingest *in)
{
	struct skim_field f[F_N] = {
		[F_TYPE] = { .name = "type" }, [F_ID] = { .name = "id" },
		[F_ROOM] = { .name = "room" }, [F_FROM] = { .name = "from" },
		[F_TS] = { .name = "ts" }, [F_BODY] = { .name = "body" },
		[F_TAG] = { .name = "tag" }, [F_CONFIRM] = { .name = "confirm" },
	};
	json_error_t jerr;
	json_t *root, *v;
	const char *type;

	memset(in, 0, sizeof(*in));
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			  &jerr);
	if (!root) {
		in->kind = INGEST_BAD;
		snprintf(in->why, sizeof(in->why), "not valid JSON: %.80s",
			 jerr.text);
		return;
	}
	if (!json_is_object(root) || skim_object(line, len, f, F_N) < 0) {
		ingest_bad(in, "not a JSON object");
		goto out;
	}
	v = json_object_get(root, "tag");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			ingest_bad(in, "\"tag\" is not a positive integer");
			goto out;
		}
		in->tagged = true;
		in->tag = (uint64_t)json_integer_value(v);
	}
	v = json_object_get(root, "type");
	if (!json_is_string(v)) {
		ingest_bad(in, "no \"type\" string");
		goto out;
	}
	type = json_string_value(v);
	if (!in->tagged && (!strcmp(type, "confirm") || !strcmp(type, "nack"))) {
		v = json_object_get(root, "confirm");
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			ingest_bad(in, "\"confirm\" is not one of ours "
				   "(a positive integer)");
			goto out;
		}
		in->kind = strcmp(type, "nack") ? INGEST_CONFIRM : INGEST_NACK;
		in->confirm = (uint64_t)json_integer_value(v);
		goto out;
	}
	if (!in->tagged && !strcmp(type, "bus")) {
		in->kind = INGEST_OTHER;
		goto out;
	}
	if (strcmp(type, "publish")) {
		ingest_bad(in, "\"type\" is not publish");
		goto out;
	}
	if (!json_is_string(json_object_get(root, "id")) ||
	    !ingest_is_str(&f[F_ID]) ||
	    !ingest_id_valid(f[F_ID].v + 1, f[F_ID].vlen - 2)) {
		ingest_bad(in, "no valid \"id\"");
		goto out;
	}
	if (!json_is_string(json_object_get(root, "room")) ||
	    !ingest_is_str(&f[F_ROOM]) ||
	    !name_room_valid(f[F_ROOM].v + 1, f[F_ROOM].vlen - 2)) {
		ingest_bad(in, "no valid \"room\"");
		goto out;
	}
	if (!json_is_string(json_object_get(root, "from")) ||
	    !ingest_is_str(&f[F_FROM]) ||
	    !name_user_valid(f[F_FROM].v + 1, f[F_FROM].vlen - 2)) {
		ingest_bad(in, "no valid \"from\"");
		goto out;
	}
	v = json_object_get(root, "ts");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    !skim_int(&f[F_TS], &in->ts)) {
		ingest_bad(in, "\"ts\" is not a non-negative integer");
		goto out;
	}
	if (!json_object_get(root, "body") || !f[F_BODY].v) {
		ingest_bad(in, "no \"body\"");
		goto out;
	}
	if (f[F_BODY].vlen > max_body) {
		snprintf(in->why, sizeof(in->why),
			 "body of %zu bytes is over --max-body (%zu)",
			 f[F_BODY].vlen, max_body);
		in->kind = INGEST_BAD;
		goto out;
	}
	in->id = ingest_str(line, &f[F_ID]);
	in->room = ingest_str(line, &f[F_ROOM]);
	in->from = ingest_str(line, &f[F_FROM]);
	in->body.off = (size_t)(f[F_BODY].v - line);
	in->body.len = f[F_BODY].vlen;
	in->kind = INGEST_PUBLISH;
out:
	json_decref(root);
}
