/*
 * log: logfmt lines on stderr (see log.h). Each line is built in memory and
 * written with one write(2), so lines from several processes sharing a
 * stderr pipe do not interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_WARN;
static const char *log_prog = "chat";

void log_init(const char *prog, int level)
{
	log_prog = prog;
	log_level = level;
}

const char *log_q(const char *s)
{
	static char ring[4][512];
	static int next;
	char *out = ring[next++ & 3];
	size_t o = 0;

	if (!s)
		s = "";
	out[o++] = '"';
	for (; *s && o < sizeof(ring[0]) - 8; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, 6, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (*s) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

void log_write(int lvl, const char *msg, const char *kvfmt, ...)
{
	static const char *names[] = { "fatal", "warn", "info", "debug" };
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03dZ lvl=%s prog=%s msg=%s",
		     (int)(tv.tv_usec / 1000), names[lvl < 0 ? 0 : lvl > 3 ? 3 : lvl],
		     log_prog, log_q(msg));
	if (r > 0)
		n += (size_t)r;
	if (kvfmt && *kvfmt && n < sizeof(line) - 2) {
		va_list ap;

		line[n++] = ' ';
		va_start(ap, kvfmt);
		r = vsnprintf(line + n, sizeof(line) - n, kvfmt, ap);
		va_end(ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
