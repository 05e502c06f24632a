/*
 * store: presence in Redis. The key layout is in store.h and
 * chat-presence(1). Every change of presence happens inside one Lua script
 * that touches one room's keys only (so one Redis Cluster slot: the keys
 * share the hash tag {ROOM}); the script's own result says which users
 * became present or absent, so when several chat-presence processes work
 * on the same Redis, each transition is reported by exactly one of them.
 * The node keys ({NODE}) are an index for the sweep and are written after
 * the room scripts; store.h says why that order matters.
 *
 * Scripts are loaded (SCRIPT LOAD) in the handshake after every connect and
 * called with EVALSHA; a NOSCRIPT error (someone ran SCRIPT FLUSH) drops
 * the connection, and the next handshake loads them again. The handshake
 * also checks that Redis is 6.2 or later (ZMSCORE, ZADD GT) and reads the
 * epoch key: a different epoch than last time means Redis lost the state
 * (restarted without persistence) and the heartbeats will rebuild it.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* Users per EVALSHA: bounds the time one script holds Redis (about 10 ms
 * per 10,000 refreshed entries here). */
#define STORE_CHUNK 10000

/* ADD: KEYS users, node's entries, nodes, seen; ARGV node, deadline,
 * users... Refreshes node's entries (ZADD XX GT CH: the common case, every
 * entry known, costs one command per 2,000 users), adds the new ones, and
 * returns the users new to the room, the Redis time and the seen stamp
 * (0 and 0 when no user is new: nothing to time). */
/* clang-format off */
static const char script_add[] =
	"local users, nk, nodes, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
	"local node, d = ARGV[1], ARGV[2]\n"
	"local joined, added, n, i = {}, 0, #ARGV, 3\n"
	"while i <= n do\n"
	"  local last = math.min(n, i + 1999)\n"
	"  local za = {}\n"
	"  for j = i, last do za[#za + 1] = d; za[#za + 1] = ARGV[j] end\n"
	"  if redis.call('ZADD', nk, 'XX', 'GT', 'CH', unpack(za)) < last - i + 1 then\n"
	"    local sc = redis.call('ZMSCORE', nk, unpack(ARGV, i, last))\n"
	"    for k = 1, #sc do\n"
	"      local u = ARGV[i + k - 1]\n"
	"      if not sc[k] and redis.call('ZADD', nk, 'NX', d, u) == 1 then\n"
	"        added = added + 1\n"
	"        if redis.call('ZADD', users, 'NX', 0, u) == 1 then\n"
	"          joined[#joined + 1] = u\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  i = last + 1\n"
	"end\n"
	"if added > 0 then redis.call('SADD', nodes, node) end\n"
	"if #joined == 0 then return {joined, 0, 0} end\n"
	"local t = redis.call('TIME')\n"
	"return {joined, t[1] * 1000000 + t[2], tonumber(redis.call('GET', seen) or 0)}\n";
/* clang-format on */

/* DEL: KEYS users, node's entries, nodes, seen; ARGV node, mode ("leave"
 * or "expire"), bound (ms), limit, key prefix of the room's node keys,
 * users... (leave). Removes node's entries (leave: the users named;
 * expire: at most limit with deadline <= bound), then each removed user
 * that no other node holds leaves the room. Returns {left, time, seen,
 * entries node still has here, more (expire hit the limit), removed}. */
/* clang-format off */
static const char script_del[] =
	"local users, nk, nodes, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
	"local node, mode, kp = ARGV[1], ARGV[2], ARGV[5]\n"
	"local gone, more = {}, 0\n"
	"if mode == 'expire' then\n"
	"  local lim = tonumber(ARGV[4])\n"
	"  gone = redis.call('ZRANGEBYSCORE', nk, '-inf', ARGV[3], 'LIMIT', 0, lim)\n"
	"  if #gone >= lim then more = 1 end\n"
	"  for i = 1, #gone, 2000 do\n"
	"    redis.call('ZREM', nk, unpack(gone, i, math.min(#gone, i + 1999)))\n"
	"  end\n"
	"else\n"
	"  for i = 6, #ARGV do\n"
	"    if redis.call('ZREM', nk, ARGV[i]) == 1 then gone[#gone + 1] = ARGV[i] end\n"
	"  end\n"
	"end\n"
	"local left = {}\n"
	"if #gone > 0 then\n"
	"  local others = redis.call('SMEMBERS', nodes)\n"
	"  for _, u in ipairs(gone) do\n"
	"    local held = false\n"
	"    for _, o in ipairs(others) do\n"
	"      if o ~= node and redis.call('ZSCORE', kp .. o, u) then held = true; break end\n"
	"    end\n"
	"    if not held and redis.call('ZREM', users, u) == 1 then left[#left + 1] = u end\n"
	"  end\n"
	"end\n"
	"local rest = redis.call('ZCARD', nk)\n"
	"if rest == 0 then redis.call('SREM', nodes, node) end\n"
	"if #left == 0 then return {left, 0, 0, rest, more, #gone} end\n"
	"local t = redis.call('TIME')\n"
	"return {left, t[1] * 1000000 + t[2], tonumber(redis.call('GET', seen) or 0), rest, more, #gone}\n";
/* clang-format on */

/* QUERY: KEYS users, seen; ARGV limit. Stamps the room as seen (Redis
 * time, kept a minute: longer than any window) and returns the first
 * limit users in byte order and the count, from one snapshot. */
/* clang-format off */
static const char script_query[] =
	"local t = redis.call('TIME')\n"
	"redis.call('SET', KEYS[2], string.format('%d', t[1] * 1000000 + t[2]), 'PX', 60000)\n"
	"local lim, list = tonumber(ARGV[1]), {}\n"
	"if lim > 0 then list = redis.call('ZRANGE', KEYS[1], 0, lim - 1) end\n"
	"return {list, redis.call('ZCARD', KEYS[1])}\n";
/* clang-format on */

static const char *const scripts[SCRIPT_COUNT] = {
	script_add,
	script_del,
	script_query,
};
static const char *const script_names[SCRIPT_COUNT] = { "add", "del", "query" };

/* One script call in flight: the caller's callback and the room. */
struct store_op {
	store_change_fn *fn; /* change scripts */
	store_query_fn *qfn; /* query */
	void *priv;          /* caller's argument */
	struct store *st;    /* for NOSCRIPT */
	int script;          /* which script */
	char room[];         /* room of the call */
};

/* --- keys ---------------------------------------------------------------- */

void store_room_key(const struct store *st, char *out, size_t outlen,
		    const char *room, const char *what)
{
	snprintf(out, outlen, "%s:{%s}:%s", st->prefix, room, what);
}

void store_room_node_key(const struct store *st, char *out, size_t outlen,
			 const char *room, const char *node)
{
	snprintf(out, outlen, "%s:{%s}:node:%s", st->prefix, room, node);
}

void store_node_key(const struct store *st, char *out, size_t outlen,
		    const char *node, const char *what)
{
	snprintf(out, outlen, "%s:node:{%s}:%s", st->prefix, node, what);
}

void store_global_key(const struct store *st, char *out, size_t outlen, const char *what)
{
	snprintf(out, outlen, "%s:%s", st->prefix, what);
}

#define KEY_MAX 512

/* --- replies ------------------------------------------------------------- */

bool store_reply_ok(const char *what, const redisReply *r)
{
	if (!r) {
		pm.lost_ops.value++;
		return false;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		pm.redis_errors.value++;
		LOG_W("redis refused a command", "cmd=%s err=%s", log_q(what),
		      log_q(r->str));
		return false;
	}
	return true;
}

static void store_op_error(struct store_op *op, const redisReply *r)
{
	if (!store_reply_ok(script_names[op->script], r))
		if (r && !strncmp(r->str, "NOSCRIPT", 8))
			rconn_drop(op->st->rc, "scripts gone from Redis (NOSCRIPT)");
}

static int64_t reply_int(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return (int64_t)r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

static void store_change_reply(void *priv, redisReply *r)
{
	struct store_op *op = priv;
	struct store_change ch;
	const redisReply *list;
	size_t i;

	memset(&ch, 0, sizeof(ch));
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY) {
		if (r && r->type != REDIS_REPLY_ERROR) {
			pm.redis_errors.value++;
			LOG_W("unexpected reply from a script", "script=%s type=%d",
			      log_q(script_names[op->script]), r->type);
		} else {
			store_op_error(op, r);
		}
		op->fn(op->priv, NULL);
		goto out_free;
	}
	list = r->element[0];
	ch.users = malloc((list->elements + 1) * sizeof(*ch.users));
	if (!ch.users) {
		LOG_F("out of memory", NULL);
		op->fn(op->priv, NULL);
		goto out_free;
	}
	for (i = 0; i < list->elements; i++)
		if (list->element[i]->type == REDIS_REPLY_STRING)
			ch.users[ch.nusers++] = list->element[i]->str;
	ch.t_us = reply_int(r->element[1]);
	ch.seen_us = reply_int(r->element[2]);
	if (r->elements >= 6) {
		ch.rest = reply_int(r->element[3]);
		ch.more = reply_int(r->element[4]) != 0;
		ch.removed = reply_int(r->element[5]);
	}
	ch.room = op->room;
	op->fn(op->priv, &ch);
	free(ch.users);
out_free:
	free(op);
}

static void store_query_reply(void *priv, redisReply *r)
{
	struct store_op *op = priv;
	const char **users;
	size_t i, n = 0;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY) {
		store_op_error(op, r);
		op->qfn(op->priv, NULL, 0, 0,
			r ? "presence store error" : "presence store unavailable");
		goto out_free;
	}
	users = malloc((r->element[0]->elements + 1) * sizeof(*users));
	if (!users) {
		op->qfn(op->priv, NULL, 0, 0, "out of memory");
		goto out_free;
	}
	for (i = 0; i < r->element[0]->elements; i++)
		if (r->element[0]->element[i]->type == REDIS_REPLY_STRING)
			users[n++] = r->element[0]->element[i]->str;
	op->qfn(op->priv, users, n, (uint64_t)reply_int(r->element[1]), NULL);
	free(users);
out_free:
	free(op);
}

/* --- script calls -------------------------------------------------------- */

static struct store_op *store_op_new(struct store *st, int script, const char *room,
				     void *priv)
{
	size_t n = strlen(room);
	struct store_op *op = calloc(1, sizeof(*op) + n + 1);

	if (!op)
		return NULL;
	op->st = st;
	op->script = script;
	op->priv = priv;
	memcpy(op->room, room, n + 1);
	return op;
}

/* EVALSHA script with the room's four keys, then head[0..nhead) and
 * users[0..n) as ARGV. */
static int store_eval_room(struct store *st, struct store_op *op, const char *room,
			   const char *node, const char *const *head, int nhead,
			   const char *const *users, size_t n)
{
	char kusers[KEY_MAX], knode[KEY_MAX], knodes[KEY_MAX], kseen[KEY_MAX];
	const char **argv;
	size_t i, argc = 7 + (size_t)nhead + n;
	int r;

	store_room_key(st, kusers, sizeof(kusers), room, "users");
	store_room_node_key(st, knode, sizeof(knode), room, node);
	store_room_key(st, knodes, sizeof(knodes), room, "nodes");
	store_room_key(st, kseen, sizeof(kseen), room, "seen");
	argv = malloc(argc * sizeof(*argv));
	if (!argv)
		return -1;
	argv[0] = "EVALSHA";
	argv[1] = st->sha[op->script];
	argv[2] = "4";
	argv[3] = kusers;
	argv[4] = knode;
	argv[5] = knodes;
	argv[6] = kseen;
	for (i = 0; i < (size_t)nhead; i++)
		argv[7 + i] = head[i];
	for (i = 0; i < n; i++)
		argv[7 + (size_t)nhead + i] = users[i];
	r = rconn_cmd(st->rc, store_change_reply, op, (int)argc, argv, NULL);
	free(argv);
	return r;
}

/* A change script over users in chunks; fn is called once per chunk. */
static int store_change(struct store *st, int script, const char *room,
			const char *node, const char *const *head, int nhead,
			const char *const *users, size_t n, store_change_fn *fn,
			void *priv)
{
	size_t off = 0;

	if (!st->ready)
		return -1;
	do {
		size_t k = n - off > STORE_CHUNK ? STORE_CHUNK : n - off;
		struct store_op *op = store_op_new(st, script, room, priv);

		if (!op)
			return -1;
		op->fn = fn;
		if (store_eval_room(st, op, room, node, head, nhead, users + off, k) <
		    0) {
			free(op);
			return -1;
		}
		off += k;
	} while (off < n);
	return 0;
}

int store_add(struct store *st, const char *room, const char *node,
	      const char *const *users, size_t n, int64_t deadline_ms,
	      store_change_fn *fn, void *priv)
{
	char d[24];
	const char *head[2] = { node, d };

	if (n == 0)
		return 0;
	snprintf(d, sizeof(d), "%" PRId64, deadline_ms);
	return store_change(st, SCRIPT_ADD, room, node, head, 2, users, n, fn, priv);
}

int store_leave(struct store *st, const char *room, const char *node,
		const char *const *users, size_t n, store_change_fn *fn, void *priv)
{
	char kp[KEY_MAX];
	const char *head[5] = { node, "leave", "0", "0", kp };

	if (n == 0)
		return 0;
	store_room_node_key(st, kp, sizeof(kp), room, "");
	return store_change(st, SCRIPT_DEL, room, node, head, 5, users, n, fn, priv);
}

int store_expire(struct store *st, const char *room, const char *node,
		 int64_t bound_ms, unsigned limit, store_change_fn *fn, void *priv)
{
	char kp[KEY_MAX], b[24], l[16];
	const char *head[5] = { node, "expire", b, l, kp };
	struct store_op *op;

	if (!st->ready)
		return -1;
	store_room_node_key(st, kp, sizeof(kp), room, "");
	snprintf(b, sizeof(b), "%" PRId64, bound_ms);
	snprintf(l, sizeof(l), "%u", limit ? limit : 1);
	op = store_op_new(st, SCRIPT_DEL, room, priv);
	if (!op)
		return -1;
	op->fn = fn;
	if (store_eval_room(st, op, room, node, head, 5, NULL, 0) < 0) {
		free(op);
		return -1;
	}
	return 0;
}

static void store_touch_reply(void *priv, redisReply *r)
{
	store_reply_ok(priv, r);
}

int store_node_touch(struct store *st, const char *node, int64_t deadline_ms,
		     int64_t ttl_ms, const char *const *rooms, size_t nrooms)
{
	char khb[KEY_MAX], krooms[KEY_MAX], knodes[KEY_MAX], d[24], t[24];
	const char **argv;
	size_t i;
	int r;

	if (!st->ready)
		return -1;
	store_node_key(st, khb, sizeof(khb), node, "hb");
	store_node_key(st, krooms, sizeof(krooms), node, "rooms");
	store_global_key(st, knodes, sizeof(knodes), "nodes");
	snprintf(d, sizeof(d), "%" PRId64, deadline_ms);
	snprintf(t, sizeof(t), "%" PRId64, ttl_ms);
	if (nrooms > 0) {
		argv = malloc((nrooms + 2) * sizeof(*argv));
		if (!argv)
			return -1;
		argv[0] = "SADD";
		argv[1] = krooms;
		for (i = 0; i < nrooms; i++)
			argv[2 + i] = rooms[i];
		r = rconn_cmd(st->rc, store_touch_reply, "SADD node rooms",
			      (int)nrooms + 2, argv, NULL);
		free(argv);
		if (r < 0)
			return -1;
	}
	if (rconn_cmd(st->rc, store_touch_reply, "HSET node hb", 6,
		      (const char *[]){ "HSET", khb, "deadline", d, "ttl", t },
		      NULL) < 0 ||
	    rconn_cmd(st->rc, store_touch_reply, "SADD nodes", 3,
		      (const char *[]){ "SADD", knodes, node }, NULL) < 0)
		return -1;
	return 0;
}

int store_query(struct store *st, const char *room, uint64_t limit,
		store_query_fn *fn, void *priv)
{
	char kusers[KEY_MAX], kseen[KEY_MAX], l[24];
	struct store_op *op;

	if (!st->ready)
		return -1;
	store_room_key(st, kusers, sizeof(kusers), room, "users");
	store_room_key(st, kseen, sizeof(kseen), room, "seen");
	snprintf(l, sizeof(l), "%" PRIu64, limit);
	op = store_op_new(st, SCRIPT_QUERY, room, priv);
	if (!op)
		return -1;
	op->qfn = fn;
	if (rconn_cmd(st->rc, store_query_reply, op, 6,
		      (const char *[]){ "EVALSHA", st->sha[SCRIPT_QUERY], "2", kusers,
					kseen, l },
		      NULL) < 0) {
		free(op);
		return -1;
	}
	return 0;
}

int store_publish(struct store *st, const char *line, size_t len)
{
	char kch[KEY_MAX];
	const char *argv[3];
	size_t argvlen[3];

	if (!st->ready)
		return -1;
	store_global_key(st, kch, sizeof(kch), "events");
	argv[0] = "PUBLISH";
	argv[1] = kch;
	argv[2] = line;
	argvlen[0] = 7;
	argvlen[1] = strlen(kch);
	argvlen[2] = len && line[len - 1] == '\n' ? len - 1 : len;
	return rconn_cmd(st->rc, store_touch_reply, "PUBLISH", 3, argv, argvlen);
}

/* --- handshake ----------------------------------------------------------- */

static void store_hello_done(struct store *st)
{
	if (--st->hello_left > 0 || st->hello_failed)
		return;
	st->ready = true;
	if (st->on_ready)
		st->on_ready(st->arg, false);
}

static void store_hello_fail(struct store *st, const char *why)
{
	st->hello_failed = true;
	rconn_drop(st->rc, why);
}

static void store_info_reply(void *priv, redisReply *r)
{
	struct store *st = priv;
	const char *v;
	int major = 0, minor = 0;

	if (!r)
		return;
	if (r->type != REDIS_REPLY_STRING) {
		store_hello_fail(st, "INFO server failed");
		return;
	}
	v = strstr(r->str, "redis_version:");
	if (v && sscanf(v + 14, "%d.%d", &major, &minor) == 2 &&
	    (major > 6 || (major == 6 && minor >= 2))) {
		store_hello_done(st);
		return;
	}
	st->fatal = true;
	snprintf(st->fatal_why, sizeof(st->fatal_why),
		 "Redis %d.%d is too old: chat-presence needs 6.2 or later "
		 "(ZMSCORE, ZADD GT)",
		 major, minor);
	store_hello_fail(st, st->fatal_why);
}

struct store_load {
	struct store *st;
	int script;
};

static void store_script_reply(void *priv, redisReply *r)
{
	struct store_load *l = priv;
	struct store *st = l->st;
	int i = l->script;

	free(l);
	if (!r)
		return;
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		LOG_F("unable to load a script", "script=%s err=%s",
		      log_q(script_names[i]),
		      log_q(r->type == REDIS_REPLY_ERROR ? r->str : "?"));
		store_hello_fail(st, "SCRIPT LOAD failed");
		return;
	}
	memcpy(st->sha[i], r->str, 40);
	st->sha[i][40] = '\0';
	store_hello_done(st);
}

static void store_epoch_reply(void *priv, redisReply *r)
{
	struct store *st = priv;
	bool lost;

	if (!r)
		return;
	if (r->type != REDIS_REPLY_STRING) {
		store_hello_fail(st, "GET epoch failed");
		return;
	}
	lost = st->epoch[0] && strcmp(st->epoch, r->str) != 0;
	snprintf(st->epoch, sizeof(st->epoch), "%s", r->str);
	if (--st->hello_left > 0 || st->hello_failed)
		return;
	st->ready = true;
	if (st->on_ready)
		st->on_ready(st->arg, lost);
}

static void store_setnx_reply(void *priv, redisReply *r)
{
	struct store *st = priv;

	if (!r)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		store_hello_fail(st, "SET epoch failed");
		return;
	}
	store_hello_done(st);
}

/* The connection is up: check the server, load the scripts, read the
 * epoch. The epoch reply comes last and makes the store ready. */
static void store_on_up(void *arg)
{
	struct store *st = arg;
	char kepoch[KEY_MAX];
	int i, ok = 0;

	st->ready = false;
	st->hello_failed = false;
	st->hello_left = 1 + SCRIPT_COUNT + 2;
	/* A new proposal each time: if Redis lost the key, the one it keeps
	 * now differs from what this process saw before. */
	snprintf(st->my_epoch, sizeof(st->my_epoch), "%" PRIx64 "-%x",
		 (uint64_t)clock_wall_ms() ^ ((uint64_t)clock_mono_us() << 20),
		 (unsigned)getpid());
	store_global_key(st, kepoch, sizeof(kepoch), "epoch");
	ok |= rconn_cmdf(st->rc, store_info_reply, st, "INFO server");
	for (i = 0; i < SCRIPT_COUNT; i++) {
		struct store_load *l = malloc(sizeof(*l));

		if (!l) {
			ok = -1;
			break;
		}
		l->st = st;
		l->script = i;
		if (rconn_cmdf(st->rc, store_script_reply, l, "SCRIPT LOAD %s",
			       scripts[i]) < 0) {
			free(l);
			ok = -1;
			break;
		}
	}
	if (ok == 0)
		ok |= rconn_cmdf(st->rc, store_setnx_reply, st, "SET %s %s NX",
				 kepoch, st->my_epoch);
	if (ok == 0)
		ok |= rconn_cmdf(st->rc, store_epoch_reply, st, "GET %s", kepoch);
	if (ok != 0)
		store_hello_fail(st, "out of memory");
}

static void store_on_down(void *arg)
{
	struct store *st = arg;

	st->ready = false;
	if (st->on_down)
		st->on_down(st->arg);
}

void store_init(struct store *st, struct rconn *rc, const char *prefix)
{
	memset(st, 0, sizeof(*st));
	st->rc = rc;
	st->prefix = prefix;
	rc->on_up = store_on_up;
	rc->on_down = store_on_down;
	rc->arg = st;
}

void store_free(struct store *st)
{
	rconn_free(st->rc);
	st->rc = NULL;
}
