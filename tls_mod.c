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

#include <sys/stat.h>

#include "core/mem/shm_mem.h"
#include "core/timer_proc.h"

#include "tls_config.h"
#include "tls_domain.h"
#include "tls_init.h"
#include "tls_rpc.h"
#include "tls_session.h"
#include "tls_util.h"
#include "tls_locking.h"
#include "tls_mem.h"
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
	.session_resumption = 1,
	.session_cache_size = 1024,
	.ticket_key_lifetime = 3600,
	.verify_wildcard = 0,
};


static param_export_t tls_param_exports[] = {
	{"tls_method", PARAM_STRING, &tls_params.method},
	{"certificate", PARAM_STRING, &tls_params.certificate},
	{"private_key", PARAM_STRING, &tls_params.private_key},
	{"private_key_password", PARAM_STRING, &tls_params.private_key_password},
	{"ca_list", PARAM_STRING, &tls_params.ca_list},
	{"ca_path", PARAM_STRING, &tls_params.ca_path},
	{"crl", PARAM_STRING, &tls_params.crl},
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
	{"config", PARAM_STRING, &tls_params.config},
	{"auto_reload", PARAM_INT, &tls_params.auto_reload},
	{"session_resumption", PARAM_INT, &tls_params.session_resumption},
	{"session_cache_size", PARAM_INT, &tls_params.session_cache_size},
	{"ticket_key_lifetime", PARAM_INT, &tls_params.ticket_key_lifetime},
	{0, 0, 0}
};

/* A TLS listening socket is a TCP one the core marks as TLS. */
static void tls_h_destroy(void);

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
	.destroy = tls_h_destroy,
};

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

#pragma GCC visibility push(default)
struct module_exports exports = {
	"tls",
	DEFAULT_DLFLAGS,
	tls_select_cmds,   /* cmds */
	tls_param_exports, /* params */
	tls_rpc_exports,   /* RPC methods */
	tls_select_pvs,    /* pseudo-variables */
	0,                 /* response function */
	mod_init,
	child_init,        /* per-child init */
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

/* Module-parameter settings of a role, with paths made absolute; the
 * strings are owned by *paths (freed with tls_param_paths_free). Outbound
 * connections have their own certificate, CA list and verify switch
 * (client_*): a server that does not ask its clients for certificates still
 * checks who it connects to. */
struct tls_param_paths {
	char *cert, *key, *ca, *ca_path, *crl;
};

static void tls_params_cfg(enum tls_role role, struct tls_domain_cfg *cfg,
		struct tls_param_paths *paths)
{
	int server = role == TLS_ROLE_SERVER;

	paths->cert = tls_path(server ? tls_params.certificate
								  : tls_params.client_certificate);
	paths->key = tls_path(server ? tls_params.private_key
								 : tls_params.client_private_key);
	paths->ca = tls_path(server || tls_params.client_ca_list == NULL
					? tls_params.ca_list : tls_params.client_ca_list);
	paths->ca_path = tls_path(tls_params.ca_path);
	paths->crl = tls_path(tls_params.crl);
	if (paths->cert == NULL && server) {
		/* The documented default: cert.pem (certificate and key) beside
		 * the config file. */
		paths->cert = tls_path("cert.pem");
		if (paths->key == NULL)
			paths->key = tls_path("cert.pem");
	}
	memset(cfg, 0, sizeof(*cfg));
	cfg->role = role;
	cfg->method = tls_params.method;
	cfg->certificate = paths->cert;
	cfg->private_key = paths->key;
	cfg->private_key_password = server ? tls_params.private_key_password
									   : tls_params.client_private_key_password;
	cfg->ca_list = paths->ca;
	cfg->ca_path = paths->ca_path;
	cfg->crl = paths->crl;
	cfg->cipher_list = tls_params.cipher_list;
	cfg->cipher_suites = tls_params.cipher_suites;
	cfg->verify_certificate = server ? tls_params.verify_certificate
									 : tls_params.client_verify_certificate;
	cfg->require_certificate = server ? tls_params.require_certificate : 0;
	cfg->verify_depth = tls_params.verify_depth;
	cfg->server_name = server ? NULL : tls_params.client_server_name;
	cfg->verify_wildcard = tls_params.verify_wildcard;
	cfg->where = server ? "" : "client role: ";
	cfg->session_cache = tls_params.session_resumption
			? (tls_params.session_cache_size > 0 ? tls_params.session_cache_size
												 : 0)
			: -1;
}

static void tls_param_paths_free(struct tls_param_paths *paths)
{
	free(paths->cert);
	free(paths->key);
	free(paths->ca);
	free(paths->ca_path);
	free(paths->crl);
}

/* Builds a complete domain set from the config file (if any) and the
 * module parameters. NULL with one line in err on failure. */
static struct tls_domain_set *tls_load_set(char *err, size_t errlen)
{
	struct tls_domain_cfg server, client;
	struct tls_param_paths sp, cp;
	struct tls_cfg_domain *list = NULL;
	struct tls_domain_set *set = NULL;
	char *config = tls_path(tls_params.config);

	tls_params_cfg(TLS_ROLE_SERVER, &server, &sp);
	tls_params_cfg(TLS_ROLE_CLIENT, &client, &cp);
	if (config) {
		list = tls_cfg_load(config, err, errlen);
		if (list == NULL)
			goto end;
	}
	set = tls_domain_set_build(list, config, &server, &client, err, errlen);
end:
	tls_cfg_free(list);
	free(config);
	tls_param_paths_free(&sp);
	tls_param_paths_free(&cp);
	return set;
}

/* One reload at a time, from any process (RPC, automatic reload timer). */
static int *tls_reloading;

int tls_reload(unsigned int *generation, char *err, size_t errlen)
{
	struct tls_domain_set *set;
	int idle = 0;

	if (tls_shared == NULL || tls_reloading == NULL) {
		tls_fmt(err, errlen, "TLS is not enabled");
		return -1;
	}
	if (!__atomic_compare_exchange_n(tls_reloading, &idle, 1, 0,
				__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		tls_fmt(err, errlen, "a reload is already running");
		return -1;
	}
	set = tls_load_set(err, errlen);
	if (set == NULL) {
		tls_shm_cache_flush();
		atomic_inc(&tls_shared->reloads_failed);
		__atomic_store_n(tls_reloading, 0, __ATOMIC_RELEASE);
		LM_WARN("reload refused, the running configuration stays: %s\n",
				err);
		return -1;
	}
	tls_set_publish(set);
	*generation = set->generation;
	atomic_inc(&tls_shared->reloads);
	/* This process freed a whole generation if nothing used it any more:
	 * its blocks go back to the shared pool rather than to this process's
	 * cache, where an RPC or timer process would hardly reuse them. */
	tls_shm_cache_flush();
	__atomic_store_n(tls_reloading, 0, __ATOMIC_RELEASE);
	LM_INFO("TLS configuration reloaded: generation %u\n", *generation);
	return 0;
}

/* Automatic reload: a fingerprint of the files the current set was built
 * from (config file, certificates, keys, CA lists: path, inode, size,
 * mtime); a change triggers one reload attempt, logged once. */
static unsigned long tls_files_fingerprint(void)
{
	struct tls_domain_set *set = tls_set_acquire();
	struct tls_domain *lists[2], *d;
	unsigned long h = 5381;
	struct stat st;
	const char *files[4];
	int l, i;

	if (set == NULL)
		return 0;
	lists[0] = set->servers;
	lists[1] = set->clients;
	files[0] = set->config;
	for (l = 0; l < 2; l++) {
		for (d = lists[l]; d; d = d->next) {
			files[1] = d->certificate;
			files[2] = d->private_key;
			files[3] = d->ca_list;
			for (i = 0; i < 4; i++) {
				if (files[i] == NULL)
					continue;
				if (stat(files[i], &st) == 0)
					h = (h * 33) ^ (unsigned long)st.st_ino
						^ (unsigned long)st.st_size
						^ ((unsigned long)st.st_mtim.tv_sec * 1000003UL)
						^ (unsigned long)st.st_mtim.tv_nsec;
				else
					h = (h * 33) ^ 0x5bd1e995UL;
			}
		}
	}
	tls_domain_set_put(set);
	return h;
}

static void tls_auto_reload_check(void)
{
	static unsigned long seen;
	unsigned long now = tls_files_fingerprint();
	unsigned int gen;
	char err[1024];

	if (seen == 0 || now == seen) {
		seen = now;
		return;
	}
	LM_INFO("TLS files changed on disk: reloading\n");
	if (tls_reload(&gen, err, sizeof(err)) == 0)
		seen = tls_files_fingerprint();
	else
		seen = now; /* retried only after the next change */
}

/* The module's timer process, every second: handshake timeouts, and every
 * auto_reload seconds the check of the files on disk. */
static void tls_timer(unsigned int ticks, void *param)
{
	static unsigned int elapsed;

	tls_server_timer();
	if (tls_params.auto_reload > 0
			&& ++elapsed >= (unsigned int)tls_params.auto_reload) {
		elapsed = 0;
		tls_auto_reload_check();
	}
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

/* low_mem_threshold1/2 in KB; -1: automatic (a tenth and a fortieth of
 * the shared memory: established connections go on well after new ones
 * are refused); 0: off. */
static void tls_set_low_mem(void)
{
	unsigned long t1, t2;

	t1 = tls_params.low_mem_threshold1 < 0 ? shm_mem_size / 10
			: (unsigned long)tls_params.low_mem_threshold1 * 1024;
	t2 = tls_params.low_mem_threshold2 < 0 ? shm_mem_size / 40
			: (unsigned long)tls_params.low_mem_threshold2 * 1024;
	tls_server_set_low_mem(t1, t2);
	LM_INFO("low memory thresholds: new connections below %lu KB free,"
			" established below %lu KB\n", t1 / 1024, t2 / 1024);
}

static int mod_init(void)
{
	struct tls_domain_set *set;
	char err[1024];

	if (tls_init_check_version(tls_params.force_run) < 0)
		return -1;
	if (tls_disable) {
		LM_WARN("tls module loaded but enable_tls is not set: TLS stays"
				" off\n");
		return 0;
	}
	if (tls_check_params() < 0)
		return -1;
	if (tls_locking_init() < 0 || tls_server_init() < 0
			|| tls_session_init((unsigned int)(tls_params.ticket_key_lifetime > 0
					? tls_params.ticket_key_lifetime : 3600)) < 0)
		return -1;
	tls_reloading = shm_malloc(sizeof(*tls_reloading));
	if (tls_reloading == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	*tls_reloading = 0;
	set = tls_load_set(err, sizeof(err));
	if (set == NULL) {
		LM_ERR("%s\n", err);
		return -1;
	}
	tls_set_publish(set);
	tls_set_low_mem();
	if (tls_server_event_init() < 0)
		return -1;
	if (register_basic_timers(1) < 0)
		return -1;
	tls_init_before_fork();
	LM_INFO("TLS ready: %s, certificate %s%s%s\n",
			tls_params.method ? tls_params.method : TLS_DEFAULT_METHOD,
			set->server_default->certificate,
			set->config ? ", config " : "", set->config ? set->config : "");
	return 0;
}

static int child_init(int rank)
{
	/* PROC_INIT: still the main process, after every module's init and
	 * right before the first fork. */
	if (rank == PROC_INIT && !tls_disable) {
		tls_init_before_fork();
		return 0;
	}
	if (rank == PROC_MAIN && !tls_disable
			&& fork_basic_timer(PROC_TIMER, "TLS timer", 1, tls_timer, NULL, 1)
					< 0) {
		LM_ERR("cannot start the TLS timer process\n");
		return -1;
	}
	return 0;
}

/* Module shutdown, in the main process after every child has exited. The
 * core frees the remaining connections (destroy_tcp) after the modules'
 * destroy functions, and their clean hook still needs the BIO method, the
 * connection list and the sets: those go in tls_h_destroy, which the core
 * calls after destroy_tcp. Before that, the module's locks are released: a
 * child ends on SIGTERM from its signal handler, wherever it was, maybe
 * holding one of them, and freeing the connections takes them all (measured:
 * shutdown hung on the slab pool's lock after an outbound send). The core
 * does the same with its shared memory lock. */
static void mod_destroy(void)
{
	tls_shm_pool_unlock_dead();
	tls_locking_unlock_dead();
	tls_session_unlock_dead();
}

static void tls_h_destroy(void)
{
	tls_locking_destroy();
	tls_server_destroy();
	tls_session_destroy();
	if (tls_reloading) {
		shm_free(tls_reloading);
		tls_reloading = NULL;
	}
}
