/*
 * chat-gw: the WebSocket edge of the chat toolkit. main() only wires:
 * options -> configuration -> hub and libwebsockets context -> event loop
 * -> exit status. The client protocol is in hub.c, the lws side in ws.c,
 * the bus side (stdin/stdout to chat-relay) in bus.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <uv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>

#include "bus.h"
#include "clock.h"
#include "file.h"
#include "gw.h"
#include "hub.h"
#include "listen.h"
#include "log.h"
#include "opt.h"
#include "sig.h"
#include "ws.h"

#define USAGE "usage: chat-gw [--standalone] [--listen ADDR:PORT] [--auth none|jwt]\n" \
	"              [--jwt-secret-file FILE] [--node ID] [--ready-fd N] [-v N] [options]\n"

struct gw_config gw_cfg;
static int64_t stop_deadline_us;  /* set by the first TERM/INT */
static uv_loop_t loop;            /* the event loop (epoll, through libuv) */
static int exit_status = EX_OK;
static struct lws_context *ctx;
static lws_sorted_usec_list_t tick_sul;
static lws_sorted_usec_list_t presence_sul;

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "chat-gw: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n" USAGE);
	exit(EX_USAGE);
}

static void help(void)
{
	printf(USAGE "\n"
	"WebSocket chat gateway (protocol chat.v1). See chat-gw(1).\n\n"
	"  --standalone            single node: local fan-out, presence and history\n"
	"  --listen ADDR:PORT      listen address (127.0.0.1:8080; port 0: any)\n"
	"  --auth none|jwt         none takes ?user=NAME (development); jwt (default)\n"
	"                          takes ?token=JWT signed HS256\n"
	"  --jwt-secret-file FILE  the HS256 secret\n"
	"  --node ID               node name in message ids and bus routes (hostname)\n"
	"  --ready-fd N            write ADDR:PORT and a newline to fd N when listening\n"
	"  --reuseport             share the port with other chat-gw (SO_REUSEPORT)\n"
	"  --max-conns N           connections (100000); more are refused with 503\n"
	"  --max-frame SIZE        largest client frame (64K); larger: close 1009\n"
	"  --max-body SIZE         largest message body (16K); larger: too_large\n"
	"  --send-queue N          frames queued per client (1024); full: close 4008\n"
	"  --rate N                publishes per second per client (50)\n"
	"  --burst N               publishes in a burst per client (500)\n"
	"  --history N             messages kept per room, standalone (1000)\n"
	"  --max-rooms N           rooms in memory (100000)\n"
	"  --rooms-per-conn N      rooms one connection may join (100)\n"
	"  --dedupe N              publish refs remembered per client (32)\n"
	"  --presence-batch DUR    send presence changes per room every (100ms)\n"
	"  --ping-interval DUR     ping idle clients after (30s)\n"
	"  --ping-timeout DUR      close clients silent for (75s)\n"
	"  --max-line SIZE         longest bus line (1M)\n"
	"  --bus-backlog SIZE      bytes queued for the relay (4M); full: unavailable\n"
	"  --bus-timeout DUR       wait for a confirm or an answer (10s)\n"
	"  --max-pending N         publishes and queries waiting for the bus (65536)\n"
	"  -v N                    log level: 0 fatal, 1 warn, 2 info, 3 debug (1)\n"
	"  --help, --version\n");
	exit(EX_OK);
}

static void lws_log_emit(int level, const char *line)
{
	char tmp[512];
	size_t n = strlen(line);

	/* lws lines start with its own timestamp and end with a newline. */
	if (n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	memcpy(tmp, line, n);
	while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r'))
		n--;
	tmp[n] = '\0';
	log_write(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "libwebsockets",
		  "detail=%s", log_q(tmp));
}

/* The HS256 secret: the file whole, trailing white space ignored (as
 * chat-cli token reads it). */
static int read_secret(const char *path)
{
	size_t n;
	char *s = file_read_small(path, 4096, &n);

	if (!s) {
		LOG_F(errno == ENOBUFS ? "unable to read secret file" : "unable to open secret file",
		      "file=%s err=%s", log_q(path),
		      log_q(errno == ENOBUFS ? "longer than 4096 bytes" : strerror(errno)));
		return -1;
	}
	if (n == 0) {
		LOG_F("secret file is empty", "file=%s", log_q(path));
		free(s);
		return -1;
	}
	gw_cfg.secret = (unsigned char *)s;
	gw_cfg.secretlen = n;
	return 0;
}

enum {
	O_STANDALONE = 256, O_LISTEN, O_AUTH, O_SECRET, O_NODE, O_READY,
	O_REUSEPORT, O_MAXCONNS, O_MAXFRAME, O_MAXBODY, O_SENDQ, O_RATE,
	O_BURST, O_HISTORY, O_MAXROOMS, O_ROOMSPER, O_DEDUPE, O_PING,
	O_PINGTO, O_MAXLINE, O_BACKLOG, O_BUSTO, O_MAXPEND, O_PRESBATCH, O_HELP,
	O_VERSION,
};

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "standalone", no_argument, NULL, O_STANDALONE },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "auth", required_argument, NULL, O_AUTH },
		{ "jwt-secret-file", required_argument, NULL, O_SECRET },
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
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *secret_file = NULL;
	char err[256], host[64];
	uint64_t v;
	int c, verbosity = LOG_WARN;

	strcpy(gw_cfg.host, "127.0.0.1");
	gw_cfg.port = 8080;
	gw_cfg.auth = AUTH_JWT;
	gw_cfg.ready_fd = -1;
	gw_cfg.max_conns = 100000;
	gw_cfg.max_frame = 64 * 1024;
	gw_cfg.max_body = 16 * 1024;
	gw_cfg.send_queue = 1024;
	gw_cfg.rate = 50;
	gw_cfg.burst = 500;
	gw_cfg.history = 1000;
	gw_cfg.max_rooms = 100000;
	gw_cfg.rooms_per_conn = 100;
	gw_cfg.dedupe = 32;
	gw_cfg.ping_ms = 30000;
	gw_cfg.timeout_ms = 75000;
	gw_cfg.max_line = 1024 * 1024;
	gw_cfg.bus_backlog = 4 * 1024 * 1024;
	gw_cfg.bus_timeout_ms = 10000;
	gw_cfg.max_pending = 65536;
	gw_cfg.presence_batch_ms = 100;
	/* Default node: short host name and pid, unique on the host. */
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "gw");
	host[strcspn(host, ".")] = '\0';
	host[40] = '\0';
	snprintf(gw_cfg.node, sizeof(gw_cfg.node), "%s-%d", host, (int)getpid());
	if (!id_node_valid(gw_cfg.node))
		snprintf(gw_cfg.node, sizeof(gw_cfg.node), "gw-%d", (int)getpid());

#define NUM(field, lo, hi) \
	if (opt_uint(optarg, lo, hi, &v, err, sizeof(err)) < 0) \
		usage_error("%s", err); \
	gw_cfg.field = v
#define SIZE(field, lo, hi) \
	if (opt_size(optarg, lo, hi, &v, err, sizeof(err)) < 0) \
		usage_error("%s", err); \
	gw_cfg.field = v
#define DUR(field, lo, hi) \
	if (opt_duration_ms(optarg, lo, hi, &v, err, sizeof(err)) < 0) \
		usage_error("%s", err); \
	gw_cfg.field = v

	while ((c = getopt_long(argc, argv, "v:", longopts, NULL)) != -1) {
		switch (c) {
		case O_STANDALONE: gw_cfg.standalone = true; break;
		case O_LISTEN:
			if (opt_addr(optarg, gw_cfg.host, sizeof(gw_cfg.host),
				     &gw_cfg.port, err, sizeof(err)) < 0)
				usage_error("%s", err);
			break;
		case O_AUTH:
			if (!strcmp(optarg, "none"))
				gw_cfg.auth = AUTH_NONE;
			else if (!strcmp(optarg, "jwt"))
				gw_cfg.auth = AUTH_JWT;
			else
				usage_error("'%s' is not an auth mode (none, jwt)", optarg);
			break;
		case O_SECRET: secret_file = optarg; break;
		case O_NODE:
			if (!id_node_valid(optarg))
				usage_error("'%s' is not a node name (1-64 of A-Z a-z 0-9 _ . : -)", optarg);
			snprintf(gw_cfg.node, sizeof(gw_cfg.node), "%s", optarg);
			break;
		case O_READY:
			if (opt_uint(optarg, 0, 1024, &v, err, sizeof(err)) < 0)
				usage_error("%s", err);
			gw_cfg.ready_fd = (int)v;
			break;
		case O_REUSEPORT: gw_cfg.reuseport = true; break;
		case O_MAXCONNS: NUM(max_conns, 1, 10000000); break;
		case O_MAXFRAME: SIZE(max_frame, 256, 16 * 1024 * 1024); break;
		case O_MAXBODY: SIZE(max_body, 16, 16 * 1024 * 1024); break;
		case O_SENDQ: NUM(send_queue, 8, 1000000); break;
		case O_RATE: NUM(rate, 1, 10000000); break;
		case O_BURST: NUM(burst, 1, 10000000); break;
		case O_HISTORY: NUM(history, 0, 10000000); break;
		case O_MAXROOMS: NUM(max_rooms, 1, 100000000); break;
		case O_ROOMSPER: NUM(rooms_per_conn, 1, 100000); break;
		case O_DEDUPE: NUM(dedupe, 0, 4096); break;
		case O_PING: DUR(ping_ms, 1000, 3600000); break;
		case O_PINGTO: DUR(timeout_ms, 1000, 3600000); break;
		case O_MAXLINE: SIZE(max_line, 1024, 64 * 1024 * 1024); break;
		case O_BACKLOG: SIZE(bus_backlog, 4096, 1024ULL * 1024 * 1024); break;
		case O_BUSTO: DUR(bus_timeout_ms, 100, 3600000); break;
		case O_MAXPEND: NUM(max_pending, 1, 10000000); break;
		case O_PRESBATCH: DUR(presence_batch_ms, 1, 60000); break;
		case 'v':
			if (opt_uint(optarg, 0, 3, &v, err, sizeof(err)) < 0)
				usage_error("%s", err);
			verbosity = (int)v;
			break;
		case O_HELP: help(); break;
		case O_VERSION:
			printf("chat-gw %s\n", CHAT_VERSION);
			exit(EX_OK);
		default:
			fprintf(stderr, USAGE);
			exit(EX_USAGE);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (gw_cfg.timeout_ms <= gw_cfg.ping_ms)
		usage_error("%s", "--ping-timeout must be longer than --ping-interval");
	if (gw_cfg.max_body > gw_cfg.max_frame)
		gw_cfg.max_body = gw_cfg.max_frame;
	log_init("chat-gw", verbosity);
	if (gw_cfg.auth == AUTH_JWT) {
		if (!secret_file)
			usage_error("%s", "--auth jwt needs --jwt-secret-file (or use --auth none)");
		if (read_secret(secret_file) < 0)
			exit(EX_CONFIG);
	}
}

static void tick(lws_sorted_usec_list_t *sul);

static void begin_stop(void)
{
	if (ws_stopping)
		return;
	lws_sul_schedule(ctx, 0, &tick_sul, tick, 1000);
	LOG_I("stopping", "connections=%zu", hub.nconns);
	ws_stopping = true;
	listen_stop();
	stop_deadline_us = clock_mono_us() + 5 * 1000000;
	ws_close_all(1001, "going away");
}

void gw_shutdown(int status)
{
	/* A bus lost while stopping anyway does not change the outcome. */
	if (!ws_stopping && exit_status == EX_OK)
		exit_status = status;
	begin_stop();
}

static void tick(lws_sorted_usec_list_t *sul)
{
	int64_t next = 1000000;

	hub_tick(&hub, clock_wall_ms());
	if (ws_stopping) {
		if (hub.nconns == 0 || clock_mono_us() >= stop_deadline_us) {
			uv_stop(&loop);
			return;
		}
		next = 20000;
	}
	lws_sul_schedule(ctx, 0, sul, tick, next);
}

static void presence_tick(lws_sorted_usec_list_t *sul)
{
	hub_presence_flush(&hub);
	lws_sul_schedule(ctx, 0, sul, presence_tick,
			 (lws_usec_t)gw_cfg.presence_batch_ms * 1000);
}

static int internal_callback(struct lws *wsi, enum lws_callback_reasons reason,
			     void *user, void *in, size_t len)
{
	int s;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_HTTP:
		return -1; /* internal descriptors only, never a client */
	case LWS_CALLBACK_RAW_RX_FILE:
		if (listen_owns(wsi)) {
			listen_accept();
			break;
		}
		if (bus_owns(wsi))
			return bus_callback(wsi, reason);
		while ((s = sig_next())) {
			if (ws_stopping && s == SIGINT) {
				LOG_W("second interrupt: exiting now", NULL);
				exit(EX_OK);
			}
			begin_stop();
		}
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (bus_owns(wsi))
			return bus_callback(wsi, reason);
		break;
	default:
		break;
	}
	return 0;
}

/* lws gives every connection a receive buffer of this size for its whole
 * life, and reads a connection at most this much a turn: small keeps idle
 * connections cheap (about 2.8 KiB each in all at 1024), large lets a busy
 * publisher's frames be read, and fanned out, many per turn (at 512 one
 * publisher into a room of 1,000 saturated at about 250,000 deliveries/s,
 * at 1024 it held 300,000 with a p50 under 30 ms). A larger frame arrives
 * in pieces and is put together in ws.c. */
#define RX_BUFFER 1024

static struct lws_protocols protocols[] = {
	{ "chat.v1", ws_callback, sizeof(struct conn), RX_BUFFER, 0, NULL, 0 },
	{ "chat-internal", internal_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void announce_ready(struct lws_vhost *vh)
{
	char line[320];
	int n;

	if (gw_cfg.ready_fd < 0)
		return;
	n = snprintf(line, sizeof(line), strchr(gw_cfg.host, ':') ? "[%s]:%d\n" : "%s:%d\n",
		     gw_cfg.host, listen_port());
	if (write(gw_cfg.ready_fd, line, (size_t)n) != n)
		LOG_W("unable to write readiness", "fd=%d err=%s", gw_cfg.ready_fd,
		      log_q(strerror(errno)));
	close(gw_cfg.ready_fd);
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGTERM, SIGINT, 0 };
	struct lws_context_creation_info info;
	void *foreign[1];
	lws_retry_bo_t retry;
	struct lws_vhost *vh;
	struct rlimit rl;
	lws_sock_file_fd_type fd;
	int sigfd;

	parse_args(argc, argv);
	gw_metrics_init();
	if (hub_init(&hub, gw_cfg.node) < 0) {
		LOG_F("bad node name", "node=%s", log_q(gw_cfg.node));
		return EX_CONFIG;
	}
	ws_setup();
	sigfd = sig_init(sigs);
	if (sigfd < 0) {
		LOG_F("unable to set up signals", "err=%s", log_q(strerror(errno)));
		return EX_OSERR;
	}
	/* Each connection is a descriptor: allow as many as the hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	lws_set_log_level(log_level >= LOG_DEBUG ? LLL_ERR | LLL_WARN : LLL_ERR,
			  lws_log_emit);
	memset(&retry, 0, sizeof(retry));
	retry.secs_since_valid_ping = (uint16_t)(gw_cfg.ping_ms / 1000);
	retry.secs_since_valid_hangup = (uint16_t)(gw_cfg.timeout_ms / 1000);
	memset(&info, 0, sizeof(info));
	/* We listen and accept ourselves (listen.c) and hand lws each
	 * connection: a server vhost without a listener of its own. */
	if (listen_open(gw_cfg.host, gw_cfg.port, gw_cfg.reuseport) < 0)
		return EX_OSERR;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	/* libuv's loop is epoll: the cost of a turn grows with the sockets
	 * that are ready, not with all of them, as poll()'s does (at 10,000
	 * connections poll() alone took milliseconds a turn). lws runs on our
	 * loop, so that we can stop it (uv_stop) and drain it at exit. */
	if (uv_loop_init(&loop) != 0) {
		LOG_F("unable to create the event loop", NULL);
		return EX_OSERR;
	}
	if (ws_start(&loop) < 0) {
		LOG_F("unable to set up the writer", NULL);
		return EX_OSERR;
	}
	foreign[0] = &loop;
	info.foreign_loops = foreign;
	info.pcontext = &ctx; /* lws clears it once the context is all gone */
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBUV;
	info.fd_limit_per_thread = (unsigned)(gw_cfg.max_conns + 256);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && info.fd_limit_per_thread > rl.rlim_cur)
		info.fd_limit_per_thread = (unsigned)rl.rlim_cur;
	info.retry_and_idle_policy = &retry;
	info.timeout_secs = 10;
	info.max_http_header_pool = 64;
	info.vhost_name = "default";
	ctx = lws_create_context(&info);
	if (!ctx) {
		LOG_F("unable to create the libwebsockets context", NULL);
		return EX_SOFTWARE;
	}
	vh = lws_get_vhost_by_name(ctx, "default");
	memset(&fd, 0, sizeof(fd));
	fd.filefd = (lws_filefd_type)(intptr_t)sigfd;
	if (!vh || !lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd,
					       "chat-internal", NULL) ||
	    listen_start(vh, "chat-internal") < 0) {
		LOG_F("unable to watch the signal pipe", NULL);
		lws_context_destroy(ctx);
		return EX_SOFTWARE;
	}
	if (!gw_cfg.standalone && bus_start(ctx, vh, "chat-internal") < 0) {
		lws_context_destroy(ctx);
		return EX_OSERR;
	}
	LOG_I("listening", "addr=%s port=%d node=%s mode=%s", log_q(gw_cfg.host),
	      listen_port(), log_q(gw_cfg.node),
	      gw_cfg.standalone ? "standalone" : "bus");
	announce_ready(vh);
	lws_sul_schedule(ctx, 0, &tick_sul, tick, 1000000);
	lws_sul_schedule(ctx, 0, &presence_sul, presence_tick,
			 (lws_usec_t)gw_cfg.presence_batch_ms * 1000);

	uv_run(&loop, UV_RUN_DEFAULT);

	/* On libuv a context is destroyed over loop turns: destroy, let the
	 * loop close lws' handles, destroy again for what is left. */
	lws_context_destroy(ctx);
	ws_stop();
	uv_run(&loop, UV_RUN_DEFAULT);
	if (ctx)
		lws_context_destroy(ctx);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (!gw_cfg.standalone)
		bus_stop();
	hub_free(&hub);
	free(gw_cfg.secret);
	LOG_I("stopped", "status=%d", exit_status);
	if (fclose(stdout) != 0 && exit_status == EX_OK)
		exit_status = EX_IOERR;
	return exit_status;
}
