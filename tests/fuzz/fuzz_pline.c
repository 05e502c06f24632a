/*
 * fuzz_pline: libFuzzer target for chat-presence's bus line parser
 * (cmd/chat-presence/line.c), which reads whatever any gateway (or anyone
 * who can publish on the "presence" routing key) sends. Checks: every
 * line is classified; a good line names a valid node, its rooms and users
 * are valid names (lib/name.h) that can go into Redis keys and output
 * lines unescaped; a query's rpc is JSON text; the lines rendered from a
 * parsed line (change, answer, error) are one JSON object each.
 */
/* links: cmd/chat-presence/line.c cmd/chat-presence/render.c lib/name.c lib/id.c lib/buf.c */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cmd/chat-presence/presence.h"
#include "id.h"
#include "name.h"

static void check_json_line(const struct buf *b)
{
	json_error_t e;
	json_t *v;

	if (b->len == 0 || b->data[b->len - 1] != '\n')
		__builtin_trap();
	v = json_loadb(b->data, b->len - 1, 0, &e);
	if (!v || !json_is_object(v))
		__builtin_trap();
	json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pline pl;
	struct buf b = BUF_INIT(0);
	size_t i, j;

	pline_parse((const char *)data, size, &pl);
	switch (pl.kind) {
	case PL_BAD:
		if (!pl.err[0])
			__builtin_trap();
		break;
	case PL_BUS: break;
	default:
		if (!pl.node || !id_node_valid(pl.node))
			__builtin_trap();
		for (i = 0; i < pl.nrooms; i++) {
			const struct pline_room *r = &pl.rooms[i];

			if (!name_room_valid(r->room, strlen(r->room)))
				__builtin_trap();
			for (j = 0; j < r->nusers; j++)
				if (!name_user_valid(r->users[j], strlen(r->users[j])))
					__builtin_trap();
			buf_reset(&b);
			if (pres_render_change(&b, r->room, r->users, r->nusers,
					       r->users, r->nusers) == 0)
				check_json_line(&b);
		}
		if (pl.kind == PL_QUERY) {
			if (!pl.rpc || pl.nrooms != 1)
				__builtin_trap();
			buf_reset(&b);
			if (pres_render_answer(&b, pl.rpc, pl.node, pl.rooms[0].room,
					       NULL, 0, pl.limit, false, 1 << 20) == 0)
				check_json_line(&b);
			buf_reset(&b);
			if (pres_render_error(&b, pl.rpc, pl.node, pl.rooms[0].room,
					      "presence store unavailable") == 0)
				check_json_line(&b);
		}
		if ((pl.kind == PL_JOIN || pl.kind == PL_LEAVE) && pl.nrooms != 1)
			__builtin_trap();
	}
	buf_release(&b);
	pline_free(&pl);
	return 0;
}
