/*
 * tls_domain.h: a TLS domain is one role (server or client) with its own
 * certificate, key, CA list and protocol settings, compiled into an SSL_CTX.
 */
#ifndef TLS_DOMAIN_H
#define TLS_DOMAIN_H

#include <stddef.h>
#include <openssl/ssl.h>

enum tls_role { TLS_ROLE_SERVER = 1, TLS_ROLE_CLIENT = 2 };

/* RFC 9325 section 4.2: forward-secret AEAD suites only for TLS 1.2. TLS 1.3
 * suites are all AEAD and forward-secret; OpenSSL's default list is kept. */
#define TLS_DEFAULT_CIPHER_LIST \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_METHOD "TLSv1.2+"
#define TLS_DEFAULT_VERIFY_DEPTH 9

/* Settings of a domain as the operator wrote them. Strings may be NULL
 * (unset). `where` prefixes every error ("" for module parameters,
 * "tls.cfg:12: " for the config file). */
struct tls_domain_cfg {
	enum tls_role role;
	const char *method;
	const char *certificate;
	const char *private_key;
	const char *private_key_password;
	const char *ca_list;
	const char *ca_path;     /* directory of hashed CA files (c_rehash) */
	const char *crl;         /* PEM CRLs: revoked peers are refused */
	const char *cipher_list;
	const char *cipher_suites;
	int verify_certificate;
	int require_certificate;
	int verify_depth;
	const char *server_name; /* client: SNI and expected peer identity */
	int verify_wildcard;     /* client: accept a leftmost-label wildcard */
	int session_cache;       /* server: sessions cached; -1: no resumption */
	const char *where;
	/* Config file sections only (NULL otherwise): the file, the section's
	 * name and the line of each key the section sets (indexed by enum
	 * tls_cfg_key, 0: not set there), so that an error about a key names
	 * that key's line. */
	const char *file;
	const char *section;
	const int *key_line;
};

enum tls_domain_kind {
	TLS_DOM_DEFAULT = 1, /* [server:default], [client:default], modparams */
	TLS_DOM_ADDR,        /* [server:IP:port], [client:IP:port] */
	TLS_DOM_ANY          /* [server:any], [client:any]: by server_name */
};

/* A built domain. Immutable once built; its SSL_CTX is shared by all the
 * connections made from it (OpenSSL reference-counts it). Lives in shared
 * memory; owned by its set (struct tls_domain_set). */
struct tls_domain {
	enum tls_role role;
	enum tls_domain_kind kind;
	int af;                   /* TLS_DOM_ADDR: AF_INET/AF_INET6 */
	unsigned char ip[16];
	unsigned short port;
	char **names;             /* server_name list (lower case, "*.x.y") */
	int names_no;
	int sni_default;          /* serves server-side clients without SNI */
	char *source;             /* "tls.cfg:12" or "modparam" */
	struct tls_domain *next;
	SSL_CTX *ctx;
	int min_version; /* TLS1_2_VERSION ... */
	int max_version; /* 0: the newest the library has */
	int verify;
	int require;
	char *certificate; /* absolute paths, for logs and RPC */
	char *private_key;
	char *ca_list;       /* NULL for a client: the system's CA store */
	char *ca_path;
	char *crl;
	char *server_name;   /* client: default SNI / expected identity */
	int verify_wildcard;
};

/* Parses a tls_method value. 0 on success (with *warn set to a notice when a
 * legacy name was mapped), -1 for an unknown or refused name (with *warn
 * saying why). */
int tls_method_parse(const char *s, int *min_version, int *max_version,
		const char **warn);

/* The tls_method value that gives these bounds ("TLSv1.2+"). */
const char *tls_method_name(int min_version, int max_version);

/* Human name of a protocol version number ("TLSv1.3"). */
const char *tls_version_name(int version);

/* Set on every server context built: the SNI (servername) callback. */
extern int (*tls_domain_servername_cb)(SSL *ssl, int *alert, void *arg);
/* Set by tls_server.c: the ClientHello callback of every server context. */
extern int (*tls_domain_client_hello_cb)(SSL *ssl, int *alert, void *arg);

/* Builds a domain completely or not at all: on error returns NULL and puts
 * one line naming the setting, the file and the problem in err. */
struct tls_domain *tls_domain_build(const struct tls_domain_cfg *cfg,
		char *err, size_t errlen);

void tls_domain_free(struct tls_domain *d);

/*
 * A generation of domains: everything one load of the configuration built.
 * Built completely (tls_domain_set_build) before anyone sees it, then
 * published; immutable afterwards. Shared memory. Each connection holds a
 * reference to the set it started with, the module one to the current set;
 * the last reference frees it (tls_domain_set_put), in whichever process.
 */
struct tls_domain_set {
	int refs;                 /* atomic, see tls_domain_set_get/put */
	unsigned int generation;
	struct tls_domain *servers; /* every server domain */
	struct tls_domain *clients; /* every client domain */
	struct tls_domain *server_default;
	struct tls_domain *client_default;
	char *config;             /* the config file, NULL: modparams only */
	long loaded;              /* time(NULL) when built */
	long *live;               /* the live-sets counter it counts in */
};

/* Where to count the sets alive (built and not yet freed: the current one
 * and those older generations connections still hold); shared memory,
 * atomic; set before fork. NULL: not counted. */
void tls_domain_sets_counter(long *counter);

struct tls_cfg_domain;

/* Builds a set from the sections of a config file (may be NULL) and the
 * settings of the module parameters for each role (which also fill the
 * keys a section leaves out). A role without a default section gets one
 * from the parameters. NULL on error, with one line in err. */
struct tls_domain_set *tls_domain_set_build(const struct tls_cfg_domain *list,
		const char *config, const struct tls_domain_cfg *server_params,
		const struct tls_domain_cfg *client_params, char *err, size_t errlen);

void tls_domain_set_get(struct tls_domain_set *set);
void tls_domain_set_put(struct tls_domain_set *set);

/* The domain of a role whose server_name list matches name: an exact name
 * first, else the wildcard with the longest suffix; NULL if none. */
struct tls_domain *tls_domain_by_name(const struct tls_domain_set *set,
		enum tls_role role, const char *name);

/* The domain of a role for an address (family, 4 or 16 bytes, port);
 * NULL if none. */
struct tls_domain *tls_domain_by_addr(const struct tls_domain_set *set,
		enum tls_role role, int af, const void *ip, unsigned short port);

/* The server domain for clients that send no SNI, NULL if none is marked. */
struct tls_domain *tls_domain_sni_default(const struct tls_domain_set *set);

#endif
