/* Unit tests of chat-presence's Redis-free modules: the Redis URL, bus
 * lines, the lines it writes, the coalescer and its cancel rule, the
 * command line. */
#include <stdlib.h>
#include <string.h>

#include "../../cmd/chat-presence/presence.h"
#include "testhelp.h"

static void test_url(void)
{
	struct rurl u;
	char err[128], m[400];

	TEST("url: host only, defaults",
	     rurl_parse("redis://example.org", &u, err, sizeof(err)) == 0 &&
		 !strcmp(u.host, "example.org") && u.port == 6379 && u.db == 0 &&
		 !u.password[0] && !u.user[0]);
	TEST("url: port and db",
	     rurl_parse("redis://127.0.0.1:6380/3", &u, err, sizeof(err)) == 0 &&
		 !strcmp(u.host, "127.0.0.1") && u.port == 6380 && u.db == 3);
	TEST("url: trailing slash is db 0",
	     rurl_parse("redis://h:1/", &u, err, sizeof(err)) == 0 && u.db == 0);
	TEST("url: password",
	     rurl_parse("redis://:s3cr%40t@h:7/1", &u, err, sizeof(err)) == 0 &&
		 !strcmp(u.password, "s3cr@t") && !u.user[0] && u.port == 7);
	TEST("url: user and password",
	     rurl_parse("redis://app:pw@h", &u, err, sizeof(err)) == 0 &&
		 !strcmp(u.user, "app") && !strcmp(u.password, "pw"));
	TEST("url: an @ inside the password (last @ ends user info)",
	     rurl_parse("redis://:a@b@h:9", &u, err, sizeof(err)) == 0 &&
		 !strcmp(u.password, "a@b") && !strcmp(u.host, "h"));
	TEST("url: IPv6", rurl_parse("redis://[::1]:6390/2", &u, err, sizeof(err)) == 0 &&
			      !strcmp(u.host, "::1") && u.port == 6390 && u.db == 2);
	TEST("url: masked keeps the password out",
	     rurl_parse("redis://:topsecret@h:9/1", &u, err, sizeof(err)) == 0 &&
		 (rurl_masked(&u, m, sizeof(m)), !strstr(m, "topsecret")) &&
		 !strcmp(m, "redis://:***@h:9/1"));
	TEST("url: not redis://", rurl_parse("http://h", &u, err, sizeof(err)) < 0);
	TEST("url: no host", rurl_parse("redis://:6379", &u, err, sizeof(err)) < 0);
	TEST("url: empty", rurl_parse("redis://", &u, err, sizeof(err)) < 0);
	TEST("url: port 0", rurl_parse("redis://h:0", &u, err, sizeof(err)) < 0);
	TEST("url: port too big",
	     rurl_parse("redis://h:65536", &u, err, sizeof(err)) < 0);
	TEST("url: port not a number",
	     rurl_parse("redis://h:x1", &u, err, sizeof(err)) < 0);
	TEST("url: bad db", rurl_parse("redis://h/x", &u, err, sizeof(err)) < 0);
	TEST("url: user info without colon",
	     rurl_parse("redis://pw@h", &u, err, sizeof(err)) < 0);
	TEST("url: empty password",
	     rurl_parse("redis://:@h", &u, err, sizeof(err)) < 0);
	TEST("url: bad escape, error without the password",
	     rurl_parse("redis://:se%zzcret@h", &u, err, sizeof(err)) < 0 &&
		 !strstr(err, "se%zz"));
	TEST("url: %00 refused",
	     rurl_parse("redis://:a%00b@h", &u, err, sizeof(err)) < 0);
}

static struct pline P;

static enum pline_kind parse(const char *s)
{
	pline_free(&P);
	pline_parse(s, strlen(s), &P);
	return P.kind;
}

static void test_lines(void)
{
	TEST("join", parse("{\"type\":\"join\",\"route\":\"presence\",\"node\":\"gw-1\","
			   "\"room\":\"r1\",\"users\":[\"a\",\"b\"]}") == PL_JOIN &&
			 !strcmp(P.node, "gw-1") && P.nrooms == 1 &&
			 !strcmp(P.rooms[0].room, "r1") && P.rooms[0].nusers == 2 &&
			 !strcmp(P.rooms[0].users[1], "b") && P.bad_names == 0);
	TEST("leave, bad users skipped and counted",
	     parse("{\"type\":\"leave\",\"node\":\"n\",\"room\":\"r\",\"users\":"
		   "[\"ok\",\"sp ace\",7,\"q\\\"\",\"\",\"ok2\"]}") == PL_LEAVE &&
		 P.rooms[0].nusers == 2 && P.bad_names == 4 &&
		 !strcmp(P.rooms[0].users[1], "ok2"));
	TEST("join: empty users is fine",
	     parse("{\"type\":\"join\",\"node\":\"n\",\"room\":\"r\",\"users\":[]}") ==
		     PL_JOIN &&
		 P.rooms[0].nusers == 0);
	TEST("join: no users array",
	     parse("{\"type\":\"join\",\"node\":\"n\",\"room\":\"r\"}") == PL_BAD);
	TEST("join: bad room",
	     parse("{\"type\":\"join\",\"node\":\"n\",\"room\":\"a b\",\"users\":[]}") ==
		 PL_BAD);
	TEST("join: room with a NUL",
	     parse("{\"type\":\"join\",\"node\":\"n\",\"room\":\"a\\u0000b\",\"users\":[]}") ==
		 PL_BAD);
	TEST("join: bad node",
	     parse("{\"type\":\"join\",\"node\":\"n{x}\",\"room\":\"r\",\"users\":[]}") ==
		     PL_BAD &&
		 strstr(P.err, "bad node name"));
	TEST("join: no node",
	     parse("{\"type\":\"join\",\"room\":\"r\",\"users\":[]}") == PL_BAD);
	TEST("heartbeat with ttl, a bad room skipped",
	     parse("{\"type\":\"heartbeat\",\"node\":\"n\",\"ttl\":60000,\"rooms\":"
		   "{\"r1\":[\"a\"],\"bad room\":[\"b\"],\"r2\":[\"c\",\"d\"],"
		   "\"r3\":5}}") == PL_HEARTBEAT &&
		 P.ttl_ms == 60000 && P.nrooms == 2 && P.bad_names == 2 &&
		 P.rooms[1].nusers == 2 && !strcmp(P.rooms[1].users[1], "d"));
	TEST("heartbeat without ttl",
	     parse("{\"type\":\"heartbeat\",\"node\":\"n\",\"rooms\":{}}") ==
		     PL_HEARTBEAT &&
		 P.ttl_ms == -1 && P.nrooms == 0);
	TEST("heartbeat: bad ttl",
	     parse("{\"type\":\"heartbeat\",\"node\":\"n\",\"ttl\":0,\"rooms\":{}}") ==
		 PL_BAD);
	TEST("heartbeat: rooms not an object",
	     parse("{\"type\":\"heartbeat\",\"node\":\"n\",\"rooms\":[]}") == PL_BAD);
	TEST("down", parse("{\"type\":\"down\",\"node\":\"gw.2\"}") == PL_DOWN &&
			 !strcmp(P.node, "gw.2"));
	TEST("query, default limit, rpc kept as JSON",
	     parse("{\"type\":\"presence\",\"rpc\":\"q-1\",\"node\":\"n\",\"conn\":3,"
		   "\"room\":\"r\"}") == PL_QUERY &&
		 !strcmp(P.rpc, "\"q-1\"") && P.limit == PRES_LIMIT_DEFAULT &&
		 !strcmp(P.rooms[0].room, "r"));
	TEST("query with limit 0 and an object rpc",
	     parse("{\"type\":\"presence\",\"rpc\":{\"a\": 1},\"node\":\"n\","
		   "\"room\":\"r\",\"limit\":0}") == PL_QUERY &&
		 P.limit == 0 && !strcmp(P.rpc, "{\"a\":1}"));
	TEST("query: negative limit",
	     parse("{\"type\":\"presence\",\"rpc\":1,\"node\":\"n\",\"room\":\"r\","
		   "\"limit\":-1}") == PL_BAD);
	TEST("presence without rpc is no query",
	     parse("{\"type\":\"presence\",\"room\":\"r\",\"joined\":[]}") == PL_BAD);
	TEST("bus state",
	     parse("{\"type\":\"bus\",\"state\":\"up\"}") == PL_BUS && P.bus_up);
	TEST("unknown type", parse("{\"type\":\"wave\"}") == PL_BAD &&
				 strstr(P.err, "unknown type 'wave'"));
	TEST("no type", parse("{\"node\":\"n\"}") == PL_BAD);
	TEST("not an object", parse("[1]") == PL_BAD);
	TEST("not JSON",
	     parse("{\"type\":") == PL_BAD && strstr(P.err, "not valid JSON"));
	TEST("duplicate members refused",
	     parse("{\"type\":\"down\",\"node\":\"a\",\"node\":\"b\"}") == PL_BAD);
	pline_free(&P);
}

static void test_render(void)
{
	struct buf b = BUF_INIT(0);
	const char *j[] = { "a", "b" }, *l[] = { "c" };

	pres_render_change(&b, "r1", j, 2, l, 1);
	TEST("change line",
	     !strcmp(b.data, "{\"type\":\"presence\",\"room\":\"r1\",\"joined\":"
			     "[\"a\",\"b\"],\"left\":[\"c\"]}\n"));
	{
		struct buf r = BUF_INIT(0);

		pres_render_change_routed(&r, "r1", b.data, b.len);
		TEST("change line with its route last",
		     !strcmp(r.data,
			     "{\"type\":\"presence\",\"room\":\"r1\",\"joined\":"
			     "[\"a\",\"b\"],\"left\":[\"c\"],\"route\":\"evt.r1\"}\n"));
		TEST("routed: not a line",
		     pres_render_change_routed(&r, "r", "{}", 2) < 0);
		buf_release(&r);
	}
	buf_reset(&b);
	pres_render_answer(&b, "\"q\"", "gw1", "r1", j, 2, 5, true, 1 << 20);
	TEST("answer",
	     !strcmp(b.data, "{\"type\":\"presence\",\"rpc\":\"q\",\"room\":\"r1\","
			     "\"users\":[\"a\",\"b\"],\"count\":5,\"more\":true,"
			     "\"route\":\"node.gw1\"}\n"));
	buf_reset(&b);
	pres_render_answer(&b, "1", "gw1", "r1", j, 2, 2, false, 140);
	TEST("answer cut to max_line: more becomes true",
	     strstr(b.data, "\"users\":[],\"count\":2,\"more\":true") != NULL);
	buf_reset(&b);
	pres_render_error(&b, "\"q\"", "gw1", "r1", "bad \"thing\"\n");
	TEST("error line, text kept safe",
	     !strcmp(b.data, "{\"type\":\"error\",\"rpc\":\"q\",\"room\":\"r1\","
			     "\"error\":\"bad ?thing??\",\"route\":\"node.gw1\"}\n"));
	buf_reset(&b);
	pres_render_online(&b, "r", j, 1, 2, true);
	TEST("online line",
	     !strcmp(b.data,
		     "{\"room\":\"r\",\"users\":[\"a\"],\"count\":2,\"more\":true}\n"));
	{
		struct buf small = BUF_INIT(20);

		buf_adds(&small, "x");
		TEST("render into a full buffer fails and leaves it as it was",
		     pres_render_change(&small, "r1", j, 2, l, 1) < 0 &&
			 small.len == 1 && !strcmp(small.data, "x") && small.err == 0);
		buf_release(&small);
	}
	buf_release(&b);
}

/* The coalescer's output, captured. */
static struct buf emitted;
static int nemitted;

static void capture(void *arg, const char *room, const char *line, size_t len)
{
	(void)arg;
	(void)room;
	buf_add(&emitted, line, len);
	nemitted++;
}

static void reset_capture(void)
{
	buf_reset(&emitted);
	nemitted = 0;
}

static void test_coal(void)
{
	struct coal c;

	coal_init(&c, 50, 1 << 20, 1000, capture, NULL);
	reset_capture();
	coal_add(&c, "r1", "b", true, 100, 0, 1000);
	coal_add(&c, "r1", "a", true, 101, 0, 1010);
	coal_add(&c, "r2", "x", false, 102, 0, 1020);
	TEST("coal: nothing before the window ends",
	     nemitted == 0 && coal_next_due(&c) == 1050);
	coal_flush_due(&c, 1049);
	TEST("coal: still nothing at 49 ms", nemitted == 0);
	coal_flush_due(&c, 1050);
	TEST("coal: r1 at 50 ms, sorted, in one line",
	     nemitted == 1 &&
		 !strcmp(emitted.data, "{\"type\":\"presence\",\"room\":\"r1\","
				       "\"joined\":[\"a\",\"b\"],\"left\":[]}\n") &&
		 coal_next_due(&c) == 1070);
	coal_flush_due(&c, 1070);
	TEST("coal: r2 at its own window's end",
	     nemitted == 2 && coal_next_due(&c) == -1);

	reset_capture();
	coal_add(&c, "r1", "g", true, 200, 0, 2000);
	coal_add(&c, "r1", "g", false, 300, 150, 2010);
	TEST("coal: join then leave, no query since: cancelled",
	     c.cancelled == 1 && coal_next_due(&c) == -1);
	coal_flush_all(&c);
	TEST("coal: ... and nothing goes out", nemitted == 0);

	coal_add(&c, "r1", "s", true, 400, 0, 3000);
	coal_add(&c, "r1", "s", false, 500, 450, 3010);
	TEST("coal: a query looked after the join: the join goes out now",
	     nemitted == 1 && c.seen_flushes == 1 &&
		 strstr(emitted.data, "\"joined\":[\"s\"],\"left\":[]"));
	coal_flush_all(&c);
	TEST("coal: ... and the leave after it",
	     nemitted == 2 && strstr(emitted.data, "\"joined\":[],\"left\":[\"s\"]"));

	reset_capture();
	coal_add(&c, "r1", "p", false, 600, 0, 4000);
	coal_add(&c, "r1", "p", true, 700, 600, 4010);
	TEST("coal: a query at the very time of the first change forbids the cancel",
	     nemitted == 1);
	coal_flush_all(&c);

	reset_capture();
	coal_add(&c, "r1", "d", true, 800, 0, 5000);
	coal_add(&c, "r1", "d", true, 900, 0, 5001);
	coal_flush_all(&c);
	TEST("coal: the same change twice is one",
	     nemitted == 1 &&
		 !strcmp(emitted.data, "{\"type\":\"presence\",\"room\":"
				       "\"r1\",\"joined\":[\"d\"],\"left\":[]}\n"));

	reset_capture();
	coal_flush_room(&c, "nothing");
	TEST("coal: flushing an idle room emits nothing", nemitted == 0);
	coal_free(&c);

	/* Window 0: every change at once. */
	coal_init(&c, 0, 1 << 20, 1000, capture, NULL);
	reset_capture();
	coal_add(&c, "r", "a", true, 1, 0, 1);
	TEST("coal: window 0 emits at once", nemitted == 1);
	coal_free(&c);

	/* Lines stay under max_line: 500 users of 8 bytes in 1 KiB lines. */
	coal_init(&c, 50, 1024, 100000, capture, NULL);
	reset_capture();
	{
		char name[16];
		int i, total = 0;
		const char *p;

		for (i = 0; i < 500; i++) {
			snprintf(name, sizeof(name), "user%04d", i);
			coal_add(&c, "r", name, i % 2, i, 0, 10);
		}
		coal_flush_all(&c);
		for (p = emitted.data; (p = strstr(p, "\"user")); p++)
			total++;
		TEST("coal: a big window is cut in lines under max_line",
		     nemitted > 4 && total == 500);
		for (p = emitted.data; *p;) {
			const char *nl = strchr(p, '\n');

			if ((size_t)(nl - p) >= 1024)
				break;
			p = nl + 1;
		}
		TEST("coal: ... every one of them", *p == '\0');
	}
	coal_free(&c);

	/* Past max_users everything goes out. */
	coal_init(&c, 50, 1 << 20, 3, capture, NULL);
	reset_capture();
	coal_add(&c, "r1", "a", true, 1, 0, 1);
	coal_add(&c, "r2", "b", true, 1, 0, 1);
	coal_add(&c, "r3", "c", true, 1, 0, 1);
	TEST("coal: at max_users nothing yet", nemitted == 0);
	coal_add(&c, "r4", "d", true, 1, 0, 1);
	TEST("coal: past max_users all goes out", nemitted == 4 && c.nusers == 0);
	coal_free(&c);
	buf_release(&emitted);
}

/* Options point into argv: the copies live until free_args(). */
static char *arg_copies[64];
static int narg_copies;

static void free_args(void)
{
	while (narg_copies > 0)
		free(arg_copies[--narg_copies]);
}

static int args(const char *line, struct pres_opts *o, char *err)
{
	char *copy = strdup(line), *argv[32];
	int argc = 0, r;

	arg_copies[narg_copies++] = copy;

	for (char *t = strtok(copy, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	r = pres_args(argc, argv, o, err, 256);
	return r;
}

static void test_args(void)
{
	struct pres_opts o;
	char err[256];

	unsetenv("CHAT_REDIS_URL");
	TEST("args: track with defaults",
	     args("p track", &o, err) == ARGS_RUN && o.cmd == PRES_TRACK &&
		 o.ttl_ms == 60000 && o.sweep_ms == 5000 && o.coalesce_ms == 50 &&
		 !strcmp(o.prefix, "chat") && !strcmp(o.url, PRES_DEFAULT_URL) &&
		 o.limit == 100 && o.max_pending == 1024);
	setenv("CHAT_REDIS_URL", "redis://env:1/2", 1);
	TEST("args: $CHAT_REDIS_URL", args("p online", &o, err) == ARGS_RUN &&
					  !strcmp(o.url, "redis://env:1/2") &&
					  !o.url_on_argv);
	TEST("args: --redis wins, and is marked as on argv",
	     args("p --redis redis://x track", &o, err) == ARGS_RUN &&
		 !strcmp(o.url, "redis://x") && o.url_on_argv);
	unsetenv("CHAT_REDIS_URL");
	TEST("args: options after the subcommand",
	     args("p track --ttl 2s --sweep 100ms --coalesce 0", &o, err) == ARGS_RUN &&
		 o.ttl_ms == 2000 && o.sweep_ms == 100 && o.coalesce_ms == 0);
	TEST("args: online --room --limit",
	     args("p online --room r1 --limit 0", &o, err) == ARGS_RUN &&
		 !strcmp(o.room, "r1") && o.limit == 0);
	TEST("args: --limit is online's",
	     args("p watch --limit 3", &o, err) == ARGS_USAGE &&
		 strstr(err, "--limit is an option of online"));
	TEST("args: --room is not track's",
	     args("p track --room r", &o, err) == ARGS_USAGE);
	TEST("args: bad room", args("p online --room a*b", &o, err) == ARGS_USAGE);
	TEST("args: bad prefix", args("p --prefix {x} track", &o, err) == ARGS_USAGE);
	TEST("args: coalesce not shorter than ttl",
	     args("p track --ttl 1s --coalesce 1s", &o, err) == ARGS_USAGE);
	TEST("args: two subcommands", args("p track online", &o, err) == ARGS_USAGE);
	TEST("args: none", args("p", &o, err) == ARGS_USAGE);
	TEST("args: --help", args("p --help", &o, err) == ARGS_HELP);
	TEST("args: --version", args("p track --version", &o, err) == ARGS_VERSION);
	TEST("args: -v", args("p -v 3 track", &o, err) == ARGS_RUN && o.verbosity == 3);
	TEST("args: -v out of range", args("p -v 4 track", &o, err) == ARGS_USAGE);
	free_args();
}

int main(void)
{
	test_url();
	test_lines();
	test_render();
	test_coal();
	test_args();
	return TEST_DONE();
}
