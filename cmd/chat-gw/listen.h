/*
 * listen: chat-gw's own listening socket. The gateway accepts connections
 * itself and hands each to libwebsockets, so that it can set SO_REUSEPORT
 * (several gateway processes on one port, one per core: libwebsockets 4.1
 * does not set it on Linux), pause accepting when the process is out of
 * descriptors (instead of spinning on a listener it cannot serve) and
 * resume when one is freed, and stop accepting at once on SIGTERM.
 * The WebSocket limit --max-conns is not enforced here but at the
 * handshake (HTTP 503), so /healthz and /metrics on the same port stay
 * reachable when the gateway is full.
 */
#ifndef CHAT_GW_LISTEN_H
#define CHAT_GW_LISTEN_H

#include <libwebsockets.h>
#include <stdbool.h>

/* Open host:port (port 0: any free one). Returns 0, or -1 with a logged
 * reason. */
int listen_open(const char *host, int port, bool reuseport);
/* The port actually bound. */
int listen_port(void);
/* Watch the socket in vh's loop under the internal protocol. */
int listen_start(struct lws_vhost *vh, const char *protocol);
/* Whether wsi is the listener. */
bool listen_owns(struct lws *wsi);
/* Readable listener: accept what is waiting. */
void listen_accept(void);
/* A connection closed: resume accepting if out of descriptors before. */
void listen_update(void);
/* Close the listener: no more connections. */
void listen_stop(void);

#endif
