/*
 * online: who is present, for shells. With --room, one line for that room;
 * without, one line per room that has anyone, in byte order of the room
 * names (found with SCAN over PREFIX:{*}:users, so it costs a pass over
 * the keyspace: a tool for people, not for a hot path). Each line:
 *   {"room":R,"users":[first --limit users, byte order],"count":N,"more":B}
 * It reads with plain commands and does not stamp rooms as seen (see
 * coal.c): its snapshot goes to a person, not to a subscriber that then
 * follows the changes.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "log.h"
#include "name.h"

#define ONLINE_BATCH 100 /* rooms per pipelined round trip */

/* Print the lines of rooms[0..n) (pipelined). Returns 0 or an exit status. */
static int online_rooms(redisContext *c, const struct store *st,
			const struct pres_opts *o, char **rooms, size_t n)
{
	char key[512], lim[24];
	struct buf b = BUF_INIT(0);
	size_t i, j;
	int code = EX_OK;

	snprintf(lim, sizeof(lim), "%d", (int)o->limit - 1);
	for (i = 0; i < n; i++) {
		store_room_key(st, key, sizeof(key), rooms[i], "users");
		if (o->limit > 0)
			redisAppendCommand(c, "ZRANGE %s 0 %s", key, lim);
		redisAppendCommand(c, "ZCARD %s", key);
	}
	for (i = 0; i < n; i++) {
		redisReply *list = NULL, *card = NULL;
		const char **users = NULL;
		size_t nu = 0;

		if ((o->limit > 0 && redisGetReply(c, (void **)&list) != REDIS_OK) ||
		    redisGetReply(c, (void **)&card) != REDIS_OK) {
			LOG_F("unable to read from Redis", "err=%s", log_q(c->errstr));
			code = EX_UNAVAILABLE;
			if (list)
				freeReplyObject(list);
			break;
		}
		if ((list && list->type != REDIS_REPLY_ARRAY) ||
		    card->type != REDIS_REPLY_INTEGER) {
			LOG_F("unexpected reply from Redis", "room=%s err=%s",
			      log_q(rooms[i]),
			      log_q(card->type == REDIS_REPLY_ERROR ? card->str : "?"));
			code = EX_UNAVAILABLE;
		} else {
			if (list) {
				users = malloc((list->elements + 1) * sizeof(*users));
				for (j = 0; users && j < list->elements; j++)
					if (list->element[j]->type == REDIS_REPLY_STRING)
						users[nu++] = list->element[j]->str;
			}
			buf_reset(&b);
			if (pres_render_online(&b, rooms[i], users, nu,
					       (uint64_t)card->integer,
					       (uint64_t)card->integer > nu) == 0)
				fwrite(b.data, 1, b.len, stdout);
			free(users);
		}
		if (list)
			freeReplyObject(list);
		freeReplyObject(card);
		if (code != EX_OK)
			break;
	}
	buf_release(&b);
	return code;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every room with a users key, sorted, into *out (malloc'd names). */
static int online_scan(redisContext *c, const struct store *st, char ***out,
		       size_t *nout)
{
	char pattern[256], cursor[32] = "0";
	struct map seen = MAP_INIT;
	char **rooms = NULL;
	size_t n = 0, cap = 0, plen, i;
	int code = EX_OK;

	snprintf(pattern, sizeof(pattern), "%s:{*}:users", st->prefix);
	plen = strlen(st->prefix) + 2;
	do {
		redisReply *r =
		    redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);

		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			LOG_F("unable to scan Redis", "err=%s",
			      log_q(r && r->type == REDIS_REPLY_ERROR ? r->str :
									c->errstr));
			if (r)
				freeReplyObject(r);
			code = EX_UNAVAILABLE;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (i = 0; i < r->element[1]->elements; i++) {
			const redisReply *k = r->element[1]->element[i];
			size_t rl;

			/* PREFIX:{ROOM}:users */
			if (k->type != REDIS_REPLY_STRING || k->len < plen + 8)
				continue;
			rl = k->len - plen - 7;
			if (!name_room_valid(k->str + plen, rl))
				continue;
			k->str[plen + rl] = '\0';
			if (map_get(&seen, k->str + plen))
				continue;
			if (n == cap) {
				char **nr;

				cap = cap ? cap * 2 : 64;
				nr = realloc(rooms, cap * sizeof(*rooms));
				if (!nr) {
					code = EX_OSERR;
					break;
				}
				rooms = nr;
			}
			rooms[n] = strdup(k->str + plen);
			if (!rooms[n] || !map_put(&seen, rooms[n], rooms[n])) {
				free(rooms[n]);
				code = EX_OSERR;
				break;
			}
			n++;
		}
		freeReplyObject(r);
	} while (code == EX_OK && strcmp(cursor, "0") != 0);
	map_free(&seen);
	if (rooms)
		qsort(rooms, n, sizeof(*rooms), cmp_str);
	*out = rooms;
	*nout = n;
	return code;
}

int online_run(const struct pres_opts *o, const struct rurl *u)
{
	struct store st;
	redisContext *c;
	char err[256], **rooms = NULL, *one[1];
	size_t n = 0, i;
	int code;

	memset(&st, 0, sizeof(st));
	st.prefix = o->prefix;
	c = sync_connect(o, u, err, sizeof(err), &code);
	if (!c) {
		char m[400];

		rurl_masked(u, m, sizeof(m));
		LOG_F("unable to connect to Redis", "url=%s err=%s", log_q(m),
		      log_q(err));
		return code;
	}
	if (o->room) {
		one[0] = (char *)o->room;
		code = online_rooms(c, &st, o, one, 1);
	} else {
		code = online_scan(c, &st, &rooms, &n);
		for (i = 0; code == EX_OK && i < n; i += ONLINE_BATCH)
			code =
			    online_rooms(c, &st, o, rooms + i,
					 n - i < ONLINE_BATCH ? n - i : ONLINE_BATCH);
		for (i = 0; i < n; i++)
			free(rooms[i]);
		free(rooms);
	}
	redisFree(c);
	return code;
}
