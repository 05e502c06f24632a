/*
 * sweep: turns silence into "left". Every --sweep, a run reads the node
 * index (PREFIX:nodes) and each node's liveness (PREFIX:node:{N}:hb):
 *  - a node whose deadline passed (no line from it for its ttl) is dead:
 *    every room of its index is visited and every entry of the node with
 *    a deadline up to now + --ttl goes (all of its users at once, also
 *    those that joined after its last heartbeat);
 *  - a live node gets a few SSCAN steps of its rooms per run (about 2,000
 *    rooms; a cursor per node), and there only entries whose own deadline
 *    passed go: those its heartbeats stopped naming. Every room of a node
 *    is visited once per pass of the cursor.
 * A down line purges its node the same way at once (sweep_purge).
 * Removal happens in the DEL script, room by room; its result says which
 * users left, so two processes sweeping the same Redis never report a user
 * twice. A room whose entries for the node are gone leaves the node's
 * index, and a node with no rooms and no liveness leaves PREFIX:nodes,
 * each with a check afterwards (a writer adds the room keys before the
 * index, so a concurrent join is seen and the index entry put back).
 * Work is queued and issued only while the pipeline has room.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "log.h"
#include "name.h"

#define SWEEP_LIMIT 5000       /* entries removed per script call */
#define SWEEP_SCAN_COUNT "500" /* SSCAN COUNT */
#define SWEEP_QUEUE_MAX 2000   /* room jobs queued before scanning more */
#define SWEEP_LIVE_STEPS 4     /* SSCAN steps per run for a live node */
#define KEY_MAX 512

struct sw_node {
	struct sweep *sw;     /* owner */
	struct sw_node *next; /* in sw->nodes */
	int64_t bound_ms;     /* entries with deadline <= bound go */
	bool ready;           /* liveness known: may scan */
	bool all;             /* scan every room (dead node, purge) */
	bool finalize;        /* forget the node if it has no rooms */
	bool run;             /* part of the sweep run (else a purge) */
	bool scanning;        /* SSCAN in flight */
	bool scan_done;       /* no more SSCAN */
	bool finalizing;      /* the finalize chain runs */
	bool failed;          /* a command failed: retry next time */
	int refs;             /* SSCANs, room jobs, finalize in flight */
	int steps;            /* SSCAN steps done in this run */
	char cursor[32];      /* SSCAN cursor */
	sweep_done_fn *done;  /* purge: completion */
	void *done_arg;       /* its argument */
	char name[];          /* node name */
};

struct sw_room {
	struct sw_room *next; /* in sw->rooms */
	struct sw_node *n;    /* its node (holds a ref) */
	char room[];          /* room name */
};

static void sw_node_check(struct sw_node *n);

void sweep_init(struct sweep *sw, struct store *st, uint64_t ttl_ms,
		sweep_left_fn *left, void *arg)
{
	memset(sw, 0, sizeof(*sw));
	sw->st = st;
	sw->ttl_ms = ttl_ms;
	sw->left = left;
	sw->arg = arg;
}

static void sw_cursor_set(struct sweep *sw, const char *node, const char *c)
{
	char *old = map_del(&sw->cursors, node), *nc;

	free(old);
	if (!strcmp(c, "0"))
		return;
	nc = strdup(c);
	if (nc && !map_put(&sw->cursors, node, nc))
		free(nc);
}

void sweep_free(struct sweep *sw)
{
	size_t b = 0;
	struct map_ent *it = NULL, *e;

	while ((e = map_next(&sw->cursors, &b, &it)))
		free(e->val);
	map_free(&sw->cursors);
	while (sw->rooms) {
		struct sw_room *r = sw->rooms;

		sw->rooms = r->next;
		free(r);
	}
	while (sw->nodes) {
		struct sw_node *n = sw->nodes;

		sw->nodes = n->next;
		free(n);
	}
}

bool sweep_busy(const struct sweep *sw)
{
	return sw->running || sw->nodes != NULL;
}

/* --- run bookkeeping ------------------------------------------------------ */

static void sw_run_release(struct sweep *sw)
{
	if (--sw->run_refs > 0)
		return;
	sw->running = false;
	if (sw->run_failed)
		return;
	sw->runs++;
	pm.sweeps.value++;
	LOG_D("sweep done", "runs=%" PRIu64 " expired=%" PRIu64, sw->runs, sw->expired);
}

static struct sw_node *sw_node_new(struct sweep *sw, const char *name)
{
	size_t n = strlen(name);
	struct sw_node *nd = calloc(1, sizeof(*nd) + n + 1);

	if (!nd)
		return NULL;
	nd->sw = sw;
	memcpy(nd->name, name, n + 1);
	strcpy(nd->cursor, "0");
	nd->next = sw->nodes;
	sw->nodes = nd;
	return nd;
}

static void sw_node_complete(struct sw_node *n)
{
	struct sweep *sw = n->sw;
	struct sw_node **pp;

	for (pp = &sw->nodes; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	if (n->run) {
		if (n->failed)
			sw->run_failed = true;
		sw_run_release(sw);
	} else if (n->done) {
		n->done(n->done_arg, !n->failed);
	}
	free(n);
}

static void sw_node_release(struct sw_node *n, bool ok)
{
	if (!ok)
		n->failed = true;
	n->refs--;
	sw_node_check(n);
}

static void sw_ignore(void *priv, redisReply *r)
{
	store_reply_ok(priv, r);
}

/* --- finalize: forget a node without rooms -------------------------------- */

static void sw_fin_readd(void *priv, redisReply *r)
{
	struct sw_node *n = priv;
	char knodes[KEY_MAX];

	if (store_reply_ok("EXISTS node keys", r) && r->type == REDIS_REPLY_INTEGER &&
	    r->integer > 0) {
		/* The node wrote again meanwhile: keep it indexed. */
		store_global_key(n->sw->st, knodes, sizeof(knodes), "nodes");
		rconn_cmdf(n->sw->st->rc, sw_ignore, "SADD nodes", "SADD %s %s",
			   knodes, n->name);
	}
	sw_node_release(n, r != NULL);
}

static void sw_fin_card(void *priv, redisReply *r)
{
	struct sw_node *n = priv;
	struct store *st = n->sw->st;
	char khb[KEY_MAX], krooms[KEY_MAX], knodes[KEY_MAX];

	if (!store_reply_ok("SCARD node rooms", r) ||
	    r->type != REDIS_REPLY_INTEGER || r->integer > 0) {
		sw_node_release(n, r != NULL);
		return;
	}
	store_node_key(st, khb, sizeof(khb), n->name, "hb");
	store_node_key(st, krooms, sizeof(krooms), n->name, "rooms");
	store_global_key(st, knodes, sizeof(knodes), "nodes");
	if (rconn_cmdf(st->rc, sw_ignore, "DEL node hb", "DEL %s", khb) < 0 ||
	    rconn_cmdf(st->rc, sw_ignore, "SREM nodes", "SREM %s %s", knodes,
		       n->name) < 0 ||
	    rconn_cmdf(st->rc, sw_fin_readd, n, "EXISTS %s %s", krooms, khb) < 0) {
		sw_node_release(n, false);
		return;
	}
	LOG_I("node forgotten", "node=%s", log_q(n->name));
}

static void sw_node_check(struct sw_node *n)
{
	char krooms[KEY_MAX];

	if (!n->scan_done || n->refs > 0)
		return;
	if (n->finalize && !n->finalizing && !n->failed) {
		n->finalizing = true;
		store_node_key(n->sw->st, krooms, sizeof(krooms), n->name, "rooms");
		n->refs++;
		if (rconn_cmdf(n->sw->st->rc, sw_fin_card, n, "SCARD %s", krooms) == 0)
			return;
		n->refs--;
		n->failed = true;
	}
	sw_node_complete(n);
}

/* --- room jobs ------------------------------------------------------------ */

static void sw_room_push(struct sweep *sw, struct sw_room *r)
{
	r->next = NULL;
	if (sw->rooms_tail)
		sw->rooms_tail->next = r;
	else
		sw->rooms = r;
	sw->rooms_tail = r;
	sw->nrooms++;
}

static struct sw_room *sw_room_pop(struct sweep *sw)
{
	struct sw_room *r = sw->rooms;

	if (!r)
		return NULL;
	sw->rooms = r->next;
	if (!sw->rooms)
		sw->rooms_tail = NULL;
	sw->nrooms--;
	return r;
}

static void sw_room_done(struct sw_room *job, bool ok)
{
	struct sw_node *n = job->n;

	free(job);
	sw_node_release(n, ok);
}

static void sw_unlink_check(void *priv, redisReply *r)
{
	struct sw_room *job = priv;
	struct store *st = job->n->sw->st;
	char krooms[KEY_MAX];

	if (store_reply_ok("EXISTS room node key", r) &&
	    r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
		/* Entries came back meanwhile: the room stays indexed. */
		store_node_key(st, krooms, sizeof(krooms), job->n->name, "rooms");
		rconn_cmdf(st->rc, sw_ignore, "SADD node rooms", "SADD %s %s", krooms,
			   job->room);
	}
	sw_room_done(job, r != NULL);
}

static void sw_room_reply(void *priv, const struct store_change *ch)
{
	struct sw_room *job = priv;
	struct sw_node *n = job->n;
	struct sweep *sw = n->sw;
	char krooms[KEY_MAX], kent[KEY_MAX];

	if (!ch) {
		sw_room_done(job, false);
		return;
	}
	sw->expired += (uint64_t)ch->removed;
	if (ch->nusers > 0)
		sw->left(sw->arg, job->room, ch);
	if (ch->more) {
		/* The limit cut it: again, later (keeps its node ref). */
		sw_room_push(sw, job);
		return;
	}
	if (ch->rest > 0) {
		sw_room_done(job, true);
		return;
	}
	store_node_key(sw->st, krooms, sizeof(krooms), n->name, "rooms");
	store_room_node_key(sw->st, kent, sizeof(kent), job->room, n->name);
	if (rconn_cmdf(sw->st->rc, sw_ignore, "SREM node rooms", "SREM %s %s", krooms,
		       job->room) < 0 ||
	    rconn_cmdf(sw->st->rc, sw_unlink_check, job, "EXISTS %s", kent) < 0)
		sw_room_done(job, false);
}

/* --- scanning ------------------------------------------------------------- */

static void sw_scan_reply(void *priv, redisReply *r)
{
	struct sw_node *n = priv;
	struct sweep *sw = n->sw;
	const redisReply *cur, *list;
	size_t i;

	n->scanning = false;
	if (!store_reply_ok("SSCAN node rooms", r) || r->type != REDIS_REPLY_ARRAY ||
	    r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		n->scan_done = true;
		sw_node_release(n, false);
		return;
	}
	cur = r->element[0];
	list = r->element[1];
	for (i = 0; i < list->elements; i++) {
		const redisReply *e = list->element[i];
		struct sw_room *job;

		if (e->type != REDIS_REPLY_STRING || !name_room_valid(e->str, e->len))
			continue;
		job = malloc(sizeof(*job) + e->len + 1);
		if (!job) {
			n->failed = true;
			break;
		}
		job->n = n;
		memcpy(job->room, e->str, e->len + 1);
		n->refs++;
		sw_room_push(sw, job);
	}
	snprintf(n->cursor, sizeof(n->cursor), "%s", cur->str);
	n->steps++;
	if (!strcmp(cur->str, "0"))
		n->scan_done = true;
	if (!n->all) {
		/* A live node: a few steps per run, the cursor kept for the
		 * next run, so a pass over its rooms spans several runs. */
		sw_cursor_set(sw, n->name, cur->str);
		if (n->steps >= SWEEP_LIVE_STEPS)
			n->scan_done = true;
	}
	sw_node_release(n, true);
}

static bool sw_scan_next(struct sweep *sw)
{
	struct sw_node *n;
	char krooms[KEY_MAX];

	for (n = sw->nodes; n; n = n->next) {
		if (!n->ready || n->scanning || n->scan_done)
			continue;
		if (n->failed) {
			n->scan_done = true;
			sw_node_check(n);
			return true;
		}
		store_node_key(sw->st, krooms, sizeof(krooms), n->name, "rooms");
		n->refs++;
		n->scanning = true;
		if (rconn_cmdf(sw->st->rc, sw_scan_reply, n,
			       "SSCAN %s %s COUNT " SWEEP_SCAN_COUNT, krooms,
			       n->cursor) < 0) {
			n->scanning = false;
			n->scan_done = true;
			sw_node_release(n, false);
		}
		return true;
	}
	return false;
}

void sweep_pump(struct sweep *sw)
{
	struct sw_room *job;

	while (sw->st->ready && !rconn_full(sw->st->rc)) {
		if ((job = sw_room_pop(sw))) {
			if (store_expire(sw->st, job->room, job->n->name,
					 job->n->bound_ms, SWEEP_LIMIT, sw_room_reply,
					 job) < 0)
				sw_room_done(job, false);
			continue;
		}
		if (sw->nrooms >= SWEEP_QUEUE_MAX || !sw_scan_next(sw))
			break;
	}
}

/* The connection went: queued jobs fail (in-flight ones got NULL). */
void sweep_lost(struct sweep *sw)
{
	struct sw_room *job;
	struct sw_node *n, *next;

	while ((job = sw_room_pop(sw)))
		sw_room_done(job, false);
	for (n = sw->nodes; n; n = next) {
		next = n->next;
		/* In-flight commands were failed before this: nothing
		 * scans or waits for its liveness any more. */
		if (!n->scan_done) {
			n->failed = true;
			n->scan_done = true;
			sw_node_check(n);
		}
	}
}

/* --- the run -------------------------------------------------------------- */

static void sw_hb_reply(void *priv, redisReply *r)
{
	struct sw_node *n = priv;
	struct sweep *sw = n->sw;
	int64_t deadline;

	n->ready = true;
	if (!store_reply_ok("HGET node hb", r)) {
		n->failed = true;
		n->scan_done = true;
		sw_node_check(n);
		return;
	}
	n->bound_ms = sw->run_now_ms;
	if (r->type == REDIS_REPLY_NIL) {
		/* No liveness (only joins came, or it was forgotten): its
		 * entries live by their own deadlines. */
		n->finalize = true;
	} else if (r->type == REDIS_REPLY_STRING) {
		deadline = strtoll(r->str, NULL, 10);
		if (deadline <= sw->run_now_ms) {
			n->all = true;
			n->finalize = true;
			n->bound_ms = sw->run_now_ms + (int64_t)sw->ttl_ms;
			LOG_I("node silent past its ttl: its users leave",
			      "node=%s deadline=%" PRId64 " now=%" PRId64,
			      log_q(n->name), deadline, sw->run_now_ms);
		}
	}
	if (!n->all) {
		const char *c = map_get(&sw->cursors, n->name);

		snprintf(n->cursor, sizeof(n->cursor), "%s", c ? c : "0");
	}
	sweep_pump(sw);
}

static void sw_members_reply(void *priv, redisReply *r)
{
	struct sweep *sw = priv;
	char khb[KEY_MAX];
	size_t i;

	if (!store_reply_ok("SMEMBERS nodes", r) || r->type != REDIS_REPLY_ARRAY) {
		sw->run_failed = true;
		sw_run_release(sw);
		return;
	}
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		struct sw_node *n;

		if (e->type != REDIS_REPLY_STRING || strlen(e->str) != e->len ||
		    !id_node_valid(e->str))
			continue;
		n = sw_node_new(sw, e->str);
		if (!n) {
			sw->run_failed = true;
			break;
		}
		n->run = true;
		sw->run_refs++;
		store_node_key(sw->st, khb, sizeof(khb), n->name, "hb");
		if (rconn_cmdf(sw->st->rc, sw_hb_reply, n, "HGET %s deadline", khb) <
		    0) {
			n->ready = true;
			n->failed = true;
			n->scan_done = true;
			sw_node_check(n);
		}
	}
	sw_run_release(sw);
}

int sweep_start(struct sweep *sw, int64_t now_ms)
{
	char knodes[KEY_MAX];

	if (sw->running || !sw->st->ready)
		return -1;
	store_global_key(sw->st, knodes, sizeof(knodes), "nodes");
	sw->running = true;
	sw->run_failed = false;
	sw->run_now_ms = now_ms;
	sw->run_refs = 1;
	if (rconn_cmdf(sw->st->rc, sw_members_reply, sw, "SMEMBERS %s", knodes) < 0) {
		sw->running = false;
		return -1;
	}
	return 0;
}

int sweep_purge(struct sweep *sw, const char *node, int64_t bound_ms,
		sweep_done_fn *done, void *arg)
{
	struct sw_node *n;

	if (!sw->st->ready)
		return -1;
	n = sw_node_new(sw, node);
	if (!n)
		return -1;
	n->ready = true;
	n->all = true;
	n->finalize = true;
	n->bound_ms = bound_ms;
	n->done = done;
	n->done_arg = arg;
	sweep_pump(sw);
	return 0;
}
