/* test_fault.c - src/rtc/fault: the ECHOLINK_NETFAULT spec (every key, every
 * kind of bad value with its message, round trip through the writer), and
 * the stage itself on a private GMainContext: pass-through when inactive,
 * loss and duplication rates, the same outcome for the same seed, delay
 * honoured, reordering (a held datagram goes out right after its
 * successor), the held-count and held-bytes caps, nothing emitted after
 * free, and free from inside the output callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "test.h"

#include "base/err.h"
#include "rtc/fault.h"

#define MAX_OUT 20000

typedef struct {
    uint32_t seq[MAX_OUT]; /* first 4 bytes of each emitted datagram */
    gint64 at[MAX_OUT];    /* when, monotonic µs */
    size_t n;
    el_fault *free_me;     /* freed from inside out() at the first datagram */
} sink;

static void collect(void *user, const uint8_t *data, size_t len)
{
    sink *s = user;
    assert_true(len >= 4);
    if (s->n < MAX_OUT) {
        memcpy(&s->seq[s->n], data, 4);
        s->at[s->n] = g_get_monotonic_time();
    }
    s->n++;
    if (s->free_me) {
        el_fault *f = s->free_me;
        s->free_me = NULL;
        el_fault_free(f);
    }
}

static void push_seq(el_fault *f, uint32_t i, size_t len)
{
    uint8_t buf[1500];
    assert_true(len >= 4 && len <= sizeof buf);
    memset(buf, 0xab, len);
    memcpy(buf, &i, 4);
    el_fault_push(f, buf, len);
}

/* Iterates ctx until want datagrams arrived or ms passed. */
static void run_until(GMainContext *ctx, const sink *s, size_t want, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    while (s->n < want && g_get_monotonic_time() < end)
        if (!g_main_context_iteration(ctx, FALSE))
            g_usleep(500);
}

/* Iterates ctx for ms whatever happens. */
static void run_for(GMainContext *ctx, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    while (g_get_monotonic_time() < end)
        if (!g_main_context_iteration(ctx, FALSE))
            g_usleep(500);
}

static el_fault *make(GMainContext *ctx, const char *spec, sink *s)
{
    el_fault_spec sp;
    char err[200] = "";
    int rc = el_fault_parse(spec, &sp, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("parse \"%s\": %s", spec, err);
    return el_fault_new(ctx, &sp, collect, s);
}

/* ---- spec ---------------------------------------------------------------- */

static void test_parse_full(void **state)
{
    (void)state;
    el_fault_spec sp;
    char err[200];
    assert_int_equal(el_fault_parse("loss=5,delay=40,jitter=30,reorder=10,dup=1,seed=7", &sp,
                                    err, sizeof err),
                     EL_OK);
    assert_int_equal(sp.loss, 5);
    assert_int_equal(sp.delay_ms, 40);
    assert_int_equal(sp.jitter_ms, 30);
    assert_int_equal(sp.reorder, 10);
    assert_int_equal(sp.dup, 1);
    assert_int_equal(sp.seed, 7);
    assert_int_equal(sp.dir, EL_FAULT_SEND);
    assert_int_equal(sp.held_max, EL_FAULT_HELD_MAX);
    assert_int_equal(sp.bytes_max, EL_FAULT_BYTES_MAX);
    assert_true(el_fault_spec_active(&sp));

    assert_int_equal(el_fault_parse(" dir = both , held=3,bytes=4000, seed=18446744073709551615,",
                                    &sp, err, sizeof err),
                     EL_OK);
    assert_int_equal(sp.dir, EL_FAULT_SEND | EL_FAULT_RECV);
    assert_int_equal(sp.held_max, 3);
    assert_int_equal(sp.bytes_max, 4000);
    assert_true(sp.seed == UINT64_MAX);
    assert_false(el_fault_spec_active(&sp)); /* no fault at all */
    assert_int_equal(el_fault_parse("dir=recv", &sp, err, sizeof err), EL_OK);
    assert_int_equal(sp.dir, EL_FAULT_RECV);
    assert_int_equal(el_fault_parse("", &sp, err, sizeof err), EL_OK);
    assert_false(el_fault_spec_active(&sp));
    assert_int_equal(el_fault_parse(NULL, &sp, err, sizeof err), EL_OK);
    assert_int_equal(el_fault_parse("loss=100,delay=60000", &sp, err, sizeof err), EL_OK);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"loss=101", "loss=101: a percentage 0..100"},
        {"loss=-1", "loss=-1"},
        {"loss=5%", "loss=5%"},
        {"loss=", "loss="},
        {"loss", "'loss': key=value expected"},
        {"delay=60001", "delay=60001: milliseconds"},
        {"jitter=1e3", "jitter=1e3"},
        {"reorder=0x10", "reorder=0x10"},
        {"dup=99999999999999999999", "dup="},
        {"seed=abc", "seed=abc"},
        {"seed=184467440737095516160", "seed="},
        {"dir=up", "dir=up: send, recv or both"},
        {"held=0", "held=0: a positive integer"},
        {"bytes=-5", "bytes=-5"},
        {"lost=5", "unknown key 'lost'"},
        {"loss=5,loss=6", "loss given twice"},
        {"=5", "unknown key ''"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        el_fault_spec sp = {.loss = 42};
        char err[200] = "";
        assert_int_equal(el_fault_parse(bad[i].spec, &sp, err, sizeof err), EL_ERR_INVALID);
        if (!strstr(err, bad[i].msg))
            fail_msg("\"%s\": error \"%s\" lacks \"%s\"", bad[i].spec, err, bad[i].msg);
        assert_int_equal(sp.loss, 42); /* untouched on error */
    }
    char big[EL_FAULT_SPEC_MAX + 2];
    memset(big, ',', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    el_fault_spec sp;
    char err[200];
    assert_int_equal(el_fault_parse(big, &sp, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "longer than"));
}

static void test_spec_roundtrip(void **state)
{
    (void)state;
    el_fault_spec a, b;
    char err[200], text[256];
    assert_int_equal(el_fault_parse("loss=3,delay=7,jitter=9,reorder=11,dup=13,seed=99,dir=both,"
                                    "held=17,bytes=19",
                                    &a, err, sizeof err),
                     EL_OK);
    el_fault_spec_write(&a, text, sizeof text);
    assert_int_equal(el_fault_parse(text, &b, err, sizeof err), EL_OK);
    assert_memory_equal(&a, &b, sizeof a);
}

/* ---- the stage ----------------------------------------------------------- */

static void test_passthrough(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *s = calloc(1, sizeof *s);
    el_fault *f = make(ctx, "seed=1", s);
    for (uint32_t i = 0; i < 100; i++) {
        push_seq(f, i, 100);
        assert_int_equal(s->n, i + 1); /* at once, inside push */
        assert_int_equal(s->seq[i], i);
    }
    assert_int_equal(el_fault_held(f), 0);
    el_fault_free(f);
    el_fault_free(NULL);
    free(s);
    g_main_context_unref(ctx);
}

static void test_loss_and_dup_rates(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *s = calloc(1, sizeof *s);
    el_fault *f = make(ctx, "loss=100", s);
    for (uint32_t i = 0; i < 100; i++)
        push_seq(f, i, 10);
    assert_int_equal(s->n, 0);
    el_fault_free(f);

    f = make(ctx, "dup=100", s);
    for (uint32_t i = 0; i < 100; i++)
        push_seq(f, i, 10);
    assert_int_equal(s->n, 200);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(s->seq[i], i / 2); /* each right behind itself */
    el_fault_free(f);

    s->n = 0;
    f = make(ctx, "loss=30,dup=10,seed=5", s);
    for (uint32_t i = 0; i < 10000; i++)
        push_seq(f, i, 10);
    el_fault_stats st;
    el_fault_get_stats(f, &st);
    assert_int_equal(st.pushed, 10000);
    assert_true(st.lost > 2700 && st.lost < 3300);
    assert_true(st.dup > 550 && st.dup < 850); /* 10 % of the 70 % that survive */
    assert_int_equal(s->n, 10000 - st.lost + st.dup);
    assert_int_equal(st.emitted, s->n);
    el_fault_free(f);
    free(s);
    g_main_context_unref(ctx);
}

/* Loss, dup and reorder without delay decide everything from the seed, so
 * two runs must emit exactly the same sequence. */
static size_t run_seeded(GMainContext *ctx, const char *spec, sink *s)
{
    memset(s, 0, sizeof *s);
    el_fault *f = make(ctx, spec, s);
    for (uint32_t i = 0; i < 2000; i++)
        push_seq(f, i, 64);
    run_for(ctx, 3 * EL_FAULT_REORDER_WAIT_MS); /* the last reordered ones time out */
    assert_int_equal(el_fault_held(f), 0);
    el_fault_free(f);
    return s->n;
}

static void test_seed_deterministic(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *a = malloc(sizeof *a), *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    const char *spec = "loss=10,dup=5,reorder=20,seed=7";
    size_t na = run_seeded(ctx, spec, a);
    size_t nb = run_seeded(ctx, spec, b);
    size_t nc = run_seeded(ctx, "loss=10,dup=5,reorder=20,seed=8", c);
    assert_int_equal(na, nb);
    assert_memory_equal(a->seq, b->seq, na * sizeof a->seq[0]);
    assert_true(na != nc || memcmp(a->seq, c->seq, na * sizeof a->seq[0]) != 0);
    free(a);
    free(b);
    free(c);
    g_main_context_unref(ctx);
}

/* reorder=100 with nothing else: every datagram waits for a successor that
 * never comes, so each goes out after EL_FAULT_REORDER_WAIT_MS in order;
 * reorder=30: each held datagram comes out right behind the next one. */
static void test_reorder(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *s = calloc(1, sizeof *s);
    el_fault *f = make(ctx, "reorder=30,seed=3", s);
    const uint32_t n = 1000;
    for (uint32_t i = 0; i < n; i++)
        push_seq(f, i, 32);
    /* released by their successors inside push: only a trailing run of
     * reordered ones still waits for the timer */
    if (s->n + 5 < n)
        fail_msg("%zu of %u datagrams out without the timer", s->n, n);
    run_until(ctx, s, n, 2000);
    assert_int_equal(s->n, n);
    unsigned char *seen = calloc(n, 1);
    size_t inversions = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(s->seq[i] < n);
        assert_int_equal(seen[s->seq[i]], 0); /* exactly once */
        seen[s->seq[i]] = 1;
        if (i && s->seq[i] < s->seq[i - 1])
            inversions++;
    }
    el_fault_stats st;
    el_fault_get_stats(f, &st);
    assert_true(st.reordered > 200 && st.reordered < 400);
    /* runs of reordered datagrams follow their successor as one inversion */
    assert_true(inversions > 150 && inversions <= st.reordered);
    free(seen);
    el_fault_free(f);

    memset(s, 0, sizeof *s);
    f = make(ctx, "reorder=100", s);
    gint64 t0 = g_get_monotonic_time();
    for (uint32_t i = 0; i < 5; i++)
        push_seq(f, i, 32);
    assert_int_equal(s->n, 0);
    run_until(ctx, s, 5, 2000);
    assert_int_equal(s->n, 5);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(s->seq[i], i);
    assert_true(s->at[0] - t0 >= EL_FAULT_REORDER_WAIT_MS * 1000);
    el_fault_free(f);
    free(s);
    g_main_context_unref(ctx);
}

static void test_delay_jitter(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *s = calloc(1, sizeof *s);
    el_fault *f = make(ctx, "delay=30,jitter=20,seed=11", s);
    gint64 t0[200];
    for (uint32_t i = 0; i < 200; i++) {
        t0[i] = g_get_monotonic_time();
        push_seq(f, i, 200);
        if (i % 20 == 19)
            g_usleep(2000); /* spread the pushes a little, as a real sender */
    }
    assert_int_equal(s->n, 0);
    assert_int_equal(el_fault_held(f), 200);
    run_until(ctx, s, 200, 3000);
    assert_int_equal(s->n, 200);
    size_t inversions = 0;
    for (size_t i = 0; i < 200; i++) {
        uint32_t q = s->seq[i];
        gint64 waited = s->at[i] - t0[q];
        if (waited < 30000)
            fail_msg("datagram %u went out after %" G_GINT64_FORMAT " µs (< 30 ms)", q, waited);
        if (waited > 30000 + 20000 + 500000) /* the ceiling only catches a stall */
            fail_msg("datagram %u waited %" G_GINT64_FORMAT " µs", q, waited);
        if (i && q < s->seq[i - 1])
            inversions++;
    }
    assert_true(inversions > 0); /* jitter larger than the spacing reorders */
    el_fault_stats st;
    el_fault_get_stats(f, &st);
    assert_int_equal(st.delayed, 200);
    assert_int_equal(st.held_peak, 200);
    el_fault_free(f);
    free(s);
    g_main_context_unref(ctx);
}

static void test_caps(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *s = calloc(1, sizeof *s);
    el_fault *f = make(ctx, "delay=50,held=10", s);
    for (uint32_t i = 0; i < 25; i++)
        push_seq(f, i, 100);
    assert_int_equal(el_fault_held(f), 10);
    el_fault_stats st;
    el_fault_get_stats(f, &st);
    assert_int_equal(st.cap_drops, 15);
    run_until(ctx, s, 10, 2000);
    run_for(ctx, 20);
    assert_int_equal(s->n, 10);
    for (uint32_t i = 0; i < 10; i++)
        assert_int_equal(s->seq[i], i); /* the first ones were kept */
    el_fault_free(f);

    memset(s, 0, sizeof *s);
    f = make(ctx, "delay=50,bytes=1000", s);
    for (uint32_t i = 0; i < 20; i++)
        push_seq(f, i, 100);
    assert_int_equal(el_fault_held(f), 10);
    push_seq(f, 99, 4); /* too big for what is left? 1000 held: yes */
    assert_int_equal(el_fault_held(f), 10);
    run_until(ctx, s, 10, 2000);
    push_seq(f, 100, 1000); /* room again once they left */
    assert_int_equal(el_fault_held(f), 1);
    el_fault_free(f);
    free(s);
    g_main_context_unref(ctx);
}

static void test_free_drops_held(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *s = calloc(1, sizeof *s);
    el_fault *f = make(ctx, "delay=10,jitter=10,reorder=50,dup=50,seed=2", s);
    for (uint32_t i = 0; i < 100; i++)
        push_seq(f, i, 500);
    assert_true(el_fault_held(f) > 100);
    el_fault_free(f);
    run_for(ctx, 80);
    assert_int_equal(s->n, 0); /* nothing after free (ASan: nothing leaked) */
    free(s);
    g_main_context_unref(ctx);
}

static void test_free_inside_out(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    sink *s = calloc(1, sizeof *s);
    /* from the timer, with more due in the same dispatch */
    el_fault *f = make(ctx, "delay=5", s);
    for (uint32_t i = 0; i < 10; i++)
        push_seq(f, i, 50);
    s->free_me = f;
    run_for(ctx, 60);
    assert_int_equal(s->n, 1);
    /* straight through, inside push, with a duplicate still to come */
    memset(s, 0, sizeof *s);
    f = make(ctx, "dup=100", s);
    s->free_me = f;
    push_seq(f, 1, 50);
    assert_int_equal(s->n, 1);
    /* from a flush inside push: a zero-delay datagram behind a reordered one */
    memset(s, 0, sizeof *s);
    f = make(ctx, "reorder=50,seed=4", s);
    for (uint32_t i = 0; i < 3 && s->n == 0; i++)
        push_seq(f, i, 50);
    assert_true(s->n > 0);
    s->free_me = f;
    for (uint32_t i = 3; i < 50 && s->free_me; i++)
        push_seq(f, i, 50);
    assert_null(s->free_me);
    size_t n = s->n;
    run_for(ctx, 3 * EL_FAULT_REORDER_WAIT_MS);
    assert_int_equal(s->n, n);
    free(s);
    g_main_context_unref(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_spec_roundtrip),
        cmocka_unit_test(test_passthrough),
        cmocka_unit_test(test_loss_and_dup_rates),
        cmocka_unit_test(test_seed_deterministic),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_delay_jitter),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_free_drops_held),
        cmocka_unit_test(test_free_inside_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
