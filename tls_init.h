/*
 * tls_init.h: OpenSSL start-up, memory routing across fork, sanity checks.
 */
#ifndef TLS_INIT_H
#define TLS_INIT_H

#include <openssl/ssl.h>

/* Called from mod_register(), before anything in the process has called
 * OpenSSL: installs the allocator and the fork hook. 0 or -1. */
int tls_init_openssl(void);

/* Compares the OpenSSL the module was built with and the one loaded now;
 * refuses a different major or minor unless force is set. 0 or -1. */
int tls_init_check_version(int force);

/* Frees the calling thread's OpenSSL state; called in the main process as
 * the last thing before the core forks its children (see tls_init.c). */
void tls_init_before_fork(void);

/* Makes the RSA blinding of the context's key shared-and-locked in every
 * process (see tls_init.c). 0 or -1. */
int tls_init_rsa_blinding(SSL_CTX *ctx);

#endif
