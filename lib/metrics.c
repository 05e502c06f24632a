/*
 * metrics: Prometheus text exposition of a static registry (see metrics.h).
 */
#include "metrics.h"

#include <stdio.h>
#include <string.h>

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

static int metric_labels(struct buf *out, const char *labels, const char *extra)
{
	if (!labels && !extra)
		return 0;
	return buf_addf(out, "{%s%s%s}", labels ? labels : "",
			labels && extra ? "," : "", extra ? extra : "");
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
