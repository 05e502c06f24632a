/*
 * session: what session.c (the connection, the frames, stdin) and
 * session_args.c (the command line) share: the state of one `chat-cli
 * connect` or `chat-cli send`. Memory: struct session owns its queue, its
 * JSON objects and its buffers; session.c frees them.
 */
#ifndef CHAT_CLI_SESSION_H
#define CHAT_CLI_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "buf.h"
#include "cli.h"
#include "jsonl.h"

#define SESSION_ROOMS_MAX 64
#define SESSION_LINE_MAX (1024 * 1024)      /* longest stdin line */
#define SESSION_FRAME_MAX (16 * 1024 * 1024) /* longest frame we accept */
#define SESSION_CLOSE_GRACE_US (3 * LWS_US_PER_SEC)

enum session_mode { MODE_CONNECT, MODE_SEND };

/* One frame waiting for its turn to be written, LWS_PRE headroom first. */
struct outmsg {
	struct outmsg *next;     /* queue link */
	size_t len;              /* payload bytes after the headroom */
	unsigned char data[];    /* LWS_PRE bytes, then the payload */
};

struct session {
	enum session_mode mode;  /* connect or send */
	struct cli_url url;      /* where, with the auth query added */
	const char *rooms[SESSION_ROOMS_MAX]; /* --room, in order */
	int nrooms;              /* how many --room */
	bool have_since;         /* --since given */
	uint64_t since;          /* --since SEQ */
	bool text_only;          /* --text: every line is a string body */
	bool no_stdin;           /* --no-stdin: only listen */
	uint64_t window;         /* most publishes in flight */
	uint64_t timeout_ms;     /* --timeout */
	const char *auth_token;  /* sent in the first frame, or NULL */
	const char *ca_file;     /* --ca */
	bool insecure;           /* --insecure */
	const char *message;     /* send: MESSAGE */
	bool json_body;          /* send --json */

	struct lws_context *ctx; /* the one lws context */
	struct lws *ws;          /* the WebSocket, NULL when gone */
	struct lws *in;          /* stdin as a raw file, NULL when gone */
	struct lws *sig;         /* the signal self-pipe as a raw file */
	struct jsonl jl;         /* stdin line splitter */
	bool in_reading;         /* stdin is not paused */
	bool in_eof;             /* stdin ended (lines may remain in jl) */
	bool input_done;         /* every input line has been handled */
	bool stopped;            /* signal or stdout failure: no more input */
	bool out_failed;         /* stdout failed: print nothing more */
	struct buf rx;           /* a frame being reassembled */
	bool rx_skip;            /* the current frame is over the limit */
	struct outmsg *q_head;   /* frames to write, oldest first */
	struct outmsg *q_tail;   /* last queued frame */
	size_t q_len;            /* frames queued */
	json_t *pending;         /* ref key -> count of requests unanswered */
	uint64_t npending;       /* requests with a ref awaiting an answer */
	const char **anon;       /* answer types awaited by requests without
				  * ref, oldest first (window + 1 slots) */
	uint64_t anon_len;       /* how many */
	json_t *catchup;         /* room -> the seq its since-join caught up
				  * to (joined's seq), until it arrives */
	json_t *codes_seen;      /* error codes logged already */
	uint64_t next_ref;       /* last ref we gave a publish */
	uint64_t refused;        /* publishes answered by an error */
	bool established;        /* the upgrade succeeded */
	bool closing;            /* we are closing with 1000 */
	bool we_closed;          /* our close frame went out */
	bool peer_closed;        /* the server sent a close frame */
	int close_code;          /* its code */
	char close_reason[128];  /* its reason, NUL-terminated */
	bool done;               /* leave the loop */
	bool rc_set;             /* rc is final */
	int rc;                  /* exit status */
	int signals;             /* TERM/INT seen */
	lws_sorted_usec_list_t sul_timeout; /* ack / send deadline */
	lws_sorted_usec_list_t sul_close;   /* close handshake deadline */
};

/* session_args.c: the command line of connect or send into s's options,
 * defaults first, with the credentials put where they go (the first
 * frame, or the URL's query); a token read from --token-file is left in
 * *tok, for the caller to free. Returns -1 when the session is to run,
 * else the exit status: 0 after --help, EX_USAGE after a usage error
 * (said on stderr), EX_NOINPUT when the token file cannot be read. */
int session_args_parse(struct session *s, enum session_mode mode, int argc,
		       char **argv, char **tok);

#endif
