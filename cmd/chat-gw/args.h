/*
 * args: chat-gw's command line and environment -> struct gw_config (see
 * man/chat-gw.1). Nothing here prints or exits: main() reports what these
 * functions return.
 * Memory: strings point into argv; gw_config_free frees the origin list.
 */
#ifndef CHAT_GW_ARGS_H
#define CHAT_GW_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "gw.h"

enum {
	ARGS_RUN = 0,      /* run with the configuration */
	ARGS_HELP = 1,     /* --help, -h: print gw_usage(fd, true), exit 0 */
	ARGS_VERSION = 2,  /* --version */
	ARGS_USAGE = -1,   /* a usage error: err says why; exit 64 */
	ARGS_CONFIG = -2,  /* a configuration error: exit 78 */
};

/* Fill cfg (and *verbosity, -v) from argv and the environment (CHAT_NODE,
 * CHAT_INGEST_SHARDS). Returns one of the ARGS_ values, with a reason in
 * err (errlen bytes) for the errors. */
int gw_args(int argc, char **argv, struct gw_config *cfg, int *verbosity,
	    char *err, size_t errlen);
/* The usage lines (the man page's SYNOPSIS) and, when full, the options. */
void gw_usage(int fd, bool full);
/* Free what gw_args allocated. */
void gw_config_free(struct gw_config *cfg);

#endif
