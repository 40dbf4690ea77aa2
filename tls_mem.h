/*
 * tls_mem.h: shared memory for OpenSSL: small blocks from shared slab pages,
 * large ones from the core's allocator, a per-process cache in front.
 */
#ifndef TLS_MEM_H
#define TLS_MEM_H

#include <stddef.h>

/* Like shm_malloc/shm_free/shm_realloc (same shared memory, any process
 * may free what another allocated), but small blocks are cut from slab pages (no
 * per-block bookkeeping of the core's allocator) and freed blocks are
 * recycled through a bounded cache of the calling process. Only for memory allocated by these
 * functions. */
void *tls_shm_alloc(size_t size);
void tls_shm_free(void *p);
void *tls_shm_realloc(void *p, size_t size);

/* Turns the cache on in this process (a child: never in the main process,
 * whose cache every child would otherwise inherit). */
void tls_shm_cache_enable(void);

/* Gives every cached block back to the shared memory pool. */
void tls_shm_cache_flush(void);

/* Where to keep the total of all processes' caches (shared memory; set
 * before fork). */
void tls_shm_cache_counter(long *counter);

/* Bytes this process holds in its cache (for tests and statistics). */
size_t tls_shm_cache_bytes(void);

/* At shutdown, in the main process once every child is gone: releases the
 * pool's lock, which a child may have held when a signal ended it (the
 * core does the same with its shared memory lock). */
void tls_shm_pool_unlock_dead(void);

/* Slab pages held, and their bytes not in blocks handed out (free blocks,
 * page headers, tails too short for a block). */
void tls_shm_pool_stats(unsigned long *pages, unsigned long *free_bytes);

#endif
