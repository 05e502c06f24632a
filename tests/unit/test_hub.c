/*
 * test_hub: chat-gw's protocol core without sockets or pipes, as hub.h
 * promises: connections are plain structs, the transport's hooks and the
 * relay's pipe are stubs that record what they are asked. Standalone
 * (local.c) and bus mode (upstream.c, catchup.c, query.c) run the same
 * requests.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../../cmd/chat-gw/conn.h"
#include "../../cmd/chat-gw/gw.h"
#include "../../cmd/chat-gw/hub.h"
#include "../../cmd/chat-gw/local.h"
#include "../../cmd/chat-gw/upstream.h"
#include "buf.h"
#include "clock.h"
#include "testhelp.h"

/* An allocation that fails on demand, to see what the hub does then (not
 * under AddressSanitizer, which owns malloc). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_MALLOC_HOOK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NO_MALLOC_HOOK 1
#endif
#ifndef NO_MALLOC_HOOK
extern void *__libc_malloc(size_t n);
static int malloc_fail; /* the next malloc returns NULL */

void *malloc(size_t n)
{
	if (malloc_fail) {
		malloc_fail = 0;
		return NULL;
	}
	return __libc_malloc(n);
}
#endif

/* The transport's hooks. */
static int wakes, kills;
static struct conn *killed;

static void stub_wake(struct conn *c) { (void)c; wakes++; }
static void stub_kill(struct conn *c) { kills++; killed = c; }

/* The relay's pipe: every line the hub writes, newline separated. */
static struct buf bus_out = BUF_INIT(0);
static bool bus_refuse;

static int stub_bus_write(const char *line, size_t n)
{
	if (bus_refuse)
		return -1;
	buf_add(&bus_out, line, n);
	buf_adds(&bus_out, "\n");
	return 0;
}

static void defaults(void)
{
	memset(&gw_cfg, 0, sizeof(gw_cfg));
	snprintf(gw_cfg.node, sizeof(gw_cfg.node), "gwt");
	gw_cfg.max_frame = 64 * 1024;
	gw_cfg.max_body = 16 * 1024;
	gw_cfg.send_queue = 1024;
	gw_cfg.send_queue_bytes = 1 << 22;
	gw_cfg.request_rate = 1000;
	gw_cfg.request_burst = 1000;
	gw_cfg.max_pending_conn = 100;
	gw_cfg.rate = 1000;
	gw_cfg.burst = 1000;
	gw_cfg.history = 100;
	gw_cfg.max_rooms = 1000;
	gw_cfg.rooms_per_conn = 100;
	gw_cfg.dedupe = 8;
	gw_cfg.max_line = 1 << 20;
	gw_cfg.bus_timeout_ms = 10000;
	gw_cfg.max_pending = 1000;
	gw_cfg.presence_batch_ms = 100;
	gw_cfg.room_hold = 1000;
	gw_cfg.ingest_shards = 1;
}

static struct conn *open_conn(const char *user)
{
	struct conn *c = calloc(1, sizeof(*c));

	c->user = strdup(user);
	hub_conn_open(&hub, c);
	return c;
}

static void close_conn(struct conn *c)
{
	hub_conn_close(&hub, c);
	free(c);
}

static void say(struct conn *c, const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	hub_frame(&hub, c, text, (size_t)n);
}

/* Take every frame queued on c: their payloads, one per line. */
static char got[65536];

static const char *drain(struct conn *c)
{
	size_t n = 0;

	got[0] = '\0';
	while (c->qlen) {
		struct frame *f = c->q[c->qhead];
		size_t len = frame_payload_len(f);

		if (n + len + 2 < sizeof(got)) {
			memcpy(got + n, frame_payload(f), len);
			n += len;
			got[n++] = '\n';
			got[n] = '\0';
		}
		frame_unref(conn_pop(c));
	}
	return got;
}

static int count(const char *s, const char *sub)
{
	int n = 0;

	for (; (s = strstr(s, sub)); s++)
		n++;
	return n;
}

/* The value of "key":"..." in the last bus line with type, or "". */
static const char *bus_field(const char *type, const char *key)
{
	static char val[256];
	char pat[64];
	const char *line = NULL, *p;

	snprintf(pat, sizeof(pat), "{\"type\":\"%s\"", type);
	for (p = bus_out.data; (p = strstr(p, pat)); p++)
		line = p;
	val[0] = '\0';
	if (!line)
		return val;
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	if (p) {
		p += strlen(pat);
		snprintf(val, sizeof(val), "%.*s", (int)strcspn(p, "\""), p);
	}
	return val;
}

static void standalone(void)
{
	struct conn *a, *b, *s;
	struct room *r;
	struct frame *f;
	const char *t;
	int i;

	defaults();
	hub_init(&hub, "gwt", &local_ops, NULL);
	a = open_conn("alice");
	b = open_conn("bob");
	say(a, "{\"type\":\"join\",\"room\":\"r\",\"ref\":1}");
	say(b, "{\"type\":\"join\",\"room\":\"r\"}");
	TEST("joined with the ref", strstr(drain(a), "{\"type\":\"joined\",\"room\":\"r\",\"ref\":1,\"seq\":0}") != NULL);
	drain(b);

	/* fan-out: one frame, a reference per holder */
	say(a, "{\"type\":\"publish\",\"room\":\"r\",\"body\":{\"x\":1},\"ref\":\"m1\"}");
	r = room_get(&hub.rooms, "r", false);
	f = room_history_at(r, 1);
	TEST("the message is in the ring with seq 1", f && f->seq == 1);
	TEST("one frame shared: ring, alice's and bob's queues", f && f->refs == 3 &&
	     a->q[a->qhead] == f && b->q[b->qhead] == f);
	t = drain(a);
	TEST("the sender gets its message, then the ack",
	     strstr(t, "\"seq\":1,") && strstr(t, "{\"type\":\"ack\",\"ref\":\"m1\",\"id\":\"gwt-") &&
	     strstr(t, "\"type\":\"message\"") < strstr(t, "\"type\":\"ack\""));
	drain(b);
	TEST("after delivery only the ring holds it", f->refs == 1);
	TEST("one delivery per member", gw_m.deliveries.value == 2);

	/* dedupe: the same ref again is the first ack, not a second message */
	say(a, "{\"type\":\"publish\",\"room\":\"r\",\"body\":2,\"ref\":\"m1\"}");
	t = drain(a);
	TEST("a repeated ref gets the first ack and nothing else",
	     count(t, "\n") == 1 && strstr(t, "\"type\":\"ack\",\"ref\":\"m1\"") && r->seq == 1);
	TEST("and is counted", gw_m.dedupe_hits.value == 1);
	TEST("bob got nothing from it", !*drain(b));

	/* the refs grow with use to --dedupe, then the oldest goes */
	{
		struct conn *d = open_conn("dee");
		char key[16];
		int k, found = 0;

		gw_cfg.dedupe = 20;
		for (k = 0; k <= 20; k++) {
			snprintf(key, sizeof(key), "\"k%d\"", k);
			conn_ref_remember(d, key, "id", NULL);
			if (k == 0)
				TEST("a first publish takes 8 slots", d->refcap == 8);
		}
		for (k = 1; k <= 20; k++) {
			snprintf(key, sizeof(key), "\"k%d\"", k);
			found += conn_ref_find(d, key) != NULL;
		}
		TEST("grown to --dedupe, the 20 newest remembered, the oldest gone",
		     d->refcap == 20 && found == 20 && !conn_ref_find(d, "\"k0\""));
		gw_cfg.dedupe = 8;
		close_conn(d);
	}

	/* rate limit: a burst of 3 */
	gw_cfg.rate = 1;
	gw_cfg.burst = 3;
	s = open_conn("sam");
	say(s, "{\"type\":\"join\",\"room\":\"q\"}");
	for (i = 0; i < 4; i++)
		say(s, "{\"type\":\"publish\",\"room\":\"q\",\"body\":%d,\"ref\":%d}", i, i);
	t = drain(s);
	TEST("past the burst: rate_limited with the ref",
	     count(t, "\"type\":\"ack\"") == 3 &&
	     strstr(t, "{\"type\":\"error\",\"ref\":3,\"code\":\"rate_limited\""));
	gw_cfg.rate = gw_cfg.burst = 1000;

	/* a closing connection takes nothing, and it is not a delivery */
	conn_close(b, 1000, "bye");
	i = (int)gw_m.deliveries.value;
	say(a, "{\"type\":\"publish\",\"room\":\"r\",\"body\":3}");
	TEST("a closing member is not counted as a delivery",
	     (int)gw_m.deliveries.value == i + 1 && b->qlen == 0);
	drain(a);

	/* a slow consumer: --send-queue 8, the ninth frame cuts it */
	gw_cfg.send_queue = 8;
	kills = 0;
	for (i = 0; i < 8; i++)
		say(a, "{\"type\":\"publish\",\"room\":\"q\",\"body\":%d}", i);
	TEST("not a member of q: errors queue up to the limit", a->qlen == 8 && !a->close_code);
	say(a, "{\"type\":\"publish\",\"room\":\"q\",\"body\":9}");
	TEST("the frame past --send-queue closes 4008, the queue dropped",
	     a->close_code == 4008 && a->qlen == 0 && kills == 1 && killed == a &&
	     gw_m.slow.value == 1);
	gw_cfg.send_queue = 1024;

	/* presence: a join seen in a listing is not cancelled by a leave */
	drain(s);
	{
		struct conn *x = open_conn("xavier");

		hub_presence_flush(&hub);
		drain(s);
		say(x, "{\"type\":\"join\",\"room\":\"q\"}");
		say(s, "{\"type\":\"presence\",\"room\":\"q\"}");
		t = drain(s);
		TEST("the listing comes after the change it shows",
		     strstr(t, "\"joined\":[\"xavier\"]") &&
		     strstr(t, "\"joined\":[\"xavier\"]") < strstr(t, "\"users\":"));
		say(x, "{\"type\":\"leave\",\"room\":\"q\"}");
		hub_presence_flush(&hub);
		TEST("then the leave is told", strstr(drain(s), "\"left\":[\"xavier\"]") != NULL);
		close_conn(x);
	}
#ifndef NO_MALLOC_HOOK
	{
		struct conn *o = open_conn("oom");
		struct frame *fr = frame_new("{}", 2);

		kills = 0;
		malloc_fail = 1;
		TEST("a frame that cannot be queued (out of memory) cuts the connection 1011",
		     conn_push(o, fr) == CONN_CUT && o->close_code == 1011 && kills == 1 &&
		     gw_m.internal_closes.value == 1);
		frame_unref(fr);
		close_conn(o);
	}
#else
	printf("ok %d - out of memory: skipped under AddressSanitizer # SKIP\n", ++test_n);
#endif
	close_conn(a);
	close_conn(b);
	close_conn(s);
	hub_free(&hub);
}

/* A message line as the sequencer writes it (four rotating buffers, so
 * that one call may take several). */
static char *msg(int seq)
{
	static char lines[4][256];
	static int k;
	char *line = lines[k++ % 4];

	snprintf(line, 256, "{\"type\":\"message\",\"room\":\"r\",\"seq\":%d,"
		 "\"id\":\"x-%d\",\"from\":\"z\",\"ts\":1,\"body\":%d}", seq, seq, seq);
	return line;
}

static void bus_line(struct upstream *u, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	up_line(u, line, (size_t)n);
}

/* The seqs of the message frames in t, as "1 2 3 ". */
static const char *seqs(const char *t)
{
	static char out[512];
	size_t n = 0;

	out[0] = '\0';
	while ((t = strstr(t, "\"seq\":"))) {
		t += 6;
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%ld ", strtol(t, NULL, 10));
	}
	return out;
}

static void bus(void)
{
	struct upstream u;
	struct conn *a;
	char rpc[128];
	const char *t;

	defaults();
	hub_init(&hub, "gwt", &up_ops, &u);
	up_init(&u, &hub);
	hub.bus_write = stub_bus_write;
	a = open_conn("alice");
	say(a, "{\"type\":\"join\",\"room\":\"r\",\"since\":0,\"ref\":\"j\"}");
	snprintf(rpc, sizeof(rpc), "%s", bus_field("recover", "rpc"));
	TEST("a join with since asks the sequencer", *rpc && strstr(rpc, "gwt-") == rpc);
	TEST("nothing for the client until the answer", a->qlen == 0);
	/* live messages meanwhile are held for alice, out of order too */
	bus_line(&u, "%s", msg(3));
	bus_line(&u, "%s", msg(2));
	/* an answer for another room, with alice's rpc, is dropped */
	bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"secret\",\"seq\":9,"
		 "\"messages\":[]}", rpc);
	TEST("an answer for another room is dropped and counted",
	     a->qlen == 0 && gw_m.bus_stale.value == 1);
	bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"r\",\"seq\":1,"
		 "\"messages\":[%s]}", rpc, msg(1));
	t = drain(a);
	TEST("joined with the ref and the last seq the gateway saw",
	     strstr(t, "{\"type\":\"joined\",\"room\":\"r\",\"ref\":\"j\",\"seq\":3}") == t);
	TEST("the recovered message, flagged, then what was held, in seq order",
	     strstr(t, "{\"recovered\":true,\"type\":\"message\",\"room\":\"r\",\"seq\":1,") &&
	     !strcmp(seqs(t), "3 1 2 3 "));

	/* the room's own order: duplicates dropped, a gap recovered */
	bus_line(&u, "%s", msg(3));
	bus_line(&u, "%s", msg(4));
	bus_line(&u, "%s", msg(5));
	bus_line(&u, "%s", msg(5));
	t = drain(a);
	TEST("in order, duplicates dropped", !strcmp(seqs(t), "4 5 ") && gw_m.bus_dups.value == 2);
	bus_out.len = 0;
	bus_line(&u, "%s", msg(8));
	snprintf(rpc, sizeof(rpc), "%s", bus_field("recover", "rpc"));
	TEST("a gap asks for what is missing since the last seq",
	     *rpc && strstr(bus_out.data, "\"since\":5}"));
	bus_line(&u, "%s", msg(10));
	bus_line(&u, "%s", msg(9));
	bus_line(&u, "%s", msg(8));
	TEST("held meanwhile", a->qlen == 0);
	bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"r\",\"seq\":8,"
		 "\"messages\":[%s,", rpc, msg(6));
	TEST("a malformed answer is dropped, the room still waits", a->qlen == 0 &&
	     gw_m.bus_bad.value == 1);
	bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"r\",\"seq\":8,"
		 "\"messages\":[%s,%s]}", rpc, msg(6), msg(7));
	t = drain(a);
	TEST("released in seq order, each once", !strcmp(seqs(t), "6 7 8 9 10 "));

	/* found by the fault tests: a rejoin's answer overtakes, on the bus,
	 * the live copies of the messages it counts; the members that never
	 * left still get those, the rejoined one not twice */
	{
		struct conn *b = open_conn("bob");
		uint64_t dups = gw_m.bus_dups.value;

		say(b, "{\"type\":\"join\",\"room\":\"r\",\"since\":8}");
		snprintf(rpc, sizeof(rpc), "%s", bus_field("recover", "rpc"));
		bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"r\",\"seq\":12,"
			 "\"messages\":[%s,%s,%s,%s]}", rpc, msg(9), msg(10), msg(11), msg(12));
		t = drain(b);
		TEST("the rejoined member: its answer, up to the answer's seq",
		     !strcmp(seqs(t), "12 9 10 11 12 "));
		TEST("the others are not given what the answer counted", a->qlen == 0);
		bus_line(&u, "%s", msg(11));
		bus_line(&u, "%s", msg(12));
		TEST("their live copies reach the others", !strcmp(seqs(drain(a)), "11 12 "));
		TEST("and not the rejoined member again", b->qlen == 0 &&
		     gw_m.bus_dups.value == dups);
		bus_line(&u, "%s", msg(12));
		bus_line(&u, "%s", msg(13));
		TEST("a repeat nobody lacks is a duplicate; then both go on",
		     gw_m.bus_dups.value == dups + 1 && !strcmp(seqs(drain(a)), "13 ") &&
		     !strcmp(seqs(drain(b)), "13 "));
		close_conn(b);
	}

	/* found by the cluster test: a catch-up whose query gets no answer
	 * (the broker nacked it during a leader election) asks again, three
	 * queries in all, before it gives up and delivers with a gap */
	bus_out.len = 0;
	bus_line(&u, "%s", msg(15));
	TEST("a gap: one recover query", count(bus_out.data, "{\"type\":\"recover\"") == 1 &&
	     strstr(bus_out.data, "\"since\":13}"));
	gw_cfg.bus_timeout_ms = 0;
	hub.ops->tick(&hub, clock_mono_us());
	TEST("unanswered: asked again, still holding",
	     count(bus_out.data, "{\"type\":\"recover\"") == 2 && a->qlen == 0 &&
	     gw_m.room_recovery_failures.value == 0);
	snprintf(rpc, sizeof(rpc), "%s", bus_field("recover", "rpc"));
	bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"r\",\"seq\":15,"
		 "\"messages\":[%s,%s]}", rpc, msg(14), msg(15));
	TEST("the second answer: in order, nothing lost", !strcmp(seqs(drain(a)), "14 15 "));
	bus_out.len = 0;
	bus_line(&u, "%s", msg(17));
	hub.ops->tick(&hub, clock_mono_us());
	snprintf(rpc, sizeof(rpc), "%s", bus_field("recover", "rpc"));
	bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"r\","
		 "\"error\":\"archive database unavailable\"}", rpc);
	TEST("an error answer is asked again too", count(bus_out.data, "{\"type\":\"recover\"") == 3 &&
	     a->qlen == 0);
	hub.ops->tick(&hub, clock_mono_us());
	TEST("three queries in all; then what was held goes out with the gap",
	     count(bus_out.data, "{\"type\":\"recover\"") == 3 &&
	     !strcmp(seqs(drain(a)), "17 ") && gw_m.room_recovery_failures.value == 1);
	gw_cfg.bus_timeout_ms = 10000;
	buf_reset(&bus_out);
	bus_line(&u, "%s", msg(18));
	TEST("the next message goes on from there", !strcmp(seqs(drain(a)), "18 ") &&
	     !strstr(bus_out.data, "recover"));

	/* found by fuzz_upstream: a message inside an answer that carries a
	 * bus member reaches the client without it */
	{
		struct conn *d = open_conn("dora");

		say(d, "{\"type\":\"join\",\"room\":\"r\",\"since\":9}");
		snprintf(rpc, sizeof(rpc), "%s", bus_field("recover", "rpc"));
		bus_line(&u, "{\"type\":\"recovered\",\"rpc\":\"%s\",\"room\":\"r\",\"seq\":10,"
			 "\"messages\":[{\"type\":\"message\",\"room\":\"r\",\"seq\":10,"
			 "\"conn\":3,\"route\":\"x\",\"body\":1}]}", rpc);
		t = drain(d);
		TEST("recovered messages lose their bus members",
		     strstr(t, "{\"recovered\":true,\"type\":\"message\",\"room\":\"r\",\"seq\":10,\"body\":1}") &&
		     !strstr(t, "conn") && !strstr(t, "route"));
		say(d, "{\"type\":\"history\",\"room\":\"r\"}");
		snprintf(rpc, sizeof(rpc), "%s", bus_field("history", "rpc"));
		bus_line(&u, "{\"type\":\"history\",\"rpc\":\"%s\",\"room\":\"r\",\"more\":false,"
			 "\"messages\":[%s,{\"seq\":2,\"tag\":5}]}", rpc, msg(1));
		t = drain(d);
		TEST("history messages lose theirs too, the others kept as they came",
		     strstr(t, msg(1)) && strstr(t, "{\"seq\":2}]") && !strstr(t, "tag"));
		close_conn(d);
	}

	/* a publish: acked on the confirm, with its ref */
	bus_out.len = 0;
	say(a, "{\"type\":\"publish\",\"room\":\"r\",\"body\":\"hi\",\"ref\":\"p\"}");
	snprintf(rpc, sizeof(rpc), "%s", bus_field("publish", "confirm"));
	TEST("a publish is an ingest line", *rpc && strstr(bus_out.data, "\"route\":\"ingest.0\""));
	TEST("no ack before the confirm", a->qlen == 0);
	bus_line(&u, "{\"type\":\"confirm\",\"confirm\":\"%s\"}", rpc);
	TEST("the ack on the confirm", strstr(drain(a), "{\"type\":\"ack\",\"ref\":\"p\",\"id\":\"") != NULL);
	/* a full bus: unavailable with the ref, nothing waits */
	bus_refuse = true;
	say(a, "{\"type\":\"publish\",\"room\":\"r\",\"body\":\"no\",\"ref\":\"q\"}");
	TEST("a full bus: unavailable with the ref",
	     strstr(drain(a), "\"ref\":\"q\",\"code\":\"unavailable\"") != NULL &&
	     u.qs.waiting.n == 0);
	bus_refuse = false;
	close_conn(a);
	up_free(&u);
	hub_free(&hub);
	buf_release(&bus_out);
}

int main(void)
{
	conn_hooks.wake = stub_wake;
	conn_hooks.kill = stub_kill;
	gw_metrics_init();
	standalone();
	bus();
	return TEST_DONE();
}
