/*
 * unit_support.c: see unit_support.h.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "unit_support.h"

/* ---- OpenSSL error queue ---------------------------------------------- */

void ut_err_push(int lib, int reason, const char *data)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (data)
		ERR_raise_data(lib, reason, "%s", data);
	else
		ERR_raise(lib, reason);
#else
	ERR_PUT_error(lib, 0, reason, __FILE__, __LINE__);
	if (data)
		ERR_add_error_data(1, data);
#endif
}

/* ---- scratch directory ------------------------------------------------ */

static char ut_dir[512];

const char *ut_tmpdir_create(void)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || *base == '\0')
		base = "/tmp";
	snprintf(ut_dir, sizeof(ut_dir), "%s/tls-unit-XXXXXX", base);
	if (mkdtemp(ut_dir) == NULL) {
		perror("mkdtemp");
		ut_dir[0] = '\0';
		return NULL;
	}
	return ut_dir;
}

static int ut_rm(const char *path, const struct stat *st, int flag,
		struct FTW *ftw)
{
	return remove(path);
}

void ut_tmpdir_remove(void)
{
	if (ut_dir[0] == '\0' || getenv("UNIT_KEEP_TMP"))
		return;
	nftw(ut_dir, ut_rm, 16, FTW_DEPTH | FTW_PHYS);
	ut_dir[0] = '\0';
}

const char *ut_path(const char *name)
{
	static char ring[8][1024];
	static int next;
	char *p = ring[next++ % 8];

	snprintf(p, sizeof(ring[0]), "%s/%s", ut_dir, name);
	return p;
}

const char *ut_write(const char *name, const char *data, long len)
{
	const char *path = ut_path(name);
	FILE *f = fopen(path, "w");
	size_t n = len < 0 ? strlen(data) : (size_t)len;

	if (f == NULL)
		return NULL;
	if (fwrite(data, 1, n, f) != n) {
		fclose(f);
		return NULL;
	}
	return fclose(f) == 0 ? path : NULL;
}

/* ---- keys and certificates -------------------------------------------- */

static EVP_PKEY *ut_keygen(int id, int param)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(id, NULL);
	EVP_PKEY *key = NULL;

	if (kc == NULL || EVP_PKEY_keygen_init(kc) <= 0)
		goto out;
	if (id == EVP_PKEY_EC
			&& EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, param) <= 0)
		goto out;
	if (id == EVP_PKEY_RSA && EVP_PKEY_CTX_set_rsa_keygen_bits(kc, param) <= 0)
		goto out;
	if (EVP_PKEY_keygen(kc, &key) <= 0)
		key = NULL;
out:
	EVP_PKEY_CTX_free(kc);
	return key;
}

EVP_PKEY *ut_key_ec(void)
{
	return ut_keygen(EVP_PKEY_EC, NID_X9_62_prime256v1);
}

EVP_PKEY *ut_key_rsa(int bits)
{
	return ut_keygen(EVP_PKEY_RSA, bits);
}

static int ut_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return 0;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

X509 *ut_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
		EVP_PKEY *issuer_key, int is_ca)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;
	char san[300];

	if (x == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2)
			|| !ASN1_INTEGER_set(X509_get_serialNumber(x), serial++)
			|| !X509_gmtime_adj(X509_getm_notBefore(x), -3600)
			|| !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400)
			|| !X509_set_pubkey(x, key)
			|| !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1, 0)
			|| !X509_set_issuer_name(x,
					issuer ? X509_get_subject_name(issuer) : name))
		goto fail;
	if (is_ca) {
		if (!ut_add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE")
				|| !ut_add_ext(x, issuer, NID_key_usage,
						"critical,keyCertSign,cRLSign")
				|| !ut_add_ext(x, issuer, NID_subject_key_identifier, "hash"))
			goto fail;
	} else {
		snprintf(san, sizeof(san), "DNS:%s", cn);
		if (!ut_add_ext(x, issuer, NID_basic_constraints, "CA:FALSE")
				|| !ut_add_ext(x, issuer, NID_subject_alt_name, san))
			goto fail;
	}
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

const char *ut_write_cert(const char *name, X509 *cert)
{
	const char *path = ut_path(name);
	BIO *b = BIO_new_file(path, "w");
	int ok;

	if (b == NULL)
		return NULL;
	ok = PEM_write_bio_X509(b, cert);
	BIO_free(b);
	return ok ? path : NULL;
}

const char *ut_write_key(const char *name, EVP_PKEY *key, const char *pass,
		int pkcs8)
{
	const char *path = ut_path(name);
	const EVP_CIPHER *enc = pass ? EVP_aes_256_cbc() : NULL;
	int plen = pass ? (int)strlen(pass) : 0;
	BIO *b = BIO_new_file(path, "w");
	int ok;

	if (b == NULL)
		return NULL;
	if (pkcs8)
		ok = PEM_write_bio_PKCS8PrivateKey(b, key, enc, (char *)pass, plen,
				NULL, NULL);
	else
		ok = PEM_write_bio_PrivateKey_traditional(b, key, enc,
				(unsigned char *)pass, plen, NULL, NULL);
	BIO_free(b);
	return ok ? path : NULL;
}

const char *ut_write_cert_key(const char *name, X509 *cert, EVP_PKEY *key)
{
	const char *path = ut_path(name);
	BIO *b = BIO_new_file(path, "w");
	int ok;

	if (b == NULL)
		return NULL;
	ok = PEM_write_bio_X509(b, cert)
		 && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	BIO_free(b);
	return ok ? path : NULL;
}

/* ---- an in-process TLS connection --------------------------------------- */

static SSL *ut_ssl(SSL_CTX *ctx, int server)
{
	SSL *ssl = SSL_new(ctx);
	BIO *r, *w;

	if (ssl == NULL)
		return NULL;
	r = BIO_new(BIO_s_mem());
	w = BIO_new(BIO_s_mem());
	if (r == NULL || w == NULL) {
		BIO_free(r);
		BIO_free(w);
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_bio(ssl, r, w);
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

int ut_pair_new(struct ut_pair *p, SSL_CTX *cctx, SSL_CTX *sctx)
{
	p->c = ut_ssl(cctx, 0);
	p->s = ut_ssl(sctx, 1);
	if (p->c == NULL || p->s == NULL) {
		ut_pair_free(p);
		return -1;
	}
	return 0;
}

void ut_pair_free(struct ut_pair *p)
{
	SSL_free(p->c);
	SSL_free(p->s);
	p->c = p->s = NULL;
}

static size_t ut_move(SSL *from, SSL *to)
{
	char buf[4096];
	size_t moved = 0;
	int n;

	while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0) {
		BIO_write(SSL_get_rbio(to), buf, n);
		moved += (size_t)n;
	}
	return moved;
}

size_t ut_pair_pump(struct ut_pair *p)
{
	return ut_move(p->c, p->s) + ut_move(p->s, p->c);
}

/* One handshake call on one side, with its own errors only. 1 done, 0 more
 * to do, -1 failed. */
static int ut_step(SSL *ssl, int *done, int *ret)
{
	if (*done)
		return 1;
	ERR_clear_error();
	*ret = SSL_do_handshake(ssl);
	if (*ret == 1) {
		*done = 1;
		return 1;
	}
	return SSL_get_error(ssl, *ret) == SSL_ERROR_WANT_READ ? 0 : -1;
}

int ut_pair_handshake(struct ut_pair *p, int *cret, int *sret)
{
	int cdone = 0, sdone = 0, cr = 0, sr = 0, i, ok = 0;

	for (i = 0; i < 64; i++) {
		if (ut_step(p->c, &cdone, &cr) < 0)
			break;
		if (ut_step(p->s, &sdone, &sr) < 0)
			break;
		if (ut_pair_pump(p) == 0) {
			ok = cdone && sdone;
			break;
		}
	}
	if (cret)
		*cret = cr;
	if (sret)
		*sret = sr;
	return ok;
}

void ut_feed(SSL *ssl, const void *data, size_t len)
{
	BIO_write(SSL_get_rbio(ssl), data, (int)len);
}

void ut_set_eof(SSL *ssl)
{
	BIO_set_mem_eof_return(SSL_get_rbio(ssl), 0);
}

SSL_CTX *ut_server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	EVP_PKEY *key = ut_key_ec();
	X509 *cert = key ? ut_cert(key, "server.test", NULL, NULL, 0) : NULL;

	if (ctx == NULL || cert == NULL || SSL_CTX_use_certificate(ctx, cert) != 1
			|| SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

SSL_CTX *ut_client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (ctx)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}
