/*
 * auth: tokens and users (see auth.h).
 */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "file.h"
#include "gw.h"
#include "jwt.h"
#include "name.h"

static struct jwt_keys *keys;     /* in use */

/* The key set the configuration names: the secret and/or the key file. */
static struct jwt_keys *auth_keys_make(char *err, size_t errlen)
{
	struct jwt_keys *k = NULL;
	size_t n;
	char *s;

	if (gw_cfg.key_file) {
		k = jwt_keys_load(gw_cfg.key_file, err, errlen);
		if (!k)
			return NULL;
	}
	if (gw_cfg.secret_file) {
		s = file_read_small(gw_cfg.secret_file, 4096, &n);
		if (!s) {
			if (errno == ENOBUFS)
				snprintf(err, errlen, "unable to read secret file '%s': longer "
					 "than 4096 bytes", gw_cfg.secret_file);
			else
				snprintf(err, errlen, "unable to open secret file '%s': %s",
					 gw_cfg.secret_file, strerror(errno));
			jwt_keys_free(k);
			return NULL;
		}
		if (n == 0) {
			snprintf(err, errlen, "secret file '%s' is empty", gw_cfg.secret_file);
			free(s);
			jwt_keys_free(k);
			return NULL;
		}
		if (!k)
			k = jwt_keys_secret(s, n);
		else if (jwt_keys_add_secret(k, s, n) < 0) {
			jwt_keys_free(k);
			k = NULL;
		}
		free(s);
		if (!k)
			snprintf(err, errlen, "out of memory reading the secret");
	}
	return k;
}

int auth_load(char *err, size_t errlen)
{
	if (gw_cfg.auth != AUTH_JWT)
		return 0;
	keys = auth_keys_make(err, errlen);
	return keys ? 0 : -1;
}

int auth_reload(char *err, size_t errlen)
{
	struct jwt_keys *k;

	if (gw_cfg.auth != AUTH_JWT)
		return 0;
	k = auth_keys_make(err, errlen);
	if (!k)
		return -1;
	/* Claims never point into a key set: the old one goes now. */
	jwt_keys_free(keys);
	keys = k;
	return 0;
}

void auth_free(void)
{
	jwt_keys_free(keys);
	keys = NULL;
}

int auth_user(struct conn *c, const char *user, const char **why)
{
	if (!user || !name_user_valid(user, strlen(user))) {
		*why = "missing or bad user parameter";
		return 401;
	}
	c->user = strdup(user);
	return c->user ? 0 : 500;
}

int auth_token(struct conn *c, const char *token, size_t n, const char **why)
{
	struct jwt_opts o = jwt_opts_default();
	struct jwt_claims *cl;
	enum jwt_err e;

	if (!keys) {
		*why = "no keys to check tokens with";
		return 401;
	}
	cl = malloc(sizeof(*cl));
	if (!cl)
		return 500;
	o.issuer = gw_cfg.jwt_issuer;
	o.audience = gw_cfg.jwt_audience;
	o.leeway = (int64_t)(gw_cfg.jwt_leeway_ms / 1000);
	e = jwt_verify_keys(token, n, keys, &o, clock_wall_ms() / 1000, cl);
	if (e != JWT_OK) {
		*why = jwt_strerror(e);
		free(cl);
		return 401;
	}
	if (!name_user_valid(cl->sub, strlen(cl->sub))) {
		*why = "token sub is not a valid user name";
		jwt_claims_free(cl);
		free(cl);
		return 401;
	}
	c->user = strdup(cl->sub);
	c->exp = cl->exp;
	if (cl->nrooms < 0 && cl->npublish < 0) {
		/* No claim limits the user: nothing to check later. */
		jwt_claims_free(cl);
		free(cl);
	} else {
		c->claims = cl;
	}
	return c->user ? 0 : 500;
}

int64_t auth_expiry(const struct conn *c)
{
	return c->exp ? c->exp + (int64_t)(gw_cfg.jwt_leeway_ms / 1000) : 0;
}
