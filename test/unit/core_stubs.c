/*
 * core_stubs.c: stand-ins for the Kamailio core symbols that the module's
 * unit-tested sources reference (see core_stubs.h). Only the core headers'
 * declarations are used (so that every signature is checked against them);
 * the bodies are the tests' own.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "core/dprint.h"
#include "core/ip_addr.h"
#include "core/mem/shm.h"
#include "core/shm_init.h"

#include "core_stubs.h"

/* ---- logging ------------------------------------------------------------ */

int process_no;
int log_stderr;
int log_color;
str *log_prefix_val;
volatile int dprint_crit;

/* Indexed by level - L_ALERT (L_ALERT .. L_DBG). */
struct log_level_info log_level_info[] = {
	{"ALERT", LOG_ALERT},   /* L_ALERT */
	{"BUG", LOG_CRIT},      /* L_BUG */
	{"CRITICAL", LOG_CRIT}, /* L_CRIT2 */
	{"", LOG_CRIT},         /* L_CRIT */
	{"ERROR", LOG_ERR},     /* L_ERR */
	{"WARNING", LOG_WARNING},
	{"NOTICE", LOG_NOTICE},
	{"INFO", LOG_INFO},
	{"DEBUG", LOG_DEBUG},
};

#define STUB_LOG_RING 64
#define STUB_LOG_LEN 1024

static struct {
	int level;
	char msg[STUB_LOG_LEN];
} stub_log_ring[STUB_LOG_RING];
static int stub_log_n; /* messages captured since the last reset */
static int stub_log_found;

static void stub_log_add(int level, const char *fmt, va_list ap)
{
	int i = stub_log_n % STUB_LOG_RING;
	const char *env = getenv("UNIT_LOG");

	stub_log_ring[i].level = level;
	vsnprintf(stub_log_ring[i].msg, STUB_LOG_LEN, fmt, ap);
	stub_log_n++;
	if (env && *env == '1')
		fprintf(stderr, "[log %s] %s",
				level >= L_ALERT && level <= L_DBG ? LOG_LEVEL2NAME(level)
												   : "?",
				stub_log_ring[i].msg);
}

/* Structured-logging hook: the LM_*() macros call it when it is set, with
 * the level and the caller's own format (no prefix). */
static void stub_slog(ksr_logdata_t *kld, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	stub_log_add(kld->v_level, fmt, ap);
	va_end(ap);
}

/* Classic path (used only if a test clears _ksr_slog_func): the syslog
 * priority does not map back to one level, so it is recorded as L_MAX+1. */
static void stub_km_log(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	stub_log_add(L_MAX + 1, fmt, ap);
	va_end(ap);
}

ksr_slog_f _ksr_slog_func = stub_slog;
km_log_f _km_log_func = stub_km_log;

int my_pid(void)
{
	return (int)getpid();
}

int get_debug_level(char *mname, int mnlen)
{
	return L_DBG; /* capture everything */
}

int get_debug_facility(char *mname, int mnlen)
{
	return LOG_DAEMON;
}

void dprint_color(int level)
{
}

void dprint_color_reset(void)
{
}

void stub_log_reset(void)
{
	stub_log_n = 0;
	memset(stub_log_ring, 0, sizeof(stub_log_ring));
}

int stub_log_count(void)
{
	return stub_log_n;
}

const char *stub_log_find(int level, const char *needle)
{
	int kept = stub_log_n < STUB_LOG_RING ? stub_log_n : STUB_LOG_RING;
	int k, i;

	for (k = 1; k <= kept; k++) {
		i = (stub_log_n - k) % STUB_LOG_RING;
		if (level != STUB_LOG_ANY && stub_log_ring[i].level != level)
			continue;
		if (needle && strstr(stub_log_ring[i].msg, needle) == NULL)
			continue;
		stub_log_found = stub_log_ring[i].level;
		return stub_log_ring[i].msg;
	}
	return NULL;
}

int stub_log_found_level(void)
{
	return stub_log_found;
}

/* ---- shared memory ------------------------------------------------------- */

#define STUB_SHM_SIZE ((size_t)256 << 20) /* reserved, touched on demand */
#define STUB_SHM_ALIGN 16
#define STUB_SHM_MAGIC 0x5348u

struct stub_shm_hdr {
	size_t size;
	unsigned magic;
	unsigned freed;
};

struct stub_shm_stats stub_shm_stats;
long stub_shm_fail_after = -1;
int stub_shm_initialized;

static char *stub_shm_base;
static size_t stub_shm_used;

static int stub_shm_map(void)
{
	void *p;

	if (stub_shm_base)
		return 0;
	p = mmap(NULL, STUB_SHM_SIZE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	stub_shm_base = p;
	return 0;
}

int shm_initialized(void)
{
	return stub_shm_initialized;
}

int shm_address_in(void *p)
{
	return stub_shm_base && (char *)p >= stub_shm_base
		   && (char *)p < stub_shm_base + STUB_SHM_SIZE;
}

/* A bump allocator: blocks are never reused, which makes a use after free
 * or a double free visible (the header stays and is marked). */
static void *stub_shm_malloc(void *mbp, size_t size, const char *file,
		const char *func, unsigned int line, const char *mname)
{
	struct stub_shm_hdr *h;
	size_t need;

	if (stub_shm_fail_after == 0)
		return NULL;
	if (stub_shm_fail_after > 0)
		stub_shm_fail_after--;
	if (stub_shm_map() < 0)
		return NULL;
	need = (sizeof(*h) + size + STUB_SHM_ALIGN - 1)
		   & ~(size_t)(STUB_SHM_ALIGN - 1);
	if (need < size || stub_shm_used + need > STUB_SHM_SIZE)
		return NULL;
	h = (struct stub_shm_hdr *)(stub_shm_base + stub_shm_used);
	stub_shm_used += need;
	h->size = size;
	h->magic = STUB_SHM_MAGIC;
	h->freed = 0;
	stub_shm_stats.mallocs++;
	stub_shm_stats.live++;
	return h + 1;
}

static void *stub_shm_mallocxz(void *mbp, size_t size, const char *file,
		const char *func, unsigned int line, const char *mname)
{
	void *p = stub_shm_malloc(mbp, size, file, func, line, mname);

	if (p)
		memset(p, 0, size);
	return p;
}

static struct stub_shm_hdr *stub_shm_hdr(void *p)
{
	struct stub_shm_hdr *h;

	if (!shm_address_in(p))
		return NULL;
	h = (struct stub_shm_hdr *)p - 1;
	if (h->magic != STUB_SHM_MAGIC || h->freed)
		return NULL;
	return h;
}

static void stub_shm_free(void *mbp, void *p, const char *file,
		const char *func, unsigned int line, const char *mname)
{
	struct stub_shm_hdr *h;

	if (p == NULL)
		return;
	h = stub_shm_hdr(p);
	if (h == NULL) {
		stub_shm_stats.bad_frees++;
		return;
	}
	h->freed = 1;
	stub_shm_stats.frees++;
	stub_shm_stats.live--;
}

static void *stub_shm_realloc(void *mbp, void *p, size_t size,
		const char *file, const char *func, unsigned int line,
		const char *mname)
{
	struct stub_shm_hdr *h;
	void *n;

	if (p == NULL)
		return stub_shm_malloc(mbp, size, file, func, line, mname);
	h = stub_shm_hdr(p);
	if (h == NULL) {
		stub_shm_stats.bad_frees++;
		return NULL;
	}
	n = stub_shm_malloc(mbp, size, file, func, line, mname);
	if (n == NULL)
		return NULL;
	memcpy(n, p, h->size < size ? h->size : size);
	stub_shm_free(mbp, p, file, func, line, mname);
	/* a realloc is one call, not an extra live block */
	stub_shm_stats.mallocs--;
	stub_shm_stats.frees--;
	stub_shm_stats.reallocs++;
	return n;
}

static void *stub_shm_reallocxf(void *mbp, void *p, size_t size,
		const char *file, const char *func, unsigned int line,
		const char *mname)
{
	void *n = stub_shm_realloc(mbp, p, size, file, func, line, mname);

	if (n == NULL && p)
		stub_shm_free(mbp, p, file, func, line, mname);
	return n;
}

sr_shm_api_t _shm_root = {
	.mname = "unit-stub",
	.xmalloc = stub_shm_malloc,
	.xmallocxz = stub_shm_mallocxz,
	.xmalloc_unsafe = stub_shm_malloc,
	.xrealloc = stub_shm_realloc,
	.xreallocxf = stub_shm_reallocxf,
	.xfree = stub_shm_free,
	.xfree_unsafe = stub_shm_free,
};

void stub_shm_reset(void)
{
	memset(&stub_shm_stats, 0, sizeof(stub_shm_stats));
	stub_shm_fail_after = -1;
	stub_shm_initialized = 0;
}

/* ---- ip_addr2sbuf ---------------------------------------------------------- */

int stub_ip_addr2sbuf_ret = STUB_IP_REAL;
int stub_ip_addr2sbuf_calls;
int stub_ip_addr2sbuf_last_len;

int ip_addr2sbuf(struct ip_addr *ip, char *buff, int len)
{
	char tmp[INET6_ADDRSTRLEN];
	size_t n;

	stub_ip_addr2sbuf_calls++;
	stub_ip_addr2sbuf_last_len = len;
	if (stub_ip_addr2sbuf_ret != STUB_IP_REAL)
		return stub_ip_addr2sbuf_ret;
	switch (ip->af) {
		case AF_INET:
			if (len < IP4_MAX_STR_SIZE)
				return 0;
			inet_ntop(AF_INET, ip->u.addr, tmp, sizeof(tmp));
			break;
		case AF_INET6:
			if (len < IP6_MAX_STR_SIZE)
				return 0;
			inet_ntop(AF_INET6, ip->u.addr, tmp, sizeof(tmp));
			break;
		default:
			LM_CRIT("unknown address family %u\n", ip->af);
			return 0;
	}
	n = strlen(tmp);
	memcpy(buff, tmp, n); /* no terminating NUL, like the core */
	return (int)n;
}
