/*
 * test_buf: the buffer invariants every reader and queue relies on: never
 * NULL, always NUL-terminated, bounded by max, unchanged on failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "testhelp.h"

int main(void)
{
	struct buf b = BUF_INIT(0), m;
	char big[300], *p;
	size_t len, cap;
	int i, ok;

	TEST("BUF_INIT: empty, NUL-terminated, not NULL",
	     b.data && b.data[0] == '\0' && b.len == 0 && b.cap == 0);
	buf_init(&b, 0);
	TEST("buf_init: empty string", b.data && !strcmp(b.data, "") && b.len == 0);

	TEST("buf_add returns 0", buf_add(&b, "abc", 3) == 0);
	TEST("buf_add: contents and NUL", b.len == 3 && !memcmp(b.data, "abc", 4));
	TEST("buf_adds appends", buf_adds(&b, "def") == 0 && !strcmp(b.data, "abcdef"));
	TEST("buf_addf formats", buf_addf(&b, "-%d-%s", 42, "x") == 0 &&
	     !strcmp(b.data, "abcdef-42-x") && b.len == 11);
	TEST("buf_add of 0 bytes changes nothing", buf_add(&b, NULL, 0) == 0 &&
	     b.len == 11 && b.data[11] == '\0');

	memset(big, 'z', sizeof(big));
	for (i = 0; i < 100; i++)
		buf_add(&b, big, sizeof(big));
	ok = b.len == 11 + 100 * sizeof(big) && b.data[b.len] == '\0' &&
	     b.data[11] == 'z' && b.data[b.len - 1] == 'z' && b.cap > b.len;
	TEST("growth over many appends keeps contents", ok);

	buf_consume(&b, 11);
	TEST("buf_consume drops the head", b.len == 100 * sizeof(big) &&
	     b.data[0] == 'z' && b.data[b.len] == '\0');
	cap = b.cap;
	buf_reset(&b);
	TEST("buf_reset empties and keeps memory", b.len == 0 && b.data[0] == '\0' &&
	     b.cap == cap);
	buf_adds(&b, "hello");
	buf_consume(&b, 2);
	TEST("buf_consume partial", !strcmp(b.data, "llo") && b.len == 3);
	buf_consume(&b, 99);
	TEST("buf_consume past the end empties", b.len == 0 && b.data[0] == '\0');

	buf_adds(&b, "keep");
	p = buf_detach(&b, &len);
	TEST("buf_detach hands out the contents", p && len == 4 && !strcmp(p, "keep"));
	TEST("buf_detach leaves the buffer empty and usable",
	     b.len == 0 && b.cap == 0 && b.data && b.data[0] == '\0' &&
	     buf_adds(&b, "again") == 0 && !strcmp(b.data, "again"));
	free(p);
	buf_release(&b);
	p = buf_detach(&b, &len);
	TEST("buf_detach of an empty buffer gives a malloc'd \"\"",
	     p && len == 0 && p[0] == '\0');
	free(p);
	TEST("buf_release: empty and usable", b.len == 0 && b.data[0] == '\0' &&
	     buf_adds(&b, "x") == 0 && !strcmp(b.data, "x"));

	/* Overflowing sizes must fail, never wrap round to a small allocation. */
	errno = 0;
	TEST("buf_grow(SIZE_MAX) fails", buf_grow(&b, SIZE_MAX) == -1 && errno == ENOMEM);
	TEST("buf_grow(SIZE_MAX - len) fails",
	     buf_grow(&b, SIZE_MAX - b.len) == -1 && b.len == 1 && !strcmp(b.data, "x"));
	buf_release(&b);

	/* The maximum. */
	buf_init(&m, 8);
	TEST("add up to max succeeds", buf_add(&m, "12345678", 8) == 0 && m.len == 8);
	TEST("capacity never exceeds max + 1", m.cap <= 9);
	errno = 0;
	TEST("one byte past max: ENOBUFS", buf_add(&m, "9", 1) == -1 && errno == ENOBUFS);
	TEST("unchanged after the failed add", m.len == 8 && !strcmp(m.data, "12345678"));
	errno = 0;
	TEST("buf_addf past max: ENOBUFS", buf_addf(&m, "%d", 7) == -1 && errno == ENOBUFS);
	TEST("unchanged after the failed addf", m.len == 8 && !strcmp(m.data, "12345678"));
	TEST("adding 0 bytes at max is fine", buf_add(&m, "", 0) == 0 && m.len == 8);
	TEST("the first failure sticks in err", m.err == ENOBUFS);
	buf_consume(&m, 3);
	TEST("room again after consume", buf_adds(&m, "abc") == 0 &&
	     !strcmp(m.data, "45678abc"));
	TEST("err stays after a later add succeeds", m.err == ENOBUFS);
	buf_reset(&m);
	TEST("reset clears err", m.err == 0);
	errno = 0;
	TEST("buf_grow over max on an empty buffer: ENOBUFS",
	     buf_grow(&m, 9) == -1 && errno == ENOBUFS && m.len == 0);
	errno = 0;
	TEST("buf_grow(SIZE_MAX) with max: ENOBUFS",
	     buf_grow(&m, SIZE_MAX) == -1 && errno == ENOBUFS);
	TEST("one add larger than max fails whole",
	     buf_add(&m, big, 9) == -1 && m.len == 0 && m.data[0] == '\0');
	TEST("max kept across release", (buf_release(&m), m.max == 8));
	buf_release(&m);
	return TEST_DONE();
}
