/*
 * jsonl: bounded line splitter (see jsonl.h). Every program of the toolkit
 * reads JSON lines from a pipe; this is the one place that decides what a
 * line is, how long it may be and what happens to one that is too long.
 */
#include "jsonl.h"

#include <string.h>

void jsonl_init(struct jsonl *j, size_t max_line)
{
	memset(j, 0, sizeof(*j));
	/* Room for one whole line, its newline, and one read's worth. */
	buf_init(&j->in, 0);
	j->max_line = max_line;
}

void jsonl_free(struct jsonl *j)
{
	buf_release(&j->in);
}

static void jsonl_compact(struct jsonl *j)
{
	if (j->pos == 0)
		return;
	buf_consume(&j->in, j->pos);
	j->scan -= j->pos;
	j->pos = 0;
}

int jsonl_feed(struct jsonl *j, const void *data, size_t n)
{
	jsonl_compact(j);
	return buf_add(&j->in, data, n);
}

void jsonl_finish(struct jsonl *j)
{
	j->eof = true;
}

size_t jsonl_pending(const struct jsonl *j)
{
	return j->in.len - j->pos;
}

int jsonl_next(struct jsonl *j, const char **line, size_t *len)
{
	for (;;) {
		char *start = j->in.data + j->pos;
		char *end = j->in.data + j->in.len;
		char *nl = memchr(j->in.data + j->scan, '\n',
				  (size_t)(end - (j->in.data + j->scan)));
		size_t n;

		if (!nl) {
			n = (size_t)(end - start);
			if (j->skipping) {
				/* Still inside an overlong line: drop it all. */
				j->pos = j->scan = j->in.len;
				jsonl_compact(j);
				if (j->eof)
					j->skipping = false;
				return JSONL_NONE;
			}
			/* A line may end in "\r" whose "\n" is yet to come. */
			if (n > j->max_line &&
			    !(n == j->max_line + 1 && start[n - 1] == '\r')) {
				j->skipping = true;
				j->overlong++;
				j->pos = j->scan = j->in.len;
				jsonl_compact(j);
				return JSONL_OVERLONG;
			}
			if (j->eof && n > 0) {
				/* Last line without a newline. */
				j->pos = j->scan = j->in.len;
				nl = end;
			} else {
				j->scan = j->in.len;
				return JSONL_NONE;
			}
		} else {
			j->pos = j->scan = (size_t)(nl - j->in.data) + 1;
		}
		n = (size_t)(nl - start);
		if (j->skipping) {
			j->skipping = false;
			continue;
		}
		if (n > 0 && start[n - 1] == '\r')
			n--;
		if (n > j->max_line) {
			j->overlong++;
			return JSONL_OVERLONG;
		}
		if (n == 0)
			continue;
		start[n] = '\0';
		*line = start;
		*len = n;
		return JSONL_LINE;
	}
}
