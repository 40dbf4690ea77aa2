/*
 * tls_mod.c: the module as the core sees it: registration, parameters,
 * start-up and shutdown.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/globals.h"
#include "core/tls_hooks.h"
#include "core/tcp_init.h"

#include "tls_domain.h"
#include "tls_init.h"
#include "tls_locking.h"
#include "tls_mod.h"
#include "tls_select.h"
#include "tls_server.h"

#pragma GCC visibility push(default)
MODULE_VERSION
#pragma GCC visibility pop

struct tls_params tls_params = {
	.method = NULL, /* TLS_DEFAULT_METHOD */
	.verify_certificate = 0,
	.verify_depth = TLS_DEFAULT_VERIFY_DEPTH,
	.require_certificate = 0,
	.send_timeout = 120,
	.handshake_timeout = 30,
	.connection_timeout = 600,
	.disable_compression = 1,
	.log = L_INFO,
	.force_run = 0,
	.low_mem_threshold1 = -1,
	.low_mem_threshold2 = -1,
	.client_verify_certificate = 1,
	.verify_wildcard = 0,
};

struct tls_domain *tls_server_domain;
struct tls_domain *tls_client_domain;

static param_export_t tls_param_exports[] = {
	{"tls_method", PARAM_STRING, &tls_params.method},
	{"certificate", PARAM_STRING, &tls_params.certificate},
	{"private_key", PARAM_STRING, &tls_params.private_key},
	{"private_key_password", PARAM_STRING, &tls_params.private_key_password},
	{"ca_list", PARAM_STRING, &tls_params.ca_list},
	{"cipher_list", PARAM_STRING, &tls_params.cipher_list},
	{"cipher_suites", PARAM_STRING, &tls_params.cipher_suites},
	{"verify_certificate", PARAM_INT, &tls_params.verify_certificate},
	{"verify_depth", PARAM_INT, &tls_params.verify_depth},
	{"require_certificate", PARAM_INT, &tls_params.require_certificate},
	{"send_timeout", PARAM_INT, &tls_params.send_timeout},
	{"handshake_timeout", PARAM_INT, &tls_params.handshake_timeout},
	{"connection_timeout", PARAM_INT, &tls_params.connection_timeout},
	{"tls_disable_compression", PARAM_INT, &tls_params.disable_compression},
	{"tls_log", PARAM_INT, &tls_params.log},
	{"tls_force_run", PARAM_INT, &tls_params.force_run},
	{"low_mem_threshold1", PARAM_INT, &tls_params.low_mem_threshold1},
	{"low_mem_threshold2", PARAM_INT, &tls_params.low_mem_threshold2},
	{"client_certificate", PARAM_STRING, &tls_params.client_certificate},
	{"client_private_key", PARAM_STRING, &tls_params.client_private_key},
	{"client_private_key_password", PARAM_STRING,
			&tls_params.client_private_key_password},
	{"client_ca_list", PARAM_STRING, &tls_params.client_ca_list},
	{"client_verify_certificate", PARAM_INT,
			&tls_params.client_verify_certificate},
	{"client_server_name", PARAM_STRING, &tls_params.client_server_name},
	{"verify_wildcard", PARAM_INT, &tls_params.verify_wildcard},
	{"xavp_cfg", PARAM_STRING, &tls_params.xavp_cfg},
	{0, 0, 0}
};

/* A TLS listening socket is a TCP one the core marks as TLS. */
static int tls_h_init_si(struct socket_info *si)
{
	if (tcp_init(si) != 0) {
		LM_ERR("cannot listen on tls:%.*s:%d\n", si->address_str.len,
				si->address_str.s, si->port_no);
		return -1;
	}
	si->proto = PROTO_TLS;
	return 0;
}

static struct tls_hooks tls_hooks_table = {
	.read = tls_h_read,
	.encode = tls_h_encode,
	.on_tcpconn_init = tls_h_tcpconn_init,
	.tcpconn_clean = tls_h_tcpconn_clean,
	.tcpconn_close = tls_h_tcpconn_close,
	.init_si = tls_h_init_si,
};

static int mod_init(void);
static void mod_destroy(void);

#pragma GCC visibility push(default)
struct module_exports exports = {
	"tls",
	DEFAULT_DLFLAGS,
	tls_select_cmds,   /* cmds */
	tls_param_exports, /* params */
	0,                 /* RPC methods */
	tls_select_pvs,    /* pseudo-variables */
	0,                 /* response function */
	mod_init,
	0,                 /* per-child init */
	mod_destroy
};

/* Runs when the module is loaded, before any modparam and before any other
 * module loaded after this one: the only moment at which OpenSSL's allocator
 * can still be chosen. */
int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	if (tls_init_openssl() < 0 || tls_select_register() < 0)
		return -1;
	return register_tls_hooks(&tls_hooks_table);
}
#pragma GCC visibility pop

/* A path from a parameter: absolute as given, relative to the directory of
 * Kamailio's config file otherwise. Heap-allocated; NULL for NULL. */
static char *tls_path(const char *p)
{
	char dir[PATH_MAX], base[PATH_MAX], *res;
	size_t n;

	if (p == NULL || *p == '\0')
		return NULL;
	if (p[0] == '/' || cfg_file == NULL)
		return strdup(p);
	if (realpath(cfg_file, base) == NULL)
		snprintf(base, sizeof(base), "%s", cfg_file);
	snprintf(dir, sizeof(dir), "%s", dirname(base));
	n = strlen(dir) + 1 + strlen(p) + 1;
	res = malloc(n);
	if (res)
		snprintf(res, n, "%s/%s", dir, p);
	return res;
}

/* Settings of the default domain of a role from the module parameters.
 * Outbound connections have their own certificate, CA list and verify
 * switch (client_*): a server that does not ask its clients for
 * certificates still checks who it connects to. */
static struct tls_domain *tls_build_from_params(enum tls_role role)
{
	struct tls_domain_cfg cfg;
	struct tls_domain *d;
	char err[1024];
	int server = role == TLS_ROLE_SERVER;
	char *cert = tls_path(server ? tls_params.certificate
								 : tls_params.client_certificate);
	char *key = tls_path(server ? tls_params.private_key
								: tls_params.client_private_key);
	char *ca = tls_path(server || tls_params.client_ca_list == NULL
					? tls_params.ca_list : tls_params.client_ca_list);

	if (cert == NULL && server) {
		/* The documented default: cert.pem (certificate and key) beside
		 * the config file. */
		cert = tls_path("cert.pem");
		if (key == NULL)
			key = tls_path("cert.pem");
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.role = role;
	cfg.method = tls_params.method;
	cfg.certificate = cert;
	cfg.private_key = key;
	cfg.private_key_password = server ? tls_params.private_key_password
									  : tls_params.client_private_key_password;
	cfg.ca_list = ca;
	cfg.cipher_list = tls_params.cipher_list;
	cfg.cipher_suites = tls_params.cipher_suites;
	cfg.verify_certificate = server ? tls_params.verify_certificate
									: tls_params.client_verify_certificate;
	cfg.require_certificate = server ? tls_params.require_certificate : 0;
	cfg.verify_depth = tls_params.verify_depth;
	cfg.server_name = server ? NULL : tls_params.client_server_name;
	cfg.verify_wildcard = tls_params.verify_wildcard;
	cfg.where = server ? "" : "client role: ";
	d = tls_domain_build(&cfg, err, sizeof(err));
	if (d == NULL)
		LM_ERR("%s\n", err);
	free(cert);
	free(key);
	free(ca);
	return d;
}

/* Notices for settings that are accepted but mean less than in 2007. */
static int tls_check_params(void)
{
	const char *warn;
	int min, max;

	if (tls_method_parse(tls_params.method, &min, &max, &warn) < 0) {
		LM_ERR("tls_method: '%s': %s\n", tls_params.method, warn);
		return -1;
	}
	if (warn)
		LM_WARN("tls_method: %s\n", warn);
	if (!tls_params.disable_compression)
		LM_NOTICE("tls_disable_compression=0: TLS compression is not"
				" available (removed from TLS 1.3, forbidden by RFC 9325,"
				" CRIME); connections are not compressed\n");
	if (tls_params.require_certificate && !tls_params.verify_certificate)
		LM_WARN("require_certificate has no effect without"
				" verify_certificate\n");
	if (tls_params.verify_certificate && tls_params.ca_list == NULL)
		LM_WARN("verify_certificate is set but ca_list is not: every peer"
				" certificate will fail verification\n");
	if (tls_params.verify_depth < 0 || tls_params.handshake_timeout <= 0
			|| tls_params.send_timeout <= 0) {
		LM_ERR("verify_depth, handshake_timeout and send_timeout must be"
				" positive\n");
		return -1;
	}
	return 0;
}

static int mod_init(void)
{
	if (tls_init_check_version(tls_params.force_run) < 0)
		return -1;
	if (tls_disable) {
		LM_WARN("tls module loaded but enable_tls is not set: TLS stays"
				" off\n");
		return 0;
	}
	if (tls_check_params() < 0)
		return -1;
	if (tls_locking_init() < 0 || tls_server_init() < 0)
		return -1;
	tls_server_domain = tls_build_from_params(TLS_ROLE_SERVER);
	if (tls_server_domain == NULL)
		return -1;
	tls_client_domain = tls_build_from_params(TLS_ROLE_CLIENT);
	if (tls_client_domain == NULL)
		return -1;
	LM_INFO("TLS ready: %s, certificate %s\n",
			tls_params.method ? tls_params.method : TLS_DEFAULT_METHOD,
			tls_server_domain->certificate);
	return 0;
}

static void mod_destroy(void)
{
	tls_domain_free(tls_server_domain);
	tls_domain_free(tls_client_domain);
	tls_server_domain = tls_client_domain = NULL;
	tls_server_destroy();
	tls_locking_destroy();
}
