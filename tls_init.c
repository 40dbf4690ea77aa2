/*
 * tls_init.c: where OpenSSL's memory lives, and why.
 *
 * A TLS connection is used by several processes: the TCP main process
 * creates it on accept, a TCP reader runs the handshake and decrypts, any
 * worker may encrypt and send, and whichever process drops the last
 * reference frees it. Its SSL object therefore must live in shared memory,
 * so every OpenSSL allocation is routed through tls_mem_alloc().
 *
 * Routing *everything* to shared memory is what makes other TLS modules crash
 * with several readers: OpenSSL keeps per-thread state (error queue,
 * per-thread DRBGs, RSA blinding keyed on the thread id) behind pthread keys.
 * State created in the main process before fork would be one shared object
 * that every forked child then uses and frees concurrently, since after fork
 * each child has the same thread id and the same key values.
 *
 * So memory follows the process phase:
 *  - before fork (module init in the main process): private heap (malloc).
 *    The server contexts, certificates, keys, providers and the main
 *    thread's OpenSSL state built then are copied into every child by fork
 *    and are never shared mutable state. OpenSSL reseeds each child's
 *    inherited DRBGs on its own (it compares the pid it was seeded in).
 *  - after fork (every child, marked by a pthread_atfork handler): shared
 *    memory. Objects built in a child that another process may touch (SSL
 *    objects, their BIOs and sessions) are then reachable everywhere; a
 *    child's own thread-local state is still only referenced by that child.
 * A free or realloc goes to the allocator the block came from, decided by its
 * address (shm_address_in), so a private object may be freed after fork.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"

#include "tls_compat.h"
#include "tls_init.h"

static int tls_mem_shared;

int tls_mem_is_shared(void)
{
	return tls_mem_shared;
}

static void tls_mem_after_fork(void)
{
	tls_mem_shared = 1;
}

static void *tls_mem_alloc(size_t size, const char *file, int line)
{
	if (tls_mem_shared)
		return shm_malloc(size);
	return malloc(size);
}

static void tls_mem_free(void *p, const char *file, int line)
{
	if (p == NULL)
		return;
	if (shm_address_in(p))
		shm_free(p);
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
		return shm_realloc(p, size);
	return realloc(p, size);
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
	if (pthread_atfork(NULL, NULL, tls_mem_after_fork) != 0) {
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
