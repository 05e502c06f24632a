/*
 * cli: what the modules of chat-cli share: the parsed WebSocket URL, the
 * lws context set-up every subcommand uses, and the entry point of each
 * subcommand. main.c only dispatches on the command word.
 * Memory: strings in the option structs are borrowed from argv.
 */
#ifndef CHAT_CLI_H
#define CHAT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws_context;

#define CLI_HOST_MAX 256
#define CLI_PATH_MAX 2048

/* A ws:// or wss:// URL split for lws_client_connect_via_info(). */
struct cli_url {
	bool tls;                   /* wss:// */
	char host[CLI_HOST_MAX];    /* host name or address, no brackets */
	int port;                   /* 80/443 unless given */
	char path[CLI_PATH_MAX];    /* "/ws?x=y", always starts with '/' */
	char text[CLI_PATH_MAX];    /* the URL as given, for messages */
};

/* Split s into u. Returns 0, or -1 with a reason in err. */
int cli_url_parse(const char *s, struct cli_url *u, char *err, size_t errlen);
/* Append "?key=value" (or "&key=value" when the path has a query) to the
 * path, percent-encoding value. Returns 0, or -1 when it does not fit. */
int cli_url_add_query(struct cli_url *u, const char *key, const char *value);

/* Parameters of the lws context of a client. */
struct cli_ctx_opts {
	const void *protocols;      /* struct lws_protocols[], 0-terminated */
	unsigned int fd_limit;      /* 0: lws default (the fd rlimit) */
	unsigned int timeout_s;     /* handshake timeout */
	bool tls;                   /* any wss:// URL */
	const char *ca_file;        /* trusted certificates (PEM), or NULL: the system's */
	unsigned int header_pool;   /* handshakes that may be in flight */
	void *user;                 /* lws_context_user() */
	void *uv_loop;              /* a uv_loop_t to run on (epoll), or NULL */
	struct lws_context **pcontext; /* lws clears it once fully destroyed */
};

/* Create the lws context (no listener) with lws' own log lines turned into
 * logfmt at debug level. Returns NULL on failure. */
struct lws_context *cli_ctx_new(const struct cli_ctx_opts *o);
/* Try a plain TCP connect to host:port (at most a second), to tell why lws
 * could not connect. Returns 0 when it connects, else -1 with the reason
 * (resolver or connect error) in err. */
int cli_probe(const char *host, int port, char *err, size_t errlen);
/* Raise the RLIMIT_NOFILE soft limit to want, or as far as the hard limit
 * allows; returns the new soft limit. lws sizes its fd tables from it. */
uint64_t cli_raise_nofile(uint64_t want);

/* Print the usage line of cmd (NULL: all) to stderr and return 64. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The subcommands: each takes the arguments after the command word (argv[0]
 * is the command word) and returns the exit status. */
int cli_connect_main(int argc, char **argv);
int cli_send_main(int argc, char **argv);
int cli_token_main(int argc, char **argv);
int cli_bench_main(int argc, char **argv);

/* Usage lines of each subcommand, for --help and usage errors. */
extern const char cli_usage_connect[];
extern const char cli_usage_send[];
extern const char cli_usage_token[];
extern const char cli_usage_bench[];

#endif
