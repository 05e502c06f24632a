/*
 * map: a string-keyed hash table (chained, power-of-two buckets, grows at
 * load 1). Used for rooms by name and users by name. The map copies keys;
 * values are the caller's (the map never frees them).
 */
#ifndef CHAT_MAP_H
#define CHAT_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map_ent {
	struct map_ent *next; /* bucket chain */
	uint32_t hash;        /* hash of key */
	void *val;            /* caller's value */
	char key[];           /* NUL-terminated copy of the key */
};

struct map {
	struct map_ent **b;   /* buckets, NULL while empty */
	size_t nb;            /* number of buckets (power of two) */
	size_t n;             /* number of entries */
};

#define MAP_INIT { NULL, 0, 0 }

/* The value for key, or NULL. */
void *map_get(const struct map *m, const char *key);
/* The entry for key, or NULL; its key stays valid until it is removed. */
struct map_ent *map_find(const struct map *m, const char *key);
/* Set key to val (adding or replacing). Returns the entry, or NULL when
 * out of memory. */
struct map_ent *map_put(struct map *m, const char *key, void *val);
/* Remove key; returns its value, or NULL when absent. */
void *map_del(struct map *m, const char *key);
/* Free the table and every entry (not the values). */
void map_free(struct map *m);
/* Iterate: call with *it = 0 first; returns each entry, then NULL. The map
 * must not change during the iteration. */
struct map_ent *map_next(const struct map *m, size_t *bucket, struct map_ent **it);

#endif
