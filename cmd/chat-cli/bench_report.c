/*
 * bench_report: the totals of a finished `chat-cli bench` run and its
 * report, as text or one JSON object (the members are listed in
 * chat-cli(1); new ones are added, none changes its meaning).
 *
 * Deliveries are counted per subscriber: expected is what was acked in its
 * room while it was a member (from its first join to its last close, the
 * time it spent reconnecting included: it must recover that), received the
 * distinct seqs it got, lost what its seq skipped plus the room's last
 * messages it never got (or its shortfall against expected, if larger).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"

struct bench_totals {
	uint64_t expected;        /* deliveries that should have happened */
	uint64_t received;        /* distinct deliveries */
	uint64_t dups;            /* duplicates */
	uint64_t lost;            /* missing: gaps and tail */
	uint64_t gaps;            /* of which seq jumps */
	uint64_t unacked;         /* refs written with neither ack nor refusal */
	uint64_t acked_missing;   /* acked refs no subscriber got */
	uint32_t failed;          /* connections that never opened */
	uint32_t dropped;         /* closed by the server, down at the end */
};

static void bench_totals(struct bench *b, struct bench_totals *t)
{
	uint32_t i;
	uint64_t n;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < b->nconns; i++) {
		struct bconn *c = &b->conns[i];
		uint64_t exp, uniq, miss;

		if (!c->opened)
			t->failed++;
		if (c->dropped)
			t->dropped++;
		if (!c->was_joined)
			continue;
		if (c->state == BC_JOINED)
			c->acked_end = b->rooms[c->room].acked;
		exp = c->acked_end - c->acked_base;
		uniq = c->received - c->dups;
		/* Missing: what seq skipped, plus the room's last messages it
		 * never saw; or the shortfall against the acks, if larger. */
		miss = c->gaps;
		if (!c->dropped && b->rooms[c->room].max_seq > c->last_seq)
			miss += b->rooms[c->room].max_seq - c->last_seq;
		if (exp > uniq && exp - uniq > miss)
			miss = exp - uniq;
		t->expected += exp;
		t->received += uniq;
		t->dups += c->dups;
		t->gaps += c->gaps;
		t->lost += miss;
	}
	for (i = 0; i < b->npubs; i++) {
		struct bpub *p = &b->pubs[i];

		t->unacked += p->sent - p->acked - p->errors;
		for (n = 1; n <= p->sent && n < p->cap; n++)
			if ((p->st[n] & PS_ACKED) && !p->seq[n])
				t->acked_missing++;
	}
}

static json_t *bench_counts_json(const struct bcount *t)
{
	json_t *e = json_object();
	int i;

	for (i = 0; i < BENCH_CODES && t[i].n; i++)
		json_object_set_new(e, t[i].name, json_integer((json_int_t)t[i].n));
	return e;
}

static void bench_report_json(struct bench *b, const struct bench_totals *t,
			      double secs, double run_s)
{
	json_t *o;
	char *s;

	o = json_pack("{s:I,s:I,s:I,s:f,s:f,s:f,s:I}",
		      "conns", (json_int_t)b->nconns,
		      "rooms", (json_int_t)b->nrooms,
		      "publishers", (json_int_t)b->npubs,
		      "rate", b->rate,
		      "duration_s", secs,
		      "warmup_s", (double)b->warmup_ms / 1000.0,
		      "size", (json_int_t)b->size);
	json_object_set_new(o, "connections", json_pack(
		"{s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"opened", (json_int_t)b->opened,
		"failed", (json_int_t)t->failed,
		"join_failed", (json_int_t)b->join_failed,
		"dropped", (json_int_t)t->dropped,
		"setup_s", (double)(b->t_ready - b->t_setup) / 1e6,
		"drain_s", b->t_drained > b->t_end ?
			   (double)(b->t_drained - b->t_end) / 1e6 : 0.0,
		"drops", (json_int_t)b->drops,
		"reconnects", (json_int_t)b->reconnects,
		"churned", (json_int_t)b->churned,
		"connect_errors", (json_int_t)b->connect_errors,
		"timeouts", (json_int_t)b->pub_timeouts,
		"join_retries", (json_int_t)b->join_retries,
		"resets", (json_int_t)b->resets));
	json_object_set_new(o, "messages", json_pack(
		"{s:I,s:I,s:I,s:I,s:f,s:I,s:I}",
		"planned", (json_int_t)b->planned,
		"published", (json_int_t)b->published,
		"acked", (json_int_t)b->acked,
		"refused", (json_int_t)b->pub_errors,
		"publish_rate", run_s > 0 ? (double)b->published / run_s : 0.0,
		"resent", (json_int_t)b->resent,
		"unacked", (json_int_t)t->unacked));
	json_object_set_new(o, "deliveries", json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I}",
		"expected", (json_int_t)t->expected,
		"received", (json_int_t)t->received,
		"lost", (json_int_t)t->lost,
		"gaps", (json_int_t)t->gaps,
		"duplicates", (json_int_t)t->dups,
		"per_s", secs > 0 ? (double)b->measured / secs : 0.0,
		"recovered", (json_int_t)b->recovered,
		"filled", (json_int_t)b->filled,
		"holes", (json_int_t)b->holes,
		"doubled", (json_int_t)b->doubled,
		"acked_missing", (json_int_t)t->acked_missing));
	json_object_set_new(o, "latency_us", json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I}",
		"min", (json_int_t)(b->lat.count ? b->lat.min : 0),
		"p50", (json_int_t)hist_quantile(&b->lat, 0.50),
		"p90", (json_int_t)hist_quantile(&b->lat, 0.90),
		"p99", (json_int_t)hist_quantile(&b->lat, 0.99),
		"p999", (json_int_t)hist_quantile(&b->lat, 0.999),
		"max", (json_int_t)b->lat.max,
		"mean", b->lat.count ? b->lat.sum / (double)b->lat.count : 0.0,
		"count", (json_int_t)b->lat.count));
	json_object_set_new(o, "ack_latency_us", json_pack(
		"{s:I,s:I,s:I,s:I,s:I}",
		"p50", (json_int_t)hist_quantile(&b->ack_lat, 0.50),
		"p90", (json_int_t)hist_quantile(&b->ack_lat, 0.90),
		"p99", (json_int_t)hist_quantile(&b->ack_lat, 0.99),
		"max", (json_int_t)b->ack_lat.max,
		"count", (json_int_t)b->ack_lat.count));
	json_object_set_new(o, "resume_us", json_pack(
		"{s:I,s:I,s:I,s:I}",
		"p50", (json_int_t)hist_quantile(&b->resume, 0.50),
		"p99", (json_int_t)hist_quantile(&b->resume, 0.99),
		"max", (json_int_t)b->resume.max,
		"count", (json_int_t)b->resume.count));
	json_object_set_new(o, "errors", bench_counts_json(b->errors));
	json_object_set_new(o, "closes", bench_counts_json(b->closes));
	json_object_set_new(o, "frames_other",
			    json_integer((json_int_t)b->frames_other));
	json_object_set_new(o, "frames_bad",
			    json_integer((json_int_t)b->frames_bad));
	s = json_dumps(o, JSON_COMPACT);
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

void bench_report(struct bench *b)
{
	struct bench_totals t;
	double secs = (double)b->duration_ms / 1000.0;
	double run_s;
	int i;

	bench_totals(b, &t);
	if (b->t_end > b->t_measure && b->t_end != INT64_MAX)
		secs = (double)(b->t_end - b->t_measure) / 1e6;
	run_s = b->t_end > b->t_start ? (double)(b->t_end - b->t_start) / 1e6 : 0;
	if (b->json) {
		bench_report_json(b, &t, secs, run_s);
		return;
	}
	printf("connections  %" PRIu32 " opened, %" PRIu32 " failed, %" PRIu32
	       " join refused, %" PRIu32 " dropped (setup %.2f s)\n",
	       b->opened, t.failed, b->join_failed, t.dropped,
	       (double)(b->t_ready - b->t_setup) / 1e6);
	printf("resume       %" PRIu64 " drops, %" PRIu64 " reconnects, %" PRIu64
	       " churned, %" PRIu64 " recovered, %" PRIu64 " filled from history,"
	       " %" PRIu64 " resent, %" PRIu64 " unacked (back in p50 %.1f ms,"
	       " max %.1f ms)\n", b->drops, b->reconnects, b->churned,
	       b->recovered, b->filled, b->resent, t.unacked,
	       hist_quantile(&b->resume, 0.50) / 1e3, b->resume.max / 1e3);
	printf("messages     %" PRIu64 " published of %" PRIu64 " planned"
	       " (%.0f/s), %" PRIu64 " acked, %" PRIu64 " refused\n",
	       b->published, b->planned,
	       run_s > 0 ? (double)b->published / run_s : 0.0, b->acked,
	       b->pub_errors);
	printf("deliveries   %" PRIu64 " expected, %" PRIu64 " received, %" PRIu64
	       " lost, %" PRIu64 " duplicates\n", t.expected, t.received,
	       t.lost, t.dups);
	if (t.acked_missing || b->doubled)
		printf("checks       %" PRIu64 " acked but never delivered, %" PRIu64
		       " delivered under two seqs\n", t.acked_missing, b->doubled);
	printf("throughput   %.0f deliveries/s over %.2f s\n",
	       secs > 0 ? (double)b->measured / secs : 0.0, secs);
	printf("latency      p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms,"
	       " max %.3f ms (%" PRIu64 " samples)\n",
	       hist_quantile(&b->lat, 0.50) / 1e3,
	       hist_quantile(&b->lat, 0.90) / 1e3,
	       hist_quantile(&b->lat, 0.99) / 1e3,
	       hist_quantile(&b->lat, 0.999) / 1e3, b->lat.max / 1e3,
	       b->lat.count);
	printf("ack latency  p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
	       hist_quantile(&b->ack_lat, 0.50) / 1e3,
	       hist_quantile(&b->ack_lat, 0.99) / 1e3, b->ack_lat.max / 1e3);
	for (i = 0; i < BENCH_CODES && b->errors[i].n; i++)
		printf("errors       %s: %" PRIu64 "\n", b->errors[i].name,
		       b->errors[i].n);
	for (i = 0; i < BENCH_CODES && b->closes[i].n; i++)
		printf("closes       %s: %" PRIu64 "\n", b->closes[i].name,
		       b->closes[i].n);
}
