/* Unit tests of chat-relay's pure modules: line classification, delivery
 * lines, the confirm window, URL masking, the command line. */
#include <stdlib.h>
#include <string.h>

#include "../../cmd/chat-relay/bus.h"
#include "../../cmd/chat-relay/relay.h"
#include "testhelp.h"

static struct relay_line L;

static enum relay_line_kind parse(const char *s, const char *def, bool control)
{
	free(L.confirm);
	relay_line_parse(s, strlen(s), def, control, &L);
	return L.kind;
}

static void test_lines(void)
{
	TEST("route from the line",
	     parse("{\"route\":\"msg.r1\",\"x\":1}", NULL, true) == RLINE_PUBLISH &&
	     !strcmp(L.route, "msg.r1") && !L.confirm);
	TEST("default route", parse("{\"x\":1}", "ingest", true) == RLINE_PUBLISH &&
	     !strcmp(L.route, "ingest"));
	TEST("line route wins over default",
	     parse("{\"route\":\"a\"}", "b", true) == RLINE_PUBLISH &&
	     !strcmp(L.route, "a"));
	TEST("no route, no default: bad", parse("{\"x\":1}", NULL, true) == RLINE_BAD &&
	     strstr(L.err, "route"));
	TEST("route not a string: bad", parse("{\"route\":5}", "d", true) == RLINE_BAD);
	TEST("confirm string kept as JSON",
	     parse("{\"route\":\"a\",\"confirm\":\"c-1\"}", NULL, true) == RLINE_PUBLISH &&
	     L.confirm && !strcmp(L.confirm, "\"c-1\""));
	TEST("confirm number kept",
	     parse("{\"route\":\"a\",\"confirm\":42}", NULL, true) == RLINE_PUBLISH &&
	     L.confirm && !strcmp(L.confirm, "42"));
	TEST("confirm object kept compact",
	     parse("{\"route\":\"a\",\"confirm\":{\"c\": 1}}", NULL, true) == RLINE_PUBLISH &&
	     L.confirm && !strcmp(L.confirm, "{\"c\":1}"));
	TEST("not JSON: bad", parse("hello", "a", true) == RLINE_BAD &&
	     strstr(L.err, "not valid JSON"));
	TEST("truncated JSON: bad", parse("{\"route\":\"a\"", "a", true) == RLINE_BAD);
	TEST("array: bad", parse("[1,2]", "a", true) == RLINE_BAD &&
	     strstr(L.err, "not a JSON object"));
	TEST("two objects on a line: bad", parse("{} {}", "a", true) == RLINE_BAD);
	TEST("ack line", parse("{\"type\":\"ack\",\"tag\":7}", NULL, true) == RLINE_ACK &&
	     L.tag == 7);
	TEST("nack line requeues by default",
	     parse("{\"type\":\"nack\",\"tag\":3}", NULL, true) == RLINE_NACK &&
	     L.tag == 3 && L.requeue);
	TEST("nack line without requeue",
	     parse("{\"type\":\"nack\",\"tag\":3,\"requeue\":false}", NULL, true) ==
	     RLINE_NACK && !L.requeue);
	TEST("ack with bad tag: bad",
	     parse("{\"type\":\"ack\",\"tag\":-1}", NULL, true) == RLINE_BAD);
	TEST("ack with string tag: bad",
	     parse("{\"type\":\"ack\",\"tag\":\"1\"}", NULL, true) == RLINE_BAD);
	TEST("ack without tag is data",
	     parse("{\"type\":\"ack\",\"route\":\"x\"}", NULL, true) == RLINE_PUBLISH);
	TEST("control lines off (pub): ack line is data",
	     parse("{\"type\":\"ack\",\"tag\":1,\"route\":\"x\"}", NULL, false) ==
	     RLINE_PUBLISH);
	{
		char big[400];

		memset(big, 'k', sizeof(big));
		memcpy(big, "{\"route\":\"", 10);
		strcpy(big + 300, "\"}");
		TEST("route over 255 bytes: bad", parse(big, NULL, true) == RLINE_BAD);
	}
	free(L.confirm);
	L.confirm = NULL;
}

static void test_delivery(void)
{
	struct buf b = BUF_INIT(0);
	const char *why = NULL;

	TEST("delivery as is", relay_line_delivery(&b, "{\"a\":1}", 7, 0, &why) == 0 &&
	     !strcmp(b.data, "{\"a\":1}\n"));
	buf_reset(&b);
	TEST("tag spliced", relay_line_delivery(&b, "{\"a\":1}", 7, 12, &why) == 0 &&
	     !strcmp(b.data, "{\"a\":1,\"tag\":12}\n"));
	buf_reset(&b);
	TEST("tag into empty object",
	     relay_line_delivery(&b, " { } ", 5, 1, &why) == 0 &&
	     !strcmp(b.data, "{ \"tag\":1}\n"));
	buf_reset(&b);
	TEST("trailing newline trimmed",
	     relay_line_delivery(&b, "{\"a\":1}\r\n", 9, 0, &why) == 0 &&
	     !strcmp(b.data, "{\"a\":1}\n"));
	buf_reset(&b);
	TEST("not an object refused",
	     relay_line_delivery(&b, "[1]", 3, 0, &why) < 0 && b.len == 0 && why);
	TEST("empty body refused", relay_line_delivery(&b, "", 0, 0, &why) < 0);
	TEST("inner newline refused",
	     relay_line_delivery(&b, "{\"a\":\n1}", 8, 0, &why) < 0 && b.len == 0);
	TEST("confirm line",
	     relay_line_confirm(&b, "\"x\"", true) == 0 &&
	     !strcmp(b.data, "{\"type\":\"confirm\",\"confirm\":\"x\"}\n"));
	buf_reset(&b);
	TEST("nack line",
	     relay_line_confirm(&b, "5", false) == 0 &&
	     !strcmp(b.data, "{\"type\":\"nack\",\"confirm\":5}\n"));
	buf_release(&b);
	b = (struct buf)BUF_INIT(8);
	TEST("full output refused, unchanged",
	     relay_line_delivery(&b, "{\"a\":123456}", 12, 0, &why) < 0 &&
	     b.len == 0);
	buf_release(&b);
}

static struct relay_msg *msg(int i)
{
	char body[32];

	snprintf(body, sizeof(body), "{\"n\":%d}", i);
	return relay_msg_new(body, strlen(body), "r", NULL);
}

static void test_window(void)
{
	struct relay_window w;
	struct relay_msg *m;
	int i, n;

	TEST("window init", relay_window_init(&w, 4) == 0);
	for (i = 0; i < 4; i++)
		relay_window_push(&w, msg(i));
	TEST("window full at cap", relay_window_full(&w));
	for (i = 0; i < 4; i++) {
		m = relay_window_unsent(&w);
		relay_window_mark_sent(&w, (uint64_t)(10 + i));
	}
	TEST("all sent", relay_window_unsent(&w) == NULL && w.sent == 4);
	TEST("nothing settled: no pop", relay_window_pop(&w) == NULL);
	TEST("out-of-order single ack settles one",
	     relay_window_settle(&w, 12, false, true) == 1);
	TEST("head not settled: still no pop", relay_window_pop(&w) == NULL);
	TEST("multiple ack settles the rest up to tag",
	     relay_window_settle(&w, 11, true, true) == 2);
	n = 0;
	while ((m = relay_window_pop(&w))) {
		n++;
		relay_msg_free(m);
	}
	TEST("three popped in order", n == 3 && w.count == 1 && w.first_seq == 13);
	TEST("stale tag ignored", relay_window_settle(&w, 5, true, true) == 0);
	TEST("unknown future tag ignored", relay_window_settle(&w, 99, false, true) == 0);
	relay_window_push(&w, msg(4));
	TEST("rewind: both to publish again", relay_window_rewind(&w) == 1 &&
	     relay_window_unsent(&w) != NULL);
	relay_window_mark_sent(&w, 1);
	relay_window_mark_sent(&w, 2);
	TEST("new channel seqs", w.first_seq == 1 &&
	     relay_window_settle(&w, 2, true, false) == 2);
	m = relay_window_pop(&w);
	TEST("nack recorded", m && m->nacked && !strcmp(m->data, "{\"n\":3}") &&
	     !strcmp(m->route, "r"));
	relay_msg_free(m);
	relay_window_free(&w);
}

static void test_mask(void)
{
	char out[256];

	bus_mask_url("amqp://guest:secret@host:5672/v", out, sizeof(out));
	TEST("password masked", !strcmp(out, "amqp://guest:***@host:5672/v"));
	bus_mask_url("amqp://user@host/", out, sizeof(out));
	TEST("no password: unchanged", !strcmp(out, "amqp://user@host/"));
	bus_mask_url("amqp://host:5672/", out, sizeof(out));
	TEST("no userinfo: unchanged", !strcmp(out, "amqp://host:5672/"));
	bus_mask_url("amqp://u:p@ss@host/", out, sizeof(out));
	TEST("@ in password masked", !strcmp(out, "amqp://u:***@host/"));
	bus_mask_url("amqp://h/x@y:z", out, sizeof(out));
	TEST("@ in path is not userinfo", !strcmp(out, "amqp://h/x@y:z"));
}

static int args(struct relay_opts *o, const char *line)
{
	static char store[1024];
	static char *argv[64];
	char err[256];
	int argc = 0;
	char *p;

	snprintf(store, sizeof(store), "%s", line);
	for (p = strtok(store, " "); p && argc < 63; p = strtok(NULL, " "))
		argv[argc++] = p;
	argv[argc] = NULL;
	return relay_args(argc, argv, o, err, sizeof(err));
}

static void test_args(void)
{
	struct relay_opts o;

	TEST("pub", args(&o, "chat-relay pub --route r") == ARGS_RUN &&
	     o.mode == RELAY_PUB && o.publish && !o.consume && !strcmp(o.route, "r"));
	TEST("options after and before the mode",
	     args(&o, "chat-relay --prefetch 9 sub --queue q --bind chat:msg.#") ==
	     ARGS_RUN && o.mode == RELAY_SUB && o.prefetch == 9 && o.nbinds == 1 &&
	     !strcmp(o.binds[0].exchange, "chat") && !strcmp(o.binds[0].key, "msg.#"));
	TEST("child mode",
	     args(&o, "chat-relay --manual-ack --queue q -- cat -u") == ARGS_RUN &&
	     o.mode == RELAY_CHILD && o.consume && !strcmp(o.child_argv[0], "cat") &&
	     !strcmp(o.child_argv[1], "-u") && !o.child_argv[2]);
	TEST("child options are not ours",
	     args(&o, "chat-relay -- prog --queue x") == ARGS_RUN && !o.queue &&
	     !o.consume);
	TEST("no mode", args(&o, "chat-relay") == ARGS_USAGE);
	TEST("unknown mode", args(&o, "chat-relay put") == ARGS_USAGE);
	TEST("unknown option", args(&o, "chat-relay pub --nope") == ARGS_USAGE);
	TEST("missing value", args(&o, "chat-relay pub --route") == ARGS_USAGE);
	TEST("sub needs a queue", args(&o, "chat-relay sub") == ARGS_USAGE);
	TEST("manual-ack needs a queue", args(&o, "chat-relay --manual-ack -- cat") ==
	     ARGS_USAGE);
	TEST("bad bind", args(&o, "chat-relay sub --bind nocolon") == ARGS_USAGE);
	TEST("prefetch 0 refused", args(&o, "chat-relay sub --queue q --prefetch 0") ==
	     ARGS_USAGE);
	TEST("sizes and durations",
	     args(&o, "chat-relay pub --max-line 1K --retry-budget 2m --backoff-max 250ms") ==
	     ARGS_RUN && o.max_line == 1024 && o.retry_budget_ms == 120000 &&
	     o.backoff_max_ms == 250);
	TEST("mode and -- together", args(&o, "chat-relay pub -- cat") == ARGS_USAGE);
	TEST("help", args(&o, "chat-relay pub --help") == ARGS_HELP);
	TEST("version", args(&o, "chat-relay --version") == ARGS_VERSION);
}

int main(void)
{
	test_lines();
	test_delivery();
	test_window();
	test_mask();
	test_args();
	return TEST_DONE();
}
