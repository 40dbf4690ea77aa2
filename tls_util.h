/*
 * tls_util.h: error reporting and result classification, shared by every
 * path that calls into libssl.
 */
#ifndef TLS_UTIL_H
#define TLS_UTIL_H

#include <stddef.h>
#include <openssl/ssl.h>

struct tcp_connection;

/* What an SSL_* call on a connection came to, from SSL_get_error(). Every
 * path (handshake, read, write, shutdown) uses this one classification. */
enum tls_result {
	TLS_IO_OK = 0,     /* the call succeeded */
	TLS_IO_WANT_READ,  /* needs more bytes from the peer */
	TLS_IO_WANT_WRITE, /* needs room to write (our output buffer is full) */
	TLS_IO_CLOSED,     /* peer sent close_notify */
	TLS_IO_EOF,        /* transport closed without close_notify */
	TLS_IO_PEER_ERROR, /* protocol or certificate error caused by the peer */
	TLS_IO_LOCAL_ERROR /* our fault: memory, internal error */
};

enum tls_result tls_io_classify(const SSL *ssl, int ret);

/* Drains the OpenSSL error queue into buf as one line
 * ("reason; reason; ..."), always NUL-terminated; returns buf. */
char *tls_err_drain(char *buf, size_t size);

/* Clears errors left by earlier calls, so that a failure is reported with
 * its own cause only. Call before each SSL_* call whose errors are read. */
#define tls_err_clear() ERR_clear_error()

struct ip_addr;

/* "1.2.3.4:5061" or "[::1]:5061", into buf (NUL-terminated); returns buf. */
const char *tls_addr_str(const struct ip_addr *ip, unsigned short port,
		char *buf, size_t size);

/* The same for the peer of a connection. */
const char *tls_conn_peer(const struct tcp_connection *c, char *buf,
		size_t size);

/* snprintf that never overflows and always terminates; returns buf. */
char *tls_fmt(char *buf, size_t size, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

#endif
