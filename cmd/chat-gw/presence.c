/*
 * presence: the gateway's presence lines (see presence.h). A heartbeat
 * line is {"type":"heartbeat","route":"presence","node":N,"ttl":MS,
 * "rooms":{"R":["u",...],...}}; a room with more users than fit in one
 * line is continued in the next (chat-presence merges a round's lines).
 */
#include "presence.h"

#include <string.h>

#include "buf.h"
#include "gw.h"
#include "log.h"
#include "render.h"

/* Room for the line's end ("]}}") and the route/node/ttl prefix slack. */
#define LINE_SLACK 64

static void lines_of(struct queries *qs, const char *type, struct room *r,
		     const struct map *users)
{
	struct buf b = BUF_INIT(0), names = BUF_INIT(0);

	if (!users->n)
		return;
	render_names(&names, users, 0);
	buf_addf(&b, "{\"type\":\"%s\",\"route\":\"presence\",\"node\":\"%s\",\"ttl\":%llu,"
		 "\"room\":\"%s\",\"users\":", type, gw_cfg.node,
		 (unsigned long long)gw_cfg.presence_ttl_ms, r->name);
	buf_add(&b, names.data, names.len);
	buf_adds(&b, "}");
	if (names.err)
		b.err = names.err;
	buf_release(&names);
	if (query_send(qs, &b) < 0) {
		gw_m.presence_lost.value++;
		LOG_W("the bus did not take a presence line", "room=%s type=%s", log_q(r->name),
		      type);
	}
}

void presence_lines(struct queries *qs, struct room *r, const struct map *joined,
		    const struct map *left)
{
	lines_of(qs, "leave", r, left);
	lines_of(qs, "join", r, joined);
}

/* Start a heartbeat line in b. */
static void beat_open(struct buf *b)
{
	buf_reset(b);
	buf_addf(b, "{\"type\":\"heartbeat\",\"route\":\"presence\",\"node\":\"%s\","
		 "\"ttl\":%llu,\"rooms\":{", gw_cfg.node,
		 (unsigned long long)gw_cfg.presence_ttl_ms);
}

/* Send the line in b (ending its object). Returns 0 or -1. */
static int beat_send(struct queries *qs, struct buf *b)
{
	buf_adds(b, "}}");
	return query_send(qs, b);
}

int presence_heartbeat(struct queries *qs, struct rooms *t)
{
	size_t limit = gw_cfg.max_line > LINE_SLACK * 2 ? gw_cfg.max_line - LINE_SLACK : 1024;
	struct map_ent *re = NULL, *ue;
	size_t bucket = 0, ub;
	struct buf b = BUF_INIT(0);
	bool room_open, any = false;
	int lines = 0;

	beat_open(&b);
	while (map_next(&t->by_name, &bucket, &re)) {
		struct room *r = re->val;
		size_t rn = strlen(r->name);

		if (!r->users.n)
			continue;
		room_open = false;
		ue = NULL;
		ub = 0;
		while (map_next(&r->users, &ub, &ue)) {
			size_t need = strlen(ue->key) + 4 + (room_open ? 0 : rn + 6);

			if (b.len + need > limit && any) {
				if (room_open)
					buf_adds(&b, "]");
				if (beat_send(qs, &b) < 0)
					goto full;
				lines++;
				beat_open(&b);
				room_open = false;
				any = false;
			}
			if (!room_open) {
				buf_addf(&b, "%s\"%s\":[\"%s\"", any ? "," : "", r->name, ue->key);
				room_open = true;
			} else {
				buf_addf(&b, ",\"%s\"", ue->key);
			}
			any = true;
		}
		if (room_open)
			buf_adds(&b, "]");
	}
	if (any) {
		if (beat_send(qs, &b) < 0)
			goto full;
		lines++;
	}
	buf_release(&b);
	gw_m.presence_beats.value++;
	return lines;
full:
	buf_release(&b);
	gw_m.presence_lost.value++;
	LOG_W("the bus did not take a heartbeat line: the round is cut short", "lines=%d",
	      lines);
	return -1;
}

int presence_down(struct queries *qs)
{
	struct buf b = BUF_INIT(0);

	buf_addf(&b, "{\"type\":\"down\",\"route\":\"presence\",\"node\":\"%s\"}", gw_cfg.node);
	return query_send(qs, &b);
}
