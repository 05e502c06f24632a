/*
 * schema: create or migrate chat-archive's tables (see schema.c for the
 * tables themselves).
 */
#ifndef CHAT_ARCHIVE_SCHEMA_H
#define CHAT_ARCHIVE_SCHEMA_H

#include <libpq-fe.h>
#include <stddef.h>

/* Bring the schema of the connected database to ARCHIVE_SCHEMA_VERSION in
 * one transaction. *from is the version found, *to the version left.
 * Returns 0, or -1 with a reason in err (nothing changed). */
int schema_migrate(PGconn *c, int *from, int *to, char *err, size_t errlen);

#endif
