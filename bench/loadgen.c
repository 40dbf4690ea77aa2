/*
 * loadgen: SIP-over-TLS (or plain TCP) load generator for the benchmark.
 *
 * One process, N worker threads, each with its own epoll set and its share
 * of the clients; every socket is non-blocking and every client is a small
 * state machine:
 *
 *   WAIT -> CONNECTING -> HANDSHAKE -> RUN -> CLOSING -> (WAIT | DONE)
 *                                       \-> HOLD (idle mode) -> RUN
 *
 * Modes (see usage()):
 *   new      each client loops: connect, full handshake, OPTIONS, 200, close
 *   resume   same, offering the session of the client's previous connection
 *   persist  connections opened once, OPTIONS pipelined (window W)
 *   idle     N connections set up (handshake + one OPTIONS), held until
 *            SIGUSR1 or the duration, then one more OPTIONS each, then closed
 *
 * Every loop is bounded: by the duration, by a request/cycle count, by a
 * per-operation timeout and by a hard stop after the duration.
 *
 * Output: one "RESULT key=value ..." line and a short human summary.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* ------------------------------------------------------------------ */
/* options                                                             */

enum mode { M_NEW, M_RESUME, M_PERSIST, M_IDLE };
static const char *const mode_names[] = { "new", "resume", "persist", "idle" };

enum ekind { E_CONNECT, E_HANDSHAKE, E_WRITE, E_READ, E_TIMEOUT, E_STATUS, E_NKINDS };
static const char *const ekind_names[] = {
	"connect", "handshake", "write", "read", "timeout", "status"
};

enum state { S_WAIT, S_CONNECTING, S_HANDSHAKE, S_RUN, S_HOLD, S_CLOSING, S_DONE };
static const char *const state_names[] = {
	"wait", "connecting", "handshake", "run", "hold", "closing", "done"
};

#define MAX_WINDOW 128
#define INBUF (64 * 1024)         /* persist: a window of responses */
#define INBUF_ONE (8 * 1024)      /* other modes: one response at a time */
#define REQ_MAX 768
#define MAX_SRC 256
#define BACKOFF_US 10000ULL

static struct {
	const char *host;
	const char *port;
	enum mode mode;
	int conc;
	double duration;
	int tls_ver;            /* 12 or 13 */
	const char *cafile;
	long long count;        /* 0 = no limit */
	int threads;
	int window;
	int plain;
	int ramp;
	int timeout_ms;
	int close_wait_ms;
	const char *sni;
	double setup_timeout;
	const char *label;
	int quiet;
	const char *src;        /* --src: local IPv4 address or range */
	int share_session;      /* --share-session */
} opt = {
	.host = "127.0.0.1", .port = "5061", .mode = M_NEW, .conc = 10,
	.duration = 10.0, .tls_ver = 13, .threads = 1, .window = 8,
	.ramp = 50, .timeout_ms = 5000, .close_wait_ms = 1000,
	.setup_timeout = 120.0,
};

/* ------------------------------------------------------------------ */
/* latency histogram: exact below 128 us, then 64 buckets per octave    */

#define HSUB_BITS 6
#define HSUB (1u << HSUB_BITS)
#define HBUCKETS (HSUB * 48)

struct hist {
	uint64_t b[HBUCKETS];
	uint64_t n;
};

static unsigned h_index(uint64_t v)
{
	if (v < 2 * HSUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HSUB_BITS;
	uint64_t i = (uint64_t)shift * HSUB + (v >> shift);
	return i < HBUCKETS ? (unsigned)i : HBUCKETS - 1;
}

static double h_value(unsigned i)
{
	if (i < 2 * HSUB)
		return i;
	unsigned shift = i / HSUB - 1;
	uint64_t m = i - (uint64_t)shift * HSUB;
	uint64_t lo = m << shift, hi = ((m + 1) << shift) - 1;
	return (lo + hi) / 2.0;
}

static void h_add(struct hist *h, uint64_t us)
{
	h->b[h_index(us)]++;
	h->n++;
}

static void h_merge(struct hist *d, const struct hist *s)
{
	for (unsigned i = 0; i < HBUCKETS; i++)
		d->b[i] += s->b[i];
	d->n += s->n;
}

/* percentile p in [0,1], in milliseconds; -1 if empty */
static double h_pct_ms(const struct hist *h, double p)
{
	if (!h->n)
		return -1;
	uint64_t want = (uint64_t)(p * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < HBUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want)
			return h_value(i) / 1000.0;
	}
	return h_value(HBUCKETS - 1) / 1000.0;
}

/* ------------------------------------------------------------------ */
/* state                                                               */

struct stats {
	uint64_t ok;            /* completed operations (cycles / requests) */
	uint64_t handshakes;
	uint64_t resumed;
	uint64_t requests;      /* 200 responses received */
	uint64_t close_wait_to; /* peer did not answer our close in time */
	uint64_t errors[E_NKINDS];
	uint64_t last_ok_us;
	struct hist lat;
	struct hist hs;
};

struct worker;

struct client {
	struct worker *w;
	int id;
	int fd;
	SSL *ssl;
	enum state st;
	uint32_t ev;            /* registered epoll events */
	int registered;
	int phase;              /* idle mode: 0 setup, 1 final request */
	int shut_sent;
	int req_pending;        /* new/resume/idle: one request still to queue */
	int slot;               /* idle: holds one of the worker's ramp slots */
	uint64_t deadline;      /* of the current operation, 0 = none */
	uint64_t start_at;      /* S_WAIT: when to (re)start */
	uint64_t t0;            /* start of the current cycle */
	uint32_t cycle;
	uint32_t cseq;
	int outstanding;
	SSL_SESSION *sess;
	uint64_t sent_at[MAX_WINDOW];
	uint32_t sent_cseq[MAX_WINDOW];
	unsigned local_port;
	int src;                /* index into src_addr[] (--src) */
	size_t in_len, out_len, out_off;
	char *in;               /* inbuf_size + 1 bytes */
	char *out;              /* outbuf_size bytes */
};

struct worker {
	int idx;
	int epfd;
	int n;
	int active;             /* clients not in S_DONE */
	int inflight;           /* idle mode: setups / final requests under way */
	int ramp;
	int next_start;         /* idle mode: first client not yet started */
	int next_final;         /* idle mode: first client not yet released */
	uint64_t scan_every;    /* us between scans of all clients */
	struct client *cl;
	struct stats s;
	pthread_t th;
};

static SSL_CTX *ctx;
static struct sockaddr_storage srv_addr;
static socklen_t srv_addrlen;
static char via_host[128];
static size_t inbuf_size, outbuf_size;
/* --src: local addresses the connections are spread over, round robin */
static struct sockaddr_in src_addr[MAX_SRC];
static char src_text[MAX_SRC][INET_ADDRSTRLEN];
static int n_src;
/* --share-session: the newest session any connection received */
static SSL_SESSION *shared_sess;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t t_start;
static _Atomic uint64_t stop_at;   /* no new work after this */
static _Atomic uint64_t hard_stop; /* everything is abandoned after this */
static _Atomic long long claimed;
static _Atomic int up_count, setup_failed, released, threads_done;
static _Atomic int details_taken;
/* --share-session: one client (the pilot) goes first, alone, until a
 * session or an answer has come back */
static _Atomic int pilot = -1, pilot_done;
static _Atomic int err_logged[E_NKINDS];
static char details[256] = "proto=none cipher=none group=none";

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static int stopping(uint64_t now)
{
	return now >= atomic_load(&stop_at);
}

static void note_err(struct client *c, enum ekind k, const char *fmt, ...)
{
	c->w->s.errors[k]++;
	if (atomic_fetch_add(&err_logged[k], 1) < 5) {
		char msg[256], ebuf[256] = "";
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		unsigned long e = ERR_peek_last_error();
		if (e)
			ERR_error_string_n(e, ebuf, sizeof ebuf);
		fprintf(stderr, "loadgen: %s error (client %d.%d, %s): %s%s%s\n",
			ekind_names[k], c->w->idx, c->id, state_names[c->st], msg,
			*ebuf ? ": " : "", ebuf);
	}
	ERR_clear_error();
}

static void set_events(struct client *c, uint32_t ev)
{
	if (c->registered && c->ev == ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(c->w->epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0) {
		perror("loadgen: epoll_ctl");
		exit(2);
	}
	c->registered = 1;
	c->ev = ev;
}

/* idle mode: at most --ramp setups (and final requests) under way at once */
static void take_slot(struct client *c)
{
	if (!c->slot) {
		c->slot = 1;
		c->w->inflight++;
	}
}

static void release_slot(struct client *c)
{
	if (c->slot) {
		c->slot = 0;
		c->w->inflight--;
	}
}

static void conn_close(struct client *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		if (c->registered)
			epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->registered = 0;
	c->ev = 0;
	c->in_len = c->out_len = c->out_off = 0;
	c->outstanding = 0;
	c->shut_sent = 0;
	c->req_pending = 0;
	c->deadline = 0;
}

static void set_done(struct client *c)
{
	conn_close(c);
	release_slot(c);
	if (c->st != S_DONE) {
		c->st = S_DONE;
		c->w->active--;
	}
}

static int client_gid(const struct client *c)
{
	return c->w->idx * 1000000 + c->id;
}

/* an operation failed: count it, drop the connection, decide what next */
static void fail(struct client *c, enum ekind k, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	note_err(c, k, "%s", msg);
	if (opt.share_session && !atomic_load(&pilot_done)) {
		int me = client_gid(c);
		atomic_compare_exchange_strong(&pilot, &me, -1);
	}
	int was_setup = opt.mode == M_IDLE && c->phase == 0;
	conn_close(c);
	if (opt.mode == M_IDLE) {
		if (was_setup)
			atomic_fetch_add(&setup_failed, 1);
		set_done(c);
		return;
	}
	uint64_t now = now_us();
	if (stopping(now)) {
		set_done(c);
		return;
	}
	c->st = S_WAIT;
	c->start_at = now + BACKOFF_US;
}

static const char *ssl_err_text(SSL *ssl, int r)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_SYSCALL:
		return errno ? strerror(errno) : "unexpected EOF";
	case SSL_ERROR_SSL:
		return "TLS error";
	case SSL_ERROR_ZERO_RETURN:
		return "close_notify from server";
	default:
		return "unexpected SSL_get_error";
	}
}

/* ------------------------------------------------------------------ */
/* I/O over TLS or plain TCP                                           */

/* >0: bytes, 0: would block (*want = epoll events), -1: error, -2: EOF */
static int io_write(struct client *c, const char *b, size_t n, uint32_t *want)
{
	if (!c->ssl) {
		ssize_t r = send(c->fd, b, n, MSG_NOSIGNAL);
		if (r >= 0)
			return (int)r;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			*want = EPOLLOUT;
			return 0;
		}
		return -1;
	}
	ERR_clear_error();
	int r = SSL_write(c->ssl, b, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		return 0;
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -2;
	default:
		return -1;
	}
}

static int io_read(struct client *c, char *b, size_t n, uint32_t *want)
{
	if (!c->ssl) {
		ssize_t r = recv(c->fd, b, n, 0);
		if (r > 0)
			return (int)r;
		if (r == 0)
			return -2;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			*want = EPOLLIN;
			return 0;
		}
		return -1;
	}
	ERR_clear_error();
	int r = SSL_read(c->ssl, b, (int)n);
	if (r > 0)
		return r;
	int e = SSL_get_error(c->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -2;
	case SSL_ERROR_SYSCALL:
		if (!errno)
			return -2;
		return -1;
	case SSL_ERROR_SSL:
		/* OpenSSL 3 reports a TCP close without close_notify this way */
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			return -2;
		return -1;
	default:
		return -1;
	}
}

/* ------------------------------------------------------------------ */
/* SIP                                                                 */

static int queue_request(struct client *c)
{
	uint32_t cseq = ++c->cseq;
	const char *tr = opt.plain ? "TCP" : "TLS";
	char *p = c->out + c->out_len;
	size_t room = outbuf_size - c->out_len;
	int n = snprintf(p, room,
		"OPTIONS sip:%s:%s;transport=%s SIP/2.0\r\n"
		"Via: SIP/2.0/%s %s:%u;branch=z9hG4bK-lg%d.%d.%u.%u;rport\r\n"
		"Max-Forwards: 70\r\n"
		"From: <sip:loadgen@%s>;tag=lg%d.%d.%u\r\n"
		"To: <sip:%s:%s>\r\n"
		"Call-ID: lg%d.%d.%u.%u@loadgen\r\n"
		"CSeq: %u OPTIONS\r\n"
		"User-Agent: tls-bench-loadgen\r\n"
		"Content-Length: 0\r\n"
		"\r\n",
		via_host, opt.port, opt.plain ? "tcp" : "tls",
		tr, n_src ? src_text[c->src] : via_host, c->local_port, c->w->idx, c->id, c->cycle, cseq,
		via_host, c->w->idx, c->id, c->cycle,
		via_host, opt.port,
		c->w->idx, c->id, c->cycle, cseq,
		cseq);
	if (n < 0 || (size_t)n >= room)
		return -1;
	c->out_len += (size_t)n;
	unsigned slot = cseq % (unsigned)opt.window;
	c->sent_at[slot] = now_us();
	c->sent_cseq[slot] = cseq;
	if (c->outstanding == 0 && !c->deadline)
		c->deadline = now_us() + (uint64_t)opt.timeout_ms * 1000;
	c->outstanding++;
	return 0;
}

/* queue what the mode allows; persist: may move the client to CLOSING */
static void fill_requests(struct client *c)
{
	if (opt.mode != M_PERSIST) {
		if (c->req_pending) {
			c->req_pending = 0;
			if (queue_request(c) < 0)
				fprintf(stderr, "loadgen: request does not fit\n");
		}
		return;
	}
	uint64_t now = now_us();
	while (c->outstanding < opt.window && !stopping(now)) {
		if (opt.count > 0 && atomic_fetch_add(&claimed, 1) >= opt.count) {
			atomic_store(&stop_at, now);
			break;
		}
		if (queue_request(c) < 0)
			break;
	}
	if (c->outstanding == 0 && c->out_len == 0 && stopping(now))
		c->st = S_CLOSING;
}

static const char *hdr_value(const char *h, size_t hlen, const char *name)
{
	size_t nl = strlen(name);
	const char *end = h + hlen, *p = h;
	for (;;) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			return NULL;
		p = eol + 2;
		if ((size_t)(end - p) <= nl || strncasecmp(p, name, nl) != 0)
			continue;
		const char *q = p + nl;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		if (q >= end || *q != ':')
			continue;
		q++;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		return q;
	}
}

/* --share-session: may this client start a connection now? */
static int may_start(const struct client *c)
{
	if (!opt.share_session || atomic_load(&pilot_done))
		return 1;
	int none = -1, me = client_gid(c);
	if (atomic_compare_exchange_strong(&pilot, &none, me))
		return 1;
	return none == me;
}

static void record_ok(struct client *c, uint64_t now)
{
	c->w->s.ok++;
	if (now > c->w->s.last_ok_us)
		c->w->s.last_ok_us = now;
}

/* parse complete responses in c->in; returns -1 if the client failed */
static int parse_responses(struct client *c)
{
	while (c->in_len > 0 && c->st == S_RUN) {
		char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (!hend)
			return 0;
		size_t hlen = (size_t)(hend - c->in) + 2;  /* up to the last CRLF */
		if (hlen < 14 || memcmp(c->in, "SIP/2.0 ", 8) != 0) {
			fail(c, E_STATUS, "malformed response start");
			return -1;
		}
		int code = atoi(c->in + 8);
		const char *v = hdr_value(c->in, hlen, "Content-Length");
		if (!v)
			v = hdr_value(c->in, hlen, "l");
		unsigned long clen = v ? strtoul(v, NULL, 10) : 0;
		size_t mlen = hlen + 2 + clen;
		if (mlen > inbuf_size) {
			fail(c, E_STATUS, "response too large");
			return -1;
		}
		if (c->in_len < mlen)
			return 0;
		v = hdr_value(c->in, hlen, "CSeq");
		unsigned long cseq = v ? strtoul(v, NULL, 10) : 0;
		unsigned slot = (unsigned)(cseq % (unsigned)opt.window);
		if (!v || c->outstanding <= 0 || c->sent_cseq[slot] != cseq) {
			fail(c, E_STATUS, "response with unexpected CSeq %lu", cseq);
			return -1;
		}
		uint64_t now = now_us();
		uint64_t sent = c->sent_at[slot];
		c->outstanding--;
		memmove(c->in, c->in + mlen, c->in_len - mlen);
		c->in_len -= mlen;
		if (code != 200) {
			fail(c, E_STATUS, "status %d", code);
			return -1;
		}
		c->w->s.requests++;
		if (opt.share_session)
			atomic_store(&pilot_done, 1);
		switch (opt.mode) {
		case M_NEW:
		case M_RESUME:
			h_add(&c->w->s.lat, now - c->t0);
			record_ok(c, now);
			c->st = S_CLOSING;
			break;
		case M_PERSIST:
			h_add(&c->w->s.lat, now - sent);
			record_ok(c, now);
			c->deadline = c->outstanding ? now + (uint64_t)opt.timeout_ms * 1000 : 0;
			break;
		case M_IDLE:
			h_add(&c->w->s.lat, now - sent);
			c->deadline = 0;
			release_slot(c);
			if (c->phase == 0) {
				c->st = S_HOLD;
				atomic_fetch_add(&up_count, 1);
			} else {
				record_ok(c, now);
				c->st = S_CLOSING;
			}
			break;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* connection life cycle                                               */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct client *c = SSL_get_app_data(ssl);
	if (!c)
		return 0;
	if (opt.share_session) {
		/* one session for all, the newest replacing the one before.  A
		 * copy of our own, used by no connection: OpenSSL marks the
		 * session a TLS 1.3 connection resumed with (or failed with) as
		 * not resumable, and each connection gets a copy of this one */
		SSL_SESSION *copy = SSL_SESSION_dup(sess);
		if (!copy)
			return 0;
		pthread_mutex_lock(&shared_lock);
		if (shared_sess)
			SSL_SESSION_free(shared_sess);
		shared_sess = copy;
		pthread_mutex_unlock(&shared_lock);
		atomic_store(&pilot_done, 1);
		return 0;       /* OpenSSL keeps its reference to sess */
	}
	if (c->sess)
		SSL_SESSION_free(c->sess);
	c->sess = sess;         /* we keep the reference */
	return 1;
}

static void take_details(SSL *ssl)
{
	if (atomic_exchange(&details_taken, 1))
		return;
	int nid = SSL_get_negotiated_group(ssl);
	const char *g = "none";
	if (nid > 0 && !(nid & TLSEXT_nid_unknown))
		g = OBJ_nid2sn(nid);
	snprintf(details, sizeof details, "proto=%s cipher=%s group=%s",
		 SSL_get_version(ssl), SSL_get_cipher_name(ssl), g ? g : "unknown");
}

static void after_connect(struct client *c)
{
	struct sockaddr_storage la;
	socklen_t ll = sizeof la;
	c->local_port = 0;
	if (getsockname(c->fd, (struct sockaddr *)&la, &ll) == 0) {
		if (la.ss_family == AF_INET)
			c->local_port = ntohs(((struct sockaddr_in *)&la)->sin_port);
		else if (la.ss_family == AF_INET6)
			c->local_port = ntohs(((struct sockaddr_in6 *)&la)->sin6_port);
	}
	if (opt.plain) {
		c->st = S_RUN;
		return;
	}
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
		fail(c, E_HANDSHAKE, "SSL_new/SSL_set_fd failed");
		return;
	}
	SSL_set_app_data(c->ssl, c);
	if (opt.sni)
		SSL_set_tlsext_host_name(c->ssl, opt.sni);
	if (opt.share_session) {
		SSL_SESSION *copy = NULL;
		pthread_mutex_lock(&shared_lock);
		if (shared_sess)
			copy = SSL_SESSION_dup(shared_sess);
		pthread_mutex_unlock(&shared_lock);
		if (copy) {
			SSL_set_session(c->ssl, copy);   /* takes a reference */
			SSL_SESSION_free(copy);
		}
	} else if (opt.mode == M_RESUME && c->sess) {
		SSL_set_session(c->ssl, c->sess);
	}
	c->st = S_HANDSHAKE;
}

/* begin a connection; leaves the client in CONNECTING/HANDSHAKE/RUN, WAIT or DONE */
static void start_cycle(struct client *c, uint64_t now)
{
	if (opt.mode != M_IDLE) {
		if (stopping(now)) {
			set_done(c);
			return;
		}
		if ((opt.mode == M_NEW || opt.mode == M_RESUME) && opt.count > 0 &&
		    atomic_fetch_add(&claimed, 1) >= opt.count) {
			atomic_store(&stop_at, now);
			set_done(c);
			return;
		}
	}
	c->cycle++;
	c->t0 = now;
	c->deadline = now + (uint64_t)opt.timeout_ms * 1000;
	c->req_pending = 1;
	c->st = S_CONNECTING;
	c->fd = socket(srv_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, E_CONNECT, "socket: %s", strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (n_src) {
		/* the port is picked at connect(), per source address: each
		 * address has the whole ephemeral range towards the server */
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(c->fd, (struct sockaddr *)&src_addr[c->src], sizeof src_addr[c->src]) < 0) {
			fail(c, E_CONNECT, "bind to %s: %s", src_text[c->src], strerror(errno));
			return;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&srv_addr, srv_addrlen) == 0) {
		after_connect(c);
		return;
	}
	if (errno != EINPROGRESS) {
		fail(c, E_CONNECT, "connect: %s", strerror(errno));
		return;
	}
	set_events(c, EPOLLOUT);
}

static void finish_cycle(struct client *c)
{
	conn_close(c);
	if (opt.mode == M_NEW || opt.mode == M_RESUME) {
		c->st = S_WAIT;
		start_cycle(c, now_us());
	} else {
		set_done(c);
	}
}

/* advance a client as far as it can go without blocking */
static void drive(struct client *c, uint32_t ev)
{
	for (;;) {
		switch (c->st) {
		case S_WAIT:
		case S_DONE:
			return;

		case S_CONNECTING: {
			if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				return;
			ev = 0;
			int err = 0;
			socklen_t l = sizeof err;
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
				err = errno;
			if (err) {
				fail(c, E_CONNECT, "connect: %s", strerror(err));
				return;
			}
			after_connect(c);
			continue;
		}

		case S_HANDSHAKE: {
			ERR_clear_error();
			int r = SSL_connect(c->ssl);
			if (r == 1) {
				uint64_t now = now_us();
				c->w->s.handshakes++;
				if (SSL_session_reused(c->ssl))
					c->w->s.resumed++;
				h_add(&c->w->s.hs, now - c->t0);
				take_details(c->ssl);
				c->st = S_RUN;
				continue;
			}
			switch (SSL_get_error(c->ssl, r)) {
			case SSL_ERROR_WANT_READ:
				set_events(c, EPOLLIN);
				return;
			case SSL_ERROR_WANT_WRITE:
				set_events(c, EPOLLOUT);
				return;
			default:
				fail(c, E_HANDSHAKE, "SSL_connect: %s", ssl_err_text(c->ssl, r));
				return;
			}
		}

		case S_RUN: {
			/* a bounded number of rounds, then back to epoll so that one
			 * busy connection does not starve the others */
			for (int round = 0;; round++) {
				int progress = 0;
				uint32_t want_w = 0, want_r = 0;
				fill_requests(c);
				if (c->st != S_RUN)
					break;
				while (c->out_off < c->out_len) {
					int r = io_write(c, c->out + c->out_off, c->out_len - c->out_off, &want_w);
					if (r > 0) {
						c->out_off += (size_t)r;
						progress = 1;
						continue;
					}
					if (r == 0)
						break;
					fail(c, E_WRITE, "%s", r == -2 ? "closed by server" :
					     c->ssl ? ssl_err_text(c->ssl, r) : strerror(errno));
					return;
				}
				if (c->out_off == c->out_len)
					c->out_off = c->out_len = 0;
				for (;;) {
					int r = io_read(c, c->in + c->in_len, inbuf_size - c->in_len, &want_r);
					if (r > 0) {
						c->in_len += (size_t)r;
						progress = 1;
						if (parse_responses(c) < 0)
							return;
						if (c->st != S_RUN)
							break;
						if (c->in_len == inbuf_size) {
							fail(c, E_STATUS, "response buffer full");
							return;
						}
						continue;
					}
					if (r == 0)
						break;
					fail(c, E_READ, "%s", r == -2 ? "connection closed by server" :
					     c->ssl && ERR_peek_last_error() ? "TLS read error" :
					     errno ? strerror(errno) : "read error");
					return;
				}
				if (c->st != S_RUN)
					break;
				if (progress && round >= 16) {
					/* writable at once: brings us back on the next wait */
					set_events(c, EPOLLIN | EPOLLOUT);
					return;
				}
				if (!progress) {
					uint32_t evs = EPOLLIN;
					if ((c->out_len && want_w == EPOLLOUT) || want_r == EPOLLOUT)
						evs |= EPOLLOUT;
					set_events(c, evs);
					return;
				}
			}
			continue;
		}

		case S_HOLD: {
			/* only the server can make an idle connection readable:
			 * EOF or data we did not ask for */
			if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
				set_events(c, EPOLLIN);
				return;
			}
			ev = 0;
			uint32_t want = 0;
			int r = io_read(c, c->in + c->in_len, inbuf_size - c->in_len, &want);
			if (r > 0) {
				c->in_len += (size_t)r;
				if (c->in_len == inbuf_size) {
					fail(c, E_STATUS, "unsolicited data");
					return;
				}
				continue;
			}
			if (r == 0) {
				set_events(c, EPOLLIN | (want == EPOLLOUT ? EPOLLOUT : 0));
				return;
			}
			c->phase = 1;   /* already counted as up */
			fail(c, E_READ, "idle connection closed by server");
			return;
		}

		case S_CLOSING: {
			if (!c->shut_sent) {
				c->deadline = now_us() + (uint64_t)opt.close_wait_ms * 1000;
				if (!c->ssl) {
					shutdown(c->fd, SHUT_WR);
					c->shut_sent = 1;
				} else {
					ERR_clear_error();
					int r = SSL_shutdown(c->ssl);
					if (r == 1) {
						finish_cycle(c);
						ev = 0;
						continue;
					}
					if (r < 0) {
						int e = SSL_get_error(c->ssl, r);
						if (e == SSL_ERROR_WANT_WRITE) {
							set_events(c, EPOLLOUT);
							return;
						}
						if (e == SSL_ERROR_WANT_READ) {
							set_events(c, EPOLLIN);
							return;
						}
						ERR_clear_error();
						finish_cycle(c);
						ev = 0;
						continue;
					}
					c->shut_sent = 1;
				}
			}
			/* wait for the server's close_notify / EOF */
			char scratch[4096];
			for (;;) {
				uint32_t want = 0;
				int r = io_read(c, scratch, sizeof scratch, &want);
				if (r > 0)
					continue;
				if (r == 0) {
					set_events(c, want);
					return;
				}
				ERR_clear_error();
				finish_cycle(c);
				ev = 0;
				break;
			}
			continue;
		}
		}
	}
}

/* timers: starts, timeouts, idle release; called every few ms */
static void scan(struct worker *w, uint64_t now)
{
	int hard = now >= atomic_load(&hard_stop);
	int stop = opt.mode != M_IDLE && stopping(now);
	int rel = atomic_load(&released);
	for (int i = 0; i < w->n; i++) {
		struct client *c = &w->cl[i];
		switch (c->st) {
		case S_DONE:
			break;
		case S_WAIT:
			if (hard || stop) {
				set_done(c);
			} else if (opt.mode == M_IDLE) {
				if (rel) {
					set_done(c);    /* never started: too late */
				} else if (w->inflight < w->ramp && may_start(c)) {
					take_slot(c);
					start_cycle(c, now);
					drive(c, 0);
				}
			} else if (now >= c->start_at && may_start(c)) {
				start_cycle(c, now);
				drive(c, 0);
			}
			break;
		case S_CONNECTING:
		case S_HANDSHAKE:
		case S_RUN:
			if (hard || (c->deadline && now > c->deadline)) {
				fail(c, E_TIMEOUT, "no progress for %d ms", opt.timeout_ms);
				if (hard)
					set_done(c);
			} else if (stop && opt.mode == M_PERSIST) {
				drive(c, 0);
			}
			break;
		case S_HOLD:
			if (hard) {
				set_done(c);
			} else if (rel && w->inflight < w->ramp) {
				/* the last requests are ramped like the setups */
				take_slot(c);
				c->phase = 1;
				c->st = S_RUN;
				c->req_pending = 1;
				drive(c, 0);
			}
			break;
		case S_CLOSING:
			if (hard || (c->deadline && now > c->deadline)) {
				w->s.close_wait_to++;
				if (hard) {
					set_done(c);
				} else {
					finish_cycle(c);
					drive(c, 0);
				}
			}
			break;
		}
	}
}

/* idle mode: a freed ramp slot goes to the next client at once, not at the
 * next scan (which, with tens of thousands of clients, is some ms away);
 * the scan still catches whatever these cursors passed by */
static void idle_fill(struct worker *w, uint64_t now)
{
	if (opt.mode != M_IDLE || now >= atomic_load(&hard_stop))
		return;
	if (!atomic_load(&released)) {
		while (w->inflight < w->ramp && w->next_start < w->n) {
			struct client *c = &w->cl[w->next_start];
			if (c->st == S_WAIT && !may_start(c))
				break;
			w->next_start++;
			if (c->st != S_WAIT)
				continue;
			take_slot(c);
			start_cycle(c, now);
			drive(c, 0);
		}
		return;
	}
	while (w->inflight < w->ramp && w->next_final < w->n) {
		struct client *c = &w->cl[w->next_final++];
		if (c->st != S_HOLD)
			continue;
		take_slot(c);
		c->phase = 1;
		c->st = S_RUN;
		c->req_pending = 1;
		drive(c, 0);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];
	uint64_t last_scan = 0;
	while (w->active > 0) {
		int n = epoll_wait(w->epfd, evs, 256, 5);
		if (n < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			exit(2);
		}
		for (int i = 0; i < n; i++)
			drive(evs[i].data.ptr, evs[i].events);
		uint64_t now = now_us();
		idle_fill(w, now);
		if (now - last_scan >= w->scan_every || (n <= 0 && w->scan_every <= 5000)) {
			scan(w, now);
			last_scan = now;
		}
	}
	atomic_fetch_add(&threads_done, 1);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static void usage(FILE *f)
{
	fprintf(f,
"usage: loadgen [options]\n"
"  -H, --host ADDR        server address (default 127.0.0.1)\n"
"  -p, --port PORT        server port (default 5061)\n"
"  -m, --mode MODE        new | resume | persist | idle (default new)\n"
"  -c, --conc N           concurrent clients / connections (default 10)\n"
"  -d, --duration SEC     measured period; idle mode: longest hold (default 10)\n"
"  -V, --tls 1.2|1.3      TLS version, pinned (default 1.3)\n"
"  -A, --cafile FILE      verify the server certificate (chain and address)\n"
"  -n, --count N          stop after N cycles (new/resume) or requests (persist)\n"
"  -t, --threads N        worker threads (default 1)\n"
"  -w, --window N         persist: requests outstanding per connection (default 8)\n"
"      --plain            plain TCP instead of TLS\n"
"      --ramp N           idle: setups (and last requests) in flight at once (default 50)\n"
"      --timeout MS       per-operation timeout (default 5000)\n"
"      --close-wait MS    how long to wait for the server's close (default 1000)\n"
"      --sni NAME         send SNI\n"
"      --setup-timeout S  idle: longest setup phase (default 120)\n"
"      --label TEXT       echoed in the RESULT line\n"
"      --src A[-B]        bind each connection to a local IPv4 address, round\n"
"                         robin over the range A to B (e.g. 127.0.0.2-127.0.0.5):\n"
"                         each address has its own ephemeral ports to the server\n"
"      --share-session    new/idle: every connection offers the newest session\n"
"                         any connection received (one full handshake, then\n"
"                         resumptions), to set up many connections cheaply\n"
"  -q, --quiet            only the RESULT line\n"
"idle mode prints 'ALL_UP ...' once every connection is set up, then waits\n"
"for SIGUSR1 (or the duration) before the last request on each.\n"
"Latency: new/resume: connect to the 200 (the whole cycle); persist/idle:\n"
"request to response.  Handshake latency: connect to handshake done.\n"
"SIGINT/SIGTERM end the run early (the results are still printed).\n");
}

static long parse_long(const char *s, const char *what, long lo, long hi)
{
	char *e;
	errno = 0;
	long v = strtol(s, &e, 10);
	if (errno || *e || v < lo || v > hi) {
		fprintf(stderr, "loadgen: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum { O_PLAIN = 256, O_RAMP, O_TIMEOUT, O_CLOSEWAIT, O_SNI, O_SETUP, O_LABEL, O_SRC,
	       O_SHARE };
	static const struct option lo[] = {
		{ "host", 1, 0, 'H' }, { "port", 1, 0, 'p' }, { "mode", 1, 0, 'm' },
		{ "conc", 1, 0, 'c' }, { "duration", 1, 0, 'd' }, { "tls", 1, 0, 'V' },
		{ "cafile", 1, 0, 'A' }, { "count", 1, 0, 'n' }, { "threads", 1, 0, 't' },
		{ "window", 1, 0, 'w' }, { "plain", 0, 0, O_PLAIN }, { "ramp", 1, 0, O_RAMP },
		{ "timeout", 1, 0, O_TIMEOUT }, { "close-wait", 1, 0, O_CLOSEWAIT },
		{ "sni", 1, 0, O_SNI }, { "setup-timeout", 1, 0, O_SETUP },
		{ "label", 1, 0, O_LABEL }, { "quiet", 0, 0, 'q' }, { "help", 0, 0, 'h' },
		{ "src", 1, 0, O_SRC }, { "share-session", 0, 0, O_SHARE },
		{ 0, 0, 0, 0 }
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "H:p:m:c:d:V:A:n:t:w:qh", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = optarg; parse_long(optarg, "port", 1, 65535); break;
		case 'm': {
			int ok = 0;
			for (int i = 0; i < 4; i++)
				if (!strcmp(optarg, mode_names[i])) {
					opt.mode = (enum mode)i;
					ok = 1;
				}
			if (!ok) {
				fprintf(stderr, "loadgen: unknown mode '%s'\n", optarg);
				exit(2);
			}
			break;
		}
		case 'c': opt.conc = (int)parse_long(optarg, "concurrency", 1, 1000000); break;
		case 'd':
			opt.duration = atof(optarg);
			if (opt.duration <= 0 || opt.duration > 86400) {
				fprintf(stderr, "loadgen: bad duration\n");
				exit(2);
			}
			break;
		case 'V':
			if (!strcmp(optarg, "1.2"))
				opt.tls_ver = 12;
			else if (!strcmp(optarg, "1.3"))
				opt.tls_ver = 13;
			else {
				fprintf(stderr, "loadgen: --tls takes 1.2 or 1.3\n");
				exit(2);
			}
			break;
		case 'A': opt.cafile = optarg; break;
		case 'n': opt.count = parse_long(optarg, "count", 1, LONG_MAX); break;
		case 't': opt.threads = (int)parse_long(optarg, "threads", 1, 64); break;
		case 'w': opt.window = (int)parse_long(optarg, "window", 1, MAX_WINDOW); break;
		case O_PLAIN: opt.plain = 1; break;
		case O_RAMP: opt.ramp = (int)parse_long(optarg, "ramp", 1, 100000); break;
		case O_TIMEOUT: opt.timeout_ms = (int)parse_long(optarg, "timeout", 1, 600000); break;
		case O_CLOSEWAIT: opt.close_wait_ms = (int)parse_long(optarg, "close-wait", 0, 600000); break;
		case O_SNI: opt.sni = optarg; break;
		case O_SETUP:
			opt.setup_timeout = atof(optarg);
			if (opt.setup_timeout <= 0) {
				fprintf(stderr, "loadgen: bad setup timeout\n");
				exit(2);
			}
			break;
		case O_LABEL: opt.label = optarg; break;
		case O_SRC: opt.src = optarg; break;
		case O_SHARE: opt.share_session = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
	if (opt.threads > opt.conc)
		opt.threads = opt.conc;
	if (opt.mode != M_PERSIST)
		opt.window = 1;
	if (opt.share_session && opt.mode != M_NEW && opt.mode != M_IDLE) {
		fprintf(stderr, "loadgen: --share-session is for modes new and idle\n");
		exit(2);
	}
	if (opt.share_session && opt.plain) {
		fprintf(stderr, "loadgen: --share-session needs TLS, not --plain\n");
		exit(2);
	}
	inbuf_size = opt.mode == M_PERSIST ? INBUF : INBUF_ONE;
	outbuf_size = (size_t)opt.window * REQ_MAX;
}

/* --src A or A-B (IPv4, B >= A, at most MAX_SRC addresses) */
static void parse_src(void)
{
	char a[INET_ADDRSTRLEN + 1], b[INET_ADDRSTRLEN + 1];
	const char *dash = strchr(opt.src, '-');
	size_t la = dash ? (size_t)(dash - opt.src) : strlen(opt.src);
	if (la == 0 || la >= sizeof a || (dash && strlen(dash + 1) >= sizeof b)) {
		fprintf(stderr, "loadgen: bad --src '%s': want ADDR or ADDR-ADDR (IPv4)\n", opt.src);
		exit(2);
	}
	memcpy(a, opt.src, la);
	a[la] = 0;
	snprintf(b, sizeof b, "%s", dash ? dash + 1 : a);
	struct in_addr ia, ib;
	if (inet_pton(AF_INET, a, &ia) != 1 || inet_pton(AF_INET, b, &ib) != 1) {
		fprintf(stderr, "loadgen: bad --src '%s': not an IPv4 address or range\n", opt.src);
		exit(2);
	}
	uint32_t lo = ntohl(ia.s_addr), hi = ntohl(ib.s_addr);
	if (hi < lo || hi - lo >= MAX_SRC) {
		fprintf(stderr, "loadgen: bad --src '%s': the range must go upwards and hold at most %d addresses\n",
			opt.src, MAX_SRC);
		exit(2);
	}
	if (srv_addr.ss_family != AF_INET) {
		fprintf(stderr, "loadgen: --src is IPv4, the server address %s is not\n", opt.host);
		exit(2);
	}
	for (uint32_t v = lo;; v++) {
		struct sockaddr_in *s = &src_addr[n_src];
		s->sin_family = AF_INET;
		s->sin_port = 0;
		s->sin_addr.s_addr = htonl(v);
		inet_ntop(AF_INET, &s->sin_addr, src_text[n_src], sizeof src_text[n_src]);
		n_src++;
		if (v == hi)
			break;
	}
}

static void setup_tls(void)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		ERR_print_errors_fp(stderr);
		exit(2);
	}
	int v = opt.tls_ver == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(ctx, v);
	SSL_CTX_set_max_proto_version(ctx, v);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (opt.cafile) {
		if (SSL_CTX_load_verify_locations(ctx, opt.cafile, NULL) != 1) {
			fprintf(stderr, "loadgen: cannot load CA file %s\n", opt.cafile);
			ERR_print_errors_fp(stderr);
			exit(2);
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
		/* an address literal is checked against the certificate's IP SANs */
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, opt.host) != 1) {
			ERR_clear_error();
			X509_VERIFY_PARAM_set1_host(vp, opt.host, 0);
		}
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (opt.mode == M_IDLE)
		/* tens of thousands of held connections: no idle record buffers */
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (opt.mode == M_RESUME || opt.share_session) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
					       SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
}

static void resolve(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int r = getaddrinfo(opt.host, opt.port, &hints, &res);
	if (r) {
		fprintf(stderr, "loadgen: %s: %s\n", opt.host, gai_strerror(r));
		exit(2);
	}
	memcpy(&srv_addr, res->ai_addr, res->ai_addrlen);
	srv_addrlen = res->ai_addrlen;
	if (res->ai_family == AF_INET6)
		snprintf(via_host, sizeof via_host, "[%s]", opt.host);
	else
		snprintf(via_host, sizeof via_host, "%s", opt.host);
	freeaddrinfo(res);
}

static double cpu_seconds(const struct rusage *ru, int sys)
{
	const struct timeval *t = sys ? &ru->ru_stime : &ru->ru_utime;
	return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	/* one descriptor per connection and a few more: the soft limit goes
	 * up to the hard one, and the hard one up too if that is allowed
	 * (privileged, up to fs.nr_open) */
	struct rlimit rl;
	rlim_t need = (rlim_t)opt.conc + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		if (rl.rlim_max < need) {
			struct rlimit up = { need, need };
			if (setrlimit(RLIMIT_NOFILE, &up) == 0)
				rl = up;
		}
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
		fprintf(stderr, "loadgen: warning: open-file limit %lu is below %d connections\n",
			(unsigned long)rl.rlim_cur, opt.conc);

	resolve();
	if (opt.src)
		parse_src();
	if (!opt.plain)
		setup_tls();

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
	if (!ws) {
		perror("loadgen");
		return 2;
	}
	for (int t = 0; t < opt.threads; t++) {
		struct worker *w = &ws[t];
		w->idx = t;
		w->n = opt.conc / opt.threads + (t < opt.conc % opt.threads);
		w->active = w->n;
		w->ramp = opt.ramp / opt.threads > 0 ? opt.ramp / opt.threads : 1;
		/* a scan visits every client: with many, scan less often */
		w->scan_every = w->n > 5000 ? (uint64_t)w->n : 5000;
		w->cl = calloc((size_t)w->n, sizeof *w->cl);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (!w->cl || w->epfd < 0) {
			perror("loadgen");
			return 2;
		}
		for (int i = 0; i < w->n; i++) {
			struct client *c = &w->cl[i];
			c->w = w;
			c->id = i;
			c->fd = -1;
			c->st = S_WAIT;
			/* consecutive clients of all threads take consecutive addresses */
			c->src = n_src ? (i * opt.threads + t) % n_src : 0;
			c->in = malloc(inbuf_size + 1);
			c->out = malloc(outbuf_size);
			if (!c->in || !c->out) {
				fprintf(stderr, "loadgen: out of memory for %d clients\n", opt.conc);
				return 2;
			}
		}
	}

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	t_start = now_us();
	uint64_t grace = (uint64_t)(opt.timeout_ms + opt.close_wait_ms) * 1000 + 1000000;
	if (opt.mode == M_IDLE) {
		atomic_store(&stop_at, UINT64_MAX);
		atomic_store(&hard_stop, UINT64_MAX);
	} else {
		atomic_store(&stop_at, t_start + (uint64_t)(opt.duration * 1e6));
		atomic_store(&hard_stop, t_start + (uint64_t)(opt.duration * 1e6) + grace);
	}
	for (int t = 0; t < opt.threads; t++) {
		for (int i = 0; i < ws[t].n; i++)
			ws[t].cl[i].start_at = t_start;
		if (pthread_create(&ws[t].th, NULL, worker_main, &ws[t])) {
			perror("loadgen: pthread_create");
			return 2;
		}
	}

	/* the main thread only handles signals and the idle-mode phases */
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	int all_up_printed = 0, sig_stop = 0;
	uint64_t hold_start = 0, up_at = 0;
	while (atomic_load(&threads_done) < opt.threads) {
		int sig = sigtimedwait(&sigs, NULL, &tick);
		uint64_t now = now_us();
		if (opt.mode != M_IDLE) {
			if (sig == SIGINT || sig == SIGTERM || sig == SIGUSR1) {
				if (now < atomic_load(&stop_at))
					atomic_store(&stop_at, now);
				if (now + grace < atomic_load(&hard_stop))
					atomic_store(&hard_stop, now + grace);
				sig_stop = 1;
			}
			continue;
		}
		if (atomic_load(&released))
			continue;
		if (!all_up_printed) {
			int up = atomic_load(&up_count), bad = atomic_load(&setup_failed);
			int timed_out = now - t_start > (uint64_t)(opt.setup_timeout * 1e6);
			if (up + bad >= opt.conc || timed_out || sig == SIGINT || sig == SIGTERM) {
				up_at = now;
				printf("ALL_UP up=%d failed=%d pending=%d secs=%.3f\n", up, bad,
				       opt.conc - up - bad, (now - t_start) / 1e6);
				all_up_printed = 1;
				hold_start = now;
				if (sig == SIGINT || sig == SIGTERM)
					sig = SIGUSR1;  /* do not hold */
			}
		}
		if (all_up_printed &&
		    (sig == SIGUSR1 || sig == SIGINT || sig == SIGTERM ||
		     now - hold_start >= (uint64_t)(opt.duration * 1e6))) {
			/* the last requests are ramped too: allow the setup's time */
			atomic_store(&hard_stop, now + grace + (uint64_t)(opt.setup_timeout * 1e6));
			atomic_store(&released, 1);
		}
	}
	for (int t = 0; t < opt.threads; t++)
		pthread_join(ws[t].th, NULL);
	uint64_t t_end = now_us();
	getrusage(RUSAGE_SELF, &ru1);

	struct stats tot;
	memset(&tot, 0, sizeof tot);
	for (int t = 0; t < opt.threads; t++) {
		struct stats *s = &ws[t].s;
		tot.ok += s->ok;
		tot.handshakes += s->handshakes;
		tot.resumed += s->resumed;
		tot.requests += s->requests;
		tot.close_wait_to += s->close_wait_to;
		for (int k = 0; k < E_NKINDS; k++)
			tot.errors[k] += s->errors[k];
		if (s->last_ok_us > tot.last_ok_us)
			tot.last_ok_us = s->last_ok_us;
		h_merge(&tot.lat, &s->lat);
		h_merge(&tot.hs, &s->hs);
	}
	uint64_t errs = 0;
	for (int k = 0; k < E_NKINDS; k++)
		errs += tot.errors[k];
	/* the rate is taken over the period in which work was started: the
	 * duration, or less if a signal or the count limit ended it earlier */
	double span = (atomic_load(&stop_at) - t_start) / 1e6;
	if (opt.mode == M_IDLE)
		span = up_at ? (up_at - t_start) / 1e6 : 0;   /* setup phase */
	double rate = span > 0 ? tot.ok / span : 0;
	double hs_rate = span > 0 ? tot.handshakes / span : 0;
	double cu = cpu_seconds(&ru1, 0) - cpu_seconds(&ru0, 0);
	double cs = cpu_seconds(&ru1, 1) - cpu_seconds(&ru0, 1);

	printf("RESULT label=%s mode=%s transport=%s tls=%s conc=%d threads=%d window=%d "
	       "elapsed=%.3f span=%.3f last_ok=%.3f ok=%llu rate=%.1f handshakes=%llu hs_rate=%.1f "
	       "resumed=%llu full=%llu requests=%llu up=%d errors=%llu",
	       opt.label ? opt.label : "-", mode_names[opt.mode], opt.plain ? "tcp" : "tls",
	       opt.plain ? "none" : (opt.tls_ver == 12 ? "1.2" : "1.3"),
	       opt.conc, opt.threads, opt.window, (t_end - t_start) / 1e6, span,
	       tot.last_ok_us > t_start ? (tot.last_ok_us - t_start) / 1e6 : 0.0,
	       (unsigned long long)tot.ok, rate, (unsigned long long)tot.handshakes, hs_rate,
	       (unsigned long long)tot.resumed,
	       (unsigned long long)(tot.handshakes - tot.resumed),
	       (unsigned long long)tot.requests, atomic_load(&up_count),
	       (unsigned long long)errs);
	for (int k = 0; k < E_NKINDS; k++)
		printf(" err_%s=%llu", ekind_names[k], (unsigned long long)tot.errors[k]);
	printf(" close_wait_timeouts=%llu lat_p50_ms=%.3f lat_p99_ms=%.3f hs_p50_ms=%.3f "
	       "hs_p99_ms=%.3f cpu_user=%.3f cpu_sys=%.3f cpu=%.3f maxrss_kb=%ld stopped_by_signal=%d "
	       "src_addrs=%d share_session=%d %s\n",
	       (unsigned long long)tot.close_wait_to,
	       h_pct_ms(&tot.lat, 0.50), h_pct_ms(&tot.lat, 0.99),
	       h_pct_ms(&tot.hs, 0.50), h_pct_ms(&tot.hs, 0.99),
	       cu, cs, cu + cs, ru1.ru_maxrss, sig_stop, n_src, opt.share_session, opt.plain ? "proto=tcp cipher=none group=none" : details);

	if (!opt.quiet) {
		printf("loadgen %s over %s%s, %d %s, %.2f s:\n", mode_names[opt.mode],
		       opt.plain ? "TCP" : "TLS ", opt.plain ? "" : (opt.tls_ver == 12 ? "1.2" : "1.3"),
		       opt.conc, opt.mode == M_PERSIST || opt.mode == M_IDLE ? "connections" : "clients",
		       (t_end - t_start) / 1e6);
		printf("  ok %llu (%.1f/s)   handshakes %llu (%.1f/s, %llu resumed)   200s %llu\n",
		       (unsigned long long)tot.ok, rate, (unsigned long long)tot.handshakes, hs_rate,
		       (unsigned long long)tot.resumed, (unsigned long long)tot.requests);
		printf("  errors %llu:", (unsigned long long)errs);
		for (int k = 0; k < E_NKINDS; k++)
			printf(" %s %llu", ekind_names[k], (unsigned long long)tot.errors[k]);
		printf("   (close not answered in time: %llu)\n", (unsigned long long)tot.close_wait_to);
		printf("  latency p50 %.3f ms p99 %.3f ms   handshake p50 %.3f ms p99 %.3f ms\n",
		       h_pct_ms(&tot.lat, 0.50), h_pct_ms(&tot.lat, 0.99),
		       h_pct_ms(&tot.hs, 0.50), h_pct_ms(&tot.hs, 0.99));
		printf("  own CPU %.3f s (user %.3f, sys %.3f)   %s\n", cu + cs, cu, cs,
		       opt.plain ? "" : details);
	}

	for (int t = 0; t < opt.threads; t++) {
		for (int i = 0; i < ws[t].n; i++) {
			conn_close(&ws[t].cl[i]);
			if (ws[t].cl[i].sess)
				SSL_SESSION_free(ws[t].cl[i].sess);
		}
		for (int i = 0; i < ws[t].n; i++) {
			free(ws[t].cl[i].in);
			free(ws[t].cl[i].out);
		}
		free(ws[t].cl);
		close(ws[t].epfd);
	}
	free(ws);
	if (shared_sess)
		SSL_SESSION_free(shared_sess);
	if (ctx)
		SSL_CTX_free(ctx);
	return 0;
}
