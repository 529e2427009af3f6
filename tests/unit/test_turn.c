/* test_turn.c - src/server/turn: coturn use-auth-secret credentials.
 *
 * Expected values were computed outside this code base, e.g.
 *   printf '%s' "1700000000:abcdefghijklmnopqrstuvwxyz234567" |
 *     openssl dgst -sha1 -hmac secret -binary | base64
 * and cross-checked with Python's hmac module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/turn.h"

static const struct {
    const char *secret, *peer;
    int64_t expiry;
    const char *user, *cred;
} vectors[] = {
    {"secret", "abcdefghijklmnopqrstuvwxyz234567", 1700000000,
     "1700000000:abcdefghijklmnopqrstuvwxyz234567", "bXU2Mq2udcOBjrOvA1PZJQzyP4k="},
    {"coturn-shared-secret", "p", 0, "0:p", "aafk72OrJ9GqtFNdmO4kaUfW2UU="},
    {"", "x", 1, "1:x", "wBVqeCkzFfbJeptoGEftON2+Q7I="}, /* empty secret */
    /* a secret longer than SHA-1's 64-byte block is hashed first */
    {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
     "mzxw6ytboi", 4102444800, "4102444800:mzxw6ytboi", "aO0sLq90vG0icPNNQALZrbB1jkI="},
    {"s", "z", INT64_MAX, "9223372036854775807:z", "f/gYkvEAEpVpT2AhZkVgJAyNNTo="},
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char user[128], cred[64];
        memset(user, 'U', sizeof user);
        memset(cred, 'C', sizeof cred);
        assert_int_equal(el_turn_credential(vectors[i].secret, vectors[i].peer, vectors[i].expiry,
                                            user, sizeof user, cred, sizeof cred),
                         0);
        assert_string_equal(user, vectors[i].user);
        assert_string_equal(cred, vectors[i].cred);
    }
}

/* Different inputs give different credentials (each input is used). */
static void test_inputs_matter(void **state)
{
    (void)state;
    char u1[64], c1[64], u2[64], c2[64];
    assert_int_equal(el_turn_credential("secret", "peer", 100, u1, sizeof u1, c1, sizeof c1), 0);
    assert_int_equal(el_turn_credential("secret", "peer", 101, u2, sizeof u2, c2, sizeof c2), 0);
    assert_string_not_equal(c1, c2);
    assert_int_equal(el_turn_credential("secreT", "peer", 100, u2, sizeof u2, c2, sizeof c2), 0);
    assert_string_equal(u1, u2);
    assert_string_not_equal(c1, c2);
    assert_int_equal(el_turn_credential("secret", "peeR", 100, u2, sizeof u2, c2, sizeof c2), 0);
    assert_string_not_equal(c1, c2);
    /* deterministic */
    assert_int_equal(el_turn_credential("secret", "peer", 100, u2, sizeof u2, c2, sizeof c2), 0);
    assert_string_equal(u1, u2);
    assert_string_equal(c1, c2);
}

static void test_buffer_sizes(void **state)
{
    (void)state;
    const char *want_user = vectors[0].user, *want_cred = vectors[0].cred;
    size_t ul = strlen(want_user) + 1, cl = strlen(want_cred) + 1; /* 44, 29 */
    char *user = malloc(ul), *cred = malloc(cl);
    assert_non_null(user);
    assert_non_null(cred);
    /* exact sizes fit (heap buffers: ASan catches any overrun) */
    assert_int_equal(el_turn_credential(vectors[0].secret, vectors[0].peer, vectors[0].expiry, user,
                                        ul, cred, cl),
                     0);
    assert_string_equal(user, want_user);
    assert_string_equal(cred, want_cred);
    /* one byte short, either buffer */
    assert_int_equal(el_turn_credential(vectors[0].secret, vectors[0].peer, vectors[0].expiry, user,
                                        ul - 1, cred, cl),
                     -1);
    assert_int_equal(el_turn_credential(vectors[0].secret, vectors[0].peer, vectors[0].expiry, user,
                                        ul, cred, cl - 1),
                     -1);
    assert_int_equal(el_turn_credential(vectors[0].secret, vectors[0].peer, vectors[0].expiry, user,
                                        1, cred, cl),
                     -1);
    free(user);
    free(cred);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_inputs_matter),
        cmocka_unit_test(test_buffer_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
