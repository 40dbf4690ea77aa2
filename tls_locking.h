/*
 * tls_locking.h: the module's own cross-process state and how it is
 * protected.
 *
 * Lock discipline of the module as a whole:
 *  - a connection's TLS state (struct tls_conn) is guarded by the core's
 *    per-connection write_lock (see tls_server.h);
 *  - tls_shared->lock guards the current domain set pointer and the list of
 *    TLS connections (both short critical sections, no OpenSSL call inside
 *    except those made by tls.list/tls.kill while walking the list);
 *  - order: tls_shared->lock, then a connection's write_lock; never the
 *    reverse (no path holding a write_lock takes tls_shared->lock);
 *  - OpenSSL's internal locks (pthread mutexes, made process-shared by the
 *    core's TLS_PTHREAD_MUTEX_SHARED build) guard OpenSSL's own objects;
 *  - counters are atomic, lock-free.
 */
#ifndef TLS_LOCKING_H
#define TLS_LOCKING_H

#include "core/atomic_ops.h"
#include "core/locking.h"

struct tls_domain_set;
struct tls_conn;

/* State shared by all processes (shared memory, allocated before fork). */
struct tls_shared {
	gen_lock_t lock;
	struct tls_domain_set *current; /* what new connections use */
	unsigned int generation;        /* of current */
	struct tls_conn *conns;         /* every live TLS connection */
	atomic_t connections;
	atomic_t handshakes_ok;         /* since start */
	atomic_t handshakes_failed;
	atomic_t reloads;
	atomic_t reloads_failed;
	long mem_cached;                /* bytes in the processes' block caches
									   (tls_mem.c), atomic */
	int low_mem_logged[2];          /* a low_mem_threshold crossing was
									   logged (tls_server.c), atomic */
	long sets_live;                 /* domain sets (generations) not yet
									   freed (tls_domain.c), atomic */
};

extern struct tls_shared *tls_shared;

/* Allocates the shared state; before fork. 0 or -1. */
int tls_locking_init(void);
void tls_locking_destroy(void);
/* At shutdown, once every child is gone: releases the lock a child may have
 * held when it was ended (see mod_destroy). */
void tls_locking_unlock_dead(void);

/* The current domain set, with a reference the caller must put. */
struct tls_domain_set *tls_set_acquire(void);

/* Makes set current (taking over the caller's reference); the previous set
 * loses the module's reference and is freed by its last connection. */
void tls_set_publish(struct tls_domain_set *set);

void tls_conn_list_add(struct tls_conn *tc);
void tls_conn_list_rm(struct tls_conn *tc);

static inline void tls_stats_handshake(int ok)
{
	if (tls_shared)
		atomic_inc(ok ? &tls_shared->handshakes_ok
					  : &tls_shared->handshakes_failed);
}

#endif
