/*
 * check_tls_locking.c: unit tests of tls_locking.c (the module's shared
 * state: allocation in shared memory, idempotence, failure, counters seen
 * across fork, the connection list, publishing domain sets).
 */
#include <check.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"

#include <openssl/crypto.h>

#include "tls_domain.h"
#include "tls_locking.h"
#include "tls_server.h"

#include "core_stubs.h"

static void setup(void)
{
	stub_shm_reset();
	stub_log_reset();
	tls_shared = NULL;
}

START_TEST(test_init_allocates_shared_zeroed)
{
	ck_assert_int_eq(tls_locking_init(), 0);
	ck_assert_ptr_nonnull(tls_shared);
	ck_assert(shm_address_in(tls_shared));
	ck_assert_int_eq(stub_shm_stats.mallocs, 1);
	ck_assert_int_eq(atomic_get(&tls_shared->connections), 0);
	ck_assert_int_eq(atomic_get(&tls_shared->handshakes_ok), 0);
	ck_assert_int_eq(atomic_get(&tls_shared->handshakes_failed), 0);
	tls_locking_destroy();
}
END_TEST

START_TEST(test_init_twice_keeps_state)
{
	struct tls_shared *first;
	struct tls_conn tc;

	ck_assert_int_eq(tls_locking_init(), 0);
	first = tls_shared;
	tls_conn_list_add(&tc);
	ck_assert_int_eq(tls_locking_init(), 0);
	ck_assert_ptr_eq(tls_shared, first);
	ck_assert_int_eq(stub_shm_stats.mallocs, 1);
	ck_assert_int_eq(atomic_get(&tls_shared->connections), 1);
	tls_locking_destroy();
}
END_TEST

START_TEST(test_destroy)
{
	ck_assert_int_eq(tls_locking_init(), 0);
	tls_locking_destroy();
	ck_assert_ptr_null(tls_shared);
	ck_assert_int_eq(stub_shm_stats.frees, 1);
	ck_assert_int_eq(stub_shm_stats.live, 0);
	/* Again, and before any init: nothing to do. */
	tls_locking_destroy();
	ck_assert_int_eq(stub_shm_stats.frees, 1);
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
	/* And it can be made again. */
	ck_assert_int_eq(tls_locking_init(), 0);
	ck_assert_ptr_nonnull(tls_shared);
	tls_locking_destroy();
}
END_TEST

START_TEST(test_init_no_memory)
{
	stub_shm_fail_after = 0;
	ck_assert_int_eq(tls_locking_init(), -1);
	ck_assert_ptr_null(tls_shared);
	ck_assert_ptr_nonnull(stub_log_find(L_ERR, "shared memory"));
	/* The counters are then simply not kept. */
	tls_stats_handshake(1);
	tls_locking_destroy();
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

START_TEST(test_counters)
{
	ck_assert_int_eq(tls_locking_init(), 0);
	tls_stats_handshake(1);
	tls_stats_handshake(1);
	tls_stats_handshake(0);
	ck_assert_int_eq(atomic_get(&tls_shared->handshakes_ok), 2);
	ck_assert_int_eq(atomic_get(&tls_shared->handshakes_failed), 1);
	tls_locking_destroy();
}
END_TEST

/* Made before fork, updated by every child: the parent sees the sums. */
START_TEST(test_counters_across_fork)
{
	enum { CHILDREN = 4, ROUNDS = 2000 };
	pid_t pids[CHILDREN];
	int i, r, status;

	ck_assert_int_eq(tls_locking_init(), 0);
	for (i = 0; i < CHILDREN; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			for (r = 0; r < ROUNDS; r++) {
				tls_stats_handshake(r % 2);
			}
			_exit(0);
		}
	}
	for (i = 0; i < CHILDREN; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(atomic_get(&tls_shared->connections), 0);
	ck_assert_int_eq(atomic_get(&tls_shared->handshakes_ok),
			CHILDREN * ROUNDS / 2);
	ck_assert_int_eq(atomic_get(&tls_shared->handshakes_failed),
			CHILDREN * ROUNDS / 2);
	tls_locking_destroy();
}
END_TEST

START_TEST(test_conn_list)
{
	struct tls_conn a, b, c;

	ck_assert_int_eq(tls_locking_init(), 0);
	tls_conn_list_add(&a);
	tls_conn_list_add(&b);
	tls_conn_list_add(&c);
	ck_assert_int_eq(atomic_get(&tls_shared->connections), 3);
	ck_assert_ptr_eq(tls_shared->conns, &c);
	tls_conn_list_rm(&b); /* middle */
	ck_assert_ptr_eq(c.next, &a);
	ck_assert_ptr_eq(a.prev, &c);
	tls_conn_list_rm(&c); /* head */
	ck_assert_ptr_eq(tls_shared->conns, &a);
	ck_assert_ptr_null(a.prev);
	tls_conn_list_rm(&a); /* last */
	ck_assert_ptr_null(tls_shared->conns);
	ck_assert_int_eq(atomic_get(&tls_shared->connections), 0);
	tls_locking_destroy();
}
END_TEST

static struct tls_domain_set *fake_set(void)
{
	struct tls_domain_set *set = OPENSSL_zalloc(sizeof(*set));

	ck_assert_ptr_nonnull(set);
	set->refs = 1;
	return set;
}

/* A published set is current; the previous one lives on while a holder
 * keeps its reference, and is freed by the last put. */
START_TEST(test_set_publish_and_references)
{
	struct tls_domain_set *one, *two, *held;
	long live;

	ck_assert_int_eq(tls_locking_init(), 0);
	ck_assert_ptr_null(tls_set_acquire());
	one = fake_set();
	tls_set_publish(one);
	ck_assert_uint_eq(one->generation, 1);
	held = tls_set_acquire();
	ck_assert_ptr_eq(held, one);
	ck_assert_int_eq(one->refs, 2);
	live = stub_shm_stats.live;
	two = fake_set();
	tls_set_publish(two);
	ck_assert_uint_eq(two->generation, 2);
	ck_assert_int_eq(one->refs, 1); /* only the holder now */
	ck_assert_ptr_eq(tls_set_acquire(), two);
	tls_domain_set_put(two);
	tls_domain_set_put(held); /* frees one */
	ck_assert_int_eq(stub_shm_stats.live, live);
	tls_locking_destroy(); /* puts two */
	ck_assert_int_eq(stub_shm_stats.bad_frees, 0);
}
END_TEST

static Suite *tls_locking_suite(void)
{
	Suite *s = suite_create("tls_locking");
	TCase *tc = tcase_create("tls_shared");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_init_allocates_shared_zeroed);
	tcase_add_test(tc, test_init_twice_keeps_state);
	tcase_add_test(tc, test_destroy);
	tcase_add_test(tc, test_init_no_memory);
	tcase_add_test(tc, test_counters);
	tcase_add_test(tc, test_counters_across_fork);
	tcase_add_test(tc, test_conn_list);
	tcase_add_test(tc, test_set_publish_and_references);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tls_locking_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
