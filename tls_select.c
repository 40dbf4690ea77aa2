/*
 * tls_select.c: what the routing script can learn about the TLS connection
 * a message came in on: selects (@tls...), pseudo-variables ($tls_...) and
 * is_peer_verified(). The complete list is in doc/selects.md.
 *
 * One layer of facts does the work: a struct tls_fact says what to read
 * (cipher, serial, a subject field, the n-th DNS name, ...), from which
 * certificate (the peer's or ours) and which item of a list. The select and
 * the pseudo-variable front-ends only turn their own syntax into a fact and
 * the result into their own result conventions.
 *
 * Values and the `openssl x509 -in FILE -noout ...` options that print the
 * same text for the same certificate (OpenSSL's own printers are used
 * wherever it has one, so the two cannot drift apart):
 *   subject, issuer      -subject / -issuer -nameopt compat
 *                        ("/C=AT/O=Example/CN=x"; bytes outside printable
 *                        ASCII as \xHH: the classic one-line form)
 *   their fields (cn...) -subject / -issuer -nameopt sep_multiline,utf8,sname
 *                        the text after "CN=" (UTF-8, nothing escaped);
 *                        the first such field unless an index is given
 *   serial (sn)          -serial, after "serial=" (upper-case hex)
 *   not_before/not_after -startdate / -enddate ("Nov 27 05:26:21 2026 GMT")
 *   version              -text: the 3 of "Version: 3 (0x2)"
 *   email/host/uri/ip    -ext subjectAltName: the text after "email:",
 *                        "DNS:", "URI:", "IP Address:" (names as raw bytes,
 *                        so UTF-8 stays UTF-8)
 *   raw_cert             -outform PEM (without -noout)
 *   urlencoded_cert      that PEM with every byte but A-Z a-z 0-9 - . _ ~
 *                        written %XX (RFC 3986; Python's
 *                        urllib.parse.quote(pem, safe=""))
 * Connection values: version as SSL_get_version() ("TLSv1.3"), cipher as
 * OpenSSL names it, bits the cipher's secret bits, description the line
 * `openssl ciphers -v` prints for that cipher (trailing blanks removed).
 *
 * Locking: the connection's SSL object is read only while its write_lock is
 * held; everything is copied into tls_scratch before the lock is released,
 * then into the core's per-message buffers by the front-ends.
 */
#include <string.h>
#include <strings.h>
#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/dprint.h"
#include "core/ip_addr.h"
#include "core/locking.h"
#include "core/parser/msg_parser.h"
#include "core/pvapi.h"
#include "core/pvar.h"
#include "core/route.h"
#include "core/select.h"
#include "core/select_buf.h"
#include "core/sr_module.h"
#include "core/tcp_conn.h"

#include "tls_compat.h"
#include "tls_select.h"
#include "tls_server.h"

/* ------------------------------------------------------------------ facts */

enum tls_fact_id {
	TF_NONE = 0,
	TF_DESC,        /* cipher description line */
	TF_VERSION,     /* protocol version */
	TF_CIPHER,      /* cipher name */
	TF_BITS,        /* cipher secret bits (int) */
	TF_SNI,         /* server name the client asked for */
	TF_CERT_VERSION,/* certificate version, 1..3 (int) */
	TF_SERIAL,
	TF_NAME,        /* subject or issuer, one line */
	TF_NAME_FIELD,  /* one field of it (nid) */
	TF_NOT_BEFORE,
	TF_NOT_AFTER,
	TF_RAW,         /* PEM */
	TF_URLENC,      /* PEM, URL-encoded */
	TF_SAN,         /* subjectAltName entries of one type (nid: GEN_*) */
	TF_VERIFIED,    /* peer only, int */
	TF_REVOKED,
	TF_EXPIRED,
	TF_SELF_SIGNED,
	TF_CHAIN        /* verified chain of the peer, PEM per certificate */
};

#define TLS_CERT_PEER 0
#define TLS_CERT_MY   1

struct tls_fact {
	int id;     /* enum tls_fact_id */
	int cert;   /* TLS_CERT_PEER or TLS_CERT_MY */
	int issuer; /* TF_NAME*: 0 subject, 1 issuer */
	int nid;    /* TF_NAME_FIELD: field NID; TF_SAN: GEN_* type */
	int count;  /* list facts: the number of items instead of one item */
	int index;  /* list facts: 0 first, 1 second, -1 last */
};

/* A fact's value: an integer, or bytes in tls_scratch. */
struct tls_value {
	int is_int;
	int i;
	str s;
};

/* Room for the URL-encoded PEM of a certificate of some 30 KB (a real one
 * is 1-4 KB). A longer value is refused with an error line, never cut. */
#define TLS_SCRATCH_SIZE (128 * 1024)

/* Per process; used between lock and copy-out only. */
static char tls_scratch[TLS_SCRATCH_SIZE];

struct tls_out {
	char *buf;
	size_t size;
	size_t len;
	int full;
};

static int out_put(struct tls_out *o, const void *p, size_t n)
{
	if (o->full || n > o->size - o->len) {
		o->full = 1;
		return -1;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

/* Appends what a memory BIO collected and frees the BIO. */
static int out_bio(struct tls_out *o, BIO *b)
{
	char *p = NULL;
	long n;
	int r;

	if (b == NULL)
		return -1;
	n = BIO_get_mem_data(b, &p);
	r = (n >= 0 && (n == 0 || p != NULL)) ? out_put(o, p, (size_t)n) : -1;
	BIO_free(b);
	return r;
}

static int out_pem(struct tls_out *o, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b == NULL || !PEM_write_bio_X509(b, x)) {
		BIO_free(b);
		return -1;
	}
	return out_bio(o, b);
}

/* RFC 3986 unreserved characters stay, every other byte becomes %XX. */
static int out_urlencoded_pem(struct tls_out *o, X509 *x)
{
	static const char hex[] = "0123456789ABCDEF";
	BIO *b = BIO_new(BIO_s_mem());
	const unsigned char *p = NULL;
	char *data = NULL, esc[3];
	long n, i;
	int r = 0;

	if (b == NULL || !PEM_write_bio_X509(b, x)) {
		BIO_free(b);
		return -1;
	}
	n = BIO_get_mem_data(b, &data);
	p = (const unsigned char *)data;
	for (i = 0; i < n && r == 0; i++) {
		if ((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')
				|| (p[i] >= '0' && p[i] <= '9') || p[i] == '-'
				|| p[i] == '.' || p[i] == '_' || p[i] == '~') {
			r = out_put(o, &p[i], 1);
		} else {
			esc[0] = '%';
			esc[1] = hex[p[i] >> 4];
			esc[2] = hex[p[i] & 15];
			r = out_put(o, esc, 3);
		}
	}
	BIO_free(b);
	return r;
}

/* Turns a 0-based index (negative: from the end) into a position in a list
 * of n items; -1 when there is no such item. */
static int tls_index(int index, int n)
{
	if (index < 0)
		index += n;
	return (index >= 0 && index < n) ? index : -1;
}

static X509 *tls_cert_of(SSL *ssl, int which)
{
	X509 *x;

	if (which == TLS_CERT_MY)
		return SSL_get_certificate(ssl);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	x = SSL_get0_peer_certificate(ssl);
#else
	/* The session keeps its own reference: the pointer stays valid while
	 * the lock is held. */
	x = SSL_get_peer_certificate(ssl);
	X509_free(x);
#endif
	return x;
}

static int tls_is_self_signed(X509 *x)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	return X509_self_signed(x, 1) == 1;
#else
	return X509_check_issued(x, x) == X509_V_OK;
#endif
}

/* Sets v to an integer value. */
static int val_int(struct tls_value *v, int i)
{
	v->is_int = 1;
	v->i = i;
	return 0;
}

static int fact_name(struct tls_out *o, struct tls_value *v, X509_NAME *name,
		const struct tls_fact *f)
{
	X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	char *line;
	int n, pos, len, r;

	if (name == NULL)
		return 1;
	if (f->id == TF_NAME) {
		line = X509_NAME_oneline(name, NULL, 0);
		if (line == NULL)
			return -1;
		r = out_put(o, line, strlen(line));
		OPENSSL_free(line);
		return r;
	}
	n = 0;
	for (pos = -1; (pos = X509_NAME_get_index_by_NID(name, f->nid, pos)) >= 0;)
		n++;
	if (f->count)
		return val_int(v, n);
	n = tls_index(f->index, n);
	if (n < 0)
		return 1;
	pos = -1;
	do {
		pos = X509_NAME_get_index_by_NID(name, f->nid, pos);
	} while (n-- > 0);
	e = X509_NAME_get_entry(name, pos);
	if (e == NULL)
		return 1;
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
	if (len < 0)
		return -1;
	r = out_put(o, u, (size_t)len);
	OPENSSL_free(u);
	return r;
}

/* One subjectAltName entry, as `openssl x509 -ext subjectAltName` prints
 * it after its "type:" prefix. */
static int out_general_name(struct tls_out *o, GENERAL_NAME *g)
{
	STACK_OF(CONF_VALUE) *vals;
	CONF_VALUE *cv;
	int r = -1;

	switch (g->type) {
		case GEN_EMAIL:
		case GEN_DNS:
		case GEN_URI:
			return out_put(o, ASN1_STRING_get0_data(g->d.ia5),
					(size_t)ASN1_STRING_length(g->d.ia5));
		case GEN_IPADD:
			/* OpenSSL's own text for an address (IPv6 without "::"). */
			vals = i2v_GENERAL_NAME(NULL, g, NULL);
			if (vals == NULL)
				return -1;
			cv = sk_CONF_VALUE_num(vals) > 0 ? sk_CONF_VALUE_value(vals, 0)
					: NULL;
			if (cv && cv->value)
				r = out_put(o, cv->value, strlen(cv->value));
			sk_CONF_VALUE_pop_free(vals, X509V3_conf_free);
			return r;
		default:
			return 1;
	}
}

static int fact_san(struct tls_out *o, struct tls_value *v, X509 *x,
		const struct tls_fact *f)
{
	GENERAL_NAMES *names;
	GENERAL_NAME *g;
	int i, n = 0, want, r = 1;

	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; names && i < sk_GENERAL_NAME_num(names); i++)
		if (sk_GENERAL_NAME_value(names, i)->type == f->nid)
			n++;
	if (f->count) {
		GENERAL_NAMES_free(names);
		return val_int(v, n);
	}
	want = tls_index(f->index, n);
	for (i = 0; want >= 0 && i < sk_GENERAL_NAME_num(names); i++) {
		g = sk_GENERAL_NAME_value(names, i);
		if (g->type != f->nid)
			continue;
		if (want-- == 0) {
			r = out_general_name(o, g);
			break;
		}
	}
	GENERAL_NAMES_free(names);
	return r;
}

static int fact_chain(struct tls_out *o, struct tls_value *v, SSL *ssl,
		const struct tls_fact *f)
{
	STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
	int n = chain ? sk_X509_num(chain) : 0, i;

	if (chain == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return f->count ? val_int(v, 0) : 1;
	if (f->count)
		return val_int(v, n);
	i = tls_index(f->index, n);
	return i < 0 ? 1 : out_pem(o, sk_X509_value(chain, i));
}

static int fact_cert(struct tls_out *o, struct tls_value *v, SSL *ssl,
		X509 *x, const struct tls_fact *f)
{
	BIO *b;
	long vr = SSL_get_verify_result(ssl);

	switch (f->id) {
		case TF_CERT_VERSION:
			return val_int(v, (int)X509_get_version(x) + 1);
		case TF_SERIAL:
			b = BIO_new(BIO_s_mem());
			if (b == NULL || i2a_ASN1_INTEGER(b, X509_get0_serialNumber(x)) < 0) {
				BIO_free(b);
				return -1;
			}
			return out_bio(o, b);
		case TF_NAME:
		case TF_NAME_FIELD:
			return fact_name(o, v, f->issuer ? X509_get_issuer_name(x)
					: X509_get_subject_name(x), f);
		case TF_NOT_BEFORE:
		case TF_NOT_AFTER:
			b = BIO_new(BIO_s_mem());
			if (b == NULL || !ASN1_TIME_print(b, f->id == TF_NOT_BEFORE
						? X509_get0_notBefore(x) : X509_get0_notAfter(x))) {
				BIO_free(b);
				return -1;
			}
			return out_bio(o, b);
		case TF_RAW:
			return out_pem(o, x);
		case TF_URLENC:
			return out_urlencoded_pem(o, x);
		case TF_SAN:
			return fact_san(o, v, x, f);
		case TF_REVOKED:
			return val_int(v, vr == X509_V_ERR_CERT_REVOKED);
		case TF_EXPIRED:
			return val_int(v, vr == X509_V_ERR_CERT_HAS_EXPIRED
					|| X509_cmp_current_time(X509_get0_notAfter(x)) < 0);
		case TF_SELF_SIGNED:
			return val_int(v, vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
					|| tls_is_self_signed(x));
		default:
			return 1;
	}
}

/* Evaluates f on an established connection; the caller holds its lock.
 * 0: value in v (bytes in o); 1: no such value; -1: error. */
static int tls_fact_eval(SSL *ssl, const struct tls_fact *f,
		struct tls_out *o, struct tls_value *v)
{
	const SSL_CIPHER *cipher;
	const char *s;
	char desc[256];
	size_t n;
	X509 *x;

	switch (f->id) {
		case TF_VERSION:
			s = SSL_get_version(ssl);
			return s ? out_put(o, s, strlen(s)) : 1;
		case TF_SNI:
			s = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
			return s ? out_put(o, s, strlen(s)) : 1;
		case TF_DESC:
		case TF_CIPHER:
		case TF_BITS:
			cipher = SSL_get_current_cipher(ssl);
			if (cipher == NULL)
				return 1;
			if (f->id == TF_BITS)
				return val_int(v, SSL_CIPHER_get_bits(cipher, NULL));
			if (f->id == TF_CIPHER) {
				s = SSL_CIPHER_get_name(cipher);
				return s ? out_put(o, s, strlen(s)) : 1;
			}
			if (SSL_CIPHER_description(cipher, desc, sizeof(desc)) == NULL)
				return -1;
			n = strnlen(desc, sizeof(desc));
			while (n > 0 && (desc[n - 1] == '\n' || desc[n - 1] == ' '))
				n--;
			return out_put(o, desc, n);
		case TF_VERIFIED:
			return val_int(v, tls_cert_of(ssl, TLS_CERT_PEER) != NULL
					&& SSL_get_verify_result(ssl) == X509_V_OK);
		case TF_CHAIN:
			return fact_chain(o, v, ssl, f);
		default:
			x = tls_cert_of(ssl, f->cert);
			return x ? fact_cert(o, v, ssl, x, f) : 1;
	}
}

/* The fact f about the connection msg came in on.
 * 0: value in v (v->s in tls_scratch until the next call); 1: no value (not
 * TLS, connection gone, handshake not done, no such certificate or item);
 * -1: error (logged). */
static int tls_fact_get(struct sip_msg *msg, const struct tls_fact *f,
		struct tls_value *v)
{
	struct tcp_connection *c;
	struct tls_conn *tc;
	struct tls_out o;
	int ret = 1;

	memset(v, 0, sizeof(*v));
	if (msg != NULL && msg == tls_event_msg && tls_event_tc != NULL) {
		/* event_route[tls:connection-out]: the connection is new and only
		 * this process knows it; its handshake has not started, so only
		 * what is decided already (the server name to send) has a value. */
		if (f->id != TF_SNI || tls_event_tc->ssl == NULL)
			return 1;
		o.buf = tls_scratch;
		o.size = sizeof(tls_scratch);
		o.len = 0;
		o.full = 0;
		ret = tls_fact_eval(tls_event_tc->ssl, f, &o, v);
		if (ret == 0 && !v->is_int) {
			v->s.s = o.buf;
			v->s.len = (int)o.len;
		}
		return ret;
	}
	/* Secure WebSocket runs on this module's TLS too. */
	if (msg == NULL || (msg->rcv.proto != PROTO_TLS
				&& msg->rcv.proto != PROTO_WSS))
		return 1;
	c = tcpconn_get(msg->rcv.proto_reserved1, 0, 0, 0, 0);
	if (c == NULL)
		return 1;
	o.buf = tls_scratch;
	o.size = sizeof(tls_scratch);
	o.len = 0;
	o.full = 0;
	/* extra_data lives as long as the connection, which our reference
	 * keeps; the SSL object is only touched under the lock. */
	tc = (c->type == PROTO_TLS || c->type == PROTO_WSS) ? c->extra_data
			: NULL;
	if (tc != NULL) {
		lock_get(&c->write_lock);
		if ((tc->flags & TLS_CONN_ESTABLISHED) && tc->ssl != NULL)
			ret = tls_fact_eval(tc->ssl, f, &o, v);
		lock_release(&c->write_lock);
	}
	tcpconn_put(c);
	if (o.full) {
		LM_ERR("TLS value (fact %d) longer than %d bytes: not returned\n",
				f->id, TLS_SCRATCH_SIZE);
		return -1;
	}
	if (ret < 0) {
		LM_ERR("cannot read TLS value (fact %d) of connection %d\n", f->id,
				msg->rcv.proto_reserved1);
		return -1;
	}
	if (ret == 0 && !v->is_int) {
		v->s.s = o.buf;
		v->s.len = (int)o.len;
	}
	return ret;
}

/* ---------------------------------------------------------------- selects */

/* What each name in a select stands for: kept in the low bits of its row's
 * flags, which the framework ignores without DIVERSION. The final function
 * walks the path again through the table below (a few comparisons).
 * DIVERSION is not used: it stores the code in the parameter itself, and
 * the core prints a select that fails to resolve (err_select()) reading
 * every parameter as a string, which crashes at startup on a typo. */
enum tls_sel_part {
	P_TLS = 1, P_DESC, P_VERSION, P_CIPHER, P_BITS, P_SNI, P_PEER, P_MY,
	P_SUBJECT, P_ISSUER, P_CERT_VERSION, P_SN, P_NOT_BEFORE, P_NOT_AFTER,
	P_RAW, P_URLENC, P_EMAIL, P_HOST, P_URI, P_IP, P_VERIFIED, P_REVOKED,
	P_EXPIRED, P_SELF_SIGNED, P_CHAIN, P_CN, P_C, P_ST, P_L, P_O, P_OU,
	P_UID, P_COUNT
};

#define PART_MASK 0xff

static int tls_sel_decode(const select_t *s, struct tls_fact *f);

static int tls_sel_run(str *res, select_t *s, struct sip_msg *msg)
{
	static char empty[1];
	struct tls_fact f;
	struct tls_value v;
	int r;

	res->s = empty;
	res->len = 0;
	if (tls_sel_decode(s, &f) < 0)
		return -1;
	r = tls_fact_get(msg, &f, &v);
	if (r != 0)
		return r;
	if (v.is_int)
		r = int_to_static_buffer(res, v.i);
	else
		r = str_to_static_buffer(res, &v.s);
	if (r < 0) {
		res->s = empty;
		res->len = 0;
		return -1;
	}
	return 0;
}

/* One function per node of the select tree: the framework tells nodes
 * apart by their function. Each can end a select, and all do the same. */
static int tls_sel_root(str *res, select_t *s, struct sip_msg *msg)
{
	return tls_sel_run(res, s, msg);
}

static int tls_sel_cipher(str *res, select_t *s, struct sip_msg *msg)
{
	return tls_sel_run(res, s, msg);
}

/* @tls.peer and @tls.my name a certificate, not a value: checked once while
 * the config is parsed (res and msg NULL), with an error line of our own
 * rather than the core's BUG line for SEL_PARAM_EXPECTED. */
static int tls_sel_cert_fixup(select_t *s, const char *which)
{
	if (s->param_offset[select_level + 1] >= s->n) {
		LM_ERR("@tls.%s: say which value of the certificate (subject,"
				" issuer, sn, host, ...)\n", which);
		return -1;
	}
	return 0;
}

static int tls_sel_peer(str *res, select_t *s, struct sip_msg *msg)
{
	if (res == NULL && msg == NULL)
		return tls_sel_cert_fixup(s, "peer");
	return tls_sel_run(res, s, msg);
}

static int tls_sel_my(str *res, select_t *s, struct sip_msg *msg)
{
	if (res == NULL && msg == NULL)
		return tls_sel_cert_fixup(s, "my");
	return tls_sel_run(res, s, msg);
}

static int tls_sel_name(str *res, select_t *s, struct sip_msg *msg)
{
	return tls_sel_run(res, s, msg);
}

static int tls_sel_leaf(str *res, select_t *s, struct sip_msg *msg)
{
	return tls_sel_run(res, s, msg);
}

/* A list (subjectAltName entries, name fields, the chain), with an optional
 * index. Also called once while the config is parsed (res and msg NULL):
 * refuses index 0, since indexes count from 1 as in the core's selects. */
static int tls_sel_list(str *res, select_t *s, struct sip_msg *msg)
{
	int last;

	if (res == NULL && msg == NULL) {
		last = s->param_offset[select_level + 1] - 1;
		if (last >= 0 && last < s->n && s->params[last].type == SEL_PARAM_INT
				&& s->params[last].v.i == 0) {
			LM_ERR("@tls...[0]: select indexes count from 1 ([-1] is the"
					" last)\n");
			return -1;
		}
		return 0;
	}
	return tls_sel_run(res, s, msg);
}

#define PART(code) (code)
#define LIST(code) ((code) | CONSUME_NEXT_INT | OPTIONAL \
		| FIXUP_CALL)
#define ROW(parent, name, node, flags) \
	{ parent, SEL_PARAM_STR, STR_STATIC_INIT(name), node, flags }

/* Rows common to @tls.peer and @tls.my. */
#define CERT_ROWS(node) \
	ROW(node, "subject", tls_sel_name, PART(P_SUBJECT)), \
	ROW(node, "subj", tls_sel_name, PART(P_SUBJECT)), \
	ROW(node, "issuer", tls_sel_name, PART(P_ISSUER)), \
	ROW(node, "version", tls_sel_leaf, PART(P_CERT_VERSION)), \
	ROW(node, "sn", tls_sel_leaf, PART(P_SN)), \
	ROW(node, "serialNumber", tls_sel_leaf, PART(P_SN)), \
	ROW(node, "serial_number", tls_sel_leaf, PART(P_SN)), \
	ROW(node, "serial", tls_sel_leaf, PART(P_SN)), \
	ROW(node, "not_before", tls_sel_leaf, PART(P_NOT_BEFORE)), \
	ROW(node, "notBefore", tls_sel_leaf, PART(P_NOT_BEFORE)), \
	ROW(node, "not_after", tls_sel_leaf, PART(P_NOT_AFTER)), \
	ROW(node, "notAfter", tls_sel_leaf, PART(P_NOT_AFTER)), \
	ROW(node, "raw_cert", tls_sel_leaf, PART(P_RAW)), \
	ROW(node, "rawCert", tls_sel_leaf, PART(P_RAW)), \
	ROW(node, "urlencoded_cert", tls_sel_leaf, PART(P_URLENC)), \
	ROW(node, "URLEncodedCert", tls_sel_leaf, PART(P_URLENC)), \
	ROW(node, "email", tls_sel_list, LIST(P_EMAIL)), \
	ROW(node, "emailAddress", tls_sel_list, LIST(P_EMAIL)), \
	ROW(node, "email_address", tls_sel_list, LIST(P_EMAIL)), \
	ROW(node, "host", tls_sel_list, LIST(P_HOST)), \
	ROW(node, "hostname", tls_sel_list, LIST(P_HOST)), \
	ROW(node, "dns", tls_sel_list, LIST(P_HOST)), \
	ROW(node, "uri", tls_sel_list, LIST(P_URI)), \
	ROW(node, "url", tls_sel_list, LIST(P_URI)), \
	ROW(node, "urn", tls_sel_list, LIST(P_URI)), \
	ROW(node, "ip", tls_sel_list, LIST(P_IP)), \
	ROW(node, "ipaddr", tls_sel_list, LIST(P_IP)), \
	ROW(node, "ip_address", tls_sel_list, LIST(P_IP))

/* Names match case-insensitively (the framework's strncasecmp). */
static select_row_t tls_sel_table[] = {
	ROW(NULL, "tls", tls_sel_root, PART(P_TLS)),

	ROW(tls_sel_root, "desc", tls_sel_leaf, PART(P_DESC)),
	ROW(tls_sel_root, "description", tls_sel_leaf, PART(P_DESC)),
	ROW(tls_sel_root, "version", tls_sel_leaf, PART(P_VERSION)),
	ROW(tls_sel_root, "cipher", tls_sel_cipher, PART(P_CIPHER)),
	ROW(tls_sel_root, "server_name", tls_sel_leaf, PART(P_SNI)),
	ROW(tls_sel_root, "serverName", tls_sel_leaf, PART(P_SNI)),
	ROW(tls_sel_root, "peer", tls_sel_peer, PART(P_PEER) | FIXUP_CALL),
	ROW(tls_sel_root, "my", tls_sel_my, PART(P_MY) | FIXUP_CALL),
	ROW(tls_sel_root, "me", tls_sel_my, PART(P_MY) | FIXUP_CALL),
	ROW(tls_sel_root, "myself", tls_sel_my, PART(P_MY) | FIXUP_CALL),

	ROW(tls_sel_cipher, "bits", tls_sel_leaf, PART(P_BITS)),

	CERT_ROWS(tls_sel_peer),
	CERT_ROWS(tls_sel_my),

	/* Only the peer's certificate is verified. */
	ROW(tls_sel_peer, "verified", tls_sel_leaf, PART(P_VERIFIED)),
	ROW(tls_sel_peer, "revoked", tls_sel_leaf, PART(P_REVOKED)),
	ROW(tls_sel_peer, "expired", tls_sel_leaf, PART(P_EXPIRED)),
	ROW(tls_sel_peer, "self_signed", tls_sel_leaf, PART(P_SELF_SIGNED)),
	ROW(tls_sel_peer, "selfsigned", tls_sel_leaf, PART(P_SELF_SIGNED)),
	ROW(tls_sel_peer, "verified_cert_chain", tls_sel_list, LIST(P_CHAIN)),

	ROW(tls_sel_name, "cn", tls_sel_list, LIST(P_CN)),
	ROW(tls_sel_name, "commonName", tls_sel_list, LIST(P_CN)),
	ROW(tls_sel_name, "common_name", tls_sel_list, LIST(P_CN)),
	ROW(tls_sel_name, "name", tls_sel_list, LIST(P_CN)),
	ROW(tls_sel_name, "c", tls_sel_list, LIST(P_C)),
	ROW(tls_sel_name, "countryName", tls_sel_list, LIST(P_C)),
	ROW(tls_sel_name, "country_name", tls_sel_list, LIST(P_C)),
	ROW(tls_sel_name, "country", tls_sel_list, LIST(P_C)),
	ROW(tls_sel_name, "st", tls_sel_list, LIST(P_ST)),
	ROW(tls_sel_name, "stateOrProvinceName", tls_sel_list, LIST(P_ST)),
	ROW(tls_sel_name, "state_or_province_name", tls_sel_list, LIST(P_ST)),
	ROW(tls_sel_name, "state", tls_sel_list, LIST(P_ST)),
	ROW(tls_sel_name, "l", tls_sel_list, LIST(P_L)),
	ROW(tls_sel_name, "localityName", tls_sel_list, LIST(P_L)),
	ROW(tls_sel_name, "locality_name", tls_sel_list, LIST(P_L)),
	ROW(tls_sel_name, "locality", tls_sel_list, LIST(P_L)),
	ROW(tls_sel_name, "o", tls_sel_list, LIST(P_O)),
	ROW(tls_sel_name, "organizationName", tls_sel_list, LIST(P_O)),
	ROW(tls_sel_name, "organization_name", tls_sel_list, LIST(P_O)),
	ROW(tls_sel_name, "organization", tls_sel_list, LIST(P_O)),
	ROW(tls_sel_name, "ou", tls_sel_list, LIST(P_OU)),
	ROW(tls_sel_name, "organizationalUnitName", tls_sel_list, LIST(P_OU)),
	ROW(tls_sel_name, "organizational_unit_name", tls_sel_list, LIST(P_OU)),
	ROW(tls_sel_name, "unit", tls_sel_list, LIST(P_OU)),
	ROW(tls_sel_name, "uid", tls_sel_list, LIST(P_UID)),
	ROW(tls_sel_name, "uniqueIdentifier", tls_sel_list, LIST(P_UID)),
	ROW(tls_sel_name, "unique_identifier", tls_sel_list, LIST(P_UID)),
	ROW(tls_sel_name, "userid", tls_sel_list, LIST(P_UID)),

	ROW(tls_sel_list, "count", tls_sel_leaf, PART(P_COUNT)),

	{ NULL, SEL_PARAM_INT, STR_NULL, NULL, 0 }
};

static int tls_sel_decode(const select_t *s, struct tls_fact *f)
{
	const select_row_t *r;
	const str *name;
	select_f node = NULL;
	int i, k;

	memset(f, 0, sizeof(*f));
	f->id = TF_DESC; /* plain @tls */
	for (i = 0; i < s->n; i++) {
		if (s->params[i].type == SEL_PARAM_INT) {
			/* The core's selects count from 1; negative from the end. */
			k = s->params[i].v.i;
			f->index = k > 0 ? k - 1 : k;
			continue;
		}
		if (s->params[i].type != SEL_PARAM_STR) {
			BUG("tls select parameter %d of type %d\n", i,
					s->params[i].type);
			return -1;
		}
		name = &s->params[i].v.s;
		for (r = tls_sel_table; r->curr_f || r->new_f; r++)
			if (r->curr_f == node && r->name.len == name->len
					&& strncasecmp(r->name.s, name->s, name->len) == 0)
				break;
		if (r->new_f == NULL) {
			BUG("tls select part '%.*s' not in the table\n", name->len,
					name->s);
			return -1;
		}
		node = r->new_f;
		switch (r->flags & PART_MASK) {
			case P_TLS: break;
			case P_DESC: f->id = TF_DESC; break;
			case P_VERSION: f->id = TF_VERSION; break;
			case P_CIPHER: f->id = TF_CIPHER; break;
			case P_BITS: f->id = TF_BITS; break;
			case P_SNI: f->id = TF_SNI; break;
			case P_PEER: f->cert = TLS_CERT_PEER; break;
			case P_MY: f->cert = TLS_CERT_MY; break;
			case P_SUBJECT: f->id = TF_NAME; f->issuer = 0; break;
			case P_ISSUER: f->id = TF_NAME; f->issuer = 1; break;
			case P_CERT_VERSION: f->id = TF_CERT_VERSION; break;
			case P_SN: f->id = TF_SERIAL; break;
			case P_NOT_BEFORE: f->id = TF_NOT_BEFORE; break;
			case P_NOT_AFTER: f->id = TF_NOT_AFTER; break;
			case P_RAW: f->id = TF_RAW; break;
			case P_URLENC: f->id = TF_URLENC; break;
			case P_EMAIL: f->id = TF_SAN; f->nid = GEN_EMAIL; break;
			case P_HOST: f->id = TF_SAN; f->nid = GEN_DNS; break;
			case P_URI: f->id = TF_SAN; f->nid = GEN_URI; break;
			case P_IP: f->id = TF_SAN; f->nid = GEN_IPADD; break;
			case P_VERIFIED: f->id = TF_VERIFIED; break;
			case P_REVOKED: f->id = TF_REVOKED; break;
			case P_EXPIRED: f->id = TF_EXPIRED; break;
			case P_SELF_SIGNED: f->id = TF_SELF_SIGNED; break;
			case P_CHAIN: f->id = TF_CHAIN; break;
			case P_CN: f->id = TF_NAME_FIELD; f->nid = NID_commonName; break;
			case P_C: f->id = TF_NAME_FIELD; f->nid = NID_countryName; break;
			case P_ST:
				f->id = TF_NAME_FIELD; f->nid = NID_stateOrProvinceName; break;
			case P_L: f->id = TF_NAME_FIELD; f->nid = NID_localityName; break;
			case P_O:
				f->id = TF_NAME_FIELD; f->nid = NID_organizationName; break;
			case P_OU:
				f->id = TF_NAME_FIELD; f->nid = NID_organizationalUnitName;
				break;
			case P_UID: f->id = TF_NAME_FIELD; f->nid = NID_userId; break;
			case P_COUNT: f->count = 1; break;
			default:
				BUG("unknown tls select part %d\n", r->flags & PART_MASK);
				return -1;
		}
	}
	return 0;
}

int tls_select_register(void)
{
	return register_select_table(tls_sel_table) < 0 ? -1 : 0;
}

/* ------------------------------------------------------ pseudo-variables */

/* A fact packed into the int name the core keeps for each variable:
 * id in bits 0-7, certificate in 8, issuer in 9, nid or GEN_* from 12. */
#define PV_FACT(id, cert, issuer, nid) \
	((id) | ((cert) << 8) | ((issuer) << 9) | ((nid) << 12))

static void tls_pv_fact(int packed, struct tls_fact *f)
{
	memset(f, 0, sizeof(*f));
	f->id = packed & 0xff;
	f->cert = (packed >> 8) & 1;
	f->issuer = (packed >> 9) & 1;
	f->nid = packed >> 12;
}

static int tls_pv_get(struct sip_msg *msg, pv_param_t *param,
		pv_value_t *res)
{
	struct tls_fact f;
	struct tls_value v;
	int idx = 0, flags = 0;
	char *p;
	str s;

	if (param == NULL)
		return pv_get_null(msg, param, res);
	tls_pv_fact(param->pvn.u.isname.name.n, &f);
	if (param->pvi.type != PV_IDX_NONE) {
		/* $(tls_peer_san_hostname[1]): counts from 0, as pvars do. */
		if (pv_get_spec_index(msg, param, &idx, &flags) != 0
				|| (flags != 0 && flags != PV_IDX_NONE))
			return pv_get_null(msg, param, res);
		f.index = idx;
	}
	if (tls_fact_get(msg, &f, &v) != 0)
		return pv_get_null(msg, param, res);
	if (v.is_int)
		return pv_get_sintval(msg, param, res, v.i);
	/* The core's rotating pv buffers; a longer value goes to the select
	 * buffers, which grow and are reset for each message. */
	if (v.s.len < pv_get_buffer_size())
		p = pv_get_buffer();
	else
		p = get_static_buffer(v.s.len + 1);
	if (p == NULL)
		return pv_get_null(msg, param, res);
	memcpy(p, v.s.s, (size_t)v.s.len);
	p[v.s.len] = '\0';
	s.s = p;
	s.len = v.s.len;
	return pv_get_strval(msg, param, res, &s);
}

#define PVX(name, packed, index_f) \
	{ STR_STATIC_INIT(name), PVT_OTHER, tls_pv_get, 0, 0, index_f, \
		pv_init_iname, packed }
/* A connection value, a certificate value, a list of a certificate. */
#define PV_CONN(name, id) PVX(name, PV_FACT(id, 0, 0, 0), 0)
#define PV_CERT(name, id, cert) PVX(name, PV_FACT(id, cert, 0, 0), 0)
#define PV_FIELD(name, cert, issuer, nid) \
	PVX(name, PV_FACT(TF_NAME_FIELD, cert, issuer, nid), pv_parse_index)
#define PV_NAME(name, cert, issuer) \
	PVX(name, PV_FACT(TF_NAME, cert, issuer, 0), 0)
#define PV_SAN(name, cert, gen) \
	PVX(name, PV_FACT(TF_SAN, cert, 0, gen), pv_parse_index)
#define PV_FIELDS(prefix, cert, issuer) \
	PV_FIELD(prefix "_cn", cert, issuer, NID_commonName), \
	PV_FIELD(prefix "_locality", cert, issuer, NID_localityName), \
	PV_FIELD(prefix "_country", cert, issuer, NID_countryName), \
	PV_FIELD(prefix "_state", cert, issuer, NID_stateOrProvinceName), \
	PV_FIELD(prefix "_organization", cert, issuer, NID_organizationName), \
	PV_FIELD(prefix "_unit", cert, issuer, NID_organizationalUnitName)

#define P TLS_CERT_PEER
#define M TLS_CERT_MY

pv_export_t tls_select_pvs[] = {
	PV_CONN("tls_version", TF_VERSION),
	PV_CONN("tls_description", TF_DESC),
	PV_CONN("tls_cipher_info", TF_CIPHER),
	PV_CONN("tls_cipher_bits", TF_BITS),
	PV_CONN("tls_peer_server_name", TF_SNI),
	PV_CERT("tls_peer_version", TF_CERT_VERSION, P),
	PV_CERT("tls_my_version", TF_CERT_VERSION, M),
	PV_CERT("tls_peer_serial", TF_SERIAL, P),
	PV_CERT("tls_my_serial", TF_SERIAL, M),
	PV_NAME("tls_peer_subject", P, 0),
	PV_NAME("tls_peer_issuer", P, 1),
	PV_NAME("tls_my_subject", M, 0),
	PV_NAME("tls_my_issuer", M, 1),
	PV_FIELDS("tls_peer_subject", P, 0),
	PV_FIELDS("tls_peer_issuer", P, 1),
	PV_FIELDS("tls_my_subject", M, 0),
	PV_FIELDS("tls_my_issuer", M, 1),
	PV_FIELD("tls_peer_subject_uid", P, 0, NID_userId),
	PV_FIELD("tls_my_subject_uid", M, 0, NID_userId),
	PV_SAN("tls_peer_san_email", P, GEN_EMAIL),
	PV_SAN("tls_my_san_email", M, GEN_EMAIL),
	PV_SAN("tls_peer_san_hostname", P, GEN_DNS),
	PV_SAN("tls_my_san_hostname", M, GEN_DNS),
	PV_SAN("tls_peer_san_uri", P, GEN_URI),
	PV_SAN("tls_my_san_uri", M, GEN_URI),
	PV_SAN("tls_peer_san_ip", P, GEN_IPADD),
	PV_SAN("tls_my_san_ip", M, GEN_IPADD),
	PV_CONN("tls_peer_verified", TF_VERIFIED),
	PV_CERT("tls_peer_revoked", TF_REVOKED, P),
	PV_CERT("tls_peer_expired", TF_EXPIRED, P),
	PV_CERT("tls_peer_selfsigned", TF_SELF_SIGNED, P),
	PV_CERT("tls_peer_notBefore", TF_NOT_BEFORE, P),
	PV_CERT("tls_peer_notAfter", TF_NOT_AFTER, P),
	PV_CERT("tls_my_notBefore", TF_NOT_BEFORE, M),
	PV_CERT("tls_my_notAfter", TF_NOT_AFTER, M),
	PV_CERT("tls_peer_raw_cert", TF_RAW, P),
	PV_CERT("tls_my_raw_cert", TF_RAW, M),
	PV_CERT("tls_peer_urlencoded_cert", TF_URLENC, P),
	PV_CERT("tls_my_urlencoded_cert", TF_URLENC, M),
	PVX("tls_peer_verified_cert_chain", PV_FACT(TF_CHAIN, P, 0, 0),
			pv_parse_index),
	{ {0, 0}, 0, 0, 0, 0, 0, 0, 0 }
};

#undef P
#undef M

/* --------------------------------------------------------------- function */

/* True only for a TLS connection whose peer presented a certificate that
 * verified. */
static int w_is_peer_verified(struct sip_msg *msg, char *p1, char *p2)
{
	struct tls_fact f;
	struct tls_value v;

	memset(&f, 0, sizeof(f));
	f.id = TF_VERIFIED;
	return (tls_fact_get(msg, &f, &v) == 0 && v.i) ? 1 : -1;
}

cmd_export_t tls_select_cmds[] = {
	{"is_peer_verified", w_is_peer_verified, 0, 0, 0, ANY_ROUTE},
	{0, 0, 0, 0, 0, 0}
};
