/*
 * hsceiling: what a TLS server handshake costs OpenSSL alone.
 *
 * A client SSL and a server SSL in one process, joined by a BIO pair (no
 * sockets, no kernel, no other process).  Each cycle mirrors what loadgen asks
 * of the server: handshake, one SIP OPTIONS read and a 200 written, the
 * client's close_notify read and answered, the SSL object freed.  Only the
 * server side's calls are timed, with the thread's CPU clock, so the figure
 * is "server CPU per connection" with nothing but OpenSSL in it.
 *
 *   hsceiling --cert F --key F [--ca F] [--tls 1.2|1.3] [--resume]
 *             [-n N] [-d SEC] [--label TEXT]
 *
 * Output: "RESULT key=value ..." and a one-line summary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>

static const char *cert_file, *key_file, *ca_file, *label = "-";
static int tls_ver = 13, resume;
static long max_n = 1000000;
static double max_secs = 3.0;

static SSL_SESSION *saved;
static uint64_t overhead_ns;     /* cost of one pair of clock reads */

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "hsceiling: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

static int keep_session(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	if (saved)
		SSL_SESSION_free(saved);
	saved = sess;
	return 1;
}

/* server-side time accounting */
struct acc {
	uint64_t total, hs;
};

#define SERVER(acc_field, expr)                                        \
	do {                                                           \
		uint64_t t0_ = cpu_ns();                               \
		expr;                                                  \
		uint64_t d_ = cpu_ns() - t0_;                          \
		d_ = d_ > overhead_ns ? d_ - overhead_ns : 0;          \
		acc_field += d_;                                       \
	} while (0)

static const char request[] =
	"OPTIONS sip:127.0.0.1:5061;transport=tls SIP/2.0\r\n"
	"Via: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bK-hsc.1;rport\r\n"
	"Max-Forwards: 70\r\n"
	"From: <sip:loadgen@127.0.0.1>;tag=hsc1\r\n"
	"To: <sip:127.0.0.1:5061>\r\n"
	"Call-ID: hsc.1@loadgen\r\n"
	"CSeq: 1 OPTIONS\r\n"
	"User-Agent: tls-bench-loadgen\r\n"
	"Content-Length: 0\r\n\r\n";

static const char response[] =
	"SIP/2.0 200 OK\r\n"
	"Via: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bK-hsc.1;rport=40000;received=127.0.0.1\r\n"
	"From: <sip:loadgen@127.0.0.1>;tag=hsc1\r\n"
	"To: <sip:127.0.0.1:5061>;tag=0123456789abcdef0123456789abcdef\r\n"
	"Call-ID: hsc.1@loadgen\r\n"
	"CSeq: 1 OPTIONS\r\n"
	"Server: kamailio\r\n"
	"Content-Length: 0\r\n\r\n";

static int want_io(SSL *s, int r)
{
	int e = SSL_get_error(s, r);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* one connection; returns 1 if the client resumed */
static int one_cycle(SSL_CTX *sctx, SSL_CTX *cctx, struct acc *a)
{
	BIO *cb = NULL, *sb = NULL;
	if (!BIO_new_bio_pair(&cb, 0, &sb, 0))
		die("BIO_new_bio_pair");
	SSL *c = SSL_new(cctx), *s = NULL;
	if (!c)
		die("SSL_new (client)");
	SSL_set_bio(c, cb, cb);
	SSL_set_connect_state(c);
	if (resume && saved)
		SSL_set_session(c, saved);

	SERVER(a->total, s = SSL_new(sctx));
	if (!s)
		die("SSL_new (server)");
	SSL_set_bio(s, sb, sb);
	SSL_set_accept_state(s);

	int cdone = 0, sdone = 0;
	for (int round = 0; !(cdone && sdone); round++) {
		if (round > 50)
			die("handshake does not finish");
		if (!cdone) {
			int r = SSL_do_handshake(c);
			if (r == 1)
				cdone = 1;
			else if (!want_io(c, r))
				die("client handshake failed");
		}
		if (!sdone) {
			int r = 0;
			uint64_t before = a->total;
			SERVER(a->total, r = SSL_do_handshake(s));
			a->hs += a->total - before;
			if (r == 1)
				sdone = 1;
			else if (!want_io(s, r))
				die("server handshake failed");
		}
	}

	char buf[2048];
	int r;
	if (SSL_write(c, request, (int)sizeof request - 1) != (int)sizeof request - 1)
		die("client write");
	SERVER(a->total, r = SSL_read(s, buf, sizeof buf));
	if (r != (int)sizeof request - 1)
		die("server read");
	SERVER(a->total, r = SSL_write(s, response, (int)sizeof response - 1));
	if (r != (int)sizeof response - 1)
		die("server write");
	/* the client reads the tickets (TLS 1.3) and the 200 */
	r = SSL_read(c, buf, sizeof buf);
	if (r != (int)sizeof response - 1)
		die("client read");

	/* client close_notify; the server reads it and answers with its own */
	if (SSL_shutdown(c) < 0)
		die("client shutdown");
	SERVER(a->total, r = SSL_read(s, buf, sizeof buf));
	if (r > 0 || SSL_get_error(s, r) != SSL_ERROR_ZERO_RETURN)
		die("server did not see close_notify");
	SERVER(a->total, r = SSL_shutdown(s));
	if (r < 0)
		die("server shutdown");
	r = SSL_read(c, buf, sizeof buf);
	if (r > 0 || SSL_get_error(c, r) != SSL_ERROR_ZERO_RETURN)
		die("client did not see close_notify");
	ERR_clear_error();

	int reused = SSL_session_reused(c);
	SERVER(a->total, SSL_free(s));
	SSL_free(c);
	return reused;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: hsceiling --cert F --key F [--ca F] [--tls 1.2|1.3] [--resume]\n"
		   "                 [-n N] [-d SEC] [--label TEXT]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "cert", 1, 0, 'c' }, { "key", 1, 0, 'k' }, { "ca", 1, 0, 'a' },
		{ "tls", 1, 0, 'V' }, { "resume", 0, 0, 'r' }, { "count", 1, 0, 'n' },
		{ "duration", 1, 0, 'd' }, { "label", 1, 0, 'l' }, { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 }
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:k:a:V:rn:d:l:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': cert_file = optarg; break;
		case 'k': key_file = optarg; break;
		case 'a': ca_file = optarg; break;
		case 'V':
			if (!strcmp(optarg, "1.2"))
				tls_ver = 12;
			else if (!strcmp(optarg, "1.3"))
				tls_ver = 13;
			else
				die("--tls takes 1.2 or 1.3");
			break;
		case 'r': resume = 1; break;
		case 'n': max_n = atol(optarg); break;
		case 'd': max_secs = atof(optarg); break;
		case 'l': label = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cert_file || !key_file || max_n < 1 || max_secs <= 0) {
		usage(stderr);
		return 2;
	}

	/* the server: what a TLSv1.2+ server is, nothing tuned */
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	if (!sctx)
		die("SSL_CTX_new (server)");
	SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(sctx, cert_file) != 1)
		die("cannot load the certificate");
	if (SSL_CTX_use_PrivateKey_file(sctx, key_file, SSL_FILETYPE_PEM) != 1)
		die("cannot load the private key");
	if (SSL_CTX_check_private_key(sctx) != 1)
		die("key does not match the certificate");

	/* the client: the same settings loadgen uses */
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	if (!cctx)
		die("SSL_CTX_new (client)");
	int v = tls_ver == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(cctx, v);
	SSL_CTX_set_max_proto_version(cctx, v);
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(cctx, ca_file, NULL) != 1)
			die("cannot load the CA file");
		SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	}
	if (resume) {
		SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT |
					       SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(cctx, keep_session);
	} else {
		SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
	}

	/* what a pair of clock reads costs, taken off every timed call */
	uint64_t t0 = cpu_ns();
	for (int i = 0; i < 20000; i++)
		(void)cpu_ns();
	overhead_ns = (cpu_ns() - t0) / 20000;

	struct acc warm = { 0, 0 }, a = { 0, 0 };
	for (int i = 0; i < 20; i++)
		one_cycle(sctx, cctx, &warm);

	long n = 0, reused = 0;
	uint64_t w0 = wall_ns(), c0 = cpu_ns();
	uint64_t limit = (uint64_t)(max_secs * 1e9);
	while (n < max_n && wall_ns() - w0 < limit) {
		reused += one_cycle(sctx, cctx, &a);
		n++;
	}
	uint64_t wall = wall_ns() - w0, thread_cpu = cpu_ns() - c0;
	double server_us = a.total / 1e3 / (double)n;
	double hs_us = a.hs / 1e3 / (double)n;
	double client_us = (thread_cpu > a.total ? thread_cpu - a.total : 0) / 1e3 / (double)n;

	printf("RESULT label=%s tls=%s mode=%s n=%ld resumed=%ld server_us=%.2f "
	       "server_hs_us=%.2f client_us=%.2f server_per_cpu_s=%.1f wall=%.3f "
	       "clock_overhead_ns=%llu\n",
	       label, tls_ver == 12 ? "1.2" : "1.3", resume ? "resume" : "full", n, reused,
	       server_us, hs_us, client_us, server_us > 0 ? 1e6 / server_us : 0,
	       wall / 1e9, (unsigned long long)overhead_ns);
	printf("hsceiling %s TLS %s %s: %ld cycles (%ld resumed): server %.1f us per "
	       "connection (%.1f us handshake), %.0f per server CPU-second\n",
	       label, tls_ver == 12 ? "1.2" : "1.3", resume ? "resumption" : "full handshake",
	       n, reused, server_us, hs_us, server_us > 0 ? 1e6 / server_us : 0);

	if (saved)
		SSL_SESSION_free(saved);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	return 0;
}
