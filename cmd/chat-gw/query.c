/*
 * query: the table of what bus mode waits for (see query.h).
 */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "gw.h"
#include "hub.h"

void queries_init(struct queries *qs, struct hub *h)
{
	struct map empty = MAP_INIT;

	qs->h = h;
	qs->waiting = empty;
	qs->next_rpc = 0;
}

void queries_free(struct queries *qs)
{
	struct map_ent *e = NULL;
	size_t bucket = 0;

	while (map_next(&qs->waiting, &bucket, &e)) {
		struct query *p = e->val;

		free(p->ref);
		free(p->room);
		free(p);
		gw_m.pending.value--;
	}
	map_free(&qs->waiting);
}

void query_free(struct queries *qs, struct query *p)
{
	struct conn *c = p->conn ? hub_conn_by_id(qs->h, p->conn) : NULL;

	if (c && c->pending)
		c->pending--;
	free(p->ref);
	free(p->room);
	free(p);
	gw_m.pending.value--;
}

struct query *query_find(const struct queries *qs, const char *key)
{
	return map_get(&qs->waiting, key);
}

struct query *query_take(struct queries *qs, const char *key)
{
	return map_find(&qs->waiting, key) ? map_del(&qs->waiting, key) : NULL;
}

struct query *query_add(struct queries *qs, const char *key, enum query_kind kind,
			struct conn *c, const char *ref, const char *room)
{
	struct query *p;

	if (qs->waiting.n >= gw_cfg.max_pending ||
	    (c && c->pending >= gw_cfg.max_pending_conn))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->kind = kind;
	p->conn = c ? c->id : 0;
	p->ref = ref ? strdup(ref) : NULL;
	p->room = strdup(room);
	p->t0_us = clock_mono_us();
	if ((ref && !p->ref) || !p->room || !map_put(&qs->waiting, key, p)) {
		free(p->ref);
		free(p->room);
		free(p);
		return NULL;
	}
	if (c)
		c->pending++;
	gw_m.pending.value++;
	return p;
}

void query_key(struct queries *qs, char key[QUERY_KEY_MAX])
{
	snprintf(key, QUERY_KEY_MAX, "%sq%llu", qs->h->ids.prefix,
		 (unsigned long long)++qs->next_rpc);
}

int query_send(struct queries *qs, struct buf *b)
{
	int r;

	if (b->err || !qs->h->bus_write) {
		buf_release(b);
		gw_m.bus_full.value++;
		return -1;
	}
	r = qs->h->bus_write(b->data, b->len);
	buf_release(b);
	if (r < 0) {
		gw_m.bus_full.value++;
		return -1;
	}
	gw_m.bus_out.value++;
	return 0;
}

