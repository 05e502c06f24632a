/*
 * pipe: chat-gw's end of the pipes to chat-relay (bus mode): stdin and
 * stdout in the lws loop as raw files. stdout is a bounded backlog
 * (--bus-backlog) written as the pipe takes it: when it is full,
 * pipe_send() fails and the caller refuses the client's request
 * (unavailable), so a relay that stops reading (its broker is away) is felt
 * at the edge instead of growing memory here. stdin is read all the while:
 * confirms and messages still come in, and delivering them does not wait
 * for stdout. Complete stdin lines go to the line hook; the end of stdin,
 * or a failed write, to the lost hook (the relay is gone). Either
 * descriptor may be a file (a recorded bus stream, /dev/null).
 */
#ifndef CHAT_GW_PIPE_H
#define CHAT_GW_PIPE_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct pipe_hooks {
	/* One line from stdin (n bytes, NUL-terminated, valid during the
	 * call); the pipe counts an overlong one itself. */
	void (*line)(void *arg, const char *line, size_t n);
	/* The relay is gone (why: static text); called once. */
	void (*lost)(void *arg, const char *why);
	void *arg;
};

/* Adopt stdin and stdout into vh under protocol, lines of at most
 * max_line bytes in, at most backlog bytes queued out. Returns 0 or -1. */
int pipe_start(struct lws_context *ctx, struct lws_vhost *vh, const char *protocol,
	       const struct pipe_hooks *hooks, size_t max_line, size_t backlog);
/* Whether wsi is one of the pipe's descriptors. */
bool pipe_owns(struct lws *wsi);
/* Raw file callbacks for the pipe's descriptors. */
int pipe_callback(struct lws *wsi, enum lws_callback_reasons reason);
/* Queue one line (without newline) for stdout. Returns 0, or -1 when the
 * backlog is full or the relay is gone. */
int pipe_send(const char *line, size_t n);
/* Bytes queued for stdout. */
size_t pipe_backlog(void);
/* Free the pipe's buffers at exit. */
void pipe_stop(void);

#endif
