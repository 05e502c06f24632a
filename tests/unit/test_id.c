/*
 * test_id: message ids: NODE-EPOCH-COUNTER format in base 36, node name
 * rules, uniqueness within a generator and across generators, and the
 * longest id fitting ID_MAX.
 */
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "testhelp.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Split id into node, epoch and counter; 0 when the form is right. */
static int id_parse(const char *id, char *node, uint64_t *epoch, uint64_t *counter)
{
	const char *d2 = strrchr(id, '-'), *d1;
	char *end;
	const char *p;

	if (!d2 || d2 == id)
		return -1;
	for (d1 = d2 - 1; d1 > id && *d1 != '-'; d1--)
		;
	if (*d1 != '-' || d1 == id)
		return -1;
	for (p = d1 + 1; *p; p++)
		if (p != d2 && !strchr("0123456789abcdefghijklmnopqrstuvwxyz", *p))
			return -1;
	memcpy(node, id, (size_t)(d1 - id));
	node[d1 - id] = '\0';
	*epoch = strtoull(d1 + 1, &end, 36);
	if (end != d2 || end == d1 + 1)
		return -1;
	*counter = strtoull(d2 + 1, &end, 36);
	return *end || end == d2 + 1 ? -1 : 0;
}

int main(void)
{
	enum { N = 100000 };
	struct id_gen g, g2, g3;
	char id[ID_MAX], node[ID_MAX], longnode[ID_NODE_MAX + 2];
	char **all;
	uint64_t epoch, counter;
	size_t n;
	int i, ok;

	TEST("node names: letters, digits, _ . : -", id_node_valid("gw1") &&
	     id_node_valid("a.b:c_D9-x") && id_node_valid("x") && id_node_valid("gw-1"));
	memset(longnode, 'n', sizeof(longnode));
	longnode[ID_NODE_MAX] = '\0';
	TEST("node name of 64 bytes is valid", id_node_valid(longnode));
	longnode[ID_NODE_MAX] = 'n';
	longnode[ID_NODE_MAX + 1] = '\0';
	TEST("node name of 65 bytes is not", !id_node_valid(longnode));
	TEST("empty node name is not valid", !id_node_valid(""));
	TEST("space, slash, non-ASCII are not valid", !id_node_valid("a b") &&
	     !id_node_valid("a/b") && !id_node_valid("n\xc3\xa9") && !id_node_valid("a\n"));
	TEST("id_init refuses a bad node", id_init(&g, "bad node", 1) == -1 &&
	     id_init(&g, longnode, 1) == -1);

	TEST("id_init", id_init(&g, "gw1", 1700000000000LL) == 0);
	n = id_next(&g, id);
	TEST("first id: returned length is strlen", n == strlen(id));
	TEST("first id reads NODE-EPOCH36-1", !strcmp(id, "gw1-loyw3v28-1"));
	TEST("first id parses back", id_parse(id, node, &epoch, &counter) == 0 &&
	     !strcmp(node, "gw1") && epoch == 1700000000000ULL && counter == 1);
	for (i = 2; i <= 36; i++)
		id_next(&g, id);
	TEST("counter 36 is '10' in base 36", !strcmp(id, "gw1-loyw3v28-10"));
	id_init(&g, "n", 0);
	id_next(&g, id);
	TEST("epoch 0", !strcmp(id, "n-0-1"));

	/* Uniqueness within one generator, sorted and compared. */
	all = calloc(3 * N, sizeof(*all));
	id_init(&g, "gw-a:1", 1700000000000LL);
	id_init(&g2, "gw-a:1", 1700000000001LL); /* restarted a ms later */
	id_init(&g3, "gw-b:1", 1700000000000LL); /* another node, same ms */
	ok = 1;
	for (i = 0; i < N; i++) {
		id_next(&g, id);
		all[i] = strdup(id);
		id_next(&g2, id);
		all[N + i] = strdup(id);
		id_next(&g3, id);
		all[2 * N + i] = strdup(id);
		if (id_parse(all[i], node, &epoch, &counter) < 0 ||
		    counter != (uint64_t)i + 1 || strcmp(node, "gw-a:1") ||
		    epoch != 1700000000000ULL)
			ok = 0;
	}
	TEST("100000 ids of a node with '-': parsed from the right, counter from 1", ok);
	qsort(all, 3 * N, sizeof(*all), cmp);
	for (i = 1, ok = 1; i < 3 * N; i++)
		if (!strcmp(all[i - 1], all[i]))
			ok = 0;
	TEST("300000 ids of 3 generators (restart, other node): all distinct", ok);
	for (i = 0; i < 3 * N; i++)
		free(all[i]);
	free(all);

	/* The longest possible id fits. */
	longnode[ID_NODE_MAX] = '\0';
	TEST("longest node with the largest epoch", id_init(&g, longnode, INT64_MAX) == 0);
	g.counter = UINT64_MAX - 1;
	memset(id, 'X', sizeof(id));
	n = id_next(&g, id);
	TEST("longest id fits ID_MAX", n < ID_MAX && strlen(id) == n);
	TEST("longest id parses back", id_parse(id, node, &epoch, &counter) == 0 &&
	     !strcmp(node, longnode) && epoch == (uint64_t)INT64_MAX &&
	     counter == UINT64_MAX);
	return TEST_DONE();
}
