/*
 * timeq: a fixed-capacity min-heap of (time, id) pairs, the bench's one
 * queue of things due later (a reconnect after its backoff, a join tried
 * again): O(log n) to add and to take the earliest, where lws' sorted
 * timer list costs O(n) per insert, which a reconnect storm of 10,000
 * connections would pay 10,000 times. Ties come out in no set order.
 * Memory: the caller owns the struct timeq and frees it with timeq_free().
 */
#ifndef CHAT_CLI_TIMEQ_H
#define CHAT_CLI_TIMEQ_H

#include <stdbool.h>
#include <stdint.h>

struct timeq_ent {
	int64_t at;    /* when it is due (any clock; the caller's) */
	uint32_t id;   /* what is due (the caller's index) */
};

struct timeq {
	struct timeq_ent *e;  /* the heap, e[0] earliest */
	uint32_t n;           /* entries held */
	uint32_t cap;         /* entries it can hold */
};

/* Set q up for at most cap entries. Returns 0, or -1 out of memory. */
int timeq_init(struct timeq *q, uint32_t cap);
void timeq_free(struct timeq *q);
/* Add id due at at. Returns 0, or -1 when q is full. */
int timeq_push(struct timeq *q, int64_t at, uint32_t id);
/* The earliest entry, left in place; false when q is empty. */
bool timeq_peek(const struct timeq *q, struct timeq_ent *out);
/* Remove the earliest entry (nothing when q is empty). */
void timeq_pop(struct timeq *q);

#endif
