/*
 * chat-gw: the WebSocket edge of the chat toolkit. main() only wires:
 * options (args.c) -> the hub in its mode (hub.c with local.c standalone,
 * upstream.c on the bus) -> the libwebsockets context (ws.c, http.c,
 * listen.c) and the pipes to chat-relay (pipe.c) -> the event loop -> exit
 * status.
 */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <uv.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>

#include "args.h"
#include "auth.h"
#include "clock.h"
#include "gw.h"
#include "head.h"
#include "hub.h"
#include "listen.h"
#include "local.h"
#include "log.h"
#include "pipe.h"
#include "sig.h"
#include "tls.h"
#include "upstream.h"
#include "ws.h"

static int64_t stop_deadline_us;  /* set by the first TERM/INT */
static unsigned ticks;            /* seconds gone, roughly */
static uv_loop_t loop;            /* the event loop (epoll, through libuv) */
static int exit_status = EX_OK;
static struct lws_context *ctx;
static lws_sorted_usec_list_t tick_sul;
static lws_sorted_usec_list_t metrics_sul;
static lws_sorted_usec_list_t presence_sul;
static lws_sorted_usec_list_t sweep_sul;
static struct upstream up;        /* bus mode's state */

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
	/* libwebsockets 4.1 logs every adoption with a buffer (each
	 * connection from head.c) as an error: it is not one. */
	if (strstr(tmp, "adopt_socket_readbuf: calling service"))
		return;
	log_write(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "libwebsockets",
		  "detail=%s", log_q(tmp));
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
	if (!gw_cfg.standalone)
		up_stop(&up); /* presence: this node's users go at once */
	stop_deadline_us = clock_mono_us() + 5 * 1000000;
	hub_close_all(&hub, 1001, "going away");
}

/* The pipe's hooks: a line from the relay, and the relay gone. */
static void relay_line(void *arg, const char *line, size_t n)
{
	up_line(arg, line, n);
}

static void relay_lost(void *arg, const char *why)
{
	LOG_W("relay gone: closing clients", "reason=%s", log_q(why));
	/* A relay lost while stopping anyway does not change the outcome. */
	if (!ws_stopping && exit_status == EX_OK)
		exit_status = EX_TEMPFAIL;
	begin_stop();
}

static void tick(lws_sorted_usec_list_t *sul)
{
	int64_t next = 1000000;

	hub_tick(&hub, clock_wall_ms());
	/* Give freed memory back to the system now and then: after a burst
	 * (a slow consumer's queue dropped, a room forgotten) the heap
	 * keeps its high-water mark otherwise. */
	if (++ticks % 10 == 0)
		malloc_trim(0);
	if (ws_stopping) {
		/* Done when every client is gone and what was written for the
		 * relay is out (the down line, the last leaves). */
		if ((hub.nconns == 0 && (gw_cfg.standalone || pipe_backlog() == 0)) ||
		    clock_mono_us() >= stop_deadline_us) {
			uv_stop(&loop);
			return;
		}
		next = 20000;
	}
	lws_sul_schedule(ctx, 0, sul, tick, next);
}

static void sweep_tick(lws_sorted_usec_list_t *sul)
{
	ws_sweep();
	lws_sul_schedule(ctx, 0, sul, sweep_tick, (lws_usec_t)WS_SWEEP_MS * 1000);
}

/* --metrics-file: what /metrics gives, labelled with the node, for the
 * textfile collector (gateways sharing a port with --reuseport share its
 * /metrics too: a scrape gets one of them). A failure is logged once per
 * run of failures. */
static void metrics_file_write(void)
{
	static bool failed;

	if (!gw_cfg.metrics_file)
		return;
	if (metrics_write_file(gw_cfg.metrics_file) < 0) {
		if (!failed)
			LOG_W("unable to write the metrics file", "path=%s err=%s",
			      log_q(gw_cfg.metrics_file), log_q(strerror(errno)));
		failed = true;
		return;
	}
	failed = false;
}

static void metrics_tick(lws_sorted_usec_list_t *sul)
{
	metrics_file_write();
	lws_sul_schedule(ctx, 0, sul, metrics_tick,
			 (lws_usec_t)gw_cfg.stats_interval_ms * 1000);
}

static void presence_tick(lws_sorted_usec_list_t *sul)
{
	hub_presence_flush(&hub);
	lws_sul_schedule(ctx, 0, sul, presence_tick,
			 (lws_usec_t)gw_cfg.presence_batch_ms * 1000);
}

/* SIGHUP: read the token keys again (and, with TLS, the certificate).
 * What fails keeps what is in use, and says why. */
static void reload(void)
{
	char err[512];

	if (auth_reload(err, sizeof(err)) < 0)
		LOG_W("unable to reload the token keys: keeping those in use", "err=%s",
		      log_q(err));
	else
		LOG_I("token keys reloaded", NULL);
	if (tls_on()) {
		if (tls_reload(err, sizeof(err)) < 0)
			LOG_W("unable to reload the certificate: keeping the one in use",
			      "err=%s", log_q(err));
		else
			LOG_I("certificate reloaded: new connections get it", NULL);
	}
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
		if (pipe_owns(wsi))
			return pipe_callback(wsi, reason);
		while ((s = sig_next())) {
			if (s == SIGHUP) {
				reload();
				continue;
			}
			if (ws_stopping && s == SIGINT) {
				LOG_W("second interrupt: exiting now", NULL);
				exit(EX_OK);
			}
			begin_stop();
		}
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (pipe_owns(wsi))
			return pipe_callback(wsi, reason);
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
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, 0 };
	struct lws_context_creation_info info;
	void *foreign[1];
	lws_retry_bo_t retry;
	struct lws_vhost *vh;
	struct rlimit rl;
	lws_sock_file_fd_type fd;
	char err[512];
	int sigfd, verbosity;

	switch (gw_args(argc, argv, &gw_cfg, &verbosity, err, sizeof(err))) {
	case ARGS_HELP:
		gw_usage(STDOUT_FILENO, true);
		return EX_OK;
	case ARGS_VERSION:
		printf("chat-gw %s\n", CHAT_VERSION);
		return fclose(stdout) == 0 ? EX_OK : EX_IOERR;
	case ARGS_USAGE:
		fprintf(stderr, "chat-gw: %s\n", err);
		gw_usage(STDERR_FILENO, false);
		return EX_USAGE;
	case ARGS_CONFIG:
		log_init("chat-gw", verbosity);
		LOG_F(err, NULL);
		return EX_CONFIG;
	}
	log_init("chat-gw", verbosity);
	if (auth_load(err, sizeof(err)) < 0) {
		LOG_F(err, NULL);
		return EX_CONFIG;
	}
	if (gw_cfg.auth == AUTH_JWT && !gw_cfg.norigins)
		LOG_W("no --allow-origin: a page of any site may open connections here "
		      "with a token it holds", NULL);
	gw_metrics_init();
	if (hub_init(&hub, gw_cfg.node, gw_cfg.standalone ? &local_ops : &up_ops, &up) < 0) {
		LOG_F("bad node name", "node=%s", log_q(gw_cfg.node));
		return EX_CONFIG;
	}
	if (!gw_cfg.standalone) {
		up_init(&up, &hub);
		hub.bus_write = pipe_send;
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
	/* Pings and dead peers are ws.c's (ws_sweep): libwebsockets' own
	 * validity timer would ping every connection that came at the same
	 * moment at the same moment, and would count only pongs as life. */
	retry.secs_since_valid_ping = 0;
	retry.secs_since_valid_hangup = 0;
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
	if (uv_loop_init(&loop) != 0 ||
	    uv_loop_configure(&loop, UV_METRICS_IDLE_TIME) != 0) {
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
	if (gw_cfg.tls_cert)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.fd_limit_per_thread = (unsigned)(gw_cfg.max_conns + 256);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && info.fd_limit_per_thread > rl.rlim_cur)
		info.fd_limit_per_thread = (unsigned)rl.rlim_cur;
	info.retry_and_idle_policy = &retry;
	info.timeout_secs = 10;
	info.keepalive_timeout = 5;
	/* Only complete request heads reach libwebsockets (head.c), so its
	 * header tables are held for moments: the pool can stay small. */
	info.max_http_header_pool = 64;
	info.max_http_header_data = (unsigned short)(gw_cfg.max_header + 1024 > 65535 ?
						     65535 : gw_cfg.max_header + 1024);
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
	    listen_start(vh, "chat-internal") < 0 || head_start(&loop, vh) < 0) {
		LOG_F("unable to watch the signal pipe", NULL);
		lws_context_destroy(ctx);
		return EX_SOFTWARE;
	}
	if (tls_start(ctx, vh, protocols, err, sizeof(err)) < 0) {
		LOG_F(err, NULL);
		lws_context_destroy(ctx);
		return EX_CONFIG;
	}
	if (!gw_cfg.standalone) {
		struct pipe_hooks ph = { relay_line, relay_lost, &up };

		if (pipe_start(ctx, vh, "chat-internal", &ph, gw_cfg.max_line,
			       gw_cfg.bus_backlog) < 0) {
			lws_context_destroy(ctx);
			return EX_OSERR;
		}
		up_start(&up);
	}
	LOG_I("listening", "addr=%s port=%d node=%s mode=%s", log_q(gw_cfg.host),
	      listen_port(), log_q(gw_cfg.node), hub.ops->name);
	announce_ready(vh);
	lws_sul_schedule(ctx, 0, &tick_sul, tick, 1000000);
	lws_sul_schedule(ctx, 0, &sweep_sul, sweep_tick, (lws_usec_t)WS_SWEEP_MS * 1000);
	lws_sul_schedule(ctx, 0, &presence_sul, presence_tick,
			 (lws_usec_t)gw_cfg.presence_batch_ms * 1000);
	if (gw_cfg.metrics_file) {
		metrics_file_labels(gw_cfg.node, NULL);
		lws_sul_schedule(ctx, 0, &metrics_sul, metrics_tick, 0);
	}

	uv_run(&loop, UV_RUN_DEFAULT);

	/* On libuv a context is destroyed over loop turns: destroy, let the
	 * loop close lws' handles, destroy again for what is left. */
	lws_context_destroy(ctx);
	ws_stop();
	head_stop();
	tls_stop();
	uv_run(&loop, UV_RUN_DEFAULT);
	if (ctx)
		lws_context_destroy(ctx);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (!gw_cfg.standalone) {
		pipe_stop();
		up_free(&up);
	}
	metrics_file_write(); /* the last figures */
	hub_free(&hub);
	auth_free();
	gw_config_free(&gw_cfg);
	LOG_I("stopped", "status=%d", exit_status);
	/* In bus mode stdout was the pipe to the relay, written (and its
	 * errors seen) by pipe.c and closed with the loop; stdio never had
	 * it. */
	if (gw_cfg.standalone && fclose(stdout) != 0 && exit_status == EX_OK)
		exit_status = EX_IOERR;
	return exit_status;
}
