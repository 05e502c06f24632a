/*
 * line: what chat-presence makes of one bus line (man/chat-protocol.7):
 *   {"type":"join"|"leave","node":N,"room":R,"users":[U,...]}
 *   {"type":"heartbeat","node":N,"ttl":MS,"rooms":{"R":[U,...],...}}
 *   {"type":"down","node":N}
 *   {"type":"presence","rpc":Q,"node":N,"conn":C,"room":R,"limit":L}
 *   {"type":"bus","state":"up"|"down"}   (from chat-relay)
 * Other members are ignored (a relay in manual-ack mode adds "tag"). It
 * does no I/O, so it is unit tested and fuzzed (tests/fuzz/fuzz_pline.c).
 * One bad user name does not cost the others their heartbeat: it is
 * skipped and counted; a bad node or room refuses the line (or, in a
 * heartbeat, that room).
 */
#include "presence.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "name.h"

static const char *const kind_names[] = {
	"join", "leave", "heartbeat", "down", "query", "bus", "bad",
};

const char *pline_kind_name(enum pline_kind k)
{
	return k <= PL_BAD ? kind_names[k] : "?";
}

static void line_bad(struct pline *pl, const char *fmt, const char *arg)
{
	pl->kind = PL_BAD;
	snprintf(pl->err, sizeof(pl->err), fmt, arg);
}

static bool line_node(struct pline *pl, json_t *root)
{
	json_t *v = json_object_get(root, "node");

	if (!json_is_string(v)) {
		line_bad(pl, "%s", "no \"node\" string");
		return false;
	}
	if (!id_node_valid(json_string_value(v)) ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		line_bad(pl, "bad node name '%.64s'", json_string_value(v));
		return false;
	}
	pl->node = json_string_value(v);
	return true;
}

static bool room_ok(json_t *v)
{
	return json_is_string(v) &&
	       name_room_valid(json_string_value(v), json_string_length(v)) &&
	       strlen(json_string_value(v)) == json_string_length(v);
}

/* Take the valid user names of arr into names (room for them all). */
static void line_users(struct pline *pl, struct pline_room *r, json_t *arr,
		       const char **names)
{
	size_t i;
	json_t *u;

	r->users = names;
	r->nusers = 0;
	json_array_foreach(arr, i, u)
	{
		if (json_is_string(u) &&
		    name_user_valid(json_string_value(u), json_string_length(u)))
			names[r->nusers++] = json_string_value(u);
		else
			pl->bad_names++;
	}
}

static int line_rooms_alloc(struct pline *pl, size_t nrooms, size_t nnames)
{
	pl->rooms = calloc(nrooms ? nrooms : 1, sizeof(*pl->rooms));
	pl->names = calloc(nnames ? nnames : 1, sizeof(*pl->names));
	if (!pl->rooms || !pl->names) {
		line_bad(pl, "%s", "out of memory");
		return -1;
	}
	return 0;
}

/* An optional "ttl": a positive integer of ms. Returns 0, or -1 (bad). */
static int line_ttl(struct pline *pl, json_t *root)
{
	json_t *ttl = json_object_get(root, "ttl");

	if (!ttl)
		return 0;
	if (!json_is_integer(ttl) || json_integer_value(ttl) <= 0) {
		line_bad(pl, "%s", "\"ttl\" is not a positive integer");
		return -1;
	}
	pl->ttl_ms = json_integer_value(ttl);
	return 0;
}

static void line_join_leave(struct pline *pl, json_t *root)
{
	json_t *room = json_object_get(root, "room");
	json_t *users = json_object_get(root, "users");

	if (!line_node(pl, root) || line_ttl(pl, root) < 0)
		return;
	if (!room_ok(room)) {
		line_bad(pl, "%s", "no valid \"room\"");
		return;
	}
	if (!json_is_array(users)) {
		line_bad(pl, "%s", "no \"users\" array");
		return;
	}
	if (line_rooms_alloc(pl, 1, json_array_size(users)) < 0)
		return;
	pl->nrooms = 1;
	pl->rooms[0].room = json_string_value(room);
	line_users(pl, &pl->rooms[0], users, pl->names);
}

static void line_heartbeat(struct pline *pl, json_t *root)
{
	json_t *rooms = json_object_get(root, "rooms");
	json_t *users;
	const char *key;
	size_t nnames = 0, used = 0;

	if (!line_node(pl, root) || line_ttl(pl, root) < 0)
		return;
	if (!json_is_object(rooms)) {
		line_bad(pl, "%s", "no \"rooms\" object");
		return;
	}
	json_object_foreach(rooms, key, users)
	{
		if (json_is_array(users))
			nnames += json_array_size(users);
	}
	if (line_rooms_alloc(pl, json_object_size(rooms), nnames) < 0)
		return;
	json_object_foreach(rooms, key, users)
	{
		struct pline_room *r = &pl->rooms[pl->nrooms];

		if (!name_room_valid(key, strlen(key)) || !json_is_array(users)) {
			pl->bad_names++;
			continue;
		}
		r->room = key;
		line_users(pl, r, users, pl->names + used);
		used += r->nusers;
		pl->nrooms++;
	}
}

static void line_query(struct pline *pl, json_t *root)
{
	json_t *rpc = json_object_get(root, "rpc");
	json_t *room = json_object_get(root, "room");
	json_t *limit = json_object_get(root, "limit");

	if (!rpc) {
		line_bad(pl, "%s", "presence line without \"rpc\" (not a query)");
		return;
	}
	if (!line_node(pl, root))
		return;
	if (!room_ok(room)) {
		line_bad(pl, "%s", "no valid \"room\"");
		return;
	}
	if (limit) {
		if (!json_is_integer(limit) || json_integer_value(limit) < 0) {
			line_bad(pl, "%s", "\"limit\" is not an integer >= 0");
			return;
		}
		pl->limit = (uint64_t)json_integer_value(limit);
	}
	pl->rpc = json_dumps(rpc, JSON_COMPACT | JSON_ENCODE_ANY);
	if (line_rooms_alloc(pl, 1, 0) < 0 || !pl->rpc) {
		line_bad(pl, "%s", "out of memory");
		return;
	}
	pl->nrooms = 1;
	pl->rooms[0].room = json_string_value(room);
}

void pline_parse(const char *line, size_t len, struct pline *pl)
{
	json_error_t jerr;
	json_t *root, *type;
	const char *t;

	memset(pl, 0, sizeof(*pl));
	pl->ttl_ms = -1;
	pl->limit = PRES_LIMIT_DEFAULT;
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		pl->kind = PL_BAD;
		snprintf(pl->err, sizeof(pl->err),
			 "not valid JSON: %.80s at "
			 "byte %d",
			 jerr.text, jerr.position);
		return;
	}
	pl->root = root;
	if (!json_is_object(root)) {
		line_bad(pl, "%s", "not a JSON object");
		return;
	}
	type = json_object_get(root, "type");
	if (!json_is_string(type)) {
		line_bad(pl, "%s", "no \"type\" string");
		return;
	}
	t = json_string_value(type);
	if (!strcmp(t, "join")) {
		pl->kind = PL_JOIN;
		line_join_leave(pl, root);
	} else if (!strcmp(t, "leave")) {
		pl->kind = PL_LEAVE;
		line_join_leave(pl, root);
	} else if (!strcmp(t, "heartbeat")) {
		pl->kind = PL_HEARTBEAT;
		line_heartbeat(pl, root);
	} else if (!strcmp(t, "down")) {
		pl->kind = PL_DOWN;
		line_node(pl, root);
	} else if (!strcmp(t, "presence")) {
		pl->kind = PL_QUERY;
		line_query(pl, root);
	} else if (!strcmp(t, "bus")) {
		json_t *st = json_object_get(root, "state");

		pl->kind = PL_BUS;
		pl->bus_up = json_is_string(st) && !strcmp(json_string_value(st), "up");
	} else {
		line_bad(pl, "unknown type '%.40s'", t);
	}
}

void pline_free(struct pline *pl)
{
	free(pl->rooms);
	free(pl->names);
	free(pl->rpc);
	if (pl->root)
		json_decref((json_t *)pl->root);
	memset(pl, 0, sizeof(*pl));
}
