/*
 * tls: TLS virtual hosts, one per certificate generation (see tls.h). A
 * vhost that is no longer the current one is destroyed, outside any
 * libwebsockets callback (a timer), once its last connection is gone.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include "gw.h"
#include "log.h"

#define TLS_GEN_MAX 8       /* certificate generations alive at once */

struct tls_gen {
	struct lws_vhost *vh;       /* the vhost, NULL: free slot */
	unsigned conns;             /* connections adopted into it, not gone */
	unsigned n;                 /* generation number */
	char name[16];              /* the vhost's name: lws keeps the pointer */
};

static struct lws_context *tctx;
static struct lws_vhost *tplain;
static const struct lws_protocols *tprotocols;
static struct tls_gen gens[TLS_GEN_MAX];
static struct tls_gen *cur;        /* where new connections go (TLS) */
static unsigned next_gen;
static lws_sorted_usec_list_t reap_sul;

bool tls_on(void)
{
	return gw_cfg.tls_cert != NULL;
}

struct lws_vhost *tls_vhost(void)
{
	return cur ? cur->vh : tplain;
}

/* A new TLS vhost from the files, named g->name. Returns it, or NULL. */
static struct lws_vhost *tls_vhost_new(struct tls_gen *g)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = tprotocols;
	/* lws keeps this pointer, not a copy (the SNI callback compares
	 * against it): a stack buffer here was a use after scope, found by
	 * ASan at the first TLS handshake after a reload */
	info.vhost_name = g->name;
	info.ssl_cert_filepath = gw_cfg.tls_cert;
	info.ssl_private_key_filepath = gw_cfg.tls_key;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8;
	return lws_create_vhost(tctx, &info);
}

static int tls_add_gen(char *err, size_t errlen)
{
	struct tls_gen *g = NULL;
	int i;

	for (i = 0; i < TLS_GEN_MAX; i++)
		if (!gens[i].vh) {
			g = &gens[i];
			break;
		}
	if (!g) {
		snprintf(err, errlen, "%d certificate generations still hold connections",
			 TLS_GEN_MAX);
		return -1;
	}
	snprintf(g->name, sizeof(g->name), "tls-%u", ++next_gen);
	g->vh = tls_vhost_new(g);
	if (!g->vh) {
		snprintf(err, errlen, "unable to load certificate '%s' and key '%s'",
			 gw_cfg.tls_cert, gw_cfg.tls_key);
		return -1;
	}
	g->conns = 0;
	g->n = next_gen;
	cur = g;
	return 0;
}

int tls_start(struct lws_context *ctx, struct lws_vhost *plain,
	      const struct lws_protocols *protocols, char *err, size_t errlen)
{
	tctx = ctx;
	tplain = plain;
	tprotocols = protocols;
	if (!tls_on())
		return 0;
	return tls_add_gen(err, errlen);
}

/* Destroy the old generations nobody uses (from a timer, never from a
 * callback of one of their connections). */
static void tls_reap(lws_sorted_usec_list_t *sul)
{
	int i;

	(void)sul;
	for (i = 0; i < TLS_GEN_MAX; i++) {
		struct tls_gen *g = &gens[i];

		if (g->vh && g != cur && !g->conns) {
			LOG_I("an old certificate's vhost goes", "generation=%u", g->n);
			lws_vhost_destroy(g->vh);
			g->vh = NULL;
		}
	}
}

int tls_reload(char *err, size_t errlen)
{
	if (!tls_on())
		return 0;
	if (tls_add_gen(err, errlen) < 0)
		return -1;
	lws_sul_schedule(tctx, 0, &reap_sul, tls_reap, 1);
	return 0;
}

static struct tls_gen *tls_gen_of(struct lws_vhost *vh)
{
	int i;

	for (i = 0; i < TLS_GEN_MAX; i++)
		if (gens[i].vh == vh)
			return &gens[i];
	return NULL;
}

void tls_conn_add(struct lws_vhost *vh)
{
	struct tls_gen *g = tls_gen_of(vh);

	if (g)
		g->conns++;
}

void tls_conn_gone(struct lws_vhost *vh)
{
	struct tls_gen *g = tls_gen_of(vh);

	if (!g || !g->conns)
		return;
	if (--g->conns == 0 && g != cur)
		lws_sul_schedule(tctx, 0, &reap_sul, tls_reap, 1);
}

void tls_stop(void)
{
	lws_sul_cancel(&reap_sul);
	/* The context's destruction takes the vhosts with it. */
	memset(gens, 0, sizeof(gens));
	cur = NULL;
}
