/*
 * fuzz_archive: libFuzzer target for what chat-archive parses from its
 * stdin: ingest lines (store) and queries (serve). Checks the promises of
 * archive.h: a line taken as a publish has spans inside the line, valid
 * names, a body within the limit that is JSON by itself, and the message
 * line rendered from it is valid JSON; a line taken as a query renders
 * answers that are valid JSON and fit the line limit.
 */
/* links: cmd/chat-archive/ingest.c cmd/chat-archive/query.c cmd/chat-archive/msgline.c lib/skim.c lib/name.c lib/id.c lib/buf.c */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"
#include "../../cmd/chat-archive/archive.h"

#define MAX_BODY 4096

static void valid_json(const char *p, size_t n, size_t flags)
{
	json_t *j = json_loadb(p, n, flags | JSON_ALLOW_NUL, NULL);

	if (!j)
		__builtin_trap();
	json_decref(j);
}

static void check_span(struct span s, size_t size)
{
	if (s.off > size || s.len > size - s.off)
		__builtin_trap();
}

static void fuzz_ingest(const char *p, size_t size)
{
	struct buf b = BUF_INIT(0);
	struct ingest in;
	struct msgline m;

	ingest_parse(p, size, MAX_BODY, &in);
	if (in.kind == INGEST_BAD && !in.why[0])
		__builtin_trap();
	if (in.kind != INGEST_PUBLISH)
		return;
	check_span(in.id, size);
	check_span(in.room, size);
	check_span(in.from, size);
	check_span(in.body, size);
	if (!ingest_id_valid(p + in.id.off, in.id.len) ||
	    !name_room_valid(p + in.room.off, in.room.len) ||
	    !name_user_valid(p + in.from.off, in.from.len) ||
	    in.body.len > MAX_BODY || in.ts < 0)
		__builtin_trap();
	valid_json(p + in.body.off, in.body.len, JSON_DECODE_ANY);
	m = (struct msgline){ p + in.room.off, in.room.len, 1, p + in.id.off,
			      in.id.len, p + in.from.off, in.from.len, in.ts,
			      p + in.body.off, in.body.len };
	if (msgline_render(&b, &m, true, in.tagged ? in.tag : 0) < 0)
		__builtin_trap();
	valid_json(b.data, b.len, 0);
	buf_release(&b);
}

static void fuzz_query(const char *p, size_t size)
{
	struct buf b = BUF_INIT(0);
	struct query q;
	struct answer_cut cut;
	struct msgline m[3];
	int i;

	query_parse(p, size, 100, &q);
	if (q.kind == QUERY_BAD && !q.why[0])
		__builtin_trap();
	if (q.kind != QUERY_HISTORY && q.kind != QUERY_RECOVER)
		return;
	if (q.kind == QUERY_HISTORY && (q.limit < 1 || q.limit > 100))
		__builtin_trap();
	for (i = 0; i < 3; i++)
		m[i] = (struct msgline){ q.room, strlen(q.room), 10 - i, "i", 1,
					 "u", 1, 5, "\"x\\u0000\"", 9 };
	for (i = 0; i < 2; i++) {
		size_t max = i ? 1 << 20 : 600;

		buf_reset(&b);
		if (q.kind == QUERY_HISTORY)
			answer_history(&b, &q, m, 3, false, max, &cut);
		else
			answer_recover(&b, &q, 10, m, 3, max, &cut);
		if (b.len > max)
			__builtin_trap();
		valid_json(b.data, b.len - 1, 0);
	}
	buf_reset(&b);
	answer_error(&b, &q, "x");
	valid_json(b.data, b.len - 1, 0);
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_ingest((const char *)data, size);
	fuzz_query((const char *)data, size);
	return 0;
}
