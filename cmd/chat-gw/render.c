/*
 * render: one function per frame a client gets (see render.h). The member
 * order of each frame is the one chat-protocol(7) shows.
 */
#include "render.h"

#include <stdbool.h>
#include <string.h>

static void add_ref(struct buf *b, const char *ref)
{
	if (ref) {
		buf_adds(b, ",\"ref\":");
		buf_adds(b, ref);
	}
}

void render_joined(struct buf *b, const char *room, const char *ref, uint64_t seq,
		   uint64_t gap_from, uint64_t gap_to)
{
	buf_addf(b, "{\"type\":\"joined\",\"room\":\"%s\"", room);
	add_ref(b, ref);
	buf_addf(b, ",\"seq\":%llu", (unsigned long long)seq);
	if (gap_from)
		buf_addf(b, ",\"gap\":{\"from\":%llu,\"to\":%llu}",
			 (unsigned long long)gap_from, (unsigned long long)gap_to);
	buf_adds(b, "}");
}

void render_left(struct buf *b, const char *room, const char *ref)
{
	buf_addf(b, "{\"type\":\"left\",\"room\":\"%s\"", room);
	add_ref(b, ref);
	buf_adds(b, "}");
}

void render_ack(struct buf *b, const char *ref, const char *id, int64_t ts)
{
	buf_adds(b, "{\"type\":\"ack\"");
	add_ref(b, ref);
	buf_addf(b, ",\"id\":\"%s\",\"ts\":%lld}", id, (long long)ts);
}

void render_string(struct buf *b, const char *s)
{
	const char *run = s;

	buf_adds(b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		buf_add(b, run, (size_t)(s - run));
		if (ch == '"' || ch == '\\')
			buf_addf(b, "\\%c", ch);
		else
			buf_addf(b, "\\u%04x", ch);
		run = s + 1;
	}
	buf_add(b, run, (size_t)(s - run));
	buf_adds(b, "\"");
}

void render_error(struct buf *b, const char *ref, const char *code, const char *msg)
{
	buf_adds(b, "{\"type\":\"error\"");
	add_ref(b, ref);
	buf_addf(b, ",\"code\":\"%s\",\"message\":", code);
	render_string(b, msg);
	buf_adds(b, "}");
}

void render_message(struct buf *b, const char *room, uint64_t seq, const char *id,
		    const char *from, int64_t ts, const char *body, size_t bodylen)
{
	buf_addf(b, "{\"type\":\"message\",\"room\":\"%s\",\"seq\":%llu,\"id\":\"%s\","
		 "\"from\":\"%s\",\"ts\":%lld,\"body\":", room,
		 (unsigned long long)seq, id, from, (long long)ts);
	buf_add(b, body, bodylen);
	buf_adds(b, "}");
}

void render_recovered(struct buf *b, const char *msg, size_t n)
{
	/* msg is an object: "{" then its members (or "}" when empty). */
	buf_adds(b, "{\"recovered\":true");
	if (n > 2)
		buf_adds(b, ",");
	buf_add(b, msg + 1, n - 1);
}

void render_typing(struct buf *b, const char *room, const char *from)
{
	buf_addf(b, "{\"type\":\"typing\",\"room\":\"%s\",\"from\":\"%s\"}", room, from);
}

void render_history(struct buf *b, const char *room, const char *ref,
		    const char *messages, size_t n, bool more)
{
	buf_addf(b, "{\"type\":\"history\",\"room\":\"%s\"", room);
	add_ref(b, ref);
	buf_adds(b, ",\"messages\":");
	buf_add(b, messages, n);
	buf_addf(b, ",\"more\":%s}", more ? "true" : "false");
}

void render_presence_list(struct buf *b, const char *room, const char *ref,
			  const char *users, size_t n, uint64_t count, bool more)
{
	buf_addf(b, "{\"type\":\"presence\",\"room\":\"%s\"", room);
	add_ref(b, ref);
	buf_adds(b, ",\"users\":");
	buf_add(b, users, n);
	buf_addf(b, ",\"count\":%llu,\"more\":%s}", (unsigned long long)count,
		 more ? "true" : "false");
}

void render_presence_change(struct buf *b, const char *room, const char *joined,
			    size_t jn, const char *left, size_t ln)
{
	buf_addf(b, "{\"type\":\"presence\",\"room\":\"%s\",\"joined\":", room);
	buf_add(b, joined, jn);
	buf_adds(b, ",\"left\":");
	buf_add(b, left, ln);
	buf_adds(b, "}");
}

void render_names(struct buf *b, const struct map *m, size_t limit)
{
	struct map_ent *e = NULL;
	size_t bucket = 0, k = 0;

	buf_adds(b, "[");
	while ((!limit || k < limit) && map_next(m, &bucket, &e)) {
		buf_addf(b, "%s\"%s\"", k ? "," : "", e->key);
		k++;
	}
	buf_adds(b, "]");
}
