/*
 * broker: the AMQP side of chat-relay over rabbitmq-c 0.11 (see broker.h).
 *
 * rabbitmq-c has no event API, so this file builds one: the socket is
 * polled by the relay's loop, and broker_next() pulls frames with
 * amqp_simple_wait_frame_noblock() and a zero timeout, assembling
 * basic.deliver + header + body frames into one delivery and turning
 * basic.ack/basic.nack into confirm events (there is no confirm-wait helper
 * in this version) and basic.return into return events. rabbitmq-c may read
 * frames while it sends (it queues them), hence broker_pending(). Frame memory
 * lives in rabbitmq-c's pools and is released as soon as a frame is
 * handled; a body is copied into the broker's own bounded buffer first.
 *
 * A mandatory publish that no queue takes comes back as basic.return (with
 * its properties) before its basic.ack; the return names the publish by the
 * message-id we gave it, its confirm seq, so that the relay can turn that
 * ack into a nack.
 */
#include "broker.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define BROKER_CHANNEL 1

enum { BODY_NONE, BODY_HEADER, BODY_DATA };

struct broker_url {
	char masked[512];                  /* URL with the password masked */
	char *copy;                        /* parsed copy (amqp_parse_url) */
	struct amqp_connection_info info;  /* points into copy */
};

struct broker {
	const struct relay_opts *o;        /* options, borrowed */
	struct broker_url urls[RELAY_URLS_MAX]; /* the brokers, in turn */
	int nurls;                         /* how many */
	int cur;                           /* URL in use, or last tried */
	bool ever_up;                      /* connected at least once */
	uint64_t failed;                   /* connection attempts failed */
	amqp_connection_state_t conn;      /* NULL when disconnected */
	uint64_t next_seq;                 /* confirm seq of the next publish */
	char queue[256];                   /* queue consumed, or "" */
	char ctag[256];                    /* consumer tag, or "" */
	int body_state;                    /* BODY_NONE/HEADER/DATA */
	bool body_discard;                 /* content of a basic.return */
	bool body_return;                  /* ... whose header is still due */
	char ret_why[320];                 /* that return's code, text, key */
	uint64_t body_tag;                 /* delivery tag being assembled */
	bool body_redelivered;             /* its redelivered flag */
	uint64_t body_size;                /* announced size */
	uint64_t body_got;                 /* bytes received so far */
	struct buf body;                   /* the body, at most max_line */
	char err[512];                     /* last error */
};

void broker_mask_url(const char *url, char *out, size_t outlen)
{
	size_t off, len;

	if (!relay_url_password(url, &off, &len)) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	snprintf(out, outlen, "%.*s***%s", (int)off, url, url + off + len);
}

static void broker_seterr(struct broker *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void broker_seterr(struct broker *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->err, sizeof(b->err), fmt, ap);
	va_end(ap);
}

/* Describe a failed RPC: library error or the broker's close reason. */
static void broker_seterr_rpc(struct broker *b, const char *what, amqp_rpc_reply_t r)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		broker_seterr(b, "%s: ok", what);
		break;
	case AMQP_RESPONSE_NONE:
		broker_seterr(b, "%s: no reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		broker_seterr(b, "%s: %s", what, amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *c = r.reply.decoded;

			broker_seterr(b, "%s: broker closed the connection: %u %.*s",
				   what, c->reply_code, (int)c->reply_text.len,
				   (char *)c->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *c = r.reply.decoded;

			broker_seterr(b, "%s: broker closed the channel: %u %.*s",
				   what, c->reply_code, (int)c->reply_text.len,
				   (char *)c->reply_text.bytes);
		} else {
			broker_seterr(b, "%s: unexpected method 0x%08x", what,
				   r.reply.id);
		}
		break;
	}
}

/* Parse url into u. Returns 0, or -1 with a reason in err. */
static int broker_url_parse(struct broker_url *u, const char *url, char *err,
			 size_t errlen)
{
	broker_mask_url(url, u->masked, sizeof(u->masked));
	u->copy = strdup(url);
	if (!u->copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	amqp_default_connection_info(&u->info);
	if (amqp_parse_url(u->copy, &u->info) != AMQP_STATUS_OK) {
		snprintf(err, errlen, "'%s' is not an AMQP URL "
			 "(amqp://user:pass@host:port/vhost or amqps://...)",
			 u->masked);
		return -1;
	}
	/* "amqp://host/" names the vhost "", which every client takes as "/". */
	if (!u->info.vhost || !*u->info.vhost)
		u->info.vhost = "/";
	return 0;
}

struct broker *broker_new(const struct relay_opts *o, char *err, size_t errlen)
{
	struct broker *b = calloc(1, sizeof(*b));
	int i;

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->o = o;
	buf_init(&b->body, o->max_line);
	for (i = 0; i < o->nurls && i < RELAY_URLS_MAX; i++) {
		b->nurls++;
		if (broker_url_parse(&b->urls[i], o->urls[i], err, errlen) < 0) {
			broker_free(b);
			return NULL;
		}
	}
	if (b->nurls == 0) {
		snprintf(err, errlen, "no broker URL");
		broker_free(b);
		return NULL;
	}
	return b;
}

void broker_free(struct broker *b)
{
	int i;

	if (!b)
		return;
	broker_disconnect(b, false);
	buf_release(&b->body);
	for (i = 0; i < b->nurls; i++)
		free(b->urls[i].copy);
	free(b);
}

bool broker_connected(const struct broker *b)
{
	return b->conn != NULL;
}

const char *broker_error(const struct broker *b)
{
	return b->err;
}

const char *broker_url(const struct broker *b)
{
	return b->urls[b->cur].masked;
}

int broker_index(const struct broker *b)
{
	return b->cur;
}

uint64_t broker_failed_attempts(const struct broker *b)
{
	return b->failed;
}

const char *broker_queue(const struct broker *b)
{
	return b->queue;
}

int broker_fd(const struct broker *b)
{
	return b->conn ? amqp_get_sockfd(b->conn) : -1;
}

bool broker_pending(const struct broker *b)
{
	return b->conn &&
	       (amqp_frames_enqueued(b->conn) || amqp_data_in_buffer(b->conn));
}

void broker_disconnect(struct broker *b, bool graceful)
{
	if (!b->conn)
		return;
	if (graceful) {
		amqp_channel_close(b->conn, BROKER_CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(b->conn);
	b->conn = NULL;
	b->body_state = BODY_NONE;
	buf_reset(&b->body);
}

/* Declare a durable topic exchange, unless it is the default exchange or a
 * predeclared amq.* one (declaring those is refused). */
static int broker_declare_exchange(struct broker *b, const char *name)
{
	amqp_rpc_reply_t r;

	if (!*name || !strncmp(name, "amq.", 4))
		return 0;
	amqp_exchange_declare(b->conn, BROKER_CHANNEL, amqp_cstring_bytes(name),
			      amqp_cstring_bytes("topic"), 0, 1, 0, 0,
			      amqp_empty_table);
	r = amqp_get_rpc_reply(b->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		char what[300];

		snprintf(what, sizeof(what), "unable to declare exchange '%s'",
			 name);
		broker_seterr_rpc(b, what, r);
		return -1;
	}
	return 0;
}

/* Whether name is an ingest shard queue, chat.ingest.K: those are
 * declared with single-active-consumer, by whichever relay declares them. */
static bool broker_is_ingest_queue(const char *name)
{
	size_t n = strlen(RELAY_INGEST_QUEUE);

	return !strncmp(name, RELAY_INGEST_QUEUE, n) && name[n] &&
	       strspn(name + n, "0123456789") == strlen(name + n);
}

/* Declare queue name (durable unless exclusive; quorum under --quorum;
 * single-active-consumer when it is an ingest shard, or the --queue of
 * --single-active); the broker's name
 * for it goes to out (outlen bytes). */
static int broker_declare_queue(struct broker *b, const char *name, bool exclusive,
			     char *out, size_t outlen)
{
	amqp_table_entry_t e[2];
	amqp_table_t args = { 0, e };
	amqp_queue_declare_ok_t *ok;
	amqp_rpc_reply_t r;
	char what[300];

	if (b->o->quorum && !exclusive) {
		e[args.num_entries].key = amqp_cstring_bytes("x-queue-type");
		e[args.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
		e[args.num_entries].value.value.bytes = amqp_cstring_bytes("quorum");
		args.num_entries++;
	}
	if (broker_is_ingest_queue(name) ||
	    (b->o->single_active && b->o->queue && !strcmp(name, b->o->queue))) {
		e[args.num_entries].key = amqp_cstring_bytes("x-single-active-consumer");
		e[args.num_entries].value.kind = AMQP_FIELD_KIND_BOOLEAN;
		e[args.num_entries].value.value.boolean = 1;
		args.num_entries++;
	}
	ok = amqp_queue_declare(b->conn, BROKER_CHANNEL, amqp_cstring_bytes(name),
				0, !exclusive, exclusive, exclusive, args);
	r = amqp_get_rpc_reply(b->conn);
	if (!ok || r.reply_type != AMQP_RESPONSE_NORMAL) {
		snprintf(what, sizeof(what), "unable to declare queue '%s'",
			 name);
		broker_seterr_rpc(b, what, r);
		return -1;
	}
	if (out)
		snprintf(out, outlen, "%.*s", (int)ok->queue.len,
			 (char *)ok->queue.bytes);
	return 0;
}

static int broker_bind(struct broker *b, const char *queue, const char *exchange,
		    const char *key)
{
	amqp_rpc_reply_t r;
	char what[600];

	amqp_queue_bind(b->conn, BROKER_CHANNEL, amqp_cstring_bytes(queue),
			amqp_cstring_bytes(exchange), amqp_cstring_bytes(key),
			amqp_empty_table);
	r = amqp_get_rpc_reply(b->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		snprintf(what, sizeof(what),
			 "unable to bind queue '%s' to '%s' with '%s'", queue,
			 exchange, key);
		broker_seterr_rpc(b, what, r);
		return -1;
	}
	return 0;
}

/* Everything the options name: the fan-out exchange and the ingest shard
 * queues always (so that a publish made before any archive runs is kept),
 * the publish exchange, the queue and its bindings, and in child mode with
 * an exclusive queue the node's own key. */
static int broker_declare(struct broker *b)
{
	const struct relay_opts *o = b->o;
	char name[64], key[RELAY_ROUTE_MAX + 1];
	unsigned k;
	int i;

	if (broker_declare_exchange(b, RELAY_FANOUT_EXCHANGE) < 0)
		return -1;
	for (k = 0; k < o->ingest_shards; k++) {
		snprintf(name, sizeof(name), RELAY_INGEST_QUEUE "%u", k);
		snprintf(key, sizeof(key), RELAY_INGEST_KEY "%u", k);
		if (broker_declare_queue(b, name, false, NULL, 0) < 0 ||
		    broker_bind(b, name, RELAY_FANOUT_EXCHANGE, key) < 0)
			return -1;
	}
	if (o->publish && strcmp(o->exchange, RELAY_FANOUT_EXCHANGE) &&
	    broker_declare_exchange(b, o->exchange) < 0)
		return -1;
	b->queue[0] = '\0';
	if (!o->queue && o->nbinds == 0 && !o->exclusive)
		return 0;
	if (broker_declare_queue(b, o->queue ? o->queue : "",
			      o->exclusive || !o->queue, b->queue,
			      sizeof(b->queue)) < 0)
		return -1;
	/* A shard queue past --ingest-shards (its archive was started with a
	 * larger count) is still bound to its own key. */
	if (o->queue && broker_is_ingest_queue(o->queue)) {
		snprintf(key, sizeof(key), RELAY_INGEST_KEY "%s",
			 o->queue + strlen(RELAY_INGEST_QUEUE));
		if (broker_bind(b, b->queue, RELAY_FANOUT_EXCHANGE, key) < 0)
			return -1;
	}
	for (i = 0; i < o->nbinds; i++) {
		if (strcmp(o->binds[i].exchange, RELAY_FANOUT_EXCHANGE) &&
		    broker_declare_exchange(b, o->binds[i].exchange) < 0)
			return -1;
		if (broker_bind(b, b->queue, o->binds[i].exchange,
			     o->binds[i].key) < 0)
			return -1;
	}
	if (o->mode == RELAY_CHILD && o->exclusive) {
		snprintf(key, sizeof(key), RELAY_NODE_KEY "%s", o->node);
		if (broker_bind(b, b->queue, RELAY_FANOUT_EXCHANGE, key) < 0)
			return -1;
	}
	return 0;
}

static int broker_consume(struct broker *b)
{
	amqp_basic_consume_ok_t *ok;
	amqp_rpc_reply_t r;

	amqp_basic_qos(b->conn, BROKER_CHANNEL, 0, (uint16_t)b->o->prefetch, 0);
	r = amqp_get_rpc_reply(b->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		broker_seterr_rpc(b, "unable to set the prefetch count", r);
		return -1;
	}
	ok = amqp_basic_consume(b->conn, BROKER_CHANNEL,
				amqp_cstring_bytes(b->queue), amqp_empty_bytes,
				0, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(b->conn);
	if (!ok || r.reply_type != AMQP_RESPONSE_NORMAL) {
		char what[300];

		snprintf(what, sizeof(what), "unable to consume from '%s'",
			 b->queue);
		broker_seterr_rpc(b, what, r);
		return -1;
	}
	snprintf(b->ctag, sizeof(b->ctag), "%.*s", (int)ok->consumer_tag.len,
		 (char *)ok->consumer_tag.bytes);
	return 0;
}

/* The socket for u: TCP, or TLS verifying the broker's certificate
 * against --ca (else the system's CAs) and its name against the URL's host,
 * unless --insecure. NULL with the error set. */
static amqp_socket_t *broker_socket(struct broker *b, const struct broker_url *u)
{
	const struct relay_opts *o = b->o;
	amqp_socket_t *sock;

	if (!u->info.ssl) {
		sock = amqp_tcp_socket_new(b->conn);
		if (!sock)
			broker_seterr(b, "out of memory");
		return sock;
	}
	sock = amqp_ssl_socket_new(b->conn);
	if (!sock) {
		broker_seterr(b, "unable to set up TLS for '%s'", u->masked);
		return NULL;
	}
	if (amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2,
					     AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
		broker_seterr(b, "unable to require TLS 1.2 for '%s'", u->masked);
		return NULL;
	}
	if (o->ca_file) {
		if (amqp_ssl_socket_set_cacert(sock, o->ca_file) != AMQP_STATUS_OK) {
			broker_seterr(b, "unable to load CA certificates from '%s'",
				   o->ca_file);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(
			   amqp_ssl_socket_get_context(sock)) != 1) {
		broker_seterr(b, "unable to load the system's CA certificates");
		return NULL;
	}
	amqp_ssl_socket_set_verify_peer(sock, !o->insecure);
	amqp_ssl_socket_set_verify_hostname(sock, !o->insecure);
	return sock;
}

/* One attempt on URL number i. */
static int broker_connect_one(struct broker *b, int i)
{
	const struct relay_opts *o = b->o;
	const struct broker_url *u = &b->urls[i];
	struct timeval tv = {
		.tv_sec = (time_t)(o->connect_timeout_ms / 1000),
		.tv_usec = (suseconds_t)(o->connect_timeout_ms % 1000) * 1000,
	};
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	int st, saved;

	broker_disconnect(b, false);
	b->cur = i;
	b->conn = amqp_new_connection();
	if (!b->conn) {
		broker_seterr(b, "out of memory");
		return -1;
	}
	sock = broker_socket(b, u);
	if (!sock)
		goto out_destroy;
	errno = 0;
	st = amqp_socket_open_noblock(sock, u->info.host, u->info.port, &tv);
	saved = errno;
	if (st != AMQP_STATUS_OK) {
		/* errno tells only when connect() itself failed; after
		 * EINPROGRESS rabbitmq-c keeps the socket error to itself. */
		if (st == AMQP_STATUS_SOCKET_ERROR && saved &&
		    saved != EINPROGRESS)
			broker_seterr(b, "unable to connect to '%s': %s", u->masked,
				   strerror(saved));
		else
			broker_seterr(b, "unable to connect to '%s': %s", u->masked,
				   amqp_error_string2(st));
		goto out_destroy;
	}
	amqp_set_handshake_timeout(b->conn, &tv);
	amqp_set_rpc_timeout(b->conn, &tv);
	r = amqp_login(b->conn, u->info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE,
		       (int)o->heartbeat_s, AMQP_SASL_METHOD_PLAIN,
		       u->info.user, u->info.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		char what[600];

		snprintf(what, sizeof(what), "unable to log in to '%s'",
			 u->masked);
		broker_seterr_rpc(b, what, r);
		goto out_destroy;
	}
	amqp_channel_open(b->conn, BROKER_CHANNEL);
	r = amqp_get_rpc_reply(b->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		broker_seterr_rpc(b, "unable to open a channel", r);
		goto out_destroy;
	}
	if (o->publish) {
		amqp_confirm_select(b->conn, BROKER_CHANNEL);
		r = amqp_get_rpc_reply(b->conn);
		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			broker_seterr_rpc(b, "unable to select publisher confirms",
				       r);
			goto out_destroy;
		}
	}
	if (broker_declare(b) < 0)
		goto out_destroy;
	if (o->consume && broker_consume(b) < 0)
		goto out_destroy;
	b->next_seq = 1;
	b->body_state = BODY_NONE;
	buf_reset(&b->body);
	amqp_maybe_release_buffers(b->conn);
	return 0;
out_destroy:
	amqp_destroy_connection(b->conn);
	b->conn = NULL;
	return -1;
}

int broker_connect(struct broker *b)
{
	int i, first = b->ever_up ? (b->cur + 1) % b->nurls : 0;

	for (i = 0; i < b->nurls; i++) {
		int k = (first + i) % b->nurls;

		if (broker_connect_one(b, k) == 0) {
			b->ever_up = true;
			return 0;
		}
		b->failed++;
		if (b->nurls > 1)
			LOG_I("unable to connect", "url=%s err=%s",
			      log_q(b->urls[k].masked), log_q(b->err));
	}
	return -1;
}

/* The connection failed: remember why and drop it. */
static int broker_lost(struct broker *b, const char *what, int status)
{
	broker_seterr(b, "%s: %s", what, amqp_error_string2(status));
	broker_disconnect(b, false);
	return -1;
}

static int broker_method(struct broker *b, amqp_frame_t *f, struct broker_event *ev)
{
	amqp_method_t *m = &f->payload.method;

	switch (m->id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = m->decoded;

		ev->type = BROKER_EV_ACK;
		ev->tag = a->delivery_tag;
		ev->multiple = a->multiple;
		return 1;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = m->decoded;

		ev->type = BROKER_EV_NACK;
		ev->tag = n->delivery_tag;
		ev->multiple = n->multiple;
		return 1;
	}
	case AMQP_BASIC_DELIVER_METHOD: {
		amqp_basic_deliver_t *d = m->decoded;

		b->body_state = BODY_HEADER;
		b->body_discard = false;
		b->body_return = false;
		b->body_tag = d->delivery_tag;
		b->body_redelivered = d->redelivered;
		return 0;
	}
	case AMQP_BASIC_RETURN_METHOD: {
		amqp_basic_return_t *rt = m->decoded;

		/* A mandatory publish no queue took: its header (which names
		 * it) and its body follow; the body is skipped. */
		b->body_state = BODY_HEADER;
		b->body_discard = true;
		b->body_return = true;
		snprintf(b->ret_why, sizeof(b->ret_why), "%u %.*s route=%.*s",
			 rt->reply_code, (int)rt->reply_text.len,
			 (char *)rt->reply_text.bytes, (int)rt->routing_key.len,
			 (char *)rt->routing_key.bytes);
		return 0;
	}
	case AMQP_BASIC_CANCEL_METHOD:
		broker_seterr(b, "the broker cancelled the consumer of '%s' "
			   "(queue deleted?)", b->queue);
		broker_disconnect(b, false);
		return -1;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *c = m->decoded;
		amqp_channel_close_ok_t ok = { 0 };

		broker_seterr(b, "broker closed the channel: %u %.*s",
			   c->reply_code, (int)c->reply_text.len,
			   (char *)c->reply_text.bytes);
		amqp_send_method(b->conn, BROKER_CHANNEL,
				 AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		broker_disconnect(b, false);
		return -1;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *c = m->decoded;
		amqp_connection_close_ok_t ok = { 0 };

		broker_seterr(b, "broker closed the connection: %u %.*s",
			   c->reply_code, (int)c->reply_text.len,
			   (char *)c->reply_text.bytes);
		amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD,
				 &ok);
		broker_disconnect(b, false);
		return -1;
	}
	case AMQP_CONNECTION_BLOCKED_METHOD:
		LOG_W("broker blocked publishing (resource alarm)", NULL);
		return 0;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		LOG_W("broker unblocked publishing", NULL);
		return 0;
	default:
		LOG_D("ignored method", "id=0x%08x", m->id);
		return 0;
	}
}

/* The header of a returned publish: its message-id is its confirm seq. */
static int broker_returned(struct broker *b, const amqp_frame_t *f,
			struct broker_event *ev)
{
	const amqp_basic_properties_t *p = f->payload.properties.decoded;
	char id[24];

	b->body_return = false;
	memset(ev, 0, sizeof(*ev));
	ev->type = BROKER_EV_RETURN;
	if (p && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
	    p->message_id.len > 0 && p->message_id.len < sizeof(id)) {
		char *end;

		memcpy(id, p->message_id.bytes, p->message_id.len);
		id[p->message_id.len] = '\0';
		ev->tag = strtoull(id, &end, 10);
		if (*end)
			ev->tag = 0;
	}
	ev->body = b->ret_why;
	ev->len = strlen(b->ret_why);
	return 1;
}

/* Finish the delivery being assembled. */
static int broker_delivered(struct broker *b, struct broker_event *ev)
{
	b->body_state = BODY_NONE;
	if (b->body_discard)
		return 0;
	ev->type = BROKER_EV_DELIVERY;
	ev->tag = b->body_tag;
	ev->redelivered = b->body_redelivered;
	ev->size = b->body_size;
	/* Not kept whole (over max_line, or out of memory): the caller
	 * rejects it rather than hand on a cut body. */
	ev->oversize = b->body_size > b->o->max_line ||
		       b->body.len != b->body_size;
	ev->body = b->body.data;
	ev->len = b->body.len;
	return 1;
}

int broker_next(struct broker *b, struct broker_event *ev)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;
	int st, r;

	if (!b->conn) {
		broker_seterr(b, "not connected");
		return -1;
	}
	for (;;) {
		st = amqp_simple_wait_frame_noblock(b->conn, &f, &zero);
		if (st == AMQP_STATUS_TIMEOUT)
			return 0;
		if (st != AMQP_STATUS_OK)
			return broker_lost(b, "lost the broker", st);
		r = 0;
		switch (f.frame_type) {
		case AMQP_FRAME_METHOD:
			r = broker_method(b, &f, ev);
			if (r < 0)
				return -1;
			break;
		case AMQP_FRAME_HEADER:
			if (b->body_state != BODY_HEADER)
				break;
			b->body_size = f.payload.properties.body_size;
			b->body_got = 0;
			buf_reset(&b->body);
			if (b->body_return) {
				r = broker_returned(b, &f, ev);
				b->body_state = b->body_size ? BODY_DATA : BODY_NONE;
			} else if (b->body_size == 0) {
				r = broker_delivered(b, ev);
			} else {
				b->body_state = BODY_DATA;
			}
			break;
		case AMQP_FRAME_BODY: {
			amqp_bytes_t *frag = &f.payload.body_fragment;

			if (b->body_state != BODY_DATA)
				break;
			b->body_got += frag->len;
			/* Keep the bytes only while they fit: an oversize body
			 * is reported (and rejected by the caller) whole. */
			if (!b->body_discard && b->body_size <= b->o->max_line)
				(void)buf_add(&b->body, frag->bytes, frag->len);
			if (b->body_got >= b->body_size)
				r = broker_delivered(b, ev);
			break;
		}
		default:
			break; /* heartbeats */
		}
		amqp_maybe_release_buffers(b->conn);
		if (r)
			return 1;
	}
}

int broker_publish(struct broker *b, const char *exchange, const char *route,
		const void *body, size_t len, uint32_t expire_ms,
		bool mandatory, uint64_t *seq)
{
	amqp_basic_properties_t props;
	amqp_bytes_t bytes = { len, (void *)body };
	char expiration[16], id[24];
	int st;

	if (!b->conn) {
		broker_seterr(b, "not connected");
		return -1;
	}
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	if (expire_ms) {
		snprintf(expiration, sizeof(expiration), "%" PRIu32, expire_ms);
		props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
		props.expiration = amqp_cstring_bytes(expiration);
	}
	if (mandatory) {
		snprintf(id, sizeof(id), "%" PRIu64, b->next_seq);
		props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		props.message_id = amqp_cstring_bytes(id);
	}
	st = amqp_basic_publish(b->conn, BROKER_CHANNEL, amqp_cstring_bytes(exchange),
				amqp_cstring_bytes(route), mandatory, 0, &props,
				bytes);
	if (st != AMQP_STATUS_OK)
		return broker_lost(b, "unable to publish", st);
	*seq = b->next_seq++;
	return 0;
}

int broker_ack(struct broker *b, uint64_t tag, bool multiple)
{
	int st;

	if (!b->conn)
		return -1;
	st = amqp_basic_ack(b->conn, BROKER_CHANNEL, tag, multiple);
	if (st != AMQP_STATUS_OK)
		return broker_lost(b, "unable to ack", st);
	return 0;
}

int broker_reject(struct broker *b, uint64_t tag, bool requeue)
{
	int st;

	if (!b->conn)
		return -1;
	st = amqp_basic_reject(b->conn, BROKER_CHANNEL, tag, requeue);
	if (st != AMQP_STATUS_OK)
		return broker_lost(b, "unable to reject", st);
	return 0;
}

int broker_cancel(struct broker *b)
{
	amqp_basic_cancel_t c;
	int st;

	if (!b->conn || !b->ctag[0])
		return 0;
	c.consumer_tag = amqp_cstring_bytes(b->ctag);
	c.nowait = 1;
	st = amqp_send_method(b->conn, BROKER_CHANNEL, AMQP_BASIC_CANCEL_METHOD, &c);
	b->ctag[0] = '\0';
	if (st != AMQP_STATUS_OK)
		return broker_lost(b, "unable to cancel the consumer", st);
	return 0;
}
