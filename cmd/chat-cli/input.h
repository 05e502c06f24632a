/*
 * input: the rules that turn one stdin line of `chat-cli connect` into a
 * request (see input.c). Memory: a struct line_req owns its body and
 * ref_key; line_req_free() releases them. Returned strings are malloc'd.
 */
#ifndef CHAT_CLI_INPUT_H
#define CHAT_CLI_INPUT_H

#include <stdbool.h>
#include <stdlib.h>

#include <jansson.h>

enum line_kind {
	LINE_RAW = 1,   /* a request object: send the line as it is */
	LINE_BODY = 2,  /* publish body to the first room */
};

struct line_req {
	enum line_kind kind;  /* what the line is */
	char *type;           /* LINE_RAW: its type when a string, else NULL */
	char *ref_key;        /* LINE_RAW: its ref as compact JSON, or NULL */
	json_t *body;         /* LINE_BODY: the body */
};

/* Classify line (len bytes; need not be NUL-terminated). text_only makes
 * every line a string body. Returns 0, or -1 when the line is not valid
 * UTF-8 and cannot be a string. */
int line_classify(const char *line, size_t len, bool text_only,
		  struct line_req *out);
/* The publish frame for body in room with ref, compact JSON, or NULL. */
char *line_publish(const char *room, json_t *body, const char *ref);
/* The type of the frame that answers a request of type type: "ack",
 * "joined", "left", "history", "presence"; NULL for typing (no answer);
 * "error" for a type the protocol does not know. */
const char *line_reply_type(const char *type);
/* The "ref" of a frame from the server as compact JSON (the key under
 * which pending requests are kept), or NULL when it has none. */
char *line_ref_key(json_t *frame);
void line_req_free(struct line_req *r);

#endif
