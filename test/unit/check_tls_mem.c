/*
 * check_tls_mem.c: unit tests of tls_mem.c (shared memory for OpenSSL with
 * a bounded per-process cache of small blocks).
 */
#include <check.h>
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
}

START_TEST(test_alloc_free_without_cache)
{
	void *p = tls_shm_alloc(100);

	ck_assert_ptr_nonnull(p);
	ck_assert(shm_address_in(p));
	ck_assert_int_eq((uintptr_t)p % 16, 0);
	memset(p, 0xab, 100);
	tls_shm_free(p);
	/* Without the cache (main process), a free goes back at once. */
	ck_assert_int_eq(stub_shm_stats.live, 0);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 0);
	tls_shm_free(NULL);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_cache_reuses_blocks_of_a_class)
{
	void *a, *b, *c;

	tls_shm_cache_enable();
	a = tls_shm_alloc(40);   /* class 48 */
	tls_shm_free(a);
	ck_assert_int_eq(stub_shm_stats.live, 1);      /* kept */
	ck_assert_uint_eq(tls_shm_cache_bytes(), 48);
	b = tls_shm_alloc(48);   /* same class: the same block */
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 0);
	c = tls_shm_alloc(20);   /* another class: a new block */
	ck_assert_ptr_ne(c, b);
	tls_shm_free(b);
	tls_shm_free(c);
	tls_shm_cache_flush();
	ck_assert_int_eq(stub_shm_stats.live, 0);
	ck_assert_uint_eq(tls_shm_cache_bytes(), 0);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_cache_is_bounded)
{
	enum { N = 200 };
	void *p[N];
	int i;

	tls_shm_cache_enable();
	for (i = 0; i < N; i++)
		p[i] = tls_shm_alloc(4000); /* class 4096 */
	for (i = 0; i < N; i++)
		tls_shm_free(p[i]);
	/* 200 x 4 KB = 800 KB freed; the cache keeps at most 512 KB. */
	ck_assert_uint_le(tls_shm_cache_bytes(), 512 * 1024);
	ck_assert_int_eq(stub_shm_stats.live,
			(long)(tls_shm_cache_bytes() / 4096));
	tls_shm_cache_flush();
	ck_assert_int_eq(stub_shm_stats.live, 0);
}
END_TEST

START_TEST(test_large_blocks_never_cached)
{
	void *p;

	tls_shm_cache_enable();
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
	/* Within its class: the same block. */
	q = tls_shm_realloc(p, 16);
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
	ck_assert_int_eq(stub_shm_stats.live, 0);
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

static Suite *tls_mem_suite(void)
{
	Suite *s = suite_create("tls_mem");
	TCase *tc = tcase_create("cache");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_alloc_free_without_cache);
	tcase_add_test(tc, test_cache_reuses_blocks_of_a_class);
	tcase_add_test(tc, test_cache_is_bounded);
	tcase_add_test(tc, test_large_blocks_never_cached);
	tcase_add_test(tc, test_realloc);
	tcase_add_test(tc, test_child_forgets_parent_cache);
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
