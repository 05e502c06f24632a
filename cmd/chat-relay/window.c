/*
 * window: the publishes the broker has not confirmed yet, oldest first, at
 * most max_inflight of them (see relay.h). It is what makes the relay
 * at-least-once: an entry leaves only when the broker acked or nacked it,
 * and when the connection drops every entry still held is published again
 * on the next one. Confirms are settled in any order but entries leave in
 * publish order, so the answers to a child come in the order of its lines.
 * A mandatory entry the broker returned is marked so, and the ack that
 * follows its return settles it as a nack.
 */
#include "relay.h"

#include <stdlib.h>
#include <string.h>

int relay_window_init(struct relay_window *w, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->ring = calloc(cap ? cap : 1, sizeof(*w->ring));
	if (!w->ring)
		return -1;
	w->cap = cap ? cap : 1;
	return 0;
}

void relay_window_free(struct relay_window *w)
{
	size_t i;

	if (!w->ring)
		return;
	for (i = 0; i < w->count; i++)
		relay_msg_free(w->ring[(w->head + i) % w->cap]);
	free(w->ring);
	memset(w, 0, sizeof(*w));
}

struct relay_msg *relay_msg_new(const char *body, size_t len, const char *route,
				uint32_t expire_ms, char *confirm)
{
	size_t rl = strlen(route);
	struct relay_msg *m = malloc(sizeof(*m) + len + 1 + rl + 1);

	if (!m) {
		free(confirm);
		return NULL;
	}
	m->confirm = confirm;
	m->done = m->nacked = m->returned = false;
	m->mandatory = relay_route_mandatory(route);
	m->expire_ms = expire_ms;
	m->len = len;
	memcpy(m->data, body, len);
	m->data[len] = '\0';
	m->route = m->data + len + 1;
	memcpy(m->route, route, rl + 1);
	return m;
}

void relay_msg_free(struct relay_msg *m)
{
	if (!m)
		return;
	free(m->confirm);
	free(m);
}

static struct relay_msg *window_at(const struct relay_window *w, size_t i)
{
	return w->ring[(w->head + i) % w->cap];
}

void relay_window_push(struct relay_window *w, struct relay_msg *m)
{
	w->ring[(w->head + w->count) % w->cap] = m;
	w->count++;
}

struct relay_msg *relay_window_unsent(const struct relay_window *w)
{
	return w->sent < w->count ? window_at(w, w->sent) : NULL;
}

void relay_window_mark_sent(struct relay_window *w, uint64_t seq)
{
	if (w->sent == 0)
		w->first_seq = seq;
	w->sent++;
}

size_t relay_window_settle(struct relay_window *w, uint64_t tag, bool multiple,
			   bool ok)
{
	size_t i, from, to, n = 0;

	if (w->sent == 0 || tag < w->first_seq)
		return 0;
	to = (size_t)(tag - w->first_seq); /* index of tag */
	if (to >= w->sent)
		return 0;
	from = multiple ? 0 : to;
	for (i = from; i <= to; i++) {
		struct relay_msg *m = window_at(w, i);

		if (m->done)
			continue;
		m->done = true;
		m->nacked = !ok || m->returned;
		n++;
	}
	return n;
}

bool relay_window_returned(struct relay_window *w, uint64_t seq)
{
	struct relay_msg *m;

	if (w->sent == 0 || seq < w->first_seq || seq - w->first_seq >= w->sent)
		return false;
	m = window_at(w, (size_t)(seq - w->first_seq));
	if (m->done)
		return false;
	m->returned = true;
	return true;
}

struct relay_msg *relay_window_pop(struct relay_window *w)
{
	struct relay_msg *m;

	if (w->count == 0 || w->sent == 0)
		return NULL;
	m = window_at(w, 0);
	if (!m->done)
		return NULL;
	w->ring[w->head] = NULL;
	w->head = (w->head + 1) % w->cap;
	w->count--;
	w->sent--;
	w->first_seq++;
	return m;
}

size_t relay_window_rewind(struct relay_window *w)
{
	size_t n = w->sent, i;

	/* A return seen on the lost channel whose ack never came: the line
	 * goes out again, and the new channel's answer is the one that
	 * counts (the queue may exist by now). */
	for (i = 0; i < w->count; i++)
		window_at(w, i)->returned = false;
	w->sent = 0;
	return n;
}
