/*
 * bench: what bench.c (the run: connections, frames, the schedule,
 * reconnects), bench_args.c (the command line), bench_pub.c (the
 * publishers) and bench_report.c (the totals and the report) share: the
 * state of one run. Memory: struct bench owns every array in it; one
 * struct bench per process, found by the loop's callbacks through B.
 */
#ifndef CHAT_CLI_BENCH_H
#define CHAT_CLI_BENCH_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libwebsockets.h>
#include <uv.h>

#include "backoff.h"
#include "cli.h"
#include "hist.h"
#include "skim.h"
#include "timeq.h"

#define BENCH_URLS_MAX 64
#define BENCH_CODES 8                /* distinct error / close codes kept */
#define BENCH_PREFIX_MAX 64          /* --room-prefix */

#define BENCH_HOLES_MAX 64           /* seq jumps one subscriber may have open */

/* The seq jumps of one subscriber waiting for history, oldest first; the
 * first is the one being asked for. */
struct bholes {
	uint32_t n;              /* jumps held */
	uint32_t cap;            /* jumps it has room for */
	struct bhole {
		uint64_t lo;     /* first seq skipped */
		uint64_t hi;     /* last seq skipped (still missing) */
	} h[];
};

enum bconn_state {
	BC_IDLE = 0,     /* not started, or waiting to reconnect */
	BC_CONNECTING,   /* handshake in flight */
	BC_JOINING,      /* open, join sent or to send */
	BC_JOINED,       /* joined: counts as a subscriber */
	BC_FAILED,       /* never opened (no --reconnect) */
	BC_CLOSED,       /* closed after opening, for good */
};

/* One connection: kept small, 10,000+ of them live in one array. */
struct bconn {
	struct lws *wsi;         /* NULL unless connecting or open */
	struct buf *frag;        /* frame being reassembled, usually NULL */
	uint64_t last_seq;       /* last seq of the room seen (join base) */
	uint64_t received;       /* messages received, duplicates included */
	uint64_t dups;           /* messages with seq <= last_seq */
	uint64_t gaps;           /* messages skipped by seq jumps */
	uint64_t acked_base;     /* room's acked count when it first joined */
	uint64_t acked_end;      /* room's acked count when it closed */
	int64_t t_down;          /* mono us: when it last dropped or churned */
	struct bholes *holes;    /* seq jumps to ask history for, or NULL */
	uint32_t room;           /* room index */
	int32_t pub;             /* publisher index, or -1 */
	uint16_t close_code;     /* code of the server's close frame */
	uint8_t state;           /* enum bconn_state */
	uint8_t url;             /* index of the URL it uses now */
	uint8_t attempt;         /* backoff attempts since it last joined */
	uint8_t epoch;           /* its room's epoch (see struct broom) */
	uint8_t want_join : 1;   /* join to write */
	uint8_t want_close : 1;  /* close to write */
	uint8_t frag_skip : 1;   /* current frame over the frame limit */
	uint8_t was_joined : 1;  /* joined its room at some point */
	uint8_t dropped : 1;     /* closed by the server, not back (yet) */
	uint8_t opened : 1;      /* opened at some point */
	uint8_t settled : 1;     /* counted in bench.settled */
	uint8_t queued : 1;      /* waiting in bench.due */
	uint8_t churn : 1;       /* being closed on purpose (--churn) */
	uint8_t timed_out : 1;   /* being closed: a publish got no answer */
	uint8_t want_hist : 1;   /* history request for the hole to write */
};

/* What a publisher knows of each of its refs (index: the ref, from 1). */
#define PS_ACKED   0x01      /* acked */
#define PS_REFUSED 0x02      /* refused for good (an error, not unavailable) */
#define PS_WAIT    0x04      /* written on the open connection, unanswered */
#define PS_RESEND  0x08      /* to be written again, same ref, same body */
#define PS_RESENT  0x10      /* written more than once */
#define PS_DOUBLED 0x20      /* delivered under two seqs */

/* One publisher: a connection that also publishes. Its refs 1..sent are
 * its messages; those in lo..sent may still be unanswered, and lo..sent
 * spans at most --window refs. */
struct bpub {
	struct bconn *c;         /* its connection */
	uint64_t due;            /* new refs the schedule gave it */
	uint64_t sent;           /* refs written at least once */
	uint64_t acked;          /* refs acked */
	uint64_t errors;         /* refs refused for good */
	uint64_t lo;             /* lowest ref without an answer (sent+1: none) */
	uint64_t nresend;        /* refs marked PS_RESEND */
	int64_t retry_at;        /* mono us: no resend before */
	int64_t *first_at;       /* per ref % window: first write (body's t) */
	int64_t *try_at;         /* per ref % window: last write */
	uint8_t *st;             /* per ref: PS_* */
	uint32_t *seq;           /* per ref: seq first delivered under, 0 none */
	uint64_t cap;            /* entries of st and seq */
	uint8_t attempt;         /* resend backoff attempts since its last ack */
};

/* A room. Its epoch grows when a rejoin finds its seq lower than before
 * (a standalone gateway restarted: the history went with it): seqs are
 * then checked from the new base, and what the old history held beyond a
 * subscriber's last seq is lost. */
struct broom {
	uint64_t acked;          /* publishes into the room acked */
	uint64_t max_seq;        /* highest seq any subscriber saw (epoch) */
	uint64_t prev_max;       /* max_seq of the epoch before */
	uint32_t members;        /* joined connections, open */
	uint8_t epoch;           /* seq resets seen */
};

struct bcount {
	char name[32];           /* error code or close code */
	uint64_t n;              /* how many */
};

enum bench_phase { PH_SETUP, PH_HOLD, PH_RUN, PH_DRAIN, PH_CLOSE, PH_DONE };

struct bench {
	uv_loop_t loop;           /* the event loop */
	/* options */
	struct cli_url urls[BENCH_URLS_MAX]; /* gateways */
	int nurls;                /* how many */
	uint32_t nconns;          /* --conns */
	uint32_t nrooms;          /* --rooms */
	uint32_t npubs;           /* --publishers */
	double rate;              /* --rate, messages/s, all publishers */
	uint64_t duration_ms;     /* --duration */
	bool duration_set;        /* --duration given (for --hold) */
	uint64_t warmup_ms;       /* --warmup */
	uint64_t size;            /* --size: body bytes */
	uint64_t timeout_ms;      /* --timeout: handshake, setup stall, drain */
	uint64_t window;          /* --window: refs in flight per publisher */
	uint32_t handshakes;      /* --handshakes: in flight at most */
	bool json;                /* --json */
	bool hold;                /* --hold */
	bool reconnect;           /* --reconnect (or --churn) */
	double churn;             /* --churn: closes per second */
	uint64_t backoff_max_ms;  /* --backoff-max */
	char prefix[BENCH_PREFIX_MAX]; /* --room-prefix */
	const char *secret_file;  /* --secret-file: tokens instead of ?user */
	char *secret;             /* its contents */
	size_t secretlen;         /* its length */

	/* state */
	struct lws_context *ctx;  /* the one loop */
	struct bconn *conns;      /* nconns connections */
	struct bpub *pubs;        /* npubs publishers */
	struct broom *rooms;      /* nrooms rooms */
	struct timeq due;         /* reconnects and joins due later */
	struct backoff bo;        /* delays: attempt set from the conn's */
	enum bench_phase phase;   /* where the run is */
	uint32_t next_conn;       /* next connection to start */
	uint32_t in_flight;       /* handshakes in flight */
	uint32_t opened;          /* connections that opened (first time) */
	uint32_t failed;          /* connections that never opened */
	uint32_t joined;          /* connections that joined (first time) */
	uint32_t join_failed;     /* joins refused for good */
	uint32_t settled;         /* joined, refused, failed or closed first */
	uint32_t open_now;        /* connections open now */
	uint64_t drops;           /* closes by the server or losses, each */
	uint64_t reconnects;      /* rejoins after a drop or a churn */
	uint64_t churned;         /* closes on purpose */
	uint64_t churn_due;       /* closes the --churn schedule gave */
	uint32_t churn_next;      /* next connection --churn looks at */
	uint64_t connect_errors;  /* connection attempts that failed */
	uint64_t join_retries;    /* joins tried again after unavailable */
	uint64_t pub_timeouts;    /* connections closed: no answer in time */
	uint64_t resets;          /* rejoins whose room seq went backwards */
	int64_t t_setup;          /* mono us: bench start */
	int64_t t_ready;          /* mono us: all joined */
	int64_t t_start;          /* mono us: publishing starts */
	int64_t t_measure;        /* mono us: warmup over */
	int64_t t_end;            /* mono us: publishing stops */
	int64_t t_drained;        /* mono us: drain over */
	int64_t t_progress;       /* mono us: last setup/drain progress */
	int64_t t_pubcheck;       /* mono us: last bench_pubs_check */
	uint64_t scheduled;       /* messages handed to publishers */
	uint64_t planned;         /* messages the run will publish */
	uint32_t rr;              /* next publisher for the schedule */
	uint64_t published;       /* refs written (first writes) */
	uint64_t resent;          /* writes of a ref again */
	uint64_t unsent;          /* scheduled for a publisher that closed */
	uint64_t acked;           /* refs acked */
	uint64_t pub_errors;      /* refs refused for good */
	uint64_t skipped_window;  /* schedule slots delayed by the window */
	uint64_t measured;        /* deliveries of measured messages */
	uint64_t recovered;       /* distinct deliveries flagged recovered */
	uint64_t filled;          /* distinct deliveries from history, in holes */
	uint64_t holes;           /* seq jumps asked for with history */
	uint64_t doubled;         /* refs delivered under two seqs */
	uint64_t frames_other;    /* presence, typing, ... */
	uint64_t frames_bad;      /* frames we could not read */
	struct bcount errors[BENCH_CODES]; /* error frames by code */
	struct bcount closes[BENCH_CODES]; /* server closes by code */
	struct hist lat;          /* delivery latency, us */
	struct hist ack_lat;      /* publish to ack, us */
	struct hist resume;       /* drop or churn to joined again, us */
	char *pad;                /* body padding */
	int signals;              /* TERM/INT seen */
	struct lws *sig_wsi;      /* the signal self-pipe */
	int rc;                   /* exit status */
	lws_sorted_usec_list_t sul_tick;   /* scheduler / phase clock */
};

/* bench_args.c: the command line into b's options, defaults first.
 * Returns -1 when the run is to go on, else the exit status (0 after
 * --help, EX_USAGE after a usage error, said on stderr). */
int bench_args_parse(struct bench *b, int argc, char **argv);

/* The next backoff delay for a thing whose attempts are counted in
 * *attempt (a connection's, a publisher's): the one shared generator, the
 * caller's count. */
static inline uint64_t bench_delay_ms(struct bench *b, uint8_t *attempt)
{
	uint64_t d;

	b->bo.attempt = *attempt;
	d = backoff_next_ms(&b->bo);
	*attempt = b->bo.attempt > 255 ? 255 : (uint8_t)b->bo.attempt;
	return d;
}

/* Room number room's name: --room-prefix, then the number. */
static inline void bench_room_name(const struct bench *b, uint32_t room,
				   char *out, size_t size)
{
	snprintf(out, size, "%s%" PRIu32, b->prefix, room);
}

/* bench_pub.c: the publishers. init gives each its arrays (-1: out of
 * memory; free frees what init made, after a failure too). write writes a
 * publisher's next publish when its connection is writable and says
 * whether more can be written now; ack and error take the answers to a
 * ref (the "ref" field of an ack; an error frame's ref, code and message);
 * seen checks a delivery of publisher pi's ref n under seq; check (from
 * the tick) wakes publishers whose resend backoff is over and, with
 * --reconnect, closes a connection whose oldest ref waited --timeout. */
int bench_pub_init(struct bench *b);
void bench_pub_free(struct bench *b);
bool bench_pub_write(struct bench *b, struct bpub *p);
void bench_pub_ack(struct bench *b, struct bconn *c, struct skim_field *ref);
void bench_pub_error(struct bench *b, struct bconn *c, const char *ref,
		     const char *code, const char *message);
void bench_pub_seen(struct bench *b, int64_t pi, int64_t n, uint64_t seq);
void bench_pub_check(struct bench *b, int64_t now);

/* Print the report of a finished run on stdout (text or JSON). */
void bench_report(struct bench *b);

#endif
