/*
 * timeq: a binary min-heap on an array (see timeq.h).
 */
#include "timeq.h"

#include <stdlib.h>

int timeq_init(struct timeq *q, uint32_t cap)
{
	q->n = 0;
	q->cap = cap;
	q->e = calloc(cap ? cap : 1, sizeof(*q->e));
	return q->e ? 0 : -1;
}

void timeq_free(struct timeq *q)
{
	free(q->e);
	q->e = NULL;
	q->n = q->cap = 0;
}

int timeq_push(struct timeq *q, int64_t at, uint32_t id)
{
	uint32_t i, parent;

	if (q->n >= q->cap)
		return -1;
	i = q->n++;
	while (i > 0) {
		parent = (i - 1) / 2;
		if (q->e[parent].at <= at)
			break;
		q->e[i] = q->e[parent];
		i = parent;
	}
	q->e[i].at = at;
	q->e[i].id = id;
	return 0;
}

bool timeq_peek(const struct timeq *q, struct timeq_ent *out)
{
	if (!q->n)
		return false;
	*out = q->e[0];
	return true;
}

void timeq_pop(struct timeq *q)
{
	struct timeq_ent last;
	uint32_t i = 0, child;

	if (!q->n)
		return;
	last = q->e[--q->n];
	for (;;) {
		child = 2 * i + 1;
		if (child >= q->n)
			break;
		if (child + 1 < q->n && q->e[child + 1].at < q->e[child].at)
			child++;
		if (last.at <= q->e[child].at)
			break;
		q->e[i] = q->e[child];
		i = child;
	}
	if (q->n)
		q->e[i] = last;
}
