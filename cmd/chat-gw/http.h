/* http: the plain HTTP endpoints on chat-gw's port (http.c). */
#ifndef CHAT_GW_HTTP_H
#define CHAT_GW_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>

/* Answer an HTTP request for uri (/, /healthz, /metrics); /healthz says
 * 503 while stopping. Returns the lws callback result. */
int http_serve(struct lws *wsi, const char *uri, bool stopping);

/* Responses written whole (an endpoint's, a refused upgrade's): the door
 * tells by it a connection lws closed once answered from one it could not
 * take. */
extern unsigned long http_answered;

#endif
