/* Unit tests of lib/file.c: small whole files, trailing white space. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "testhelp.h"

static void put(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");

	fwrite(s, 1, n, f);
	fclose(f);
}

int main(void)
{
	char path[] = "/tmp/test_file.XXXXXX";
	size_t n = 99;
	char *s;
	int fd = mkstemp(path);

	close(fd);
	put(path, "secret \t\r\n\n", 11);
	s = file_read_small(path, 64, &n);
	TEST("trailing white space of every kind is dropped", s && !strcmp(s, "secret") && n == 6);
	free(s);
	put(path, " in side ", 9);
	s = file_read_small(path, 64, &n);
	TEST("leading and inner white space is kept", s && !strcmp(s, " in side") && n == 8);
	free(s);
	put(path, "a\0b", 3);
	s = file_read_small(path, 64, &n);
	TEST("a NUL byte is kept, the length tells", s && n == 3 && s[2] == 'b');
	free(s);
	put(path, "0123456789", 10);
	errno = 0;
	s = file_read_small(path, 9, &n);
	TEST("longer than max: NULL, ENOBUFS", !s && errno == ENOBUFS);
	s = file_read_small(path, 10, &n);
	TEST("exactly max is fine", s && n == 10);
	free(s);
	put(path, "\n\n", 2);
	s = file_read_small(path, 64, &n);
	TEST("only white space: empty string", s && n == 0 && !*s);
	free(s);
	unlink(path);
	errno = 0;
	s = file_read_small(path, 64, &n);
	TEST("missing file: NULL, ENOENT", !s && errno == ENOENT);
	return TEST_DONE();
}
