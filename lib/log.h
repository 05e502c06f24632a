/*
 * log: one logfmt line per event on stderr, so a diagnostic can never be
 * mistaken for data on stdout:
 *   ts=2026-11-27T12:00:00.123Z lvl=warn prog=chat-gw msg="unable to ..." k=v
 * Levels: 0 fatal, 1 warn (default), 2 info, 3 debug. Callers test
 * log_enabled() (the LOG_* macros do) before formatting anything costly.
 */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

#include <stdbool.h>

enum { LOG_FATAL = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level;

/* Name the program for every line, and set the level. */
void log_init(const char *prog, int level);
static inline bool log_enabled(int lvl) { return lvl <= log_level; }
/* Write one line: msg is quoted; kvfmt (may be NULL) is a printf format for
 * further key=value pairs, which the caller quotes with log_q() as needed. */
void log_write(int lvl, const char *msg, const char *kvfmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Quote s for logfmt into one of a few rotating static buffers (so several
 * may appear in one log_write call). Long values are cut. */
const char *log_q(const char *s);

#define LOG_F(msg, ...) log_write(LOG_FATAL, msg, __VA_ARGS__)
#define LOG_W(msg, ...) do { if (log_enabled(LOG_WARN)) log_write(LOG_WARN, msg, __VA_ARGS__); } while (0)
#define LOG_I(msg, ...) do { if (log_enabled(LOG_INFO)) log_write(LOG_INFO, msg, __VA_ARGS__); } while (0)
#define LOG_D(msg, ...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, msg, __VA_ARGS__); } while (0)

#endif
