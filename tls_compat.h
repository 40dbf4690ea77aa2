/*
 * tls_compat.h: every OpenSSL version difference the module cares about.
 *
 * The module is written against OpenSSL 3.0 (Debian 12). Anything older than
 * 1.1.1 lacks TLS 1.3 and the allocation hooks this module relies on, so it
 * is refused at compile time rather than half-supported.
 */
#ifndef TLS_COMPAT_H
#define TLS_COMPAT_H

#include <openssl/opensslv.h>
#include <openssl/ssl.h>

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "OpenSSL 1.1.1 or newer is required (TLS 1.3, CRYPTO_set_mem_functions)"
#endif

#if OPENSSL_VERSION_MAJOR >= 3
#define TLS_OSSL_MAJOR(v) ((unsigned)(((v) >> 28) & 0xf))
#define TLS_OSSL_MINOR(v) ((unsigned)(((v) >> 20) & 0xff))
#else
/* 1.1.x: 0xMNNFFPPS, major 1, minor NN */
#define TLS_OSSL_MAJOR(v) ((unsigned)(((v) >> 28) & 0xf))
#define TLS_OSSL_MINOR(v) ((unsigned)(((v) >> 20) & 0xff))
#endif

/* SSL_OP_NO_RENEGOTIATION exists since 1.1.0h; keep a no-op fallback. */
#ifndef SSL_OP_NO_RENEGOTIATION
#define SSL_OP_NO_RENEGOTIATION 0
#endif

/* OpenSSL 3 reports a peer that closes without close_notify as an
 * SSL_R_UNEXPECTED_EOF_WHILE_READING error; 1.1.1 as SSL_ERROR_SYSCALL with
 * errno 0. SSL_OP_IGNORE_UNEXPECTED_EOF would hide truncation attacks, so it
 * is not used; the classifier handles both forms. */
#ifndef SSL_R_UNEXPECTED_EOF_WHILE_READING
#define SSL_R_UNEXPECTED_EOF_WHILE_READING 294
#endif

/* ERR_get_error_all() is 3.0's name for the 1.1.1 call without a function
 * name. */
#if OPENSSL_VERSION_NUMBER < 0x30000000L
#define ERR_get_error_all(file, line, func, data, flags) \
	ERR_get_error_line_data(file, line, data, flags)
#endif

#endif
