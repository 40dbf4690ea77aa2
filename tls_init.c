/*
 * tls_init.c: where OpenSSL's memory lives, and why.
 *
 * A TLS connection is used by several processes: the TCP main process
 * creates its SSL object on accept (a worker, on connect), a TCP reader runs
 * the handshake and decrypts, any worker may encrypt and send, and the
 * process that drops the last reference frees it. The SSL object, and every
 * reference-counted object it points to (its SSL_CTX, certificates, keys,
 * fetched ciphers and digests), must therefore be one object in shared
 * memory whose counts every process updates atomically: a per-process copy
 * would be counted up in one process and down in another. So every OpenSSL
 * allocation goes to shared memory (tls_mem_alloc), from the first one on.
 *
 * What must NOT be shared is OpenSSL's per-thread state (error queue,
 * per-thread DRBGs, thread-stop handlers). OpenSSL finds it through pthread
 * keys; a child forked after the main process created such state would
 * inherit the key values, i.e. pointers to the same shared objects, and every
 * child would use and free them concurrently (Kamailio issues #3695, #3885).
 * So the main process frees its own per-thread state right before the
 * core forks (tls_init_before_fork), and, as a second line, a
 * pthread_atfork() child handler forgets in each new process every
 * thread-specific value that points into shared memory: the child builds its
 * own state on first use (in shared memory, but referenced only by that
 * child). OpenSSL reseeds DRBGs by itself when it sees a new pid.
 *
 * One more per-thread fact survives fork: the thread id. RSA blinding is
 * keyed on it, and every forked process has the main thread's id, so each
 * would take a shared key's blinding as its own and use it without a lock.
 * tls_init_rsa_blinding() makes the first blinding of each key from a short
 * lived helper thread: no process's main thread then matches it, and OpenSSL
 * takes its locked, shared blinding path in every process.
 */
#include <pthread.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/shm_init.h"

#include "tls_compat.h"
#include "tls_init.h"
#include "tls_mem.h"

/* Shared memory once the core has it; the core initialises it before any
 * module's mod_init(), so only allocations made while modules are being
 * loaded (by OpenSSL itself, if anything) land in the private heap. */
static void *tls_mem_alloc(size_t size, const char *file, int line)
{
	if (shm_initialized())
		return tls_shm_alloc(size);
	return malloc(size);
}

static void tls_mem_free(void *p, const char *file, int line)
{
	if (p == NULL)
		return;
	if (shm_address_in(p))
		tls_shm_free(p);
	else
		free(p);
}

static void *tls_mem_realloc(void *p, size_t size, const char *file, int line)
{
	if (p == NULL)
		return tls_mem_alloc(size, file, line);
	if (size == 0) {
		tls_mem_free(p, file, line);
		return NULL;
	}
	if (shm_address_in(p))
		return tls_shm_realloc(p, size);
	return realloc(p, size);
}

/* In every new child: drop inherited thread-specific pointers to shared
 * memory (OpenSSL's per-thread state of the parent). Only the pthread keys
 * exist, never the objects, in the child's view afterwards: the parent's
 * objects stay the parent's. */
static void tls_forget_parent_thread_state(void)
{
	tls_shm_cache_enable();
	pthread_key_t k;
	void *v;

	for (k = 0; k < PTHREAD_KEYS_MAX; k++) {
		v = pthread_getspecific(k);
		if (v != NULL && shm_address_in(v))
			pthread_setspecific(k, NULL);
	}
}

void tls_init_before_fork(void)
{
	/* The main process's own per-thread state (error queue, DRBGs, the
	 * list of thread-stop handlers) is freed here, before any fork: part
	 * of it was made before shared memory existed, in private memory that
	 * the atfork handler cannot tell from other libraries' state, with
	 * pointers into shared memory. Inherited, it would make every child
	 * reuse and free the same shared buffers. */
	OPENSSL_thread_stop();
}

int tls_init_openssl(void)
{
	if (!CRYPTO_set_mem_functions(tls_mem_alloc, tls_mem_realloc,
				tls_mem_free)) {
		LM_ERR("OpenSSL was already used by a module loaded before tls:"
				" load tls.so first (before any other module that uses"
				" OpenSSL)\n");
		return -1;
	}
	/* No atexit() cleanup: every process would free the shared objects on
	 * its own exit, and the main process after the core has already
	 * released shared memory. The operating system reclaims it all. */
	if (!OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL)) {
		LM_ERR("OpenSSL initialisation failed\n");
		return -1;
	}
	if (pthread_atfork(NULL, NULL, tls_forget_parent_thread_state) != 0) {
		LM_ERR("pthread_atfork() failed\n");
		return -1;
	}
	return 0;
}

int tls_init_check_version(int force)
{
	unsigned long built = OPENSSL_VERSION_NUMBER;
	unsigned long loaded = OpenSSL_version_num();

	if (TLS_OSSL_MAJOR(built) == TLS_OSSL_MAJOR(loaded)
			&& TLS_OSSL_MINOR(built) == TLS_OSSL_MINOR(loaded)) {
		LM_INFO("using %s (built with %s)\n", OpenSSL_version(OPENSSL_VERSION),
				OPENSSL_VERSION_TEXT);
		return 0;
	}
	if (force) {
		LM_WARN("OpenSSL version mismatch: built with %s, running %s;"
				" starting anyway because tls_force_run is set\n",
				OPENSSL_VERSION_TEXT, OpenSSL_version(OPENSSL_VERSION));
		return 0;
	}
	LM_ERR("OpenSSL version mismatch: built with %s, running %s (set"
			" tls_force_run=1 to start anyway)\n",
			OPENSSL_VERSION_TEXT, OpenSSL_version(OPENSSL_VERSION));
	return -1;
}

static void *tls_blinding_thread(void *arg)
{
	EVP_PKEY *pkey = arg;
	EVP_PKEY_CTX *pctx;
	unsigned char md[32] = {0}, sig[2048];
	size_t siglen = sizeof(sig);
	void *ok = NULL;

	pctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (pctx && EVP_PKEY_sign_init(pctx) == 1
			&& EVP_PKEY_sign(pctx, sig, &siglen, md, sizeof(md)) == 1)
		ok = pkey;
	EVP_PKEY_CTX_free(pctx);
	/* This thread's OpenSSL state is freed here, not left to a fork. */
	OPENSSL_thread_stop();
	return ok;
}

int tls_init_rsa_blinding(SSL_CTX *ctx)
{
	EVP_PKEY *pkey = SSL_CTX_get0_privatekey(ctx);
	pthread_t t;
	void *ok = NULL;

	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
		return 0;
	if (pthread_create(&t, NULL, tls_blinding_thread, pkey) != 0
			|| pthread_join(t, &ok) != 0 || ok == NULL) {
		LM_ERR("cannot prepare RSA blinding for the private key\n");
		return -1;
	}
	return 0;
}
