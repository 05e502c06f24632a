/* ws: chat-gw's libwebsockets protocol "chat.v1" (ws.c). */
#ifndef CHAT_GW_WS_H
#define CHAT_GW_WS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

/* Set when the gateway stops: new connections are refused with 503. */
extern bool ws_stopping;

/* Point conn.h's wake and kill hooks at libwebsockets. */
void ws_setup(void);
/* Start / stop the writer that runs before each wait of loop (a uv_loop_t).
 * ws_start returns 0 or -1. */
int ws_start(void *loop);
void ws_stop(void);
#define WS_SWEEP_MS 100     /* how often ws_sweep runs */

/* Every WS_SWEEP_MS: ping the silent, drop the dead (a share of the
 * connections each time). */
void ws_sweep(void);
/* The protocol callback for "chat.v1" (and plain HTTP on the same port). */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len);

#endif
