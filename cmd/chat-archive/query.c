/*
 * query: what serve makes of a line on its stdin, and the answers it
 * writes, with no I/O so both can be unit tested and fuzzed. Queries come
 * from gateways through the relay (the contract in man/chat-archive.1):
 *   {"type":"history","rpc":Q,"node":N,"conn":C,"room":R,"limit":L,
 *    "before":SEQ?}
 *   {"type":"recover","rpc":Q,"node":N,"conn":C?,"room":R,"since":SEQ?}
 * An answer goes to route node.N, never to the query's own route, and
 * carries the query's room and rpc (the rpc value copied byte for byte).
 * Every answer fits the line limit: messages that do not fit are left out,
 * the oldest first, and the answer says so ("more" or "gap").
 */
#include "archive.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "name.h"
#include "skim.h"

#define HISTORY_DEFAULT_LIMIT 50

static void query_bad(struct query *q, const char *why)
{
	q->kind = QUERY_BAD;
	snprintf(q->why, sizeof(q->why), "%s", why);
}

/* A seq member: absent (-1 in *out), or an integer >= 0. */
static int query_seq(json_t *root, const char *name, int64_t *out)
{
	json_t *v = json_object_get(root, name);

	*out = -1;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

void query_parse(const char *line, size_t len, unsigned history_max,
		 struct query *q)
{
	struct skim_field f = { .name = "rpc" };
	json_error_t jerr;
	json_t *root, *v;
	const char *type, *s;

	memset(q, 0, sizeof(*q));
	q->before = q->since = -1;
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			  &jerr);
	if (!root) {
		q->kind = QUERY_BAD;
		snprintf(q->why, sizeof(q->why), "not valid JSON: %.80s",
			 jerr.text);
		return;
	}
	if (!json_is_object(root) || skim_object(line, len, &f, 1) < 0) {
		query_bad(q, "not a JSON object");
		goto out;
	}
	v = json_object_get(root, "tag");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			query_bad(q, "\"tag\" is not a positive integer");
			goto out;
		}
		q->tagged = true;
		q->tag = (uint64_t)json_integer_value(v);
	}
	type = json_string_value(json_object_get(root, "type"));
	if (!type) {
		query_bad(q, "no \"type\" string");
		goto out;
	}
	if (!q->tagged && (!strcmp(type, "bus") || !strcmp(type, "confirm") ||
			   !strcmp(type, "nack"))) {
		q->kind = QUERY_OTHER;
		goto out;
	}
	if (!strcmp(type, "history")) {
		q->kind = QUERY_HISTORY;
	} else if (!strcmp(type, "recover")) {
		q->kind = QUERY_RECOVER;
	} else {
		query_bad(q, "\"type\" is not history or recover");
		goto out;
	}
	if (!json_object_get(root, "rpc") || !f.v) {
		query_bad(q, "no \"rpc\"");
		goto out;
	}
	if (f.vlen > ARCHIVE_RPC_MAX) {
		query_bad(q, "\"rpc\" is longer than 256 bytes");
		goto out;
	}
	memcpy(q->rpc, f.v, f.vlen);
	q->rpc[f.vlen] = '\0';
	s = json_string_value(json_object_get(root, "node"));
	if (!s || !id_node_valid(s)) {
		query_bad(q, "no valid \"node\" to answer to");
		goto out;
	}
	snprintf(q->node, sizeof(q->node), "%s", s);
	s = json_string_value(json_object_get(root, "room"));
	if (!s || !name_room_valid(s, strlen(s))) {
		query_bad(q, "no valid \"room\"");
		goto out;
	}
	snprintf(q->room, sizeof(q->room), "%s", s);
	if (q->kind == QUERY_RECOVER) {
		if (query_seq(root, "since", &q->since) < 0)
			query_bad(q, "\"since\" is not a seq");
		goto out;
	}
	if (query_seq(root, "before", &q->before) < 0) {
		query_bad(q, "\"before\" is not a seq");
		goto out;
	}
	v = json_object_get(root, "limit");
	q->limit = HISTORY_DEFAULT_LIMIT;
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			query_bad(q, "\"limit\" is not a positive integer");
			goto out;
		}
		q->limit = json_integer_value(v) > (json_int_t)history_max
				   ? history_max
				   : (unsigned)json_integer_value(v);
	}
	if (q->limit > history_max)
		q->limit = history_max;
out:
	json_decref(root);
}

/* The head of an answer: {"type":TYPE,"rpc":Q,"room":R */
static int answer_head(struct buf *out, const char *type, const struct query *q)
{
	int r = 0;

	r |= buf_addf(out, "{\"type\":\"%s\",\"rpc\":%s,\"room\":", type, q->rpc);
	r |= msgline_str(out, q->room, strlen(q->room));
	return r;
}

static int answer_tail(struct buf *out, const struct query *q)
{
	return buf_addf(out, ",\"route\":\"node.%s\"}\n", q->node);
}

/* Render m[0..n) (newest first) into scratch, one after another, while the
 * total with commas stays within budget and, when contiguous, each seq is
 * one below the previous (from first_seq down). ends[i] is where message i
 * ends in scratch. Returns how many fit, or -1 when out of memory. */
static long answer_fit(struct buf *scratch, size_t *ends,
		       const struct msgline *m, size_t n, size_t budget,
		       bool contiguous, int64_t first_seq)
{
	size_t i, used = 0;

	buf_reset(scratch);
	for (i = 0; i < n; i++) {
		size_t before = scratch->len, len;

		if (contiguous && m[i].seq != first_seq - (int64_t)i)
			break;
		if (msgline_render(scratch, &m[i], false, 0) < 0)
			return -1;
		len = scratch->len - before + (i ? 1 : 0);
		if (used + len > budget) {
			scratch->len = before;
			break;
		}
		used += len;
		ends[i] = scratch->len;
	}
	return (long)i;
}

/* Append the kept messages oldest first (scratch holds them newest first). */
static int answer_list(struct buf *out, const struct buf *scratch,
		       const size_t *ends, size_t kept)
{
	size_t i;
	int r = 0;

	r |= buf_add(out, "[", 1);
	for (i = kept; i-- > 0;) {
		size_t start = i ? ends[i - 1] : 0;

		r |= buf_add(out, scratch->data + start, ends[i] - start);
		if (i)
			r |= buf_add(out, ",", 1);
	}
	r |= buf_add(out, "]", 1);
	return r;
}

/* Bytes the fixed parts of an answer take: everything but the messages,
 * the newline included, with room for the members between the head and
 * the tail: ,"seq":LAST ,"messages":[] ,"more":false and the largest
 * ,"gap":{"from":A,"to":B} (114 bytes at most). */
static size_t answer_fixed(const struct query *q, const char *type)
{
	struct buf b = BUF_INIT(0);
	size_t n;

	if (answer_head(&b, type, q) < 0 || answer_tail(&b, q) < 0) {
		buf_release(&b);
		return SIZE_MAX / 2;
	}
	n = b.len;
	buf_release(&b);
	return n + 128;
}

int answer_history(struct buf *out, const struct query *q,
		   const struct msgline *m, size_t n, bool older_exist,
		   size_t max_line, struct answer_cut *cut)
{
	struct buf scratch = BUF_INIT(0);
	size_t fixed = answer_fixed(q, "history"), *ends, old = out->len;
	long kept;
	int r = 0;

	memset(cut, 0, sizeof(*cut));
	ends = calloc(n ? n : 1, sizeof(*ends));
	if (!ends)
		return -1;
	kept = answer_fit(&scratch, ends, m, n,
			  max_line > fixed ? max_line - fixed : 0, false, 0);
	if (kept < 0) {
		r = -1;
		goto out_free;
	}
	cut->kept = (size_t)kept;
	cut->cut = (size_t)kept < n;
	r |= answer_head(out, "history", q);
	r |= buf_adds(out, ",\"messages\":");
	r |= answer_list(out, &scratch, ends, (size_t)kept);
	r |= buf_addf(out, ",\"more\":%s",
		      older_exist || cut->cut ? "true" : "false");
	r |= answer_tail(out, q);
out_free:
	if (r) {
		out->len = old;
		out->data[old] = '\0';
	}
	free(ends);
	buf_release(&scratch);
	return r ? -1 : 0;
}

int answer_recover(struct buf *out, const struct query *q, int64_t last,
		   const struct msgline *m, size_t n, size_t max_line,
		   struct answer_cut *cut)
{
	struct buf scratch = BUF_INIT(0);
	size_t fixed = answer_fixed(q, "recovered"), *ends, old = out->len;
	int64_t first;
	long kept = 0;
	int r = 0;

	memset(cut, 0, sizeof(*cut));
	ends = calloc(n ? n : 1, sizeof(*ends));
	if (!ends)
		return -1;
	if (q->since >= 0 && q->since < last) {
		kept = answer_fit(&scratch, ends, m, n,
				  max_line > fixed ? max_line - fixed : 0,
				  true, last);
		if (kept < 0) {
			r = -1;
			goto out_free;
		}
	}
	cut->kept = (size_t)kept;
	cut->cut = (size_t)kept < n;
	r |= answer_head(out, "recovered", q);
	r |= buf_addf(out, ",\"seq\":%" PRId64 ",\"messages\":", last);
	r |= answer_list(out, &scratch, ends, (size_t)kept);
	/* The oldest kept is last - kept + 1; what lies between since and it
	 * is a gap: cut to fit, over the count limit, or pruned. */
	first = last - kept + 1;
	if (q->since >= 0 && q->since < last && first > q->since + 1)
		r |= buf_addf(out, ",\"gap\":{\"from\":%" PRId64 ",\"to\":%"
			      PRId64 "}", q->since + 1, first - 1);
	r |= answer_tail(out, q);
out_free:
	if (r) {
		out->len = old;
		out->data[old] = '\0';
	}
	free(ends);
	buf_release(&scratch);
	return r ? -1 : 0;
}

int answer_error(struct buf *out, const struct query *q, const char *text)
{
	size_t old = out->len;
	int r = 0;

	r |= answer_head(out, "error", q);
	r |= buf_adds(out, ",\"error\":");
	r |= msgline_str(out, text, strlen(text));
	r |= answer_tail(out, q);
	if (r) {
		out->len = old;
		out->data[old] = '\0';
	}
	return r ? -1 : 0;
}
