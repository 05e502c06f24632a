/*
 * metrics: Prometheus text exposition of a static registry (see metrics.h).
 */
#include "metrics.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct metric *metric_head, *metric_tail;

struct metric *metric_register(struct metric *m)
{
	m->next = NULL;
	if (metric_tail)
		metric_tail->next = m;
	else
		metric_head = m;
	metric_tail = m;
	return m;
}

void metric_observe(struct metric *m, double v)
{
	int i;

	for (i = 0; i < m->nbounds; i++)
		if (v <= m->bounds[i])
			break;
	m->buckets[i]++;
	m->sum += v;
	m->count++;
}

/* Labels of every sample of the file (metrics_file_labels), or NULL while
 * rendering for HTTP. */
static const char *metric_common;
static char metric_file_labels[256];

static int metric_labels(struct buf *out, const char *labels, const char *extra)
{
	const char *part[3] = { metric_common, labels, extra };
	int i, r = 0, n = 0;

	for (i = 0; i < 3; i++) {
		if (!part[i] || !*part[i])
			continue;
		r |= buf_adds(out, n++ ? "," : "{");
		r |= buf_adds(out, part[i]);
	}
	if (n)
		r |= buf_adds(out, "}");
	return r;
}

/* A label value we write without escaping: a node name's characters. */
static bool label_value_ok(const char *v)
{
	if (!*v || strlen(v) > 100)
		return false;
	for (; *v; v++)
		if (!isalnum((unsigned char)*v) && !strchr("._:-", *v))
			return false;
	return true;
}

void metrics_file_labels(const char *node, const char *role)
{
	bool n = node && label_value_ok(node), r = role && label_value_ok(role);

	snprintf(metric_file_labels, sizeof(metric_file_labels),
		 "%s%s%s%s%s%s%s", n ? "node=\"" : "", n ? node : "", n ? "\"" : "",
		 n && r ? "," : "", r ? "role=\"" : "", r ? role : "", r ? "\"" : "");
}

int metrics_render(struct buf *out)
{
	static const char *kinds[] = { "counter", "gauge", "histogram" };
	const char *last = NULL;
	struct metric *m;
	int r = 0;

	for (m = metric_head; m; m = m->next) {
		if (!last || strcmp(last, m->name))
			r |= buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name,
				      m->help, m->name, kinds[m->kind]);
		last = m->name;
		if (m->kind != METRIC_HISTOGRAM) {
			r |= buf_adds(out, m->name);
			r |= metric_labels(out, m->labels, NULL);
			r |= buf_addf(out, " %llu\n", (unsigned long long)m->value);
			continue;
		}
		{
			uint64_t cum = 0;
			char le[48];
			int i;

			for (i = 0; i <= m->nbounds; i++) {
				cum += m->buckets[i];
				if (i < m->nbounds)
					snprintf(le, sizeof(le), "le=\"%g\"", m->bounds[i]);
				else
					snprintf(le, sizeof(le), "le=\"+Inf\"");
				r |= buf_addf(out, "%s_bucket", m->name);
				r |= metric_labels(out, m->labels, le);
				r |= buf_addf(out, " %llu\n", (unsigned long long)cum);
			}
			r |= buf_addf(out, "%s_sum", m->name);
			r |= metric_labels(out, m->labels, NULL);
			r |= buf_addf(out, " %g\n%s_count", m->sum, m->name);
			r |= metric_labels(out, m->labels, NULL);
			r |= buf_addf(out, " %llu\n", (unsigned long long)m->count);
		}
	}
	return r ? -1 : 0;
}

int metrics_write_file(const char *path)
{
	struct buf b = BUF_INIT(0), tmp = BUF_INIT(0);
	int fd = -1, saved;
	size_t off = 0;

	metric_common = metric_file_labels;
	if (metrics_render(&b) < 0) {
		metric_common = NULL;
		goto fail;
	}
	metric_common = NULL;
	if (buf_addf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		goto fail;
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	while (off < b.len) {
		ssize_t n = write(fd, b.data + off, b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail_unlink;
		off += (size_t)n;
	}
	if (close(fd) < 0) {
		fd = -1;
		goto fail_unlink;
	}
	fd = -1;
	if (rename(tmp.data, path) < 0)
		goto fail_unlink;
	buf_release(&b);
	buf_release(&tmp);
	return 0;
fail_unlink:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp.data);
	errno = saved;
fail:
	saved = errno;
	buf_release(&b);
	buf_release(&tmp);
	errno = saved ? saved : ENOMEM;
	return -1;
}
