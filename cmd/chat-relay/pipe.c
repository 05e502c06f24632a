/*
 * pipe: the relay's pipe side, what it makes of a line, both ways, with no I/O so it can be
 * unit tested. An input line is a JSON object: published, or, with "type"
 * ack/nack and a "tag", a control line that settles a delivery. A published
 * line's envelope members are instructions to the relay, never content:
 * "route" is the routing key, "confirm" is echoed back after the broker's
 * confirm, "expire" becomes the AMQP expiration; they are cut out of the
 * body textually (lib/skim's skim_without), so every other byte reaches the
 * consumer as the publisher wrote it. A delivery becomes one output line:
 * the body, with "tag":N spliced in as the last member in manual-ack mode.
 */
#include "relay.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "skim.h"

static const char *const envelope[] = { "route", "confirm", "expire" };
#define NENVELOPE ((int)(sizeof(envelope) / sizeof(envelope[0])))

static void line_bad(struct relay_line *l, const char *fmt, const char *arg)
{
	l->kind = RLINE_BAD;
	snprintf(l->err, sizeof(l->err), fmt, arg);
}

bool relay_route_mandatory(const char *route)
{
	return !strncmp(route, RELAY_INGEST_KEY, strlen(RELAY_INGEST_KEY));
}

/* Whether the object in p[0..len) has a top-level envelope member, its name
 * decoded (jansson). Only asked when the line holds a \u escape: a key
 * spelled "rout\u0065" is "route" to every consumer, yet not to skim. */
static bool line_has_envelope(const char *p, size_t len)
{
	json_t *root = json_loadb(p, len, JSON_ALLOW_NUL, NULL);
	bool has = false;
	int i;

	for (i = 0; root && i < NENVELOPE; i++)
		if (json_object_get(root, envelope[i]))
			has = true;
	json_decref(root);
	return has;
}

/* Set l->body: the line without its envelope members. present is how many
 * distinct envelope members jansson saw. Returns 0, or -1 with l bad. */
static int line_strip(const char *line, size_t len, int present,
		      struct buf *scratch, struct relay_line *l)
{
	int dropped;

	if (present == 0 && !memmem(line, len, "\\u", 2)) {
		l->body = line;
		l->body_len = len;
		return 0;
	}
	buf_reset(scratch);
	dropped = skim_without(line, len, envelope, NENVELOPE, scratch);
	if (dropped < 0) {
		l->kind = RLINE_BAD;
		snprintf(l->err, sizeof(l->err), "%s",
			 "unable to cut out the envelope members: out of memory");
		return -1;
	}
	/* jansson keeps the last of duplicate keys, skim drops them all: a
	 * difference means a member twice, or a name written with escapes. */
	if (dropped != present ||
	    (memmem(line, len, "\\u", 2) &&
	     line_has_envelope(scratch->data, scratch->len))) {
		l->kind = RLINE_BAD;
		snprintf(l->err, sizeof(l->err), "%s",
			 "\"route\", \"confirm\" or \"expire\" appears twice "
			 "or with escapes in its name");
		return -1;
	}
	if (dropped == 0) {
		/* Nothing cut: publish the line as written, spaces and all. */
		l->body = line;
		l->body_len = len;
	} else {
		l->body = scratch->data;
		l->body_len = scratch->len;
	}
	return 0;
}

void relay_line_parse(const char *line, size_t len, const char *default_route,
		      bool control, struct buf *scratch, struct relay_line *l)
{
	json_error_t jerr;
	json_t *root, *v, *type;
	const char *route;
	int present = 0;

	memset(l, 0, sizeof(*l));
	root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	if (!root) {
		l->kind = RLINE_BAD;
		snprintf(l->err, sizeof(l->err), "not valid JSON: %.80s at byte %d",
			 jerr.text, jerr.position);
		return;
	}
	if (!json_is_object(root)) {
		line_bad(l, "%s", "not a JSON object");
		goto out;
	}
	type = json_object_get(root, "type");
	v = json_object_get(root, "tag");
	if (control && v && json_is_string(type) &&
	    (!strcmp(json_string_value(type), "ack") ||
	     !strcmp(json_string_value(type), "nack"))) {
		json_t *rq = json_object_get(root, "requeue");

		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			line_bad(l, "%s", "\"tag\" is not a positive integer");
			goto out;
		}
		if (rq && !json_is_boolean(rq)) {
			line_bad(l, "%s", "\"requeue\" is not true or false");
			goto out;
		}
		l->kind = strcmp(json_string_value(type), "ack") ? RLINE_NACK
								 : RLINE_ACK;
		l->tag = (uint64_t)json_integer_value(v);
		l->requeue = rq ? json_is_true(rq) : true;
		goto out;
	}
	v = json_object_get(root, "route");
	if (v) {
		if (!json_is_string(v)) {
			line_bad(l, "%s", "\"route\" is not a string");
			goto out;
		}
		route = json_string_value(v);
	} else if (default_route) {
		route = default_route;
	} else {
		line_bad(l, "%s", "no \"route\" and no --route given");
		goto out;
	}
	if (strlen(route) > RELAY_ROUTE_MAX) {
		line_bad(l, "%s", "\"route\" is longer than 255 bytes");
		goto out;
	}
	/* (jansson refuses \u0000 in strings: the route has no NUL byte.) */
	present += v != NULL;
	v = json_object_get(root, "expire");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > (json_int_t)RELAY_EXPIRE_MAX) {
			line_bad(l, "%s", "\"expire\" is not an integer of "
				 "milliseconds from 1 to 86400000");
			goto out;
		}
		l->expire_ms = (uint32_t)json_integer_value(v);
		present++;
	}
	v = json_object_get(root, "confirm");
	if (v)
		present++;
	if (line_strip(line, len, present, scratch, l) < 0)
		goto out;
	if (v) {
		l->confirm = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		if (!l->confirm) {
			line_bad(l, "%s", "out of memory");
			goto out;
		}
	}
	strcpy(l->route, route);
	l->kind = RLINE_PUBLISH;
out:
	json_decref(root);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int relay_line_delivery(struct buf *out, const char *body, size_t len,
			uint64_t tag, const char **why)
{
	size_t start = 0, end = len, i;
	size_t old = out->len;
	int r;

	while (start < end && is_space(body[start]))
		start++;
	while (end > start && is_space(body[end - 1]))
		end--;
	if (end - start < 2 || body[start] != '{' || body[end - 1] != '}') {
		*why = "body is not a JSON object";
		return -1;
	}
	if (memchr(body + start, '\n', end - start) ||
	    memchr(body + start, '\0', end - start)) {
		*why = "body is not one line";
		return -1;
	}
	if (tag == 0) {
		r = buf_add(out, body + start, end - start);
		if (r == 0)
			r = buf_add(out, "\n", 1);
	} else {
		/* Splice before the final '}': ,"tag":N or "tag":N for {}. */
		bool empty = true;

		for (i = start + 1; i < end - 1; i++)
			if (!is_space(body[i])) {
				empty = false;
				break;
			}
		r = buf_add(out, body + start, end - 1 - start);
		if (r == 0)
			r = buf_addf(out, "%s\"tag\":%" PRIu64 "}\n",
				     empty ? "" : ",", tag);
	}
	if (r < 0) {
		out->len = old;
		out->data[old] = '\0';
		*why = "output buffer full";
		return -1;
	}
	return 0;
}

int relay_line_confirm(struct buf *out, const char *confirm, bool ok)
{
	return buf_addf(out, "{\"type\":\"%s\",\"confirm\":%s}\n",
			ok ? "confirm" : "nack", confirm);
}
