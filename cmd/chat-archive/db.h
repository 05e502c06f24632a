/*
 * db: chat-archive's PostgreSQL connection (libpq). It connects (blocking,
 * bounded by the connect timeout), checks the schema version, and sorts
 * failures into what the caller does next: reconnect, run the same
 * transaction again, give up on a line, or stop. The statements themselves
 * live with their users (seqtx.c, schema.c, serve.c, shell.c). Its error
 * text is sticky: set by a failure, kept until the next successful
 * connect.
 * Memory: the conninfo is borrowed for the object's life; adb_conn()'s
 * PGconn belongs to the object.
 */
#ifndef CHAT_ARCHIVE_DB_H
#define CHAT_ARCHIVE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why adb_connect() failed. */
enum adb_fail {
	ADB_OK = 0,
	ADB_UNREACHABLE,  /* no connection: down, refused, bad password... */
	ADB_SCHEMA,       /* connected, but the schema is missing or other */
};

/* What a failed statement means for the caller. */
enum adb_class {
	ADB_LOST,    /* the connection is gone or unusable: reconnect */
	ADB_RETRY,   /* transient (deadlock, serialization, a race on a key):
		      * run the same transaction again */
	ADB_DATA,    /* the data was refused (class 22, 23, 54): a line is bad */
	ADB_CONFIG,  /* the setup is wrong (privileges, missing objects) */
};

struct adb;

/* Check conninfo's syntax and set up a connection object (not connected).
 * Returns NULL with a reason in err when conninfo cannot be parsed. */
struct adb *adb_new(const char *conninfo, uint64_t connect_timeout_ms,
		    char *err, size_t errlen);
void adb_free(struct adb *d);
/* Connect (dropping any connection first) and, when need_version is not 0,
 * check that the schema is at that version. Returns 0, or -1 with the
 * reason in adb_error() and adb_failure(). */
int adb_connect(struct adb *d, int need_version);
/* Close the connection (the object stays usable). */
void adb_drop(struct adb *d);
bool adb_up(const struct adb *d);
PGconn *adb_conn(struct adb *d);
/* The last error, one line, for logs; "" when none. */
const char *adb_error(const struct adb *d);
enum adb_fail adb_failure(const struct adb *d);
/* Where the connection goes, without any password: user@host:port/db. */
const char *adb_where(const struct adb *d);
/* Classify a failed result (res may be NULL: no result at all) and record
 * its error text. */
enum adb_class adb_classify(struct adb *d, const PGresult *res);
/* Whether conninfo holds a password (so it should not be on argv). */
bool adb_has_password(const char *conninfo);
/* The schema version of the connected database, 0 when there is none, or
 * -1 on failure (adb_error() says why). */
int adb_schema_version(struct adb *d);

#endif
