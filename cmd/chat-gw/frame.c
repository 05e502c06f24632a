/*
 * frame: shared, pre-framed WebSocket text frames (see frame.h). The server
 * never masks, so the header is the same for every recipient and is built
 * once; the writer copies whole frames back to back into one write.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "skim.h"

/* Members a relay may leave in a line that a client must not see. */
static const char *const bus_members[] = {
	"route", "node", "tag", "confirm", "conn", "expire", "rpc",
};
#define NBUS_MEMBERS ((int)(sizeof(bus_members) / sizeof(bus_members[0])))

struct frame *frame_new(const char *payload, size_t n)
{
	struct frame *f;
	uint8_t hdr[10];
	size_t h;

	hdr[0] = 0x81; /* FIN, text */
	if (n < 126) {
		hdr[1] = (uint8_t)n;
		h = 2;
	} else if (n < 65536) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(n >> 8);
		hdr[3] = (uint8_t)n;
		h = 4;
	} else {
		int i;

		hdr[1] = 127;
		for (i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		h = 10;
	}
	if (n > UINT32_MAX - h)
		return NULL;
	f = malloc(sizeof(*f) + h + n + 1);
	if (!f)
		return NULL;
	f->refs = 1;
	f->len = (uint32_t)(h + n);
	f->hdr = (uint8_t)h;
	f->seq = 0;
	f->rec = NULL;
	memcpy(f->data, hdr, h);
	memcpy(f->data + h, payload, n);
	f->data[h + n] = '\0';
	return f;
}

struct frame *frame_new_ping(void)
{
	struct frame *f = malloc(sizeof(*f) + 4);

	if (!f)
		return NULL;
	f->refs = 1;
	f->len = 3;
	f->hdr = 2;
	f->seq = 0;
	f->rec = NULL;
	f->data[0] = 0x89; /* FIN, ping */
	f->data[1] = 1;    /* one byte: libwebsockets reports empty pongs to no one */
	f->data[2] = 'p';
	f->data[3] = '\0';
	return f;
}

void frame_unref(struct frame *f)
{
	if (f && --f->refs == 0) {
		frame_unref(f->rec);
		free(f);
	}
}

struct frame *frame_recovered(struct frame *f)
{
	static const char flag[] = "{\"recovered\":true,";
	const char *p = frame_payload(f);
	size_t n = frame_payload_len(f);
	char *text;

	if (f->rec)
		return f->rec;
	if (n < 3 || p[0] != '{')
		return NULL; /* (a message has members) */
	text = malloc(sizeof(flag) + n);
	if (!text)
		return NULL;
	memcpy(text, flag, sizeof(flag) - 1);
	memcpy(text + sizeof(flag) - 1, p + 1, n - 1);
	f->rec = frame_new(text, sizeof(flag) - 1 + n - 1);
	free(text);
	if (f->rec)
		f->rec->seq = f->seq;
	return f->rec;
}

int frame_bus_clean(const char *line, size_t n, struct buf *out)
{
	struct skim_field f[NBUS_MEMBERS];
	int i, found = 0;

	for (i = 0; i < NBUS_MEMBERS; i++)
		f[i].name = bus_members[i];
	if (skim_object(line, n, f, NBUS_MEMBERS) < 0)
		return -1;
	for (i = 0; i < NBUS_MEMBERS; i++)
		found += f[i].v != NULL;
	if (!found)
		return 0;
	if (skim_without(line, n, bus_members, NBUS_MEMBERS, out) < 0 || out->err)
		return -1;
	return 1;
}

struct frame *frame_from_bus(const char *line, size_t n, uint64_t seq)
{
	struct buf b = BUF_INIT(0);
	struct frame *fr;

	switch (frame_bus_clean(line, n, &b)) {
	case 0:
		fr = frame_new(line, n); /* the usual case: as it came */
		break;
	case 1:
		fr = frame_new(b.data, b.len);
		break;
	default:
		fr = NULL;
		break;
	}
	buf_release(&b);
	if (fr)
		fr->seq = seq;
	return fr;
}
