/*
 * line: what the relay makes of a line, both ways, with no I/O so it can be
 * unit tested. An input line is a JSON object: published as it is (its
 * "route" is the routing key, its "confirm" is echoed back after the
 * broker's confirm), or, with "type" ack/nack and a "tag", a control line
 * that settles a delivery. A delivery becomes one output line: the body, with
 * "tag":N spliced in as the last member in manual-ack mode.
 */
#include "relay.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void line_bad(struct relay_line *l, const char *fmt, const char *arg)
{
	l->kind = RLINE_BAD;
	snprintf(l->err, sizeof(l->err), fmt, arg);
}

void relay_line_parse(const char *line, size_t len, const char *default_route,
		      bool control, struct relay_line *l)
{
	json_error_t jerr;
	json_t *root, *v, *type;
	const char *route;

	memset(l, 0, sizeof(*l));
	root = json_loadb(line, len, 0, &jerr);
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
	v = json_object_get(root, "confirm");
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
