/*
 * pipe: chat-gw's stdin and stdout in the lws loop (see pipe.h). A stdin
 * that the loop cannot watch (a regular file) is read a slice per loop
 * turn; a stdout that it cannot watch is written at once.
 */
#include "pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "buf.h"
#include "gw.h"
#include "jsonl.h"
#include "log.h"

static struct lws *in_wsi, *out_wsi;
static struct jsonl in;           /* stdin lines */
static struct buf out;            /* stdout backlog */
static bool lost;                 /* stdin ended or stdout failed */
static size_t backlog_max;        /* --bus-backlog */
static struct pipe_hooks hooks;   /* where lines and the loss go */
static struct lws_context *bctx;  /* for the file reader's timer */
static lws_sorted_usec_list_t file_sul; /* reads a stdin that is a file */

static void pipe_lost(const char *why)
{
	if (lost)
		return;
	lost = true;
	buf_release(&out); /* nobody will read it */
	hooks.lost(hooks.arg, why);
}

static void pipe_flush(void)
{
	while (out.len) {
		ssize_t n = write(STDOUT_FILENO, out.data, out.len);

		if (n > 0) {
			buf_consume(&out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (out_wsi)
				lws_callback_on_writable(out_wsi);
			return;
		}
		pipe_lost(n < 0 ? strerror(errno) : "stdout closed");
		return;
	}
}

int pipe_send(const char *line, size_t n)
{
	if (lost)
		return -1;
	if (out.len + n + 1 > backlog_max)
		return -1;
	if (buf_add(&out, line, n) < 0 || buf_add(&out, "\n", 1) < 0)
		return -1;
	pipe_flush();
	return lost ? -1 : 0;
}

size_t pipe_backlog(void)
{
	return out.len;
}

static void pipe_lines(void)
{
	const char *line;
	size_t n;
	int r;

	while ((r = jsonl_next(&in, &line, &n)) != JSONL_NONE) {
		if (r == JSONL_OVERLONG) {
			gw_m.bus_bad.value++;
			LOG_W("bus line too long: dropped", "max=%llu",
			      (unsigned long long)in.max_line);
			continue;
		}
		hooks.line(hooks.arg, line, n);
	}
}

static void pipe_read(void)
{
	char tmp[65536];
	int rounds;

	/* A few reads per turn, so one busy pipe does not starve clients. */
	for (rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(STDIN_FILENO, tmp, sizeof(tmp));

		if (n > 0) {
			if (jsonl_feed(&in, tmp, (size_t)n) < 0) {
				pipe_lost("out of memory");
				return;
			}
			pipe_lines();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		jsonl_finish(&in);
		pipe_lines();
		pipe_lost(n < 0 ? strerror(errno) : "end of input");
		return;
	}
}

int pipe_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (wsi == in_wsi)
			pipe_read();
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		if (wsi == out_wsi)
			pipe_flush();
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (wsi == in_wsi) {
			in_wsi = NULL;
			jsonl_finish(&in);
			pipe_lines();
			pipe_lost("end of input");
		} else if (wsi == out_wsi) {
			out_wsi = NULL;
			pipe_lost("stdout closed");
		}
		break;
	default:
		break;
	}
	return 0;
}

bool pipe_owns(struct lws *wsi)
{
	return wsi && (wsi == in_wsi || wsi == out_wsi);
}

/* Whether the event loop (epoll) can watch fd: pipes, sockets and ttys
 * yes; regular files and /dev/null no. */
static bool fd_pollable(int fd)
{
	struct epoll_event ev;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	bool ok;

	if (ep < 0)
		return false;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ok = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
	close(ep);
	return ok;
}

/* stdin is a file (a recorded bus stream): read it a slice per turn. */
static void pipe_file_turn(lws_sorted_usec_list_t *sul)
{
	pipe_read();
	if (!lost)
		lws_sul_schedule(bctx, 0, sul, pipe_file_turn, 1);
}

static struct lws *pipe_adopt(struct lws_vhost *vh, const char *protocol, int fd)
{
	lws_sock_file_fd_type u;

	memset(&u, 0, sizeof(u));
	u.filefd = (lws_filefd_type)(intptr_t)fd;
	return lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u, protocol, NULL);
}

int pipe_start(struct lws_context *ctx, struct lws_vhost *vh, const char *protocol,
	       const struct pipe_hooks *h, size_t max_line, size_t backlog)
{
	bool in_poll = fd_pollable(STDIN_FILENO);
	bool out_poll = fd_pollable(STDOUT_FILENO);

	bctx = ctx;
	hooks = *h;
	backlog_max = backlog;
	jsonl_init(&in, max_line);
	buf_init(&out, 0);
	/* Pipes and sockets join the loop, non-blocking; a file is read a
	 * slice per turn, or written at once (it never makes us wait). */
	if ((in_poll && fcntl(STDIN_FILENO, F_SETFL,
			      fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK) < 0) ||
	    (out_poll && fcntl(STDOUT_FILENO, F_SETFL,
			       fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK) < 0)) {
		LOG_F("unable to make stdin and stdout non-blocking", "err=%s",
		      log_q(strerror(errno)));
		return -1;
	}
	if (in_poll)
		in_wsi = pipe_adopt(vh, protocol, STDIN_FILENO);
	else
		lws_sul_schedule(ctx, 0, &file_sul, pipe_file_turn, 1);
	if (out_poll)
		out_wsi = pipe_adopt(vh, protocol, STDOUT_FILENO);
	if ((in_poll && !in_wsi) || (out_poll && !out_wsi)) {
		LOG_F("unable to watch stdin and stdout", NULL);
		return -1;
	}
	return 0;
}

void pipe_stop(void)
{
	jsonl_free(&in);
	buf_release(&out);
}
