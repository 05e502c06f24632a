/*
 * render: the lines chat-presence writes, in one place so that the change
 * published on the bus, the one watch prints and the answers never drift
 * apart. Room, user and node names are valid by the time they get here
 * (lib/name.h, lib/id.h): no quote, backslash or control byte, so they are
 * written as they are. Each function leaves out as it was when it fails.
 */
#include "presence.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void render_list(struct buf *out, const char *const *v, size_t n)
{
	size_t i;

	buf_adds(out, "[");
	for (i = 0; i < n; i++) {
		buf_adds(out, i ? ",\"" : "\"");
		buf_adds(out, v[i]);
		buf_adds(out, "\"");
	}
	buf_adds(out, "]");
}

/* A render starts with the buffer's sticky error cleared, so that it can
 * tell its own failure; render_end() puts the earlier error back, and on a
 * failure drops what the render added. */
static int render_begin(struct buf *out, size_t *before)
{
	int err0 = out->err;

	*before = out->len;
	out->err = 0;
	return err0;
}

static int render_end(struct buf *out, size_t before, int err0)
{
	bool failed = out->err != 0;

	if (failed) {
		out->len = before;
		if (out->cap)
			out->data[before] = '\0';
	}
	out->err = err0;
	return failed ? -1 : 0;
}

int pres_render_change(struct buf *out, const char *room, const char *const *joined,
		       size_t njoined, const char *const *left, size_t nleft)
{
	size_t before;
	int err0 = render_begin(out, &before);

	buf_addf(out, "{\"type\":\"presence\",\"room\":\"%s\",\"joined\":", room);
	render_list(out, joined, njoined);
	buf_adds(out, ",\"left\":");
	render_list(out, left, nleft);
	buf_adds(out, "}\n");
	return render_end(out, before, err0);
}

int pres_render_change_routed(struct buf *out, const char *room, const char *line,
			      size_t len)
{
	size_t before;
	int err0;

	/* line ends with "}\n": splice the route in before the brace. */
	if (len < 3 || line[len - 1] != '\n' || line[len - 2] != '}')
		return -1;
	err0 = render_begin(out, &before);
	buf_add(out, line, len - 2);
	buf_addf(out, ",\"route\":\"evt.%s\"}\n", room);
	return render_end(out, before, err0);
}

int pres_render_answer(struct buf *out, const char *rpc, const char *node,
		       const char *room, const char *const *users, size_t nusers,
		       uint64_t count, bool more, size_t max_line)
{
	size_t before, fixed, i, n = 0, room_left;
	int err0 = render_begin(out, &before);
	char tail[160];

	/* What comes after the users, with its longest values. */
	fixed = strlen(rpc) + strlen(room) + strlen(node) + 140;
	room_left = max_line > fixed ? max_line - fixed : 0;
	for (i = 0; i < nusers; i++) {
		size_t l = strlen(users[i]) + 3;

		if (l > room_left)
			break;
		room_left -= l;
		n++;
	}
	if (n < nusers)
		more = true;
	buf_addf(out,
		 "{\"type\":\"presence\",\"rpc\":%s,\"room\":\"%s\",\"users\":", rpc,
		 room);
	render_list(out, users, n);
	snprintf(tail, sizeof(tail), ",\"count\":%" PRIu64 ",\"more\":%s,", count,
		 more ? "true" : "false");
	buf_adds(out, tail);
	buf_addf(out, "\"route\":\"node.%s\"}\n", node);
	return render_end(out, before, err0);
}

int pres_render_error(struct buf *out, const char *rpc, const char *node,
		      const char *room, const char *text)
{
	size_t before;
	int err0 = render_begin(out, &before);

	/* text is ours (a fixed phrase, or a Redis error cut to its first
	 * word): keep it to a safe alphabet. */
	buf_addf(out, "{\"type\":\"error\",\"rpc\":%s,\"room\":\"%s\",\"error\":\"",
		 rpc, room);
	for (; *text; text++)
		buf_add(out,
			(*text == '"' || *text == '\\' || (unsigned char)*text < 0x20) ?
			    "?" :
			    text,
			1);
	buf_addf(out, "\",\"route\":\"node.%s\"}\n", node);
	return render_end(out, before, err0);
}

int pres_render_online(struct buf *out, const char *room, const char *const *users,
		       size_t nusers, uint64_t count, bool more)
{
	size_t before;
	int err0 = render_begin(out, &before);

	buf_addf(out, "{\"room\":\"%s\",\"users\":", room);
	render_list(out, users, nusers);
	buf_addf(out, ",\"count\":%" PRIu64 ",\"more\":%s}\n", count,
		 more ? "true" : "false");
	return render_end(out, before, err0);
}
