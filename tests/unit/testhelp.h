/*
 * testhelp: the unit tests' whole framework (after redis testhelp.h). Each
 * TEST prints one TAP line; main() ends with TEST_DONE, which prints the plan
 * and returns non-zero when any test failed.
 */
#ifndef CHAT_TESTHELP_H
#define CHAT_TESTHELP_H

#include <stdio.h>

static int test_n, test_failed;

#define TEST(descr, cond) do { \
	test_n++; \
	if (cond) { \
		printf("ok %d - %s\n", test_n, descr); \
	} else { \
		test_failed++; \
		printf("not ok %d - %s (%s:%d: %s)\n", test_n, descr, __FILE__, \
		       __LINE__, #cond); \
	} \
	fflush(stdout); \
} while (0)

#define TEST_DONE() (printf("1..%d\n", test_n), test_failed ? 1 : 0)

#endif
