/*
 * check_tls_util.c: unit tests of tls_util.c (result classification, error
 * queue draining, peer formatting, bounded formatting).
 *
 * tls_io_classify() is exercised on real SSL objects: a client and a server
 * in this process, talking through memory BIOs (unit_support.c).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/ip_addr.h"
#include "core/tcp_conn.h"

#include "tls_util.h"

#include "core_stubs.h"
#include "unit_support.h"

static const char *tls_result_name(enum tls_result r)
{
	static const char *names[] = {"OK", "WANT_READ", "WANT_WRITE", "CLOSED",
			"EOF", "PEER_ERROR", "LOCAL_ERROR"};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

#define ck_assert_result(got, want) \
	do { \
		enum tls_result _g = (got), _w = (want); \
		ck_assert_msg(_g == _w, "%s is TLS_IO_%s, expected TLS_IO_%s", #got, \
				tls_result_name(_g), tls_result_name(_w)); \
	} while (0)

/* ---- a connected pair, for the classification tests --------------------- */

static SSL_CTX *cctx, *sctx;
static struct ut_pair pair;

static void pair_setup(void)
{
	sctx = ut_server_ctx();
	cctx = ut_client_ctx();
	ck_assert_ptr_nonnull(sctx);
	ck_assert_ptr_nonnull(cctx);
	ck_assert_int_eq(ut_pair_new(&pair, cctx, sctx), 0);
	ERR_clear_error();
}

static void pair_teardown(void)
{
	ut_pair_free(&pair);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	ERR_clear_error();
}

static void handshake(void)
{
	int cr, sr;

	ck_assert_msg(ut_pair_handshake(&pair, &cr, &sr),
			"in-memory handshake failed (client %d, server %d)", cr, sr);
	ERR_clear_error();
}

/* ---- tls_io_classify ------------------------------------------------------ */

START_TEST(test_classify_handshake_ok)
{
	int cr = 0, sr = 0, i, cdone = 0, sdone = 0;

	/* Drive the handshake by hand so that every return value is classified
	 * as soon as it is produced. */
	for (i = 0; i < 20 && !(cdone && sdone); i++) {
		if (!cdone) {
			ERR_clear_error();
			cr = SSL_do_handshake(pair.c);
			if (cr == 1) {
				ck_assert_result(tls_io_classify(pair.c, cr), TLS_IO_OK);
				cdone = 1;
			} else {
				ck_assert_result(tls_io_classify(pair.c, cr), TLS_IO_WANT_READ);
			}
		}
		if (!sdone) {
			ERR_clear_error();
			sr = SSL_do_handshake(pair.s);
			if (sr == 1) {
				ck_assert_result(tls_io_classify(pair.s, sr), TLS_IO_OK);
				sdone = 1;
			} else {
				ck_assert_result(tls_io_classify(pair.s, sr), TLS_IO_WANT_READ);
			}
		}
		ut_pair_pump(&pair);
	}
	ck_assert_msg(cdone && sdone, "handshake did not complete");
}
END_TEST

START_TEST(test_classify_want_read_handshake)
{
	int ret;

	/* The server has received nothing yet. */
	ret = SSL_accept(pair.s);
	ck_assert_int_lt(ret, 1);
	ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_WANT_READ);
	/* The client has sent its hello and waits for the answer. */
	ret = SSL_connect(pair.c);
	ck_assert_int_lt(ret, 1);
	ck_assert_result(tls_io_classify(pair.c, ret), TLS_IO_WANT_READ);
	/* Half a record is not enough either. */
	{
		char buf[16];
		int n = BIO_read(SSL_get_wbio(pair.c), buf, sizeof(buf));

		ck_assert_int_gt(n, 5);
		ut_feed(pair.s, buf, (size_t)n);
		ret = SSL_accept(pair.s);
		ck_assert_int_lt(ret, 1);
		ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_WANT_READ);
	}
}
END_TEST

START_TEST(test_classify_data_and_want_read)
{
	char buf[64];
	int ret;

	handshake();
	ret = SSL_read(pair.s, buf, sizeof(buf));
	ck_assert_int_le(ret, 0);
	ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_WANT_READ);

	ret = SSL_write(pair.c, "INVITE", 6);
	ck_assert_int_eq(ret, 6);
	ck_assert_result(tls_io_classify(pair.c, ret), TLS_IO_OK);
	ut_pair_pump(&pair);
	ERR_clear_error();
	ret = SSL_read(pair.s, buf, sizeof(buf));
	ck_assert_int_eq(ret, 6);
	ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_OK);
	ck_assert_mem_eq(buf, "INVITE", 6);

	/* Drained again: back to WANT_READ. */
	ret = SSL_read(pair.s, buf, sizeof(buf));
	ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_WANT_READ);
}
END_TEST

START_TEST(test_classify_want_write)
{
	static char big[32768];
	BIO *near, *far;
	int ret;

	handshake();
	/* Swap the client's transport for a 512-byte pipe nobody drains. */
	ck_assert_int_eq(BIO_new_bio_pair(&near, 512, &far, 512), 1);
	SSL_set0_wbio(pair.c, near);
	memset(big, 'x', sizeof(big));
	ret = SSL_write(pair.c, big, sizeof(big));
	ck_assert_int_le(ret, 0);
	ck_assert_result(tls_io_classify(pair.c, ret), TLS_IO_WANT_WRITE);
	BIO_free(far);
}
END_TEST

START_TEST(test_classify_closed_after_close_notify)
{
	char buf[64];
	int ret;

	handshake();
	ret = SSL_shutdown(pair.s); /* sends close_notify */
	ck_assert_int_ge(ret, 0);
	ut_pair_pump(&pair);
	ERR_clear_error();
	ret = SSL_read(pair.c, buf, sizeof(buf));
	ck_assert_int_eq(ret, 0);
	ck_assert_result(tls_io_classify(pair.c, ret), TLS_IO_CLOSED);
}
END_TEST

START_TEST(test_classify_eof_without_close_notify)
{
	char buf[64];
	int ret;

	handshake();
	ut_set_eof(pair.s); /* the transport ends, no close_notify */
	ret = SSL_read(pair.s, buf, sizeof(buf));
	ck_assert_int_le(ret, 0);
	ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_EOF);
}
END_TEST

START_TEST(test_classify_eof_during_handshake)
{
	int ret;

	ret = SSL_connect(pair.c);
	ck_assert_result(tls_io_classify(pair.c, ret), TLS_IO_WANT_READ);
	ut_set_eof(pair.c); /* the server went away */
	ERR_clear_error();
	ret = SSL_connect(pair.c);
	ck_assert_int_le(ret, 0);
	ck_assert_result(tls_io_classify(pair.c, ret), TLS_IO_EOF);
}
END_TEST

START_TEST(test_classify_peer_error_garbage_handshake)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	int ret;

	ut_feed(pair.s, http, sizeof(http) - 1);
	ret = SSL_accept(pair.s);
	ck_assert_int_le(ret, 0);
	ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_PEER_ERROR);
}
END_TEST

START_TEST(test_classify_peer_error_garbage_record)
{
	/* An application-data record whose contents cannot authenticate. */
	unsigned char rec[5 + 48];
	char buf[64];
	int ret;

	handshake();
	rec[0] = 0x17;
	rec[1] = 0x03;
	rec[2] = 0x03;
	rec[3] = 0x00;
	rec[4] = 48;
	memset(rec + 5, 0xa5, 48);
	ut_feed(pair.s, rec, sizeof(rec));
	ret = SSL_read(pair.s, buf, sizeof(buf));
	ck_assert_int_le(ret, 0);
	ck_assert_result(tls_io_classify(pair.s, ret), TLS_IO_PEER_ERROR);
}
END_TEST

START_TEST(test_classify_peer_error_alert)
{
	int cr, sr;

	/* The client now insists on verifying, and knows no CA. */
	SSL_set_verify(pair.c, SSL_VERIFY_PEER, NULL);
	ck_assert_int_eq(ut_pair_handshake(&pair, &cr, &sr), 0);
	ck_assert_int_le(cr, 0);
	ck_assert_result(tls_io_classify(pair.c, cr), TLS_IO_PEER_ERROR);
	/* Its alert reaches the server. */
	ut_pair_pump(&pair);
	ERR_clear_error();
	sr = SSL_do_handshake(pair.s);
	ck_assert_int_le(sr, 0);
	ck_assert_result(tls_io_classify(pair.s, sr), TLS_IO_PEER_ERROR);
}
END_TEST

/* Causes a real SSL object cannot be made to produce on demand (allocation
 * failure, internal error): the queue is filled as OpenSSL would. */
START_TEST(test_classify_local_errors)
{
	static const int local[] = {ERR_R_MALLOC_FAILURE, ERR_R_INTERNAL_ERROR,
			ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED};
	size_t i;

	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		ERR_clear_error();
		ut_err_push(ERR_LIB_SSL, local[i], NULL);
		ck_assert_msg(tls_io_classify(pair.s, -1) == TLS_IO_LOCAL_ERROR,
				"reason %d not classified as local", local[i]);
	}
	/* Only the first (oldest) error decides: a peer-caused one first. */
	ERR_clear_error();
	ut_err_push(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER, NULL);
	ut_err_push(ERR_LIB_SSL, ERR_R_INTERNAL_ERROR, NULL);
	ck_assert_result(tls_io_classify(pair.s, -1), TLS_IO_PEER_ERROR);
	/* A local error in another library is still local. */
	ERR_clear_error();
	ut_err_push(ERR_LIB_EVP, ERR_R_MALLOC_FAILURE, NULL);
	ck_assert_result(tls_io_classify(pair.s, -1), TLS_IO_LOCAL_ERROR);
}
END_TEST

START_TEST(test_classify_syscall_error)
{
	/* A transport error reported by the system (ERR_LIB_SYS) is not an EOF. */
	ut_err_push(ERR_LIB_SYS, ECONNRESET, NULL);
	ck_assert_int_eq(SSL_get_error(pair.s, -1), SSL_ERROR_SYSCALL);
	ck_assert_result(tls_io_classify(pair.s, -1), TLS_IO_PEER_ERROR);
}
END_TEST

START_TEST(test_classify_success_ignores_queue)
{
	/* A positive return is a success whatever is left in the queue. */
	ut_err_push(ERR_LIB_SSL, ERR_R_INTERNAL_ERROR, NULL);
	ck_assert_result(tls_io_classify(pair.s, 1), TLS_IO_OK);
	ck_assert_result(tls_io_classify(pair.s, 100), TLS_IO_OK);
}
END_TEST

/* ---- tls_err_drain -------------------------------------------------------- */

/* Queues the same three errors every time (two with data, one without). */
static void queue_three(void)
{
	ERR_clear_error();
	ut_err_push(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER, "first detail");
	ut_err_push(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE, NULL);
	ut_err_push(ERR_LIB_PEM, PEM_R_NO_START_LINE, "third detail");
}

static const char *full_line(void)
{
	static char full[4096];

	queue_three();
	tls_err_drain(full, sizeof(full));
	return full;
}

static int count_sub(const char *s, const char *sub)
{
	int n = 0;

	while ((s = strstr(s, sub)) != NULL) {
		n++;
		s += strlen(sub);
	}
	return n;
}

START_TEST(test_drain_empty_queue)
{
	char buf[32];

	ERR_clear_error();
	memset(buf, 'Z', sizeof(buf));
	ck_assert_ptr_eq(tls_err_drain(buf, sizeof(buf)), buf);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_drain_joins_errors)
{
	char buf[4096], one[256];
	unsigned long e;

	queue_three();
	ck_assert_ptr_eq(tls_err_drain(buf, sizeof(buf)), buf);
	ck_assert_int_eq(ERR_peek_error(), 0); /* drained */
	ck_assert_ptr_null(strchr(buf, '\n'));
	ck_assert_int_eq(count_sub(buf, "; "), 2);
	/* Oldest first, data after the error. */
	ck_assert_ptr_nonnull(strstr(buf, "first detail"));
	ck_assert_ptr_nonnull(strstr(buf, "third detail"));
	ck_assert_msg(strstr(buf, "first detail") < strstr(buf, "third detail"),
			"errors out of order in '%s'", buf);
	ck_assert_ptr_nonnull(strstr(buf, ": first detail; "));
	/* Each error's own text, as OpenSSL renders it. */
	queue_three();
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		ck_assert_msg(strstr(buf, one) != NULL, "'%s' missing from '%s'", one,
				buf);
	}
	/* The error without data has no ": " after it. */
	ERR_error_string_n(ERR_PACK(ERR_LIB_X509, 0,
							   X509_R_CERT_ALREADY_IN_HASH_TABLE),
			one, sizeof(one));
	strcat(one, "; ");
	ck_assert_msg(strstr(buf, one) != NULL, "'%s' missing from '%s'", one,
			buf);
}
END_TEST

START_TEST(test_drain_single_error_without_data)
{
	char buf[256];

	ERR_clear_error();
	ut_err_push(ERR_LIB_SSL, SSL_R_NO_CIPHER_MATCH, NULL);
	tls_err_drain(buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "; "));
	ck_assert_int_gt(strlen(buf), 0);
	ck_assert_msg(buf[strlen(buf) - 1] != ' ' && buf[strlen(buf) - 1] != ':',
			"trailing separator in '%s'", buf);
}
END_TEST

/* Sizes 1, 2, 10 and one that cuts the second error: the result is a
 * NUL-terminated prefix of the full line, nothing is written past size, and
 * the whole queue is drained anyway. */
START_TEST(test_drain_truncates)
{
	static const size_t sizes[] = {1, 2, 10, 0 /* filled below */};
	const char *full = full_line();
	char buf[512];
	size_t i, size, len;

	ck_assert_int_gt(strlen(full), 40);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size = sizes[i] ? sizes[i] : strlen(full) / 2;
		memset(buf, 'Z', sizeof(buf));
		queue_three();
		ck_assert_ptr_eq(tls_err_drain(buf, size), buf);
		len = strnlen(buf, size);
		ck_assert_msg(len < size, "size %zu: not NUL-terminated", size);
		ck_assert_uint_eq(len, size - 1);
		ck_assert_msg(strncmp(buf, full, len) == 0,
				"size %zu: '%s' is not a prefix of '%s'", size, buf, full);
		ck_assert_msg(buf[size] == 'Z', "size %zu: wrote past the end", size);
		ck_assert_msg(ERR_peek_error() == 0, "size %zu: queue not drained",
				size);
	}
}
END_TEST

START_TEST(test_drain_exact_fit)
{
	const char *full = full_line();
	size_t size = strlen(full) + 1;
	char buf[512];

	memset(buf, 'Z', sizeof(buf));
	queue_three();
	tls_err_drain(buf, size);
	ck_assert_str_eq(buf, full);
	ck_assert_int_eq(buf[size], 'Z');
	/* One byte less loses exactly the last character. */
	memset(buf, 'Z', sizeof(buf));
	queue_three();
	tls_err_drain(buf, size - 1);
	ck_assert_uint_eq(strlen(buf), strlen(full) - 1);
	ck_assert_int_eq(strncmp(buf, full, size - 2), 0);
	ck_assert_int_eq(buf[size - 1], 'Z');
}
END_TEST

START_TEST(test_drain_size_zero_writes_nothing)
{
	char buf[4] = {'Z', 'Z', 'Z', 'Z'};

	queue_three();
	ck_assert_ptr_eq(tls_err_drain(buf, 0), buf);
	ck_assert_mem_eq(buf, "ZZZZ", 4);
	ERR_clear_error();
}
END_TEST

START_TEST(test_drain_full_queue)
{
	char buf[128];
	int i;

	/* More errors than the queue holds and than the buffer can take. */
	ERR_clear_error();
	for (i = 0; i < 40; i++)
		ut_err_push(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER, "repeated");
	memset(buf, 'Z', sizeof(buf));
	tls_err_drain(buf, sizeof(buf) - 8);
	ck_assert_uint_eq(strlen(buf), sizeof(buf) - 9);
	ck_assert_int_eq(buf[sizeof(buf) - 8], 'Z');
	ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

/* ---- tls_fmt ---------------------------------------------------------------- */

START_TEST(test_fmt_formats)
{
	char buf[64];

	ck_assert_ptr_eq(tls_fmt(buf, sizeof(buf), "%s:%d", "tls.cfg", 12), buf);
	ck_assert_str_eq(buf, "tls.cfg:12");
	tls_fmt(buf, sizeof(buf), "%s", "");
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_fmt_truncates)
{
	char buf[16];

	memset(buf, 'Z', sizeof(buf));
	ck_assert_ptr_eq(tls_fmt(buf, 5, "%s-%d", "abcdefgh", 42), buf);
	ck_assert_str_eq(buf, "abcd");
	ck_assert_int_eq(buf[5], 'Z');

	memset(buf, 'Z', sizeof(buf));
	tls_fmt(buf, 1, "%s", "abc");
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(buf[1], 'Z');

	memset(buf, 'Z', sizeof(buf));
	tls_fmt(buf, 4, "%s", "abc"); /* exact fit */
	ck_assert_str_eq(buf, "abc");
	ck_assert_int_eq(buf[4], 'Z');
}
END_TEST

START_TEST(test_fmt_size_zero_writes_nothing)
{
	char buf[4] = {'Z', 'Z', 'Z', 'Z'};

	ck_assert_ptr_eq(tls_fmt(buf, 0, "%s", "abc"), buf);
	ck_assert_mem_eq(buf, "ZZZZ", 4);
}
END_TEST

/* ---- tls_conn_peer ---------------------------------------------------------- */

static struct tcp_connection *conn_new(int af, const char *ip,
		unsigned short port)
{
	struct tcp_connection *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->rcv.src_ip.af = (unsigned)af;
	c->rcv.src_ip.len = af == AF_INET6 ? 16 : 4;
	if (ip)
		ck_assert_int_eq(inet_pton(af, ip, c->rcv.src_ip.u.addr), 1);
	c->rcv.src_port = port;
	return c;
}

static void peer_setup(void)
{
	stub_ip_addr2sbuf_ret = STUB_IP_REAL;
	stub_ip_addr2sbuf_calls = 0;
	stub_log_reset();
}

START_TEST(test_peer_ipv4)
{
	struct tcp_connection *c = conn_new(AF_INET, "192.0.2.7", 5061);
	char buf[64];

	ck_assert_ptr_eq(tls_conn_peer(c, buf, sizeof(buf)), buf);
	ck_assert_str_eq(buf, "192.0.2.7:5061");
	/* The core converter was given a buffer big enough for the family. */
	ck_assert_int_eq(stub_ip_addr2sbuf_calls, 1);
	ck_assert_int_ge(stub_ip_addr2sbuf_last_len, IP6_MAX_STR_SIZE);

	c->rcv.src_port = 65535;
	inet_pton(AF_INET, "255.255.255.255", c->rcv.src_ip.u.addr);
	tls_conn_peer(c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "255.255.255.255:65535");
	c->rcv.src_port = 0;
	tls_conn_peer(c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "255.255.255.255:0");
	free(c);
}
END_TEST

START_TEST(test_peer_ipv6)
{
	struct tcp_connection *c = conn_new(AF_INET6, "2001:db8::1", 5061);
	char buf[80];

	ck_assert_str_eq(tls_conn_peer(c, buf, sizeof(buf)), "[2001:db8::1]:5061");
	/* A full-length address (39 characters) fits. */
	inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
			c->rcv.src_ip.u.addr);
	c->rcv.src_port = 65535;
	tls_conn_peer(c, buf, sizeof(buf));
	ck_assert_str_eq(buf,
			"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	inet_pton(AF_INET6, "::ffff:192.0.2.1", c->rcv.src_ip.u.addr);
	tls_conn_peer(c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[::ffff:192.0.2.1]:65535");
	free(c);
}
END_TEST

START_TEST(test_peer_truncates)
{
	struct tcp_connection *c = conn_new(AF_INET6, "2001:db8::1", 5061);
	char buf[32];

	memset(buf, 'Z', sizeof(buf));
	ck_assert_ptr_eq(tls_conn_peer(c, buf, 8), buf);
	ck_assert_str_eq(buf, "[2001:d");
	ck_assert_int_eq(buf[8], 'Z');

	memset(buf, 'Z', sizeof(buf));
	tls_conn_peer(c, buf, 1);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(buf[1], 'Z');
	free(c);
}
END_TEST

START_TEST(test_peer_conversion_fails)
{
	struct tcp_connection *c = conn_new(AF_INET, "192.0.2.7", 5060);
	char buf[64];

	/* The core converter fails (returns 0 or a negative value): no garbage
	 * and no out-of-bounds write, the port is still there. */
	stub_ip_addr2sbuf_ret = 0;
	memset(buf, 'Z', sizeof(buf));
	tls_conn_peer(c, buf, sizeof(buf));
	ck_assert_str_eq(buf, ":5060");
	stub_ip_addr2sbuf_ret = -1;
	memset(buf, 'Z', sizeof(buf));
	tls_conn_peer(c, buf, sizeof(buf));
	ck_assert_str_eq(buf, ":5060");
	free(c);
}
END_TEST

START_TEST(test_peer_unknown_family)
{
	struct tcp_connection *c = conn_new(AF_UNIX, NULL, 5060);
	char buf[64];

	memset(buf, 'Z', sizeof(buf));
	tls_conn_peer(c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(memchr(buf, '\0', sizeof(buf)));
	ck_assert_str_eq(buf, ":5060");
	ck_assert_ptr_nonnull(stub_log_find(STUB_LOG_ANY, "address family"));
	free(c);
}
END_TEST

static Suite *tls_util_suite(void)
{
	Suite *s = suite_create("tls_util");
	TCase *tc;

	tc = tcase_create("tls_io_classify");
	tcase_add_checked_fixture(tc, pair_setup, pair_teardown);
	tcase_add_test(tc, test_classify_handshake_ok);
	tcase_add_test(tc, test_classify_want_read_handshake);
	tcase_add_test(tc, test_classify_data_and_want_read);
	tcase_add_test(tc, test_classify_want_write);
	tcase_add_test(tc, test_classify_closed_after_close_notify);
	tcase_add_test(tc, test_classify_eof_without_close_notify);
	tcase_add_test(tc, test_classify_eof_during_handshake);
	tcase_add_test(tc, test_classify_peer_error_garbage_handshake);
	tcase_add_test(tc, test_classify_peer_error_garbage_record);
	tcase_add_test(tc, test_classify_peer_error_alert);
	tcase_add_test(tc, test_classify_local_errors);
	tcase_add_test(tc, test_classify_syscall_error);
	tcase_add_test(tc, test_classify_success_ignores_queue);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls_err_drain");
	tcase_add_test(tc, test_drain_empty_queue);
	tcase_add_test(tc, test_drain_joins_errors);
	tcase_add_test(tc, test_drain_single_error_without_data);
	tcase_add_test(tc, test_drain_truncates);
	tcase_add_test(tc, test_drain_exact_fit);
	tcase_add_test(tc, test_drain_size_zero_writes_nothing);
	tcase_add_test(tc, test_drain_full_queue);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls_fmt");
	tcase_add_test(tc, test_fmt_formats);
	tcase_add_test(tc, test_fmt_truncates);
	tcase_add_test(tc, test_fmt_size_zero_writes_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls_conn_peer");
	tcase_add_checked_fixture(tc, peer_setup, NULL);
	tcase_add_test(tc, test_peer_ipv4);
	tcase_add_test(tc, test_peer_ipv6);
	tcase_add_test(tc, test_peer_truncates);
	tcase_add_test(tc, test_peer_conversion_fails);
	tcase_add_test(tc, test_peer_unknown_family);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tls_util_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
