/*
 * stats: the relay's counters, two ways. A logfmt "stats" line (on SIGUSR1,
 * every --stats-interval at info level, and at exit) for whoever reads the
 * log, and the Prometheus text format written atomically to --metrics-file
 * (lib/metrics, the node_exporter textfile-collector convention) for
 * whoever scrapes: the relay has no HTTP port of its own. Every metric
 * carries node="ID", so that the files of several relays on one host can be
 * collected together.
 */
#include "relay.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "metrics.h"

void relay_stats_log(int lvl, const char *msg, const struct relay_stats *s,
		     const struct relay_gauges *g)
{
	if (!log_enabled(lvl))
		return;
	log_write(lvl, msg,
		  "lines_in=%" PRIu64 " lines_out=%" PRIu64 " published=%" PRIu64
		  " republished=%" PRIu64 " confirmed=%" PRIu64
		  " nacked=%" PRIu64 " returned=%" PRIu64 " bad_lines=%" PRIu64
		  " overlong=%" PRIu64 " acks=%" PRIu64 " stale_acks=%" PRIu64
		  " deliveries=%" PRIu64 " rejected=%" PRIu64
		  " reconnects=%" PRIu64 " nack_drops=%" PRIu64
		  " connect_failures=%" PRIu64
		  " window_full=%" PRIu64 " out_full=%" PRIu64
		  " broker_up=%d broker=%d inflight=%zu unacked=%zu out_bytes=%zu",
		  s->lines_in, s->lines_out, s->published, s->republished,
		  s->confirmed, s->nacked, s->returned, s->bad_lines,
		  s->overlong, s->acks, s->stale_acks, s->deliveries,
		  s->rejected, s->reconnects, s->nack_drops, s->connect_failures,
		  s->window_full, s->out_full, g->broker_up, g->broker,
		  g->inflight, g->unacked, g->out_bytes);
}

/* The registry: one entry per counter of struct relay_stats, then the
 * gauges. The label string is built once, from the node. */
static char metric_labels[96];

#define C(field, nm, hp)                                                \
	{ offsetof(struct relay_stats, field),                           \
	  { .name = "chat_relay_" nm "_total", .help = hp,               \
	    .labels = metric_labels, .kind = METRIC_COUNTER } }

static struct {
	size_t off;
	struct metric m;
} counters[] = {
	C(lines_in, "lines_in", "Input lines read, of every kind."),
	C(lines_out, "lines_out", "Lines queued for the output: deliveries, "
	  "confirms, nacks, bus states."),
	C(published, "published", "basic.publish calls, repeats included."),
	C(republished, "republished", "Publishes repeated after a reconnect."),
	C(confirmed, "confirmed", "Lines the broker confirmed."),
	C(nacked, "nacked", "Lines answered with a nack (broker nack or "
	  "return)."),
	C(returned, "returned", "Mandatory lines (ingest.*) no queue took."),
	C(bad_lines, "bad_lines", "Input lines refused: not JSON, no route, "
	  "bad envelope."),
	C(overlong, "overlong", "Input lines longer than --max-line."),
	C(acks, "acks", "ack and nack control lines applied."),
	C(stale_acks, "stale_acks", "Control lines for tags of a lost "
	  "connection."),
	C(deliveries, "deliveries", "Messages received from the broker."),
	C(rejected, "rejected", "Deliveries refused: too big, not one JSON "
	  "object."),
	C(reconnects, "reconnects", "Reconnections to a broker."),
	C(nack_drops, "nack_drops", "Connections given up after a run of "
	  "broker nacks."),
	C(connect_failures, "connect_failures", "Connection attempts that "
	  "failed, one per broker tried."),
	C(window_full, "window_full", "Times input paused on a full confirm "
	  "window."),
	C(out_full, "out_full", "Times input paused on a full output."),
};

#define G(nm, hp)                                                       \
	{ .name = "chat_relay_" nm, .help = hp, .labels = metric_labels, \
	  .kind = METRIC_GAUGE }

static struct metric g_up = G("broker_up", "1 while connected to a broker.");
static struct metric g_broker = G("broker_index", "Which of the broker URLs "
				  "is in use (from 0).");
static struct metric g_inflight = G("inflight", "Unconfirmed publishes held "
				    "(the confirm window in use).");
static struct metric g_inflight_max = G("inflight_max", "The confirm window "
					"(--max-inflight).");
static struct metric g_unacked = G("unacked", "Deliveries handed out and "
				   "not settled (--manual-ack).");
static struct metric g_out = G("out_bytes", "Bytes waiting to be written "
			       "out.");

void relay_metrics_init(const char *node)
{
	size_t i;

	snprintf(metric_labels, sizeof(metric_labels), "node=\"%s\"", node);
	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		metric_register(&counters[i].m);
	metric_register(&g_up);
	metric_register(&g_broker);
	metric_register(&g_inflight);
	metric_register(&g_inflight_max);
	metric_register(&g_unacked);
	metric_register(&g_out);
}

int relay_metrics_write(const char *path, const struct relay_stats *s,
			const struct relay_gauges *g)
{
	size_t i;

	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		counters[i].m.value =
			*(const uint64_t *)((const char *)s + counters[i].off);
	g_up.value = g->broker_up;
	g_broker.value = (uint64_t)g->broker;
	g_inflight.value = g->inflight;
	g_inflight_max.value = g->inflight_max;
	g_unacked.value = g->unacked;
	g_out.value = g->out_bytes;
	return metrics_write_file(path);
}
