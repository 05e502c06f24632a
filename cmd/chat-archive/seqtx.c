/*
 * seqtx: the batch transaction of store (see seqtx.h for what it does and
 * why it cannot leave a gap). The batch travels as five array parameters
 * in PostgreSQL's text array syntax; unnest() turns them back into rows
 * server-side, so a batch of any size is three statements.
 */
#include "seqtx.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define SQL_ROOMS_INSERT \
	"INSERT INTO rooms (room)" \
	" SELECT DISTINCT r COLLATE \"C\" FROM unnest($1::text[]) AS r" \
	" ORDER BY 1" \
	" ON CONFLICT (room) DO NOTHING"

#define SQL_ROOMS_LOCK \
	"SELECT room FROM rooms WHERE room = ANY($1::text[])" \
	" ORDER BY room COLLATE \"C\" FOR UPDATE"

/* Result columns: seq, src (1-based line of the batch that stored the
 * content now, NULL when stored before), then, when stored before, the
 * stored room, sender, ts, body. */
#define SQL_SEQUENCE \
	"WITH b AS (" \
	"  SELECT * FROM unnest($1::text[], $2::text[], $3::text[]," \
	"                       $4::bigint[], $5::text[])" \
	"    WITH ORDINALITY AS b(id, room, sender, ts, body, ord)" \
	"), old AS (" \
	"  SELECT m.id, m.room, m.seq, m.sender, m.ts, m.body FROM messages m" \
	"   WHERE m.id = ANY($1::text[])" \
	"), fresh AS (" \
	"  SELECT DISTINCT ON (b.id) b.* FROM b" \
	"   WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.id = b.id)" \
	"   ORDER BY b.id, b.ord" \
	"), numbered AS (" \
	"  SELECT f.*, r.last_seq + row_number() OVER" \
	"         (PARTITION BY f.room ORDER BY f.ord) AS seq" \
	"    FROM fresh f JOIN rooms r ON r.room = f.room" \
	"), ins AS (" \
	"  INSERT INTO messages (id, room, seq, sender, ts, body)" \
	"  SELECT id, room, seq, sender, ts, body FROM numbered" \
	"), upd AS (" \
	"  UPDATE rooms r SET last_seq = r.last_seq + c.n" \
	"    FROM (SELECT room, count(*) AS n FROM numbered GROUP BY room) c" \
	"   WHERE r.room = c.room" \
	")" \
	" SELECT coalesce(o.seq, n.seq), n.ord, o.room, o.sender, o.ts, o.body" \
	"   FROM b LEFT JOIN old o ON o.id = b.id" \
	"          LEFT JOIN numbered n ON n.id = b.id" \
	"  ORDER BY b.ord"

static const struct {
	const char *name;
	const char *sql;
} statements[] = {
	{ "archive_rooms_insert", SQL_ROOMS_INSERT },
	{ "archive_rooms_lock", SQL_ROOMS_LOCK },
	{ "archive_sequence", SQL_SEQUENCE },
};

void seqtx_init(struct seqtx *t)
{
	memset(t, 0, sizeof(*t));
	buf_init(&t->ids, 0);
	buf_init(&t->rooms, 0);
	buf_init(&t->froms, 0);
	buf_init(&t->tss, 0);
	buf_init(&t->bodies, 0);
}

void seqtx_clear(struct seqtx *t)
{
	PQclear(t->res);
	t->res = NULL;
	t->n = 0;
	t->results = 0;
	t->failed = false;
	buf_reset(&t->ids);
	buf_reset(&t->rooms);
	buf_reset(&t->froms);
	buf_reset(&t->tss);
	buf_reset(&t->bodies);
}

void seqtx_free(struct seqtx *t)
{
	seqtx_clear(t);
	buf_release(&t->ids);
	buf_release(&t->rooms);
	buf_release(&t->froms);
	buf_release(&t->tss);
	buf_release(&t->bodies);
}

int seqtx_prepare(struct adb *d)
{
	PGconn *c = adb_conn(d);
	PGresult *res;
	size_t i;

	for (i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
		res = PQprepare(c, statements[i].name, statements[i].sql, 0,
				NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			adb_classify(d, res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	if (PQsetnonblocking(c, 1) < 0 || !PQenterPipelineMode(c)) {
		adb_classify(d, NULL);
		return -1;
	}
	return 0;
}

/* Append s[0..n) as one element of a text array literal: quoted, with
 * backslashes before quotes and backslashes. */
static int seqtx_elem(struct buf *b, const char *s, size_t n)
{
	size_t i, run = 0;
	int r = 0;

	r |= buf_add(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);
	for (i = 0; i < n; i++) {
		if (s[i] != '"' && s[i] != '\\')
			continue;
		r |= buf_add(b, s + run, i - run);
		r |= buf_add(b, "\\", 1);
		run = i;
	}
	r |= buf_add(b, s + run, n - run);
	r |= buf_add(b, "\"", 1);
	return r;
}

int seqtx_send(struct seqtx *t, struct adb *d, struct bentry *const *e,
	       size_t n)
{
	PGconn *c = adb_conn(d);
	const char *params[5];
	size_t i;
	int r = 0;

	seqtx_clear(t);
	r |= buf_add(&t->ids, "{", 1);
	r |= buf_add(&t->rooms, "{", 1);
	r |= buf_add(&t->froms, "{", 1);
	r |= buf_add(&t->tss, "{", 1);
	r |= buf_add(&t->bodies, "{", 1);
	for (i = 0; i < n; i++) {
		const struct ingest *in = &e[i]->in;
		const char *l = e[i]->line;

		r |= seqtx_elem(&t->ids, l + in->id.off, in->id.len);
		r |= seqtx_elem(&t->rooms, l + in->room.off, in->room.len);
		r |= seqtx_elem(&t->froms, l + in->from.off, in->from.len);
		r |= buf_addf(&t->tss, i ? ",%" PRId64 : "%" PRId64, in->ts);
		r |= seqtx_elem(&t->bodies, l + in->body.off, in->body.len);
	}
	r |= buf_add(&t->ids, "}", 1);
	r |= buf_add(&t->rooms, "}", 1);
	r |= buf_add(&t->froms, "}", 1);
	r |= buf_add(&t->tss, "}", 1);
	r |= buf_add(&t->bodies, "}", 1);
	if (r) {
		/* Out of memory: treated like a lost connection, retried. */
		t->cls = ADB_LOST;
		return -1;
	}
	params[0] = t->ids.data;
	params[1] = t->rooms.data;
	params[2] = t->froms.data;
	params[3] = t->tss.data;
	params[4] = t->bodies.data;
	t->n = n;
	t->sent_us = clock_mono_us();
	if (!PQsendQueryPrepared(c, "archive_rooms_insert", 1, &params[1], NULL,
				 NULL, 0) ||
	    !PQsendQueryPrepared(c, "archive_rooms_lock", 1, &params[1], NULL,
				 NULL, 0) ||
	    !PQsendQueryPrepared(c, "archive_sequence", 5, params, NULL, NULL,
				 0) ||
	    !PQpipelineSync(c)) {
		t->cls = adb_classify(d, NULL);
		return -1;
	}
	return 0;
}

int seqtx_flush(struct adb *d)
{
	int r = PQflush(adb_conn(d));

	if (r < 0)
		adb_classify(d, NULL);
	return r;
}

enum seqtx_state seqtx_poll(struct seqtx *t, struct adb *d)
{
	PGconn *c = adb_conn(d);
	PGresult *res;
	int nulls = 0;

	if (!PQconsumeInput(c)) {
		t->cls = adb_classify(d, NULL);
		return SEQTX_FAILED;
	}
	while (!PQisBusy(c)) {
		res = PQgetResult(c);
		if (!res) {
			/* The end of one statement's results; two in a row
			 * would mean nothing more is queued. */
			if (++nulls > 1)
				break;
			continue;
		}
		nulls = 0;
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			if (++t->results == 3 && !t->failed) {
				PQclear(t->res);
				t->res = res;
				res = NULL;
			}
			break;
		case PGRES_PIPELINE_ABORTED:
			break;
		case PGRES_PIPELINE_SYNC:
			PQclear(res);
			if (t->failed)
				return SEQTX_FAILED;
			if (!t->res || (size_t)PQntuples(t->res) != t->n) {
				/* Cannot happen: every line has a row. */
				t->cls = ADB_LOST;
				return SEQTX_FAILED;
			}
			return SEQTX_DONE;
		default:
			if (!t->failed) {
				t->failed = true;
				t->cls = adb_classify(d, res);
			}
			break;
		}
		PQclear(res);
	}
	if (PQstatus(c) != CONNECTION_OK) {
		t->cls = adb_classify(d, NULL);
		return SEQTX_FAILED;
	}
	return SEQTX_BUSY;
}

void seqtx_row(const struct seqtx *t, size_t i, struct seqtx_row *r)
{
	const PGresult *res = t->res;
	int row = (int)i;

	memset(r, 0, sizeof(*r));
	r->seq = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	if (!PQgetisnull(res, row, 1)) {
		r->src = strtol(PQgetvalue(res, row, 1), NULL, 10) - 1;
		return;
	}
	r->src = -1;
	r->old.room = PQgetvalue(res, row, 2);
	r->old.room_len = (size_t)PQgetlength(res, row, 2);
	r->old.seq = r->seq;
	r->old.from = PQgetvalue(res, row, 3);
	r->old.from_len = (size_t)PQgetlength(res, row, 3);
	r->old.ts = strtoll(PQgetvalue(res, row, 4), NULL, 10);
	r->old.body = PQgetvalue(res, row, 5);
	r->old.body_len = (size_t)PQgetlength(res, row, 5);
}
