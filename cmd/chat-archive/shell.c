/*
 * shell: the subcommands for people and scripts, each one connection and a
 * few statements, blocking: init (create or migrate the schema), history
 * (a room's messages as the live message lines), stats (counts as one JSON
 * object) and prune (delete old messages in bounded chunks, so a long
 * prune never holds a long transaction).
 */
#include "archive.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "schema.h"

#define PRUNE_CHUNK 10000
#define XSTR(x) STR(x)
#define STR(x) #x

/* Connect for a shell command. Returns 0, or the exit status. */
static int shell_connect(struct adb *db, int need_version)
{
	if (adb_connect(db, need_version) == 0)
		return 0;
	LOG_F("unable to connect to PostgreSQL", "err=%s db=%s",
	      log_q(adb_error(db)), log_q(adb_where(db)));
	return adb_failure(db) == ADB_SCHEMA ? EX_CONFIG : EX_UNAVAILABLE;
}

/* A failed statement: log it; the exit status it means. */
static int shell_failed(struct adb *db, PGresult *res, const char *what)
{
	enum adb_class cls = adb_classify(db, res);

	LOG_F(what, "err=%s", log_q(adb_error(db)));
	PQclear(res);
	return cls == ADB_CONFIG ? EX_CONFIG : cls == ADB_LOST ? EX_UNAVAILABLE
							      : EX_SOFTWARE;
}

static int shell_print(struct buf *b)
{
	if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout)) {
		LOG_F("unable to write to stdout", NULL);
		return EX_IOERR;
	}
	buf_reset(b);
	return EX_OK;
}

int shell_init(const struct archive_opts *o, struct adb *db)
{
	char err[256];
	int code, from, to;

	(void)o;
	if ((code = shell_connect(db, 0)) != 0)
		return code;
	if (schema_migrate(adb_conn(db), &from, &to, err, sizeof(err)) < 0) {
		LOG_F("unable to create the schema", "err=%s db=%s",
		      log_q(err), log_q(adb_where(db)));
		return strstr(err, "newer") ? EX_CONFIG : EX_UNAVAILABLE;
	}
	LOG_I(from == to ? "schema up to date" : "schema migrated",
	      "from=%d to=%d db=%s", from, to, log_q(adb_where(db)));
	printf("{\"schema_version\":%d,\"migrated_from\":%d}\n", to, from);
	return EX_OK;
}

int shell_history(const struct archive_opts *o, struct adb *db)
{
	char p2[24], p3[24];
	const char *params[3] = { o->room, p2, o->limit ? p3 : NULL };
	const char *sql;
	struct buf b = BUF_INIT(0);
	struct msgline m;
	PGresult *res;
	int code, i, n;
	bool desc = o->since < 0;

	if ((code = shell_connect(db, ARCHIVE_SCHEMA_VERSION)) != 0)
		return code;
	if (desc) {
		sql = "SELECT seq, id, sender, ts, body FROM messages"
		      " WHERE room = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";
		snprintf(p2, sizeof(p2), "%" PRId64,
			 o->before < 0 ? INT64_MAX : o->before);
	} else {
		sql = "SELECT seq, id, sender, ts, body FROM messages"
		      " WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3";
		snprintf(p2, sizeof(p2), "%" PRId64, o->since);
	}
	/* LIMIT NULL is no limit. */
	snprintf(p3, sizeof(p3), "%" PRIu64, o->limit);
	res = PQexecParams(adb_conn(db), sql, 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return shell_failed(db, res, "history query failed");
	n = PQntuples(res);
	for (i = 0; i < n && code == EX_OK; i++) {
		int row = desc ? n - 1 - i : i;

		m.room = o->room;
		m.room_len = strlen(o->room);
		m.seq = strtoll(PQgetvalue(res, row, 0), NULL, 10);
		m.id = PQgetvalue(res, row, 1);
		m.id_len = (size_t)PQgetlength(res, row, 1);
		m.from = PQgetvalue(res, row, 2);
		m.from_len = (size_t)PQgetlength(res, row, 2);
		m.ts = strtoll(PQgetvalue(res, row, 3), NULL, 10);
		m.body = PQgetvalue(res, row, 4);
		m.body_len = (size_t)PQgetlength(res, row, 4);
		if (msgline_render(&b, &m, false, 0) < 0 ||
		    buf_add(&b, "\n", 1) < 0) {
			code = EX_OSERR;
			break;
		}
		if (b.len >= 65536)
			code = shell_print(&b);
	}
	if (code == EX_OK)
		code = shell_print(&b);
	PQclear(res);
	buf_release(&b);
	return code;
}

/* Run sql (no parameters) and expect rows. */
static PGresult *shell_query(struct adb *db, const char *sql, int *code)
{
	PGresult *res = PQexec(adb_conn(db), sql);

	if (PQresultStatus(res) == PGRES_TUPLES_OK ||
	    PQresultStatus(res) == PGRES_COMMAND_OK)
		return res;
	*code = shell_failed(db, res, "stats query failed");
	return NULL;
}

static const char *shell_num(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "null" : PQgetvalue(res, row, col);
}

int shell_stats(const struct archive_opts *o, struct adb *db)
{
	struct buf b = BUF_INIT(0);
	PGresult *tot = NULL, *top = NULL, *res;
	char sql[512];
	int code, i;

	if ((code = shell_connect(db, ARCHIVE_SCHEMA_VERSION)) != 0)
		return code;
	/* One snapshot for every count. */
	res = shell_query(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
			  &code);
	if (!res)
		return code;
	PQclear(res);
	tot = shell_query(db, "SELECT (SELECT count(*) FROM rooms),"
			      " count(*), min(ts), max(ts) FROM messages",
			  &code);
	if (!tot)
		goto out;
	snprintf(sql, sizeof(sql),
		 "SELECT m.room, count(*), r.last_seq, min(m.seq), max(m.seq)"
		 "  FROM messages m JOIN rooms r ON r.room = m.room"
		 " GROUP BY m.room, r.last_seq"
		 " ORDER BY count(*) DESC, m.room LIMIT %u", o->top);
	top = shell_query(db, sql, &code);
	if (!top)
		goto out;
	buf_addf(&b, "{\"rooms\":%s,\"messages\":%s,\"oldest_ts\":%s,"
		 "\"newest_ts\":%s,\"schema_version\":%d,\"top\":[",
		 shell_num(tot, 0, 0), shell_num(tot, 0, 1),
		 shell_num(tot, 0, 2), shell_num(tot, 0, 3),
		 ARCHIVE_SCHEMA_VERSION);
	for (i = 0; i < PQntuples(top); i++) {
		buf_adds(&b, i ? ",{\"room\":" : "{\"room\":");
		msgline_str(&b, PQgetvalue(top, i, 0),
			    (size_t)PQgetlength(top, i, 0));
		buf_addf(&b, ",\"messages\":%s,\"last_seq\":%s,"
			 "\"first_seq\":%s,\"stored_last_seq\":%s}",
			 shell_num(top, i, 1), shell_num(top, i, 2),
			 shell_num(top, i, 3), shell_num(top, i, 4));
	}
	buf_adds(&b, "]}\n");
	code = shell_print(&b);
out:
	PQclear(tot);
	PQclear(top);
	buf_release(&b);
	return code;
}

int shell_prune(const struct archive_opts *o, struct adb *db)
{
	int64_t cutoff = clock_wall_ms() - (int64_t)o->older_than_ms;
	const char *params[1];
	char p1[24];
	uint64_t deleted = 0;
	PGresult *res;
	int code, n;

	if ((code = shell_connect(db, ARCHIVE_SCHEMA_VERSION)) != 0)
		return code;
	snprintf(p1, sizeof(p1), "%" PRId64, cutoff);
	params[0] = p1;
	do {
		res = PQexecParams(adb_conn(db),
				   "DELETE FROM messages WHERE ctid = ANY(ARRAY("
				   "SELECT ctid FROM messages WHERE ts < $1"
				   " LIMIT " XSTR(PRUNE_CHUNK) "))",
				   1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return shell_failed(db, res, "prune failed");
		n = atoi(PQcmdTuples(res));
		deleted += (uint64_t)n;
		PQclear(res);
		LOG_D("pruned a chunk", "rows=%d", n);
	} while (n >= PRUNE_CHUNK);
	LOG_I("pruned", "rows=%" PRIu64 " cutoff_ts=%" PRId64, deleted, cutoff);
	printf("{\"deleted\":%" PRIu64 ",\"cutoff_ts\":%" PRId64 "}\n", deleted,
	       cutoff);
	return EX_OK;
}
