/* test_safety.c - src/crypto/safety against tests/vectors/e2ee.json
 * ("safety", made by gen-e2ee.mjs with node:crypto) and two numbers computed
 * once by a separate node:crypto script from identity.json's first three
 * keys; plus symmetry, distinctness and the formatter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/identity.h"
#include "crypto/safety.h"
#include "vectors.h"

/* ik of identities[] entry `name` in e2ee.json. */
static void ik_of(json_t *doc, const char *name, uint8_t ik[EL_ID_KEY_LEN])
{
    el_vec_b64_exact(el_vec_str(el_vec_identity_entry(doc, name), "ik"), ik, EL_ID_KEY_LEN);
}

static void test_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *cases = el_vec_cases(doc, "safety", 3);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        uint8_t a[EL_ID_KEY_LEN], b[EL_ID_KEY_LEN];
        char num[EL_SAFETY_SIZE];
        ik_of(doc, el_vec_str(c, "a"), a);
        ik_of(doc, el_vec_str(c, "b"), b);
        assert_int_equal(el_safety_number(a, b, num), EL_OK);
        assert_string_equal(num, el_vec_str(c, "number"));
        assert_int_equal(el_safety_number(b, a, num), EL_OK);
        assert_string_equal(num, el_vec_str(c, "number"));
    }
    json_decref(doc);
}

/* Numbers from a one-off node:crypto script (SHA-512 chain written from
 * §10.1), independent of both this code and gen-e2ee.mjs. */
static void test_known_numbers(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    json_t *v = json_object_get(doc, "vectors");
    el_id_bundle b[3];
    char num[EL_SAFETY_SIZE];
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(v, i);
        char err[128];
        assert_int_equal(el_id_bundle_from_b64(&b[i], el_vec_str(e, "ik"), el_vec_str(e, "sk"),
                                               el_vec_str(e, "sk_sig"), err, sizeof err),
                         EL_OK);
    }
    assert_int_equal(el_safety_number_bundles(&b[0], &b[1], num), EL_OK);
    assert_string_equal(num, "487770032704938846342427770684999224990584325774692766258651");
    assert_int_equal(el_safety_number_bundles(&b[0], &b[2], num), EL_OK);
    assert_string_equal(num, "454380527683607809199973690432999224990584325774692766258651");

    /* The shared 30 digits are vectors[0]'s half, sorted last both times. */
    char h0[EL_SAFETY_HALF_LEN + 1], h1[EL_SAFETY_HALF_LEN + 1];
    assert_int_equal(el_safety_half(b[0].ik, h0), EL_OK);
    assert_int_equal(el_safety_half(b[1].ik, h1), EL_OK);
    assert_string_equal(h0, "999224990584325774692766258651");
    assert_string_equal(h1, "487770032704938846342427770684");
    json_decref(doc);
}

static void test_properties(void **state)
{
    (void)state;
    /* Random keys: only the structure is checked here, so any 32 bytes do
     * (the ik need not be a valid point for hashing). */
    uint8_t k[4][EL_ID_KEY_LEN];
    char n[4][EL_SAFETY_SIZE], swapped[EL_SAFETY_SIZE];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < EL_ID_KEY_LEN; j++)
            k[i][j] = (uint8_t)(i * 37 + j * 11 + 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(el_safety_number(k[i], k[i + 1], n[i]), EL_OK);
        assert_int_equal(strlen(n[i]), EL_SAFETY_LEN);
        assert_int_equal(strspn(n[i], "0123456789"), EL_SAFETY_LEN);
        assert_int_equal(el_safety_number(k[i + 1], k[i], swapped), EL_OK);
        assert_string_equal(n[i], swapped);
        /* The halves are sorted: first <= second. */
        assert_true(strncmp(n[i], n[i] + EL_SAFETY_HALF_LEN, EL_SAFETY_HALF_LEN) <= 0);
    }
    assert_string_not_equal(n[0], n[1]);
    assert_string_not_equal(n[1], n[2]);
    /* One bit of ik changes the number. */
    k[0][31] ^= 1;
    assert_int_equal(el_safety_number(k[0], k[1], n[3]), EL_OK);
    assert_string_not_equal(n[0], n[3]);
}

static void test_format(void **state)
{
    (void)state;
    char out[EL_SAFETY_FMT_SIZE];
    const char *num = "487770032704938846342427770684999224990584325774692766258651";
    assert_int_equal(el_safety_format(num, out), EL_OK);
    assert_string_equal(out, "48777 00327 04938 84634 24277 70684 "
                             "99922 49905 84325 77469 27662 58651");
    assert_int_equal(strlen(out), EL_SAFETY_FMT_LEN);

    /* 59 digits, 61 digits, a letter, NULLs. */
    char bad[80];
    memcpy(bad, num, 59);
    bad[59] = '\0';
    assert_int_equal(el_safety_format(bad, out), EL_ERR_INVALID);
    assert_string_equal(out, "");
    snprintf(bad, sizeof bad, "%s1", num);
    assert_int_equal(el_safety_format(bad, out), EL_ERR_INVALID);
    snprintf(bad, sizeof bad, "%s", num);
    bad[17] = 'a';
    assert_int_equal(el_safety_format(bad, out), EL_ERR_INVALID);
    assert_int_equal(el_safety_format(NULL, out), EL_ERR_INVALID);
    assert_int_equal(el_safety_format(num, NULL), EL_ERR_INVALID);
}

static void test_null_args(void **state)
{
    (void)state;
    uint8_t k[EL_ID_KEY_LEN] = {1};
    char out[EL_SAFETY_SIZE] = "x";
    assert_int_equal(el_safety_number(NULL, k, out), EL_ERR_INVALID);
    assert_string_equal(out, "");
    assert_int_equal(el_safety_number(k, NULL, out), EL_ERR_INVALID);
    assert_int_equal(el_safety_number(k, k, NULL), EL_ERR_INVALID);
    assert_int_equal(el_safety_number_bundles(NULL, NULL, out), EL_ERR_INVALID);
    assert_int_equal(el_safety_half(NULL, out), EL_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_known_numbers),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_null_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
