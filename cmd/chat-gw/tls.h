/*
 * tls: chat-gw speaking TLS itself (--tls-cert, --tls-key). Client
 * connections are adopted into a TLS virtual host of libwebsockets (with
 * OpenSSL); SIGHUP makes a new virtual host from the files as they are
 * then, new connections go there, and the old one stays for the
 * connections it has until the last one goes (no connection is dropped to
 * change a certificate). Without TLS the module hands out the plain
 * virtual host.
 * Memory: the module owns the TLS virtual hosts it made.
 */
#ifndef CHAT_GW_TLS_H
#define CHAT_GW_TLS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

/* Set up: plain is the vhost client connections use without TLS; with
 * --tls-cert the first TLS vhost is made on ctx with protocols. Returns 0,
 * or -1 with a reason in err. */
int tls_start(struct lws_context *ctx, struct lws_vhost *plain,
	      const struct lws_protocols *protocols, char *err, size_t errlen);
/* Whether client connections are TLS. */
bool tls_on(void);
/* The vhost a new client connection goes to. */
struct lws_vhost *tls_vhost(void);
/* Read the certificate and key again into a new vhost (SIGHUP). Returns
 * 0, or -1 with a reason in err (the vhost in use stays). */
int tls_reload(char *err, size_t errlen);
/* A connection was adopted into vh / is gone from it. */
void tls_conn_add(struct lws_vhost *vh);
void tls_conn_gone(struct lws_vhost *vh);
/* Every TLS vhost goes (at exit, before the context). */
void tls_stop(void);

#endif
