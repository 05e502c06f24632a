/*
 * test_jsonl: line splitting under every way bytes can arrive: whole, split
 * byte by byte, in random chunks, with CRLF, empty lines, overlong lines and
 * a last line without a newline.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonl.h"
#include "testhelp.h"

/* Pull every available item into out as "L:line\n" or "O\n". */
static void drain(struct jsonl *j, struct buf *out)
{
	const char *line;
	size_t len;
	int r;

	while ((r = jsonl_next(j, &line, &len)) != JSONL_NONE) {
		if (r == JSONL_LINE) {
			buf_adds(out, "L:");
			buf_add(out, line, len);
			buf_adds(out, line[len] == '\0' ? "\n" : "!NOTNUL\n");
		} else {
			buf_adds(out, "O\n");
		}
	}
}

/* Feed in in chunks of step bytes (0: random 1..97), draining after each
 * feed, then finish and drain. Returns what came out. */
static char *split(const char *in, size_t n, size_t max_line, size_t step,
		   uint64_t *overlong)
{
	struct jsonl j;
	struct buf out = BUF_INIT(0);
	size_t i = 0, k;

	jsonl_init(&j, max_line);
	while (i < n) {
		k = step ? step : (size_t)(rand() % 97) + 1;
		if (k > n - i)
			k = n - i;
		jsonl_feed(&j, in + i, k);
		i += k;
		drain(&j, &out);
	}
	jsonl_finish(&j);
	drain(&j, &out);
	if (overlong)
		*overlong = j.overlong;
	jsonl_free(&j);
	return buf_detach(&out, NULL);
}

/* Print s as TAP diagnostic lines. */
static void diag(const char *s)
{
	size_t n;

	for (; *s; s += n + (s[n] == '\n')) {
		n = strcspn(s, "\n");
		printf("#   %.*s\n", (int)n, s);
	}
}

static int same(const char *in, size_t max_line, size_t step, const char *want,
		uint64_t want_overlong)
{
	uint64_t ov;
	char *got = split(in, strlen(in), max_line, step, &ov);
	int ok = !strcmp(got, want) && ov == want_overlong;

	if (!ok) {
		printf("# step %zu, overlong %llu, got:\n", step, (unsigned long long)ov);
		diag(got);
		printf("# want:\n");
		diag(want);
	}
	free(got);
	return ok;
}

int main(void)
{
	static const char mixed[] =
		"{\"a\":1}\n\r\n\n{\"b\":2}\r\n0123456789abcdef\nshort\n"
		"0123456789\r\n\n12345678\r\nlast";
	static const char mixed_out[] =
		"L:{\"a\":1}\nL:{\"b\":2}\nO\nL:short\nO\nL:12345678\nL:last\n";
	struct jsonl j;
	struct buf big = BUF_INIT(0), want = BUF_INIT(0);
	const char *line;
	size_t len, step;
	int r, ok, i;

	TEST("two lines", same("a\nb\n", 16, 100, "L:a\nL:b\n", 0));
	TEST("CRLF: the \\r is removed", same("a\r\nbc\r\n", 16, 100, "L:a\nL:bc\n", 0));
	TEST("a lone \\r inside a line is kept", same("a\rb\n", 16, 100, "L:a\rb\n", 0));
	TEST("empty lines are skipped", same("\n\n\r\n\na\n\n", 16, 100, "L:a\n", 0));
	TEST("only newlines: nothing", same("\n\n\n", 16, 1, "", 0));
	TEST("last line without newline after finish", same("a\nb", 16, 100, "L:a\nL:b\n", 0));
	TEST("last line without newline, CR stripped", same("a\r", 16, 100, "L:a\n", 0));
	TEST("a line of exactly max_line is accepted", same("12345678\n", 8, 100, "L:12345678\n", 0));
	TEST("a line of max_line + CRLF is accepted",
	     same("12345678\r\nx\n", 8, 100, "L:12345678\nL:x\n", 0));
	TEST("a line of max_line + CRLF, byte by byte",
	     same("12345678\r\nx\n", 8, 1, "L:12345678\nL:x\n", 0));
	TEST("max_line + CR and more bytes is overlong",
	     same("12345678\rx\ny\n", 8, 1, "O\nL:y\n", 1));
	TEST("max_line + 1 is dropped, counted, the next line comes",
	     same("123456789\nok\n", 8, 100, "O\nL:ok\n", 1));
	TEST("overlong fed byte by byte: counted once, stream continues",
	     same("0123456789012345678901234567890\nok\n", 8, 1, "O\nL:ok\n", 1));
	TEST("two overlong lines in a row", same("aaaaaaaaaaaa\nbbbbbbbbbbbbbb\nc\n", 8, 3,
						 "O\nO\nL:c\n", 2));
	TEST("overlong last line without newline: dropped at finish",
	     same("ok\n0123456789abc", 8, 100, "L:ok\nO\n", 1));
	TEST("overlong last line, byte by byte", same("ok\n0123456789abc", 8, 1, "L:ok\nO\n", 1));
	for (step = 1, ok = 1; ok && step <= 40; step++)
		ok = same(mixed, 8, step, mixed_out, 2);
	TEST("mixed input gives the same lines for every chunk size 1..40", ok);

	/* Many lines in random chunks. */
	srand(7);
	for (i = 0; i < 2000; i++) {
		buf_addf(&big, "{\"n\":%d,\"pad\":\"%.*s\"}%s\n", i, i % 50,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			 i % 3 ? "" : "\r");
		buf_addf(&want, "L:{\"n\":%d,\"pad\":\"%.*s\"}\n", i, i % 50,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	}
	TEST("2000 lines in random chunks arrive whole and in order",
	     same(big.data, 128, 0, want.data, 0));
	buf_release(&big);
	buf_release(&want);

	/* Direct API checks. */
	jsonl_init(&j, 16);
	jsonl_feed(&j, "abc", 3);
	TEST("partial line: JSONL_NONE", jsonl_next(&j, &line, &len) == JSONL_NONE);
	TEST("jsonl_pending counts the partial line", jsonl_pending(&j) == 3);
	jsonl_feed(&j, "d\nef", 4);
	r = jsonl_next(&j, &line, &len);
	TEST("completed line", r == JSONL_LINE && len == 4 && !strcmp(line, "abcd"));
	TEST("pending is what is left", jsonl_pending(&j) == 2);
	TEST("then none", jsonl_next(&j, &line, &len) == JSONL_NONE);
	jsonl_feed(&j, "g\0h\n", 4);
	r = jsonl_next(&j, &line, &len);
	TEST("a NUL byte inside a line is kept in len",
	     r == JSONL_LINE && len == 5 && !memcmp(line, "efg\0h", 6));
	jsonl_finish(&j);
	TEST("finish with nothing pending: none", jsonl_next(&j, &line, &len) == JSONL_NONE);
	TEST("and none again", jsonl_next(&j, &line, &len) == JSONL_NONE &&
	     jsonl_pending(&j) == 0);
	jsonl_free(&j);

	jsonl_init(&j, 4);
	jsonl_feed(&j, "0123456789", 10);
	TEST("overlong reported while the line is still coming",
	     jsonl_next(&j, &line, &len) == JSONL_OVERLONG && j.overlong == 1);
	TEST("the dropped bytes are not held", jsonl_pending(&j) == 0);
	jsonl_feed(&j, "0123456789", 10);
	TEST("more of it: nothing, not counted again",
	     jsonl_next(&j, &line, &len) == JSONL_NONE && j.overlong == 1 &&
	     jsonl_pending(&j) == 0);
	jsonl_feed(&j, "xx\nyy\n", 6);
	r = jsonl_next(&j, &line, &len);
	TEST("the line after it", r == JSONL_LINE && !strcmp(line, "yy") && j.overlong == 1);
	jsonl_free(&j);
	return TEST_DONE();
}
