/*
 * tls_rpc.c: the tls.* RPC commands (kamcmd tls.list, tls.info, ...).
 *
 * Connection facts are copied under the locks (the module's list lock,
 * then each connection's write_lock, the documented order) into pkg memory
 * and printed after both are released, so that a slow RPC client never
 * holds up the connections.
 */
#include <arpa/inet.h>
#include <string.h>
#include <time.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/dprint.h"
#include "core/globals.h"
#include "core/mem/mem.h"
#include "core/rpc.h"
#include "core/rpc_lookup.h"
#include "core/timer.h"
#include "core/timer_ticks.h"
#include "core/ip_addr.h"

#include "tls_mem.h"
#include "tls_domain.h"
#include "tls_locking.h"
#include "tls_mod.h"
#include "tls_rpc.h"
#include "tls_server.h"
#include "tls_util.h"
#include "tls_verify.h"

/* Most connections tls.list prints: a bound on the pkg memory it uses
 * (about 600 bytes a row, for the rows that exist). */
#define TLS_RPC_LIST_MAX 1000

struct tls_rpc_row {
	int id;
	char local[64];
	char peer[64];
	const char *state;
	const char *role;
	char version[16];
	char cipher[64];
	char domain[96];
	char sni[TLS_NAME_MAX];
	int verified;
	int age;
	int idle;
};

static const char *tls_conn_state(const struct tls_conn *tc)
{
	if (tc->flags & TLS_CONN_FAILED)
		return "failed";
	if (tc->flags & TLS_CONN_SHUTDOWN)
		return "closing";
	if (tc->flags & TLS_CONN_ESTABLISHED)
		return "established";
	return "handshake";
}

static const char *tls_domain_label(const struct tls_domain *d, char *buf,
		size_t size)
{
	const char *role = d->role == TLS_ROLE_SERVER ? "server" : "client";

	switch (d->kind) {
		case TLS_DOM_ADDR: {
			char a[64] = "";
			inet_ntop(d->af, d->ip, a, sizeof(a));
			snprintf(buf, size, d->af == AF_INET6 ? "%s:[%s]:%u" : "%s:%s:%u",
					role, a, d->port);
			break;
		}
		case TLS_DOM_ANY:
			snprintf(buf, size, "%s:any(%s)", role,
					d->names_no ? d->names[0] : "");
			break;
		default:
			snprintf(buf, size, "%s:default", role);
	}
	return buf;
}

/* Copies one connection's facts; the caller holds the list lock. */
static void tls_rpc_row_fill(struct tls_rpc_row *r, struct tls_conn *tc,
		ticks_t now)
{
	struct tcp_connection *c = tc->c;
	const char *sni;
	X509 *peer;

	memset(r, 0, sizeof(*r));
	r->id = c->id;
	tls_addr_str(&c->rcv.dst_ip, c->rcv.dst_port, r->local, sizeof(r->local));
	tls_addr_str(&c->rcv.src_ip, c->rcv.src_port, r->peer, sizeof(r->peer));
	lock_get(&c->write_lock);
	r->state = tls_conn_state(tc);
	r->age = (int)TICKS_TO_S(now - tc->started);
	r->idle = (int)TICKS_TO_S(now - tc->last_io);
	if (tc->dom == NULL) { /* refused for low memory: no TLS state */
		r->role = (c->flags & F_CONN_PASSIVE) ? "server" : "client";
		snprintf(r->domain, sizeof(r->domain), "-");
		lock_release(&c->write_lock);
		return;
	}
	r->role = tc->dom->role == TLS_ROLE_SERVER ? "server" : "client";
	tls_domain_label(tc->dom, r->domain, sizeof(r->domain));
	if (tc->flags & TLS_CONN_ESTABLISHED) {
		snprintf(r->version, sizeof(r->version), "%s",
				SSL_get_version(tc->ssl));
		snprintf(r->cipher, sizeof(r->cipher), "%s",
				SSL_get_cipher_name(tc->ssl));
		peer = SSL_get0_peer_certificate(tc->ssl);
		r->verified = peer && SSL_get_verify_result(tc->ssl) == X509_V_OK
				&& SSL_get_verify_mode(tc->ssl) != SSL_VERIFY_NONE;
	}
	sni = tc->dom->role == TLS_ROLE_SERVER
			? SSL_get_servername(tc->ssl, TLSEXT_NAMETYPE_host_name)
			: tc->server_name;
	snprintf(r->sni, sizeof(r->sni), "%s", sni ? sni : "");
	lock_release(&c->write_lock);
}

static const char *tls_rpc_list_doc[] = {
	"List the TLS connections: id, addresses, state, protocol, cipher,"
	" domain, SNI, peer verified, age and idle seconds.", 0};

static void tls_rpc_list(rpc_t *rpc, void *ctx)
{
	struct tls_rpc_row *rows;
	struct tls_conn *tc;
	ticks_t now = get_ticks_raw();
	int n = 0, i, max;
	void *h;

	max = atomic_get(&tls_shared->connections) + 16;
	if (max > TLS_RPC_LIST_MAX)
		max = TLS_RPC_LIST_MAX;
	rows = pkg_malloc(sizeof(*rows) * (size_t)max);
	if (rows == NULL) {
		rpc->fault(ctx, 500, "out of memory");
		return;
	}
	lock_get(&tls_shared->lock);
	for (tc = tls_shared->conns; tc && n < max; tc = tc->next)
		tls_rpc_row_fill(&rows[n++], tc, now);
	lock_release(&tls_shared->lock);
	for (i = 0; i < n; i++) {
		struct tls_rpc_row *r = &rows[i];
		if (rpc->add(ctx, "{", &h) < 0)
			break;
		rpc->struct_add(h, "dsssssssssdd", "id", r->id, "local", r->local,
				"peer", r->peer, "role", r->role, "state", r->state,
				"version", r->version, "cipher", r->cipher, "domain",
				r->domain, "sni", r->sni, "verified",
				r->verified ? "yes" : "no", "age", r->age, "idle", r->idle);
	}
	pkg_free(rows);
}

static const char *tls_rpc_info_doc[] = {
	"TLS counters: connections by state, handshakes and reloads since"
	" start, configuration generation.", 0};

static void tls_rpc_info(rpc_t *rpc, void *ctx)
{
	int hs = 0, est = 0, failed = 0, closing = 0;
	unsigned int gen;
	unsigned long slab_pages, slab_free;
	struct tls_conn *tc;
	void *h;

	lock_get(&tls_shared->lock);
	for (tc = tls_shared->conns; tc; tc = tc->next) {
		/* Flags are read without the write_lock: a count, not a fact about
		 * one connection. */
		unsigned int f = tc->flags;
		if (f & TLS_CONN_FAILED)
			failed++;
		else if (f & TLS_CONN_SHUTDOWN)
			closing++;
		else if (f & TLS_CONN_ESTABLISHED)
			est++;
		else
			hs++;
	}
	gen = tls_shared->generation;
	lock_release(&tls_shared->lock);
	if (rpc->add(ctx, "{", &h) < 0)
		return;
	tls_shm_pool_stats(&slab_pages, &slab_free);
	rpc->struct_add(h, "ddddddddddddd",
			"connections", atomic_get(&tls_shared->connections),
			"handshaking", hs, "established", est, "closing", closing,
			"failed", failed,
			"handshakes_ok", atomic_get(&tls_shared->handshakes_ok),
			"handshakes_failed", atomic_get(&tls_shared->handshakes_failed),
			"generation", (int)gen,
			"generations_live", (int)__atomic_load_n(&tls_shared->sets_live,
					__ATOMIC_RELAXED),
			"reloads", atomic_get(&tls_shared->reloads),
			"reloads_failed", atomic_get(&tls_shared->reloads_failed),
			"max_connections", tls_max_connections,
			"shm_cached", (int)(__atomic_load_n(&tls_shared->mem_cached,
					__ATOMIC_RELAXED) + (long)slab_free));
}

static const char *tls_rpc_options_doc[] = {
	"The module's effective settings.", 0};

#define TLS_S(v) ((v) ? (v) : "")
static void tls_rpc_options(rpc_t *rpc, void *ctx)
{
	void *h;

	if (rpc->add(ctx, "{", &h) < 0)
		return;
	rpc->struct_add(h, "sssssddddsssssdsd",
			"tls_method", tls_params.method ? tls_params.method
											: TLS_DEFAULT_METHOD,
			"certificate", TLS_S(tls_params.certificate),
			"private_key", TLS_S(tls_params.private_key),
			"ca_list", TLS_S(tls_params.ca_list),
			"cipher_list", tls_params.cipher_list ? tls_params.cipher_list
												  : TLS_DEFAULT_CIPHER_LIST,
			"verify_certificate", tls_params.verify_certificate,
			"require_certificate", tls_params.require_certificate,
			"verify_depth", tls_params.verify_depth,
			"client_verify_certificate", tls_params.client_verify_certificate,
			"client_certificate", TLS_S(tls_params.client_certificate),
			"client_ca_list", TLS_S(tls_params.client_ca_list),
			"client_server_name", TLS_S(tls_params.client_server_name),
			"xavp_cfg", TLS_S(tls_params.xavp_cfg),
			"config", TLS_S(tls_params.config),
			"auto_reload", tls_params.auto_reload,
			"cipher_suites", TLS_S(tls_params.cipher_suites),
			"connection_timeout", tls_params.connection_timeout);
	rpc->struct_add(h, "dddd",
			"handshake_timeout", tls_params.handshake_timeout,
			"tls_log", tls_params.log,
			"verify_wildcard", tls_params.verify_wildcard,
			"tls_force_run", tls_params.force_run);
	rpc->struct_add(h, "dddddddsss",
			"send_timeout", tls_params.send_timeout,
			"tls_disable_compression", tls_params.disable_compression,
			"low_mem_threshold1", tls_params.low_mem_threshold1,
			"low_mem_threshold2", tls_params.low_mem_threshold2,
			"session_resumption", tls_params.session_resumption,
			"session_cache_size", tls_params.session_cache_size,
			"ticket_key_lifetime", tls_params.ticket_key_lifetime,
			"client_private_key", TLS_S(tls_params.client_private_key),
			"ca_path", TLS_S(tls_params.ca_path),
			"crl", TLS_S(tls_params.crl));
}

/* Subject, SANs and expiry of a domain's own certificate. */
static void tls_rpc_cert(void *h, rpc_t *rpc, SSL_CTX *ctx)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	char subject[256] = "", sans[512] = "", expires[64] = "";
	int days = 0, secs = 0;
	BIO *b;

	if (cert == NULL) {
		rpc->struct_add(h, "s", "subject", "(no certificate)");
		return;
	}
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	tls_verify_identities(cert, sans, sizeof(sans));
	b = BIO_new(BIO_s_mem());
	if (b && ASN1_TIME_print(b, X509_get0_notAfter(cert)) > 0) {
		int n = BIO_read(b, expires, sizeof(expires) - 1);
		expires[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert));
	rpc->struct_add(h, "sssd", "subject", subject, "names", sans,
			"not_after", expires, "days_left", days);
}

static const char *tls_rpc_domains_doc[] = {
	"List the TLS domains in use: role, address or names, certificate"
	" subject and names, expiry, where they are defined.", 0};

static void tls_rpc_domains(rpc_t *rpc, void *ctx)
{
	struct tls_domain_set *set = tls_set_acquire();
	struct tls_domain *lists[2], *d;
	char label[128], names[1024];
	size_t used;
	void *h;
	int l, i;

	if (set == NULL) {
		rpc->fault(ctx, 500, "TLS is not configured");
		return;
	}
	lists[0] = set->servers;
	lists[1] = set->clients;
	for (l = 0; l < 2; l++) {
		for (d = lists[l]; d; d = d->next) {
			if (rpc->add(ctx, "{", &h) < 0)
				goto end;
			used = 0;
			names[0] = '\0';
			for (i = 0; i < d->names_no && used < sizeof(names) - 1; i++)
				used += (size_t)snprintf(names + used, sizeof(names) - used,
						"%s%s", i ? " " : "", d->names[i]);
			rpc->struct_add(h, "sssssssd", "domain",
					tls_domain_label(d, label, sizeof(label)),
					"server_name", names,
					"sni_default", d->sni_default ? "yes" : "no",
					"source", TLS_S(d->source),
					"tls_method", tls_method_name(d->min_version,
							d->max_version),
					"verify", d->verify ? "yes" : "no",
					"config", TLS_S(set->config),
					"generation", (int)set->generation);
			tls_rpc_cert(h, rpc, d->ctx);
		}
	}
end:
	tls_domain_set_put(set);
}

/* RPC faults are short (the binrpc transport drops long ones): absolute
 * paths are cut to their file names; the log line has them whole. */
static void tls_rpc_short(const char *in, char *out, size_t size)
{
	size_t o = 0;
	const char *p = in, *slash;

	while (*p && o + 1 < size) {
		if (*p == '/' && (p == in || p[-1] == ' ' || p[-1] == '\'')) {
			slash = p;
			while (*p && *p != ' ' && *p != '\'' && *p != ':') {
				if (*p == '/')
					slash = p;
				p++;
			}
			p = slash + 1;
			continue;
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
}

static const char *tls_rpc_reload_doc[] = {
	"Re-read the TLS config file and the certificate, key and CA files it"
	" names; a bad file is refused and the running configuration stays.", 0};

static void tls_rpc_reload(rpc_t *rpc, void *ctx)
{
	char err[1024], msg[240];
	unsigned int gen;

	if (tls_reload(&gen, err, sizeof(err)) < 0) {
		if (strlen(err) < sizeof(msg))
			memcpy(msg, err, strlen(err) + 1);
		else
			tls_rpc_short(err, msg, sizeof(msg));
		rpc->fault(ctx, 500, "%s", msg);
		return;
	}
	rpc->rpl_printf(ctx, "ok: generation %u", gen);
}

static const char *tls_rpc_kill_doc[] = {
	"Close one TLS connection (id from tls.list): close_notify, then the"
	" TCP connection.", 0};

static void tls_rpc_kill(rpc_t *rpc, void *ctx)
{
	int id;

	if (rpc->scan(ctx, "d", &id) < 1) {
		rpc->fault(ctx, 400, "connection id expected");
		return;
	}
	if (tls_conn_kill(id) < 0) {
		rpc->fault(ctx, 404, "no such TLS connection: %d", id);
		return;
	}
	rpc->rpl_printf(ctx, "ok");
}

rpc_export_t tls_rpc_exports[] = {
	{"tls.list", tls_rpc_list, tls_rpc_list_doc, RET_ARRAY},
	{"tls.info", tls_rpc_info, tls_rpc_info_doc, 0},
	{"tls.options", tls_rpc_options, tls_rpc_options_doc, 0},
	{"tls.domains", tls_rpc_domains, tls_rpc_domains_doc, RET_ARRAY},
	{"tls.reload", tls_rpc_reload, tls_rpc_reload_doc, 0},
	{"tls.kill", tls_rpc_kill, tls_rpc_kill_doc, 0},
	{0, 0, 0, 0}
};
