/*
 * fuzz_relay_line: libFuzzer target for what chat-relay makes of the lines
 * it reads (a child's or stdin's, so anything) and of the bodies it is
 * delivered (anyone with the broker's password can publish them). Every
 * input is parsed four ways (control lines on and off, with and without a
 * default route) and checked against what the contract promises: a publish
 * carries a body that is a JSON object equal to the line less "route",
 * "confirm" and "expire" and holding none of them, the line itself when it
 * had none; a control line has a positive tag; a refusal says why. Then the
 * input as a delivery body, with and without a tag: either refused with a
 * reason and nothing written, or one line that is the same object (plus
 * the tag).
 */
/* links: cmd/chat-relay/pipe.c lib/skim.c lib/buf.c */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cmd/chat-relay/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const envelope[] = { "route", "confirm", "expire" };

static void check_publish(const char *line, size_t len, const char *def,
			  const struct relay_line *l)
{
	json_t *in, *body, *want;
	size_t i;
	bool had = false;

	if (strlen(l->route) > RELAY_ROUTE_MAX || l->expire_ms > RELAY_EXPIRE_MAX ||
	    !l->body || l->body_len > len)
		__builtin_trap();
	in = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	body = json_loadb(l->body, l->body_len, JSON_ALLOW_NUL, NULL);
	if (!in || !json_is_object(in) || !body || !json_is_object(body))
		__builtin_trap();
	want = json_deep_copy(in);
	for (i = 0; i < sizeof(envelope) / sizeof(envelope[0]); i++) {
		if (json_object_get(body, envelope[i]))
			__builtin_trap(); /* a consumer would see it */
		if (json_object_get(in, envelope[i]))
			had = true;
		json_object_del(want, envelope[i]);
	}
	if (!json_equal(want, body))
		__builtin_trap(); /* something else was lost or changed */
	if (!had && (l->body != line || l->body_len != len))
		__builtin_trap(); /* nothing to cut: the line as written */
	if (!json_object_get(in, "route") && (!def || strcmp(l->route, def)))
		__builtin_trap();
	if (!json_object_get(in, "confirm") != !l->confirm)
		__builtin_trap();
	json_decref(want);
	json_decref(body);
	json_decref(in);
}

static void parse_one(const char *line, size_t len, const char *def,
		      bool control, struct buf *scratch)
{
	struct relay_line l;

	relay_line_parse(line, len, def, control, scratch, &l);
	switch (l.kind) {
	case RLINE_PUBLISH:
		check_publish(line, len, def, &l);
		break;
	case RLINE_ACK:
	case RLINE_NACK:
		if (!control || l.tag == 0 || l.confirm)
			__builtin_trap();
		break;
	case RLINE_BAD:
		if (!l.err[0] || l.confirm)
			__builtin_trap();
		break;
	default:
		__builtin_trap();
	}
	free(l.confirm);
}

static void delivery_one(const char *body, size_t len, uint64_t tag)
{
	struct buf out = BUF_INIT(1 << 20);
	const char *why = NULL;
	json_t *in, *got;

	if (relay_line_delivery(&out, body, len, tag, &why) < 0) {
		if (!why || out.len != 0)
			__builtin_trap();
		buf_release(&out);
		return;
	}
	if (out.len < 3 || out.data[out.len - 1] != '\n' ||
	    memchr(out.data, '\n', out.len - 1))
		__builtin_trap(); /* exactly one line */
	in = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
	if (in && json_is_object(in)) {
		got = json_loadb(out.data, out.len - 1, JSON_ALLOW_NUL, NULL);
		if (!got || !json_is_object(got))
			__builtin_trap();
		if (tag) {
			json_t *t = json_object_get(got, "tag");

			if (!json_is_integer(t) || (uint64_t)json_integer_value(t) != tag)
				__builtin_trap();
			json_object_set_new(in, "tag", json_integer((json_int_t)tag));
		}
		if (!json_equal(in, got))
			__builtin_trap();
		json_decref(got);
	}
	json_decref(in);
	buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf scratch = BUF_INIT(0);
	/* A copy that ends where the input ends, so that a read past it is
	 * caught (the relay hands lines NUL-terminated, but must not rely on
	 * it for anything but speed). */
	char *line = malloc(size ? size : 1);

	memcpy(line, data, size);
	parse_one(line, size, NULL, true, &scratch);
	parse_one(line, size, NULL, false, &scratch);
	parse_one(line, size, "evt.default", true, &scratch);
	parse_one(line, size, "evt.default", false, &scratch);
	delivery_one(line, size, 0);
	delivery_one(line, size, 42);
	buf_release(&scratch);
	free(line);
	return 0;
}
