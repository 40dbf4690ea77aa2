/*
 * fuzz_read.c: libFuzzer harness for the module's receive path: the read
 * hook tls_h_read() of tls_server.c, exactly as the core's TCP reader calls
 * it, on a fake struct tcp_connection whose socket is one end of a
 * socketpair; the harness plays the peer on the other end.
 *
 * The first input byte chooses the mode and a few options:
 *
 *   bit 0 = 0  raw mode: the rest of the input is the peer's first flight
 *              (garbage, a cut ClientHello, ...), written in pieces whose
 *              size bits 1-2 choose (all, 1, 7, 100 bytes), with a read
 *              hook call after each piece; then the peer closes.
 *   bit 0 = 1  session mode: a real TLS client (OpenSSL, memory BIOs,
 *              trusting the server's test certificate) completes a
 *              handshake with the module (bit 1: TLS 1.2, else TLS 1.3),
 *              then the rest of the input is a program of operations:
 *              application-data records of fuzz-chosen sizes carrying
 *              fuzz-chosen bytes (SIP framing inside records), read hook
 *              calls, raw bytes injected into the stream, replies sent by
 *              the module's encode hook, key updates, renegotiation
 *              requests, close_notify, a failing send, the core's close.
 *   bits 2-3   the core's read buffer size (tcp_rd_buf_size): 65535,
 *              4096, 512, 64.
 *
 * Everything the module sends (tcpconn_send_unsafe, the encode hook's
 * output, close_notify written to the socket) is delivered to the client,
 * which reads it all.
 *
 * What makes an input a failure (abort), besides sanitizer reports:
 *  - any log line at ERROR or worse: every input is something a peer did,
 *    and peer-caused failures must be logged at tls_log level only;
 *  - more than one line at INFO or above for the connection;
 *  - the read hook returning < -1, or more bytes than the buffer had room
 *    for, or a negative result (a local fault) at all;
 *  - session mode without injected bytes: the bytes delivered into the
 *    core's buffer are not exactly a prefix of what the client sent, or
 *    (connection still up at the end) not all of it;
 *  - shared memory still allocated after the core frees the connection;
 *  - the harness's own client failing to complete the handshake.
 *
 * The core functions tls_server.c calls are stubbed here; logging globals
 * and ip_addr2sbuf come from test/unit/core_stubs.c (linked as is), whose
 * shared-memory functions are replaced at start by malloc-backed ones, so
 * that AddressSanitizer sees every block. OpenSSL keeps its own malloc
 * (tls_init_openssl() is not called) for the same reason.
 *
 * Build and run: make fuzz / make fuzz-short at the top, or
 * make -C test/fuzz run TARGETS=fuzz_read FUZZ_TIME=600 (see its Makefile).
 * Replay one input: build/fuzz/fuzz_read <file>; FUZZ_LOG=1 prints the
 * module's log lines and what was delivered.
 *
 * When the module starts calling another core function, the link fails
 * with an undefined reference: add a stub below (the receive path must
 * not need the real one; abort() in a stub that must never run).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/dprint.h"
#include "core/mem/shm.h"
#include "core/tcp_conn.h"
#include "core/tcp_read.h"
#include "core/tcp_int_send.h"
#include "core/tcp_options.h"
#include "core/tcp_server.h"
#include "core/timer.h"
#include "core/xavp.h"
#include "core/action.h"
#include "core/fmsg.h"
#include "core/route.h"
#include "core/cfg_core.h"
#include "core/dst_blocklist.h"

#include "tls_domain.h"
#include "tls_locking.h"
#include "tls_mod.h"
#include "tls_server.h"

#define require(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_read: %s:%d: broken: %s\n", __FILE__, \
					__LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* ------------------------------------------------------------ core stubs */

/* tls_mod.c is not linked (it needs the running core): its parameters with
 * the documented defaults. */
struct tls_params tls_params = {
	.verify_depth = TLS_DEFAULT_VERIFY_DEPTH,
	.send_timeout = 120,
	.handshake_timeout = 30,
	.connection_timeout = 600,
	.disable_compression = 1,
	.log = L_INFO,
	.low_mem_threshold1 = -1,
	.low_mem_threshold2 = -1,
	.client_verify_certificate = 1,
};

void *core_cfg;
unsigned blst_proto_imask[PROTO_LAST + 1];
/* The core's TCP settings (cfg_get(tcp, tcp_cfg, ...)): its defaults
 * matter little here; zero is a valid value for each. */
static struct cfg_group_tcp fuzz_tcp_cfg;
void *tcp_cfg = &fuzz_tcp_cfg;

/* Time stands still: a fuzz input never waits for a timeout. */
static ticks_t fuzz_ticks = 1000;

ticks_t get_ticks_raw(void)
{
	return fuzz_ticks;
}

int dst_blocklist_force_su_to(unsigned char err_flags, unsigned char proto,
		union sockaddr_union *dst, struct sip_msg *msg, ticks_t timeout)
{
	return 0;
}

sr_xavp_t *xavp_get_child_with_sval(str *rname, str *cname)
{
	return NULL;
}

/* The routing script: none (event routes are for outbound connections,
 * which the receive path never makes). */
int route_type;
struct route_list event_rt;

int route_lookup(struct route_list *rt, char *name)
{
	return -1;
}

int faked_msg_init(void)
{
	return 0;
}

sip_msg_t *faked_msg_next(void)
{
	abort(); /* only for an event route, and there is none */
}

int run_top_route(struct action *a, sip_msg_t *msg, struct run_act_ctx *c)
{
	abort();
}

struct tcp_connection *tcpconn_get(int id, struct ip_addr *ip, int port,
		union sockaddr_union *local_addr, ticks_t timeout)
{
	return NULL; /* tls.kill is not part of the receive path */
}

int tcp_send(struct dest_info *dst, union sockaddr_union *from,
		const char *buf, unsigned len)
{
	return -1;
}

/* What the module sent on the connection from the read hook (the core's
 * locked send): collected for the client. */
static unsigned char *sent_buf;
static size_t sent_len, sent_size;
static int send_fail_armed; /* the next send fails (peer reset it) */

int tcpconn_send_unsafe(int fd, struct tcp_connection *c, const char *buf,
		unsigned len, snd_flags_t send_flags)
{
	require(buf != NULL || len == 0);
	if (send_fail_armed) {
		/* As the core does on a failed send: the connection is bad and
		 * TCP main is told to close it. */
		send_fail_armed = 0;
		c->state = S_CONN_BAD;
		return -1;
	}
	if (sent_len + len > sent_size) {
		sent_size = (sent_len + len) * 2 + 4096;
		sent_buf = realloc(sent_buf, sent_size);
		require(sent_buf != NULL);
	}
	memcpy(sent_buf + sent_len, buf, len);
	sent_len += len;
	return (int)len;
}

/* Shared memory backed by malloc (AddressSanitizer sees every block), with
 * a count of live blocks: the connection's must all be freed by clean. */
static long shm_live;

static void *fz_shm_malloc(void *mbp, size_t size, const char *file,
		const char *func, unsigned int line, const char *mname)
{
	void *p = malloc(size ? size : 1);
	if (p)
		shm_live++;
	return p;
}

static void *fz_shm_mallocxz(void *mbp, size_t size, const char *file,
		const char *func, unsigned int line, const char *mname)
{
	void *p = calloc(1, size ? size : 1);
	if (p)
		shm_live++;
	return p;
}

static void fz_shm_free(void *mbp, void *p, const char *file,
		const char *func, unsigned int line, const char *mname)
{
	if (p) {
		shm_live--;
		free(p);
	}
}

static void *fz_shm_realloc(void *mbp, void *p, size_t size,
		const char *file, const char *func, unsigned int line,
		const char *mname)
{
	void *n = realloc(p, size ? size : 1);
	if (p == NULL && n)
		shm_live++;
	return n;
}

static void *fz_shm_reallocxf(void *mbp, void *p, size_t size,
		const char *file, const char *func, unsigned int line,
		const char *mname)
{
	void *n = fz_shm_realloc(mbp, p, size, file, func, line, mname);
	if (n == NULL && p)
		fz_shm_free(mbp, p, file, func, line, mname);
	return n;
}

/* Log lines by level (index level - L_ALERT) for the current input. */
static int log_count[L_MAX - L_ALERT + 2];
static int log_echo;

static void fz_slog(ksr_logdata_t *kld, const char *fmt, ...)
{
	int level = kld->v_level;
	va_list ap;

	if (level < L_ALERT)
		level = L_ALERT;
	if (level > L_DBG)
		level = L_DBG;
	log_count[level - L_ALERT]++;
	if (log_echo) {
		fprintf(stderr, "[%d] ", level);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
}

static int logs_at_or_above(int level)
{
	int l, n = 0;

	for (l = L_ALERT; l <= level; l++)
		n += log_count[l - L_ALERT];
	return n;
}

/* ------------------------------------------------------ certificate, init */

static SSL_CTX *client_ctx;

static void make_certificate(char *cert_path, char *key_path)
{
	static char dir[] = "/tmp/fuzz-read-XXXXXX";
	EVP_PKEY *key;
	X509 *x;
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *f;

	require(mkdtemp(dir) != NULL);
	snprintf(cert_path, 256, "%s/cert.pem", dir);
	snprintf(key_path, 256, "%s/key.pem", dir);
	key = EVP_EC_gen("P-256");
	require(key != NULL);
	x = X509_new();
	require(x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
			(const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
			"DNS:localhost,IP:127.0.0.1");
	require(ext != NULL);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	require(X509_sign(x, key, EVP_sha256()) > 0);
	f = fopen(cert_path, "w");
	require(f && PEM_write_X509(f, x) == 1);
	fclose(f);
	f = fopen(key_path, "w");
	require(f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* As in Kamailio (which ignores SIGPIPE): a write to a peer that has
	 * gone is an error return, not the end of the process. */
	signal(SIGPIPE, SIG_IGN);
	struct tls_domain_cfg server, client;
	struct tls_domain_set *set;
	char cert[256], key[256], err[1024];
	const char *env = getenv("FUZZ_LOG");

	log_echo = env && *env == '1';
	_ksr_slog_func = fz_slog;
	_shm_root.xmalloc = fz_shm_malloc;
	_shm_root.xmallocxz = fz_shm_mallocxz;
	_shm_root.xmalloc_unsafe = fz_shm_malloc;
	_shm_root.xrealloc = fz_shm_realloc;
	_shm_root.xreallocxf = fz_shm_reallocxf;
	_shm_root.xfree = fz_shm_free;
	_shm_root.xfree_unsafe = fz_shm_free;

	make_certificate(cert, key);
	memset(&server, 0, sizeof(server));
	server.role = TLS_ROLE_SERVER;
	server.certificate = cert;
	server.private_key = key;
	server.verify_depth = TLS_DEFAULT_VERIFY_DEPTH;
	server.where = "";
	memset(&client, 0, sizeof(client));
	client.role = TLS_ROLE_CLIENT;
	client.verify_depth = TLS_DEFAULT_VERIFY_DEPTH;
	client.where = "client role: ";

	require(tls_locking_init() == 0);
	require(tls_server_init() == 0);
	set = tls_domain_set_build(NULL, NULL, &server, &client, err, sizeof(err));
	if (set == NULL) {
		fprintf(stderr, "fuzz_read: %s\n", err);
		abort();
	}
	tls_set_publish(set);

	client_ctx = SSL_CTX_new(TLS_client_method());
	require(client_ctx != NULL);
	require(SSL_CTX_load_verify_locations(client_ctx, cert, NULL) == 1);
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(client_ctx),
			X509_V_FLAG_PARTIAL_CHAIN);
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
	/* Both contexts hold what they need: no files left behind. */
	unlink(cert);
	unlink(key);
	*strrchr(cert, '/') = '\0';
	rmdir(cert);
	/* Renegotiation requests must reach the server (which refuses them). */
	SSL_CTX_clear_options(client_ctx, SSL_OP_NO_RENEGOTIATION);
	return 0;
}

/* ------------------------------------------------------------ one input */

struct input {
	const uint8_t *p;
	size_t left;
};

static int take(struct input *in)
{
	if (in->left == 0)
		return -1;
	in->left--;
	return *in->p++;
}

static size_t take_bytes(struct input *in, size_t want, const uint8_t **out)
{
	if (want > in->left)
		want = in->left;
	*out = in->p;
	in->p += want;
	in->left -= want;
	return want;
}

struct fconn {
	struct tcp_connection *c;
	int sv[2];         /* [0]: the module's socket, [1]: the peer's */
	int dead;          /* the core would have closed it */
	int eof;           /* RD_CONN_EOF seen */
	/* session mode */
	SSL *cli;
	BIO *cli_in, *cli_out; /* what the client reads / writes */
	unsigned char *plain;  /* every application byte the client wrote */
	size_t plain_len, plain_size;
	size_t delivered;      /* bytes the read hook put into the buffer */
	int tampered;          /* bytes outside the client's records sent */
};

static void fconn_open(struct fconn *f, unsigned int bsize)
{
	struct tcp_connection *c;
	int sz = 1 << 20;

	memset(f, 0, sizeof(*f));
	require(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv) == 0);
	require(fcntl(f->sv[0], F_SETFL, O_NONBLOCK) == 0);
	require(fcntl(f->sv[1], F_SETFL, O_NONBLOCK) == 0);
	setsockopt(f->sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(f->sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	c = calloc(1, sizeof(*c));
	require(c != NULL);
	c->s = f->sv[0];
	c->fd = f->sv[0];
	lock_init(&c->write_lock);
	c->id = 1;
	c->state = S_CONN_ACCEPT;
	c->type = PROTO_TLS;
	c->rcv.proto = PROTO_TLS;
	c->rcv.src_ip.af = AF_INET;
	c->rcv.src_ip.len = 4;
	inet_pton(AF_INET, "127.0.0.2", c->rcv.src_ip.u.addr);
	c->rcv.src_port = 40000;
	c->rcv.dst_ip.af = AF_INET;
	c->rcv.dst_ip.len = 4;
	inet_pton(AF_INET, "127.0.0.1", c->rcv.dst_ip.u.addr);
	c->rcv.dst_port = 5061;
	atomic_set(&c->refcnt, 1);
	/* The core allocates b_size + 1 (room for a terminating 0). */
	c->req.buf = malloc(bsize + 1);
	require(c->req.buf != NULL);
	c->req.b_size = bsize;
	c->req.pos = c->req.start = c->req.parsed = c->req.buf;
	f->c = c;
	require(tls_h_tcpconn_init(c, c->s) == 0);
	require(c->extra_data != NULL);
}

/* Hands the client what the module sent (read hook sends, and anything
 * written to the socket, e.g. close_notify), then lets it read. */
static void client_feed(struct fconn *f, const void *data, size_t len)
{
	if (f->cli && len)
		require(BIO_write(f->cli_in, data, (int)len) == (int)len);
}

static void drain_to_client(struct fconn *f)
{
	unsigned char buf[16384];
	ssize_t n;

	client_feed(f, sent_buf, sent_len);
	sent_len = 0;
	while ((n = read(f->sv[1], buf, sizeof(buf))) > 0)
		client_feed(f, buf, (size_t)n);
	if (f->cli) {
		/* The client reads whatever arrived (replies, tickets, alerts). */
		int k;
		for (k = 0; k < 64; k++) {
			ERR_clear_error();
			if (SSL_read(f->cli, buf, sizeof(buf)) <= 0)
				break;
		}
		ERR_clear_error();
	}
}

/* The core consumes complete messages: everything up to the last empty
 * line; the rest stays for the next read. */
static void core_consume(struct tcp_connection *c)
{
	struct tcp_req *r = &c->req;
	char *p, *end = NULL;
	size_t keep;

	for (p = r->buf; p + 4 <= r->pos; p++)
		if (p[0] == '\r' && p[1] == '\n' && p[2] == '\r' && p[3] == '\n')
			end = p + 4;
	if (end == NULL)
		return;
	keep = (size_t)(r->pos - end);
	memmove(r->buf, end, keep);
	r->pos = r->buf + keep;
	r->start = r->parsed = r->buf;
}

/* One readiness event of the connection in a TCP reader: the read hook
 * until it has nothing more, as the core loops on it. */
static void reader_event(struct fconn *f)
{
	struct tcp_connection *c = f->c;
	int k, n, room;
	char *before;

	if (f->dead)
		return;
	for (k = 0; k < 100000; k++) {
		rd_conn_flags_t flags = 0;

		room = (int)c->req.b_size - (int)(c->req.pos - c->req.buf);
		before = c->req.pos;
		n = tls_h_read(c, &flags);
		require(n >= -1);
		/* A local fault: nothing a peer does may cause one here. */
		require(n != -1);
		require(n <= (room > 0 ? room : 0));
		require(c->req.pos == before + n);
		if (n > 0 && f->cli && !f->tampered) {
			/* Exactly the next bytes the client sent. */
			require(f->delivered + (size_t)n <= f->plain_len);
			require(memcmp(before, f->plain + f->delivered, (size_t)n) == 0);
		}
		if (n > 0)
			f->delivered += (size_t)n;
		if (c->state == S_CONN_BAD) {
			/* A send failed: TCP main closes the connection. */
			f->dead = 1;
			break;
		}
		core_consume(c);
		if (flags & RD_CONN_EOF) {
			require(c->state == S_CONN_EOF);
			f->eof = f->dead = 1;
			break;
		}
		if (flags & RD_CONN_REPEAT_READ)
			continue;
		if (n == 0 || (flags & RD_CONN_SHORT_READ))
			break;
	}
	drain_to_client(f);
}

/* Writes bytes toward the module; when the socket is full, the reader
 * takes some first (bounded: the socket buffer is 1 MB). */
static void peer_write(struct fconn *f, const void *data, size_t len)
{
	const unsigned char *p = data;
	ssize_t n;
	int stuck = 0;

	while (len > 0 && stuck < 4) {
		n = write(f->sv[1], p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			stuck = 0;
			continue;
		}
		if (f->dead || (n < 0 && errno == EPIPE))
			return; /* nobody reads any more, or this side already shut its
					   write direction (after the client's close) */
		require(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
		reader_event(f);
		stuck++;
	}
}

static void client_flush(struct fconn *f)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(f->cli_out, buf, sizeof(buf))) > 0)
		peer_write(f, buf, (size_t)n);
}

static void fconn_close(struct fconn *f)
{
	struct tcp_connection *c = f->c;

	/* TCP main: close hook, then the socket is closed and, once nobody
	 * holds the connection, the clean hook frees the TLS state. */
	tls_h_tcpconn_close(c, f->sv[0]);
	if (f->cli)
		drain_to_client(f);
	close(f->sv[0]);
	close(f->sv[1]);
	tls_h_tcpconn_clean(c);
	require(c->extra_data == NULL);
	free(c->req.buf);
	free(c);
	if (f->cli)
		SSL_free(f->cli); /* frees both memory BIOs */
	free(f->plain);
	sent_len = 0;
	send_fail_armed = 0;
}

/* Raw mode: the input is the client's first flight. */
static void run_raw(struct fconn *f, struct input *in, int piece_sel)
{
	static const size_t pieces[] = {0, 1, 7, 100};
	size_t piece = pieces[piece_sel];
	const uint8_t *data;
	size_t n;

	while (in->left && !f->dead) {
		n = take_bytes(in, piece ? piece : in->left, &data);
		peer_write(f, data, n);
		reader_event(f);
	}
	sent_len = 0;
}

static void client_write(struct fconn *f, const uint8_t *data, size_t len)
{
	int n;

	if (len == 0 || f->dead)
		return;
	ERR_clear_error();
	n = SSL_write(f->cli, data, (int)len);
	ERR_clear_error();
	if (n <= 0)
		return;
	if (f->plain_len + (size_t)n > f->plain_size) {
		f->plain_size = (f->plain_len + (size_t)n) * 2 + 1024;
		f->plain = realloc(f->plain, f->plain_size);
		require(f->plain != NULL);
	}
	memcpy(f->plain + f->plain_len, data, (size_t)n);
	f->plain_len += (size_t)n;
	client_flush(f);
}

/* The module's encode hook, as a worker sending a reply of len bytes; the
 * core sends what it returns and calls it again for the rest. */
static void server_send(struct fconn *f, size_t len)
{
	static char reply[65536];
	const char *buf = reply, *rest;
	unsigned int plen, rest_len;
	snd_flags_t flags;
	int k, n;

	if (f->dead)
		return;
	memset(reply, 'r', len);
	if (len >= 2) {
		reply[len - 2] = '\r';
		reply[len - 1] = '\n';
	}
	plen = (unsigned int)len;
	for (k = 0; k < 64 && plen > 0; k++) {
		memset(&flags, 0, sizeof(flags));
		lock_get(&f->c->write_lock); /* the core holds it around encode */
		n = tls_h_encode(f->c, &buf, &plen, &rest, &rest_len, &flags);
		if (n > 0)
			client_feed(f, buf, (size_t)n);
		lock_release(&f->c->write_lock);
		if (n < 0)
			break;
		require(rest_len == 0 || rest != NULL);
		buf = rest;
		plen = rest_len;
	}
	drain_to_client(f);
}

static void run_session(struct fconn *f, struct input *in, int tls12)
{
	struct tls_conn *tc = f->c->extra_data;
	const uint8_t *data;
	int k, op, a, b;
	size_t len;

	f->cli = SSL_new(client_ctx);
	require(f->cli != NULL);
	f->cli_in = BIO_new(BIO_s_mem());
	f->cli_out = BIO_new(BIO_s_mem());
	require(f->cli_in && f->cli_out);
	BIO_set_mem_eof_return(f->cli_in, -1);
	SSL_set_bio(f->cli, f->cli_in, f->cli_out);
	SSL_set_connect_state(f->cli);
	SSL_set_tlsext_host_name(f->cli, "localhost");
	if (tls12)
		SSL_set_max_proto_version(f->cli, TLS1_2_VERSION);

	/* The handshake, with the module as the server. */
	for (k = 0; k < 32; k++) {
		int done;

		ERR_clear_error();
		done = SSL_do_handshake(f->cli) == 1;
		ERR_clear_error();
		client_flush(f);
		reader_event(f);
		if (done && (tc->flags & TLS_CONN_ESTABLISHED))
			break;
		require(!f->dead);
	}
	require(SSL_is_init_finished(f->cli));
	require(tc->flags & TLS_CONN_ESTABLISHED);
	require(logs_at_or_above(L_INFO) == 0);

	while (in->left && !f->dead) {
		op = take(in);
		switch (op & 7) {
			case 0:
			case 1:
			case 2: /* one application-data record */
				a = take(in);
				if (a < 0)
					break;
				len = (size_t)a + 1;
				if (op & 8) {
					b = take(in);
					len = ((size_t)a << 8 | (size_t)(b < 0 ? 0 : b)) % 16384
						+ 1;
				}
				len = take_bytes(in, len, &data);
				client_write(f, data, len);
				break;
			case 3: /* the socket is readable */
				reader_event(f);
				break;
			case 4: /* bytes outside any record of the client */
				a = take(in);
				len = take_bytes(in, a < 0 ? 0 : (size_t)a + 1, &data);
				f->tampered = 1;
				peer_write(f, data, len);
				break;
			case 5: /* a reply sent by a worker */
				a = take(in);
				server_send(f, (size_t)(a < 0 ? 0 : a) * 128 + 1);
				break;
			case 6:
				switch ((op >> 3) & 3) {
					case 0:
						ERR_clear_error();
						if (SSL_version(f->cli) >= TLS1_3_VERSION)
							SSL_key_update(f->cli, SSL_KEY_UPDATE_REQUESTED);
						else
							SSL_renegotiate(f->cli);
						SSL_do_handshake(f->cli);
						ERR_clear_error();
						client_flush(f);
						break;
					case 1: /* client close_notify */
						ERR_clear_error();
						SSL_shutdown(f->cli);
						ERR_clear_error();
						client_flush(f);
						break;
					case 2: /* the peer resets while we send */
						send_fail_armed = 1;
						break;
					default: /* the peer half-closes */
						shutdown(f->sv[1], SHUT_WR);
						reader_event(f);
						break;
				}
				break;
			default: /* the core closes the connection (idle, tls.kill) */
				f->dead = 1;
				break;
		}
	}
	/* The last bytes arrive; then everything sent must have been
	 * delivered, unless the connection ended or the stream was tampered
	 * with. */
	reader_event(f);
	if (!f->dead && !f->tampered) {
		reader_event(f);
		if (!f->dead)
			require(f->delivered == f->plain_len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned int bsizes[] = {65535, 4096, 512, 64};
	struct input in = {data, size};
	struct fconn f;
	long live_before = shm_live;
	int mode;

	if (size == 0)
		return 0;
	mode = take(&in);
	memset(log_count, 0, sizeof(log_count));
	ERR_clear_error();
	fconn_open(&f, bsizes[(mode >> 2) & 3]);
	if (mode & 1)
		run_session(&f, &in, mode & 2);
	else
		run_raw(&f, &in, (mode >> 1) & 3);
	if (log_echo)
		fprintf(stderr, "[fuzz_read] %s mode: %zu of %zu bytes delivered,"
				" connection %s before the peer's EOF\n",
				f.cli ? "session" : "raw", f.delivered, f.plain_len,
				f.dead ? "closed" : "up");
	/* The peer goes away: EOF, then the core closes. */
	if (!f.dead) {
		shutdown(f.sv[1], SHUT_WR);
		reader_event(&f);
	}
	fconn_close(&f);

	/* Peer-caused: never an error; at most one line for the connection. */
	if (logs_at_or_above(L_ERR) != 0 || logs_at_or_above(L_INFO) > 1) {
		fprintf(stderr, "fuzz_read: %d line(s) at ERROR or worse, %d at"
				" INFO or above (run with FUZZ_LOG=1 to see them)\n",
				logs_at_or_above(L_ERR), logs_at_or_above(L_INFO));
		abort();
	}
	require(shm_live == live_before);
	return 0;
}
