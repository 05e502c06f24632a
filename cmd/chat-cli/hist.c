/*
 * hist: log-linear latency histogram (see hist.h). Values below 32 have a
 * bucket each; above, the power of two a value falls in picks a group of
 * 32 buckets and the next five bits below the top bit pick one of them.
 */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

int hist_bucket(uint64_t v)
{
	int k;

	if (v < HIST_SUB)
		return (int)v;
	k = 63 - __builtin_clzll(v);                 /* 5..63 */
	return (k - 4) * HIST_SUB + (int)((v >> (k - 5)) - HIST_SUB);
}

uint64_t hist_bucket_high(int i)
{
	int k, sub;

	if (i < HIST_SUB)
		return (uint64_t)i;
	k = i / HIST_SUB + 4;
	sub = i % HIST_SUB;
	return (((uint64_t)(HIST_SUB + sub)) << (k - 5)) +
	       ((uint64_t)1 << (k - 5)) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_bucket(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t target, seen = 0, hi;
	int i;

	if (!h->count)
		return 0;
	target = (uint64_t)ceil(q * (double)h->count);
	if (target < 1)
		target = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= target) {
			hi = hist_bucket_high(i);
			return hi > h->max ? h->max : hi;
		}
	}
	return h->max;
}
