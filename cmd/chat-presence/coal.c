/*
 * coal: presence changes coalesced per room (see presence.h for the rule).
 * A room's window opens with its first pending change and closes
 * --coalesce later; every window has the same length, so the pending rooms
 * form a list in the order their windows close. A room's line is cut in
 * several when it would pass --max-line, and everything pending goes out
 * at once past max_users, so neither memory nor a line grows without
 * bound. It does no I/O: lines go to the caller's emit function.
 */
#include "presence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of a change line besides its users (with a 128-byte room). */
#define COAL_LINE_FIXED 220

void coal_init(struct coal *c, uint64_t window_ms, size_t max_line, size_t max_users,
	       coal_emit_fn *emit, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->window_ms = window_ms;
	c->max_line =
	    max_line > COAL_LINE_FIXED + 256 ? max_line : COAL_LINE_FIXED + 256;
	c->max_users = max_users ? max_users : 1;
	c->emit = emit;
	c->arg = arg;
}

static void room_unlink(struct coal *c, struct coal_room *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		c->tail = r->prev;
	r->prev = r->next = NULL;
}

static void room_free_users(struct coal *c, struct coal_room *r)
{
	size_t b = 0;
	struct map_ent *it = NULL, *e;

	while ((e = map_next(&r->users, &b, &it)))
		free(e->val);
	c->nusers -= r->users.n;
	map_free(&r->users);
}

/* Forget room r entirely (its changes were emitted or cancelled). */
static void room_drop(struct coal *c, struct coal_room *r)
{
	room_unlink(c, r);
	map_del(&c->rooms, r->name);
	room_free_users(c, r);
	free(r);
}

void coal_free(struct coal *c)
{
	while (c->head)
		room_drop(c, c->head);
	map_free(&c->rooms);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Emit joined[0..nj) and left[0..nl) of room as lines of at most max_line
 * bytes, the users in sorted order. */
static void coal_emit_lists(struct coal *c, const char *room, const char **joined,
			    size_t nj, const char **left, size_t nl)
{
	struct buf line = BUF_INIT(0);
	size_t ij = 0, il = 0;

	qsort(joined, nj, sizeof(*joined), cmp_str);
	qsort(left, nl, sizeof(*left), cmp_str);
	while (ij < nj || il < nl) {
		size_t room_left = c->max_line - COAL_LINE_FIXED;
		size_t j0 = ij, l0 = il;

		while (ij < nj && strlen(joined[ij]) + 3 <= room_left)
			room_left -= strlen(joined[ij++]) + 3;
		while (ij == nj && il < nl && strlen(left[il]) + 3 <= room_left)
			room_left -= strlen(left[il++]) + 3;
		buf_reset(&line);
		if (pres_render_change(&line, room, joined + j0, ij - j0, left + l0,
				       il - l0) < 0) {
			if (!c->err)
				c->err = ENOMEM;
			break;
		}
		c->lines++;
		c->emit(c->arg, room, line.data, line.len);
	}
	buf_release(&line);
}

/* Emit room r's pending changes and forget it. */
static void coal_emit_room(struct coal *c, struct coal_room *r)
{
	const char **joined, **left;
	size_t nj = 0, nl = 0, b = 0;
	struct map_ent *it = NULL, *e;

	joined = malloc((r->users.n + 1) * sizeof(*joined));
	left = malloc((r->users.n + 1) * sizeof(*left));
	if (!joined || !left) {
		if (!c->err)
			c->err = ENOMEM;
		goto out_drop;
	}
	while ((e = map_next(&r->users, &b, &it))) {
		const struct coal_user *u = e->val;

		if (u->joined)
			joined[nj++] = e->key;
		else
			left[nl++] = e->key;
	}
	coal_emit_lists(c, r->name, joined, nj, left, nl);
out_drop:
	free(joined);
	free(left);
	room_drop(c, r);
}

void coal_flush_room(struct coal *c, const char *room)
{
	struct coal_room *r = map_get(&c->rooms, room);

	if (r)
		coal_emit_room(c, r);
}

void coal_flush_due(struct coal *c, int64_t now_ms)
{
	while (c->head && c->head->due_ms <= now_ms)
		coal_emit_room(c, c->head);
}

void coal_flush_all(struct coal *c)
{
	while (c->head)
		coal_emit_room(c, c->head);
}

int64_t coal_next_due(const struct coal *c)
{
	return c->head ? c->head->due_ms : -1;
}

/* Out of memory: the change goes out alone and now, never silently lost. */
static int coal_emit_now(struct coal *c, const char *room, const char *user, bool joined)
{
	const char *one[1] = { user };

	if (!c->err)
		c->err = ENOMEM;
	coal_emit_lists(c, room, joined ? one : NULL, joined ? 1 : 0,
			joined ? NULL : one, joined ? 0 : 1);
	return -1;
}

int coal_add(struct coal *c, const char *room, const char *user, bool joined,
	     int64_t t_us, int64_t seen_us, int64_t now_ms)
{
	struct coal_room *r = map_get(&c->rooms, room);
	struct coal_user *u;
	size_t nlen;

	if (!r) {
		nlen = strlen(room);
		r = calloc(1, sizeof(*r) + nlen + 1);
		if (!r)
			return coal_emit_now(c, room, user, joined);
		memcpy(r->name, room, nlen + 1);
		if (!map_put(&c->rooms, r->name, r)) {
			free(r);
			return coal_emit_now(c, room, user, joined);
		}
		r->due_ms = now_ms + (int64_t)c->window_ms;
		r->prev = c->tail;
		if (c->tail)
			c->tail->next = r;
		else
			c->head = r;
		c->tail = r;
	}
	u = map_get(&r->users, user);
	if (u) {
		if (u->joined == joined)
			/* Another process announced the opposite in between
			 * (each announces what its own scripts changed): this
			 * one stands, with the earlier time. */
			return 0;
		if (seen_us >= u->t_us) {
			/* A query looked after the first transition: the
			 * asker may hold it, so both go out, in order. */
			c->seen_flushes++;
			coal_emit_room(c, r);
			return coal_add(c, room, user, joined, t_us, seen_us, now_ms);
		}
		/* Nobody saw the first: the two cancel. */
		free(map_del(&r->users, user));
		c->nusers--;
		c->cancelled++;
		r->bytes -= strlen(user) + 3;
		if (r->users.n == 0)
			room_drop(c, r);
		return 0;
	}
	u = malloc(sizeof(*u));
	if (!u || !map_put(&r->users, user, u)) {
		free(u);
		if (r->users.n == 0)
			room_drop(c, r);
		return coal_emit_now(c, room, user, joined);
	}
	u->joined = joined;
	u->t_us = t_us;
	c->nusers++;
	r->bytes += strlen(user) + 3;
	if (c->window_ms == 0 || r->bytes + COAL_LINE_FIXED >= c->max_line)
		coal_emit_room(c, r);
	if (c->nusers > c->max_users)
		coal_flush_all(c);
	return 0;
}
