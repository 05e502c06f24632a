/*
 * test_skim: the JSON object walker shared by chat-cli, chat-gw and
 * chat-relay: finding members (value and whole-member spans), integers and
 * strings, and copying an object without some of its members byte for byte.
 */
#include <stdio.h>
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
	/* found by fuzz_upstream (UBSan): an absent member is no integer,
	 * without arithmetic on its NULL span */
	TEST("an absent member is not an integer", !skim_int(&f[3], &n));
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

	{
		const char *arr = " [ {\"seq\":1}, \"x,]\" ,[2,3] ]";
		const char *v;
		size_t vlen, pos = 0;

		TEST("array: first element", skim_array_next(arr, strlen(arr), &pos, &v, &vlen) == 1 &&
		     span_is(v, vlen, "{\"seq\":1}"));
		TEST("array: a string with a comma and bracket",
		     skim_array_next(arr, strlen(arr), &pos, &v, &vlen) == 1 &&
		     span_is(v, vlen, "\"x,]\""));
		TEST("array: a nested array", skim_array_next(arr, strlen(arr), &pos, &v, &vlen) == 1 &&
		     span_is(v, vlen, "[2,3]"));
		TEST("array: then the end", skim_array_next(arr, strlen(arr), &pos, &v, &vlen) == 0);
		pos = 0;
		TEST("array: empty", skim_array_next("[ ]", 3, &pos, &v, &vlen) == 0);
		pos = 0;
		TEST("array: not an array", skim_array_next("{}", 2, &pos, &v, &vlen) == -1);
		pos = 0;
		TEST("array: a missing comma", skim_array_next("[1 2]", 5, &pos, &v, &vlen) == 1 &&
		     skim_array_next("[1 2]", 5, &pos, &v, &vlen) == -1);
	}

	{
		static const char *const good[] = {
			"{}", "[]", "0", "-0.5e+10", "\"\"", "true", " null ",
			"{\"a\":[1,{\"b\":\"\\u00e9\\n\\\"\"}],\"c\":false}",
			"\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"",
			"\"\\u0000\"", "[1e5,2E-3,0.0]",
		};
		static const char *const bad[] = {
			"", " ", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "{a:1}", "01", "1.",
			"-", ".5", "1e", "+1", "tru", "nul", "\"\\x\"", "\"\\u12g4\"",
			"\"a\nb\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
			"\"\xf4\x90\x80\x80\"", "\"\xff\"", "1 2", "{} {}", "[1]]",
			"\"unterminated",
		};
		char deep[2 * SKIM_DEPTH_MAX + 8];
		size_t i;
		bool ok = true;

		for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
			if (!skim_valid(good[i], strlen(good[i]))) {
				printf("# refused: %s\n", good[i]);
				ok = false;
			}
		TEST("valid JSON texts are accepted", ok);
		ok = true;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (skim_valid(bad[i], strlen(bad[i]))) {
				printf("# accepted: %s\n", bad[i]);
				ok = false;
			}
		TEST("invalid JSON or UTF-8 is refused", ok);
		TEST("an embedded NUL byte is refused", !skim_valid("\"a\0b\"", 5));
		memset(deep, '[', SKIM_DEPTH_MAX);
		memset(deep + SKIM_DEPTH_MAX, ']', SKIM_DEPTH_MAX);
		TEST("nesting at the bound is accepted", skim_valid(deep, 2 * SKIM_DEPTH_MAX));
		memset(deep, '[', SKIM_DEPTH_MAX + 1);
		memset(deep + SKIM_DEPTH_MAX + 1, ']', SKIM_DEPTH_MAX + 1);
		TEST("nesting past the bound is refused", !skim_valid(deep, 2 * SKIM_DEPTH_MAX + 2));
	}
	return TEST_DONE();
}
