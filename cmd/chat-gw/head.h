/*
 * head: the door of chat-gw. Every accepted connection's request head
 * (request line and headers, up to the blank line) is read here, in a
 * buffer of --max-header bytes, before libwebsockets sees the connection:
 * a head that is not complete within --handshake-timeout is answered 408
 * and closed, one that does not fit is answered 431, a method other than
 * GET (or HEAD) 405, and one address may have at most
 * --max-handshakes-per-ip heads in the door at once (429). Only a
 * complete head is handed to libwebsockets (with the bytes read), so a
 * slow or idle client never holds one of its header tables, and /healthz
 * and /metrics stay answerable whatever strangers send.
 * With TLS the head is encrypted: the connection goes to libwebsockets at
 * once, and the door keeps its deadline and its address's count until
 * libwebsockets has the request (head_done).
 * The door also counts the WebSocket connections of each address, for
 * --max-conns-per-ip.
 * Memory: the door owns each head until it is handed over or closed.
 */
#ifndef CHAT_GW_HEAD_H
#define CHAT_GW_HEAD_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <sys/socket.h>

#define HEAD_IP_MAX 48      /* an address as text, IPv6 included */

/* What a request head read so far (buf, len bytes, the bytes from from
 * on new since the last look) is. No I/O: tests/fuzz/fuzz_head.c. */
enum { HEAD_MORE = 0, HEAD_WHOLE = 1, HEAD_BAD_METHOD = 2, HEAD_BAD_TARGET = 3 };
int head_scan(const char *buf, size_t len, size_t from);
/* Set up the door on loop (a uv_loop_t), handing complete heads to vh.
 * Returns 0 or -1. */
int head_start(void *loop, struct lws_vhost *vh);
/* Close every head and stop (at exit). */
void head_stop(void);
/* A connection was accepted (fd, non-blocking, from addr): read its
 * head. The door owns fd from now on. */
void head_accept(int fd, const struct sockaddr *addr, socklen_t addrlen);
/* TLS: libwebsockets has the request of wsi (or wsi is gone): the door
 * stops timing it. Does nothing for other connections. */
void head_done(struct lws *wsi);
/* Heads in the door now. */
unsigned head_count(void);
/* A WebSocket connection from ip was established / closed. Returns false
 * (and counts nothing) when ip has --max-conns-per-ip already. */
bool head_ip_conn_open(const char *ip);
void head_ip_conn_close(const char *ip);

#endif
