/*
 * tls_mem.c: OpenSSL's shared memory, recycled per process.
 *
 * A TLS handshake makes some hundreds of small allocations and frees most of
 * them before it ends. Kamailio's shared memory allocator takes a global
 * lock for each, and its default (q_malloc) searches its free lists
 * linearly: measured, a third of a reader's CPU during new handshakes went
 * to q_malloc. So small blocks freed by a process are kept in a cache of
 * that process, by size class, and handed out again by it:
 *  - the blocks are ordinary shared memory, so a block allocated in one
 *    process may be freed in another (it then joins that process's cache);
 *  - the cache is process-private (static variables): no lock;
 *  - it is bounded (TLS_MEM_CACHE_MAX bytes per process); past the bound a
 *    freed block goes back to the shared pool;
 *  - it is enabled only in children (tls_shm_cache_enable from the fork
 *    hook): a cache in the main process would be inherited by every child,
 *    which would then all hand out the same blocks.
 * Each block starts with a 16-byte header (keeps 16-byte alignment) holding
 * its class, or the requested size for a block too large for any class.
 */
#include <stdint.h>
#include <string.h>

#include "core/mem/shm_mem.h"

#include "tls_mem.h"

#define TLS_MEM_MAGIC 0x746c736dU /* "tlsm" */
#define TLS_MEM_LARGE 0xffU
#define TLS_MEM_CACHE_MAX (256 * 1024)

struct tls_mem_hdr {
	uint32_t magic;
	uint32_t cls;  /* index in tls_mem_classes, or TLS_MEM_LARGE */
	uint64_t size; /* usable bytes */
};

static const uint32_t tls_mem_classes[] = {
	16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
	3072, 4096
};
#define TLS_MEM_NCLASSES (sizeof(tls_mem_classes) / sizeof(tls_mem_classes[0]))

/* Free blocks of this process: a singly linked list per class, threaded
 * through the first bytes after each header. */
struct tls_mem_free {
	struct tls_mem_free *next;
};

static struct tls_mem_free *tls_mem_cache[TLS_MEM_NCLASSES];
static size_t tls_mem_cached;
static int tls_mem_cache_on;
/* Bytes cached by all processes together (shared, atomic), so that the
 * shared memory the module holds for reuse can be told from a leak. */
static long *tls_mem_cached_all;

void tls_shm_cache_counter(long *counter)
{
	tls_mem_cached_all = counter;
}

static void tls_mem_count(long delta)
{
	tls_mem_cached += (size_t)delta;
	if (tls_mem_cached_all)
		__atomic_add_fetch(tls_mem_cached_all, delta, __ATOMIC_RELAXED);
}

static int tls_mem_class(size_t size)
{
	unsigned int i;

	for (i = 0; i < TLS_MEM_NCLASSES; i++)
		if (size <= tls_mem_classes[i])
			return (int)i;
	return -1;
}

static void *tls_mem_user(struct tls_mem_hdr *h)
{
	return h + 1;
}

static struct tls_mem_hdr *tls_mem_hdr(void *p)
{
	return (struct tls_mem_hdr *)p - 1;
}

void *tls_shm_alloc(size_t size)
{
	struct tls_mem_hdr *h;
	int cls = tls_mem_class(size);
	size_t usable = cls >= 0 ? tls_mem_classes[cls] : size;

	if (cls >= 0 && tls_mem_cache[cls]) {
		struct tls_mem_free *f = tls_mem_cache[cls];
		tls_mem_cache[cls] = f->next;
		tls_mem_count(-(long)usable);
		return f;
	}
	h = shm_malloc(sizeof(*h) + usable);
	if (h == NULL)
		return NULL;
	h->magic = TLS_MEM_MAGIC;
	h->cls = cls >= 0 ? (uint32_t)cls : TLS_MEM_LARGE;
	h->size = usable;
	return tls_mem_user(h);
}

void tls_shm_free(void *p)
{
	struct tls_mem_hdr *h;
	struct tls_mem_free *f;

	if (p == NULL)
		return;
	h = tls_mem_hdr(p);
	if (h->cls != TLS_MEM_LARGE && tls_mem_cache_on
			&& tls_mem_cached + h->size <= TLS_MEM_CACHE_MAX) {
		f = p;
		f->next = tls_mem_cache[h->cls];
		tls_mem_cache[h->cls] = f;
		tls_mem_count((long)h->size);
		return;
	}
	shm_free(h);
}

void *tls_shm_realloc(void *p, size_t size)
{
	struct tls_mem_hdr *h;
	void *q;

	if (p == NULL)
		return tls_shm_alloc(size);
	h = tls_mem_hdr(p);
	if (size <= h->size && (h->cls != TLS_MEM_LARGE || size * 2 > h->size))
		return p;
	/* Always a new block and a copy: q_malloc's own realloc was seen to
	 * lose memory on every reload (large blocks grown by OpenSSL while
	 * loading certificates). */
	q = tls_shm_alloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, h->size < size ? h->size : size);
	tls_shm_free(p);
	return q;
}

void tls_shm_cache_enable(void)
{
	/* Whatever the parent had cached is the parent's: forget it here. */
	memset(tls_mem_cache, 0, sizeof(tls_mem_cache));
	tls_mem_cached = 0;
	tls_mem_cache_on = 1;
}

void tls_shm_cache_flush(void)
{
	struct tls_mem_free *f;
	unsigned int i;

	for (i = 0; i < TLS_MEM_NCLASSES; i++) {
		while ((f = tls_mem_cache[i]) != NULL) {
			tls_mem_cache[i] = f->next;
			tls_mem_count(-(long)tls_mem_hdr((void *)f)->size);
			shm_free(tls_mem_hdr((void *)f));
		}
	}
}

size_t tls_shm_cache_bytes(void)
{
	return tls_mem_cached;
}
