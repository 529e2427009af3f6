/* test_idquota.c - src/server/idquota: the per-address budget of new
 * identities (a token bucket of per_hour that refills continuously), keys
 * (IPv6 by its /64, IPv4-mapped as IPv4), the purge of full buckets, the
 * address cap that fails open, and "no limit". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/idquota.h"

#define HOUR_MS (3600 * INT64_C(1000))

static int take_n(el_idquota *q, const char *addr, int per_hour, int64_t now, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += el_idquota_take(q, addr, per_hour, now, NULL);
    return ok;
}

static void test_bucket(void **state)
{
    (void)state;
    el_idquota *q = el_idquota_new();
    assert_non_null(q);
    int64_t t = 1000;
    assert_int_equal(take_n(q, "10.0.0.1", 3, t, 3), 3);
    int retry = -1;
    assert_int_equal(el_idquota_take(q, "10.0.0.1", 3, t, &retry), 0);
    assert_int_equal(retry, 1200); /* one token in 20 minutes */
    /* others are not affected */
    assert_int_equal(el_idquota_take(q, "10.0.0.2", 3, t, NULL), 1);
    /* a token comes back after a third of an hour, not before */
    assert_int_equal(el_idquota_take(q, "10.0.0.1", 3, t + HOUR_MS / 3 - 1000, NULL), 0);
    assert_int_equal(el_idquota_take(q, "10.0.0.1", 3, t + HOUR_MS / 3 + 1000, NULL), 1);
    assert_int_equal(el_idquota_take(q, "10.0.0.1", 3, t + HOUR_MS / 3 + 2000, NULL), 0);
    /* never more than per_hour at once, however long the wait */
    assert_int_equal(take_n(q, "10.0.0.1", 3, t + 10 * HOUR_MS, 5), 3);
    /* a clock that goes back adds nothing */
    assert_int_equal(el_idquota_take(q, "10.0.0.1", 3, t, NULL), 0);
    /* attempts every 100 ms do not stop the refill (each adds less than a
     * thousandth of a token) */
    int64_t u = t + 10 * HOUR_MS;
    int got = 0;
    for (int64_t k = 1; k <= 12100; k++)
        got += el_idquota_take(q, "10.0.0.1", 3, u + k * 100, NULL);
    assert_int_equal(got, 1); /* 1210 s: one token (20 minutes) */
    el_idquota_free(q);
}

static void test_keys(void **state)
{
    (void)state;
    el_idquota *q = el_idquota_new();
    /* one /64: the host's other addresses share its budget */
    assert_int_equal(el_idquota_take(q, "2001:db8:1:2::1", 2, 0, NULL), 1);
    assert_int_equal(el_idquota_take(q, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", 2, 0, NULL), 1);
    assert_int_equal(el_idquota_take(q, "2001:db8:1:2::ffff", 2, 0, NULL), 0);
    /* the next /64 is someone else */
    assert_int_equal(el_idquota_take(q, "2001:db8:1:3::1", 2, 0, NULL), 1);
    /* an IPv4-mapped address is its IPv4 address */
    assert_int_equal(el_idquota_take(q, "192.0.2.7", 1, 0, NULL), 1);
    assert_int_equal(el_idquota_take(q, "::ffff:192.0.2.7", 1, 0, NULL), 0);
    /* something that is no address still gets a bucket of its own */
    assert_int_equal(el_idquota_take(q, "not an address", 1, 0, NULL), 1);
    assert_int_equal(el_idquota_take(q, "not an address", 1, 0, NULL), 0);
    assert_int_equal(el_idquota_count(q), 4);
    el_idquota_free(q);
}

static void test_purge_and_off(void **state)
{
    (void)state;
    el_idquota *q = el_idquota_new();
    assert_int_equal(take_n(q, "10.0.0.1", 2, 0, 1), 1);
    assert_int_equal(take_n(q, "10.0.0.2", 2, HOUR_MS / 4, 2), 2);
    assert_int_equal(el_idquota_count(q), 2);
    /* at 0.6 h the first is full again, the second is not */
    el_idquota_purge(q, 2, HOUR_MS * 6 / 10);
    assert_int_equal(el_idquota_count(q), 1);
    el_idquota_purge(q, 2, 2 * HOUR_MS);
    assert_int_equal(el_idquota_count(q), 0);
    /* no limit: everything passes and nothing is kept */
    assert_int_equal(take_n(q, "10.0.0.1", 0, 0, 1000), 1000);
    assert_int_equal(el_idquota_count(q), 0);
    el_idquota_purge(q, 0, 0);
    el_idquota_free(q);
    el_idquota_free(NULL);
}

/* Past EL_IDQUOTA_MAX_ADDRS tracked addresses a newcomer passes unchecked
 * (one attacker with many addresses must not lock everybody out), and the
 * table does not grow; once buckets are full again they make room. */
static void test_cap_fails_open(void **state)
{
    (void)state;
    el_idquota *q = el_idquota_new();
    char a[64];
    for (int i = 0; i < EL_IDQUOTA_MAX_ADDRS; i++) {
        snprintf(a, sizeof a, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_int_equal(el_idquota_take(q, a, 1, 0, NULL), 1);
    }
    assert_int_equal(el_idquota_count(q), EL_IDQUOTA_MAX_ADDRS);
    assert_int_equal(take_n(q, "192.0.2.1", 1, 1000, 3), 3);
    assert_int_equal(el_idquota_count(q), EL_IDQUOTA_MAX_ADDRS);
    /* an hour on, every bucket is full: the next newcomer is tracked again */
    assert_int_equal(take_n(q, "192.0.2.1", 1, HOUR_MS + 1, 2), 1);
    assert_int_equal(el_idquota_count(q), 1);
    el_idquota_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_purge_and_off),
        cmocka_unit_test(test_cap_fails_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
