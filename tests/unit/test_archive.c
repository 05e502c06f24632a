/*
 * test_archive: chat-archive's parsers and renderers, which need no
 * database: ingest lines (spans, types, every reason to refuse), queries,
 * the message line (member order, escapes, route and confirm), and the
 * answers cut to fit a line limit (history "more", recover "gap").
 */
#include <string.h>

#include "../../cmd/chat-archive/archive.h"
#include "testhelp.h"

static bool span_is(const char *line, struct span s, const char *want)
{
	return s.len == strlen(want) && !memcmp(line + s.off, want, s.len);
}

static struct ingest parse(const char *line)
{
	struct ingest in;

	ingest_parse(line, strlen(line), 64, &in);
	return in;
}

static bool bad(const char *line, const char *why)
{
	struct ingest in = parse(line);

	return in.kind == INGEST_BAD && strstr(in.why, why) != NULL;
}

static struct msgline msg(int64_t seq, const char *body)
{
	struct msgline m = { "r1", 2, seq, "gw-a-1", 6, "alice", 5, 1700, body,
			     strlen(body) };

	return m;
}

static void test_ingest(void)
{
	const char *ok = "{\"type\":\"publish\",\"id\":\"gw1-k-7\",\"room\":\"lobby\","
			 "\"from\":\"al\\u0069ce\",\"ts\":17,\"node\":\"gw1\","
			 "\"body\": {\"t\" : \"\\u0000 \\\"x\\\"\"} ,\"tag\":42}";
	const char *l2 = "{\"type\":\"publish\",\"id\":\"i1\",\"room\":\"r\","
			 "\"from\":\"bob\",\"ts\":0,\"body\":[1, 2]}";
	struct ingest in;

	/* "from" with an escape is not a valid user name: refused. */
	TEST("an escaped user name is refused", bad(ok, "no valid \"from\""));
	in = parse(l2);
	TEST("a publish is a publish", in.kind == INGEST_PUBLISH);
	TEST("id span", span_is(l2, in.id, "i1"));
	TEST("room span", span_is(l2, in.room, "r"));
	TEST("from span", span_is(l2, in.from, "bob"));
	TEST("body span is the text as written", span_is(l2, in.body, "[1, 2]"));
	TEST("ts", in.ts == 0);
	TEST("no tag: not tagged", !in.tagged);

	in = parse("{\"type\":\"publish\",\"id\":\"i1\",\"room\":\"r\","
		   "\"from\":\"bob\",\"ts\":5,\"body\": {\"a\" : 1 } ,\"tag\":42}");
	TEST("tagged publish", in.kind == INGEST_PUBLISH && in.tagged &&
				       in.tag == 42);
	TEST("body with spaces around it",
	     in.body.len == strlen("{\"a\" : 1 }"));

	in = parse("{\"type\":\"confirm\",\"confirm\":9}");
	TEST("confirm", in.kind == INGEST_CONFIRM && in.confirm == 9);
	in = parse("{\"type\":\"nack\",\"confirm\":10}");
	TEST("nack", in.kind == INGEST_NACK && in.confirm == 10);
	in = parse("{\"type\":\"bus\",\"state\":\"down\"}");
	TEST("bus state", in.kind == INGEST_OTHER);
	TEST("a confirm of someone else's", bad("{\"type\":\"confirm\",\"confirm\":\"x\"}",
						"not one of ours"));
	in = parse("{\"type\":\"confirm\",\"confirm\":9,\"tag\":3}");
	TEST("a tagged line is a delivery whatever its type",
	     in.kind == INGEST_BAD && in.tagged && in.tag == 3);

	TEST("not JSON", bad("{\"type\":", "not valid JSON"));
	TEST("not an object", bad("[1]", "not a JSON object"));
	TEST("invalid UTF-8", bad("{\"type\":\"publish\",\"id\":\"i\",\"room\":\"r\","
				  "\"from\":\"u\",\"ts\":1,\"body\":\"\xff\"}",
				  "not valid JSON"));
	TEST("duplicate member", bad("{\"type\":\"publish\",\"type\":\"publish\"}",
				     "not valid JSON"));
	TEST("no type", bad("{\"id\":1}", "no \"type\""));
	TEST("other type", bad("{\"type\":\"history\"}", "not publish"));
	TEST("bad tag", bad("{\"type\":\"publish\",\"tag\":0}", "\"tag\""));
	TEST("no id", bad("{\"type\":\"publish\",\"room\":\"r\",\"from\":\"u\","
			  "\"ts\":1,\"body\":1}", "no valid \"id\""));
	TEST("id with a space", bad("{\"type\":\"publish\",\"id\":\"a b\","
				    "\"room\":\"r\",\"from\":\"u\",\"ts\":1,"
				    "\"body\":1}", "no valid \"id\""));
	TEST("id as a number", bad("{\"type\":\"publish\",\"id\":12,\"room\":\"r\","
				   "\"from\":\"u\",\"ts\":1,\"body\":1}",
				   "no valid \"id\""));
	TEST("an escaped key is not a span", bad("{\"type\":\"publish\","
						 "\"i\\u0064\":\"x\",\"room\":\"r\","
						 "\"from\":\"u\",\"ts\":1,\"body\":1}",
						 "no valid \"id\""));
	TEST("bad room", bad("{\"type\":\"publish\",\"id\":\"i\",\"room\":\"a b\","
			     "\"from\":\"u\",\"ts\":1,\"body\":1}",
			     "no valid \"room\""));
	TEST("ts as a string", bad("{\"type\":\"publish\",\"id\":\"i\",\"room\":\"r\","
				   "\"from\":\"u\",\"ts\":\"1\",\"body\":1}",
				   "\"ts\""));
	TEST("negative ts", bad("{\"type\":\"publish\",\"id\":\"i\",\"room\":\"r\","
				"\"from\":\"u\",\"ts\":-1,\"body\":1}", "\"ts\""));
	TEST("ts as a float", bad("{\"type\":\"publish\",\"id\":\"i\",\"room\":\"r\","
				  "\"from\":\"u\",\"ts\":1.5,\"body\":1}", "\"ts\""));
	TEST("no body", bad("{\"type\":\"publish\",\"id\":\"i\",\"room\":\"r\","
			    "\"from\":\"u\",\"ts\":1}", "no \"body\""));
	TEST("body over the limit",
	     bad("{\"type\":\"publish\",\"id\":\"i\",\"room\":\"r\",\"from\":\"u\","
		 "\"ts\":1,\"body\":\"0123456789012345678901234567890123456789"
		 "01234567890123456789012345\"}", "over --max-body (64)"));
	TEST("id validity", ingest_id_valid("gw1-mwzqg0tz-1", 14) &&
				    !ingest_id_valid("", 0) &&
				    !ingest_id_valid("a\"b", 3));
}

static void test_msgline(void)
{
	struct buf b = BUF_INIT(0), small = BUF_INIT(10);
	struct msgline m = msg(3, "{\"t\":\"\\u0000\"}");

	TEST("render", msgline_render(&b, &m, false, 0) == 0);
	TEST("the contract's member order, body verbatim",
	     !strcmp(b.data, "{\"type\":\"message\",\"room\":\"r1\",\"seq\":3,"
			     "\"id\":\"gw-a-1\",\"from\":\"alice\",\"ts\":1700,"
			     "\"body\":{\"t\":\"\\u0000\"}}"));
	buf_reset(&b);
	msgline_render(&b, &m, true, 12);
	TEST("route and confirm last",
	     strstr(b.data, "\"body\":{\"t\":\"\\u0000\"},\"route\":\"msg.r1\","
			    "\"confirm\":12}") != NULL);
	buf_reset(&b);
	msgline_str(&b, "a\"b\\c\nd\x01", 8);
	TEST("strings are escaped", !strcmp(b.data, "\"a\\\"b\\\\c\\u000ad\\u0001\""));
	TEST("a full buffer is left as it was",
	     msgline_render(&small, &m, false, 0) < 0 && small.len == 0);
	buf_release(&b);
	buf_release(&small);
}

static struct query qparse(const char *line)
{
	struct query q;

	query_parse(line, strlen(line), 100, &q);
	return q;
}

static void test_query(void)
{
	struct query q;

	q = qparse("{\"type\":\"history\",\"route\":\"rpc.history\",\"rpc\":\"gw-1-q7\","
		   "\"node\":\"gw1\",\"conn\":3,\"room\":\"lobby\",\"limit\":500,"
		   "\"before\":9}");
	TEST("history", q.kind == QUERY_HISTORY && !strcmp(q.rpc, "\"gw-1-q7\"") &&
				!strcmp(q.node, "gw1") && !strcmp(q.room, "lobby") &&
				q.before == 9 && q.limit == 100);
	q = qparse("{\"type\":\"history\",\"rpc\":{\"a\": [1]},\"node\":\"n\","
		   "\"room\":\"r\"}");
	TEST("history defaults; rpc kept verbatim",
	     q.kind == QUERY_HISTORY && q.limit == 50 && q.before == -1 &&
		     !strcmp(q.rpc, "{\"a\": [1]}"));
	q = qparse("{\"type\":\"recover\",\"rpc\":1,\"node\":\"n\",\"room\":\"r\","
		   "\"since\":0}");
	TEST("recover since 0", q.kind == QUERY_RECOVER && q.since == 0);
	q = qparse("{\"type\":\"recover\",\"rpc\":1,\"node\":\"n\",\"room\":\"r\"}");
	TEST("recover without since", q.kind == QUERY_RECOVER && q.since == -1);
	TEST("bus state", qparse("{\"type\":\"bus\",\"state\":\"up\"}").kind ==
				  QUERY_OTHER);
	TEST("no node", qparse("{\"type\":\"recover\",\"rpc\":1,\"room\":\"r\"}").kind ==
				QUERY_BAD);
	TEST("bad node", qparse("{\"type\":\"recover\",\"rpc\":1,\"node\":\"a b\","
				"\"room\":\"r\"}").kind == QUERY_BAD);
	TEST("no rpc", qparse("{\"type\":\"recover\",\"node\":\"n\",\"room\":\"r\"}").kind ==
			       QUERY_BAD);
	TEST("negative since", qparse("{\"type\":\"recover\",\"rpc\":1,\"node\":\"n\","
				      "\"room\":\"r\",\"since\":-2}").kind ==
				       QUERY_BAD);
	TEST("zero limit", qparse("{\"type\":\"history\",\"rpc\":1,\"node\":\"n\","
				  "\"room\":\"r\",\"limit\":0}").kind == QUERY_BAD);
	q = qparse("{\"type\":\"history\",\"rpc\":1,\"node\":\"n\",\"room\":\"r\","
		   "\"tag\":4}");
	TEST("a tagged query", q.kind == QUERY_HISTORY && q.tagged && q.tag == 4);
}

static void test_answers(void)
{
	struct buf b = BUF_INIT(0);
	struct query q = qparse("{\"type\":\"recover\",\"rpc\":\"q1\",\"node\":\"gw1\","
				"\"room\":\"r1\",\"since\":2}");
	struct msgline m[5];
	struct answer_cut cut;
	char body[402];
	size_t one, i;

	/* Messages larger than the fixed parts of an answer (under 250
	 * bytes here), so that limits fall between whole messages. */
	memset(body, 'x', sizeof(body) - 1);
	body[0] = body[sizeof(body) - 2] = '"';
	body[sizeof(body) - 1] = '\0';

	/* newest first: seqs 7, 6, 5, 4, 3 */
	for (i = 0; i < 5; i++)
		m[i] = msg(7 - (int64_t)i, body);
	TEST("recover, all fit", answer_recover(&b, &q, 7, m, 5, 1 << 20, &cut) == 0);
	TEST("recover: oldest first, no gap",
	     cut.kept == 5 && !cut.cut && strstr(b.data, "\"seq\":7,\"messages\":[{") &&
		     strstr(b.data, "\"seq\":3,") < strstr(b.data, "\"seq\":4,") &&
		     !strstr(b.data, "gap") &&
		     strstr(b.data, "],\"route\":\"node.gw1\"}\n"));
	TEST("the answer head", !strncmp(b.data, "{\"type\":\"recovered\",\"rpc\":\"q1\","
					 "\"room\":\"r1\",\"seq\":7,", 46));
	buf_reset(&b);
	msgline_render(&b, &m[0], false, 0);
	one = b.len;
	buf_reset(&b);
	/* room for two messages and the fixed parts, not three */
	answer_recover(&b, &q, 7, m, 5, 250 + 2 * one, &cut);
	TEST("recover cut: the newest two, a gap for the rest",
	     cut.kept == 2 && cut.cut && strstr(b.data, "\"gap\":{\"from\":3,\"to\":5}") &&
		     b.len <= 250 + 2 * one);
	buf_reset(&b);
	m[2].seq = 4; /* a hole at 5 (pruned): the run stops there */
	answer_recover(&b, &q, 7, m, 5, 1 << 20, &cut);
	TEST("recover stops at a hole", cut.kept == 2 &&
					       strstr(b.data, "\"gap\":{\"from\":3,\"to\":5}"));
	buf_reset(&b);
	answer_recover(&b, &q, 9, m, 5, 1 << 20, &cut);
	TEST("recover: the newest stored is not LAST: all a gap",
	     cut.kept == 0 && strstr(b.data, "\"messages\":[],\"gap\":{\"from\":3,\"to\":9}"));
	buf_reset(&b);
	q.since = 7;
	answer_recover(&b, &q, 7, m, 0, 1 << 20, &cut);
	TEST("recover: nothing new", !strcmp(b.data, "{\"type\":\"recovered\",\"rpc\":\"q1\","
						     "\"room\":\"r1\",\"seq\":7,\"messages\":[],"
						     "\"route\":\"node.gw1\"}\n"));
	buf_reset(&b);

	q = qparse("{\"type\":\"history\",\"rpc\":\"h\",\"node\":\"gw1\",\"room\":\"r1\"}");
	for (i = 0; i < 5; i++)
		m[i] = msg(7 - (int64_t)i, body);
	answer_history(&b, &q, m, 3, false, 1 << 20, &cut);
	TEST("history: oldest first, more false",
	     cut.kept == 3 && strstr(b.data, "\"more\":false,\"route\":\"node.gw1\"}\n") &&
		     strstr(b.data, "\"seq\":5,") < strstr(b.data, "\"seq\":7,"));
	buf_reset(&b);
	answer_history(&b, &q, m, 3, false, 250 + one, &cut);
	TEST("history cut: the newest, more true",
	     cut.kept == 1 && cut.cut && strstr(b.data, "\"seq\":7,") &&
		     strstr(b.data, "\"more\":true"));
	buf_reset(&b);
	answer_history(&b, &q, m, 0, true, 1 << 20, &cut);
	TEST("history: empty page, older exist",
	     !strcmp(b.data, "{\"type\":\"history\",\"rpc\":\"h\",\"room\":\"r1\","
			     "\"messages\":[],\"more\":true,\"route\":\"node.gw1\"}\n"));
	buf_reset(&b);
	answer_error(&b, &q, "db \"down\"");
	TEST("error answer", !strcmp(b.data, "{\"type\":\"error\",\"rpc\":\"h\",\"room\":\"r1\","
					     "\"error\":\"db \\\"down\\\"\","
					     "\"route\":\"node.gw1\"}\n"));
	buf_release(&b);
}

int main(void)
{
	test_ingest();
	test_msgline();
	test_query();
	test_answers();
	return TEST_DONE();
}
