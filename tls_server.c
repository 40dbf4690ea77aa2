/*
 * tls_server.c: TLS on the core's TCP connections.
 *
 * The core owns the sockets and the write queues; this file turns bytes into
 * TLS records and back through a BIO of its own:
 *  - reading: the BIO reads the connection's socket directly, so undecrypted
 *    bytes only ever sit in OpenSSL's own record buffer (released when idle);
 *  - writing: the BIO appends records to a per-process output buffer. In the
 *    encode hook that buffer is handed to the core, which sends or queues it;
 *    in the read and close hooks (handshake flights, alerts, tickets,
 *    close_notify) it is sent by us, with the core's locked send.
 * The BIO finds the current operation through a struct tls_io that lives on
 * the stack of the process doing it, attached for the duration of one call
 * while the connection's write_lock is held.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/dprint.h"
#include "core/locking.h"
#include "core/mem/shm_mem.h"
#include "core/tcp_int_send.h"
#include "core/timer.h"
#include "core/timer_ticks.h"
#include "core/tcp_init.h"
#include "core/dst_blocklist.h"
#include "core/xavp.h"
#include "core/tcp_server.h"
#include "core/tcp_options.h"
#include "core/cfg/cfg.h"
#include "core/action.h"
#include "core/fmsg.h"
#include "core/route.h"

#include "tls_mem.h"
#include "tls_compat.h"
#include "tls_locking.h"
#include "tls_mod.h"
#include "tls_server.h"
#include "tls_util.h"
#include "tls_verify.h"

/* One TLS record of the largest plaintext, with the largest expansion any
 * TLS 1.2/1.3 AEAD suite adds: the room a write needs to make progress. */
#define TLS_MAX_PLAIN 16384
#define TLS_RECORD_ROOM (TLS_MAX_PLAIN + 512)
#define TLS_OUT_SIZE (4 * TLS_RECORD_ROOM)
/* Cleartext the core may queue on a connection whose handshake is not done
 * yet; past this the send fails instead of growing shared memory. */
#define TLS_PENDING_MAX (512 * 1024)

struct tls_pending {
	struct tls_pending *next;
	unsigned int len;
	char data[];
};

/* The operation in progress on a connection, in the calling process. */
struct tls_io {
	struct tcp_connection *c;
	int fd;                    /* socket to read from; -1: no reading */
	rd_conn_flags_t *rd_flags; /* the core's read flags (read hook) */
	int direct;                /* send the output ourselves when full */
	int send_failed;           /* the core failed to send: it closes */
	int peer_gone;             /* EPIPE/ECONNRESET: end as EOF */
	unsigned int out_len;
	char *out;
};

/* Per process: never shared, so no lock; only used under a connection's
 * write_lock and handed to the core before the lock is released. */
static char tls_out_buf[TLS_OUT_SIZE];
static BIO_METHOD *tls_bio_method;
/* SSL ex_data slot holding the struct tls_conn (same in every process:
 * allocated before fork). */
static int tls_conn_idx = -1;
/* Why the identity check of the handshake in progress failed, for its one
 * log line; per process, reset before each handshake step. */
static char tls_verify_detail[768];

/*
 * Low shared memory (the 2007 module's thresholds, in bytes here): OpenSSL
 * copes badly with failing allocations, so new connections are refused
 * below threshold 1 and established ones stop below threshold 2, before
 * memory actually runs out. One line when a threshold is crossed and one
 * when memory is back, never one per connection.
 */
static unsigned long tls_low_mem1, tls_low_mem2;
/* used only before the shared state exists */
static int tls_low_mem_logged_local[2];

void tls_server_set_low_mem(unsigned long t1, unsigned long t2)
{
	tls_low_mem1 = t1;
	tls_low_mem2 = t2;
}

/* 1 when free shared memory is below threshold `which` (1 or 2). */
static int tls_low_mem(int which)
{
	unsigned long limit = which == 1 ? tls_low_mem1 : tls_low_mem2;
	unsigned long avail;
	/* one flag for all processes: one line per crossing, not per process */
	int *logged = tls_shared ? &tls_shared->low_mem_logged[which - 1]
							 : &tls_low_mem_logged_local[which - 1];

	if (limit == 0)
		return 0;
	avail = shm_available();
	if (avail < limit) {
		if (!__atomic_exchange_n(logged, 1, __ATOMIC_RELAXED)) {
			LM_WARN("free shared memory %lu KB below low_mem_threshold%d"
					" (%lu KB): %s\n", avail / 1024, which, limit / 1024,
					which == 1 ? "refusing new TLS connections"
							   : "closing TLS connections that need memory");
		}
		return 1;
	}
	if (__atomic_load_n(logged, __ATOMIC_RELAXED)
			&& __atomic_exchange_n(logged, 0, __ATOMIC_RELAXED)) {
		LM_NOTICE("free shared memory back above low_mem_threshold%d\n",
				which);
	}
	return 0;
}

static void tls_io_start(struct tls_io *io, struct tcp_connection *c,
		struct tls_conn *tc, int fd, rd_conn_flags_t *rd_flags, int direct)
{
	memset(io, 0, sizeof(*io));
	io->c = c;
	io->fd = fd;
	io->rd_flags = rd_flags;
	io->direct = direct;
	io->out = tls_out_buf;
	BIO_set_data(SSL_get_rbio(tc->ssl), io);
}

static void tls_io_end(struct tls_conn *tc)
{
	BIO_set_data(SSL_get_rbio(tc->ssl), NULL);
}

/* Sends what the BIO has collected (handshake flights, tickets, alerts,
 * close_notify); only in the read hook, where the caller holds the lock.
 * Straight to the socket when nothing is queued before it, so that a peer
 * that has already gone (a client that closes right after its Finished,
 * before our session ticket) ends quietly as EOF instead of a send error;
 * what the socket does not take, or anything behind a queue, goes through
 * the core, which queues it in order. */
static int tls_io_flush(struct tls_io *io)
{
	unsigned int off = 0;
	ssize_t n;

	if (io->send_failed)
		return -1;
	if (io->out_len == 0)
		return 0;
	if (io->c->wbuf_q.first == NULL) {
		do {
			n = send(io->fd, io->out, io->out_len,
					MSG_DONTWAIT | MSG_NOSIGNAL);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			io->out_len = 0;
			io->peer_gone = 1;
			return -1;
		}
		off = n > 0 ? (unsigned int)n : 0;
	}
	if (off < io->out_len
			&& tcpconn_send_unsafe(io->fd, io->c, io->out + off,
					   io->out_len - off, io->c->send_flags)
					< 0)
		io->send_failed = 1;
	io->out_len = 0;
	return io->send_failed ? -1 : 0;
}

static int tls_bio_write(BIO *b, const char *data, int len)
{
	struct tls_io *io = BIO_get_data(b);
	unsigned int room;

	BIO_clear_retry_flags(b);
	if (io == NULL || len < 0)
		return -1;
	if (io->out_len == TLS_OUT_SIZE && io->direct && tls_io_flush(io) < 0)
		return -1;
	room = TLS_OUT_SIZE - io->out_len;
	if (room == 0) {
		BIO_set_retry_write(b);
		return -1;
	}
	if ((unsigned int)len > room)
		len = (int)room;
	memcpy(io->out + io->out_len, data, (size_t)len);
	io->out_len += (unsigned int)len;
	return len;
}

/* Reads the socket like the core's own TCP read does (same connection state
 * and flags), but reports a reset through the result, not through an error
 * line: a peer that resets costs its own connection and nothing else. */
static int tls_bio_read(BIO *b, char *buf, int len)
{
	struct tls_io *io = BIO_get_data(b);
	struct tcp_connection *c;
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (io == NULL || len <= 0)
		return -1;
	if (io->fd < 0) { /* encode hook: never reads, the reader does */
		BIO_set_retry_read(b);
		return -1;
	}
	c = io->c;
	do {
		n = read(io->fd, buf, (size_t)len);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			*io->rd_flags |= RD_CONN_SHORT_READ;
			BIO_set_retry_read(b);
			return -1;
		}
		if (errno == ECONNRESET)
			c->event = TCP_CLOSED_RESET;
		else if (errno == ETIMEDOUT)
			c->event = TCP_CLOSED_TIMEOUT;
		return -1;
	}
	if (n == 0 || (n < len && (*io->rd_flags & RD_CONN_FORCE_EOF))) {
		c->state = S_CONN_EOF;
		c->event = TCP_CLOSED_EOF;
		*io->rd_flags |= RD_CONN_EOF | RD_CONN_SHORT_READ;
		return (int)n;
	}
	if (n < len)
		*io->rd_flags |= RD_CONN_SHORT_READ;
	if (c->state == S_CONN_ACCEPT || c->state == S_CONN_CONNECT)
		c->state = S_CONN_OK;
	return (int)n;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	switch (cmd) {
		case BIO_CTRL_FLUSH:
			return 1; /* sent by the caller of the SSL_* function */
		default:
			return 0;
	}
}

static int tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	BIO_set_data(b, NULL);
	return 1;
}

/* The domain a ClientHello asks for: the one named by its SNI, or for a
 * client without SNI the domain marked for it; NULL: the one chosen at
 * accept (listening address, else default) stays. */
static struct tls_domain *tls_sni_domain(struct tls_conn *tc,
		const char *name)
{
	return name ? tls_domain_by_name(tc->set, TLS_ROLE_SERVER, name)
				: tls_domain_sni_default(tc->set);
}

/* Server side, first thing on a ClientHello, before OpenSSL picks the
 * protocol version: the versions of the domain the client asks for
 * (tls_method). The rest of the domain follows in tls_sni_cb, once OpenSSL
 * has parsed the extensions. A malformed server_name extension is left to
 * OpenSSL, which refuses it. */
static int tls_hello_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_conn *tc = SSL_get_ex_data(ssl, tls_conn_idx);
	const unsigned char *p;
	size_t len, n;
	char name[TLSEXT_MAXLEN_host_name + 1];
	const char *asked = NULL;
	struct tls_domain *d;

	if (tc == NULL)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len)) {
		/* ServerNameList (RFC 6066 3): length, then type, length, name */
		if (len < 5 || ((size_t)p[0] << 8 | p[1]) != len - 2
				|| p[2] != TLSEXT_NAMETYPE_host_name)
			return SSL_CLIENT_HELLO_SUCCESS;
		n = (size_t)p[3] << 8 | p[4];
		if (n == 0 || n > len - 5 || n >= sizeof(name)
				|| memchr(p + 5, 0, n) != NULL)
			return SSL_CLIENT_HELLO_SUCCESS;
		memcpy(name, p + 5, n);
		name[n] = '\0';
		asked = name;
	}
	d = tls_sni_domain(tc, asked);
	if (d == NULL || d == tc->dom)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (!SSL_set_min_proto_version(ssl, d->min_version)
			|| !SSL_set_max_proto_version(ssl, d->max_version)) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Server side, while the ClientHello is processed: the domain the client
 * asks for (tls_sni_domain) takes over the connection: certificate,
 * ciphers, client-certificate policy. Its versions were set by
 * tls_hello_cb. */
static int tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_conn *tc = SSL_get_ex_data(ssl, tls_conn_idx);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	struct tls_domain *d;

	if (tc == NULL)
		return SSL_TLSEXT_ERR_OK;
	d = tls_sni_domain(tc, name);
	if (d == NULL || d == tc->dom)
		return SSL_TLSEXT_ERR_OK;
	if (SSL_set_SSL_CTX(ssl, d->ctx) != d->ctx) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	/* SSL_set_SSL_CTX() takes the certificate; the client-certificate
	 * policy must follow too. */
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(d->ctx),
			SSL_CTX_get_verify_callback(d->ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(d->ctx));
	SSL_set_client_CA_list(ssl,
			SSL_dup_CA_list(SSL_CTX_get_client_CA_list(d->ctx)));
	tc->dom = d;
	return SSL_TLSEXT_ERR_OK;
}

int tls_server_init(void)
{
	tls_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
			"kamailio tls connection");
	if (tls_bio_method == NULL
			|| !BIO_meth_set_write(tls_bio_method, tls_bio_write)
			|| !BIO_meth_set_read(tls_bio_method, tls_bio_read)
			|| !BIO_meth_set_ctrl(tls_bio_method, tls_bio_ctrl)
			|| !BIO_meth_set_create(tls_bio_method, tls_bio_create)) {
		LM_ERR("cannot create the connection BIO method\n");
		return -1;
	}
	tls_domain_servername_cb = tls_sni_cb;
	tls_domain_client_hello_cb = tls_hello_cb;
	tls_conn_idx = SSL_get_ex_new_index(0, "tls_conn", NULL, NULL, NULL);
	if (tls_conn_idx < 0) {
		LM_ERR("cannot allocate an SSL ex_data index\n");
		return -1;
	}
	return 0;
}

void tls_server_destroy(void)
{
	BIO_meth_free(tls_bio_method);
	tls_bio_method = NULL;
}

/* Logs why a connection failed, as one line with the peer, at the level the
 * cause deserves: tls_log for what the peer did, ERROR for our own faults. */
static void tls_conn_log(struct tcp_connection *c, struct tls_conn *tc,
		enum tls_result res, const char *what)
{
	char peer[64], why[512], verify[160] = "";
	const char *reason;
	long vr;
	int level = res == TLS_IO_LOCAL_ERROR ? L_ERR : tls_params.log;

	tls_err_drain(why, sizeof(why));
	vr = SSL_get_verify_result(tc->ssl);
	if (tls_verify_detail[0])
		reason = tls_verify_detail;
	else if (res == TLS_IO_EOF)
		reason = "peer closed the connection";
	else if (res == TLS_IO_CLOSED)
		reason = "peer sent close_notify";
	else
		reason = *why ? why : "error";
	if (vr != X509_V_OK && !tls_verify_detail[0])
		tls_fmt(verify, sizeof(verify), " (certificate: %s)",
				X509_verify_cert_error_string(vr));
	LOG(level, "%s (conn %d): %s: %s%s\n",
			tls_conn_peer(c, peer, sizeof(peer)), c->id, what, reason, verify);
}

/* Verification callback of outbound connections: after OpenSSL has checked
 * the chain, the peer certificate must also carry the expected identity
 * (RFC 5922 7). A mismatch fails the handshake with OpenSSL's alert for it. */
static int tls_verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store,
			SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = ssl ? SSL_get_ex_data(ssl, tls_conn_idx) : NULL;
	char have[512];

	if (!ok || tc == NULL || tc->server_name == NULL || !tc->dom->verify
			|| X509_STORE_CTX_get_error_depth(store) != 0)
		return ok;
	if (tls_verify_identity(X509_STORE_CTX_get_current_cert(store),
				tc->server_name, tc->dom->verify_wildcard, have,
				sizeof(have)))
		return 1;
	tls_fmt(tls_verify_detail, sizeof(tls_verify_detail),
			"certificate name mismatch: expected %s, certificate has %s",
			tc->server_name, have);
	X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
	return 0;
}

/* Marks the connection dead for any later read or write. A peer-caused end
 * is reported to the core as EOF (closed quietly); only our own faults are
 * errors, which the core logs too. */
static int tls_conn_fail(struct tcp_connection *c, struct tls_conn *tc,
		rd_conn_flags_t *flags, enum tls_result res, const char *what)
{
	tls_conn_log(c, tc, res, what);
	tc->flags |= TLS_CONN_FAILED;
	if (res == TLS_IO_LOCAL_ERROR || flags == NULL)
		return -1;
	c->state = S_CONN_EOF;
	*flags |= RD_CONN_EOF;
	return 0;
}

static void tls_pending_free(struct tls_conn *tc)
{
	struct tls_pending *p;

	while ((p = tc->pending) != NULL) {
		tc->pending = p->next;
		shm_free(p);
	}
	tc->pending_len = 0;
}

static int tls_pending_add(struct tls_conn *tc, const char *buf,
		unsigned int len)
{
	struct tls_pending *p, **last;

	if (len == 0)
		return 0;
	if (tc->pending_len + len > TLS_PENDING_MAX) {
		LM_WARN("more than %u bytes queued before the TLS handshake"
				" completed: send refused\n", TLS_PENDING_MAX);
		return -1;
	}
	p = shm_malloc(sizeof(*p) + len);
	if (p == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	p->next = NULL;
	p->len = len;
	memcpy(p->data, buf, len);
	for (last = &tc->pending; *last; last = &(*last)->next)
		;
	*last = p;
	tc->pending_len += len;
	return 0;
}

/* Encrypts buf into the output until it is consumed or the output has no
 * room for another record. Returns bytes consumed, or -1. */
static int tls_conn_write(struct tcp_connection *c, struct tls_conn *tc,
		struct tls_io *io, const char *buf, unsigned int len)
{
	unsigned int done = 0;
	enum tls_result res;
	int n;

	while (done < len && (io->direct
				|| TLS_OUT_SIZE - io->out_len >= TLS_RECORD_ROOM)) {
		tls_err_clear();
		n = SSL_write(tc->ssl, buf + done,
				len - done > TLS_MAX_PLAIN ? TLS_MAX_PLAIN : (int)(len - done));
		if (n > 0) {
			done += (unsigned int)n;
			continue;
		}
		res = tls_io_classify(tc->ssl, n);
		if (res == TLS_IO_WANT_WRITE)
			break;
		if (res == TLS_IO_WANT_READ && !io->direct)
			break;
		tls_conn_fail(c, tc, NULL, res, "SSL_write");
		return -1;
	}
	return (int)done;
}

/* After the handshake: sends what was queued while it ran, in order. */
static int tls_conn_send_pending(struct tcp_connection *c,
		struct tls_conn *tc, struct tls_io *io)
{
	struct tls_pending *p;
	int n;

	while ((p = tc->pending) != NULL) {
		n = tls_conn_write(c, tc, io, p->data, p->len);
		if (n < 0 || (unsigned int)n != p->len)
			return -1;
		tc->pending = p->next;
		tc->pending_len -= p->len;
		shm_free(p);
	}
	return 0;
}

/* One handshake step. 1: established; 0: waiting for the peer; <0 failed
 * (the connection is marked failed and, in the read hook, set to EOF). */
static int tls_conn_handshake(struct tcp_connection *c, struct tls_conn *tc,
		struct tls_io *io, rd_conn_flags_t *flags)
{
	enum tls_result res;
	int n;

	tc->flags |= TLS_CONN_STARTED;
	tls_verify_detail[0] = '\0';
	tls_err_clear();
	n = SSL_do_handshake(tc->ssl);
	if (n == 1) {
		tc->flags |= TLS_CONN_ESTABLISHED;
		/* From now on the idle lifetime applies, no longer the handshake
		 * timeout (see tls_h_tcpconn_init). */
		c->lifetime = tls_params.connection_timeout < 0 ? MAX_TCP_CON_LIFETIME
				: S_TO_TICKS(tls_params.connection_timeout);
		tls_stats_handshake(1);
		LM_DBG("%s (conn %d): %s %s established\n",
				tc->dom->role == TLS_ROLE_SERVER ? "accepted" : "connected",
				c->id, SSL_get_version(tc->ssl),
				SSL_get_cipher_name(tc->ssl));
		return 1;
	}
	res = tls_io_classify(tc->ssl, n);
	if (res == TLS_IO_WANT_READ || res == TLS_IO_WANT_WRITE)
		return 0;
	tls_stats_handshake(0);
	if (tc->dom->role == TLS_ROLE_CLIENT)
		/* As for a failed TCP connect: a forward to this destination fails
		 * at once while it is blocklisted (use_dst_blocklist). */
		dst_blocklist_su(BLST_ERR_CONNECT, c->rcv.proto, &c->rcv.src_su,
				&c->send_flags, 0);
	n = tls_conn_fail(c, tc, flags, res, "TLS handshake");
	return n < 0 ? -2 : -1;
}

/* Decrypts into the core's request buffer. Returns bytes added, 0 with
 * RD_CONN_EOF for an orderly or peer-caused end, -1 on our own error. */
static int tls_conn_read(struct tcp_connection *c, struct tls_conn *tc,
		struct tls_io *io, rd_conn_flags_t *flags, char *buf, int room)
{
	enum tls_result res;
	int total = 0, n;

	if (!(tc->flags & TLS_CONN_ESTABLISHED)) {
		/* A peer that trickles its handshake keeps the reader busy, not
		 * idle: its deadline is checked here too. */
		if (TICKS_GT(get_ticks_raw(), tc->started
					+ S_TO_TICKS(tls_params.handshake_timeout))) {
			char peer[64];
			LOG(tls_params.log, "%s (conn %d): TLS handshake not completed"
					" within handshake_timeout (%d s): closing\n",
					tls_conn_peer(c, peer, sizeof(peer)), c->id,
					tls_params.handshake_timeout);
			/* KILL too: the timer must not report it a second time. */
			tc->flags |= TLS_CONN_FAILED | TLS_CONN_KILL;
			c->state = S_CONN_EOF;
			*flags |= RD_CONN_EOF;
			return 0;
		}
		n = tls_conn_handshake(c, tc, io, flags);
		if (n <= 0)
			return n == -2 ? -1 : 0;
	}
	if (tc->pending && tls_conn_send_pending(c, tc, io) < 0)
		return -1;
	while (total < room) {
		tls_err_clear();
		n = SSL_read(tc->ssl, buf + total, room - total);
		if (n > 0) {
			total += n;
			/* The socket gave less than asked (drained) and OpenSSL holds
			 * nothing more: stop here rather than pay a read() for its
			 * EAGAIN. The core calls again when more arrives. */
			if ((*flags & RD_CONN_SHORT_READ) && !SSL_has_pending(tc->ssl))
				return total;
			continue;
		}
		res = tls_io_classify(tc->ssl, n);
		switch (res) {
			case TLS_IO_WANT_READ:
				return total;
			case TLS_IO_CLOSED:
				/* Answer the peer's close_notify with ours (RFC 8446 6.1). */
				if (!(tc->flags & TLS_CONN_SHUTDOWN)) {
					tc->flags |= TLS_CONN_SHUTDOWN;
					SSL_shutdown(tc->ssl);
				}
				c->state = S_CONN_EOF;
				*flags |= RD_CONN_EOF;
				return total;
			case TLS_IO_EOF:
				c->state = S_CONN_EOF;
				*flags |= RD_CONN_EOF;
				return total;
			default:
				n = tls_conn_fail(c, tc, flags, res, "SSL_read");
				return n < 0 ? -1 : total;
		}
	}
	/* The request buffer is full: let the core parse it, then call again
	 * (OpenSSL may hold more records, or the socket more bytes). */
	*flags &= ~RD_CONN_SHORT_READ;
	*flags |= RD_CONN_REPEAT_READ;
	return total;
}

int tls_h_read(struct tcp_connection *c, rd_conn_flags_t *flags)
{
	struct tls_conn *tc = c->extra_data;
	struct tcp_req *r = &c->req;
	struct tls_io io;
	int room, n;

	/* The core loops while this flag is set and never clears it. */
	*flags &= ~RD_CONN_REPEAT_READ;
	if (tc == NULL) {
		BUG("TLS connection %d without TLS state\n", c->id);
		return -1;
	}
	room = (int)r->b_size - (int)(r->pos - r->buf);
	if (room <= 0) {
		char peer[64];
		LOG(tls_params.log, "%s (conn %d): message larger than the read"
				" buffer (%u bytes): closing\n",
				tls_conn_peer(c, peer, sizeof(peer)), c->id, r->b_size);
		c->state = S_CONN_EOF;
		*flags |= RD_CONN_EOF;
		return 0;
	}
	lock_get(&c->write_lock);
	if ((tc->flags & TLS_CONN_FAILED) || tls_low_mem(2)) {
		tc->flags |= TLS_CONN_FAILED;
		lock_release(&c->write_lock);
		c->state = S_CONN_EOF;
		*flags |= RD_CONN_EOF;
		return 0;
	}
	tls_io_start(&io, c, tc, c->fd, flags, 1);
	tc->last_io = get_ticks_raw();
	n = tls_conn_read(c, tc, &io, flags, r->pos, room);
	if (tls_io_flush(&io) < 0 && io.peer_gone) {
		/* The peer left while we answered: what it sent is still
		 * delivered, then the connection ends as EOF. */
		tc->flags |= TLS_CONN_FAILED;
		c->state = S_CONN_EOF;
		*flags |= RD_CONN_EOF;
		if (n < 0)
			n = 0;
	} else if (io.send_failed && n > 0) {
		n = 0; /* the core will close it; deliver nothing more */
	}
	tls_io_end(tc);
	lock_release(&c->write_lock);
	if (n > 0)
		r->pos += n;
	return n;
}

/* send_timeout: a peer that has not taken what was queued for it for that
 * long is given up when the next send comes (the core closes it on our
 * error). The core's queue records its deadline from its own
 * tcp_send_timeout; the time it started is derived from that. */
static int tls_send_timed_out(struct tcp_connection *c)
{
	ticks_t started;

	if (c->wbuf_q.first == NULL)
		return 0;
	started = c->wbuf_q.wr_timeout - cfg_get(tcp, tcp_cfg, send_timeout);
	if (TICKS_LT(get_ticks_raw(),
				started + S_TO_TICKS(tls_params.send_timeout)))
		return 0;
	LOG(tls_params.log, "conn %d: peer took nothing for send_timeout (%d s):"
			" closing\n", c->id, tls_params.send_timeout);
	return 1;
}

int tls_h_encode(struct tcp_connection *c, const char **pbuf,
		unsigned int *plen, const char **rest_buf, unsigned int *rest_len,
		snd_flags_t *send_flags)
{
	struct tls_conn *tc = c->extra_data;
	struct tls_io io;
	int n;

	*rest_buf = NULL;
	*rest_len = 0;
	if (tc && (tc->flags & TLS_CONN_KILL)
			&& !(tc->flags & TLS_CONN_ESTABLISHED)) {
		/* Closing a connection without a session (handshake timeout, a
		 * refused one): a plaintext fatal handshake_failure alert, sent
		 * and followed by the close, which the core then does quietly. */
		static const char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40};
		tc->flags |= TLS_CONN_FAILED;
		send_flags->f |= SND_F_CON_CLOSE;
		*pbuf = alert;
		*plen = sizeof(alert);
		return (int)sizeof(alert);
	}
	if (tc == NULL || (tc->flags & TLS_CONN_FAILED) || tls_low_mem(2)
			|| tls_send_timed_out(c))
		return -1;
	tls_io_start(&io, c, tc, -1, NULL, 0);
	tc->last_io = get_ticks_raw();
	if (tc->flags & TLS_CONN_KILL) {
		/* tls.kill: instead of data, our close_notify, then the core
		 * closes the connection after sending it. */
		tc->flags |= TLS_CONN_FAILED | TLS_CONN_SHUTDOWN;
		if (tc->flags & TLS_CONN_ESTABLISHED) {
			tls_err_clear();
			SSL_shutdown(tc->ssl);
			tls_err_clear();
		}
		send_flags->f |= SND_F_CON_CLOSE;
		*pbuf = io.out;
		*plen = io.out_len;
		tls_io_end(tc);
		return (int)io.out_len;
	}
	if (!(tc->flags & TLS_CONN_ESTABLISHED) || tc->pending) {
		/* Handshake running (or just completed with cleartext still queued
		 * ahead of this one): queue, to be sent in order once it is done.
		 * The first call of a client connection produces the ClientHello. */
		if (!(tc->flags & TLS_CONN_STARTED)
				&& tls_conn_handshake(c, tc, &io, NULL) < 0)
			goto fail;
		if (tls_pending_add(tc, *pbuf, *plen) < 0)
			goto fail;
		/* "close after send" would close before the queue is sent. */
		send_flags->f &= ~SND_F_CON_CLOSE;
		*pbuf = io.out;
		*plen = io.out_len;
		tls_io_end(tc);
		return (int)io.out_len;
	}
	n = tls_conn_write(c, tc, &io, *pbuf, *plen);
	if (n < 0)
		goto fail;
	if ((unsigned int)n < *plen && io.out_len == 0) {
		/* No progress (OpenSSL waits for the peer): keep the rest in order
		 * for the reader to send; the core must not see an empty result
		 * with a rest, which it would drop. */
		if (tls_pending_add(tc, *pbuf + n, *plen - (unsigned int)n) < 0)
			goto fail;
	} else if ((unsigned int)n < *plen) {
		*rest_buf = *pbuf + n;
		*rest_len = *plen - (unsigned int)n;
	}
	*pbuf = io.out;
	*plen = io.out_len;
	tls_io_end(tc);
	return (int)io.out_len;

fail:
	tls_io_end(tc);
	return -1;
}

/* event_route[tls:connection-out]: index in the core's event routes, -1
 * when the script has none. While it runs, the message and connection it is
 * about (this process only: the connection is not visible to others yet). */
static int tls_evrt_out = -1;
struct sip_msg *tls_event_msg;
struct tls_conn *tls_event_tc;

int tls_server_event_init(void)
{
	tls_evrt_out = route_lookup(&event_rt, "tls:connection-out");
	if (tls_evrt_out >= 0 && event_rt.rlist[tls_evrt_out] == NULL)
		tls_evrt_out = -1;
	return tls_evrt_out >= 0 ? faked_msg_init() : 0;
}

/* Runs the event route for a new outbound connection, before it is used.
 * In the route $si:$sp is the destination and @tls.server_name /
 * $tls_peer_server_name the name that will be sent. 1: the route dropped
 * it (the core then does not use the connection), 0 otherwise. */
static int tls_run_connection_out(struct tcp_connection *c,
		struct tls_conn *tc)
{
	struct run_act_ctx ra;
	struct sip_msg *fmsg;
	int backup_rt;

	if (tls_evrt_out < 0)
		return 0;
	fmsg = faked_msg_next();
	fmsg->rcv = c->rcv;
	fmsg->rcv.proto = PROTO_TLS;
	backup_rt = get_route_type();
	set_route_type(EVENT_ROUTE);
	init_run_actions_ctx(&ra);
	tls_event_msg = fmsg;
	tls_event_tc = tc;
	run_top_route(event_rt.rlist[tls_evrt_out], fmsg, &ra);
	tls_event_msg = NULL;
	tls_event_tc = NULL;
	set_route_type(backup_rt);
	return (ra.run_flags & DROP_R_F) ? 1 : 0;
}

/* The server name for the next outbound connection, as the routing script
 * set it in $xavp(<xavp_cfg>=>server_name); NULL when it did not. */
static const char *tls_script_server_name(char *buf, size_t size)
{
	str root, name = str_init("server_name");
	sr_xavp_t *x;

	if (tls_params.xavp_cfg == NULL || *tls_params.xavp_cfg == '\0')
		return NULL;
	root.s = tls_params.xavp_cfg;
	root.len = (int)strlen(root.s);
	x = xavp_get_child_with_sval(&root, &name);
	if (x == NULL || x->val.v.s.len <= 0)
		return NULL;
	if ((size_t)x->val.v.s.len >= size) {
		LM_WARN("$xavp(%s=>server_name) longer than %zu: ignored\n",
				root.s, size - 1);
		return NULL;
	}
	memcpy(buf, x->val.v.s.s, (size_t)x->val.v.s.len);
	buf[x->val.v.s.len] = '\0';
	return buf;
}

/* Outbound: the name to send (SNI, never an address) and the identity the
 * server's certificate must carry: the script's name, else the client
 * domain's, else the destination address itself (matched against an
 * iPAddress subjectAltName). */
/* Outbound without a name: the destination address is what the certificate
 * must carry. Said at most once every 10 s per process: the core may
 * reconnect to a peer that left for every reply it has for it. */
static void tls_notice_no_name(struct tcp_connection *c, const char *ip)
{
	static time_t last;
	time_t now = time(NULL);
	char peer[64];

	if (now - last < 10)
		return;
	last = now;
	LM_NOTICE("%s (conn %d): no server name set for this outbound connection:"
			" the certificate must carry IP address %s (set %s%s%s)\n",
			tls_conn_peer(c, peer, sizeof(peer)), c->id, ip,
			tls_params.xavp_cfg ? "$xavp(" : "client_server_name, or xavp_cfg"
										   " and that XAVP's server_name",
			tls_params.xavp_cfg ? tls_params.xavp_cfg : "",
			tls_params.xavp_cfg ? "=>server_name) or client_server_name"
								: "");
}

static int tls_client_setup(struct tcp_connection *c, struct tls_conn *tc,
		const char *name)
{
	char sbuf[TLS_NAME_MAX], peer[64];
	size_t len;
	int n;

	if (name == NULL)
		name = tc->dom->server_name;
	if (name == NULL) {
		n = ip_addr2sbuf(&c->rcv.src_ip, sbuf, sizeof(sbuf) - 1);
		sbuf[n > 0 ? n : 0] = '\0';
		name = sbuf;
		if (tc->dom->verify)
			tls_notice_no_name(c, name);
	} else if (!tls_is_ip_literal(name)
			&& SSL_set_tlsext_host_name(tc->ssl, name) != 1) {
		LM_ERR("cannot set SNI '%s'\n", name);
		return -1;
	}
	if (tls_run_connection_out(c, tc)) {
		LOG(tls_params.log, "%s (conn %d): refused by"
				" event_route[tls:connection-out]\n",
				tls_conn_peer(c, peer, sizeof(peer)), c->id);
		c->flags |= F_CONN_NOSEND;
	}
	/* Kept for the identity check, and for tls.list either way. */
	len = strlen(name) + 1;
	tc->server_name = shm_malloc(len);
	if (tc->server_name == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memcpy(tc->server_name, name, len);
	if (tc->dom->verify)
		SSL_set_verify(tc->ssl, SSL_get_verify_mode(tc->ssl), tls_verify_cb);
	return 0;
}

/* The domain a new connection starts with. Server: the listening address's
 * domain, else the default (SNI may switch it, see tls_sni_cb). Client: the
 * domain named by the script's server name, else the destination's, else
 * the default. */
static const struct tls_domain *tls_conn_domain(struct tcp_connection *c,
		const struct tls_domain_set *set, const char *script_name)
{
	const struct tls_domain *d = NULL;

	if (c->state == S_CONN_ACCEPT) {
		d = tls_domain_by_addr(set, TLS_ROLE_SERVER, c->rcv.dst_ip.af,
				c->rcv.dst_ip.u.addr, c->rcv.dst_port);
		return d ? d : set->server_default;
	}
	if (script_name)
		d = tls_domain_by_name(set, TLS_ROLE_CLIENT, script_name);
	if (d == NULL)
		d = tls_domain_by_addr(set, TLS_ROLE_CLIENT, c->rcv.src_ip.af,
				c->rcv.src_ip.u.addr, c->rcv.src_port);
	return d ? d : set->client_default;
}

static void tls_conn_free(struct tls_conn *tc)
{
	tls_pending_free(tc);
	SSL_free(tc->ssl);
	if (tc->server_name)
		shm_free(tc->server_name);
	tls_domain_set_put(tc->set);
	tls_shm_free(tc);
}

int tls_h_tcpconn_init(struct tcp_connection *c, int sock)
{
	char sbuf[TLS_NAME_MAX];
	const char *script_name = NULL;
	struct tls_conn *tc;
	BIO *bio;

	c->type = PROTO_TLS;
	c->rcv.proto = PROTO_TLS;
	/* Until the handshake completes, the lifetime the core applies to an
	 * idle connection is the handshake timeout. */
	c->timeout = get_ticks_raw() + S_TO_TICKS(tls_params.handshake_timeout);
	c->lifetime = S_TO_TICKS(tls_params.handshake_timeout);
	/* from the slab pages OpenSSL's small blocks come from: no 104 bytes of
	 * the core allocator's bookkeeping per connection (tls_mem.c) */
	tc = tls_shm_alloc(sizeof(*tc));
	if (tc == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(tc, 0, sizeof(*tc));
	tc->c = c;
	tc->started = tc->last_io = get_ticks_raw();
	if (tls_low_mem(1)) {
		/* Accepted by the core, refused by us: the connection exists
		 * without TLS state and ends as EOF on its first read, quietly. */
		tc->flags = TLS_CONN_FAILED;
		c->extra_data = tc;
		tls_conn_list_add(tc);
		return 0;
	}
	tc->set = tls_set_acquire();
	if (tc->set == NULL) {
		LM_ERR("TLS is not configured\n");
		tls_shm_free(tc);
		return -1;
	}
	if (c->state != S_CONN_ACCEPT)
		script_name = tls_script_server_name(sbuf, sizeof(sbuf));
	tc->dom = tls_conn_domain(c, tc->set, script_name);
	tls_err_clear();
	tc->ssl = SSL_new(tc->dom->ctx);
	bio = tc->ssl ? BIO_new(tls_bio_method) : NULL;
	if (bio == NULL) {
		char why[256];
		LM_ERR("cannot create the TLS state of a connection (%s)\n",
				tls_err_drain(why, sizeof(why)));
		tls_conn_free(tc);
		return -1;
	}
	SSL_set_bio(tc->ssl, bio, bio);
	SSL_set_ex_data(tc->ssl, tls_conn_idx, tc);
	if (tc->dom->role == TLS_ROLE_SERVER) {
		SSL_set_accept_state(tc->ssl);
	} else if (tls_client_setup(c, tc, script_name) < 0) {
		tls_conn_free(tc);
		return -1;
	} else {
		SSL_set_connect_state(tc->ssl);
	}
	c->extra_data = tc;
	tls_conn_list_add(tc);
	return 0;
}

/* Called by TCP main just before it closes its socket: sends our
 * close_notify, best effort and without blocking (RFC 8446 6.1). */
void tls_h_tcpconn_close(struct tcp_connection *c, int fd)
{
	struct tls_conn *tc = c->extra_data;
	struct tls_io io;

	if (tc == NULL)
		return;
	lock_get(&c->write_lock);
	if ((tc->flags & (TLS_CONN_ESTABLISHED | TLS_CONN_FAILED
					| TLS_CONN_SHUTDOWN)) == TLS_CONN_ESTABLISHED
			&& c->wbuf_q.first == NULL) {
		tc->flags |= TLS_CONN_SHUTDOWN;
		tls_io_start(&io, c, tc, -1, NULL, 0);
		tls_err_clear();
		SSL_shutdown(tc->ssl);
		tls_err_clear();
		if (io.out_len)
			(void)send(fd, io.out, io.out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		tls_io_end(tc);
	}
	lock_release(&c->write_lock);
}

/* Called once, when the core frees the connection: nobody else holds it. */
void tls_h_tcpconn_clean(struct tcp_connection *c)
{
	struct tls_conn *tc = c->extra_data;

	if (tc == NULL)
		return;
	c->extra_data = NULL;
	tls_conn_list_rm(tc);
	tls_conn_free(tc);
}

int tls_conn_kill(int id)
{
	struct tcp_connection *c = tcpconn_get(id, 0, 0, 0, 0);
	struct tls_conn *tc;
	struct dest_info dst;
	int found = 0;

	if (c == NULL)
		return -1;
	lock_get(&c->write_lock);
	tc = c->type == PROTO_TLS ? c->extra_data : NULL;
	if (tc && !(tc->flags & TLS_CONN_KILL)) {
		tc->flags |= TLS_CONN_KILL;
		found = 1;
	}
	lock_release(&c->write_lock);
	if (found) {
		init_dest_info(&dst);
		dst.proto = PROTO_TLS;
		dst.id = c->id;
		dst.to = c->rcv.src_su;
		dst.send_sock = c->rcv.bind_address;
		dst.send_flags.f |= SND_F_CON_CLOSE;
	}
	tcpconn_put(c);
	/* The core sends what encode makes of it: close_notify then close, or
	 * (no TLS session to close) an error, on which it closes at once. */
	if (found)
		(void)tcp_send(&dst, 0, " ", 1);
	return found ? 0 : -1;
}

/* Run every second by the module's timer process: connections whose
 * handshake has not completed within handshake_timeout are closed. The
 * core keeps a new connection in its main process until the first bytes
 * arrive, with its own (longer) idle lifetime; a client that connects and
 * stays silent is found here. At most TLS_TIMEOUT_BATCH per run. */
#define TLS_TIMEOUT_BATCH 256

void tls_server_timer(void)
{
	static struct {
		int id;
		char peer[64];
	} late[TLS_TIMEOUT_BATCH];
	ticks_t now = get_ticks_raw();
	ticks_t limit = S_TO_TICKS(tls_params.handshake_timeout);
	struct tls_conn *tc;
	int n = 0, i;

	lock_get(&tls_shared->lock);
	for (tc = tls_shared->conns; tc && n < TLS_TIMEOUT_BATCH; tc = tc->next)
		/* flags read without the connection's lock: a candidate only,
		 * tls_conn_kill() decides under the lock. */
		if (!(tc->flags & (TLS_CONN_ESTABLISHED | TLS_CONN_KILL))
				&& TICKS_GT(now, tc->started + limit)) {
			late[n].id = tc->c->id;
			tls_conn_peer(tc->c, late[n].peer, sizeof(late[n].peer));
			n++;
		}
	lock_release(&tls_shared->lock);
	for (i = 0; i < n; i++) {
		LOG(tls_params.log, "%s (conn %d): TLS handshake not completed within"
				" handshake_timeout (%d s): closing\n", late[i].peer,
				late[i].id, tls_params.handshake_timeout);
		tls_conn_kill(late[i].id);
	}
}
