/*
 * stats: chat-archive's counters, as Prometheus metrics (lib/metrics) that
 * --metrics-file writes atomically every --stats-interval, and as one
 * logfmt line (at that interval with -v 2, on SIGUSR1, at exit). The hot
 * paths only increment am.NAME.value. store and serve register only the
 * metrics they move.
 */
#include "archive.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"

struct archive_metrics am;

static const double size_bounds[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500,
				      1000, 2000, 5000, 10000 };
static const double seconds_bounds[] = { 0.0002, 0.0005, 0.001, 0.002,
					 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
					 0.5, 1, 2, 5 };

#define COUNTER(f, n, h) \
	do { am.f.name = "chat_archive_" n; am.f.help = h; \
	     am.f.kind = METRIC_COUNTER; metric_register(&am.f); } while (0)
#define GAUGE(f, n, h) \
	do { am.f.name = "chat_archive_" n; am.f.help = h; \
	     am.f.kind = METRIC_GAUGE; metric_register(&am.f); } while (0)
#define HISTOGRAM(f, n, h, b) \
	do { am.f.name = "chat_archive_" n; am.f.help = h; \
	     am.f.kind = METRIC_HISTOGRAM; am.f.bounds = b; \
	     am.f.nbounds = (int)(sizeof(b) / sizeof(b[0])); \
	     metric_register(&am.f); } while (0)

void stats_register(enum archive_cmd cmd)
{
	COUNTER(lines_in, "lines_in_total", "Input lines read, of every kind.");
	COUNTER(bad_lines, "bad_lines_total",
		"Input lines refused (logged with their reason).");
	COUNTER(db_reconnects, "db_reconnects_total",
		"Reconnects to PostgreSQL after losing it.");
	COUNTER(db_errors, "db_errors_total",
		"Failed transactions, statements and connections.");
	if (cmd == CMD_STORE) {
		COUNTER(stored, "messages_stored_total",
			"Messages stored (new rows) and given a seq.");
		COUNTER(duplicates, "duplicates_total",
			"Lines whose id was stored already (redeliveries, "
			"retries): same seq, published again.");
		COUNTER(out_lines, "messages_out_total",
			"Message lines written after COMMIT.");
		COUNTER(batches, "batches_total", "Batch transactions committed.");
		HISTOGRAM(batch_size, "batch_lines", "Lines per batch transaction.",
			  size_bounds);
		HISTOGRAM(batch_seconds, "batch_seconds",
			  "Batch transaction latency, send to COMMIT.",
			  seconds_bounds);
		COUNTER(batch_retries, "batch_retries_total",
			"Batch transactions sent again after a transient "
			"failure or split after a refusal.");
		COUNTER(acks, "acks_total", "Deliveries acked.");
		COUNTER(nacks, "nacks_total",
			"Messages the broker refused: their delivery requeued.");
		COUNTER(refused, "refused_total",
			"Deliveries requeued because --max-pending lines were "
			"held.");
		COUNTER(unknown_confirms, "unknown_confirms_total",
			"Confirm or nack lines for nothing pending.");
		COUNTER(input_paused, "input_paused_total",
			"Times plain input waited for room.");
		GAUGE(pending, "pending_lines",
		      "Lines held: waiting, being stored, awaiting a confirm.");
	}
	if (cmd == CMD_SERVE) {
		COUNTER(queries, "queries_total", "Queries read.");
		COUNTER(answers_history, "answers_total",
			"Answers written, by type.");
		am.answers_history.labels = "type=\"history\"";
		COUNTER(answers_recovered, "answers_total",
			"Answers written, by type.");
		am.answers_recovered.labels = "type=\"recovered\"";
		COUNTER(answers_error, "answers_total",
			"Answers written, by type.");
		am.answers_error.labels = "type=\"error\"";
		COUNTER(answer_cuts, "answer_cuts_total",
			"Answers that left messages out to fit --max-line.");
	}
}

void stats_batch(size_t lines, double seconds)
{
	metric_observe(&am.batch_size, (double)lines);
	metric_observe(&am.batch_seconds, seconds);
}

void stats_report(const struct archive_opts *o, int lvl, const char *msg)
{
	if (o->metrics_file && metrics_write_file(o->metrics_file) < 0)
		LOG_W("unable to write the metrics file", "path=%s err=%s",
		      log_q(o->metrics_file), log_q(strerror(errno)));
	if (!log_enabled(lvl))
		return;
	if (o->cmd == CMD_SERVE) {
		log_write(lvl, msg,
			  "lines_in=%" PRIu64 " queries=%" PRIu64
			  " bad_lines=%" PRIu64 " history=%" PRIu64
			  " recovered=%" PRIu64 " errors=%" PRIu64
			  " cuts=%" PRIu64 " db_reconnects=%" PRIu64
			  " db_errors=%" PRIu64,
			  am.lines_in.value, am.queries.value,
			  am.bad_lines.value, am.answers_history.value,
			  am.answers_recovered.value, am.answers_error.value,
			  am.answer_cuts.value, am.db_reconnects.value,
			  am.db_errors.value);
		return;
	}
	log_write(lvl, msg,
		  "lines_in=%" PRIu64 " stored=%" PRIu64 " duplicates=%" PRIu64
		  " bad_lines=%" PRIu64 " batches=%" PRIu64
		  " batch_retries=%" PRIu64 " acks=%" PRIu64 " nacks=%" PRIu64
		  " refused=%" PRIu64 " input_paused=%" PRIu64
		  " pending=%" PRIu64 " db_reconnects=%" PRIu64
		  " db_errors=%" PRIu64,
		  am.lines_in.value, am.stored.value, am.duplicates.value,
		  am.bad_lines.value, am.batches.value, am.batch_retries.value,
		  am.acks.value, am.nacks.value, am.refused.value,
		  am.input_paused.value, am.pending.value,
		  am.db_reconnects.value, am.db_errors.value);
}
