/*
 * bench_pub: the publishers of a `chat-cli bench` run. A publisher is one
 * of the first --publishers connections; the schedule (bench.c's tick)
 * hands it refs, and here they are written, answered and checked: what
 * each ref's state is (PS_* in bench.h), the window of unanswered refs
 * (at most --window), acks and refusals, the resend of a ref left without
 * an answer (same ref, same body: the gateway's dedupe makes it one
 * message) and, with --reconnect, the close of a connection whose oldest
 * ref waited past --timeout. A delivery names its publisher and ref in its
 * body; bench_pub_seen checks that no ref came under two seqs.
 *
 * Memory: per publisher two arrays of --window timestamps and, per ref
 * sent, one state byte and one seq (grown by doubling); all owned by the
 * struct bpub and freed by bench_pub_free.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "bench.h"
#include "clock.h"
#include "log.h"
#include "skim.h"

/* Make room for ref n in p's per-ref arrays. */
static int bench_pub_grow(struct bpub *p, uint64_t n)
{
	uint64_t cap = p->cap ? p->cap : 1024;
	uint8_t *st;
	uint32_t *seq;

	if (n < p->cap)
		return 0;
	while (cap <= n)
		cap *= 2;
	st = realloc(p->st, cap * sizeof(*st));
	if (!st)
		return -1;
	p->st = st;
	seq = realloc(p->seq, cap * sizeof(*seq));
	if (!seq)
		return -1;
	p->seq = seq;
	memset(p->st + p->cap, 0, (cap - p->cap) * sizeof(*st));
	memset(p->seq + p->cap, 0, (cap - p->cap) * sizeof(*seq));
	p->cap = cap;
	return 0;
}

/* Write ref n of publisher p, its body sent at t. */
static bool bench_pub_write_ref(struct bench *b, struct bpub *p, uint64_t n,
				int64_t t)
{
	size_t cap = LWS_PRE + 256 + BENCH_PREFIX_MAX + b->size;
	unsigned char stackbuf[LWS_PRE + 1024], *buf = stackbuf;
	char room[BENCH_PREFIX_MAX + 16];
	size_t have, padn;
	int len, head;
	bool ok;

	if (cap > sizeof(stackbuf)) {
		buf = malloc(cap);
		if (!buf)
			return false;
	}
	bench_room_name(b, p->c->room, room, sizeof(room));
	head = snprintf((char *)buf + LWS_PRE, cap - LWS_PRE,
			"{\"type\":\"publish\",\"room\":\"%s\","
			"\"ref\":\"%" PRIu64 "\",\"body\":", room, n);
	len = head + snprintf((char *)buf + LWS_PRE + head, cap - LWS_PRE - head,
			      "{\"t\":%" PRId64 ",\"p\":%ld,\"n\":%" PRIu64
			      ",\"x\":\"", t, (long)(p - b->pubs), n);
	/* Pad the body {"t":..,"p":..,"n":..,"x":"..."} to --size bytes. */
	have = (size_t)(len - head) + 2;
	padn = b->size > have ? b->size - have : 0;
	memcpy(buf + LWS_PRE + len, b->pad, padn);
	len += (int)padn;
	memcpy(buf + LWS_PRE + len, "\"}}", 3);
	len += 3;
	ok = lws_write(p->c->wsi, buf + LWS_PRE, (size_t)len, LWS_WRITE_TEXT) >= len;
	if (buf != stackbuf)
		free(buf);
	return ok;
}

/* Whether p has something to write now. */
static bool bench_pub_ready(struct bench *b, struct bpub *p, int64_t now)
{
	if (p->nresend)
		return now >= p->retry_at;
	return p->due > p->sent && p->sent + 1 - p->lo < b->window;
}

/* Write p's next publish: a ref to send again first (refs waiting for
 * that hold back new ones), else a new ref if the schedule gave one and
 * the window has room. Returns whether more can be written now. */
bool bench_pub_write(struct bench *b, struct bpub *p)
{
	int64_t now = clock_mono_us();
	uint64_t n, w = b->window;

	if (p->nresend) {
		if (now < p->retry_at)
			return false;
		for (n = p->lo; n <= p->sent; n++)
			if (p->st[n] & PS_RESEND)
				break;
		if (n > p->sent) { /* cannot happen: recount */
			p->nresend = 0;
			return bench_pub_ready(b, p, now);
		}
		if (!bench_pub_write_ref(b, p, n, p->first_at[n % w]))
			return false;
		p->st[n] = (uint8_t)((p->st[n] & ~PS_RESEND) | PS_WAIT | PS_RESENT);
		p->nresend--;
		p->try_at[n % w] = now;
		b->resent++;
		return bench_pub_ready(b, p, now);
	}
	if (p->due <= p->sent)
		return false;
	n = p->sent + 1;
	if (n - p->lo >= w) {
		b->skipped_window++;
		return false;
	}
	if (bench_pub_grow(p, n + 1) < 0) {
		LOG_W("out of memory: publisher stops", "publisher=%ld",
		      (long)(p - b->pubs));
		b->unsent += p->due - p->sent;
		p->due = p->sent;
		return false;
	}
	if (!bench_pub_write_ref(b, p, n, now))
		return false;
	p->st[n] = PS_WAIT;
	p->first_at[n % w] = p->try_at[n % w] = now;
	p->sent = n;
	b->published++;
	return bench_pub_ready(b, p, now);
}

/* Move p->lo past the refs that have their answer. */
static void bench_pub_advance(struct bpub *p)
{
	while (p->lo <= p->sent && (p->st[p->lo] & (PS_ACKED | PS_REFUSED)))
		p->lo++;
}

/* Message (p, n) reached a subscriber with seq: note its seq, and whether
 * it came before under another one. */
void bench_pub_seen(struct bench *b, int64_t pi, int64_t n, uint64_t seq)
{
	struct bpub *p;

	if (pi < 0 || (uint64_t)pi >= b->npubs || n < 1)
		return;
	p = &b->pubs[pi];
	if ((uint64_t)n >= p->cap || (uint64_t)n > p->sent)
		return; /* not one of ours */
	if (!p->seq[n]) {
		p->seq[n] = (uint32_t)seq;
	} else if (p->seq[n] != (uint32_t)seq && !(p->st[n] & PS_DOUBLED)) {
		p->st[n] |= PS_DOUBLED;
		b->doubled++;
		if (b->doubled == 1 || log_enabled(LOG_INFO))
			LOG_W("a message came under two seqs", "publisher=%" PRId64
			      " ref=%" PRId64 " seq=%" PRIu32 " again=%" PRIu64
			      " resent=%d", pi, n, p->seq[n], seq,
			      (p->st[n] & PS_RESENT) != 0);
	}
}

void bench_pub_ack(struct bench *b, struct bconn *c, struct skim_field *ref)
{
	struct bpub *p;
	int64_t n, now, at;

	if (c->pub < 0 || !skim_int(ref, &n) || n < 1)
		return;
	p = &b->pubs[c->pub];
	if ((uint64_t)n > p->sent || (p->st[n] & (PS_ACKED | PS_REFUSED)))
		return; /* not ours, or answered already */
	if (p->st[n] & PS_RESEND)
		p->nresend--;
	p->st[n] = (uint8_t)((p->st[n] & ~(PS_WAIT | PS_RESEND)) | PS_ACKED);
	p->acked++;
	p->attempt = 0;
	b->acked++;
	b->rooms[c->room].acked++;
	if (b->phase == PH_DRAIN)
		b->t_progress = clock_mono_us();
	if ((uint64_t)n >= p->lo) {
		now = clock_mono_us();
		at = p->first_at[(uint64_t)n % b->window];
		if (at >= b->t_measure && at < b->t_end)
			hist_add(&b->ack_lat, (uint64_t)(now - at));
	}
	bench_pub_advance(p);
	if (c->wsi && bench_pub_ready(b, p, clock_mono_us()))
		lws_callback_on_writable(c->wsi);
}

/* An error frame for ref n of c's publisher. */
void bench_pub_error(struct bench *b, struct bconn *c, const char *ref,
		     const char *code, const char *message)
{
	struct bpub *p = &b->pubs[c->pub];
	char *end;
	uint64_t n;

	errno = 0;
	n = ref ? strtoull(ref, &end, 10) : 0;
	if (!ref || errno || *end || n < 1 || n > p->sent ||
	    (p->st[n] & (PS_ACKED | PS_REFUSED))) {
		LOG_I("error frame for no publish of ours", "code=%s ref=%s",
		      log_q(code), log_q(ref));
		return;
	}
	if (b->reconnect && code && !strcmp(code, "unavailable")) {
		/* The gateway could not get it to the bus: again, same ref,
		 * once the backoff has passed. */
		if (!(p->st[n] & PS_RESEND)) {
			p->st[n] = (uint8_t)((p->st[n] & ~PS_WAIT) | PS_RESEND);
			p->nresend++;
		}
		p->retry_at = clock_mono_us() +
			      (int64_t)bench_delay_ms(b, &p->attempt) * 1000;
		return;
	}
	if (p->st[n] & PS_RESEND)
		p->nresend--;
	p->st[n] = (uint8_t)((p->st[n] & ~(PS_WAIT | PS_RESEND)) | PS_REFUSED);
	p->errors++;
	b->pub_errors++;
	if (b->pub_errors == 1)
		LOG_W("publish refused", "code=%s message=%s", log_q(code),
		      log_q(message));
	bench_pub_advance(p);
	if (c->wsi && bench_pub_ready(b, p, clock_mono_us()))
		lws_callback_on_writable(c->wsi);
}

/* Publishers whose resend backoff is over get written; with --reconnect,
 * one whose oldest unanswered ref waited --timeout closes its connection
 * (it reconnects and writes the ref again). */
void bench_pub_check(struct bench *b, int64_t now)
{
	uint32_t i;

	for (i = 0; i < b->npubs; i++) {
		struct bpub *p = &b->pubs[i];
		struct bconn *c = p->c;

		if (c->state != BC_JOINED || !c->wsi || c->want_close)
			continue;
		if (p->nresend && now >= p->retry_at)
			lws_callback_on_writable(c->wsi);
		if (b->reconnect && p->lo <= p->sent &&
		    (p->st[p->lo] & PS_WAIT) &&
		    now - p->try_at[p->lo % b->window] >
			    (int64_t)b->timeout_ms * 1000) {
			b->pub_timeouts++;
			LOG_W("no answer to a publish in time: reconnecting",
			      "publisher=%" PRIu32 " ref=%" PRIu64, i, p->lo);
			c->timed_out = 1;
			c->want_close = 1;
			lws_callback_on_writable(c->wsi);
		}
	}
}

int bench_pub_init(struct bench *b)
{
	uint32_t i;

	for (i = 0; i < b->npubs; i++) {
		struct bpub *p = &b->pubs[i];

		p->c = &b->conns[i];
		p->lo = 1;
		p->first_at = calloc(b->window, sizeof(int64_t));
		p->try_at = calloc(b->window, sizeof(int64_t));
		if (!p->first_at || !p->try_at || bench_pub_grow(p, 1) < 0)
			return -1;
	}
	return 0;
}

void bench_pub_free(struct bench *b)
{
	uint32_t i;

	if (!b->pubs)
		return;
	for (i = 0; i < b->npubs; i++) {
		free(b->pubs[i].first_at);
		free(b->pubs[i].try_at);
		free(b->pubs[i].st);
		free(b->pubs[i].seq);
	}
}
