/*
 * broker: chat-relay's one AMQP connection, over rabbitmq-c, shaped for a
 * poll() loop: connect (blocking, bounded by the connect timeout, to the
 * first of the brokers that answers, over TCP or TLS), declare what the
 * options name, then publish without waiting and pull events (confirms,
 * returns, deliveries) without blocking. One channel carries everything.
 * Memory: a struct broker owns its connection; an event's body points into the
 * bus and is valid until the next broker_next() call.
 */
#ifndef CHAT_RELAY_BROKER_H
#define CHAT_RELAY_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay.h"

enum broker_ev_type {
	BROKER_EV_ACK,       /* publisher confirm: basic.ack */
	BROKER_EV_NACK,      /* publisher confirm: basic.nack */
	BROKER_EV_DELIVERY,  /* a whole message from the consumed queue */
	BROKER_EV_RETURN,    /* basic.return of a mandatory publish (tag: its
			     confirm seq, 0 if unknown; body: the reason) */
};

struct broker_event {
	enum broker_ev_type type; /* which event */
	uint64_t tag;          /* confirm seq or delivery tag */
	bool multiple;         /* ack/nack covers every seq up to tag */
	bool redelivered;      /* delivery: the broker delivered it before */
	bool oversize;         /* delivery: body over max_line, not kept */
	uint64_t size;         /* delivery: body size announced */
	const char *body;      /* delivery: body bytes (NUL-terminated) */
	size_t len;            /* delivery: body length */
};

struct broker;

/* Make a bus for o (o must outlive it). NULL with a reason in err when a
 * URL does not parse or memory is short. */
struct broker *broker_new(const struct relay_opts *o, char *err, size_t errlen);
void broker_free(struct broker *b);
/* Connect, log in, open the channel, select confirms, declare and bind,
 * start consuming: to the first URL that answers, trying each once, from
 * the first at the first call and from the one after the last broker used
 * afterwards. Blocks up to the connect timeout per step and URL. Returns 0,
 * or -1 with broker_error() set to the last failure (the bus is then
 * disconnected). */
int broker_connect(struct broker *b);
/* Close the connection: politely (channel.close, connection.close) when
 * graceful, else just the socket. Does nothing when not connected. */
void broker_disconnect(struct broker *b, bool graceful);
bool broker_connected(const struct broker *b);
/* The last error, for logs. */
const char *broker_error(const struct broker *b);
/* The URL in use (or last tried) with the password masked, for logs. */
const char *broker_url(const struct broker *b);
/* Index of that URL among the options' URLs. */
int broker_index(const struct broker *b);
/* Connection attempts that failed so far, one per URL tried. */
uint64_t broker_failed_attempts(const struct broker *b);
/* The queue consumed (server-named ones too), or "" when none. */
const char *broker_queue(const struct broker *b);
/* The socket to poll for POLLIN, -1 when disconnected. */
int broker_fd(const struct broker *b);
/* True when rabbitmq-c holds input already read from the socket: the loop
 * must call broker_next() without waiting for the socket. */
bool broker_pending(const struct broker *b);
/* Pull the next event without blocking. Returns 1 with *ev set, 0 when no
 * event is ready, -1 when the connection is lost (broker_error() says why;
 * the bus is disconnected). Also sends heartbeats when due. */
int broker_next(struct broker *b, struct broker_event *ev);
/* Publish body (persistent, application/json) with routing key route to
 * exchange, with the expiration expire_ms (0: none), mandatory or not (a
 * mandatory publish carries its seq as message-id, so that its return names
 * it); *seq gets its confirm sequence number. Returns 0 or -1 (lost). */
int broker_publish(struct broker *b, const char *exchange, const char *route,
		const void *body, size_t len, uint32_t expire_ms,
		bool mandatory, uint64_t *seq);
/* basic.ack, or basic.reject (with requeue). Return 0 or -1 (lost). */
int broker_ack(struct broker *b, uint64_t tag, bool multiple);
int broker_reject(struct broker *b, uint64_t tag, bool requeue);
/* Stop the consumer (basic.cancel, nowait). Returns 0 or -1 (lost). */
int broker_cancel(struct broker *b);

/* Write url into out (outlen bytes) with the password replaced by "***". */
void broker_mask_url(const char *url, char *out, size_t outlen);

#endif
