/*
 * gw: chat-gw's configuration and metrics, shared by its modules.
 */
#ifndef CHAT_GW_H
#define CHAT_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "id.h"
#include "metrics.h"

enum gw_auth { AUTH_NONE, AUTH_JWT };

struct gw_config {
	char host[256];            /* --listen address */
	int port;                  /* --listen port, 0: any free port */
	bool standalone;           /* --standalone: no bus */
	enum gw_auth auth;         /* --auth */
	const char *secret_file;   /* --jwt-secret-file: the HS256 secret */
	const char *key_file;      /* --jwt-key-file: PEM or JWKS public keys */
	const char *jwt_issuer;    /* --jwt-issuer: the iss tokens must have */
	const char *jwt_audience;  /* --jwt-audience: an aud tokens must name */
	uint64_t jwt_leeway_ms;    /* --jwt-leeway: clock skew allowed */
	const char *tls_cert;      /* --tls-cert: PEM certificate (chain), or NULL */
	const char *tls_key;       /* --tls-key: its private key */
	const char *metrics_file;  /* --metrics-file, or NULL */
	uint64_t stats_interval_ms; /* --stats-interval: how often it is written */
	char node[ID_NODE_MAX + 1];/* --node */
	int ready_fd;              /* --ready-fd, -1 none */
	bool reuseport;            /* --reuseport */
	uint64_t max_frame;        /* --max-frame: largest client frame */
	uint64_t max_body;         /* --max-body: largest publish body */
	uint64_t max_conns;        /* --max-conns */
	uint64_t send_queue;       /* --send-queue: frames queued per client */
	uint64_t send_queue_bytes; /* --send-queue-bytes: bytes queued per client */
	uint64_t sndbuf;           /* --sndbuf: kernel send buffer per client, 0 auto */
	uint64_t rate;             /* --rate: publishes per second refill */
	uint64_t burst;            /* --burst: token bucket size */
	uint64_t request_rate;     /* --request-rate: joins, history, presence per second */
	uint64_t request_burst;    /* --request-burst: their bucket */
	uint64_t max_pending_conn; /* --max-pending-per-conn: bus waits of one client */
	char **origins;            /* --allow-origin, NULL-terminated, NULL: any */
	size_t norigins;           /* how many */
	uint64_t history;          /* --history: messages kept per room */
	uint64_t max_rooms;        /* --max-rooms: rooms in memory */
	uint64_t rooms_per_conn;   /* --rooms-per-conn */
	uint64_t ping_ms;          /* --ping-interval */
	uint64_t timeout_ms;       /* --ping-timeout: dead peer */
	uint64_t dedupe;           /* --dedupe: refs remembered per client */
	uint64_t max_line;         /* --max-line: bus line bound */
	uint64_t bus_backlog;      /* --bus-backlog: bytes queued for stdout */
	uint64_t bus_timeout_ms;   /* --bus-timeout: wait for confirm or answer */
	uint64_t max_pending;      /* --max-pending: publishes and queries in flight */
	uint64_t presence_batch_ms;/* --presence-batch: presence changes go out every */
	bool presence_local;       /* --presence gateway: bus mode announces its own */
	uint64_t presence_max_members; /* --presence-max-members: bigger rooms get no changes */
	uint64_t presence_interval_ms; /* --presence-interval: heartbeat rounds */
	uint64_t presence_ttl_ms;  /* --presence-ttl: how long chat-presence keeps them */
	uint64_t room_hold;        /* --room-hold: frames a catching-up room holds */
	uint64_t ingest_shards;    /* --ingest-shards: ingest queues (routes ingest.K) */
	uint64_t handshake_timeout_ms; /* --handshake-timeout: a request head within */
	uint64_t max_header;       /* --max-header: largest request head */
	uint64_t max_heads_per_ip; /* --max-handshakes-per-ip: heads in the door */
	uint64_t max_conns_per_ip; /* --max-conns-per-ip: WebSockets, 0 no limit */
};

/* Every metric chat-gw exports on /metrics. */
enum gw_err {
	E_BAD_REQUEST, E_UNAUTHORIZED, E_FORBIDDEN, E_NOT_JOINED, E_TOO_LARGE,
	E_RATE_LIMITED, E_UNAVAILABLE, E_INTERNAL, E_COUNT
};

struct gw_metrics {
	struct metric conns;          /* gauge: open WebSocket connections */
	struct metric accepted;       /* connections accepted */
	struct metric refused_auth;   /* handshakes refused: bad token */
	struct metric refused_full;   /* handshakes refused: --max-conns */
	struct metric refused_timeout;/* request heads not whole in time (408) */
	struct metric refused_header; /* request heads over --max-header (431) */
	struct metric refused_method; /* methods other than GET (405) */
	struct metric refused_target; /* broken or NUL percent-escapes (400) */
	struct metric refused_per_ip; /* --max-handshakes-per-ip (429) or --max-conns-per-ip (503) */
	struct metric refused_origin; /* an Origin not in --allow-origin (403) */
	struct metric frames_in;      /* client frames received */
	struct metric frames_out;     /* frames sent to clients */
	struct metric writes;         /* socket writes (frames coalesce) */
	struct metric early_writes;   /* writes of a full queue, at once */
	struct metric deliveries;     /* message frames queued to members */
	struct metric messages;       /* messages sequenced or relayed */
	struct metric errors[E_COUNT];/* error frames sent, by code */
	struct metric slow;           /* closes 4008: send queue full */
	struct metric too_big;        /* closes 1009: frame over --max-frame */
	struct metric binary;         /* closes 1003: binary frame */
	struct metric dedupe_hits;    /* publishes answered from the ref cache */
	struct metric expired;        /* closes 1008: token expired */
	struct metric client_closes;  /* the client sent a close frame */
	struct metric shutdown_closes;/* closes 1001: the gateway is stopping */
	struct metric dropped;        /* ended with no close frame: dead peer, reset */
	struct metric rooms;          /* gauge: rooms in memory */
	struct metric rooms_evicted;  /* empty rooms forgotten at --max-rooms */
	struct metric accept_paused;  /* connections not taken: out of descriptors */
	struct metric ack_latency;    /* publish to ack, seconds */
	struct metric loop_busy;      /* the work of one loop turn, seconds */
	struct metric loop_cpu;       /* the CPU time of one loop turn, seconds */
	struct metric bus_in;         /* bus lines read */
	struct metric bus_out;        /* bus lines written */
	struct metric bus_bad;        /* bus lines refused */
	struct metric bus_full;       /* publishes refused: bus backlog full */
	struct metric bus_timeouts;   /* publishes or queries without answer in time */
	struct metric bus_nacks;      /* publishes the broker refused */
	struct metric pending;        /* gauge: publishes and queries in flight */
	struct metric bus_dups;       /* sequenced messages seen twice, dropped */
	struct metric room_recoveries;/* rooms caught up after a gap or reconnect */
	struct metric room_hold_full; /* recoveries given up: --room-hold reached */
	struct metric room_recovery_failures; /* given up: no answer, tries spent */
	struct metric bus_stale;      /* answers for another room or process, dropped */
	struct metric internal_closes;/* closes 1011: a frame could not be queued */
	struct metric presence_beats; /* heartbeat rounds sent to chat-presence */
	struct metric presence_quiet; /* presence changes not pushed: room too big */
	struct metric presence_lost;  /* presence lines the bus did not take */
};

extern struct gw_config gw_cfg;
extern struct gw_metrics gw_m;

/* Register every metric once at start. */
void gw_metrics_init(void);
/* The error code names of DESIGN.md, by enum gw_err. */
extern const char *const gw_err_names[E_COUNT];

#endif
