/* ws: chat-gw's libwebsockets protocol callback (ws.c) and HTTP (http.c). */
#ifndef CHAT_GW_WS_H
#define CHAT_GW_WS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

extern bool ws_stopping;

/* Point the hub's wake and kill hooks at libwebsockets. */
void ws_setup(void);
/* Start / stop the writer that runs before each wait of loop (a uv_loop_t).
 * ws_start returns 0 or -1. */
int ws_start(void *loop);
void ws_stop(void);
/* The protocol callback for "chat.v1" (and plain HTTP on the same port). */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len);
/* Queue a close with code on every connection. */
void ws_close_all(uint16_t code, const char *reason);
/* Answer an HTTP request for uri. Returns the lws callback result. */
int http_serve(struct lws *wsi, const char *uri);

#endif
