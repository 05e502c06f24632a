/*
 * chat-archive: the sequencer of the chat toolkit (see man/chat-archive.1).
 * main() only wires: argv -> options -> the connection object -> the
 * subcommand -> exit status.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "archive.h"
#include "db.h"
#include "log.h"
#include "metrics.h"

int main(int argc, char **argv)
{
	struct archive_opts o;
	struct adb *db;
	char err[512];
	int code;

	/* A closed 0, 1 or 2 would be reused by the PostgreSQL socket, and
	 * lines or logs would go there: hold them with /dev/null. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return EX_OSERR;
	signal(SIGPIPE, SIG_IGN);
	log_init("chat-archive", LOG_WARN);
	switch (archive_args(argc, argv, &o, err, sizeof(err))) {
	case ARGS_HELP:
		archive_usage(STDOUT_FILENO, true);
		return EX_OK;
	case ARGS_VERSION:
		printf("chat-archive %s\n", CHAT_VERSION);
		return fclose(stdout) == 0 ? EX_OK : EX_IOERR;
	case ARGS_USAGE:
		fprintf(stderr, "chat-archive: %s\n", err);
		archive_usage(STDERR_FILENO, false);
		return EX_USAGE;
	case ARGS_CONFIG:
		LOG_F("bad configuration", "err=%s", log_q(err));
		return EX_CONFIG;
	}
	log_init("chat-archive", o.verbosity);
	if (o.db_on_argv && adb_has_password(o.db))
		LOG_W("a password on the command line is visible to every "
		      "user (ps): use --db-file, $CHAT_DB_URL or a .pgpass file",
		      NULL);
	db = adb_new(o.db, o.connect_timeout_ms, err, sizeof(err));
	if (!db) {
		LOG_F("bad configuration", "err=%s", log_q(err));
		archive_args_free(&o);
		return EX_CONFIG;
	}
	stats_register(o.cmd);
	/* Several archives' files side by side: store and serve, one store
	 * per shard (the relay exports its node as CHAT_NODE). */
	metrics_file_labels(getenv("CHAT_NODE"),
			    o.cmd == CMD_STORE ? "store" : "serve");
	switch (o.cmd) {
	case CMD_INIT: code = shell_init(&o, db); break;
	case CMD_STORE: code = store_run(&o, db); break;
	case CMD_SERVE: code = serve_run(&o, db); break;
	case CMD_HISTORY: code = shell_history(&o, db); break;
	case CMD_STATS: code = shell_stats(&o, db); break;
	case CMD_PRUNE: code = shell_prune(&o, db); break;
	default: code = EX_SOFTWARE; break;
	}
	adb_free(db);
	archive_args_free(&o);
	if (fclose(stdout) != 0 && code == EX_OK)
		code = EX_IOERR;
	return code;
}
