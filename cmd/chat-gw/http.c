/*
 * http: the plain HTTP endpoints chat-gw serves on its WebSocket port:
 * GET / (the browser client), /healthz (liveness for load balancers and
 * supervisors) and /metrics (Prometheus text format).
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gw.h"
#include "http.h"
#include "page.h"

static int http_reply(struct lws *wsi, unsigned status, const char *type,
		      const char *body, size_t n)
{
	unsigned char hdr[LWS_PRE + 1024], *p = hdr + LWS_PRE;
	unsigned char *out;
	int r;

	if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)n, &p,
					hdr + sizeof(hdr)) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (unsigned char *)"no-store", 8, &p,
					 hdr + sizeof(hdr)) ||
	    lws_finalize_write_http_header(wsi, hdr + LWS_PRE, &p, hdr + sizeof(hdr)))
		return 1;
	out = malloc(LWS_PRE + n + 1);
	if (!out)
		return 1;
	memcpy(out + LWS_PRE, body, n);
	r = lws_write(wsi, out + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
	free(out);
	http_answered++;
	if (r < (int)n)
		return 1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int http_serve(struct lws *wsi, const char *uri, bool stopping)
{
	if (!strcmp(uri, "/healthz")) {
		if (stopping)
			return http_reply(wsi, 503, "text/plain", "stopping\n", 9);
		return http_reply(wsi, 200, "text/plain", "ok\n", 3);
	}
	if (!strcmp(uri, "/metrics")) {
		struct buf b = BUF_INIT(0);
		int r;

		if (metrics_render(&b) < 0) {
			buf_release(&b);
			return http_reply(wsi, 500, "text/plain", "out of memory\n", 14);
		}
		r = http_reply(wsi, 200, "text/plain; version=0.0.4", b.data, b.len);
		buf_release(&b);
		return r;
	}
	if (!strcmp(uri, "/") || !strcmp(uri, "/index.html"))
		return http_reply(wsi, 200, "text/html; charset=utf-8", page_html,
				  strlen(page_html));
	return http_reply(wsi, 404, "text/plain", "not found\n", 10);
}
