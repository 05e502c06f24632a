/*
 * seqtx: the transaction that gives a batch of messages their seq, sent in
 * one round trip with libpq's pipeline mode (three prepared statements and
 * a Sync: the statements between two Syncs are one transaction, committed
 * at the Sync, rolled back there when one fails):
 *   1. INSERT the batch's rooms that have no row yet (ON CONFLICT DO
 *      NOTHING), in byte order;
 *   2. SELECT ... FOR UPDATE the batch's rooms in byte order: two writers
 *      with overlapping rooms wait for each other instead of deadlocking,
 *      and each room's last_seq is read after the lock;
 *   3. one statement: the ids already stored keep their seq (a redelivery,
 *      a client's retry), each new id gets the room's next seq in batch
 *      order (an id twice in a batch gets one seq), the new rows are
 *      inserted and last_seq moves on by exactly as many. Numbers come
 *      from last_seq under the lock, never from a SEQUENCE, and a row whose
 *      number was taken is always inserted: no seq is ever skipped.
 * An unknown outcome (the connection lost before the Sync's answer) is
 * resolved by sending the batch again: what was committed comes back as
 * "stored before" with its seq.
 * Memory: the entries are borrowed during seqtx_send(); row values point
 * into the result held by the seqtx until seqtx_clear().
 */
#ifndef CHAT_ARCHIVE_SEQTX_H
#define CHAT_ARCHIVE_SEQTX_H

#include <libpq-fe.h>

#include "archive.h"
#include "db.h"

/* A line read by store, waiting for or in a transaction. */
struct bentry {
	char *line;        /* the line, malloc'd, NUL-terminated */
	size_t len;        /* its length */
	struct ingest in;  /* what it is: spans into line */
	int64_t in_us;     /* monotonic time it was read */
};

enum seqtx_state {
	SEQTX_BUSY,    /* results still to come */
	SEQTX_DONE,    /* committed: rows are ready */
	SEQTX_FAILED,  /* rolled back or lost: see cls and adb_error() */
};

struct seqtx {
	struct buf ids;      /* array literals of the batch: text[] */
	struct buf rooms;
	struct buf froms;
	struct buf tss;      /* bigint[] */
	struct buf bodies;
	size_t n;            /* lines in the batch */
	int results;         /* statement results seen */
	bool failed;         /* a statement failed */
	enum adb_class cls;  /* how, when failed */
	PGresult *res;       /* statement 3's rows */
	int64_t sent_us;     /* when the batch was sent */
};

/* One line's outcome. */
struct seqtx_row {
	int64_t seq;        /* its seq */
	long src;           /* index of the line whose content was stored now,
			     * or -1 when the id was stored before */
	struct msgline old; /* src -1: the stored message (seq included) */
};

void seqtx_init(struct seqtx *t);
void seqtx_free(struct seqtx *t);
/* Prepare the statements on a fresh connection and switch it to
 * non-blocking pipeline mode. Returns 0, or -1 (adb_error() says why). */
int seqtx_prepare(struct adb *d);
/* Send the batch e[0..n) and the Sync. Returns 0, or -1 when the
 * connection failed (classified into t->cls). */
int seqtx_send(struct seqtx *t, struct adb *d, struct bentry *const *e,
	       size_t n);
/* Push out what libpq still holds: 0 done, 1 more (poll for POLLOUT), -1
 * the connection failed. */
int seqtx_flush(struct adb *d);
/* Read what the server sent; call when its socket is readable. */
enum seqtx_state seqtx_poll(struct seqtx *t, struct adb *d);
/* The outcome of line i of a done batch. */
void seqtx_row(const struct seqtx *t, size_t i, struct seqtx_row *r);
/* Forget the batch (results included); t is ready for the next. */
void seqtx_clear(struct seqtx *t);

#endif
