/*
 * test_skim: the JSON object walker shared by chat-cli, chat-gw and
 * chat-relay: finding members (value and whole-member spans), integers and
 * strings, and copying an object without some of its members byte for byte.
 */
#include <string.h>

#include "buf.h"
#include "skim.h"
#include "testhelp.h"

static char out_text[512];

/* skim_without into out_text; returns its result. */
static int without(const char *in, const char *const *drop, int ndrop)
{
	struct buf b = BUF_INIT(0);
	int r = skim_without(in, strlen(in), drop, ndrop, &b);

	snprintf(out_text, sizeof(out_text), "%s", b.data);
	buf_release(&b);
	return r;
}

static bool span_is(const char *p, size_t n, const char *s)
{
	return p && n == strlen(s) && !memcmp(p, s, n);
}

int main(void)
{
	const char *line = "{\"type\":\"message\", \"room\":\"r1\",\"seq\":42,"
			   "\"body\":{\"t\":[1,\"}\\\"\"]},\"route\":\"msg.r1\"}";
	struct skim_field f[4] = { { .name = "type" }, { .name = "seq" },
				   { .name = "body" }, { .name = "missing" } };
	static const char *const bus[] = { "route", "confirm", "expire" };
	struct buf small = BUF_INIT(8);
	int64_t n;

	TEST("an object is walked", skim_object(line, strlen(line), f, 4) == 0);
	TEST("a string value, quotes included", span_is(f[0].v, f[0].vlen, "\"message\""));
	TEST("a member span is key to end of value",
	     span_is(f[1].m, f[1].mlen, "\"seq\":42"));
	TEST("an integer", skim_int(&f[1], &n) && n == 42);
	TEST("a nested value with escapes and brackets in strings",
	     span_is(f[2].v, f[2].vlen, "{\"t\":[1,\"}\\\"\"]}"));
	TEST("an absent member", !f[3].v && !f[3].m);
	TEST("skim_str_is", skim_str_is(&f[0], "message") && !skim_str_is(&f[0], "messag"));
	TEST("not an object", skim_object("[1]", 3, f, 1) < 0);
	TEST("truncated", skim_object("{\"a\":\"x", 7, f, 1) < 0);

	TEST("without: last member dropped, the rest byte for byte",
	     without(line, bus, 3) == 1 &&
	     !strcmp(out_text, "{\"type\":\"message\",\"room\":\"r1\",\"seq\":42,"
			       "\"body\":{\"t\":[1,\"}\\\"\"]}}"));
	TEST("without: first and middle members",
	     without("{\"route\":\"x\",\"a\":1,\"confirm\":\"c\",\"b\":[2]}", bus, 3) == 2 &&
	     !strcmp(out_text, "{\"a\":1,\"b\":[2]}"));
	TEST("without: nothing to drop copies the object",
	     without("{\"a\":1}", bus, 3) == 0 && !strcmp(out_text, "{\"a\":1}"));
	TEST("without: every member dropped leaves {}",
	     without("{\"route\":\"x\"}", bus, 3) == 1 && !strcmp(out_text, "{}"));
	TEST("without: an empty object", without(" {} ", bus, 3) == 0 && !strcmp(out_text, "{}"));
	TEST("without: a nested member of that name stays",
	     without("{\"o\":{\"route\":1}}", bus, 3) == 0 &&
	     !strcmp(out_text, "{\"o\":{\"route\":1}}"));
	TEST("without: not an object", without("\"route\"", bus, 3) == -1);
	buf_adds(&small, "ab");
	TEST("without: a full buffer is left as it was",
	     skim_without(line, strlen(line), bus, 3, &small) == -1 &&
	     !strcmp(small.data, "ab"));
	buf_release(&small);
	return TEST_DONE();
}
