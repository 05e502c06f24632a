/*
 * metrics: counters, gauges and histograms rendered in the Prometheus text
 * format. A program declares its metrics once at start (static storage); the
 * hot path only increments a uint64_t. Single-threaded by design.
 * Memory: names, help and label strings are borrowed and must outlive the
 * registry (string literals in practice).
 */
#ifndef CHAT_METRICS_H
#define CHAT_METRICS_H

#include <stdint.h>

#include "buf.h"

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

#define METRIC_BUCKETS 16

struct metric {
	const char *name;       /* e.g. "chat_gw_frames_in_total" */
	const char *help;       /* one line for # HELP */
	const char *labels;     /* e.g. "code=\"bad_request\"", or NULL */
	enum metric_kind kind;  /* counter, gauge or histogram */
	uint64_t value;         /* counter or gauge value */
	const double *bounds;   /* histogram upper bounds, ascending */
	int nbounds;            /* how many bounds (<= METRIC_BUCKETS) */
	uint64_t buckets[METRIC_BUCKETS + 1]; /* per bucket, last is +Inf */
	double sum;             /* histogram sum of observations */
	uint64_t count;         /* histogram number of observations */
	struct metric *next;    /* registry list */
};

/* Add m (caller's storage) to the registry; returns m. Metrics with the same
 * name must be registered one after the other (HELP/TYPE printed once). */
struct metric *metric_register(struct metric *m);
/* Record one observation in a histogram. */
void metric_observe(struct metric *m, double v);
/* Append the whole registry in the Prometheus text format. Returns 0/-1. */
int metrics_render(struct buf *out);
/* Write the whole registry to path atomically (a temporary file in the same
 * directory, renamed over path), the node_exporter textfile-collector
 * convention, so a reader never sees half a file. Returns 0, or -1 with
 * errno set. */
int metrics_write_file(const char *path);
/* node="NODE",role="ROLE" put first on every sample metrics_write_file
 * writes (not on what metrics_render gives, say, an HTTP scrape: the
 * scraper labels its targets). The textfile collector merges the files of
 * several processes, and two samples alike in name and labels make it
 * fail. Either may be NULL; a value with a character outside
 * [A-Za-z0-9._:-] (or over 100 bytes) is left out. */
void metrics_file_labels(const char *node, const char *role);

#endif
