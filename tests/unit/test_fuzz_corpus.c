/* test_fuzz_corpus.c - runs every seed in tests/fuzz/corpus/<target>/ through
 * the same invariants as the libFuzzer targets (tests/fuzz/fuzz_checks.h),
 * so fuzz inputs stay exercised in the ordinary ASan+UBSan test build. A
 * crash input that fuzzing found, once fixed, belongs in the corpus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <cmocka.h>

#include "test.h"

#include "../fuzz/fuzz_checks.h"
#include "../fuzz/fuzz_checks_rtc.h"

#ifndef EL_TEST_DATA
#error "EL_TEST_DATA must name the tests/data directory"
#endif

#define CORPUS EL_TEST_DATA "/../fuzz/corpus"

typedef const char *(*check_fn)(const uint8_t *, size_t);

/* Runs check on every file of CORPUS/<name>; at least min_files. */
static void run_corpus(const char *name, check_fn check, size_t min_files)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", CORPUS, name);
    el_test_run_corpus(dir, check, min_files);
}

static void test_json_corpus(void **state)
{
    (void)state;
    run_corpus("json", el_fuzz_check_json, 10);
}

static void test_sio_corpus(void **state)
{
    (void)state;
    run_corpus("sio", el_fuzz_check_sio, 10);
}

static void test_eio_corpus(void **state)
{
    (void)state;
    run_corpus("eio", el_fuzz_check_eio, 10);
}

static void test_sdp_corpus(void **state)
{
    (void)state;
    run_corpus("sdp", el_fuzz_check_sdp, 8);
}

static void test_dcep_corpus(void **state)
{
    (void)state;
    run_corpus("dcep", el_fuzz_check_dcep, 5);
}

#define LIT(x) (const uint8_t *)(x), sizeof(x) - 1

/* The checks take both paths (accept and reject) on known inputs, and the
 * independent facts they rely on to excuse jansson's differences (lone
 * surrogate escapes, numbers too big for jansson, depth) are computed
 * correctly. */
static void test_check_helpers(void **state)
{
    (void)state;
    assert_null(el_fuzz_check_json(LIT("[1,{\"a\":\"b\"}]")));
    assert_null(el_fuzz_check_json(LIT("[1,")));
    assert_null(el_fuzz_check_sio(LIT("2/chat,5[\"x\"]")));
    assert_null(el_fuzz_check_sio(LIT("2{}")));
    assert_null(el_fuzz_check_eio(LIT("42[\"a\"]\x1e" "bAQID")));

    el_fuzz_json_facts f;
    static const char a[] = "[\"\\ud800\",1e400,[[]]]";
    el_fuzz_json_scan_facts(a, sizeof a - 1, &f);
    assert_int_equal(f.lone_surrogate, 1);
    assert_int_equal(f.number_overflow, 1);
    assert_int_equal(f.depth, 3);
    static const char b[] = "[\"\\ud83d\\ude00\",123,\"[[[\"]";
    el_fuzz_json_scan_facts(b, sizeof b - 1, &f);
    assert_int_equal(f.lone_surrogate, 0);
    assert_int_equal(f.number_overflow, 0);
    assert_int_equal(f.depth, 1);
    static const char c[] = "\"\\ude00\\ud83d\"";
    el_fuzz_json_scan_facts(c, sizeof c - 1, &f);
    assert_int_equal(f.lone_surrogate, 1);
    static const char d[] = "\"\\ud83d\\n\"";
    el_fuzz_json_scan_facts(d, sizeof d - 1, &f);
    assert_int_equal(f.lone_surrogate, 1);
    static const char e[] = "[9223372036854775808,-9223372036854775808]";
    el_fuzz_json_scan_facts(e, sizeof e - 1, &f);
    assert_int_equal(f.number_overflow, 1);
    static const char g[] = "[9223372036854775807,-9223372036854775808,1e308,1e-400]";
    el_fuzz_json_scan_facts(g, sizeof g - 1, &f);
    assert_int_equal(f.number_overflow, 0);

    assert_null(el_fuzz_check_b64("Zg==", 4, 0));
    assert_null(el_fuzz_check_b64("Zh==", 4, 0)); /* rejected, as it must be */
    assert_null(el_fuzz_check_b64("Zg", 2, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_corpus),
        cmocka_unit_test(test_sio_corpus),
        cmocka_unit_test(test_eio_corpus),
        cmocka_unit_test(test_sdp_corpus),
        cmocka_unit_test(test_dcep_corpus),
        cmocka_unit_test(test_check_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
