/*
 * id: unique message ids (see id.h). Ids are strings so that they read well
 * in logs and stay unique without coordination between gateways.
 */
#include "id.h"

#include <stdio.h>
#include <string.h>

bool id_node_valid(const char *node)
{
	size_t n = strlen(node);

	if (n == 0 || n > ID_NODE_MAX)
		return false;
	for (; *node; node++) {
		char c = *node;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
		      c == '-'))
			return false;
	}
	return true;
}

static size_t id_b36(uint64_t v, char *out)
{
	char tmp[16];
	size_t n = 0, i;

	do {
		tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
		v /= 36;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

int id_init(struct id_gen *g, const char *node, int64_t epoch_ms)
{
	size_t n;

	if (!id_node_valid(node))
		return -1;
	n = strlen(node);
	memcpy(g->prefix, node, n);
	g->prefix[n++] = '-';
	n += id_b36((uint64_t)epoch_ms, g->prefix + n);
	g->prefix[n++] = '-';
	g->prefix[n] = '\0';
	g->counter = 0;
	return 0;
}

size_t id_next(struct id_gen *g, char out[ID_MAX])
{
	size_t n = strlen(g->prefix);

	memcpy(out, g->prefix, n);
	n += id_b36(++g->counter, out + n);
	out[n] = '\0';
	return n;
}
