/*
 * watch: presence changes as they happen, one JSON line each, for shells:
 *   {"type":"presence","room":R,"joined":[...],"left":[...]}
 * Every chat-presence track publishes each change line it writes on the
 * Redis channel PREFIX:events (one PUBLISH per coalesced line), and watch
 * subscribes to it: the lines are exactly what the gateways get, from
 * every tracker, without polling. Pub/sub is at-most-once: while watch is
 * disconnected it misses changes, so a reconnect is logged with the time
 * away (and `online` gives the state). --room keeps one room's lines.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "sig.h"
#include "skim.h"

/* Write all of p to stdout. Returns 0, or -1 when stdout is gone. */
static int watch_write(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A pub/sub message: print its payload if it is about the room wanted. */
static int watch_message(const struct pres_opts *o, const redisReply *r)
{
	const redisReply *payload;
	struct skim_field f[1] = { { .name = "room" } };

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0)
		return 0;
	payload = r->element[2];
	if (payload->type != REDIS_REPLY_STRING)
		return 0;
	if (o->room) {
		if (skim_object(payload->str, payload->len, f, 1) < 0 ||
		    !skim_str_is(&f[0], o->room))
			return 0;
	}
	if (watch_write(payload->str, payload->len) < 0 || watch_write("\n", 1) < 0)
		return -1;
	return 0;
}

/* Wait up to ms for a signal. Returns the signal number or 0. */
static int watch_wait(int sigfd, uint64_t ms)
{
	struct pollfd p = { .fd = sigfd, .events = POLLIN };
	int sig;

	if (poll(&p, 1, (int)ms) > 0)
		while ((sig = sig_next()) != 0)
			if (sig == SIGTERM || sig == SIGINT)
				return sig;
	return 0;
}

/* Subscribed: print messages until the connection goes (returns -1), a
 * signal comes (0) or stdout goes (EX_IOERR). */
static int watch_session(const struct pres_opts *o, redisContext *c, int sigfd)
{
	struct pollfd p[2];
	void *reply;
	int sig;

	for (;;) {
		p[0] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (p[0].revents)
			while ((sig = sig_next()) != 0)
				if (sig == SIGTERM || sig == SIGINT)
					return 0;
		if (!p[1].revents)
			continue;
		if (redisBufferRead(c) != REDIS_OK)
			return -1;
		for (;;) {
			if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
				return -1;
			if (!reply)
				break;
			if (watch_message(o, reply) < 0) {
				freeReplyObject(reply);
				return EX_IOERR;
			}
			freeReplyObject(reply);
		}
	}
}

int watch_run(const struct pres_opts *o, const struct rurl *u)
{
	static const int sigs[] = { SIGTERM, SIGINT, 0 };
	struct backoff bo;
	char err[256], chan[512], m[400];
	int64_t lost_at = 0;
	int sigfd, code, r;
	bool ever = false;

	rurl_masked(u, m, sizeof(m));
	snprintf(chan, sizeof(chan), "%s:events", o->prefix);
	backoff_init(&bo, 100, o->backoff_max_ms,
		     (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32));
	sigfd = sig_init(sigs);
	if (sigfd < 0) {
		LOG_F("unable to set up signals", "err=%s", log_q(strerror(errno)));
		return EX_OSERR;
	}
	for (;;) {
		redisContext *c = sync_connect(o, u, err, sizeof(err), &code);
		redisReply *rep;

		if (c) {
			rep = redisCommand(c, "SUBSCRIBE %s", chan);
			if (!rep || rep->type == REDIS_REPLY_ERROR) {
				snprintf(err, sizeof(err), "SUBSCRIBE: %s",
					 rep ? rep->str : c->errstr);
				if (rep)
					freeReplyObject(rep);
				redisFree(c);
				c = NULL;
			} else {
				freeReplyObject(rep);
			}
		}
		if (!c) {
			int64_t now = clock_mono_us();

			if (!ever) {
				LOG_F("unable to connect to Redis", "url=%s err=%s",
				      log_q(m), log_q(err));
				return code;
			}
			if (!lost_at)
				lost_at = now;
			if ((uint64_t)(now - lost_at) / 1000 >= o->retry_budget_ms) {
				LOG_F("Redis lost and the retry budget is spent",
				      "url=%s err=%s", log_q(m), log_q(err));
				return EX_TEMPFAIL;
			}
			if (watch_wait(sigfd, backoff_next_ms(&bo)))
				return EX_OK;
			continue;
		}
		if (lost_at) {
			LOG_W("reconnected to Redis: changes made while away "
			      "were not seen",
			      "away_ms=%" PRId64, (clock_mono_us() - lost_at) / 1000);
			lost_at = 0;
		}
		LOG_I("watching", "url=%s channel=%s", log_q(m), log_q(chan));
		ever = true;
		backoff_reset(&bo);
		/* Blocking reads are the poll loop's business now. */
		redisSetTimeout(c, (struct timeval){ 0, 0 });
		r = watch_session(o, c, sigfd);
		if (r >= 0) {
			redisFree(c);
			if (r == EX_IOERR)
				LOG_F("unable to write to stdout", "err=%s",
				      log_q(strerror(errno ? errno : EPIPE)));
			return r;
		}
		LOG_W("lost Redis", "url=%s err=%s", log_q(m),
		      log_q(c->errstr[0] ? c->errstr : "connection closed"));
		redisFree(c);
		lost_at = clock_mono_us();
	}
}
