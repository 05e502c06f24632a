/*
 * frame: one server-to-client WebSocket text frame, header included,
 * reference counted. Fan-out serialises a message once into a frame and
 * queues the same frame on every recipient; the history ring holds it too.
 * Memory: frame_new() returns a frame with one reference; each holder calls
 * frame_unref() once; the last one frees it.
 */
#ifndef CHAT_GW_FRAME_H
#define CHAT_GW_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct frame {
	uint32_t refs;         /* holders */
	uint32_t len;          /* bytes in data: header plus payload */
	uint8_t hdr;           /* header bytes before the payload */
	uint64_t seq;          /* room seq for messages, 0 otherwise */
	struct frame *rec;     /* its recovered copy, made once, or NULL */
	unsigned char data[];  /* WebSocket header, then the JSON text */
};

/* A text frame carrying payload (n bytes). NULL when out of memory. */
struct frame *frame_new(const char *payload, size_t n);
/* The recovered copy of message frame f: the same text with
 * "recovered":true put first, made on first use and kept with f, so every
 * client that recovers it shares one. NULL when out of memory. The
 * reference is f's: take one of your own (frame_ref) to keep it. */
struct frame *frame_recovered(struct frame *f);
/* A ping frame (payload "p"): the same for everyone, one reference. */
struct frame *frame_new_ping(void);
/* When the object line (n bytes) carries bus members (route, node, tag,
 * confirm, conn, expire, rpc), write it without them to out and return 1;
 * return 0 when it carries none (use it as it is), -1 when it is not an
 * object or out is full. */
int frame_bus_clean(const char *line, size_t n, struct buf *out);
/* A text frame of a line from the bus (an object, n bytes, checked valid
 * by the caller) with seq: the line as it came, or, when it carries bus
 * members (route, node, tag, confirm, conn, expire, rpc), the line without
 * them, every other byte kept. NULL when it is not an object or out of
 * memory. */
struct frame *frame_from_bus(const char *line, size_t n, uint64_t seq);
static inline struct frame *frame_ref(struct frame *f) { f->refs++; return f; }
void frame_unref(struct frame *f);
static inline const char *frame_payload(const struct frame *f)
{
	return (const char *)f->data + f->hdr;
}
static inline size_t frame_payload_len(const struct frame *f)
{
	return f->len - f->hdr;
}

#endif
