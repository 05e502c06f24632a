/*
 * fuzz_upstream: libFuzzer target for chat-gw's bus-line reader (up_line),
 * which reads every line chat-relay hands the gateway. A hub in bus mode
 * has two members in room r (one waiting for its join's answer) and a
 * publish and a query waiting; the input is split into lines and each is
 * read, after "$1", "$2", "$3" and "$P" in it are replaced by the keys
 * of what waits (alice's join, bob's, the history query, the publish), so
 * that the corpus reaches the answers. Checks: nothing crashes or leaks, and every frame a client is
 * given is valid JSON without a bus member (route, node, tag, confirm,
 * conn, expire, rpc).
 */
/* links: cmd/chat-gw/upstream.c cmd/chat-gw/catchup.c cmd/chat-gw/query.c cmd/chat-gw/presence.c cmd/chat-gw/hub.c cmd/chat-gw/room.c cmd/chat-gw/conn.c cmd/chat-gw/render.c cmd/chat-gw/frame.c cmd/chat-gw/request.c cmd/chat-gw/gw.c lib/buf.c lib/map.c lib/skim.c lib/name.c lib/id.c lib/jwt.c lib/jwt_keys.c lib/file.c lib/b64url.c lib/log.c lib/metrics.c lib/shard.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cmd/chat-gw/hub.h"
#include "../../cmd/chat-gw/upstream.h"
#include "buf.h"
#include "log.h"
#include "skim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char written[1 << 16];
static size_t nwritten;

static int stub_write(const char *line, size_t n)
{
	if (nwritten + n + 1 < sizeof(written)) {
		memcpy(written + nwritten, line, n);
		nwritten += n;
		written[nwritten++] = '\n';
	}
	return 0;
}

static void check_queue(struct conn *c)
{
	static const char *const bus[] = { "route", "node", "tag", "confirm",
					   "conn", "expire", "rpc" };
	struct skim_field f[7];
	int i;

	for (i = 0; i < 7; i++)
		f[i].name = bus[i];
	while (c->qlen) {
		struct frame *fr = c->q[c->qhead];
		const char *p = frame_payload(fr);
		size_t n = frame_payload_len(fr);

		if (!skim_valid(p, n) || skim_object(p, n, f, 7) < 0)
			__builtin_trap();
		for (i = 0; i < 7; i++)
			if (f[i].v)
				__builtin_trap();
		frame_unref(conn_pop(c));
	}
}

/* line (n bytes) with the $ tokens replaced, malloc'd, its length in *out. */
static char *expand(const uint8_t *p, size_t n, const char *prefix, size_t *out)
{
	struct buf b = BUF_INIT(0);
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '$' && i + 1 < n && strchr("123P", p[i + 1])) {
			if (p[i + 1] == 'P')
				buf_addf(&b, "%s1", prefix);
			else
				buf_addf(&b, "%sq%c", prefix, p[i + 1]);
			i++;
			continue;
		}
		buf_add(&b, p + i, 1);
	}
	return buf_detach(&b, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char join[] = "{\"type\":\"join\",\"room\":\"r\"}";
	static const char since[] = "{\"type\":\"join\",\"room\":\"r\",\"since\":2}";
	static const char pub[] = "{\"type\":\"publish\",\"room\":\"r\",\"body\":1,\"ref\":1}";
	static const char hist[] = "{\"type\":\"history\",\"room\":\"r\"}";
	struct upstream u;
	struct conn a, b;
	char *line;
	size_t start = 0, i, n;

	log_init("fuzz", -1);
	memset(&gw_cfg, 0, sizeof(gw_cfg));
	strcpy(gw_cfg.node, "gw1");
	gw_cfg.max_body = gw_cfg.max_frame = 65536;
	gw_cfg.send_queue = 64;
	gw_cfg.send_queue_bytes = 1 << 20;
	gw_cfg.request_rate = gw_cfg.request_burst = 100;
	gw_cfg.max_pending_conn = 8;
	gw_cfg.rate = gw_cfg.burst = 100;
	gw_cfg.max_rooms = 16;
	gw_cfg.rooms_per_conn = 4;
	gw_cfg.dedupe = 4;
	gw_cfg.bus_timeout_ms = 1000;
	gw_cfg.max_pending = 16;
	gw_cfg.room_hold = 8;
	gw_cfg.ingest_shards = 1;
	hub_init(&hub, "gw1", &up_ops, &u);
	up_init(&u, &hub);
	hub.bus_write = stub_write;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.user = strdup("alice");
	b.user = strdup("bob");
	hub_conn_open(&hub, &a);
	hub_conn_open(&hub, &b);
	/* the rpc keys are gw1-EPOCH-q1 (alice's join), -q2 (bob's), -q3
	 * (history); the publish's confirm is gw1-EPOCH-1 */
	hub_frame(&hub, &a, join, sizeof(join) - 1);
	hub_frame(&hub, &b, since, sizeof(since) - 1);
	hub_frame(&hub, &a, pub, sizeof(pub) - 1);
	hub_frame(&hub, &a, hist, sizeof(hist) - 1);
	for (i = 0; i <= size; i++) {
		if (i < size && data[i] != '\n')
			continue;
		line = expand(data + start, i - start, hub.ids.prefix, &n);
		if (line)
			up_line(&u, line, n);
		free(line);
		check_queue(&a);
		check_queue(&b);
		start = i + 1;
	}
	hub_presence_flush(&hub);
	hub_tick(&hub, 0);
	check_queue(&a);
	check_queue(&b);
	hub_conn_close(&hub, &a);
	hub_conn_close(&hub, &b);
	up_free(&u);
	hub_free(&hub);
	nwritten = 0;
	return 0;
}
