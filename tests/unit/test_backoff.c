/* Unit tests of lib/backoff: bounds of every delay, growth, cap, reset,
 * reproducibility from a seed. */
#include <stdint.h>

#include "backoff.h"
#include "testhelp.h"

int main(void)
{
	struct backoff b, c;
	uint64_t d, nominal = 100;
	int i, ok, same, differ;

	backoff_init(&b, 100, 5000, 42);
	ok = 1;
	for (i = 0; i < 20; i++) {
		d = backoff_next_ms(&b);
		if (d < nominal / 2 || d > nominal)
			ok = 0;
		nominal = nominal * 2 > 5000 ? 5000 : nominal * 2;
	}
	TEST("each delay lies in [nominal/2, nominal], nominal doubling to the cap", ok);

	ok = 1;
	for (i = 0; i < 1000; i++) {
		d = backoff_next_ms(&b);
		if (d < 2500 || d > 5000)
			ok = 0;
	}
	TEST("past the cap delays stay in [max/2, max]", ok);
	TEST("attempt counter saturates", b.attempt == 64);

	backoff_reset(&b);
	d = backoff_next_ms(&b);
	TEST("reset starts again from base", d >= 50 && d <= 100);

	backoff_init(&b, 100, 5000, 7);
	backoff_init(&c, 100, 5000, 7);
	same = 1;
	for (i = 0; i < 50; i++)
		if (backoff_next_ms(&b) != backoff_next_ms(&c))
			same = 0;
	TEST("same seed, same delays", same);

	backoff_init(&b, 1000, 1000, 1);
	differ = 0;
	for (i = 0; i < 50; i++) {
		uint64_t x = backoff_next_ms(&b);

		if (x != 1000)
			differ = 1;
		if (x < 500 || x > 1000)
			differ = -100;
	}
	TEST("delays are jittered", differ == 1);

	backoff_init(&b, 0, 0, 0);
	TEST("zero base and cap give 1 ms", backoff_next_ms(&b) == 1);

	backoff_init(&b, UINT64_MAX / 4, UINT64_MAX, 3);
	ok = 1;
	for (i = 0; i < 100; i++)
		if (backoff_next_ms(&b) < UINT64_MAX / 8)
			ok = 0;
	TEST("huge values do not overflow", ok);

	backoff_init(&b, 500, 100, 3);
	d = backoff_next_ms(&b);
	TEST("max below base is taken as base", d >= 250 && d <= 500);

	return TEST_DONE();
}
