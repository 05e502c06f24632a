/*
 * chat-relay: JSON lines to and from RabbitMQ (see man/chat-relay.1).
 * main() only wires: argv -> options -> relay_run() -> exit status.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "relay.h"

int main(int argc, char **argv)
{
	struct relay_opts o;
	char err[256];
	int code;

	/* A closed 0, 1 or 2 would be reused by the AMQP socket or a pipe,
	 * and lines or logs would go there: hold them with /dev/null. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return EX_OSERR;
	log_init("chat-relay", LOG_WARN);
	switch (relay_args(argc, argv, &o, err, sizeof(err))) {
	case ARGS_HELP:
		relay_usage(STDOUT_FILENO, true);
		relay_opts_free(&o);
		return EX_OK;
	case ARGS_VERSION:
		relay_opts_free(&o);
		printf("chat-relay %s\n", CHAT_VERSION);
		return fclose(stdout) == 0 ? EX_OK : EX_IOERR;
	case ARGS_USAGE:
		relay_opts_free(&o);
		fprintf(stderr, "chat-relay: %s\n", err);
		relay_usage(STDERR_FILENO, false);
		return EX_USAGE;
	case ARGS_CONFIG:
		relay_opts_free(&o);
		fprintf(stderr, "chat-relay: %s\n", err);
		return EX_CONFIG;
	}
	log_init("chat-relay", o.verbosity);
	code = relay_run(&o);
	relay_opts_free(&o);
	if (fclose(stdout) != 0 && code == EX_OK)
		code = EX_IOERR;
	return code;
}
