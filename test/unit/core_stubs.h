/*
 * core_stubs.h: what the unit tests can observe and steer in the stand-ins
 * for the Kamailio core (core_stubs.c).
 *
 * The module sources are linked without the core. core_stubs.c defines the
 * few core symbols they reference: the logging globals behind LM_*(), a
 * small shared-memory manager behind shm_malloc()/shm_address_in(), and
 * ip_addr2sbuf(). Everything here is written for the tests; nothing is
 * taken from the core's sources, only its headers' declarations.
 */
#ifndef UNIT_CORE_STUBS_H
#define UNIT_CORE_STUBS_H

#include <stddef.h>

/* ---- logging ------------------------------------------------------------
 * Every LM_*() of the code under test lands in a capture ring (and on
 * stderr when UNIT_LOG=1 is in the environment). Levels are the core's L_*
 * values (L_ERR, L_WARN, L_INFO, ...). */

#define STUB_LOG_ANY 1000 /* level wildcard for stub_log_find() */

void stub_log_reset(void);
int stub_log_count(void);
/* The newest captured message of that level (or any level with
 * STUB_LOG_ANY) containing needle (NULL: any); NULL if none. */
const char *stub_log_find(int level, const char *needle);
/* Level of the message returned by the last successful stub_log_find(). */
int stub_log_found_level(void);

/* ---- shared memory --------------------------------------------------------
 * shm_malloc() and friends allocate from one MAP_SHARED mapping, so that
 * shm_address_in() is exact and a block really is visible across fork(). */

struct stub_shm_stats {
	unsigned long mallocs;
	unsigned long reallocs;
	unsigned long frees;
	unsigned long bad_frees; /* pointer not from the stub's mapping */
	long live;               /* mallocs - frees (reallocs are neutral) */
};

/* What the core's shm_initialized() answers (default 0: not yet). */
extern int stub_shm_initialized;
/* Counters of this process (a forked child starts with its parent's). */
extern struct stub_shm_stats stub_shm_stats;
/* >= 0: that many more allocations succeed, then every one fails (NULL).
 * -1 (the default): never fail. */
extern long stub_shm_fail_after;
/* Zeroes the counters; back to "never fail" and "not initialised". */
void stub_shm_reset(void);

/* ---- ip_addr2sbuf ---------------------------------------------------------
 * Behaves as the core documents it (bytes written, no terminating NUL,
 * <= 0 when the buffer is shorter than the longest address of the family or
 * the family is unknown). Set stub_ip_addr2sbuf_ret to force a return value
 * (nothing written) instead; STUB_IP_REAL restores the real behaviour. */
#define STUB_IP_REAL 0x7fffffff
extern int stub_ip_addr2sbuf_ret;
/* Calls seen and the len argument of the last one. */
extern int stub_ip_addr2sbuf_calls;
extern int stub_ip_addr2sbuf_last_len;

#endif
