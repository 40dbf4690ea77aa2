/*
 * tls_locking.h: the module's own cross-process state and how it is
 * protected.
 *
 * Lock discipline of the module as a whole:
 *  - a connection's TLS state (struct tls_conn) is guarded by the core's
 *    per-connection write_lock (see tls_server.h); it is the only lock held
 *    while calling into libssl for a connection, and no other lock is taken
 *    while holding it, so there is no lock order to get wrong;
 *  - OpenSSL's internal locks (pthread mutexes, made process-shared by the
 *    core's TLS_PTHREAD_MUTEX_SHARED build) guard OpenSSL's own objects;
 *  - counters below are atomic, lock-free.
 */
#ifndef TLS_LOCKING_H
#define TLS_LOCKING_H

#include "core/atomic_ops.h"

/* Counters shared by all processes (shared memory, atomic updates). */
struct tls_stats {
	atomic_t connections;    /* TLS states alive */
	atomic_t handshakes_ok;  /* since start */
	atomic_t handshakes_failed;
};

extern struct tls_stats *tls_stats;

/* Allocates the shared state; before fork. 0 or -1. */
int tls_locking_init(void);
void tls_locking_destroy(void);

static inline void tls_stats_conn(int delta)
{
	if (tls_stats)
		atomic_add(&tls_stats->connections, delta);
}

static inline void tls_stats_handshake(int ok)
{
	if (tls_stats)
		atomic_inc(ok ? &tls_stats->handshakes_ok
					  : &tls_stats->handshakes_failed);
}

#endif
