/*
 * backoff: capped exponential backoff with jitter, the one reconnect policy
 * of the toolkit (every program that loses a server waits the same way).
 * The n-th delay (n counted from 0) is drawn uniformly from
 * [d/2, d] where d = min(max_ms, base_ms * 2^n): "equal jitter", so a herd
 * of clients that lost the same server spreads out, yet no client retries
 * sooner than half the nominal delay. The random source is a small
 * xorshift generator seeded by the caller, so tests are reproducible.
 * Memory: struct backoff is plain data owned by the caller.
 */
#ifndef CHAT_BACKOFF_H
#define CHAT_BACKOFF_H

#include <stdint.h>

struct backoff {
	uint64_t base_ms;  /* first nominal delay */
	uint64_t max_ms;   /* cap of the nominal delay */
	unsigned attempt;  /* delays handed out since the last reset */
	uint64_t rng;      /* xorshift64 state, never 0 */
};

/* Set up b for delays from base_ms doubling up to max_ms (max_ms < base_ms
 * is taken as base_ms; base_ms 0 as 1). seed 0 picks a fixed seed. */
void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms,
		  uint64_t seed);
/* The next delay in milliseconds; counts one attempt. Never 0, never more
 * than max_ms. */
uint64_t backoff_next_ms(struct backoff *b);
/* Start again from base_ms (after a success). */
void backoff_reset(struct backoff *b);

#endif
