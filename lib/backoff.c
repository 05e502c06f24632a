/*
 * backoff: capped, jittered exponential delays (see backoff.h). Kept apart
 * from any event loop: the caller asks for a delay and arms its own timer.
 */
#include "backoff.h"

void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms,
		  uint64_t seed)
{
	b->base_ms = base_ms ? base_ms : 1;
	b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
	b->attempt = 0;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}

static uint64_t backoff_rand(struct backoff *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

uint64_t backoff_next_ms(struct backoff *b)
{
	uint64_t d = b->base_ms, half;
	unsigned i;

	/* Double without overflowing: stop as soon as the cap is reached. */
	for (i = 0; i < b->attempt && d < b->max_ms; i++)
		d = d > b->max_ms / 2 ? b->max_ms : d * 2;
	if (d > b->max_ms)
		d = b->max_ms;
	if (b->attempt < 64)
		b->attempt++;
	half = d / 2;
	d = half + backoff_rand(b) % (d - half + 1);
	return d ? d : 1;
}
