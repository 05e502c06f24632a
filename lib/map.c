/*
 * map: string-keyed chained hash table (see map.h), FNV-1a hashed.
 */
#include "map.h"

#include <stdlib.h>
#include <string.h>

static uint32_t map_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct map_ent *map_find(const struct map *m, const char *key)
{
	uint32_t h;
	struct map_ent *e;

	if (!m->nb)
		return NULL;
	h = map_hash(key);
	for (e = m->b[h & (m->nb - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

void *map_get(const struct map *m, const char *key)
{
	struct map_ent *e = map_find(m, key);

	return e ? e->val : NULL;
}

static int map_resize(struct map *m, size_t nb)
{
	struct map_ent **nbk = calloc(nb, sizeof(*nbk));
	size_t i;

	if (!nbk)
		return -1;
	for (i = 0; i < m->nb; i++) {
		struct map_ent *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = nbk[e->hash & (nb - 1)];
			nbk[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = nbk;
	m->nb = nb;
	return 0;
}

struct map_ent *map_put(struct map *m, const char *key, void *val)
{
	struct map_ent *e = map_find(m, key);
	size_t kl;

	if (e) {
		e->val = val;
		return e;
	}
	if (m->n >= m->nb && map_resize(m, m->nb ? m->nb * 2 : 16) < 0)
		return NULL;
	kl = strlen(key);
	e = malloc(sizeof(*e) + kl + 1);
	if (!e)
		return NULL;
	memcpy(e->key, key, kl + 1);
	e->hash = map_hash(key);
	e->val = val;
	e->next = m->b[e->hash & (m->nb - 1)];
	m->b[e->hash & (m->nb - 1)] = e;
	m->n++;
	return e;
}

void *map_del(struct map *m, const char *key)
{
	struct map_ent **pp, *e;
	uint32_t h;
	void *v;

	if (!m->nb)
		return NULL;
	h = map_hash(key);
	for (pp = &m->b[h & (m->nb - 1)]; (e = *pp); pp = &e->next) {
		if (e->hash == h && !strcmp(e->key, key)) {
			*pp = e->next;
			v = e->val;
			free(e);
			m->n--;
			return v;
		}
	}
	return NULL;
}

void map_free(struct map *m)
{
	size_t i;

	for (i = 0; i < m->nb; i++) {
		struct map_ent *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}

struct map_ent *map_next(const struct map *m, size_t *bucket, struct map_ent **it)
{
	if (*it && (*it)->next)
		return *it = (*it)->next;
	if (*it)
		(*bucket)++;
	for (; *bucket < m->nb; (*bucket)++)
		if (m->b[*bucket])
			return *it = m->b[*bucket];
	return *it = NULL;
}
