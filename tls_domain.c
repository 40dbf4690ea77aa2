/*
 * tls_domain.c: compiling a domain's settings into an SSL_CTX.
 *
 * Everything is checked here, at build time, so that a bad setting stops
 * start-up (or is refused by a reload) with one line naming it, instead of
 * failing handshakes later.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_compat.h"
#include "tls_config.h"
#include "tls_domain.h"
#include "tls_init.h"
#include "tls_session.h"
#include "tls_util.h"

/* Names that old configurations use. RFC 8996 forbids TLS 1.0 and 1.1, and
 * OpenSSL 3 no longer has SSLv2/SSLv3: asking for exactly one of those is
 * refused; asking for "that or newer" is served with TLS 1.2 or newer. */
static const struct {
	const char *name;
	int min, max;
	const char *warn; /* NULL: modern name */
	int refused;
} tls_methods[] = {
	{"TLSv1.2+", TLS1_2_VERSION, 0, NULL, 0},
	{"TLSv1.3+", TLS1_3_VERSION, 0, NULL, 0},
	{"TLSv1.2", TLS1_2_VERSION, TLS1_2_VERSION, NULL, 0},
	{"TLSv1.3", TLS1_3_VERSION, TLS1_3_VERSION, NULL, 0},
	{"SSLv23", TLS1_2_VERSION, 0,
			"SSLv23 now means TLSv1.2+ (SSL 2/3, TLS 1.0/1.1 are obsolete,"
			" RFC 8996)", 0},
	{"TLSv1+", TLS1_2_VERSION, 0,
			"TLSv1+ now means TLSv1.2+ (TLS 1.0/1.1 are forbidden by"
			" RFC 8996)", 0},
	{"TLSv1.1+", TLS1_2_VERSION, 0,
			"TLSv1.1+ now means TLSv1.2+ (TLS 1.1 is forbidden by RFC 8996)",
			0},
	{"TLSv1", 0, 0,
			"TLSv1 is forbidden by RFC 8996; use TLSv1.2+ (the default)", 1},
	{"TLSv1.0", 0, 0,
			"TLSv1.0 is forbidden by RFC 8996; use TLSv1.2+ (the default)",
			1},
	{"TLSv1.1", 0, 0,
			"TLSv1.1 is forbidden by RFC 8996; use TLSv1.2+ (the default)",
			1},
	{"SSLv3", 0, 0, "SSLv3 is insecure and gone from OpenSSL; use TLSv1.2+",
			1},
	{"SSLv2", 0, 0, "SSLv2 is insecure and gone from OpenSSL; use TLSv1.2+",
			1},
};

int tls_method_parse(const char *s, int *min_version, int *max_version,
		const char **warn)
{
	size_t i;

	*warn = NULL;
	if (s == NULL || *s == '\0')
		s = TLS_DEFAULT_METHOD;
	for (i = 0; i < sizeof(tls_methods) / sizeof(tls_methods[0]); i++) {
		if (strcasecmp(s, tls_methods[i].name) != 0)
			continue;
		*warn = tls_methods[i].warn;
		if (tls_methods[i].refused)
			return -1;
		*min_version = tls_methods[i].min;
		*max_version = tls_methods[i].max;
		return 0;
	}
	*warn = "unknown method (use TLSv1.2+, TLSv1.3+, TLSv1.2 or TLSv1.3)";
	return -1;
}

const char *tls_method_name(int min_version, int max_version)
{
	if (max_version == 0)
		return min_version >= TLS1_3_VERSION ? "TLSv1.3+" : "TLSv1.2+";
	return tls_version_name(min_version);
}

const char *tls_version_name(int version)
{
	switch (version) {
		case TLS1_2_VERSION:
			return "TLSv1.2";
		case TLS1_3_VERSION:
			return "TLSv1.3";
		case 0:
			return "newest";
		default:
			return "unknown";
	}
}

/* The prefix of an error about a setting: the line of key k1 (else of k2;
 * TLS_CFG_* indexes, -1: none) when the config file section sets it, else
 * cfg->where (the section's header, or nothing for module parameters).
 * Two buffers: good for two calls in one message. */
static const char *tls_where2(const struct tls_domain_cfg *cfg, int k1, int k2)
{
	static char buf[2][600];
	static unsigned int n;
	int line = 0;
	char *b;

	if (cfg->key_line != NULL) {
		if (k1 >= 0 && k1 < TLS_CFG_KEYS)
			line = cfg->key_line[k1];
		if (line <= 0 && k2 >= 0 && k2 < TLS_CFG_KEYS)
			line = cfg->key_line[k2];
	}
	if (line <= 0)
		return cfg->where;
	b = buf[n++ & 1];
	tls_fmt(b, sizeof(buf[0]), "%s:%d: %s ", cfg->file, line,
			cfg->section ? cfg->section : "");
	return b;
}

static const char *tls_where(const struct tls_domain_cfg *cfg, int key)
{
	return tls_where2(cfg, key, -1);
}

/* Fails with a readable reason when the file of setting k (a TLS_CFG_*
 * path key) cannot be opened for reading. */
static int tls_file_check(enum tls_cfg_key k, const char *path,
		const struct tls_domain_cfg *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	const char *what = tls_cfg_key_name(k);
	char c;
#define FILEW \
	tls_where2(cfg, k, k == TLS_CFG_PRIVATE_KEY ? TLS_CFG_CERTIFICATE : -1)

	if (f == NULL) {
		tls_fmt(err, errlen, "%s%s: cannot read '%s': %s", FILEW, what,
				path, strerror(errno));
		return -1;
	}
	/* fopen() succeeds on a directory; the read tells. */
	if (fread(&c, 1, 1, f) != 1 && ferror(f)) {
		tls_fmt(err, errlen, "%s%s: cannot read '%s': %s", FILEW, what,
				path, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
#undef FILEW
}

struct tls_pw {
	const char *password;
	int asked;
};

/* PEM password callback: never prompts (there is no terminal), only hands
 * over the configured password. */
static int tls_pw_cb(char *buf, int size, int rwflag, void *u)
{
	struct tls_pw *pw = u;
	size_t len;

	pw->asked = 1;
	if (pw->password == NULL)
		return -1;
	len = strlen(pw->password);
	if (len > (size_t)size)
		return -1;
	memcpy(buf, pw->password, len);
	return (int)len;
}

static int tls_load_key(SSL_CTX *ctx, const struct tls_domain_cfg *cfg,
		const char *cert, const char *key, char *err, size_t errlen)
{
	struct tls_pw pw = {cfg->private_key_password, 0};
	char why[512];
	EVP_PKEY *pkey;
	BIO *in;
	int ok;
	/* errors about the key: its own line, else the certificate's (a key in
	 * the certificate file) */
#define KEYW tls_where2(cfg, TLS_CFG_PRIVATE_KEY, TLS_CFG_CERTIFICATE)

	if (tls_file_check(TLS_CFG_PRIVATE_KEY, key, cfg, err, errlen) < 0)
		return -1;
	in = BIO_new_file(key, "r");
	if (in == NULL) {
		tls_fmt(err, errlen, "%sprivate_key: cannot open '%s' (%s)",
				KEYW, key, tls_err_drain(why, sizeof(why)));
		return -1;
	}
	tls_err_clear();
	pkey = PEM_read_bio_PrivateKey(in, NULL, tls_pw_cb, &pw);
	BIO_free(in);
	if (pkey == NULL) {
		tls_err_drain(why, sizeof(why));
		if (pw.asked && pw.password == NULL)
			tls_fmt(err, errlen, "%sprivate_key: '%s' is encrypted and"
					" private_key_password is not set", KEYW, key);
		else if (pw.asked)
			tls_fmt(err, errlen, "%sprivate_key_password: wrong password for"
					" '%s'", tls_where2(cfg, TLS_CFG_PRIVATE_KEY_PASSWORD,
							TLS_CFG_PRIVATE_KEY), key);
		else
			tls_fmt(err, errlen, "%sprivate_key: '%s' holds no usable private"
					" key (%s)", KEYW, key, why);
		return -1;
	}
	tls_err_clear();
	ok = SSL_CTX_use_PrivateKey(ctx, pkey) == 1
			&& SSL_CTX_check_private_key(ctx) == 1;
	EVP_PKEY_free(pkey);
	if (!ok) {
		tls_fmt(err, errlen, "%sprivate_key: '%s' does not match the"
				" certificate '%s' (%s)", KEYW, key, cert,
				tls_err_drain(why, sizeof(why)));
		return -1;
	}
	return 0;
#undef KEYW
}

static int tls_load_cert(SSL_CTX *ctx, const struct tls_domain_cfg *cfg,
		const char *cert, char *err, size_t errlen)
{
	char why[512];

	if (tls_file_check(TLS_CFG_CERTIFICATE, cert, cfg, err, errlen) < 0)
		return -1;
	tls_err_clear();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_fmt(err, errlen, "%scertificate: '%s' holds no usable"
				" certificate (%s)", tls_where(cfg, TLS_CFG_CERTIFICATE), cert,
				tls_err_drain(why, sizeof(why)));
		return -1;
	}
	return 0;
}

static int tls_load_ca(SSL_CTX *ctx, const struct tls_domain_cfg *cfg,
		char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *names;
	char why[512];

	if (tls_file_check(TLS_CFG_CA_LIST, cfg->ca_list, cfg, err, errlen) < 0)
		return -1;
	tls_err_clear();
	if (SSL_CTX_load_verify_locations(ctx, cfg->ca_list, NULL) != 1) {
		tls_fmt(err, errlen, "%sca_list: '%s' holds no CA certificate (%s)",
				tls_where(cfg, TLS_CFG_CA_LIST), cfg->ca_list,
				tls_err_drain(why, sizeof(why)));
		return -1;
	}
	if (cfg->role == TLS_ROLE_SERVER) {
		/* The CA names sent in CertificateRequest help a client with
		 * several certificates pick the right one. */
		names = SSL_load_client_CA_file(cfg->ca_list);
		if (names != NULL)
			SSL_CTX_set_client_CA_list(ctx, names);
		tls_err_clear();
	}
	return 0;
}

/* A suite list that leaves nothing for the versions allowed would only
 * show as failed handshakes later ("no ciphers available"): refuse it. */
static int tls_check_suites(SSL_CTX *ctx, const struct tls_domain *d,
		const struct tls_domain_cfg *cfg, char *err, size_t errlen)
{
	STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
	int i, n12 = 0, n13 = 0;

	for (i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
		if (strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(ciphers, i)),
					"TLSv1.3") == 0)
			n13++;
		else
			n12++;
	}
	if (d->min_version >= TLS1_3_VERSION && n13 == 0) {
		tls_fmt(err, errlen, "%scipher_suites: '%s' leaves no TLS 1.3 suite"
				" for tls_method '%s'",
				tls_where2(cfg, TLS_CFG_CIPHER_SUITES, TLS_CFG_METHOD),
				cfg->cipher_suites ? cfg->cipher_suites : "", cfg->method);
		return -1;
	}
	if (d->max_version == TLS1_2_VERSION && n12 == 0) {
		tls_fmt(err, errlen, "%scipher_list: '%s' leaves no TLS 1.2 cipher"
				" for tls_method '%s'",
				tls_where2(cfg, TLS_CFG_CIPHER_LIST, TLS_CFG_METHOD),
				cfg->cipher_list ? cfg->cipher_list : "", cfg->method);
		return -1;
	}
	if (n12 + n13 == 0) {
		tls_fmt(err, errlen, "%scipher_list/cipher_suites: no cipher left",
				tls_where2(cfg, TLS_CFG_CIPHER_LIST, TLS_CFG_CIPHER_SUITES));
		return -1;
	}
	return 0;
}

static int tls_load_ca_path(SSL_CTX *ctx, const struct tls_domain_cfg *cfg,
		char *err, size_t errlen)
{
	struct stat st;
	char why[512];

	if (stat(cfg->ca_path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tls_fmt(err, errlen, "%sca_path: '%s' is not a readable directory",
				tls_where(cfg, TLS_CFG_CA_PATH), cfg->ca_path);
		return -1;
	}
	tls_err_clear();
	if (SSL_CTX_load_verify_locations(ctx, NULL, cfg->ca_path) != 1) {
		tls_fmt(err, errlen, "%sca_path: '%s' cannot be used (%s)",
				tls_where(cfg, TLS_CFG_CA_PATH), cfg->ca_path,
				tls_err_drain(why, sizeof(why)));
		return -1;
	}
	return 0;
}

/* Certificate revocation lists: the peer's certificate (the leaf) is
 * checked against them; a revoked one fails verification. */
static int tls_load_crl(SSL_CTX *ctx, const struct tls_domain_cfg *cfg,
		char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP *lookup;
	char why[512];
	int n;

	if (tls_file_check(TLS_CFG_CRL, cfg->crl, cfg, err, errlen) < 0)
		return -1;
	tls_err_clear();
	lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
	n = lookup ? X509_load_crl_file(lookup, cfg->crl, X509_FILETYPE_PEM) : 0;
	if (n <= 0) {
		tls_fmt(err, errlen, "%scrl: '%s' holds no CRL (%s)",
				tls_where(cfg, TLS_CFG_CRL),
				cfg->crl, tls_err_drain(why, sizeof(why)));
		return -1;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return 0;
}

static int tls_set_protocol(SSL_CTX *ctx, struct tls_domain *d,
		const struct tls_domain_cfg *cfg, char *err, size_t errlen)
{
	const char *warn;
	char why[512];

	if (tls_method_parse(cfg->method, &d->min_version, &d->max_version,
				&warn) < 0) {
		tls_fmt(err, errlen, "%stls_method: '%s': %s",
				tls_where(cfg, TLS_CFG_METHOD),
				cfg->method, warn);
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, d->min_version)
			|| !SSL_CTX_set_max_proto_version(ctx, d->max_version)) {
		tls_fmt(err, errlen, "%stls_method: '%s' is not supported by this"
				" OpenSSL (%s)", tls_where(cfg, TLS_CFG_METHOD), cfg->method,
				tls_err_drain(why, sizeof(why)));
		return -1;
	}
	tls_err_clear();
	if (SSL_CTX_set_cipher_list(ctx, cfg->cipher_list ? cfg->cipher_list
					: TLS_DEFAULT_CIPHER_LIST) != 1) {
		tls_fmt(err, errlen, "%scipher_list: '%s' matches no cipher (%s)",
				tls_where(cfg, TLS_CFG_CIPHER_LIST),
				cfg->cipher_list ? cfg->cipher_list : "",
				tls_err_drain(why, sizeof(why)));
		return -1;
	}
	if (cfg->cipher_suites
			&& SSL_CTX_set_ciphersuites(ctx, cfg->cipher_suites) != 1) {
		tls_fmt(err, errlen, "%scipher_suites: '%s' matches no TLS 1.3 suite"
				" (%s)", tls_where(cfg, TLS_CFG_CIPHER_SUITES),
				cfg->cipher_suites,
				tls_err_drain(why, sizeof(why)));
		return -1;
	}
	return tls_check_suites(ctx, d, cfg, err, errlen);
}

int (*tls_domain_servername_cb)(SSL *ssl, int *alert, void *arg);
int (*tls_domain_client_hello_cb)(SSL *ssl, int *alert, void *arg);

/* Options every context gets, whatever the configuration says. */
static void tls_set_hardening(SSL_CTX *ctx, enum tls_role role,
		int resumption_cache_size)
{
	static const unsigned char sid_ctx[] = "kamailio-tls";

	/* No compression (CRIME, RFC 9325 3.3); no renegotiation at all: a
	 * client-initiated one is a DoS vector and SIP never needs one. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
			| SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Records are produced into a fixed per-process buffer and the core may
	 * retry a write from another position: partial and moving writes. Idle
	 * connections give their read/write buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
			| SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1);
	if (role == TLS_ROLE_SERVER) {
		/* Required by OpenSSL for resumption when clients are verified. */
		SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
		if (resumption_cache_size >= 0) {
			tls_session_setup(ctx, resumption_cache_size);
		} else {
			SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
			SSL_CTX_set_num_tickets(ctx, 0);
		}
		if (tls_domain_servername_cb)
			SSL_CTX_set_tlsext_servername_callback(ctx,
					tls_domain_servername_cb);
		if (tls_domain_client_hello_cb)
			SSL_CTX_set_client_hello_cb(ctx, tls_domain_client_hello_cb, NULL);
	}
}

/* The certificates sent after ours. A certificate file without them leaves
 * OpenSSL to find them in the CA store on every handshake: a whole
 * X509_verify_cert(), signatures included, per new connection (measured: a
 * seventh of a reader's CPU). Found once here instead, with the store
 * complete (ca_list, ca_path, crl loaded); the same certificates go on the
 * wire as before, the trust anchor included when the store has it. A chain
 * that does not verify is kept as far as it goes, as OpenSSL would do per
 * handshake. A file with intermediates is used as it is. 0 or -1. */
static int tls_build_chain(SSL_CTX *ctx)
{
	STACK_OF(X509) *chain = NULL;

	if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && sk_X509_num(chain) > 0)
		return 0;
	tls_err_clear();
	if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR
					| SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) <= 0)
		return -1;
	return 0;
}

static char *tls_strdup(const char *s)
{
	return s ? OPENSSL_strdup(s) : NULL;
}

struct tls_domain *tls_domain_build(const struct tls_domain_cfg *cfg,
		char *err, size_t errlen)
{
	struct tls_domain *d;
	char why[512];
	int mode;

	d = OPENSSL_zalloc(sizeof(*d));
	if (d == NULL) {
		tls_fmt(err, errlen, "%sout of memory", cfg->where);
		return NULL;
	}
	d->role = cfg->role;
	tls_err_clear();
	d->ctx = SSL_CTX_new(TLS_method());
	if (d->ctx == NULL) {
		tls_fmt(err, errlen, "%scannot create a TLS context (%s)", cfg->where,
				tls_err_drain(why, sizeof(why)));
		goto fail;
	}
	tls_set_hardening(d->ctx, cfg->role, cfg->session_cache);
	if (tls_set_protocol(d->ctx, d, cfg, err, errlen) < 0)
		goto fail;
	if (cfg->certificate) {
		const char *key = cfg->private_key ? cfg->private_key
				: cfg->certificate;
		if (tls_load_cert(d->ctx, cfg, cfg->certificate, err, errlen) < 0
				|| tls_load_key(d->ctx, cfg, cfg->certificate, key, err,
						errlen) < 0)
			goto fail;
		if (tls_init_rsa_blinding(d->ctx) < 0) {
			tls_fmt(err, errlen, "%sprivate_key: cannot prepare '%s' for use"
					" by several processes",
					tls_where2(cfg, TLS_CFG_PRIVATE_KEY, TLS_CFG_CERTIFICATE),
					key);
			goto fail;
		}
		d->certificate = tls_strdup(cfg->certificate);
		d->private_key = tls_strdup(key);
	}
	if (cfg->ca_path && tls_load_ca_path(d->ctx, cfg, err, errlen) < 0)
		goto fail;
	if (cfg->crl && tls_load_crl(d->ctx, cfg, err, errlen) < 0)
		goto fail;
	d->ca_path = tls_strdup(cfg->ca_path);
	d->crl = tls_strdup(cfg->crl);
	if (cfg->ca_list) {
		if (tls_load_ca(d->ctx, cfg, err, errlen) < 0)
			goto fail;
		d->ca_list = tls_strdup(cfg->ca_list);
	} else if (cfg->role == TLS_ROLE_CLIENT && cfg->verify_certificate
			&& cfg->ca_path == NULL) {
		/* A client that verifies and was given no CA list trusts what the
		 * system trusts (Debian: ca-certificates). */
		if (SSL_CTX_set_default_verify_paths(d->ctx) != 1) {
			tls_fmt(err, errlen, "%sca_list: not set and the system CA store"
					" cannot be loaded (%s)", cfg->where,
					tls_err_drain(why, sizeof(why)));
			goto fail;
		}
	}
	if (d->certificate && tls_build_chain(d->ctx) < 0) {
		tls_fmt(err, errlen, "%scertificate: cannot build the chain of '%s'"
				" (%s)", tls_where(cfg, TLS_CFG_CERTIFICATE), cfg->certificate,
				tls_err_drain(why, sizeof(why)));
		goto fail;
	}
	d->server_name = tls_strdup(cfg->server_name);
	d->verify_wildcard = cfg->verify_wildcard;
	d->verify = cfg->verify_certificate;
	d->require = cfg->verify_certificate && cfg->require_certificate;
	mode = SSL_VERIFY_NONE;
	if (d->verify) {
		mode = SSL_VERIFY_PEER;
		if (d->require)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	}
	SSL_CTX_set_verify(d->ctx, mode, NULL);
	SSL_CTX_set_verify_depth(d->ctx, cfg->verify_depth >= 0
					? cfg->verify_depth : TLS_DEFAULT_VERIFY_DEPTH);
	return d;

fail:
	tls_domain_free(d);
	return NULL;
}

void tls_domain_free(struct tls_domain *d)
{
	int i;

	if (d == NULL)
		return;
	for (i = 0; i < d->names_no; i++)
		OPENSSL_free(d->names[i]);
	OPENSSL_free(d->names);
	OPENSSL_free(d->source);
	SSL_CTX_free(d->ctx);
	OPENSSL_free(d->certificate);
	OPENSSL_free(d->private_key);
	OPENSSL_free(d->ca_list);
	OPENSSL_free(d->ca_path);
	OPENSSL_free(d->crl);
	OPENSSL_free(d->server_name);
	OPENSSL_free(d);
}

/* A section's settings over the module parameters': what the section sets
 * wins, the rest comes from the parameters of its role. */
static void tls_cfg_merge(struct tls_domain_cfg *out,
		const struct tls_cfg_domain *sec, const struct tls_domain_cfg *p,
		const char *where)
{
	*out = *p;
	out->where = where;
	out->file = sec->file;
	out->key_line = sec->key_line;
#define TLS_TAKE_STR(f) if (sec->f) out->f = sec->f
#define TLS_TAKE_INT(f) if (sec->f >= 0) out->f = sec->f
	TLS_TAKE_STR(method);
	TLS_TAKE_STR(private_key_password);
	TLS_TAKE_STR(ca_list);
	TLS_TAKE_STR(ca_path);
	TLS_TAKE_STR(crl);
	TLS_TAKE_STR(cipher_list);
	TLS_TAKE_STR(cipher_suites);
	TLS_TAKE_INT(verify_certificate);
	TLS_TAKE_INT(require_certificate);
	TLS_TAKE_INT(verify_depth);
#undef TLS_TAKE_STR
#undef TLS_TAKE_INT
	if (sec->certificate) {
		/* A section's own certificate never pairs with the parameters'
		 * key: the key is the section's, or in the certificate file. */
		out->certificate = sec->certificate;
		out->private_key = sec->private_key;
	} else if (sec->private_key) {
		out->private_key = sec->private_key;
	}
	if (sec->role == TLS_ROLE_CLIENT && sec->server_names_no > 0)
		out->server_name = sec->server_names[0];
}

static int tls_domain_set_names(struct tls_domain *d,
		const struct tls_cfg_domain *sec)
{
	int i;

	if (sec->server_names_no == 0)
		return 0;
	d->names = OPENSSL_zalloc(sizeof(char *) * (size_t)sec->server_names_no);
	if (d->names == NULL)
		return -1;
	for (i = 0; i < sec->server_names_no; i++) {
		d->names[i] = OPENSSL_strdup(sec->server_names[i]);
		if (d->names[i] == NULL)
			return -1;
		d->names_no = i + 1;
	}
	return 0;
}

static struct tls_domain *tls_domain_from_section(
		const struct tls_cfg_domain *sec, const struct tls_domain_cfg *p,
		char *err, size_t errlen)
{
	struct tls_domain_cfg cfg;
	struct tls_domain *d;
	char where[512], section[128];

	tls_fmt(where, sizeof(where), "%s:%d: %s ", sec->file, sec->line,
			tls_cfg_section_name(sec, section, sizeof(section)));
	tls_cfg_merge(&cfg, sec, p, where);
	cfg.section = section;
	if (sec->role == TLS_ROLE_SERVER && cfg.certificate == NULL) {
		tls_fmt(err, errlen, "%scertificate: not set (neither in the section"
				" nor as a module parameter)", where);
		return NULL;
	}
	d = tls_domain_build(&cfg, err, errlen);
	if (d == NULL)
		return NULL;
	d->kind = sec->kind == TLS_CFG_DEFAULT ? TLS_DOM_DEFAULT
			: sec->kind == TLS_CFG_ADDR ? TLS_DOM_ADDR : TLS_DOM_ANY;
	if (d->kind == TLS_DOM_ADDR) {
		d->af = sec->af;
		d->port = sec->port;
		if (inet_pton(sec->af, sec->addr, d->ip) != 1) {
			tls_fmt(err, errlen, "%sbad address '%s'", where, sec->addr);
			goto fail;
		}
	}
	d->sni_default = sec->sni_default;
	tls_fmt(section, sizeof(section), "%s:%d", sec->file, sec->line);
	d->source = OPENSSL_strdup(section);
	if (d->source == NULL || tls_domain_set_names(d, sec) < 0) {
		tls_fmt(err, errlen, "%sout of memory", where);
		goto fail;
	}
	return d;
fail:
	tls_domain_free(d);
	return NULL;
}

static long *tls_domain_sets_live;

void tls_domain_sets_counter(long *counter)
{
	tls_domain_sets_live = counter;
}

static void tls_domain_set_free(struct tls_domain_set *set)
{
	struct tls_domain *d;

	if (set->live)
		__atomic_sub_fetch(set->live, 1, __ATOMIC_RELAXED);
	while ((d = set->servers) != NULL) {
		set->servers = d->next;
		tls_domain_free(d);
	}
	while ((d = set->clients) != NULL) {
		set->clients = d->next;
		tls_domain_free(d);
	}
	OPENSSL_free(set->config);
	OPENSSL_free(set);
}

static void tls_domain_set_add(struct tls_domain_set *set,
		struct tls_domain *d)
{
	struct tls_domain **list = d->role == TLS_ROLE_SERVER ? &set->servers
			: &set->clients;

	while (*list)
		list = &(*list)->next;
	*list = d;
	if (d->kind == TLS_DOM_DEFAULT) {
		if (d->role == TLS_ROLE_SERVER)
			set->server_default = d;
		else
			set->client_default = d;
	}
}

struct tls_domain_set *tls_domain_set_build(const struct tls_cfg_domain *list,
		const char *config, const struct tls_domain_cfg *server_params,
		const struct tls_domain_cfg *client_params, char *err, size_t errlen)
{
	const struct tls_cfg_domain *sec;
	struct tls_domain_set *set;
	struct tls_domain *d;
	int role;

	set = OPENSSL_zalloc(sizeof(*set));
	if (set == NULL) {
		tls_fmt(err, errlen, "out of memory");
		return NULL;
	}
	set->refs = 1;
	set->loaded = (long)time(NULL);
	set->live = tls_domain_sets_live;
	if (set->live)
		__atomic_add_fetch(set->live, 1, __ATOMIC_RELAXED);
	if (config && (set->config = OPENSSL_strdup(config)) == NULL) {
		tls_fmt(err, errlen, "out of memory");
		goto fail;
	}
	for (sec = list; sec; sec = sec->next) {
		d = tls_domain_from_section(sec, sec->role == TLS_ROLE_SERVER
						? server_params : client_params, err, errlen);
		if (d == NULL)
			goto fail;
		tls_domain_set_add(set, d);
	}
	for (role = TLS_ROLE_SERVER; role <= TLS_ROLE_CLIENT; role++) {
		const struct tls_domain_cfg *p = role == TLS_ROLE_SERVER
				? server_params : client_params;
		if ((role == TLS_ROLE_SERVER ? set->server_default
							: set->client_default) != NULL)
			continue;
		d = tls_domain_build(p, err, errlen);
		if (d == NULL)
			goto fail;
		d->kind = TLS_DOM_DEFAULT;
		d->source = OPENSSL_strdup("modparam");
		tls_domain_set_add(set, d);
	}
	return set;
fail:
	tls_domain_set_free(set);
	return NULL;
}

void tls_domain_set_get(struct tls_domain_set *set)
{
	__atomic_add_fetch(&set->refs, 1, __ATOMIC_ACQ_REL);
}

void tls_domain_set_put(struct tls_domain_set *set)
{
	if (set && __atomic_sub_fetch(&set->refs, 1, __ATOMIC_ACQ_REL) == 0)
		tls_domain_set_free(set);
}

/* "*.example.com" covers "a.example.com", not "example.com" nor
 * "a.b.example.com" (one leftmost label). */
static int tls_wildcard_covers(const char *pattern, const char *name)
{
	const char *dot = strchr(name, '.');

	return pattern[0] == '*' && pattern[1] == '.' && dot && dot != name
			&& strcasecmp(dot + 1, pattern + 2) == 0;
}

struct tls_domain *tls_domain_by_name(const struct tls_domain_set *set,
		enum tls_role role, const char *name)
{
	struct tls_domain *d, *best = NULL;
	size_t best_len = 0;
	int i;

	if (name == NULL || *name == '\0')
		return NULL;
	for (d = role == TLS_ROLE_SERVER ? set->servers : set->clients; d;
			d = d->next) {
		for (i = 0; i < d->names_no; i++) {
			if (d->names[i][0] != '*') {
				if (strcasecmp(d->names[i], name) == 0)
					return d;
			} else if (tls_wildcard_covers(d->names[i], name)
					&& strlen(d->names[i]) > best_len) {
				best = d;
				best_len = strlen(d->names[i]);
			}
		}
	}
	return best;
}

struct tls_domain *tls_domain_by_addr(const struct tls_domain_set *set,
		enum tls_role role, int af, const void *ip, unsigned short port)
{
	struct tls_domain *d;
	size_t len = af == AF_INET6 ? 16 : 4;

	for (d = role == TLS_ROLE_SERVER ? set->servers : set->clients; d;
			d = d->next)
		if (d->kind == TLS_DOM_ADDR && d->af == af && d->port == port
				&& memcmp(d->ip, ip, len) == 0)
			return d;
	return NULL;
}

struct tls_domain *tls_domain_sni_default(const struct tls_domain_set *set)
{
	struct tls_domain *d;

	for (d = set->servers; d; d = d->next)
		if (d->sni_default)
			return d;
	return NULL;
}
