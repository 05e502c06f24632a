/*
 * id: message ids unique across gateways and restarts: NODE-EPOCH-COUNTER,
 * where EPOCH is the start time of the id generator in milliseconds (base
 * 36) and COUNTER counts up from 1 (base 36). Two processes with the same
 * node name started in the same millisecond are the only collision, and the
 * node name is the operator's to keep unique.
 */
#ifndef CHAT_ID_H
#define CHAT_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_NODE_MAX 64
#define ID_MAX (ID_NODE_MAX + 32)

struct id_gen {
	char prefix[ID_NODE_MAX + 16]; /* "NODE-EPOCH-" */
	uint64_t counter;              /* last counter handed out */
};

/* Valid node names: 1..64 of [A-Za-z0-9_.:-]. */
bool id_node_valid(const char *node);
/* Start a generator for node at time epoch_ms. Returns 0, or -1 if the node
 * name is not valid. */
int id_init(struct id_gen *g, const char *node, int64_t epoch_ms);
/* Write the next id into out (ID_MAX bytes). Returns its length. */
size_t id_next(struct id_gen *g, char out[ID_MAX]);

#endif
