/* test_map.c - src/base/map: basic contract, growth to tens of thousands of
 * entries, delete/reinsert churn over tombstones, borrowed keys, el_map_each
 * and el_map_count, all checked against a plain array model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/map.h"

#define KEYLEN 24

static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* A value that knows its own key, as the map's users store them. */
typedef struct {
    char key[KEYLEN];
    int id;
    int seen; /* visits by el_map_each */
} item;

static item *items_new(size_t n, const char *prefix)
{
    item *it = calloc(n, sizeof *it);
    assert_non_null(it);
    for (size_t i = 0; i < n; i++) {
        snprintf(it[i].key, sizeof it[i].key, "%s%zu", prefix, i);
        it[i].id = (int)i;
    }
    return it;
}

static void test_new_free(void **state)
{
    (void)state;
    el_map_free(NULL); /* documented no-op */
    el_map *m = el_map_new();
    assert_non_null(m);
    assert_int_equal(el_map_count(m), 0);
    assert_null(el_map_get(m, "x"));
    assert_null(el_map_get(m, ""));
    assert_null(el_map_del(m, "x"));
    assert_int_equal(el_map_count(m), 0);
    el_map_free(m);
}

static void test_put_get_del(void **state)
{
    (void)state;
    el_map *m = el_map_new();
    int a = 1, b = 2, c = 3;
    assert_int_equal(el_map_put(m, "alice", &a), 0);
    assert_int_equal(el_map_put(m, "bob", &b), 0);
    assert_int_equal(el_map_put(m, "", &c), 0); /* the empty key is a key */
    assert_int_equal(el_map_count(m), 3);
    assert_ptr_equal(el_map_get(m, "alice"), &a);
    assert_ptr_equal(el_map_get(m, "bob"), &b);
    assert_ptr_equal(el_map_get(m, ""), &c);
    assert_null(el_map_get(m, "alic"));
    assert_null(el_map_get(m, "alice "));
    assert_null(el_map_get(m, "Alice"));

    /* replace: count unchanged, new value returned */
    assert_int_equal(el_map_put(m, "alice", &c), 0);
    assert_int_equal(el_map_count(m), 3);
    assert_ptr_equal(el_map_get(m, "alice"), &c);

    assert_ptr_equal(el_map_del(m, "alice"), &c);
    assert_int_equal(el_map_count(m), 2);
    assert_null(el_map_get(m, "alice"));
    assert_null(el_map_del(m, "alice")); /* second delete: absent */
    assert_int_equal(el_map_count(m), 2);
    assert_ptr_equal(el_map_get(m, "bob"), &b);

    /* reinsert after delete */
    assert_int_equal(el_map_put(m, "alice", &a), 0);
    assert_int_equal(el_map_count(m), 3);
    assert_ptr_equal(el_map_get(m, "alice"), &a);
    el_map_free(m);
}

/* Lookups compare key contents, not pointers. */
static void test_lookup_by_content(void **state)
{
    (void)state;
    el_map *m = el_map_new();
    char k1[] = "peer-key", k2[] = "peer-key";
    int v = 7;
    assert_int_equal(el_map_put(m, k1, &v), 0);
    assert_ptr_equal(el_map_get(m, k2), &v);
    assert_ptr_equal(el_map_del(m, k2), &v);
    assert_int_equal(el_map_count(m), 0);
    el_map_free(m);
}

/* Keys are borrowed from the value. When a value is replaced by a new one
 * with an equal key, the map must keep the new value's key, since the old
 * value (and the key inside it) is then typically freed. */
static void test_replace_adopts_new_key(void **state)
{
    (void)state;
    el_map *m = el_map_new();
    item *old = calloc(1, sizeof *old), *fresh = calloc(1, sizeof *fresh);
    assert_non_null(old);
    assert_non_null(fresh);
    strcpy(old->key, "conn-42");
    strcpy(fresh->key, "conn-42");
    assert_int_equal(el_map_put(m, old->key, old), 0);
    assert_int_equal(el_map_put(m, fresh->key, fresh), 0);
    free(old); /* ASan reports a use-after-free if the map still reads old->key */
    assert_ptr_equal(el_map_get(m, "conn-42"), fresh);
    assert_int_equal(el_map_count(m), 1);
    assert_ptr_equal(el_map_del(m, "conn-42"), fresh);
    free(fresh);
    el_map_free(m);
}

/* Collects each's visits into the items (which must be the map's values). */
typedef struct {
    size_t calls;
    int bad; /* key pointer not the value's own key, or wrong value */
} each_ctx;

static void each_cb(const char *key, void *value, void *user)
{
    each_ctx *ctx = user;
    item *it = value;
    ctx->calls++;
    if (key != it->key)
        ctx->bad++;
    it->seen++;
}

static void test_growth(void **state)
{
    (void)state;
    const size_t n = 50000;
    item *it = items_new(n, "user-");
    el_map *m = el_map_new();
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(el_map_put(m, it[i].key, &it[i]), 0);
        assert_int_equal(el_map_count(m), i + 1);
        /* a few earlier keys stay reachable across every resize */
        assert_ptr_equal(el_map_get(m, it[0].key), &it[0]);
        assert_ptr_equal(el_map_get(m, it[i / 2].key), &it[i / 2]);
    }
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(el_map_get(m, it[i].key), &it[i]);
    char miss[KEYLEN];
    for (size_t i = n; i < n + 1000; i++) {
        snprintf(miss, sizeof miss, "user-%zu", i);
        assert_null(el_map_get(m, miss));
    }

    each_ctx ctx = {0, 0};
    el_map_each(m, each_cb, &ctx);
    assert_int_equal(ctx.calls, n);
    assert_int_equal(ctx.bad, 0);
    for (size_t i = 0; i < n; i++)
        if (it[i].seen != 1)
            fail_msg("el_map_each visited %s %d times", it[i].key, it[i].seen);

    /* delete every other entry; each then sees exactly the rest */
    for (size_t i = 0; i < n; i += 2)
        assert_ptr_equal(el_map_del(m, it[i].key), &it[i]);
    assert_int_equal(el_map_count(m), n / 2);
    for (size_t i = 0; i < n; i++) {
        it[i].seen = 0;
        if (i % 2)
            assert_ptr_equal(el_map_get(m, it[i].key), &it[i]);
        else
            assert_null(el_map_get(m, it[i].key));
    }
    ctx = (each_ctx){0, 0};
    el_map_each(m, each_cb, &ctx);
    assert_int_equal(ctx.calls, n / 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(it[i].seen, (int)(i % 2));
    el_map_free(m);
    free(it);
}

/* A small live set with heavy delete/insert churn of ever-new keys: without
 * tombstone reclamation the table would fill with tombstones and lookups of
 * absent keys would never find an empty slot (the test would then hang and
 * hit the CTest timeout). */
static void test_churn_new_keys(void **state)
{
    (void)state;
    const size_t live = 100, rounds = 200000;
    item *it = items_new(live + rounds, "churn-");
    el_map *m = el_map_new();
    for (size_t i = 0; i < live; i++)
        assert_int_equal(el_map_put(m, it[i].key, &it[i]), 0);
    for (size_t r = 0; r < rounds; r++) {
        size_t gone = r, added = live + r; /* FIFO: delete oldest, add newest */
        assert_ptr_equal(el_map_del(m, it[gone].key), &it[gone]);
        assert_null(el_map_get(m, it[gone].key));
        assert_int_equal(el_map_put(m, it[added].key, &it[added]), 0);
        assert_int_equal(el_map_count(m), live);
        if (r % 997 == 0) {
            for (size_t k = r + 1; k <= added; k++)
                assert_ptr_equal(el_map_get(m, it[k].key), &it[k]);
        }
    }
    each_ctx ctx = {0, 0};
    el_map_each(m, each_cb, &ctx);
    assert_int_equal(ctx.calls, live);
    assert_int_equal(ctx.bad, 0);
    for (size_t i = 0; i < rounds; i++)
        assert_int_equal(it[i].seen, 0);
    for (size_t i = rounds; i < rounds + live; i++)
        assert_int_equal(it[i].seen, 1);
    el_map_free(m);
    free(it);
}

/* Random operations against a model (an array indexed by key number). */
static void test_random_ops_against_model(void **state)
{
    (void)state;
    const size_t nkeys = 3000;
    item *it = items_new(nkeys, "k");
    int *present = calloc(nkeys, sizeof *present);
    assert_non_null(present);
    size_t count = 0;
    el_map *m = el_map_new();
    for (int op = 0; op < 300000; op++) {
        size_t k = rng() % nkeys;
        switch (rng() % 4) {
        case 0:
        case 1:
            assert_int_equal(el_map_put(m, it[k].key, &it[k]), 0);
            if (!present[k]) {
                present[k] = 1;
                count++;
            }
            break;
        case 2: {
            void *v = el_map_del(m, it[k].key);
            if (present[k]) {
                assert_ptr_equal(v, &it[k]);
                present[k] = 0;
                count--;
            } else {
                assert_null(v);
            }
            break;
        }
        default:
            if (present[k])
                assert_ptr_equal(el_map_get(m, it[k].key), &it[k]);
            else
                assert_null(el_map_get(m, it[k].key));
        }
        assert_int_equal(el_map_count(m), count);
    }
    for (size_t k = 0; k < nkeys; k++)
        assert_ptr_equal(el_map_get(m, it[k].key), present[k] ? (void *)&it[k] : NULL);
    each_ctx ctx = {0, 0};
    el_map_each(m, each_cb, &ctx);
    assert_int_equal(ctx.calls, count);
    for (size_t k = 0; k < nkeys; k++)
        assert_int_equal(it[k].seen, present[k]);
    el_map_free(m);
    free(present);
    free(it);
}

/* Delete everything, then probe: a table of tombstones must still answer. */
static void test_all_deleted(void **state)
{
    (void)state;
    const size_t n = 5000;
    item *it = items_new(n, "gone-");
    el_map *m = el_map_new();
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < n; i++)
            assert_int_equal(el_map_put(m, it[i].key, &it[i]), 0);
        assert_int_equal(el_map_count(m), n);
        for (size_t i = 0; i < n; i++)
            assert_ptr_equal(el_map_del(m, it[i].key), &it[i]);
        assert_int_equal(el_map_count(m), 0);
        for (size_t i = 0; i < n; i++)
            assert_null(el_map_get(m, it[i].key));
        assert_null(el_map_get(m, "never-inserted"));
    }
    each_ctx ctx = {0, 0};
    el_map_each(m, each_cb, &ctx);
    assert_int_equal(ctx.calls, 0);
    el_map_free(m);
    free(it);
}

/* NULL values are stored (count says so) even though get cannot tell them
 * from absence. */
/* A map that owns its values frees them with itself (ASan: no leak). */
static void test_free_with_values(void **state)
{
    (void)state;
    el_map *m = el_map_new();
    assert_non_null(m);
    for (int i = 0; i < 100; i++) {
        char *k = malloc(16);
        assert_non_null(k);
        snprintf(k, 16, "key%d", i);
        assert_int_equal(el_map_put(m, k, k), 0);
    }
    free(el_map_del(m, "key7"));
    el_map_free_with_values(m);
    el_map_free_with_values(NULL);
}

static void test_null_value(void **state)
{
    (void)state;
    el_map *m = el_map_new();
    assert_int_equal(el_map_put(m, "k", NULL), 0);
    assert_int_equal(el_map_count(m), 1);
    assert_null(el_map_get(m, "k"));
    assert_null(el_map_del(m, "k"));
    assert_int_equal(el_map_count(m), 0);
    el_map_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_free),
        cmocka_unit_test(test_free_with_values),
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_lookup_by_content),
        cmocka_unit_test(test_replace_adopts_new_key),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_churn_new_keys),
        cmocka_unit_test(test_random_ops_against_model),
        cmocka_unit_test(test_all_deleted),
        cmocka_unit_test(test_null_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
