/*
 * tls_util.c: one classification of SSL_get_error() results and one way of
 * turning OpenSSL's error queue into a log line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "core/tcp_conn.h"
#include "core/ip_addr.h"

#include "tls_compat.h"
#include "tls_util.h"

/* Whether the first error in the queue is one we caused (memory, internal
 * state) rather than the peer (bad record, bad certificate, alert). */
static int tls_err_is_local(void)
{
	unsigned long e = ERR_peek_error();
	int reason;

	if (e == 0)
		return 0;
	reason = ERR_GET_REASON(e);
	return reason == ERR_R_MALLOC_FAILURE || reason == ERR_R_INTERNAL_ERROR
			|| reason == ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED;
}

enum tls_result tls_io_classify(const SSL *ssl, int ret)
{
	unsigned long e;

	switch (SSL_get_error(ssl, ret)) {
		case SSL_ERROR_NONE:
			return TLS_IO_OK;
		case SSL_ERROR_WANT_READ:
			return TLS_IO_WANT_READ;
		case SSL_ERROR_WANT_WRITE:
			return TLS_IO_WANT_WRITE;
		case SSL_ERROR_ZERO_RETURN:
			return TLS_IO_CLOSED;
		case SSL_ERROR_SYSCALL:
			/* 1.1.1: EOF without close_notify shows as SYSCALL with an empty
			 * queue; a real socket error has been logged by the core. */
			return ERR_peek_error() == 0 ? TLS_IO_EOF : TLS_IO_PEER_ERROR;
		case SSL_ERROR_SSL:
			e = ERR_peek_error();
			if (ERR_GET_LIB(e) == ERR_LIB_SSL
					&& ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
				return TLS_IO_EOF;
			return tls_err_is_local() ? TLS_IO_LOCAL_ERROR : TLS_IO_PEER_ERROR;
		default:
			return TLS_IO_LOCAL_ERROR;
	}
}

char *tls_err_drain(char *buf, size_t size)
{
	unsigned long e;
	const char *data;
	int flags;
	size_t used = 0;
	char one[256];

	if (size == 0) {
		ERR_clear_error();
		return buf;
	}
	buf[0] = '\0';
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (used < size - 1) {
			int n = snprintf(buf + used, size - used, "%s%s%s%s",
					used ? "; " : "", one,
					(flags & ERR_TXT_STRING) && data && *data ? ": " : "",
					(flags & ERR_TXT_STRING) && data ? data : "");
			if (n > 0)
				used += (size_t)n < size - used ? (size_t)n : size - used - 1;
		}
	}
	return buf;
}

const char *tls_addr_str(const struct ip_addr *ip, unsigned short port,
		char *buf, size_t size)
{
	char a[IP_ADDR_MAX_STR_SIZE];
	int n;

	n = ip_addr2sbuf((struct ip_addr *)ip, a, sizeof(a) - 1);
	a[n > 0 ? n : 0] = '\0';
	snprintf(buf, size, ip->af == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

const char *tls_conn_peer(const struct tcp_connection *c, char *buf,
		size_t size)
{
	return tls_addr_str(&c->rcv.src_ip, c->rcv.src_port, buf, size);
}

char *tls_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return buf;
}
