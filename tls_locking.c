/*
 * tls_locking.c: the module's shared state: current domain set, connection
 * list, counters.
 */
#include <string.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"

#include "tls_domain.h"
#include "tls_locking.h"
#include "tls_mem.h"
#include "tls_server.h"

struct tls_shared *tls_shared;

int tls_locking_init(void)
{
	if (tls_shared)
		return 0;
	tls_shared = shm_malloc(sizeof(*tls_shared));
	if (tls_shared == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(tls_shared, 0, sizeof(*tls_shared));
	if (lock_init(&tls_shared->lock) == NULL) {
		shm_free(tls_shared);
		tls_shared = NULL;
		LM_ERR("cannot initialise a lock\n");
		return -1;
	}
	atomic_set(&tls_shared->connections, 0);
	atomic_set(&tls_shared->handshakes_ok, 0);
	atomic_set(&tls_shared->handshakes_failed, 0);
	atomic_set(&tls_shared->reloads, 0);
	atomic_set(&tls_shared->reloads_failed, 0);
	tls_shm_cache_counter(&tls_shared->mem_cached);
	tls_domain_sets_counter(&tls_shared->sets_live);
	return 0;
}

void tls_locking_unlock_dead(void)
{
	if (tls_shared)
		lock_release(&tls_shared->lock);
}

void tls_locking_destroy(void)
{
	if (tls_shared == NULL)
		return;
	tls_shm_cache_counter(NULL);
	tls_domain_sets_counter(NULL);
	tls_domain_set_put(tls_shared->current);
	lock_destroy(&tls_shared->lock);
	shm_free(tls_shared);
	tls_shared = NULL;
}

struct tls_domain_set *tls_set_acquire(void)
{
	struct tls_domain_set *set;

	lock_get(&tls_shared->lock);
	set = tls_shared->current;
	if (set)
		tls_domain_set_get(set);
	lock_release(&tls_shared->lock);
	return set;
}

void tls_set_publish(struct tls_domain_set *set)
{
	struct tls_domain_set *old;

	lock_get(&tls_shared->lock);
	set->generation = ++tls_shared->generation;
	old = tls_shared->current;
	tls_shared->current = set;
	lock_release(&tls_shared->lock);
	/* Outside the lock: may free a whole set. */
	tls_domain_set_put(old);
}

void tls_conn_list_add(struct tls_conn *tc)
{
	lock_get(&tls_shared->lock);
	tc->prev = NULL;
	tc->next = tls_shared->conns;
	if (tc->next)
		tc->next->prev = tc;
	tls_shared->conns = tc;
	lock_release(&tls_shared->lock);
	atomic_inc(&tls_shared->connections);
}

void tls_conn_list_rm(struct tls_conn *tc)
{
	lock_get(&tls_shared->lock);
	if (tc->prev)
		tc->prev->next = tc->next;
	else
		tls_shared->conns = tc->next;
	if (tc->next)
		tc->next->prev = tc->prev;
	tc->next = tc->prev = NULL;
	lock_release(&tls_shared->lock);
	atomic_dec(&tls_shared->connections);
}
