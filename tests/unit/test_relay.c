/* Unit tests of chat-relay's pure modules: line classification and the
 * envelope members cut out of a publish, delivery lines, the confirm window
 * (returns included), URL masking, the command line (several brokers, the
 * URL file, the node, the ingest shards). */
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "../../cmd/chat-relay/broker.h"
#include "../../cmd/chat-relay/relay.h"
#include "testhelp.h"

static struct relay_line L;
static struct buf scratch = BUF_INIT(0);

static enum relay_line_kind parse(const char *s, const char *def, bool control)
{
	free(L.confirm);
	relay_line_parse(s, strlen(s), def, control, &scratch, &L);
	return L.kind;
}

/* The body L publishes is exactly want. */
static bool body_is(const char *want)
{
	return L.kind == RLINE_PUBLISH && L.body_len == strlen(want) &&
	       !memcmp(L.body, want, L.body_len);
}

static void test_envelope(void)
{
	const char *line;

	TEST("route cut out of the body",
	     parse("{\"route\":\"msg.r1\",\"x\":1}", NULL, true) == RLINE_PUBLISH &&
	     body_is("{\"x\":1}"));
	TEST("route, confirm, expire cut, the rest byte for byte",
	     parse("{\"type\":\"publish\",\"route\":\"ingest.0\",\"confirm\":\"c1\","
		   "\"id\":\"n-1\",\"room\":\"r\",\"expire\":2000,"
		   "\"body\":{\"text\":\"h\\u00e9 \\\"x\\\"\" , \"n\": 1.50}}",
		   NULL, true) == RLINE_PUBLISH &&
	     body_is("{\"type\":\"publish\",\"id\":\"n-1\",\"room\":\"r\","
		     "\"body\":{\"text\":\"h\\u00e9 \\\"x\\\"\" , \"n\": 1.50}}") &&
	     !strcmp(L.route, "ingest.0") && L.expire_ms == 2000 &&
	     !strcmp(L.confirm, "\"c1\""));
	TEST("only envelope members: an empty object",
	     parse("{\"route\":\"a\",\"confirm\":1}", NULL, true) == RLINE_PUBLISH &&
	     body_is("{}"));
	line = "{ \"a\" : 1 ,\t\"b\":[1, 2] }";
	TEST("no envelope member: the line itself, spaces and all",
	     parse(line, "d", true) == RLINE_PUBLISH && L.body == line &&
	     body_is(line));
	TEST("envelope members only at the top level",
	     parse("{\"route\":\"a\",\"body\":{\"route\":\"b\",\"expire\":\"x\"}}",
		   NULL, true) == RLINE_PUBLISH &&
	     body_is("{\"body\":{\"route\":\"b\",\"expire\":\"x\"}}") &&
	     !strcmp(L.route, "a") && L.expire_ms == 0);
	TEST("default route, confirm cut",
	     parse("{\"confirm\":[1],\"x\":2}", "evt.r", true) == RLINE_PUBLISH &&
	     body_is("{\"x\":2}") && !strcmp(L.route, "evt.r") &&
	     !strcmp(L.confirm, "[1]"));
	TEST("expire 1 and 86400000 accepted",
	     parse("{\"route\":\"a\",\"expire\":1}", NULL, true) == RLINE_PUBLISH &&
	     L.expire_ms == 1 &&
	     parse("{\"route\":\"a\",\"expire\":86400000}", NULL, true) ==
	     RLINE_PUBLISH && L.expire_ms == 86400000);
	TEST("expire 0: bad",
	     parse("{\"route\":\"a\",\"expire\":0}", NULL, true) == RLINE_BAD &&
	     strstr(L.err, "expire"));
	TEST("expire negative: bad",
	     parse("{\"route\":\"a\",\"expire\":-5}", NULL, true) == RLINE_BAD);
	TEST("expire over a day: bad",
	     parse("{\"route\":\"a\",\"expire\":86400001}", NULL, true) == RLINE_BAD);
	TEST("expire a string: bad",
	     parse("{\"route\":\"a\",\"expire\":\"100\"}", NULL, true) == RLINE_BAD);
	TEST("expire a fraction: bad",
	     parse("{\"route\":\"a\",\"expire\":100.5}", NULL, true) == RLINE_BAD);
	TEST("expire huge: bad",
	     parse("{\"route\":\"a\",\"expire\":99999999999999999999}", NULL, true) ==
	     RLINE_BAD);
	TEST("route twice: bad (which one would a consumer see?)",
	     parse("{\"route\":\"a\",\"x\":1,\"route\":\"b\"}", NULL, true) ==
	     RLINE_BAD && strstr(L.err, "twice"));
	TEST("confirm twice: bad",
	     parse("{\"route\":\"a\",\"confirm\":1,\"confirm\":2}", NULL, true) ==
	     RLINE_BAD);
	TEST("route spelled with an escape: bad, never published",
	     parse("{\"rout\\u0065\":\"a\",\"x\":1}", NULL, true) == RLINE_BAD &&
	     strstr(L.err, "escapes"));
	TEST("escaped duplicate of a route: bad",
	     parse("{\"route\":\"a\",\"rout\\u0065\":\"b\"}", NULL, true) ==
	     RLINE_BAD);
	TEST("escaped expire with a default route: bad",
	     parse("{\"\\u0065xpire\":5,\"x\":1}", "d", true) == RLINE_BAD);
	TEST("other escaped keys are content",
	     parse("{\"route\":\"a\",\"t\\u0065xt\":\"\\u00e9\"}", NULL, true) ==
	     RLINE_PUBLISH && body_is("{\"t\\u0065xt\":\"\\u00e9\"}"));
	TEST("escaped key, no envelope member: the line itself",
	     parse("{\"t\\u0065xt\":1}", "d", true) == RLINE_PUBLISH &&
	     body_is("{\"t\\u0065xt\":1}"));
	TEST("a key that only starts like route is content",
	     parse("{\"routes\":1,\"route\":\"a\",\"xroute\":2}", NULL, true) ==
	     RLINE_PUBLISH && body_is("{\"routes\":1,\"xroute\":2}"));
	TEST("ingest shards are mandatory, others not",
	     relay_route_mandatory("ingest.0") && relay_route_mandatory("ingest.17") &&
	     !relay_route_mandatory("ingest") && !relay_route_mandatory("msg.ingest.1") &&
	     !relay_route_mandatory("evt.r"));
	free(L.confirm);
	L.confirm = NULL;
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
	return relay_msg_new(body, strlen(body), "r", 0, NULL);
}

static struct relay_msg *window_at_test(const struct relay_window *w, size_t i)
{
	return w->ring[(w->head + i) % w->cap];
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
	m = relay_window_pop(&w);
	relay_msg_free(m);
	TEST("window empty", w.count == 0);

	/* A return comes before the ack of the same seq: a nack. */
	relay_window_push(&w, relay_msg_new("{}", 2, "ingest.7", 500, strdup("1")));
	relay_window_push(&w, relay_msg_new("{}", 2, "ingest.0", 0, strdup("2")));
	relay_window_mark_sent(&w, 3);
	relay_window_mark_sent(&w, 4);
	TEST("message: mandatory and expiration kept",
	     window_at_test(&w, 0)->mandatory && window_at_test(&w, 0)->expire_ms == 500);
	TEST("return of an unknown seq ignored", !relay_window_returned(&w, 9) &&
	     !relay_window_returned(&w, 2));
	TEST("return marks seq 3", relay_window_returned(&w, 3));
	relay_window_rewind(&w);
	TEST("a rewind forgets the return: the new channel answers",
	     !window_at_test(&w, 0)->returned && relay_window_unsent(&w) != NULL);
	relay_window_mark_sent(&w, 1);
	relay_window_mark_sent(&w, 2);
	TEST("same window, new seqs", relay_window_returned(&w, 1) &&
	     relay_window_settle(&w, 2, true, true) == 2);
	TEST("returned on the new channel too: its ack is a nack",
	     window_at_test(&w, 0)->nacked && !window_at_test(&w, 1)->nacked);
	relay_window_push(&w, relay_msg_new("{}", 2, "x", 0, NULL));
	relay_window_mark_sent(&w, 3);
	TEST("a return after the answer is ignored", !relay_window_returned(&w, 1));
	m = relay_window_pop(&w);
	TEST("returned + acked = nacked", m && m->returned && m->nacked &&
	     !strcmp(m->confirm, "1"));
	relay_msg_free(m);
	m = relay_window_pop(&w);
	TEST("the other one confirmed", m && !m->returned && !m->nacked);
	relay_msg_free(m);
	TEST("the third one waits", relay_window_pop(&w) == NULL && w.count == 1);
	relay_window_free(&w);
}

static void test_mask(void)
{
	char out[256];

	broker_mask_url("amqp://guest:secret@host:5672/v", out, sizeof(out));
	TEST("password masked", !strcmp(out, "amqp://guest:***@host:5672/v"));
	broker_mask_url("amqp://user@host/", out, sizeof(out));
	TEST("no password: unchanged", !strcmp(out, "amqp://user@host/"));
	broker_mask_url("amqp://host:5672/", out, sizeof(out));
	TEST("no userinfo: unchanged", !strcmp(out, "amqp://host:5672/"));
	broker_mask_url("amqp://u:p@ss@host/", out, sizeof(out));
	TEST("@ in password masked", !strcmp(out, "amqp://u:***@host/"));
	broker_mask_url("amqp://h/x@y:z", out, sizeof(out));
	TEST("@ in path is not userinfo", !strcmp(out, "amqp://h/x@y:z"));
	broker_mask_url("amqps://u:@host/", out, sizeof(out));
	TEST("empty password masked too", !strcmp(out, "amqps://u:***@host/"));
	{
		size_t off = 0, len = 0;

		TEST("password span", relay_url_password("amqp://ab:cd@h/", &off, &len) &&
		     off == 10 && len == 2);
		TEST("no password span", !relay_url_password("amqp://ab@h/", &off, &len) &&
		     !relay_url_password("nourl", &off, &len));
	}
}

static char store[1024];
static char args_err[256];
static struct relay_opts *args_last;

static int args(struct relay_opts *o, const char *line)
{
	static char *argv[64];
	int argc = 0;
	char *p;

	if (args_last)
		relay_opts_free(args_last);
	args_last = o;
	snprintf(store, sizeof(store), "%s", line);
	for (p = strtok(store, " "); p && argc < 63; p = strtok(NULL, " "))
		argv[argc++] = p;
	argv[argc] = NULL;
	return relay_args(argc, argv, o, args_err, sizeof(args_err));
}

/* Whether the argument vector (store, NUL-separated) holds s. */
static bool store_has(const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; i + n <= sizeof(store); i++)
		if (!memcmp(store + i, s, n))
			return true;
	return false;
}

static void test_args_brokers(struct relay_opts *o)
{
	char path[] = "/tmp/test_relay.XXXXXX", line[512];
	const char *urls = "# brokers\namqp://u:p1@h1/\n\namqp://h2/, amqp://h3/\n";
	int fd, i;

	unsetenv("CHAT_AMQP_URL");
	TEST("default broker", args(o, "chat-relay pub") == ARGS_RUN &&
	     o->nurls == 1 && !strcmp(o->urls[0], RELAY_DEFAULT_URL) &&
	     !o->url_password_argv);
	setenv("CHAT_AMQP_URL", "amqp://e1/,amqp://e2/", 1);
	TEST("CHAT_AMQP_URL: a comma-separated list",
	     args(o, "chat-relay pub") == ARGS_RUN && o->nurls == 2 &&
	     !strcmp(o->urls[1], "amqp://e2/") && !o->url_password_argv);
	TEST("--url wins over CHAT_AMQP_URL, repeatable and comma-separated",
	     args(o, "chat-relay pub --url amqp://a/,amqp://b/ --url amqp://c/") ==
	     ARGS_RUN && o->nurls == 3 && !strcmp(o->urls[0], "amqp://a/") &&
	     !strcmp(o->urls[2], "amqp://c/"));
	unsetenv("CHAT_AMQP_URL");
	TEST("a password on the command line: kept, flagged, blanked in argv",
	     args(o, "chat-relay --url amqp://al:s3cret@h:5672/v pub") == ARGS_RUN &&
	     !strcmp(o->urls[0], "amqp://al:s3cret@h:5672/v") && o->url_password_argv &&
	     store_has("amqp://al:xxxxxx@h:5672/v") && !store_has("s3cret"));
	TEST("--url=URL form blanked too",
	     args(o, "chat-relay --url=amqp://a:pw@h/,amqp://b:qq@h/ pub") == ARGS_RUN &&
	     o->nurls == 2 && !strcmp(o->urls[1], "amqp://b:qq@h/") &&
	     store_has("--url=amqp://a:xx@h/,amqp://b:xx@h/"));
	TEST("--url with no URL", args(o, "chat-relay --url , pub") == ARGS_USAGE);
	line[0] = '\0';
	strcat(line, "chat-relay pub --url ");
	for (i = 0; i <= RELAY_URLS_MAX; i++)
		strcat(line, "amqp://h/,");
	TEST("more than 16 URLs", args(o, line) == ARGS_USAGE &&
	     strstr(args_err, "16"));

	fd = mkstemp(path);
	TEST("url file written", fd >= 0 &&
	     write(fd, urls, strlen(urls)) == (ssize_t)strlen(urls) && close(fd) == 0);
	snprintf(line, sizeof(line), "chat-relay pub --url-file %s", path);
	TEST("--url-file: lines, commas, comments",
	     args(o, line) == ARGS_RUN && o->nurls == 3 &&
	     !strcmp(o->urls[0], "amqp://u:p1@h1/") && !strcmp(o->urls[2], "amqp://h3/") &&
	     !o->url_password_argv);
	snprintf(line, sizeof(line), "chat-relay pub --url amqp://x/ --url-file %s", path);
	TEST("--url and --url-file add up in order",
	     args(o, line) == ARGS_RUN && o->nurls == 4 && !strcmp(o->urls[0], "amqp://x/"));
	fd = open(path, O_WRONLY | O_TRUNC);
	TEST("url file emptied", fd >= 0 && write(fd, "# none\n", 7) == 7 &&
	     close(fd) == 0);
	snprintf(line, sizeof(line), "chat-relay pub --url-file %s", path);
	TEST("--url-file without a URL: configuration error",
	     args(o, line) == ARGS_CONFIG && strstr(args_err, "no URL"));
	unlink(path);
	TEST("--url-file missing: configuration error",
	     args(o, line) == ARGS_CONFIG && strstr(args_err, "unable to read"));
	TEST("--ca missing: configuration error",
	     args(o, "chat-relay pub --ca /nonexistent/ca.pem") == ARGS_CONFIG);
	TEST("--ca and --insecure",
	     args(o, "chat-relay pub --ca /dev/null --insecure") == ARGS_RUN &&
	     !strcmp(o->ca_file, "/dev/null") && o->insecure);
}

static void test_args_node(struct relay_opts *o)
{
	char want[128], host[256] = "";

	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = '\0';
	snprintf(want, sizeof(want), "%s-%d", host, (int)getpid());
	TEST("default node: short host name and pid",
	     args(o, "chat-relay pub") == ARGS_RUN && !strcmp(o->node, want));
	TEST("--node", args(o, "chat-relay --node gw-1.a:b_c -- cat") == ARGS_RUN &&
	     !strcmp(o->node, "gw-1.a:b_c"));
	TEST("--node with a space or a slash refused",
	     args(o, "chat-relay --node a/b -- cat") == ARGS_USAGE);
	unsetenv("CHAT_INGEST_SHARDS");
	TEST("ingest shards: 1 by default", args(o, "chat-relay pub") == ARGS_RUN &&
	     o->ingest_shards == 1);
	setenv("CHAT_INGEST_SHARDS", "4", 1);
	TEST("ingest shards from CHAT_INGEST_SHARDS",
	     args(o, "chat-relay pub") == ARGS_RUN && o->ingest_shards == 4);
	TEST("--ingest-shards wins",
	     args(o, "chat-relay pub --ingest-shards 1024") == ARGS_RUN &&
	     o->ingest_shards == 1024);
	setenv("CHAT_INGEST_SHARDS", "0", 1);
	TEST("CHAT_INGEST_SHARDS=0: configuration error",
	     args(o, "chat-relay pub") == ARGS_CONFIG &&
	     strstr(args_err, "CHAT_INGEST_SHARDS"));
	unsetenv("CHAT_INGEST_SHARDS");
	TEST("--ingest-shards 0 and 1025 refused",
	     args(o, "chat-relay pub --ingest-shards 0") == ARGS_USAGE &&
	     args(o, "chat-relay pub --ingest-shards 1025") == ARGS_USAGE);
	TEST("metrics file and interval",
	     args(o, "chat-relay pub --metrics-file /tmp/m.prom --stats-interval 250ms") ==
	     ARGS_RUN && !strcmp(o->metrics_file, "/tmp/m.prom") &&
	     o->stats_interval_ms == 250);
	TEST("stats interval: 10s by default, 0 turns it off",
	     args(o, "chat-relay pub") == ARGS_RUN && o->stats_interval_ms == 10000 &&
	     args(o, "chat-relay pub --stats-interval 0") == ARGS_RUN &&
	     o->stats_interval_ms == 0);
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
	test_args_brokers(&o);
	test_args_node(&o);
	relay_opts_free(&o);
	args_last = NULL;
}

int main(void)
{
	test_lines();
	test_envelope();
	test_delivery();
	test_window();
	test_mask();
	test_args();
	return TEST_DONE();
}
