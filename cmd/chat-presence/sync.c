/*
 * sync: the blocking Redis connection of the shell subcommands (online,
 * watch): hiredis's plain API with the connect and reply timeouts of the
 * command line, AUTH and SELECT done before the caller sees it.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <sys/time.h>

static struct timeval ms_tv(uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	return tv;
}

redisContext *sync_connect(const struct pres_opts *o, const struct rurl *u, char *err,
			   size_t errlen, int *code)
{
	redisContext *c;
	redisReply *r;
	char db[16];

	*code = EX_UNAVAILABLE;
	c = redisConnectWithTimeout(u->host, u->port, ms_tv(o->connect_timeout_ms));
	if (!c || c->err) {
		snprintf(err, errlen, "%s", c ? c->errstr : "out of memory");
		goto out_free;
	}
	if (redisSetTimeout(c, ms_tv(o->timeout_ms)) != REDIS_OK) {
		snprintf(err, errlen, "%s", c->errstr);
		goto out_free;
	}
	redisEnableKeepAlive(c);
	if (u->password[0]) {
		if (u->user[0])
			r = redisCommand(c, "AUTH %s %s", u->user, u->password);
		else
			r = redisCommand(c, "AUTH %s", u->password);
		if (!r) {
			snprintf(err, errlen, "%s", c->errstr);
			goto out_free;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "AUTH refused: %.100s", r->str);
			*code = EX_CONFIG;
			freeReplyObject(r);
			goto out_free;
		}
		freeReplyObject(r);
	}
	snprintf(db, sizeof(db), "%d", u->db);
	r = redisCommand(c, "SELECT %s", db);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "SELECT %s: %.100s", db, r ? r->str : c->errstr);
		if (r && !strncmp(r->str, "NOAUTH", 6))
			*code = EX_CONFIG;
		if (r)
			freeReplyObject(r);
		goto out_free;
	}
	freeReplyObject(r);
	return c;
out_free:
	if (c)
		redisFree(c);
	return NULL;
}
