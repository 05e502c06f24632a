/*
 * bus: chat-gw's side of the bus (full system): publishes go to stdout as
 * JSON lines for chat-relay; sequenced messages, events, confirms and query
 * answers come back on stdin. Both descriptors join the lws loop as raw
 * files, and stdin is paused (lws_rx_flow_control) while the stdout backlog
 * is full, so the relay feels the backpressure.
 */
#ifndef CHAT_GW_BUS_H
#define CHAT_GW_BUS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

/* Adopt stdin and stdout into vh under protocol (a file on either is
 * read or written without the loop). Returns 0 or -1. */
int bus_start(struct lws_context *ctx, struct lws_vhost *vh, const char *protocol);
/* Whether wsi is one of the bus descriptors. */
bool bus_owns(struct lws *wsi);
/* Raw file callbacks for the bus descriptors. */
int bus_callback(struct lws *wsi, enum lws_callback_reasons reason);
/* Whether the bus is gone (stdin EOF or write error): the gateway exits. */
bool bus_failed(void);
/* Queue one line (without newline) for stdout. Returns 0, or -1 when the
 * backlog is full or the bus is gone. */
int bus_send(const char *line, size_t n);
/* Free the bus buffers at exit. */
void bus_stop(void);
/* Provided by main.c: close every client with 1001 and exit with status
 * once they are gone. */
void gw_shutdown(int status);

#endif
