/*
 * unit_support.h: helpers shared by the unit tests: a scratch directory,
 * keys and certificates made with the OpenSSL API, and an in-process
 * client/server pair of SSL objects talking through memory BIOs.
 */
#ifndef UNIT_SUPPORT_H
#define UNIT_SUPPORT_H

#include <stddef.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ---- OpenSSL error queue ---------------------------------------------- */

/* Pushes one error (library, reason) with an optional data string. */
void ut_err_push(int lib, int reason, const char *data);

/* ---- scratch directory ------------------------------------------------ */

/* Creates a fresh directory under $TMPDIR (or /tmp); its path. */
const char *ut_tmpdir_create(void);
/* Removes it and everything in it. */
void ut_tmpdir_remove(void);
/* "<tmpdir>/<name>" in a static ring of buffers (8 live at a time). */
const char *ut_path(const char *name);
/* Writes len bytes (or strlen(data) if len < 0) to a file in tmpdir;
 * returns its path or NULL. */
const char *ut_write(const char *name, const char *data, long len);

/* ---- keys and certificates -------------------------------------------- */

EVP_PKEY *ut_key_ec(void);              /* P-256 */
EVP_PKEY *ut_key_rsa(int bits);
/* A certificate for key, with subject CN=cn, signed by issuer_key under
 * issuer (self-signed when issuer is NULL); is_ca sets basicConstraints. */
X509 *ut_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
		EVP_PKEY *issuer_key, int is_ca);

/* PEM writers into tmpdir; return the path or NULL. */
const char *ut_write_cert(const char *name, X509 *cert);
/* pass NULL: unencrypted. pkcs8: "ENCRYPTED PRIVATE KEY" (PKCS#8) form,
 * else the traditional form with Proc-Type/DEK-Info headers. */
const char *ut_write_key(const char *name, EVP_PKEY *key, const char *pass,
		int pkcs8);
/* Certificate then key in one file. */
const char *ut_write_cert_key(const char *name, X509 *cert, EVP_PKEY *key);

/* ---- an in-process TLS connection --------------------------------------- */

struct ut_pair {
	SSL *c; /* client */
	SSL *s; /* server */
};

/* Creates both ends, each with a memory BIO to read and one to write.
 * Reading an empty memory BIO is "retry later" (WANT_READ). 0 or -1. */
int ut_pair_new(struct ut_pair *p, SSL_CTX *cctx, SSL_CTX *sctx);
void ut_pair_free(struct ut_pair *p);
/* Moves what each side wrote to the other side; bytes moved. */
size_t ut_pair_pump(struct ut_pair *p);
/* Runs both handshakes to the end: 1 when both succeeded, 0 when one
 * failed or no progress is possible. *cret and *sret (may be NULL) get the last
 * return values of SSL_do_handshake on each side. */
int ut_pair_handshake(struct ut_pair *p, int *cret, int *sret);
/* Feeds raw bytes to one side's read BIO. */
void ut_feed(SSL *ssl, const void *data, size_t len);
/* Makes the next read of ssl's transport see end of file. */
void ut_set_eof(SSL *ssl);

/* A server SSL_CTX with an in-memory EC certificate and key, and a client
 * SSL_CTX that verifies nothing. Fresh each call. */
SSL_CTX *ut_server_ctx(void);
SSL_CTX *ut_client_ctx(void);

#endif
