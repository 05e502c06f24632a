/*
 * session: `chat-cli connect` and `chat-cli send`, one WebSocket each.
 *
 * connect prints every frame from the server as one line on stdout and turns
 * stdin lines into requests (input.c decides what a line is). stdin is
 * adopted into the lws loop as a raw file, so there is one loop and no
 * thread; it is paused with lws_rx_flow_control() while the publishes in
 * flight reach --window or the send queue is full, which is how a burst on
 * stdin becomes backpressure instead of an ever-growing queue. At the end of
 * input the session waits for the acks of every publish it sent, then closes
 * with 1000.
 *
 * send joins one room, publishes one message, prints its ack and closes.
 *
 * The command line is read by session_args.c.
 *
 * Exit status: 0 after a normal close; 69 when the connection cannot be made;
 * 77 when the server refuses the credentials (HTTP 401/403, close 1008, an
 * unauthorized/forbidden error for send); 65 for another error to send; 75
 * when the connection is lost, closed otherwise, or acks time out; 74 when
 * stdout fails.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "buf.h"
#include "cli.h"
#include "jsonl.h"
#include "input.h"
#include "log.h"
#include "session.h"
#include "sig.h"

static void session_pump(struct session *s);

/* Leave the loop: lws_service() may be about to wait in poll() for fds
 * that have nothing more to say, so wake it. */
static void session_done(struct session *s)
{
	s->done = true;
	lws_cancel_service(s->ctx);
}

static void session_set_rc(struct session *s, int rc)
{
	if (!s->rc_set) {
		s->rc = rc;
		s->rc_set = true;
	}
}

static uint64_t session_inflight(const struct session *s)
{
	return s->npending + s->anon_len + json_object_size(s->catchup);
}

static int session_enqueue(struct session *s, const char *p, size_t len)
{
	struct outmsg *m = malloc(sizeof(*m) + LWS_PRE + len);

	if (!m)
		return -1;
	m->next = NULL;
	m->len = len;
	memcpy(m->data + LWS_PRE, p, len);
	if (s->q_tail)
		s->q_tail->next = m;
	else
		s->q_head = m;
	s->q_tail = m;
	s->q_len++;
	if (s->ws)
		lws_callback_on_writable(s->ws);
	return 0;
}

static void session_queue_free(struct session *s)
{
	struct outmsg *m, *next;

	for (m = s->q_head; m; m = next) {
		next = m->next;
		free(m);
	}
	s->q_head = s->q_tail = NULL;
	s->q_len = 0;
}

static void session_close_deadline(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_close);

	LOG_W("server did not finish the close handshake", NULL);
	session_done(s);
}

/* Close the WebSocket with 1000 once the queue is written (or at once when
 * rc says we are giving up). */
static void session_close(struct session *s)
{
	if (s->closing)
		return;
	s->closing = true;
	s->stopped = true;
	if (!s->ws) {
		session_done(s);
		return;
	}
	lws_callback_on_writable(s->ws);
	lws_sul_schedule(s->ctx, 0, &s->sul_close, session_close_deadline,
			 SESSION_CLOSE_GRACE_US);
}

static void session_timeout(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_timeout);

	if (s->mode == MODE_SEND) {
		LOG_F("timed out waiting for the ack", "url=%s timeout_ms=%llu",
		      log_q(s->url.text), (unsigned long long)s->timeout_ms);
	} else {
		LOG_F("timed out waiting for answers", "unanswered=%llu timeout_ms=%llu",
		      (unsigned long long)session_inflight(s),
		      (unsigned long long)s->timeout_ms);
	}
	session_set_rc(s, EX_TEMPFAIL);
	if (s->ws && s->established) {
		session_queue_free(s);
		session_close(s);
	} else {
		session_done(s);
	}
}

static void session_arm_timeout(struct session *s)
{
	lws_sul_schedule(s->ctx, 0, &s->sul_timeout, session_timeout,
			 (lws_usec_t)s->timeout_ms * 1000);
}

static void pending_add(struct session *s, const char *key)
{
	json_t *n = json_object_get(s->pending, key);

	json_object_set_new(s->pending, key,
			    json_integer(n ? json_integer_value(n) + 1 : 1));
	s->npending++;
}

static bool pending_take(struct session *s, const char *key)
{
	json_t *n = json_object_get(s->pending, key);

	if (!n)
		return false;
	if (json_integer_value(n) > 1)
		json_integer_set(n, json_integer_value(n) - 1);
	else
		json_object_del(s->pending, key);
	s->npending--;
	return true;
}

/* Forget the oldest request without ref awaiting type (NULL: the oldest
 * of any type, which an error without ref answers: the gateway answers
 * in order). Returns whether there was one. */
static bool anon_take(struct session *s, const char *type)
{
	uint64_t i;

	for (i = 0; i < s->anon_len; i++) {
		if (!type || !strcmp(s->anon[i], type)) {
			memmove(&s->anon[i], &s->anon[i + 1],
				(size_t)(s->anon_len - i - 1) * sizeof(*s->anon));
			s->anon_len--;
			return true;
		}
	}
	return false;
}

static void session_handle_line(struct session *s, const char *line, size_t len)
{
	struct line_req r;
	char ref[32], key[40], *frame;

	/* JSON text cannot carry a NUL byte; \u0000 is refused as well. */
	if (memchr(line, '\0', len)) {
		LOG_W("input line contains a NUL byte, skipped", NULL);
		return;
	}
	if (line_classify(line, len, s->text_only, &r) < 0) {
		LOG_W("input line is not valid UTF-8, skipped", NULL);
		return;
	}
	if (r.kind == LINE_RAW) {
		const char *reply = line_reply_type(r.type);

		if (session_enqueue(s, line, len) < 0) {
			LOG_W("out of memory, line skipped", NULL);
			goto out;
		}
		/* Wait for the answer of every request that has one. */
		if (reply && r.ref_key)
			pending_add(s, r.ref_key);
		else if (reply)
			s->anon[s->anon_len++] = reply;
		goto out;
	}
	if (s->nrooms == 0) {
		LOG_W("no --room to publish to, line skipped", NULL);
		goto out;
	}
	snprintf(ref, sizeof(ref), "%llu", (unsigned long long)++s->next_ref);
	snprintf(key, sizeof(key), "\"%s\"", ref);
	frame = line_publish(s->rooms[0], r.body, ref);
	if (!frame || session_enqueue(s, frame, strlen(frame)) < 0) {
		LOG_W("out of memory, line skipped", NULL);
	} else {
		pending_add(s, key);
		LOG_D("publish", "room=%s ref=%s", log_q(s->rooms[0]), ref);
	}
	free(frame);
out:
	line_req_free(&r);
}

/* Handle input lines while there is room, pause or resume stdin, and close
 * once input is over and every publish is answered. */
static void session_pump(struct session *s)
{
	const char *line;
	size_t len;
	bool starved = false;
	int r;

	if (s->mode != MODE_CONNECT || !s->established)
		return;
	while (!s->stopped) {
		if (s->q_len >= s->window || session_inflight(s) >= s->window)
			break;
		r = jsonl_next(&s->jl, &line, &len);
		if (r == JSONL_NONE) {
			starved = true;
			break;
		}
		if (r == JSONL_OVERLONG) {
			LOG_W("input line too long, skipped", "max=%d",
			      SESSION_LINE_MAX);
			continue;
		}
		session_handle_line(s, line, len);
	}
	if (s->in) {
		bool want = starved && !s->in_eof && !s->stopped;

		if (want != s->in_reading) {
			lws_rx_flow_control(s->in, want);
			s->in_reading = want;
		}
	}
	if (!s->input_done && (s->stopped || (starved && s->in_eof))) {
		s->input_done = true;
		LOG_I("end of input", "unanswered=%llu",
		      (unsigned long long)session_inflight(s));
		if (session_inflight(s))
			session_arm_timeout(s);
	}
	if (s->input_done && !s->closing && s->q_len == 0 &&
	    session_inflight(s) == 0) {
		lws_sul_cancel(&s->sul_timeout);
		session_close(s);
	}
}

static int session_print(struct session *s, const char *p, size_t len)
{
	char *compact = NULL;

	if (s->out_failed)
		return -1;
	/* Frames are one line each: re-serialise one that is not compact. */
	if (memchr(p, '\n', len) || memchr(p, '\r', len)) {
		json_t *v = json_loadb(p, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

		if (v)
			compact = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(v);
		if (!compact) {
			LOG_W("frame with a newline that is not JSON, skipped", NULL);
			return 0;
		}
		p = compact;
		len = strlen(compact);
	}
	if (fwrite(p, 1, len, stdout) != len || putchar('\n') == EOF ||
	    fflush(stdout) == EOF) {
		free(compact);
		LOG_F("unable to write to stdout", "err=%s",
		      log_q(strerror(errno)));
		s->out_failed = true;
		session_set_rc(s, EX_IOERR);
		session_queue_free(s);
		session_close(s);
		return -1;
	}
	free(compact);
	return 0;
}

static void session_frame_send(struct session *s, json_t *f, const char *type,
			       const char *p, size_t len)
{
	const char *code;
	char *key;

	if (!strcmp(type, "ack")) {
		key = line_ref_key(f);
		if (key && !strcmp(key, "\"1\"")) {
			lws_sul_cancel(&s->sul_timeout);
			if (session_print(s, p, len) == 0)
				session_set_rc(s, 0);
			session_close(s);
		}
		free(key);
	} else if (!strcmp(type, "error")) {
		code = json_string_value(json_object_get(f, "code"));
		lws_sul_cancel(&s->sul_timeout);
		session_print(s, p, len);
		LOG_F("server refused the message", "code=%s message=%s",
		      log_q(code),
		      log_q(json_string_value(json_object_get(f, "message"))));
		session_set_rc(s, code && (!strcmp(code, "unauthorized") ||
					   !strcmp(code, "forbidden")) ?
				  EX_NOPERM : EX_DATAERR);
		session_close(s);
	}
}

/* A join with since is answered once the recovered messages are in too:
 * joined says up to which seq they go (the newest always come; a gap is
 * the oldest). The room waits from its joined (our join's ref, taken) to
 * its message with that seq, live or recovered. Returns whether f ended a
 * room's wait. */
static bool session_catchup(struct session *s, json_t *f, const char *type,
			    bool joined_ours)
{
	const char *room = json_string_value(json_object_get(f, "room"));
	json_int_t seq = json_integer_value(json_object_get(f, "seq"));
	json_t *want, *gap;

	if (!room)
		return false;
	if (!strcmp(type, "joined")) {
		const char *ref = json_string_value(json_object_get(f, "ref"));

		if (!joined_ours || !ref || strncmp(ref, "join:", 5))
			return false; /* not one of --room's joins */
		gap = json_object_get(f, "gap");
		if (seq > 0 && (uint64_t)seq > s->since &&
		    json_integer_value(json_object_get(gap, "to")) < seq)
			json_object_set_new(s->catchup, room, json_integer(seq));
		return false;
	}
	if (strcmp(type, "message") || !(want = json_object_get(s->catchup, room)) ||
	    seq < json_integer_value(want))
		return false;
	json_object_del(s->catchup, room);
	return true;
}

static void session_frame(struct session *s, const char *p, size_t len)
{
	const char *type;
	bool resolved = false;
	json_t *f;
	char *key;

	if (s->mode == MODE_CONNECT && session_print(s, p, len) < 0)
		return;
	f = json_loadb(p, len, JSON_ALLOW_NUL, NULL);
	type = json_string_value(json_object_get(f, "type"));
	if (!type) {
		LOG_W("server sent a frame that is not a JSON object with a type",
		      NULL);
		json_decref(f);
		return;
	}
	if (s->mode == MODE_SEND) {
		if (!s->closing && strcmp(type, "authed")) /* the first answer decides */
			session_frame_send(s, f, type, p, len);
		json_decref(f);
		return;
	}
	key = line_ref_key(f);
	if (key)
		resolved = pending_take(s, key);
	else if (!strcmp(type, "error"))
		resolved = anon_take(s, NULL);
	else if (strcmp(type, "presence") || json_object_get(f, "users"))
		resolved = anon_take(s, type); /* not a presence change */
	if (!strcmp(type, "error")) {
		const char *code = json_string_value(json_object_get(f, "code"));
		/* Warn once per code; the rest at info (each is on stdout). */
		int lvl = json_object_get(s->codes_seen, code ? code : "") ?
			  LOG_INFO : LOG_WARN;

		json_object_set_new(s->codes_seen, code ? code : "", json_true());
		if (resolved)
			s->refused++;
		if (log_enabled(lvl))
			log_write(lvl, "server refused a request",
				  "code=%s message=%s ref=%s", log_q(code),
				  log_q(json_string_value(json_object_get(f,
								"message"))),
				  log_q(json_is_string(json_object_get(f, "ref")) ?
					json_string_value(json_object_get(f, "ref")) :
					key ? key : ""));
	}
	free(key);
	if (s->have_since && session_catchup(s, f, type, resolved))
		resolved = true;
	if (resolved) {
		if (s->input_done && session_inflight(s))
			session_arm_timeout(s); /* progress: wait on */
		session_pump(s);
	}
	json_decref(f);
}

static void session_established(struct session *s)
{
	char *frame;
	json_t *o, *body;
	int i;

	s->established = true;
	LOG_I("connected", "url=%s", log_q(s->url.text));
	if (s->auth_token) {
		/* The token in the first frame, not in the URL (which proxies
		 * and access logs keep). */
		o = json_pack("{s:s,s:s,s:s}", "type", "auth", "token", s->auth_token,
			      "ref", "auth");
		frame = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (frame)
			session_enqueue(s, frame, strlen(frame));
		free(frame);
		json_decref(o);
	}
	for (i = 0; i < s->nrooms; i++) {
		char ref[300];

		snprintf(ref, sizeof(ref), "join:%s", s->rooms[i]);
		o = json_pack("{s:s,s:s,s:s}", "type", "join", "room",
			      s->rooms[i], "ref", s->mode == MODE_SEND ? "join" : ref);
		if (o && s->have_since)
			json_object_set_new(o, "since", json_integer((json_int_t)s->since));
		frame = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (frame && session_enqueue(s, frame, strlen(frame)) == 0 &&
		    s->mode == MODE_CONNECT) {
			char *key = line_ref_key(o);

			if (key)
				pending_add(s, key); /* wait for joined */
			free(key);
		}
		free(frame);
		json_decref(o);
	}
	if (s->mode == MODE_SEND) {
		if (s->json_body)
			body = json_loads(s->message, JSON_DECODE_ANY, NULL);
		else
			body = json_string(s->message);
		frame = body ? line_publish(s->rooms[0], body, "1") : NULL;
		if (frame)
			session_enqueue(s, frame, strlen(frame));
		free(frame);
		json_decref(body);
		return;
	}
	if (!s->no_stdin) {
		lws_sock_file_fd_type fd = { .filefd = STDIN_FILENO };

		s->in = lws_adopt_descriptor_vhost(lws_get_vhost_by_name(s->ctx,
							"default"),
						   LWS_ADOPT_RAW_FILE_DESC, fd,
						   "chat-cli-stdin", NULL);
		if (!s->in) {
			LOG_W("unable to read stdin", NULL);
			s->in_eof = true;
			jsonl_finish(&s->jl);
		} else {
			s->in_reading = true;
		}
	}
	session_pump(s);
}

static void session_connect_error(struct session *s, struct lws *wsi,
				  const char *why)
{
	unsigned int status = 0;

	if (!strcmp(why, "HS: ws upgrade unauthorized"))
		status = 401;
	else if (!strcmp(why, "HS: ws upgrade response not 101"))
		status = lws_http_client_http_response(wsi);
	if (status == 401 || status == 403) {
		LOG_F("server refused the credentials", "url=%s status=%u",
		      log_q(s->url.text), status);
		session_set_rc(s, EX_NOPERM);
	} else if (status) {
		LOG_F("unable to connect", "url=%s status=%u err=%s",
		      log_q(s->url.text), status,
		      log_q("no WebSocket upgrade"));
		session_set_rc(s, EX_UNAVAILABLE);
	} else {
		char err[256];

		/* lws says only "Unable to connect": ask the system why. */
		if (cli_probe(s->url.host, s->url.port, err, sizeof(err)) == 0)
			snprintf(err, sizeof(err), "%s", why);
		LOG_F("unable to connect", "url=%s err=%s", log_q(s->url.text),
		      log_q(err));
		session_set_rc(s, EX_UNAVAILABLE);
	}
}

static void session_closed(struct session *s)
{
	uint64_t lost = session_inflight(s);

	lws_sul_cancel(&s->sul_close);
	lws_sul_cancel(&s->sul_timeout);
	if (s->peer_closed) {
		if (s->close_code == 1008)
			LOG_F("server refused the credentials", "url=%s code=1008 reason=%s",
			      log_q(s->url.text), log_q(s->close_reason));
		else
			LOG_W("connection closed by server", "code=%d reason=%s",
			      s->close_code, log_q(s->close_reason));
		if (s->mode == MODE_SEND && !s->rc_set) {
			session_set_rc(s, s->close_code == 1008 ? EX_NOPERM :
					  EX_TEMPFAIL);
		} else if (s->close_code == 1000) {
			if (lost) {
				LOG_F("requests left without answer", "unanswered=%llu",
				      (unsigned long long)lost);
				session_set_rc(s, EX_TEMPFAIL);
			}
			session_set_rc(s, 0);
		} else {
			session_set_rc(s, s->close_code == 1008 ? EX_NOPERM :
					  EX_TEMPFAIL);
		}
	} else if (s->we_closed) {
		session_set_rc(s, 0);
	} else {
		LOG_F("connection lost", "url=%s unanswered=%llu",
		      log_q(s->url.text), (unsigned long long)lost);
		session_set_rc(s, EX_TEMPFAIL);
	}
	if (s->mode == MODE_CONNECT && s->refused)
		LOG_W("requests refused by the server", "refused=%llu",
		      (unsigned long long)s->refused);
	s->ws = NULL;
	session_done(s);
}

static int session_ws_cb(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct session *s = lws_context_user(lws_get_context(wsi));
	struct outmsg *m;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!s->done) {
			session_connect_error(s, wsi, in ? (const char *)in :
					      "connection failed");
			s->ws = NULL;
			session_done(s);
		}
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		session_established(s);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi)) {
			buf_reset(&s->rx);
			s->rx_skip = false;
		}
		if (!s->rx_skip && buf_add(&s->rx, in, len) < 0) {
			LOG_W("frame from server too long, skipped", "max=%d",
			      SESSION_FRAME_MAX);
			s->rx_skip = true;
			buf_release(&s->rx);
		}
		if (lws_is_final_fragment(wsi) && !s->rx_skip) {
			session_frame(s, s->rx.data, s->rx.len);
			buf_reset(&s->rx);
		}
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (s->closing && (s->rc_set || !s->q_head)) {
			session_queue_free(s);
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			s->we_closed = true;
			return -1;
		}
		m = s->q_head;
		if (!m)
			break;
		s->q_head = m->next;
		if (!s->q_head)
			s->q_tail = NULL;
		s->q_len--;
		LOG_D("send", "frame=%s", log_q((char *)m->data + LWS_PRE));
		if (lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) <
		    (int)m->len) {
			free(m);
			LOG_F("unable to write to the server", "url=%s",
			      log_q(s->url.text));
			return -1;
		}
		free(m);
		if (s->q_head || s->closing)
			lws_callback_on_writable(wsi);
		session_pump(s);
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		s->peer_closed = true;
		if (len >= 2) {
			const unsigned char *b = in;
			size_t n = len - 2;

			s->close_code = b[0] << 8 | b[1];
			if (n >= sizeof(s->close_reason))
				n = sizeof(s->close_reason) - 1;
			memcpy(s->close_reason, b + 2, n);
			s->close_reason[n] = '\0';
		} else {
			s->close_code = 1005; /* no status */
		}
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (s->ws)
			session_closed(s);
		break;
	default:
		break;
	}
	return 0;
}

/* Read what stdin has; at its end, flush a last line without newline. */
static int session_stdin_read(struct session *s, bool closing)
{
	char tmp[65536];
	ssize_t n;

	for (;;) {
		n = read(STDIN_FILENO, tmp, sizeof(tmp));
		if (n > 0) {
			if (jsonl_feed(&s->jl, tmp, (size_t)n) < 0) {
				LOG_F("out of memory reading stdin", NULL);
				session_set_rc(s, EX_OSERR);
				session_close(s);
				return -1;
			}
			if (closing)
				continue; /* drain what a closed pipe still holds */
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !closing)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EBADF)
			LOG_W("unable to read stdin", "err=%s",
			      log_q(strerror(errno)));
		return -1; /* end of input */
	}
}

static int session_raw_cb(struct lws *wsi, enum lws_callback_reasons reason,
			  void *user, void *in, size_t len)
{
	struct session *s = lws_context_user(lws_get_context(wsi));
	int sig;

	if (wsi == s->sig) {
		if (reason == LWS_CALLBACK_RAW_RX_FILE) {
			while ((sig = sig_next()) != 0) {
				if (++s->signals > 1) {
					sig_reset();
					raise(sig);
				}
				LOG_I("signal: finishing", "signal=%d", sig);
				if (s->mode == MODE_SEND || !s->established) {
					session_set_rc(s, EX_TEMPFAIL);
					if (!s->established)
						session_done(s);
				}
				s->stopped = true;
				if (s->established)
					session_pump(s);
				if (s->mode == MODE_SEND)
					session_close(s);
			}
		} else if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
			s->sig = NULL;
		}
		return 0;
	}
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (session_stdin_read(s, false) < 0)
			return -1; /* end of input: RAW_CLOSE_FILE follows */
		session_pump(s);
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (s->in != wsi)
			break;
		if (!s->done)
			session_stdin_read(s, true);
		s->in = NULL;
		s->in_eof = true;
		jsonl_finish(&s->jl);
		if (!s->done)
			session_pump(s);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols session_protocols[] = {
	{ "chat.v1", session_ws_cb, 0, 0, 0, NULL, 0 },
	{ "chat-cli-stdin", session_raw_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static int session_run(struct session *s)
{
	static const int sigs[] = { SIGINT, SIGTERM, 0 };
	struct lws_client_connect_info ci;
	struct cli_ctx_opts co;
	lws_sock_file_fd_type fd;
	int sfd;

	memset(&co, 0, sizeof(co));
	co.protocols = session_protocols;
	co.timeout_s = (unsigned int)((s->timeout_ms + 999) / 1000);
	co.tls = s->url.tls;
	co.ca_file = s->ca_file;
	co.user = s;
	s->ctx = cli_ctx_new(&co);
	if (!s->ctx) {
		LOG_F("unable to create the lws context", NULL);
		return EX_OSERR;
	}
	sfd = sig_init(sigs);
	if (sfd >= 0) {
		fd.filefd = sfd;
		s->sig = lws_adopt_descriptor_vhost(lws_get_vhost_by_name(s->ctx,
							"default"),
						    LWS_ADOPT_RAW_FILE_DESC, fd,
						    "chat-cli-stdin", NULL);
	}
	if (s->mode == MODE_SEND)
		session_arm_timeout(s);
	memset(&ci, 0, sizeof(ci));
	ci.context = s->ctx;
	ci.address = s->url.host;
	ci.port = s->url.port;
	ci.path = s->url.path;
	ci.host = s->url.host;
	ci.origin = s->url.host;
	ci.protocol = "chat.v1";
	ci.local_protocol_name = "chat.v1";
	ci.ssl_connection = s->url.tls ? LCCSCF_USE_SSL : 0;
	if (s->url.tls && s->insecure)
		ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_EXPIRED |
				     LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_INSECURE;
	ci.pwsi = &s->ws;
	LOG_D("connecting", "host=%s port=%d path=%s", log_q(s->url.host),
	      s->url.port, log_q(s->url.path));
	if (!lws_client_connect_via_info(&ci) && !s->done) {
		char err[256];

		if (cli_probe(s->url.host, s->url.port, err, sizeof(err)) == 0)
			snprintf(err, sizeof(err), "connection failed");
		LOG_F("unable to connect", "url=%s err=%s", log_q(s->url.text),
		      log_q(err));
		session_set_rc(s, EX_UNAVAILABLE);
		s->done = true;
	}
	while (!s->done)
		if (lws_service(s->ctx, 0) < 0)
			break;
	s->done = true;
	lws_sul_cancel(&s->sul_timeout);
	lws_sul_cancel(&s->sul_close);
	lws_context_destroy(s->ctx);
	session_queue_free(s);
	return s->rc_set ? s->rc : EX_SOFTWARE;
}

static int session_main(enum session_mode mode, int argc, char **argv)
{
	struct session *s;
	char *tok = NULL;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return EX_OSERR;
	rc = session_args_parse(s, mode, argc, argv, &tok);
	if (rc >= 0)
		goto out;
	jsonl_init(&s->jl, SESSION_LINE_MAX);
	buf_init(&s->rx, SESSION_FRAME_MAX);
	s->pending = json_object();
	s->catchup = json_object();
	s->anon = calloc(s->window + 1, sizeof(*s->anon));
	s->codes_seen = json_object();
	if (!s->pending || !s->catchup || !s->anon || !s->codes_seen) {
		rc = EX_OSERR;
		goto out_free;
	}
	rc = session_run(s);
out_free:
	json_decref(s->codes_seen);
	free(s->anon);
	json_decref(s->pending);
	json_decref(s->catchup);
	buf_release(&s->rx);
	jsonl_free(&s->jl);
out:
	free(tok);
	free(s);
	return rc;
}

int cli_connect_main(int argc, char **argv)
{
	return session_main(MODE_CONNECT, argc, argv);
}

int cli_send_main(int argc, char **argv)
{
	return session_main(MODE_SEND, argc, argv);
}
