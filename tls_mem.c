/*
 * tls_mem.c: OpenSSL's memory, in Kamailio's shared memory.
 *
 * Two costs of the core's allocator matter for TLS:
 *  - CPU: a handshake makes hundreds of small allocations and frees most of
 *    them before it ends. The core's allocator takes a global lock for each
 *    and q_malloc (Debian's default) searches its free lists linearly:
 *    measured, a third of a reader's CPU during new handshakes.
 *  - memory: an idle TLS connection keeps about 36 OpenSSL blocks, most of
 *    them small (56 to 960 bytes). Debian's build keeps 104 bytes of
 *    allocator bookkeeping per block (DBG_QM_MALLOC): over 3.5 KB per
 *    connection on top of about 13.5 KB of payload.
 *
 * So blocks come from two places:
 *  1. small blocks (up to TLS_SLAB_MAX_STRIDE bytes with their tag) from
 *     slab pages: 16 KB pages taken from shared memory, each cut into blocks
 *     of one size class. A block costs its 8-byte tag and its rounding to the
 *     class, nothing else. The pages and their free lists are shared by all
 *     processes and protected by the pool's lock (one per pool; the lock is
 *     held only to pop or push a block, or to take or give back a page).
 *     A page that becomes empty goes back to shared memory, unless it is the
 *     only page of its class with free blocks (one spare per class).
 *  2. larger blocks directly from the core's allocator, with a 16-byte
 *     header (usable size, tag).
 * And in front of both, a per-process cache of freed blocks by class:
 *  - the blocks stay allocated from their slab page or from shared memory,
 *    so a block allocated in one process may be freed in another (it then
 *    joins that process's cache);
 *  - the cache is process-private (static variables): no lock; only the
 *    thread that enabled it (the process's main thread) uses it;
 *  - it is bounded (TLS_MEM_CACHE_MAX bytes per process); past the bound a
 *    freed block goes back to its page or to the core's allocator;
 *  - it is enabled only in children (tls_shm_cache_enable from the fork
 *    hook): a cache in the main process would be inherited by every child,
 *    which would then all hand out the same blocks.
 *
 * Ownership: the pool (struct tls_slab_pool) is created by the first
 * allocation in shared memory, in the main process before any fork, and
 * lives as long as shared memory. A slab page belongs to the pool named in
 * its header; its free list, its counts and the pool's lists change only
 * under that pool's lock. A block handed out belongs to whoever holds it;
 * a block in a per-process cache belongs to that process.
 *
 * Every block handed to OpenSSL is 16-byte aligned (slab blocks) or aligned
 * like the core's blocks (large ones), and the 8 bytes before it are its tag.
 *
 * Built with TLS_MEM_DIRECT (the receive-path fuzz target, whose shared
 * memory is malloc), every block is a block of the core's allocator and
 * nothing is cached, so that AddressSanitizer sees each one.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/dprint.h"
#include "core/locking.h"
#include "core/mem/shm_mem.h"

#include "tls_mem.h"

#define TLS_MEM_MAGIC 0x6d74U /* "tm" */
#define TLS_MEM_KIND_SLAB 1
#define TLS_MEM_KIND_SHM 2
#define TLS_MEM_NOCLASS 0xffU
#define TLS_MEM_CACHE_MAX (256 * 1024)

/* The 8 bytes right before every block. */
struct tls_mem_tag {
	uint16_t magic;
	uint8_t kind;  /* TLS_MEM_KIND_* */
	uint8_t cls;   /* cache class, or TLS_MEM_NOCLASS (large, not cached) */
	uint32_t off;  /* slab block: its offset from the start of its page */
};

/* Large blocks: [shm header][size][tag][user bytes...] */
struct tls_mem_big {
	uint64_t size; /* usable bytes */
	struct tls_mem_tag tag;
};

/* ------------------------------------------------------------ classes */

/* Slab classes by stride (block plus tag, a multiple of 16):
 * 16..256 by 16, 288..512 by 32, 576..1024 by 64: 32 classes. */
#define TLS_SLAB_NCLASSES 32
#define TLS_SLAB_MAX_STRIDE 1024
/* Large classes for the per-process cache: usable sizes rounded up to
 * TLS_BIG_STEP, up to TLS_BIG_MAX (OpenSSL's record buffers are ~17 KB and
 * are allocated and freed per read and write). */
#define TLS_BIG_STEP 256
#define TLS_BIG_MAX (34 * 1024)
#define TLS_BIG_NCLASSES (TLS_BIG_MAX / TLS_BIG_STEP)
#define TLS_MEM_NCLASSES (TLS_SLAB_NCLASSES + TLS_BIG_NCLASSES)

#define TLS_SLAB_PAGE (16 * 1024)

static int tls_slab_class(size_t size)
{
	size_t need = size + sizeof(struct tls_mem_tag);

	if (need <= 256)
		return (int)((need + 15) / 16) - 1;
	if (need <= 512)
		return 16 + (int)((need - 256 + 31) / 32) - 1;
	if (need <= TLS_SLAB_MAX_STRIDE)
		return 24 + (int)((need - 512 + 63) / 64) - 1;
	return -1;
}

static size_t tls_slab_stride(int cls)
{
	if (cls < 16)
		return (size_t)(cls + 1) * 16;
	if (cls < 24)
		return 256 + (size_t)(cls - 15) * 32;
	return 512 + (size_t)(cls - 23) * 64;
}

/* Usable bytes of a block of cache class cls. */
static size_t tls_mem_class_size(unsigned int cls)
{
	if (cls < TLS_SLAB_NCLASSES)
		return tls_slab_stride((int)cls) - sizeof(struct tls_mem_tag);
	return (size_t)(cls - TLS_SLAB_NCLASSES + 1) * TLS_BIG_STEP;
}

/* Shared memory a block of cache class cls takes, bookkeeping included (as
 * the core counts it in `used`): what a cached block holds back. */
static size_t tls_mem_class_cost(unsigned int cls)
{
	if (cls < TLS_SLAB_NCLASSES)
		return tls_slab_stride((int)cls);
	return tls_mem_class_size(cls) + sizeof(struct tls_mem_big);
}

/* ------------------------------------------------------------ slab pages */

struct tls_slab_pool;

struct tls_slab {
	struct tls_slab *next, *prev; /* pages of the class with free blocks */
	struct tls_slab_pool *pool;
	void *free;        /* freed blocks (user pointers), linked through them */
	char *bump;        /* next never-used block (its tag) */
	char *end;
	uint32_t used;     /* blocks out of the page (in use or in a cache) */
	uint32_t nblocks;
	uint32_t stride;
	uint32_t cls;
};

struct tls_slab_pool {
	gen_lock_t lock;
	struct tls_slab *avail[TLS_SLAB_NCLASSES]; /* pages with a free block */
	unsigned long pages;
	unsigned long free_bytes; /* of the pages, not in blocks handed out */
};

static struct tls_slab_pool *tls_pool;

static struct tls_slab_pool *tls_pool_get(void)
{
	struct tls_slab_pool *pool;

	if (tls_pool)
		return tls_pool;
	pool = shm_malloc(sizeof(*pool));
	if (pool == NULL)
		return NULL;
	memset(pool, 0, sizeof(*pool));
	if (lock_init(&pool->lock) == NULL) {
		shm_free(pool);
		return NULL;
	}
	tls_pool = pool;
	return pool;
}

static void tls_slab_unlink(struct tls_slab_pool *pool, struct tls_slab *pg)
{
	if (pg->prev)
		pg->prev->next = pg->next;
	else
		pool->avail[pg->cls] = pg->next;
	if (pg->next)
		pg->next->prev = pg->prev;
	pg->next = pg->prev = NULL;
}

static void tls_slab_push(struct tls_slab_pool *pool, struct tls_slab *pg)
{
	pg->prev = NULL;
	pg->next = pool->avail[pg->cls];
	if (pg->next)
		pg->next->prev = pg;
	pool->avail[pg->cls] = pg;
}

/* A new page for class cls; called with the pool locked. */
static struct tls_slab *tls_slab_new(struct tls_slab_pool *pool, int cls)
{
	struct tls_slab *pg = shm_malloc(TLS_SLAB_PAGE);
	uintptr_t first;

	if (pg == NULL)
		return NULL;
	memset(pg, 0, sizeof(*pg));
	pg->pool = pool;
	pg->cls = (uint32_t)cls;
	pg->stride = (uint32_t)tls_slab_stride(cls);
	/* the first tag at 8 mod 16: every user pointer 16-byte aligned */
	first = (uintptr_t)(pg + 1) + sizeof(struct tls_mem_tag);
	first = ((first + 15) & ~(uintptr_t)15) - sizeof(struct tls_mem_tag);
	pg->bump = (char *)first;
	pg->end = (char *)pg + TLS_SLAB_PAGE;
	pg->nblocks = (uint32_t)((uintptr_t)(pg->end - pg->bump) / pg->stride);
	pool->pages++;
	/* the whole page, header and tail included: all of it is held for
	 * reuse until blocks are handed out */
	pool->free_bytes += TLS_SLAB_PAGE;
	tls_slab_push(pool, pg);
	return pg;
}

/* No free block left in the page, none left to cut. */
static int tls_slab_full(const struct tls_slab *pg)
{
	return pg->free == NULL && pg->bump + pg->stride > pg->end;
}

static void *tls_slab_alloc(int cls)
{
	struct tls_slab_pool *pool = tls_pool_get();
	struct tls_slab *pg;
	struct tls_mem_tag *t;
	void *p;

	if (pool == NULL)
		return NULL;
	lock_get(&pool->lock);
	pg = pool->avail[cls];
	if (pg == NULL && (pg = tls_slab_new(pool, cls)) == NULL) {
		lock_release(&pool->lock);
		return NULL;
	}
	if (pg->free) {
		p = pg->free;
		pg->free = *(void **)p;
	} else {
		t = (struct tls_mem_tag *)pg->bump;
		pg->bump += pg->stride;
		t->magic = TLS_MEM_MAGIC;
		t->kind = TLS_MEM_KIND_SLAB;
		t->cls = (uint8_t)cls;
		t->off = (uint32_t)((char *)t - (char *)pg);
		p = t + 1;
	}
	pg->used++;
	pool->free_bytes -= pg->stride;
	if (tls_slab_full(pg))
		tls_slab_unlink(pool, pg);
	lock_release(&pool->lock);
	return p;
}

static void tls_slab_free(void *p, struct tls_mem_tag *t)
{
	struct tls_slab *pg = (struct tls_slab *)((char *)t - t->off);
	struct tls_slab_pool *pool = pg->pool;
	int was_full;

	lock_get(&pool->lock);
	was_full = tls_slab_full(pg);
	*(void **)p = pg->free;
	pg->free = p;
	pg->used--;
	pool->free_bytes += pg->stride;
	if (was_full)
		tls_slab_push(pool, pg);
	if (pg->used == 0 && (pool->avail[pg->cls] != pg || pg->next != NULL)) {
		/* empty, and not the class's only page with room: give it back */
		tls_slab_unlink(pool, pg);
		pool->pages--;
		pool->free_bytes -= TLS_SLAB_PAGE;
		lock_release(&pool->lock);
		shm_free(pg);
		return;
	}
	lock_release(&pool->lock);
}

/* ------------------------------------------------------------ large blocks */

static void *tls_big_alloc(size_t usable, unsigned int cls)
{
	struct tls_mem_big *b = shm_malloc(sizeof(*b) + usable);

	if (b == NULL)
		return NULL;
	b->size = usable;
	b->tag.magic = TLS_MEM_MAGIC;
	b->tag.kind = TLS_MEM_KIND_SHM;
	b->tag.cls = (uint8_t)cls;
	b->tag.off = 0;
	return b + 1;
}

static struct tls_mem_big *tls_big_hdr(void *p)
{
	return (struct tls_mem_big *)p - 1;
}

/* ------------------------------------------------------------ the cache */

/* Free blocks of this process: a singly linked list per class, threaded
 * through the first bytes of each block. */
struct tls_mem_free {
	struct tls_mem_free *next;
};

static struct tls_mem_free *tls_mem_cache[TLS_MEM_NCLASSES];
static size_t tls_mem_cached;
static int tls_mem_cache_on;
/* The thread the cache belongs to (the process's main thread). OpenSSL may
 * also run in threads some other module starts (libcurl in
 * http_async_client, say): they bypass the cache, which has no lock, and
 * use the slab pages and the core's allocator, which have theirs. */
static pthread_t tls_mem_owner;

static int tls_mem_cache_mine(void)
{
	return tls_mem_cache_on && pthread_equal(pthread_self(), tls_mem_owner);
}
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

static struct tls_mem_tag *tls_mem_tag_of(void *p)
{
	return (struct tls_mem_tag *)p - 1;
}

/* Usable bytes of block p. */
static size_t tls_mem_usable(void *p, struct tls_mem_tag *t)
{
	if (t->kind == TLS_MEM_KIND_SLAB)
		return tls_mem_class_size(t->cls);
	return (size_t)tls_big_hdr(p)->size;
}

/* A block goes back where it came from (not to the cache). */
static void tls_mem_release(void *p, struct tls_mem_tag *t)
{
	if (t->kind == TLS_MEM_KIND_SLAB)
		tls_slab_free(p, t);
	else
		shm_free(tls_big_hdr(p));
}

void *tls_shm_alloc(size_t size)
{
	int cls = tls_slab_class(size);
	unsigned int ccls;
	size_t usable;

#ifdef TLS_MEM_DIRECT
	return tls_big_alloc(size, TLS_MEM_NOCLASS);
#endif
	if (cls >= 0) {
		ccls = (unsigned int)cls;
	} else if (size <= TLS_BIG_MAX) {
		ccls = TLS_SLAB_NCLASSES + (unsigned int)((size - 1) / TLS_BIG_STEP);
	} else {
		return tls_big_alloc(size, TLS_MEM_NOCLASS);
	}
	if (tls_mem_cache[ccls] && tls_mem_cache_mine()) {
		struct tls_mem_free *f = tls_mem_cache[ccls];
		tls_mem_cache[ccls] = f->next;
		tls_mem_count(-(long)tls_mem_class_cost(ccls));
		return f;
	}
	if (cls >= 0)
		return tls_slab_alloc(cls);
	usable = tls_mem_class_size(ccls);
	return tls_big_alloc(usable, ccls);
}

void tls_shm_free(void *p)
{
	struct tls_mem_tag *t;
	struct tls_mem_free *f;
	size_t cost;

	if (p == NULL)
		return;
	t = tls_mem_tag_of(p);
	if (t->magic != TLS_MEM_MAGIC
			|| (t->kind != TLS_MEM_KIND_SLAB && t->kind != TLS_MEM_KIND_SHM)) {
		/* never ours, or overwritten: leaking it is the safe choice */
		LM_BUG("TLS memory block %p has a bad tag (%x/%u): not freed\n", p,
				(unsigned int)t->magic, (unsigned int)t->kind);
		return;
	}
	if (t->cls != TLS_MEM_NOCLASS && tls_mem_cache_mine()) {
		cost = tls_mem_class_cost(t->cls);
		if (tls_mem_cached + cost <= TLS_MEM_CACHE_MAX) {
			f = p;
			f->next = tls_mem_cache[t->cls];
			tls_mem_cache[t->cls] = f;
			tls_mem_count((long)cost);
			return;
		}
	}
	tls_mem_release(p, t);
}

void *tls_shm_realloc(void *p, size_t size)
{
	struct tls_mem_tag *t;
	size_t usable;
	void *q;

	if (p == NULL)
		return tls_shm_alloc(size);
	t = tls_mem_tag_of(p);
	usable = tls_mem_usable(p, t);
	if (size <= usable && size * 2 > usable)
		return p;
	/* Always a new block and a copy: q_malloc's own realloc was seen to
	 * lose memory on every reload (large blocks grown by OpenSSL while
	 * loading certificates). */
	q = tls_shm_alloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, usable < size ? usable : size);
	tls_shm_free(p);
	return q;
}

void tls_shm_cache_enable(void)
{
	/* Whatever the parent had cached is the parent's: forget it here. */
	memset(tls_mem_cache, 0, sizeof(tls_mem_cache));
	tls_mem_cached = 0;
	tls_mem_owner = pthread_self();
	tls_mem_cache_on = 1;
}

void tls_shm_cache_flush(void)
{
	struct tls_mem_free *f;
	unsigned int i;

	if (tls_mem_cache_on && !tls_mem_cache_mine())
		return;
	for (i = 0; i < TLS_MEM_NCLASSES; i++) {
		while ((f = tls_mem_cache[i]) != NULL) {
			tls_mem_cache[i] = f->next;
			tls_mem_count(-(long)tls_mem_class_cost(i));
			tls_mem_release(f, tls_mem_tag_of(f));
		}
	}
}

size_t tls_shm_cache_bytes(void)
{
	return tls_mem_cached;
}

void tls_shm_pool_unlock_dead(void)
{
	if (tls_pool)
		lock_release(&tls_pool->lock);
}

void tls_shm_pool_stats(unsigned long *pages, unsigned long *free_bytes)
{
	struct tls_slab_pool *pool = tls_pool;

	*pages = 0;
	*free_bytes = 0;
	if (pool == NULL)
		return;
	lock_get(&pool->lock);
	*pages = pool->pages;
	*free_bytes = pool->free_bytes;
	lock_release(&pool->lock);
}
