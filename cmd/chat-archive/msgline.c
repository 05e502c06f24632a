/*
 * msgline: the one renderer of a message line. store writes it after
 * COMMIT, serve puts it inside answers, history prints it: all three come
 * from here, so a message in a history answer is byte for byte the live one
 * (the same member order, the body verbatim). The member order is the
 * contract's: type, room, seq, id, from, ts, body.
 */
#include "archive.h"

#include <inttypes.h>
#include <string.h>

int msgline_str(struct buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;
	int r = 0;

	r |= buf_add(out, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		r |= buf_add(out, s + run, i - run);
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			r |= buf_add(out, esc, 2);
		} else {
			r |= buf_add(out, esc, 6);
		}
		run = i + 1;
	}
	r |= buf_add(out, s + run, n - run);
	r |= buf_add(out, "\"", 1);
	return r ? -1 : 0;
}

int msgline_render(struct buf *out, const struct msgline *m, bool route,
		   uint64_t confirm)
{
	size_t old = out->len;
	int r = 0;

	r |= buf_adds(out, "{\"type\":\"message\",\"room\":");
	r |= msgline_str(out, m->room, m->room_len);
	r |= buf_addf(out, ",\"seq\":%" PRId64 ",\"id\":", m->seq);
	r |= msgline_str(out, m->id, m->id_len);
	r |= buf_adds(out, ",\"from\":");
	r |= msgline_str(out, m->from, m->from_len);
	r |= buf_addf(out, ",\"ts\":%" PRId64 ",\"body\":", m->ts);
	r |= buf_add(out, m->body, m->body_len);
	if (route) {
		r |= buf_adds(out, ",\"route\":\"msg.");
		/* A valid room needs no escape; a stored one was valid. */
		r |= buf_add(out, m->room, m->room_len);
		r |= buf_add(out, "\"", 1);
	}
	if (confirm)
		r |= buf_addf(out, ",\"confirm\":%" PRIu64, confirm);
	r |= buf_add(out, "}", 1);
	if (r) {
		out->len = old;
		out->data[old] = '\0';
		return -1;
	}
	return 0;
}
