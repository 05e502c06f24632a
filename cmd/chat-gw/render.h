/*
 * render: the text of every frame chat-gw sends a client, one function per
 * frame type, so a reply looks the same whether the gateway made it itself
 * (standalone) or from a bus answer. Each function appends to a buf; a
 * failed append sticks in the buf's err, which the caller checks once per
 * frame. Room and user names need no escaping (lib/name.h keeps them to
 * safe characters); texts that may hold anything are escaped here.
 * Arguments: ref is the request's ref as JSON text, or NULL when it had
 * none; arrays (messages, users) are given as JSON array text.
 */
#ifndef CHAT_GW_RENDER_H
#define CHAT_GW_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "map.h"

/* {"type":"joined","room":R,"ref":X,"seq":N,"gap":{"from":A,"to":B}}; the
 * gap only when from is not 0. */
void render_joined(struct buf *b, const char *room, const char *ref, uint64_t seq,
		   uint64_t gap_from, uint64_t gap_to);
/* {"type":"left","room":R,"ref":X} */
void render_left(struct buf *b, const char *room, const char *ref);
/* {"type":"ack","ref":X,"id":ID,"ts":MS} */
void render_ack(struct buf *b, const char *ref, const char *id, int64_t ts);
/* {"type":"error","ref":X,"code":C,"message":TEXT}: msg is escaped. */
void render_error(struct buf *b, const char *ref, const char *code, const char *msg);
/* {"type":"message","room":R,"seq":N,"id":ID,"from":U,"ts":MS,"body":BODY}:
 * body is compact JSON text (bodylen bytes). chat-archive writes the same
 * members in the same order, so a live message and its history copy are
 * the same bytes. */
void render_message(struct buf *b, const char *room, uint64_t seq, const char *id,
		    const char *from, int64_t ts, const char *body, size_t bodylen);
/* A message frame's text msg (n bytes, an object) with "recovered":true
 * put first. */
void render_recovered(struct buf *b, const char *msg, size_t n);
/* {"type":"typing","room":R,"from":U} */
void render_typing(struct buf *b, const char *room, const char *from);
/* {"type":"history","room":R,"ref":X,"messages":[...],"more":B} */
void render_history(struct buf *b, const char *room, const char *ref,
		    const char *messages, size_t n, bool more);
/* {"type":"presence","room":R,"ref":X,"users":[...],"count":N,"more":B} */
void render_presence_list(struct buf *b, const char *room, const char *ref,
			  const char *users, size_t n, uint64_t count, bool more);
/* {"type":"presence","room":R,"joined":[...],"left":[...]} */
void render_presence_change(struct buf *b, const char *room, const char *joined,
			    size_t jn, const char *left, size_t ln);
/* The keys of m as a JSON array of strings (names that need no escaping),
 * at most limit of them (0: all). */
void render_names(struct buf *b, const struct map *m, size_t limit);
/* s as a JSON string, escaped. */
void render_string(struct buf *b, const char *s);

#endif
