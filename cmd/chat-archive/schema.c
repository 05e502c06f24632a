/*
 * schema: the archive's tables, versioned. `chat-archive init` runs the
 * migrations the database has not had yet, each in the same transaction as
 * the row that records it in schema_version, under an advisory lock so two
 * inits at once do not race; running it again does nothing. store and serve
 * refuse a database whose version is not theirs (exit 78).
 *
 * Version 1:
 *   rooms     room (primary key), last_seq: the room's last seq, which
 *             only ever grows (prune keeps it), locked by store while it
 *             numbers a batch.
 *   messages  id (primary key: store is idempotent on it), room, seq
 *             ((room, seq) unique: history and recover read it backwards),
 *             sender, ts (ms since the epoch), body (TEXT, the JSON text
 *             byte for byte as the gateway wrote it: not jsonb, which would
 *             normalise it). A BRIN index on ts, which grows with insertion
 *             order, serves prune at almost no cost to inserts.
 * Text keys use the "C" collation: byte order, the same in every database,
 * and the order store locks rooms in.
 */
#include "archive.h"
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE rooms ("
	" room text COLLATE \"C\" PRIMARY KEY,"
	" last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0));"
	"CREATE TABLE messages ("
	" id text COLLATE \"C\" PRIMARY KEY,"
	" room text COLLATE \"C\" NOT NULL,"
	" seq bigint NOT NULL CHECK (seq > 0),"
	" sender text NOT NULL,"
	" ts bigint NOT NULL,"
	" body text NOT NULL,"
	" UNIQUE (room, seq));"
	"CREATE INDEX messages_ts ON messages USING brin (ts);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

_Static_assert(NMIGRATIONS == ARCHIVE_SCHEMA_VERSION,
	       "one migration per schema version");

static int schema_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(c, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
		 PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
	}
	PQclear(res);
	return ok ? 0 : -1;
}

int schema_migrate(PGconn *c, int *from, int *to, char *err, size_t errlen)
{
	PGresult *res;
	char sql[128];
	int v, i;

	*from = *to = 0;
	if (schema_exec(c, "BEGIN", err, errlen) < 0)
		return -1;
	/* One init at a time; the lock goes with the transaction. */
	if (schema_exec(c, "SELECT pg_advisory_xact_lock(4242424201)", err,
			errlen) < 0 ||
	    schema_exec(c, "CREATE TABLE IF NOT EXISTS schema_version ("
			   " version int PRIMARY KEY,"
			   " applied_at timestamptz NOT NULL DEFAULT now())",
			err, errlen) < 0)
		goto out_rollback;
	res = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		goto out_rollback;
	}
	v = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	*from = *to = v;
	if (v > NMIGRATIONS) {
		snprintf(err, errlen, "schema version %d is newer than this "
			 "program's %d", v, NMIGRATIONS);
		goto out_rollback;
	}
	for (i = v; i < NMIGRATIONS; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO schema_version (version) VALUES (%d)",
			 i + 1);
		if (schema_exec(c, migrations[i], err, errlen) < 0 ||
		    schema_exec(c, sql, err, errlen) < 0)
			goto out_rollback;
		*to = i + 1;
	}
	if (schema_exec(c, "COMMIT", err, errlen) < 0) {
		*to = v;
		return -1;
	}
	return 0;
out_rollback:
	{
		char ignored[8];

		schema_exec(c, "ROLLBACK", ignored, sizeof(ignored));
	}
	*to = *from;
	return -1;
}
