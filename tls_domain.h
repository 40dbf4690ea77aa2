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
	const char *cipher_list;
	const char *cipher_suites;
	int verify_certificate;
	int require_certificate;
	int verify_depth;
	const char *server_name; /* client: SNI and expected peer identity */
	int verify_wildcard;     /* client: accept a leftmost-label wildcard */
	const char *where;
};

/* A built domain. Immutable once built; its SSL_CTX is shared by all the
 * connections made from it (OpenSSL reference-counts it). */
struct tls_domain {
	enum tls_role role;
	SSL_CTX *ctx;
	int min_version; /* TLS1_2_VERSION ... */
	int max_version; /* 0: the newest the library has */
	int verify;
	int require;
	char *certificate; /* absolute paths, for logs and RPC */
	char *private_key;
	char *ca_list;       /* NULL for a client: the system's CA store */
	char *server_name;   /* client: default SNI / expected identity */
	int verify_wildcard;
};

/* Parses a tls_method value. 0 on success (with *warn set to a notice when a
 * legacy name was mapped), -1 for an unknown or refused name (with *warn
 * saying why). */
int tls_method_parse(const char *s, int *min_version, int *max_version,
		const char **warn);

/* Human name of a protocol version number ("TLSv1.3"). */
const char *tls_version_name(int version);

/* Builds a domain completely or not at all: on error returns NULL and puts
 * one line naming the setting, the file and the problem in err. */
struct tls_domain *tls_domain_build(const struct tls_domain_cfg *cfg,
		char *err, size_t errlen);

void tls_domain_free(struct tls_domain *d);

#endif
