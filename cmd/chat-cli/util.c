/*
 * util: the pieces every chat-cli subcommand needs around libwebsockets:
 * splitting a ws:// URL, adding the auth query, creating a client-only lws
 * context whose own log lines come out as logfmt, reading a secret or token
 * file, and raising the fd limit for bench.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "buf.h"
#include "log.h"

int cli_url_parse(const char *s, struct cli_url *u, char *err, size_t errlen)
{
	const char *p, *hend, *pstart;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (strlen(s) >= sizeof(u->text)) {
		snprintf(err, errlen, "URL is too long");
		return -1;
	}
	snprintf(u->text, sizeof(u->text), "%s", s);
	if (!strncasecmp(s, "ws://", 5)) {
		p = s + 5;
		u->port = 80;
	} else if (!strncasecmp(s, "wss://", 6)) {
		p = s + 6;
		u->tls = true;
		u->port = 443;
	} else {
		snprintf(err, errlen, "'%s' is not a ws:// or wss:// URL", s);
		return -1;
	}
	pstart = p + strcspn(p, "/?");
	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(pstart - p));
		if (!hend) {
			snprintf(err, errlen, "'%s': unterminated IPv6 address", s);
			return -1;
		}
		hl = (size_t)(hend - p - 1);
		memcpy(u->host, p + 1, hl < CLI_HOST_MAX ? hl : 0);
		hend++;
	} else {
		hend = memchr(p, ':', (size_t)(pstart - p));
		if (!hend)
			hend = pstart;
		hl = (size_t)(hend - p);
		if (hl < CLI_HOST_MAX)
			memcpy(u->host, p, hl);
	}
	if (hl == 0 || hl >= CLI_HOST_MAX) {
		snprintf(err, errlen, "'%s': missing or overlong host", s);
		return -1;
	}
	if (*hend == ':') {
		char *end;
		long port = strtol(hend + 1, &end, 10);

		if (end == hend + 1 || end != pstart || port < 1 || port > 65535) {
			snprintf(err, errlen, "'%s': bad port", s);
			return -1;
		}
		u->port = (int)port;
	} else if (hend != pstart) {
		snprintf(err, errlen, "'%s': bad host", s);
		return -1;
	}
	if (*pstart == '/')
		snprintf(u->path, sizeof(u->path), "%s", pstart);
	else
		snprintf(u->path, sizeof(u->path), "/%s", pstart);
	return 0;
}

int cli_url_add_query(struct cli_url *u, const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = strlen(u->path);
	int n;

	n = snprintf(u->path + o, sizeof(u->path) - o, "%c%s=",
		     strchr(u->path, '?') ? '&' : '?', key);
	if (n < 0 || (size_t)n >= sizeof(u->path) - o)
		return -1;
	o += (size_t)n;
	for (; *value; value++) {
		unsigned char c = (unsigned char)*value;

		if (o + 4 >= sizeof(u->path))
			return -1;
		if (isalnum(c) || strchr("-._~", c)) {
			u->path[o++] = (char)c;
		} else {
			u->path[o++] = '%';
			u->path[o++] = hex[c >> 4];
			u->path[o++] = hex[c & 15];
		}
	}
	u->path[o] = '\0';
	return 0;
}

/* lws' own lines, at debug level only: they are for whoever debugs lws. */
static void cli_lws_log(int level, const char *line)
{
	char tmp[512];
	size_t n;

	snprintf(tmp, sizeof(tmp), "%s", line);
	n = strlen(tmp);
	while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r'))
		tmp[--n] = '\0';
	log_write(LOG_DEBUG, "lws", "lws_level=%d line=%s", level, log_q(tmp));
}

struct lws_context *cli_ctx_new(const struct cli_ctx_opts *o)
{
	void *foreign[1];
	struct lws_context_creation_info info;

	lws_set_log_level(log_enabled(LOG_DEBUG) ?
			  LLL_ERR | LLL_WARN | LLL_NOTICE : 0, cli_lws_log);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = o->protocols;
	info.user = o->user;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.fd_limit_per_thread = o->fd_limit;
	info.timeout_secs = o->timeout_s ? o->timeout_s : 10;
	info.connect_timeout_secs = info.timeout_secs;
	info.max_http_header_pool = o->header_pool ? o->header_pool : 4;
	/* Handshake replies are short: keep the header buffers small. */
	info.max_http_header_data = 2048;
	info.pt_serv_buf_size = 16384;
	if (o->tls)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.client_ssl_ca_filepath = o->ca_file;
	/* No extensions: permessage-deflate costs ~100 KB per connection. */
	info.extensions = NULL;
	info.pcontext = o->pcontext;
	if (o->uv_loop) {
		foreign[0] = o->uv_loop;
		info.foreign_loops = foreign;
		info.options |= LWS_SERVER_OPTION_LIBUV;
	}
	return lws_create_context(&info);
}

int cli_probe(const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct pollfd pfd;
	char portstr[16];
	socklen_t sl = sizeof(int);
	int fd, r, soerr = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "%s", gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	r = connect(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (r < 0 && errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 1000) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0)
			r = soerr ? -1 : 0;
		else
			soerr = ETIMEDOUT;
		errno = soerr;
	}
	if (r < 0)
		snprintf(err, errlen, "%s", strerror(errno));
	close(fd);
	return r < 0 ? -1 : 0;
}

uint64_t cli_raise_nofile(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : (uint64_t)rl.rlim_cur;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "chat-cli: %s\n", msg);
	if (!cmd || !strcmp(cmd, "connect"))
		fputs(cli_usage_connect, stderr);
	if (!cmd || !strcmp(cmd, "send"))
		fputs(cli_usage_send, stderr);
	if (!cmd || !strcmp(cmd, "token"))
		fputs(cli_usage_token, stderr);
	if (!cmd || !strcmp(cmd, "bench"))
		fputs(cli_usage_bench, stderr);
	if (!cmd)
		fputs("       chat-cli --help | --version\n", stderr);
	return 64;
}
