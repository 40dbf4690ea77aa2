/*
 * tls_session.h: session resumption shared by every process.
 */
#ifndef TLS_SESSION_H
#define TLS_SESSION_H

#include <openssl/ssl.h>

/* Allocates the ticket keys in shared memory and makes the first one;
 * before fork. lifetime: seconds a key encrypts new tickets (it is then
 * kept one more lifetime to decrypt). 0 or -1. */
int tls_session_init(unsigned int lifetime);
void tls_session_destroy(void);
/* At shutdown, once every child is gone: releases the ticket keys' lock a
 * child may have held when it was ended (see mod_destroy). */
void tls_session_unlock_dead(void);

/* Sets resumption on a server context: tickets sealed with the shared
 * keys (TLS 1.2 and 1.3) and OpenSSL's session cache, which lives in the
 * shared context and so serves TLS 1.2 session IDs whichever process
 * resumes (cache_size sessions, 0: no cache). */
void tls_session_setup(SSL_CTX *ctx, int cache_size);

#endif
