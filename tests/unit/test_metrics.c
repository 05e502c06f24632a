/*
 * test_metrics: the Prometheus text rendering: HELP/TYPE once per name,
 * labels, cumulative histogram buckets with inclusive upper bounds, and a
 * full output buffer reported as failure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"

#include "metrics.h"
#include "testhelp.h"

static const double lat_bounds[] = { 0.1, 1, 10 };

static struct metric frames = {
	.name = "chat_test_frames_total", .help = "Frames received.",
	.kind = METRIC_COUNTER,
};
static struct metric err_bad = {
	.name = "chat_test_errors_total", .help = "Errors sent, by code.",
	.labels = "code=\"bad_request\"", .kind = METRIC_COUNTER,
};
static struct metric err_big = {
	.name = "chat_test_errors_total", .help = "Errors sent, by code.",
	.labels = "code=\"too_large\"", .kind = METRIC_COUNTER,
};
static struct metric conns = {
	.name = "chat_test_connections", .help = "Open connections.",
	.kind = METRIC_GAUGE,
};
static struct metric lat = {
	.name = "chat_test_latency_seconds", .help = "Latency.",
	.labels = "path=\"/ws\"", .kind = METRIC_HISTOGRAM,
	.bounds = lat_bounds, .nbounds = 3,
};

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (; (hay = strstr(hay, needle)); hay++)
		n++;
	return n;
}

int main(void)
{
	struct buf out = BUF_INIT(0), small = BUF_INIT(64), empty = BUF_INIT(0);
	const char *t;

	TEST("empty registry renders nothing", metrics_render(&empty) == 0 && empty.len == 0);
	TEST("metric_register returns its argument", metric_register(&frames) == &frames);
	metric_register(&err_bad);
	metric_register(&err_big);
	metric_register(&conns);
	metric_register(&lat);

	frames.value = 17;
	err_bad.value += 2;
	err_big.value++;
	conns.value = 3;
	metric_observe(&lat, 0.05);
	metric_observe(&lat, 0.1); /* on a bound: counts in le="0.1" */
	metric_observe(&lat, 5);
	metric_observe(&lat, 100);
	TEST("observe fills buckets and count", lat.count == 4 && lat.buckets[0] == 2 &&
	     lat.buckets[1] == 0 && lat.buckets[2] == 1 && lat.buckets[3] == 1);

	TEST("render succeeds", metrics_render(&out) == 0);
	t = out.data;
	TEST("counter HELP and TYPE",
	     strstr(t, "# HELP chat_test_frames_total Frames received.\n"
		       "# TYPE chat_test_frames_total counter\n"
		       "chat_test_frames_total 17\n") != NULL);
	TEST("labeled counters share one HELP/TYPE",
	     count(t, "# HELP chat_test_errors_total") == 1 &&
	     count(t, "# TYPE chat_test_errors_total counter\n") == 1);
	TEST("labeled counter lines",
	     strstr(t, "\nchat_test_errors_total{code=\"bad_request\"} 2\n"
		       "chat_test_errors_total{code=\"too_large\"} 1\n") != NULL);
	TEST("gauge", strstr(t, "# TYPE chat_test_connections gauge\n"
				"chat_test_connections 3\n") != NULL);
	TEST("histogram buckets are cumulative with labels",
	     strstr(t, "# TYPE chat_test_latency_seconds histogram\n"
		       "chat_test_latency_seconds_bucket{path=\"/ws\",le=\"0.1\"} 2\n"
		       "chat_test_latency_seconds_bucket{path=\"/ws\",le=\"1\"} 2\n"
		       "chat_test_latency_seconds_bucket{path=\"/ws\",le=\"10\"} 3\n"
		       "chat_test_latency_seconds_bucket{path=\"/ws\",le=\"+Inf\"} 4\n") != NULL);
	TEST("histogram sum and count",
	     strstr(t, "chat_test_latency_seconds_sum{path=\"/ws\"} 105.15\n"
		       "chat_test_latency_seconds_count{path=\"/ws\"} 4\n") != NULL);
	TEST("every line ends with a newline", out.len && t[out.len - 1] == '\n' &&
	     !strstr(t, "\n\n"));
	TEST("a full buffer makes render fail", metrics_render(&small) == -1);
	{
		char dir[] = "/tmp/test_metrics.XXXXXX", path[64], *got;
		size_t n;

		TEST("a temporary directory", mkdtemp(dir) != NULL);
		snprintf(path, sizeof(path), "%s/chat.prom", dir);
		TEST("write the registry to a file", metrics_write_file(path) == 0);
		got = file_read_small(path, 1 << 20, &n); /* (less the last newline) */
		TEST("the file holds what render gives", got && n == out.len - 1 &&
		     !memcmp(got, out.data, n));
		free(got);
		TEST("no temporary file is left behind", rmdir(dir) < 0);
		metrics_file_labels("gw1", NULL);
		TEST("file labels: written first on every sample of the file",
		     metrics_write_file(path) == 0 &&
		     (got = file_read_small(path, 1 << 20, &n)) &&
		     strstr(got, "\nchat_test_errors_total{node=\"gw1\",code=\"bad_request\"} 2\n") &&
		     strstr(got, "{node=\"gw1\",path=\"/ws\",le=\"+Inf\"}") &&
		     strstr(got, "\nchat_test_frames_total{node=\"gw1\"} "));
		free(got);
		buf_reset(&out);
		TEST("and not on what render gives", metrics_render(&out) == 0 &&
		     !strstr(out.data, "gw1") && strstr(out.data, "chat_test_frames_total "));
		TEST("cleared with NULL", (metrics_file_labels(NULL, NULL), metrics_write_file(path) == 0) &&
		     (got = file_read_small(path, 1 << 20, &n)) && !strstr(got, "gw1"));
		free(got);
		metrics_file_labels("s-1", "store");
		TEST("node and role", metrics_write_file(path) == 0 &&
		     (got = file_read_small(path, 1 << 20, &n)) &&
		     strstr(got, "\nchat_test_frames_total{node=\"s-1\",role=\"store\"} "));
		free(got);
		metrics_file_labels("a\"b", "serve");
		TEST("a node that would need escaping is left out", metrics_write_file(path) == 0 &&
		     (got = file_read_small(path, 1 << 20, &n)) &&
		     strstr(got, "\nchat_test_frames_total{role=\"serve\"} "));
		free(got);
		metrics_file_labels(NULL, NULL);
		unlink(path);
		rmdir(dir);
		snprintf(path, sizeof(path), "/nonexistent-dir/chat.prom");
		TEST("an unwritable place fails with errno", metrics_write_file(path) < 0 &&
		     errno == ENOENT);
	}
	buf_release(&out);
	buf_release(&small);
	return TEST_DONE();
}
