/*
 * tls_locking.c: allocation of the module's shared, lock-free state.
 */
#include <string.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"

#include "tls_locking.h"

struct tls_stats *tls_stats;

int tls_locking_init(void)
{
	if (tls_stats)
		return 0;
	tls_stats = shm_malloc(sizeof(*tls_stats));
	if (tls_stats == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(tls_stats, 0, sizeof(*tls_stats));
	atomic_set(&tls_stats->connections, 0);
	atomic_set(&tls_stats->handshakes_ok, 0);
	atomic_set(&tls_stats->handshakes_failed, 0);
	return 0;
}

void tls_locking_destroy(void)
{
	if (tls_stats) {
		shm_free(tls_stats);
		tls_stats = NULL;
	}
}
