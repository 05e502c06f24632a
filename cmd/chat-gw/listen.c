/*
 * listen: the listening socket, accepted connections handed to lws as HTTP
 * connections (see listen.h).
 */
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw.h"
#include "head.h"
#include "hub.h"
#include "log.h"

static int lfd = -1;               /* the listening socket */
static struct lws *lwsi;           /* it, in the lws loop */
static bool paused;                /* out of descriptors: not accepting */
static lws_sorted_usec_list_t resume_sul; /* tries again while paused */

#define LISTEN_RETRY_US 100000     /* how often a paused listener tries */
static int bound_port;

int listen_open(const char *host, int port, bool reuseport)
{
	struct addrinfo hints, *ai = NULL;
	char portstr[8];
	int one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &ai);
	if (r) {
		LOG_F("unable to listen", "addr=%s err=%s", log_q(host), log_q(gai_strerror(r)));
		return -1;
	}
	lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		goto fail;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, 4096) < 0)
		goto fail;
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0)
			goto fail;
		bound_port = ntohs(ss.ss_family == AF_INET6 ?
				   ((struct sockaddr_in6 *)&ss)->sin6_port :
				   ((struct sockaddr_in *)&ss)->sin_port);
	}
	freeaddrinfo(ai);
	return 0;
fail:
	LOG_F("unable to listen", "addr=%s port=%d err=%s", log_q(host), port,
	      log_q(strerror(errno)));
	if (lfd >= 0)
		close(lfd);
	lfd = -1;
	freeaddrinfo(ai);
	return -1;
}

int listen_port(void)
{
	return bound_port;
}

int listen_start(struct lws_vhost *vh, const char *protocol)
{
	lws_sock_file_fd_type u;

	memset(&u, 0, sizeof(u));
	u.filefd = (lws_filefd_type)(intptr_t)lfd;
	lwsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u, protocol, NULL);
	if (!lwsi) {
		LOG_F("unable to watch the listening socket", NULL);
		return -1;
	}
	return 0;
}

bool listen_owns(struct lws *wsi)
{
	return wsi && wsi == lwsi;
}

void listen_update(void)
{
	if (!lwsi || !paused)
		return;
	paused = false;
	lws_sul_cancel(&resume_sul);
	lws_rx_flow_control(lwsi, 1);
}

/* Out of descriptors, the listener waits; any descriptor freed anywhere
 * (a head, an HTTP request, a WebSocket) may be what it waits for, so it
 * tries again on a timer rather than on one kind of close. */
static void listen_resume(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	listen_update();
}

void listen_accept(void)
{
	int i;

	/* A bounded batch per turn keeps the loop fair to the clients. */
	for (i = 0; i < 64 && !paused; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* Wait for a close rather than spin. */
				gw_m.accept_paused.value++;
				LOG_W("out of descriptors: not accepting for a while",
				      "connections=%zu heads=%u", hub.nconns, head_count());
				paused = true;
				lws_rx_flow_control(lwsi, 0);
				lws_sul_schedule(lws_get_context(lwsi), 0, &resume_sul,
						 listen_resume, LISTEN_RETRY_US);
				return;
			}
			if (errno != EAGAIN)
				LOG_W("unable to accept", "err=%s", log_q(strerror(errno)));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* A fixed kernel send buffer (no autotuning, which grows it to
		 * megabytes): a client that stops reading fills it and then
		 * its queue, and is cut as a slow consumer, instead of the
		 * kernel holding everything it was sent. */
		if (gw_cfg.sndbuf) {
			int sb = (int)gw_cfg.sndbuf;

			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
		}
		/* The request head is read at the door (head.c) before
		 * libwebsockets gets the connection. */
		head_accept(fd, (struct sockaddr *)&ss, sl);
	}
}

void listen_stop(void)
{
	if (!lwsi)
		return;
	lws_sul_cancel(&resume_sul);
	/* Closing the lws handle closes the descriptor. */
	lws_set_timeout(lwsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
	lwsi = NULL;
	lfd = -1;
}
