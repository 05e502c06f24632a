/*
 * db: the PostgreSQL connection of chat-archive (see db.h). Connections are
 * made with PQconnectdbParams and expand_dbname, so the conninfo may be a
 * key=value string or a postgresql:// URI, and a connect_timeout and an
 * application name are supplied beneath whatever the conninfo says (the
 * conninfo wins). An empty conninfo leaves everything to libpq's PG*
 * environment variables and defaults.
 */
#include "db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct adb {
	const char *conninfo;     /* borrowed */
	char timeout[24];         /* connect_timeout, seconds */
	PGconn *conn;             /* NULL when not connected */
	enum adb_fail fail;       /* why the last connect failed */
	char where[256];          /* user@host:port/db, for logs */
	char errstr[256];         /* last error, sticky */
};

static void adb_set_error(struct adb *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void adb_set_error(struct adb *d, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(d->errstr, sizeof(d->errstr), fmt, ap);
	va_end(ap);
	/* libpq's messages end with a newline and may hold several lines. */
	for (p = d->errstr; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	while (p > d->errstr && p[-1] == ' ')
		*--p = '\0';
	/* Runs of blanks from the joined lines become one. */
	{
		char *r = d->errstr, *w = d->errstr;

		for (; *r; r++)
			if (*r != ' ' || w == d->errstr || w[-1] != ' ')
				*w++ = *r;
		*w = '\0';
	}
}

static const char *adb_opt(PQconninfoOption *opts, const char *key,
			   const char *env, const char *dflt)
{
	PQconninfoOption *o;
	const char *e;

	for (o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, key) && o->val && *o->val)
			return o->val;
	e = getenv(env);
	return e && *e ? e : dflt;
}

struct adb *adb_new(const char *conninfo, uint64_t connect_timeout_ms,
		    char *err, size_t errlen)
{
	PQconninfoOption *opts = NULL;
	char *perr = NULL;
	struct adb *d;

	if (*conninfo) {
		opts = PQconninfoParse(conninfo, &perr);
		if (!opts) {
			snprintf(err, errlen, "bad conninfo: %s",
				 perr ? perr : "out of memory");
			/* Strip libpq's newline. */
			err[strcspn(err, "\n")] = '\0';
			PQfreemem(perr);
			return NULL;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		PQconninfoFree(opts);
		return NULL;
	}
	d->conninfo = conninfo;
	snprintf(d->timeout, sizeof(d->timeout), "%llu",
		 (unsigned long long)((connect_timeout_ms + 999) / 1000));
	snprintf(d->where, sizeof(d->where), "%s@%s:%s/%s",
		 adb_opt(opts, "user", "PGUSER", "(default)"),
		 adb_opt(opts, "host", "PGHOST", "(default)"),
		 adb_opt(opts, "port", "PGPORT", "5432"),
		 adb_opt(opts, "dbname", "PGDATABASE", "(default)"));
	PQconninfoFree(opts);
	return d;
}

void adb_free(struct adb *d)
{
	if (!d)
		return;
	adb_drop(d);
	free(d);
}

void adb_drop(struct adb *d)
{
	if (d->conn)
		PQfinish(d->conn);
	d->conn = NULL;
}

bool adb_up(const struct adb *d)
{
	return d->conn && PQstatus(d->conn) == CONNECTION_OK;
}

PGconn *adb_conn(struct adb *d)
{
	return d->conn;
}

const char *adb_error(const struct adb *d)
{
	return d->errstr;
}

enum adb_fail adb_failure(const struct adb *d)
{
	return d->fail;
}

const char *adb_where(const struct adb *d)
{
	return d->where;
}

/* Notices (a NOTICE from CREATE ... IF NOT EXISTS) are not ours to print
 * on stderr in libpq's format: they are dropped. */
static void adb_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int adb_schema_version(struct adb *d)
{
	PGresult *res;
	const char *state;
	int v = -1;

	res = PQexec(d->conn, "SELECT coalesce(max(version), 0) "
			      "FROM schema_version");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		v = atoi(PQgetvalue(res, 0, 0));
	} else {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && !strcmp(state, "42P01"))
			v = 0; /* undefined_table: no schema at all */
		else
			adb_set_error(d, "%s", PQerrorMessage(d->conn));
	}
	PQclear(res);
	return v;
}

int adb_connect(struct adb *d, int need_version)
{
	/* The conninfo (expanded from dbname) overrides the keywords before
	 * it, not the one after: text is always sent and read as UTF-8, the
	 * encoding of the JSON lines. */
	const char *keys[] = { "connect_timeout", "fallback_application_name",
			       "dbname", "client_encoding", NULL };
	const char *vals[] = { d->timeout, "chat-archive", d->conninfo, "UTF8",
			       NULL };
	int v;

	adb_drop(d);
	d->conn = PQconnectdbParams(keys, vals, 1);
	if (!d->conn) {
		adb_set_error(d, "out of memory");
		d->fail = ADB_UNREACHABLE;
		return -1;
	}
	if (PQstatus(d->conn) != CONNECTION_OK) {
		adb_set_error(d, "%s", PQerrorMessage(d->conn));
		d->fail = ADB_UNREACHABLE;
		adb_drop(d);
		return -1;
	}
	PQsetNoticeProcessor(d->conn, adb_notice, NULL);
	if (need_version) {
		v = adb_schema_version(d);
		if (v < 0) {
			d->fail = PQstatus(d->conn) == CONNECTION_OK
					  ? ADB_SCHEMA : ADB_UNREACHABLE;
			adb_drop(d);
			return -1;
		}
		if (v != need_version) {
			adb_set_error(d, v == 0 ? "no chat-archive schema in "
				      "the database: run 'chat-archive init'"
				      : v < need_version
				      ? "schema version %d is older than %d: "
					"run 'chat-archive init'"
				      : "schema version %d is newer than this "
					"program's %d", v, need_version);
			d->fail = ADB_SCHEMA;
			adb_drop(d);
			return -1;
		}
	}
	d->fail = ADB_OK;
	d->errstr[0] = '\0';
	snprintf(d->where, sizeof(d->where), "%s@%s:%s/%s", PQuser(d->conn),
		 PQhost(d->conn), PQport(d->conn), PQdb(d->conn));
	return 0;
}

enum adb_class adb_classify(struct adb *d, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				: NULL;
	const char *msg = res ? PQresultErrorMessage(res) : "";

	if (!msg || !*msg)
		msg = d->conn ? PQerrorMessage(d->conn) : "no connection";
	adb_set_error(d, "%s%s%s", msg, state ? " sqlstate=" : "",
		      state ? state : "");
	if (!d->conn || PQstatus(d->conn) != CONNECTION_OK || !state)
		return ADB_LOST;
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
	    !strcmp(state, "23505") || !strcmp(state, "55P03") ||
	    !strncmp(state, "53", 2))
		return ADB_RETRY;
	if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2) ||
	    !strncmp(state, "54", 2))
		return ADB_DATA;
	if (!strncmp(state, "42", 2) || !strncmp(state, "3F", 2) ||
	    !strncmp(state, "28", 2))
		return ADB_CONFIG;
	/* 08 connection, 57 operator intervention (shutdown, crash
	 * recovery), and whatever else: a new connection is the remedy. */
	return ADB_LOST;
}

bool adb_has_password(const char *conninfo)
{
	PQconninfoOption *opts, *o;
	bool has = false;

	if (!*conninfo)
		return false;
	opts = PQconninfoParse(conninfo, NULL);
	for (o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && *o->val)
			has = true;
	PQconninfoFree(opts);
	return has;
}
