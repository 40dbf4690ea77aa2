/*
 * tls_config.h: the module's own configuration file (the "config" module
 * parameter): TLS domains, one per section.
 *
 *   # comment             ; comment too
 *   [server:default]      the server domain used when nothing more specific
 *   [client:default]      matches (one of each at most)
 *   [server:10.0.0.1:5061]  a domain for one local (server) or remote
 *   [client:[::1]:5061]     (client) address; IPv6 in brackets
 *   [server:any]          name-based domains, selected by SNI through their
 *   [client:any]          server_name list; several allowed
 *
 *   key = value           whitespace around '=' is ignored; '#' and ';'
 *                         start a comment anywhere outside quotes;
 *   key = "value"         quoted values keep '#', ';' and spaces; inside
 *                         quotes \" is a quote and \\ a backslash
 *
 * Keys (aliases in brackets): method (tls_method), verify_certificate
 * (verify_cert), require_certificate (require_cert), private_key
 * (pkey_file), private_key_password, certificate (cert_file), verify_depth,
 * ca_list (calist_file), ca_path (ca_dir), crl (crl_file), cipher_list,
 * cipher_suites, server_name, sni_default. Booleans: yes/no, on/off,
 * true/false, 1/0 in any case. Integers: decimal.
 *
 * The parser depends on libc only: no Kamailio core, no OpenSSL calls. It
 * checks the syntax and what can be checked without OpenSSL; the values of
 * method, cipher_list, cipher_suites and the files themselves are checked
 * by tls_domain_build(), with the line recorded in key_line[].
 */
#ifndef TLS_CONFIG_H
#define TLS_CONFIG_H

#include <stddef.h>

#include "tls_domain.h"

/* Longest line accepted, without its line ending. */
#define TLS_CFG_MAX_LINE 4096
/* Largest file tls_cfg_load() reads. */
#define TLS_CFG_MAX_FILE (16 * 1024 * 1024)

enum tls_cfg_kind {
	TLS_CFG_DEFAULT = 1, /* [server:default], [client:default] */
	TLS_CFG_ADDR,        /* [server:IP:port], [client:[IPv6]:port] */
	TLS_CFG_ANY          /* [server:any], [client:any] */
};

/* The settings, as indexes of tls_cfg_domain.key_line[]. */
enum tls_cfg_key {
	TLS_CFG_METHOD = 0,
	TLS_CFG_VERIFY_CERTIFICATE,
	TLS_CFG_REQUIRE_CERTIFICATE,
	TLS_CFG_PRIVATE_KEY,
	TLS_CFG_PRIVATE_KEY_PASSWORD,
	TLS_CFG_CERTIFICATE,
	TLS_CFG_VERIFY_DEPTH,
	TLS_CFG_CA_LIST,
	TLS_CFG_CA_PATH,
	TLS_CFG_CRL,
	TLS_CFG_CIPHER_LIST,
	TLS_CFG_CIPHER_SUITES,
	TLS_CFG_SERVER_NAME,
	TLS_CFG_SNI_DEFAULT,
	TLS_CFG_KEYS
};

/* One section. Strings are NUL-terminated and malloc'ed; the list owns
 * them (tls_cfg_free()). */
struct tls_cfg_domain {
	enum tls_role role;     /* TLS_ROLE_SERVER / TLS_ROLE_CLIENT */
	enum tls_cfg_kind kind;
	/* TLS_CFG_ADDR only: canonical text of the address (no brackets,
	 * inet_ntop() form), AF_INET or AF_INET6, port (host order). */
	char addr[64];
	int af;
	unsigned short port;
	/* Lower-cased, in file order; "*.example.com" for a wildcard. */
	char **server_names;
	int server_names_no;
	int sni_default;        /* 1: serves the clients that send no SNI */
	/* Settings: NULL (strings) or -1 (numbers) when the key is absent, so
	 * that the caller fills them from the module parameters. The five
	 * paths are absolute (relative ones are taken from the config file's
	 * directory). Booleans are 0 or 1. */
	char *method;
	char *certificate;
	char *private_key;
	char *private_key_password;
	char *ca_list;
	char *ca_path;
	char *crl;
	char *cipher_list;
	char *cipher_suites;
	int verify_certificate;
	int require_certificate;
	int verify_depth;
	/* Where things are, for messages: the file (as named to the parser),
	 * the line of the section header, the line of each key (0: absent). */
	char *file;
	int line;
	int key_line[TLS_CFG_KEYS];
	struct tls_cfg_domain *next;
};

/* Parses len bytes of text (NUL bytes are an error, not an end) read from
 * the file `name`. `name` is used in messages and, through its directory,
 * to make relative paths absolute (a relative `name` is taken from the
 * current directory). Returns the sections in file order, or NULL with one
 * line "name:line: problem" in err (an input without any section is an
 * error too). */
struct tls_cfg_domain *tls_cfg_parse(const char *name, const char *text,
		size_t len, char *err, size_t errlen);

/* Reads the file at path and parses it. Errors as tls_cfg_parse(); a file
 * that cannot be read gives "path: cannot read: reason". */
struct tls_cfg_domain *tls_cfg_load(const char *path, char *err,
		size_t errlen);

void tls_cfg_free(struct tls_cfg_domain *list);

/* Canonical key name ("verify_certificate") of a setting, for messages. */
const char *tls_cfg_key_name(enum tls_cfg_key key);

/* The section's header in canonical form ("[server:[::1]:5061]"), into
 * buf (always NUL-terminated); returns buf. */
const char *tls_cfg_section_name(const struct tls_cfg_domain *d, char *buf,
		size_t size);

#endif
