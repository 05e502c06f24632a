/*
 * chat-presence: presence across gateways in Redis (see
 * man/chat-presence.1). main() only wires: argv -> options -> the Redis URL
 * -> the subcommand -> exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"

int main(int argc, char **argv)
{
	struct pres_opts o;
	struct rurl u;
	char err[256], *file_url = NULL;
	const char *url;
	size_t len;
	int code;

	/* A closed 0, 1 or 2 would be reused by the Redis socket, and lines
	 * or logs would go there: hold them with /dev/null. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return EX_OSERR;
	log_init("chat-presence", LOG_WARN);
	switch (pres_args(argc, argv, &o, err, sizeof(err))) {
	case ARGS_HELP: pres_usage(STDOUT_FILENO, true); return EX_OK;
	case ARGS_VERSION:
		printf("chat-presence %s\n", CHAT_VERSION);
		return fclose(stdout) == 0 ? EX_OK : EX_IOERR;
	case ARGS_USAGE:
		fprintf(stderr, "chat-presence: %s\n", err);
		pres_usage(STDERR_FILENO, false);
		return EX_USAGE;
	}
	log_init("chat-presence", o.verbosity);
	/* An active tracker and its standbys write files side by side (the
	 * relay exports its node as CHAT_NODE). */
	metrics_file_labels(getenv("CHAT_NODE"), NULL);

	url = o.url;
	if (o.url_file) {
		file_url = file_read_small(o.url_file, 4096, &len);
		if (!file_url) {
			LOG_F("unable to read the Redis URL file", "path=%s err=%s",
			      log_q(o.url_file), log_q(strerror(errno)));
			return EX_CONFIG;
		}
		url = file_url;
	}
	code = rurl_parse(url, &u, err, sizeof(err));
	if (file_url) {
		memset(file_url, 0, len);
		free(file_url);
	}
	if (code < 0) {
		LOG_F("bad Redis URL", "err=%s from=%s", log_q(err),
		      o.url_file    ? "--redis-file" :
		      o.url_on_argv ? "--redis" :
				      "CHAT_REDIS_URL");
		return o.url_on_argv ? EX_USAGE : EX_CONFIG;
	}
	if (o.url_on_argv && u.password[0])
		LOG_W("the Redis password is on the command line, where ps "
		      "shows it to every user: use --redis-file or "
		      "CHAT_REDIS_URL",
		      NULL);

	switch (o.cmd) {
	case PRES_TRACK: code = track_run(&o, &u); break;
	case PRES_ONLINE: code = online_run(&o, &u); break;
	case PRES_WATCH: code = watch_run(&o, &u); break;
	default: code = EX_SOFTWARE; break;
	}
	memset(&u, 0, sizeof(u));
	if (fclose(stdout) != 0 && code == EX_OK)
		code = EX_IOERR;
	return code;
}
