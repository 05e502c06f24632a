/*
 * args: chat-gw's command line (see args.h). Every value is checked with
 * lib/opt against the range chat-gw(1) gives; the defaults are set here
 * and nowhere else.
 */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "id.h"
#include "log.h"
#include "opt.h"
#include "shard.h"

static const char usage_text[] =
	"usage: chat-gw [--standalone] [--listen ADDR:PORT] [--auth none|jwt]\n"
	"               [--jwt-secret-file FILE] [--node ID] [--ready-fd N] [-v N] [options]\n"
	"       chat-gw --help | --version\n";

static const char options_text[] =
	"\n"
	"WebSocket chat gateway (protocol chat.v1). See chat-gw(1).\n\n"
	"  --standalone            single node: local fan-out, presence and history\n"
	"  --listen ADDR:PORT      listen address (127.0.0.1:8080; port 0: any)\n"
	"  --auth none|jwt         none takes ?user=NAME (development); jwt (default)\n"
	"                          takes ?token=JWT signed HS256\n"
	"  --jwt-secret-file FILE  the HS256 secret\n"
	"  --jwt-key-file FILE     RS256/ES256 public keys: PEM or JWKS (reread on HUP)\n"
	"  --jwt-issuer ISS        the iss tokens must have (not checked)\n"
	"  --jwt-audience AUD      an aud tokens must name (tokens with aud refused)\n"
	"  --jwt-leeway DUR        clock skew allowed for exp, nbf, iat (30s)\n"
	"  --node ID               node name in message ids and bus routes\n"
	"                          ($CHAT_NODE, else short host name and pid)\n"
	"  --ready-fd N            write ADDR:PORT and a newline to fd N when listening\n"
	"  --tls-cert FILE         speak TLS (wss://) with this PEM certificate chain\n"
	"  --tls-key FILE          and this private key (both reread on HUP)\n"
	"  --reuseport             share the port with other chat-gw (SO_REUSEPORT)\n"
	"  --max-conns N           connections (100000); more are refused with 503\n"
	"  --max-conns-per-ip N    connections from one address (0: no limit)\n"
	"  --max-handshakes-per-ip N  request heads in progress from one address (1024)\n"
	"  --handshake-timeout DUR a request head must be whole within (5s); else 408\n"
	"  --max-header SIZE       largest request head (8K); larger: 431\n"
	"  --allow-origin ORIGIN   a browser Origin allowed to connect (repeat; any\n"
	"                          when none is given); others get 403\n"
	"  --max-frame SIZE        largest client frame (64K); larger: close 1009\n"
	"  --max-body SIZE         largest message body (16K); larger: too_large\n"
	"  --send-queue N          frames queued per client (1024); full: close 4008\n"
	"  --send-queue-bytes SIZE bytes queued per client (4M); full: close 4008\n"
	"  --sndbuf SIZE           kernel send buffer per client (128K; 0: the kernel's)\n"
	"  --rate N                publishes per second per client (50)\n"
	"  --burst N               publishes in a burst per client (500)\n"
	"  --request-rate N        joins, leaves, history and presence per second (20)\n"
	"  --request-burst N       of those in a burst per client (200)\n"
	"  --history N             messages kept per room, standalone (1000)\n"
	"  --max-rooms N           rooms in memory (100000)\n"
	"  --rooms-per-conn N      rooms one connection may join (100)\n"
	"  --dedupe N              publish refs remembered per client (256)\n"
	"  --presence-batch DUR    send presence changes per room every (100ms)\n"
	"  --presence service|gateway  bus mode: presence is chat-presence's (service,\n"
	"                          the default) or each gateway announces its own\n"
	"  --presence-interval DUR heartbeat rounds to chat-presence every (15s)\n"
	"  --presence-max-members N  rooms with more members here get no presence\n"
	"                          changes, only answers to queries (1000; 0: no limit)\n"
	"  --presence-ttl DUR      how long chat-presence keeps a user unheard of (60s)\n"
	"  --ping-interval DUR     ping idle clients after (30s)\n"
	"  --ping-timeout DUR      close clients silent for (75s)\n"
	"  --max-line SIZE         longest bus line (1M)\n"
	"  --bus-backlog SIZE      bytes queued for the relay (4M); full: unavailable\n"
	"  --bus-timeout DUR       wait for a confirm or an answer (10s)\n"
	"  --max-pending N         publishes and queries waiting for the bus (65536)\n"
	"  --max-pending-per-conn N  of those for one client (256)\n"
	"  --room-hold N           live messages a room holds while it catches up (65536)\n"
	"  --metrics-file PATH     also write the metrics there, labelled node=\"ID\"\n"
	"  --stats-interval DUR    how often (10s)\n"
	"  --ingest-shards N       ingest queues the rooms are spread over\n"
	"                          ($CHAT_INGEST_SHARDS, else 1)\n"
	"  -v N                    log level: 0 fatal, 1 warn, 2 info, 3 debug (1)\n"
	"  -h, --help, --version\n";

void gw_usage(int fd, bool full)
{
	(void)!write(fd, usage_text, sizeof(usage_text) - 1);
	if (full)
		(void)!write(fd, options_text, sizeof(options_text) - 1);
}

enum {
	O_STANDALONE = 256, O_LISTEN, O_AUTH, O_SECRET, O_NODE, O_READY,
	O_REUSEPORT, O_MAXCONNS, O_MAXFRAME, O_MAXBODY, O_SENDQ, O_RATE,
	O_BURST, O_HISTORY, O_MAXROOMS, O_ROOMSPER, O_DEDUPE, O_PING,
	O_PINGTO, O_MAXLINE, O_BACKLOG, O_BUSTO, O_MAXPEND, O_PRESBATCH,
	O_ROOMHOLD, O_SHARDS, O_SNDBUF, O_CONNSIP, O_HEADSIP, O_HSTO, O_MAXHDR,
	O_SQBYTES, O_REQRATE, O_REQBURST, O_PENDCONN, O_ORIGIN, O_PRESMODE,
	O_PRESINT, O_PRESTTL, O_PRESMAX, O_KEYFILE, O_ISS, O_AUD, O_LEEWAY,
	O_TLSCERT, O_TLSKEY, O_MFILE, O_STATSINT, O_HELP, O_VERSION,
};

static const struct option longopts[] = {
	{ "standalone", no_argument, NULL, O_STANDALONE },
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "auth", required_argument, NULL, O_AUTH },
	{ "jwt-secret-file", required_argument, NULL, O_SECRET },
	{ "jwt-key-file", required_argument, NULL, O_KEYFILE },
	{ "jwt-issuer", required_argument, NULL, O_ISS },
	{ "jwt-audience", required_argument, NULL, O_AUD },
	{ "jwt-leeway", required_argument, NULL, O_LEEWAY },
	{ "tls-cert", required_argument, NULL, O_TLSCERT },
	{ "tls-key", required_argument, NULL, O_TLSKEY },
	{ "node", required_argument, NULL, O_NODE },
	{ "ready-fd", required_argument, NULL, O_READY },
	{ "reuseport", no_argument, NULL, O_REUSEPORT },
	{ "max-conns", required_argument, NULL, O_MAXCONNS },
	{ "max-frame", required_argument, NULL, O_MAXFRAME },
	{ "max-body", required_argument, NULL, O_MAXBODY },
	{ "send-queue", required_argument, NULL, O_SENDQ },
	{ "rate", required_argument, NULL, O_RATE },
	{ "burst", required_argument, NULL, O_BURST },
	{ "history", required_argument, NULL, O_HISTORY },
	{ "max-rooms", required_argument, NULL, O_MAXROOMS },
	{ "rooms-per-conn", required_argument, NULL, O_ROOMSPER },
	{ "dedupe", required_argument, NULL, O_DEDUPE },
	{ "ping-interval", required_argument, NULL, O_PING },
	{ "ping-timeout", required_argument, NULL, O_PINGTO },
	{ "max-line", required_argument, NULL, O_MAXLINE },
	{ "bus-backlog", required_argument, NULL, O_BACKLOG },
	{ "bus-timeout", required_argument, NULL, O_BUSTO },
	{ "max-pending", required_argument, NULL, O_MAXPEND },
	{ "presence-batch", required_argument, NULL, O_PRESBATCH },
	{ "room-hold", required_argument, NULL, O_ROOMHOLD },
	{ "ingest-shards", required_argument, NULL, O_SHARDS },
	{ "sndbuf", required_argument, NULL, O_SNDBUF },
	{ "max-conns-per-ip", required_argument, NULL, O_CONNSIP },
	{ "max-handshakes-per-ip", required_argument, NULL, O_HEADSIP },
	{ "handshake-timeout", required_argument, NULL, O_HSTO },
	{ "max-header", required_argument, NULL, O_MAXHDR },
	{ "send-queue-bytes", required_argument, NULL, O_SQBYTES },
	{ "request-rate", required_argument, NULL, O_REQRATE },
	{ "request-burst", required_argument, NULL, O_REQBURST },
	{ "max-pending-per-conn", required_argument, NULL, O_PENDCONN },
	{ "allow-origin", required_argument, NULL, O_ORIGIN },
	{ "presence", required_argument, NULL, O_PRESMODE },
	{ "presence-interval", required_argument, NULL, O_PRESINT },
	{ "presence-ttl", required_argument, NULL, O_PRESTTL },
	{ "presence-max-members", required_argument, NULL, O_PRESMAX },
	{ "metrics-file", required_argument, NULL, O_MFILE },
	{ "stats-interval", required_argument, NULL, O_STATSINT },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* A numeric option: its field and range, and how its value is read. */
enum args_kind { K_NUM, K_SIZE, K_DUR };

struct args_num {
	int opt;                     /* O_ value */
	enum args_kind kind;         /* how the value is written */
	size_t off;                  /* offset of its uint64_t in gw_config */
	uint64_t lo, hi;             /* its range */
};

#define F(field) offsetof(struct gw_config, field)

static const struct args_num nums[] = {
	{ O_MAXCONNS, K_NUM, F(max_conns), 1, 10000000 },
	{ O_MAXFRAME, K_SIZE, F(max_frame), 256, 16 * 1024 * 1024 },
	{ O_MAXBODY, K_SIZE, F(max_body), 16, 16 * 1024 * 1024 },
	{ O_SENDQ, K_NUM, F(send_queue), 8, 1000000 },
	{ O_RATE, K_NUM, F(rate), 1, 10000000 },
	{ O_BURST, K_NUM, F(burst), 1, 10000000 },
	{ O_HISTORY, K_NUM, F(history), 0, 10000000 },
	{ O_MAXROOMS, K_NUM, F(max_rooms), 1, 100000000 },
	{ O_ROOMSPER, K_NUM, F(rooms_per_conn), 1, 100000 },
	{ O_DEDUPE, K_NUM, F(dedupe), 0, 4096 },
	{ O_PING, K_DUR, F(ping_ms), 1000, 3600000 },
	{ O_PINGTO, K_DUR, F(timeout_ms), 1000, 3600000 },
	{ O_MAXLINE, K_SIZE, F(max_line), 1024, 64 * 1024 * 1024 },
	{ O_BACKLOG, K_SIZE, F(bus_backlog), 4096, 1024ULL * 1024 * 1024 },
	{ O_BUSTO, K_DUR, F(bus_timeout_ms), 100, 3600000 },
	{ O_MAXPEND, K_NUM, F(max_pending), 1, 10000000 },
	{ O_PRESBATCH, K_DUR, F(presence_batch_ms), 1, 60000 },
	{ O_ROOMHOLD, K_NUM, F(room_hold), 1, 10000000 },
	{ O_SHARDS, K_NUM, F(ingest_shards), 1, SHARD_MAX },
	{ O_SNDBUF, K_SIZE, F(sndbuf), 0, 64 * 1024 * 1024 },
	{ O_CONNSIP, K_NUM, F(max_conns_per_ip), 0, 10000000 },
	{ O_HEADSIP, K_NUM, F(max_heads_per_ip), 1, 1000000 },
	{ O_HSTO, K_DUR, F(handshake_timeout_ms), 100, 600000 },
	{ O_MAXHDR, K_SIZE, F(max_header), 1024, 1024 * 1024 },
	{ O_SQBYTES, K_SIZE, F(send_queue_bytes), 4096, 1024ULL * 1024 * 1024 },
	{ O_REQRATE, K_NUM, F(request_rate), 1, 10000000 },
	{ O_REQBURST, K_NUM, F(request_burst), 1, 10000000 },
	{ O_PENDCONN, K_NUM, F(max_pending_conn), 1, 10000000 },
	{ O_PRESINT, K_DUR, F(presence_interval_ms), 100, 3600000 },
	{ O_PRESTTL, K_DUR, F(presence_ttl_ms), 1000, 86400000 },
	{ O_PRESMAX, K_NUM, F(presence_max_members), 0, 100000000 },
	{ O_LEEWAY, K_DUR, F(jwt_leeway_ms), 0, 3600000 },
	{ O_STATSINT, K_DUR, F(stats_interval_ms), 100, 3600000 },
};

static void args_defaults(struct gw_config *cfg)
{
	const char *env = getenv("CHAT_NODE");
	char host[64];

	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->host, "127.0.0.1");
	cfg->port = 8080;
	cfg->auth = AUTH_JWT;
	cfg->ready_fd = -1;
	cfg->max_conns = 100000;
	cfg->max_frame = 64 * 1024;
	cfg->max_body = 16 * 1024;
	cfg->send_queue = 1024;
	cfg->sndbuf = 128 * 1024;
	cfg->max_heads_per_ip = 1024;
	cfg->handshake_timeout_ms = 5000;
	cfg->max_header = 8 * 1024;
	cfg->send_queue_bytes = 4 * 1024 * 1024;
	cfg->request_rate = 20;
	cfg->request_burst = 200;
	cfg->max_pending_conn = 256;
	cfg->presence_interval_ms = 15000;
	cfg->presence_ttl_ms = 60000;
	cfg->presence_max_members = 1000;
	cfg->jwt_leeway_ms = 30000;
	cfg->rate = 50;
	cfg->burst = 500;
	cfg->history = 1000;
	cfg->max_rooms = 100000;
	cfg->rooms_per_conn = 100;
	cfg->dedupe = 256;
	cfg->ping_ms = 30000;
	cfg->timeout_ms = 75000;
	cfg->max_line = 1024 * 1024;
	cfg->bus_backlog = 4 * 1024 * 1024;
	cfg->bus_timeout_ms = 10000;
	cfg->max_pending = 65536;
	cfg->presence_batch_ms = 100;
	cfg->room_hold = 65536;
	cfg->stats_interval_ms = 10000;
	cfg->ingest_shards = 1;
	/* The node: the relay's (chat-relay exports CHAT_NODE to its child
	 * and binds node.CHAT_NODE), else short host name and pid. */
	if (env && id_node_valid(env)) {
		snprintf(cfg->node, sizeof(cfg->node), "%s", env);
		return;
	}
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "gw");
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	host[40] = '\0';
	snprintf(cfg->node, sizeof(cfg->node), "%s-%d", host, (int)getpid());
	if (!id_node_valid(cfg->node))
		snprintf(cfg->node, sizeof(cfg->node), "gw-%d", (int)getpid());
}

static int args_num(int c, const char *v, struct gw_config *cfg, char *err,
		    size_t errlen)
{
	size_t i;
	uint64_t n;
	int r;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		const struct args_num *a = &nums[i];

		if (a->opt != c)
			continue;
		r = a->kind == K_NUM ? opt_uint(v, a->lo, a->hi, &n, err, errlen) :
		    a->kind == K_SIZE ? opt_size(v, a->lo, a->hi, &n, err, errlen) :
					opt_duration_ms(v, a->lo, a->hi, &n, err, errlen);
		if (r < 0)
			return -1;
		*(uint64_t *)((char *)cfg + a->off) = n;
		return 0;
	}
	snprintf(err, errlen, "unknown option");
	return -1;
}

int gw_args(int argc, char **argv, struct gw_config *cfg, int *verbosity,
	    char *err, size_t errlen)
{
	const char *env = getenv("CHAT_INGEST_SHARDS");
	uint64_t v;
	int c;

	args_defaults(cfg);
	*verbosity = LOG_WARN;
	err[0] = '\0';
	if (env && *env && args_num(O_SHARDS, env, cfg, err, errlen) < 0) {
		snprintf(err, errlen, "CHAT_INGEST_SHARDS='%s' is not 1..%d", env, SHARD_MAX);
		return ARGS_USAGE;
	}
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hv:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case O_HELP:
			return ARGS_HELP;
		case O_VERSION:
			return ARGS_VERSION;
		case '?':
			if (optopt)
				snprintf(err, errlen, "unknown option '-%c'", optopt);
			else
				snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return ARGS_USAGE;
		case ':':
			snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
			return ARGS_USAGE;
		case O_STANDALONE: cfg->standalone = true; break;
		case O_LISTEN:
			if (opt_addr(optarg, cfg->host, sizeof(cfg->host), &cfg->port, err,
				     errlen) < 0)
				return ARGS_USAGE;
			break;
		case O_AUTH:
			if (!strcmp(optarg, "none")) {
				cfg->auth = AUTH_NONE;
			} else if (!strcmp(optarg, "jwt")) {
				cfg->auth = AUTH_JWT;
			} else {
				snprintf(err, errlen, "'%s' is not an auth mode (none, jwt)", optarg);
				return ARGS_USAGE;
			}
			break;
		case O_SECRET: cfg->secret_file = optarg; break;
		case O_KEYFILE: cfg->key_file = optarg; break;
		case O_ISS: cfg->jwt_issuer = optarg; break;
		case O_AUD: cfg->jwt_audience = optarg; break;
		case O_TLSCERT: cfg->tls_cert = optarg; break;
		case O_TLSKEY: cfg->tls_key = optarg; break;
		case O_MFILE: cfg->metrics_file = optarg; break;
		case O_NODE:
			if (!id_node_valid(optarg)) {
				snprintf(err, errlen, "'%s' is not a node name "
					 "(1-64 of A-Z a-z 0-9 _ . : -)", optarg);
				return ARGS_USAGE;
			}
			snprintf(cfg->node, sizeof(cfg->node), "%s", optarg);
			break;
		case O_READY:
			if (opt_uint(optarg, 0, 1024, &v, err, errlen) < 0)
				return ARGS_USAGE;
			cfg->ready_fd = (int)v;
			break;
		case O_REUSEPORT: cfg->reuseport = true; break;
		case O_PRESMODE:
			if (!strcmp(optarg, "service")) {
				cfg->presence_local = false;
			} else if (!strcmp(optarg, "gateway")) {
				cfg->presence_local = true;
			} else {
				snprintf(err, errlen, "'%s' is not a presence mode (service, gateway)",
					 optarg);
				return ARGS_USAGE;
			}
			break;
		case O_ORIGIN: {
			char **n = realloc(cfg->origins, (cfg->norigins + 2) * sizeof(*n));

			if (!n) {
				snprintf(err, errlen, "out of memory");
				return ARGS_USAGE;
			}
			cfg->origins = n;
			cfg->origins[cfg->norigins++] = optarg;
			cfg->origins[cfg->norigins] = NULL;
			break;
		}
		case 'v':
			if (opt_uint(optarg, 0, 3, &v, err, errlen) < 0)
				return ARGS_USAGE;
			*verbosity = (int)v;
			break;
		default:
			if (args_num(c, optarg, cfg, err, errlen) < 0)
				return ARGS_USAGE;
			break;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return ARGS_USAGE;
	}
	if (cfg->timeout_ms <= cfg->ping_ms) {
		snprintf(err, errlen, "--ping-timeout must be longer than --ping-interval");
		return ARGS_USAGE;
	}
	if (cfg->max_body > cfg->max_frame)
		cfg->max_body = cfg->max_frame;
	if (!cfg->tls_cert != !cfg->tls_key) {
		snprintf(err, errlen, "--tls-cert and --tls-key go together");
		return ARGS_USAGE;
	}
	if (cfg->presence_ttl_ms <= cfg->presence_interval_ms) {
		snprintf(err, errlen, "--presence-ttl must be longer than --presence-interval");
		return ARGS_USAGE;
	}
	if (cfg->auth == AUTH_JWT) {
		if (!cfg->secret_file && !cfg->key_file) {
			snprintf(err, errlen, "--auth jwt needs --jwt-secret-file or --jwt-key-file "
				 "(or use --auth none)");
			return ARGS_USAGE;
		}
	}
	return ARGS_RUN;
}

void gw_config_free(struct gw_config *cfg)
{
	free(cfg->origins);
	cfg->origins = NULL;
	cfg->norigins = 0;
}
