/*
 * check_tls_mem.c: unit tests of tls_mem.c (shared memory for OpenSSL: slab
 * pages for small blocks, a bounded per-process cache of freed blocks).
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/mem/shm_mem.h"

#include "tls_mem.h"

#include "core_stubs.h"

static void setup(void)
{
	stub_shm_reset();
	stub_shm_initialized = 1;
	stub_log_reset();
}

static unsigned long pool_pages(void)
{
	unsigned long pages, free_bytes;

	tls_shm_pool_stats(&pages, &free_bytes);
	return pages;
}

static unsigned long pool_free(void)
{
	unsigned long pages, free_bytes;

	tls_shm_pool_stats(&pages, &free_bytes);
	return free_bytes;
}

START_TEST(test_small_blocks_from_one_page)
{
	void *p, *q;
	unsigned long empty;

	p = tls_shm_alloc(100);
	ck_assert_ptr_nonnull(p);
	ck_assert(shm_address_in(p));
	ck_assert_int_eq((uintptr_t)p % 16, 0);
	memset(p, 0xab, 100);
	/* the pool and one page: two blocks of the core's allocator */
	ck_assert_int_eq(stub_shm_stats.mallocs, 2);
	ck_assert_uint_eq(pool_pages(), 1);
	q = tls_shm_alloc(100);
	ck_assert_ptr_ne(p, q);
	/* the same page: no new block of the core's allocator */
	ck_assert_int_eq(stub_shm_stats.mallocs, 2);
	/* 100 bytes and an 8-byte tag: a 112-byte stride */
	ck_assert_int_eq((char *)q - (char *)p, 112);
	/* Without the cache (main process), a free goes back to its page. */
	empty = pool_free();
	tls_shm_free(q);
	ck_assert_uint_eq(pool_free(), empty + 112);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 0);
	tls_shm_free(p);
	/* the class's only page stays, empty */
	ck_assert_uint_eq(pool_pages(), 1);
	ck_assert_int_eq(stub_shm_stats.live, 2);
	/* and its blocks are handed out again */
	ck_assert_ptr_eq(tls_shm_alloc(97), p);
	tls_shm_free(NULL);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

/* Every size up to the largest slab class: aligned, writable over its whole
 * size without touching its neighbours. */
START_TEST(test_every_small_size)
{
	enum { MAX = 1100 };
	unsigned char *p[MAX + 1];
	size_t n, i;

	for (n = 0; n <= MAX; n++) {
		p[n] = tls_shm_alloc(n);
		ck_assert_ptr_nonnull(p[n]);
		ck_assert_int_eq((uintptr_t)p[n] % 8, 0);
		if (n <= 1016)
			ck_assert_int_eq((uintptr_t)p[n] % 16, 0);
		memset(p[n], (int)(n & 0xff), n);
	}
	for (n = 0; n <= MAX; n++) {
		for (i = 0; i < n; i++)
			ck_assert_int_eq(p[n][i], (int)(n & 0xff));
		tls_shm_free(p[n]);
	}
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
	ck_assert_int_eq(stub_log_count(), 0);
}
END_TEST

/* Pages fill up, new ones are taken, and empty ones go back but one. */
START_TEST(test_pages_come_and_go)
{
	enum { N = 2000 };
	static void *p[N];
	unsigned long full_pages, base_live;
	int i;

	p[0] = tls_shm_alloc(200);
	base_live = (unsigned long)stub_shm_stats.live; /* pool + 1 page */
	for (i = 1; i < N; i++) {
		p[i] = tls_shm_alloc(200);
		ck_assert_ptr_nonnull(p[i]);
		*(int *)p[i] = i;
	}
	full_pages = pool_pages();
	/* 208-byte stride, 16 KB pages: 78 blocks a page */
	ck_assert_uint_ge(full_pages, N / 78);
	ck_assert_uint_le(full_pages, N / 78 + 1);
	ck_assert_int_eq(stub_shm_stats.live, (long)(base_live + full_pages - 1));
	for (i = 1; i < N; i++)
		ck_assert_int_eq(*(int *)p[i], i);
	for (i = 0; i < N; i++)
		tls_shm_free(p[i]);
	ck_assert_uint_eq(pool_pages(), 1);
	ck_assert_int_eq(stub_shm_stats.live, (long)base_live);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_cache_reuses_blocks_of_a_class)
{
	void *a, *b, *c;
	unsigned long free_before;

	tls_shm_cache_enable();
	a = tls_shm_alloc(40);   /* stride 48: 40 usable bytes */
	tls_shm_free(tls_shm_alloc(20)); /* (a page for the class of c) */
	tls_shm_cache_flush();
	free_before = pool_free();
	tls_shm_free(a);
	ck_assert_uint_eq(pool_free(), free_before); /* kept by the cache */
	/* a cached block holds back its whole stride */
	ck_assert_uint_eq(tls_shm_cache_bytes(), 48);
	b = tls_shm_alloc(33);   /* same class: the same block */
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 0);
	c = tls_shm_alloc(20);   /* another class: another block */
	ck_assert_ptr_ne(c, b);
	tls_shm_free(b);
	tls_shm_free(c);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 48 + 32);
	tls_shm_cache_flush();
	ck_assert_uint_eq(tls_shm_cache_bytes(), 0);
	ck_assert_uint_eq(pool_free(), free_before + 48);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_cache_is_bounded)
{
	enum { N = 200 };
	void *p[N];
	int i;
	long base;

	tls_shm_cache_enable();
	base = stub_shm_stats.live;
	for (i = 0; i < N; i++)
		p[i] = tls_shm_alloc(4000); /* large class of 4096 bytes */
	for (i = 0; i < N; i++)
		tls_shm_free(p[i]);
	/* 200 x 4 KB = 800 KB freed; the cache keeps at most 256 KB. */
	ck_assert_uint_le(tls_shm_cache_bytes(), 256 * 1024);
	ck_assert_uint_ge(tls_shm_cache_bytes(), 256 * 1024 - 4096);
	ck_assert_int_eq(stub_shm_stats.live - base,
			(long)(tls_shm_cache_bytes() / 4096));
	tls_shm_cache_flush();
	ck_assert_int_eq(stub_shm_stats.live, base);
}
END_TEST

/* OpenSSL's record buffers (~17 KB) are cached; larger blocks never. */
START_TEST(test_large_blocks)
{
	void *p, *q;

	tls_shm_cache_enable();
	p = tls_shm_alloc(17 * 1024 + 100);
	tls_shm_free(p);
	/* usable size and the 16-byte header */
	ck_assert_uint_eq(tls_shm_cache_bytes(), 17 * 1024 + 256 + 16);
	q = tls_shm_alloc(17 * 1024 + 50);
	ck_assert_ptr_eq(p, q);
	tls_shm_free(q);
	tls_shm_cache_flush();
	p = tls_shm_alloc(100000);
	ck_assert_ptr_nonnull(p);
	tls_shm_free(p);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 0);
	ck_assert_int_eq(stub_shm_stats.live, 0);
}
END_TEST

START_TEST(test_realloc)
{
	char *p, *q;

	tls_shm_cache_enable();
	p = tls_shm_realloc(NULL, 10);
	memcpy(p, "abcdefghi", 10);
	/* Within its class: the same block (stride 32: 24 usable bytes). */
	q = tls_shm_realloc(p, 24);
	ck_assert_ptr_eq(p, q);
	/* Beyond: a copy in a larger class. */
	q = tls_shm_realloc(p, 1000);
	ck_assert_ptr_ne(p, q);
	ck_assert_str_eq(q, "abcdefghi");
	/* Large to larger, and back to small. */
	q = tls_shm_realloc(q, 50000);
	ck_assert_str_eq(q, "abcdefghi");
	q = tls_shm_realloc(q, 90000);
	ck_assert_str_eq(q, "abcdefghi");
	q = tls_shm_realloc(q, 12);
	ck_assert_str_eq(q, "abcdefghi");
	tls_shm_free(q);
	tls_shm_cache_flush();
	ck_assert_int_eq(stub_shm_stats.live, 1 + (long)pool_pages());
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

/* A child that enables its cache forgets what its parent had cached: the
 * parent's blocks are never handed out twice. */
START_TEST(test_child_forgets_parent_cache)
{
	void *a, *b;
	int status;
	pid_t pid;

	tls_shm_cache_enable();
	a = tls_shm_alloc(64);
	tls_shm_free(a); /* cached by the parent */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		tls_shm_cache_enable();
		b = tls_shm_alloc(64);
		_exit(b == a ? 1 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tls_shm_cache_flush();
}
END_TEST

/* Another thread of the process (a module's own thread running OpenSSL)
 * never touches the cache, which has no lock: its frees go back to the
 * pages, its allocations come from them. */
static void *other_thread(void *arg)
{
	void **blocks = arg;

	tls_shm_free(blocks[0]);     /* not cached: back to its page */
	blocks[1] = tls_shm_alloc(64); /* not from the cache */
	return NULL;
}

START_TEST(test_other_threads_bypass_the_cache)
{
	void *blocks[2], *cached;
	pthread_t th;

	tls_shm_cache_enable();
	cached = tls_shm_alloc(64);
	blocks[0] = tls_shm_alloc(64);
	tls_shm_free(cached); /* in this thread's cache */
	ck_assert_uint_eq(tls_shm_cache_bytes(), 80); /* stride 80 */
	ck_assert_int_eq(pthread_create(&th, NULL, other_thread, blocks), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 80); /* stride 80 */
	ck_assert_ptr_ne(blocks[1], cached);
	/* the main thread still gets its cached block */
	ck_assert_ptr_eq(tls_shm_alloc(64), cached);
	tls_shm_free(blocks[1]);
}
END_TEST

/* Slab pages are shared: a block freed by another process is handed out
 * again here. */
START_TEST(test_free_in_another_process)
{
	void *a, *b;
	int status;
	pid_t pid;

	a = tls_shm_alloc(300);
	b = tls_shm_alloc(300);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		tls_shm_free(b); /* no cache in the child: back to the page */
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_ptr_eq(tls_shm_alloc(300), b);
	tls_shm_free(a);
}
END_TEST

/* A pointer that is not one of ours: logged, not freed, no crash. */
START_TEST(test_bad_tag_refused)
{
	char *p = tls_shm_alloc(100);
	unsigned long free_before = pool_free();

	memset(p - 8, 0, 8); /* the tag, overwritten */
	tls_shm_free(p);
	ck_assert_ptr_nonnull(stub_log_find(STUB_LOG_ANY, "bad tag"));
	ck_assert_uint_eq(pool_free(), free_before);
}
END_TEST

static Suite *tls_mem_suite(void)
{
	Suite *s = suite_create("tls_mem");
	TCase *tc = tcase_create("cache");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_small_blocks_from_one_page);
	tcase_add_test(tc, test_every_small_size);
	tcase_add_test(tc, test_pages_come_and_go);
	tcase_add_test(tc, test_cache_reuses_blocks_of_a_class);
	tcase_add_test(tc, test_cache_is_bounded);
	tcase_add_test(tc, test_large_blocks);
	tcase_add_test(tc, test_realloc);
	tcase_add_test(tc, test_child_forgets_parent_cache);
	tcase_add_test(tc, test_free_in_another_process);
	tcase_add_test(tc, test_other_threads_bypass_the_cache);
	tcase_add_test(tc, test_bad_tag_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tls_mem_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
