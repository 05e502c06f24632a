/* Unit tests of chat-cli's timeq: entries come out earliest first, a full
 * queue refuses, an empty one has nothing, and random pushes and pops
 * agree with a sort. */
#include <stdint.h>
#include <stdlib.h>

#include "../../cmd/chat-cli/timeq.h"
#include "testhelp.h"

int main(void)
{
	struct timeq q;
	struct timeq_ent e;
	int64_t last;
	int i, ok, round;
	uint32_t n;

	TEST("init", timeq_init(&q, 4) == 0);
	TEST("an empty queue has nothing", !timeq_peek(&q, &e));
	timeq_pop(&q); /* harmless */
	TEST("push into room", timeq_push(&q, 30, 3) == 0 &&
	     timeq_push(&q, 10, 1) == 0 && timeq_push(&q, 40, 4) == 0 &&
	     timeq_push(&q, 20, 2) == 0);
	TEST("a full queue refuses", timeq_push(&q, 5, 9) == -1 && q.n == 4);
	ok = 1;
	for (i = 1; i <= 4; i++) {
		if (!timeq_peek(&q, &e) || e.at != i * 10 || e.id != (uint32_t)i)
			ok = 0;
		timeq_pop(&q);
	}
	TEST("entries come out earliest first, with their ids", ok);
	TEST("and then it is empty", q.n == 0 && !timeq_peek(&q, &e));
	timeq_free(&q);

	TEST("init 10,000", timeq_init(&q, 10000) == 0);
	srand(7);
	ok = 1;
	for (round = 0; round < 20; round++) {
		n = (uint32_t)(rand() % 10000);
		while (q.n < n)
			timeq_push(&q, rand() % 1000, q.n);
		last = INT64_MIN;
		n = (uint32_t)(rand() % (q.n + 1));
		while (n--) {
			timeq_peek(&q, &e);
			if (e.at < last)
				ok = 0;
			last = e.at;
			timeq_pop(&q);
		}
	}
	last = INT64_MIN;
	while (timeq_peek(&q, &e)) {
		if (e.at < last)
			ok = 0;
		last = e.at;
		timeq_pop(&q);
	}
	TEST("random pushes and pops keep the order", ok);
	timeq_free(&q);
	TEST("free leaves it empty", q.n == 0 && q.e == NULL);
	return TEST_DONE();
}
