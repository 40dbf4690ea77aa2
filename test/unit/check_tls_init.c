/*
 * check_tls_init.c: unit tests of tls_init.c (OpenSSL's allocator routed to
 * shared memory, the fork hook that forgets the parent's per-thread state,
 * the version check, RSA blinding preparation).
 *
 * CRYPTO_set_mem_functions() works once per process and only before
 * OpenSSL's first allocation: every test runs in its own forked process (the
 * runner is forced to CK_FORK) and main() never touches OpenSSL. The shared
 * memory is the stubs' MAP_SHARED mapping (core_stubs.c); whether the core
 * "has initialised it" is stub_shm_initialized.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"

#include "tls_compat.h"
#include "tls_init.h"

#include "core_stubs.h"
#include "unit_support.h"

/* OpenSSL_version_num() as tls_init.c sees it: this definition takes the
 * place of libcrypto's for the calls linked into this program, so the
 * version check can be shown another library. 0: the real one. */
static unsigned long fake_loaded_version;

unsigned long OpenSSL_version_num(void)
{
	unsigned long (*real)(void);

	if (fake_loaded_version)
		return fake_loaded_version;
	*(void **)&real = dlsym(RTLD_NEXT, "OpenSSL_version_num");
	return real ? real() : 0;
}

static void setup(void)
{
	stub_shm_reset();
	stub_log_reset();
	fake_loaded_version = 0;
}

/* ---- tls_init_openssl: where memory goes ----------------------------------- */

START_TEST(test_alloc_routing)
{
	char *priv, *shared, *r;

	ck_assert_int_eq(tls_init_openssl(), 0);

	/* Before the core has shared memory: the private heap. */
	priv = OPENSSL_malloc(100);
	ck_assert_ptr_nonnull(priv);
	ck_assert(!shm_address_in(priv));
	ck_assert_int_eq(stub_shm_stats.mallocs, 0);

	/* Then shared memory, for every allocation. */
	stub_shm_initialized = 1;
	/* (large blocks: one block of the core's allocator each; small ones
	 * come from slab pages, see check_tls_mem.c) */
	shared = OPENSSL_malloc(40000);
	ck_assert_ptr_nonnull(shared);
	ck_assert(shm_address_in(shared));
	ck_assert_int_eq(stub_shm_stats.mallocs, 1);
	r = OPENSSL_zalloc(40000);
	ck_assert(shm_address_in(r));
	OPENSSL_free(r);
	ck_assert_int_eq(stub_shm_stats.frees, 1);
	r = OPENSSL_zalloc(64);
	ck_assert(shm_address_in(r));
	OPENSSL_free(r);

	/* A free goes where the block came from. */
	OPENSSL_free(priv); /* to free(): no shm free counted, none refused */
	ck_assert_int_eq(stub_shm_stats.frees, 1);
	OPENSSL_free(shared);
	ck_assert_int_eq(stub_shm_stats.frees, 2);
	OPENSSL_free(NULL);
	ck_assert_int_eq(stub_shm_stats.frees, 2);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
	/* what stays: the slab pool and the (empty) page of the 64-byte block */
	ck_assert_int_eq(stub_shm_stats.live, 2);
}
END_TEST

START_TEST(test_realloc_routing)
{
	char *priv, *r;

	ck_assert_int_eq(tls_init_openssl(), 0);
	priv = OPENSSL_malloc(8);
	memcpy(priv, "private", 8);
	stub_shm_initialized = 1;

	/* realloc(NULL) is an allocation: shared now. */
	r = OPENSSL_realloc(NULL, 8);
	ck_assert(shm_address_in(r));
	memcpy(r, "shared", 7);
	/* From a small block's class to a large block: a copy (tls_mem.c). */
	r = OPENSSL_realloc(r, 65536);
	ck_assert(shm_address_in(r));
	ck_assert_str_eq(r, "shared");
	ck_assert_int_eq(stub_shm_stats.reallocs, 0);
	/* A large block grows by a copy too (never the pool's realloc). */
	r = OPENSSL_realloc(r, 200000);
	ck_assert(shm_address_in(r));
	ck_assert_str_eq(r, "shared");
	ck_assert_int_eq(stub_shm_stats.reallocs, 0);
	/* realloc(p, 0) frees. */
	ck_assert_ptr_null(OPENSSL_realloc(r, 0));
	/* what stays: the slab pool and the (empty) page of the 8-byte block */
	ck_assert_int_eq(stub_shm_stats.live, 2);

	/* A private block stays private when it grows. */
	priv = OPENSSL_realloc(priv, 4096);
	ck_assert_ptr_nonnull(priv);
	ck_assert(!shm_address_in(priv));
	ck_assert_str_eq(priv, "private");
	ck_assert_int_eq(stub_shm_stats.reallocs, 0);
	ck_assert_ptr_null(OPENSSL_realloc(priv, 0));
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_alloc_shm_exhausted)
{
	ck_assert_int_eq(tls_init_openssl(), 0);
	stub_shm_initialized = 1;
	stub_shm_fail_after = 0;
	/* No silent fall back to the private heap: a shared object must be
	 * shared or not be. */
	ck_assert_ptr_null(OPENSSL_malloc(100));
	ck_assert_ptr_null(OPENSSL_realloc(NULL, 100));
	stub_shm_fail_after = -1;
}
END_TEST

/* All of OpenSSL working from shared memory: contexts, keys, a handshake. */
START_TEST(test_openssl_in_shm)
{
	SSL_CTX *s, *c;
	struct ut_pair p;
	unsigned long before;

	ck_assert_int_eq(tls_init_openssl(), 0);
	stub_shm_initialized = 1;
	s = ut_server_ctx();
	c = ut_client_ctx();
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(c);
	ck_assert(shm_address_in(s));
	ck_assert_int_eq(ut_pair_new(&p, c, s), 0);
	ck_assert(shm_address_in(p.s));
	ck_assert(shm_address_in(p.c));
	before = stub_shm_stats.mallocs;
	ck_assert_int_eq(ut_pair_handshake(&p, NULL, NULL), 1);
	ck_assert_int_gt(stub_shm_stats.mallocs, before);
	ut_pair_free(&p);
	SSL_CTX_free(s);
	SSL_CTX_free(c);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_init_too_late)
{
	SSL_CTX *ctx;

	/* Something already used OpenSSL (another module loaded before). */
	ctx = SSL_CTX_new(TLS_method());
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(tls_init_openssl(), -1);
	ck_assert_ptr_nonnull(stub_log_find(L_ERR, "load tls.so first"));
	SSL_CTX_free(ctx);
}
END_TEST

/* ---- the fork hook ----------------------------------------------------------- */

enum {
	CHILD_OK = 0,
	CHILD_SHM_KEY_KEPT,   /* a thread-specific pointer into shm survived */
	CHILD_PRIV_KEY_LOST,  /* a private one was dropped */
	CHILD_SAW_PARENT_ERR, /* the parent's error queue is the child's */
	CHILD_OWN_ERR_LOST,   /* the child's own queue does not work */
	CHILD_NO_SSL,         /* OpenSSL unusable in the child */
};

static const char *child_what[] = {
	"ok",
	"a thread-specific pointer into shared memory survived the fork",
	"a thread-specific pointer to private memory was dropped",
	"the child sees the parent's OpenSSL error queue (shared state)",
	"the child's own error queue does not work",
	"OpenSSL is unusable in the child",
};

START_TEST(test_fork_forgets_parent_thread_state)
{
	pthread_key_t kshm, kpriv;
	void *vshm, *vpriv;
	unsigned long e1;
	int status, code;
	pid_t pid;

	ck_assert_int_eq(tls_init_openssl(), 0);
	stub_shm_initialized = 1;
	ck_assert_int_eq(pthread_key_create(&kshm, NULL), 0);
	ck_assert_int_eq(pthread_key_create(&kpriv, NULL), 0);
	vshm = OPENSSL_malloc(16);
	vpriv = malloc(16);
	ck_assert(shm_address_in(vshm));
	pthread_setspecific(kshm, vshm);
	pthread_setspecific(kpriv, vpriv);
	/* The parent's OpenSSL thread state (its error queue), in shm. */
	ERR_clear_error();
	ut_err_push(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER, "parent");
	e1 = ERR_peek_error();
	ck_assert_int_ne(e1, 0);
	/* As in Kamailio: the main process frees its OpenSSL thread state
	 * right before forking (the queue held a shared-memory text). */
	tls_init_before_fork();
	ck_assert_int_eq(ERR_peek_error(), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		SSL_CTX *ctx;

		code = CHILD_OK;
		if (pthread_getspecific(kshm) != NULL)
			code = CHILD_SHM_KEY_KEPT;
		else if (pthread_getspecific(kpriv) != vpriv)
			code = CHILD_PRIV_KEY_LOST;
		else if (ERR_peek_error() != 0)
			code = CHILD_SAW_PARENT_ERR;
		else {
			ut_err_push(ERR_LIB_SSL, SSL_R_NO_CIPHER_MATCH, "child");
			if (ERR_GET_REASON(ERR_get_error()) != SSL_R_NO_CIPHER_MATCH
					|| ERR_peek_error() != 0)
				code = CHILD_OWN_ERR_LOST;
			else if ((ctx = SSL_CTX_new(TLS_method())) == NULL)
				code = CHILD_NO_SSL;
			else
				SSL_CTX_free(ctx);
		}
		_exit(code);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died (status %#x)", status);
	code = WEXITSTATUS(status);
	ck_assert_msg(code == CHILD_OK, "child: %s",
			code < (int)(sizeof(child_what) / sizeof(child_what[0]))
					? child_what[code]
					: "?");
	/* The parent's own state is untouched by the child. */
	ck_assert_ptr_eq(pthread_getspecific(kshm), vshm);
	ck_assert_ptr_eq(pthread_getspecific(kpriv), vpriv);
	ck_assert_int_eq(ERR_peek_error(), 0);
	OPENSSL_free(vshm);
	free(vpriv);
}
END_TEST

/* Without tls_init_openssl() there is no such hook (control experiment:
 * the test above would see the parent's queue). */
START_TEST(test_fork_without_hook_shares_state)
{
	int status;
	pid_t pid;

	stub_shm_initialized = 1;
	ut_err_push(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER, "parent");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(ERR_peek_error() != 0 ? 0 : 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ERR_clear_error();
}
END_TEST

/* ---- tls_init_check_version -------------------------------------------------- */

START_TEST(test_version_same)
{
	ck_assert_int_eq(tls_init_check_version(0), 0);
	ck_assert_ptr_nonnull(stub_log_find(L_INFO, "using "));
	ck_assert_ptr_null(stub_log_find(L_ERR, NULL));
	ck_assert_ptr_null(stub_log_find(L_WARN, NULL));
}
END_TEST

START_TEST(test_version_other_patch)
{
	/* Same major and minor, another patch level (and status nibble). */
	fake_loaded_version = (OPENSSL_VERSION_NUMBER & ~0xfffffUL) | 0xfff0fUL;
	ck_assert_int_eq(tls_init_check_version(0), 0);
	ck_assert_ptr_null(stub_log_find(L_ERR, NULL));
}
END_TEST

static const unsigned long other_versions[] = {
	OPENSSL_VERSION_NUMBER + (1UL << 20), /* next minor */
	OPENSSL_VERSION_NUMBER + (1UL << 28), /* next major */
	0x1010117fUL,                         /* 1.1.1w */
};

START_TEST(test_version_mismatch_refused)
{
	fake_loaded_version = other_versions[_i];
	ck_assert_int_eq(tls_init_check_version(0), -1);
	ck_assert_ptr_nonnull(stub_log_find(L_ERR, "mismatch"));
	ck_assert_ptr_nonnull(stub_log_find(L_ERR, "tls_force_run"));
}
END_TEST

START_TEST(test_version_mismatch_forced)
{
	fake_loaded_version = other_versions[_i];
	ck_assert_int_eq(tls_init_check_version(1), 0);
	ck_assert_ptr_nonnull(stub_log_find(L_WARN, "mismatch"));
	ck_assert_ptr_null(stub_log_find(L_ERR, NULL));
}
END_TEST

/* ---- tls_init_rsa_blinding --------------------------------------------------- */

static SSL_CTX *ctx_with_key(EVP_PKEY *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	X509 *cert = ut_cert(key, "blinding.test", NULL, NULL, 0);

	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_nonnull(cert);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(cert);
	return ctx;
}

static int can_sign(EVP_PKEY *key)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t len = sizeof(sig);
	int ok;

	ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1
		 && EVP_DigestSign(md, sig, &len, (const unsigned char *)"x", 1) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

START_TEST(test_blinding_no_key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	ck_assert_int_eq(tls_init_rsa_blinding(ctx), 0);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_blinding_ec_key)
{
	EVP_PKEY *key = ut_key_ec();
	SSL_CTX *ctx = ctx_with_key(key);

	ck_assert_int_eq(tls_init_rsa_blinding(ctx), 0);
	ck_assert_ptr_null(stub_log_find(L_ERR, NULL));
	SSL_CTX_free(ctx);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_blinding_rsa_key)
{
	EVP_PKEY *key;
	SSL_CTX *ctx;

	ck_assert_int_eq(tls_init_openssl(), 0);
	stub_shm_initialized = 1;
	key = ut_key_rsa(2048);
	ck_assert_ptr_nonnull(key);
	ctx = ctx_with_key(key);
	ck_assert_int_eq(tls_init_rsa_blinding(ctx), 0);
	ck_assert_ptr_null(stub_log_find(L_ERR, NULL));
	/* The key still works from this (the main) thread. */
	ck_assert(can_sign(SSL_CTX_get0_privatekey(ctx)));
	SSL_CTX_free(ctx);
	EVP_PKEY_free(key);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_blinding_fails)
{
	EVP_PKEY *key;
	SSL_CTX *ctx;
	int r;

	ck_assert_int_eq(tls_init_openssl(), 0);
	stub_shm_initialized = 1;
	key = ut_key_rsa(2048);
	ck_assert_ptr_nonnull(key);
	ctx = ctx_with_key(key);
	stub_shm_fail_after = 0; /* the helper thread gets no memory */
	r = tls_init_rsa_blinding(ctx);
	stub_shm_fail_after = -1;
	ck_assert_int_eq(r, -1);
	ck_assert_ptr_nonnull(stub_log_find(L_ERR, "RSA blinding"));
	SSL_CTX_free(ctx);
	EVP_PKEY_free(key);
}
END_TEST

static Suite *tls_init_suite(void)
{
	Suite *s = suite_create("tls_init");
	TCase *tc;

	tc = tcase_create("allocator");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_alloc_routing);
	tcase_add_test(tc, test_realloc_routing);
	tcase_add_test(tc, test_alloc_shm_exhausted);
	tcase_add_test(tc, test_openssl_in_shm);
	tcase_add_test(tc, test_init_too_late);
	suite_add_tcase(s, tc);

	tc = tcase_create("fork");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_fork_forgets_parent_thread_state);
	tcase_add_test(tc, test_fork_without_hook_shares_state);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls_init_check_version");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_version_same);
	tcase_add_test(tc, test_version_other_patch);
	tcase_add_loop_test(tc, test_version_mismatch_refused, 0,
			sizeof(other_versions) / sizeof(other_versions[0]));
	tcase_add_loop_test(tc, test_version_mismatch_forced, 0,
			sizeof(other_versions) / sizeof(other_versions[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("tls_init_rsa_blinding");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_blinding_no_key);
	tcase_add_test(tc, test_blinding_ec_key);
	tcase_add_test(tc, test_blinding_rsa_key);
	tcase_add_test(tc, test_blinding_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tls_init_suite());
	int failed;

	/* One process per test, whatever CK_FORK says: see the top. */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
