/* vectors.h - helpers shared by the cmocka unit tests (tests/unit) that read
 * the JSON vectors of tests/vectors (EL_TEST_VECTORS) and the fuzz seeds of
 * tests/fuzz/corpus.
 *
 * Include after <cmocka.h>. Everything here is static inline so that a test
 * that uses only part of it compiles without unused-function warnings. Every
 * helper fails the running test (fail_msg / assert_*) instead of returning
 * an error. */
#ifndef EL_VECTORS_H
#define EL_VECTORS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/identity.h"
#include "test.h"

#ifndef EL_TEST_VECTORS
#error "EL_TEST_VECTORS must name the tests/vectors directory"
#endif

/* ---- documents and members -------------------------------------------- */

/* EL_TEST_VECTORS/<file> parsed (json_decref it), or the test fails with
 * the path and jansson's reason. */
static inline json_t *el_vec_load(const char *file)
{
    char path[1024];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/%s", EL_TEST_VECTORS, file);
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
    return doc;
}

/* Group fixtures for cmocka_run_group_tests: each test's *state is then
 * e2ee.json, loaded once for the whole group. */
static inline int el_vec_setup_e2ee(void **state)
{
    *state = el_vec_load("e2ee.json");
    return 0;
}

static inline int el_vec_teardown(void **state)
{
    json_decref(*state);
    return 0;
}

/* The string member `key` of `o`, which must be there. */
static inline const char *el_vec_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("vector field \"%s\" missing or not a string", key);
    return json_string_value(v);
}

/* The array member `key` of `doc` (a vector set), with at least `min`
 * entries. */
static inline json_t *el_vec_cases(json_t *doc, const char *key, size_t min)
{
    json_t *v = json_object_get(doc, key);
    if (!json_is_array(v) || json_array_size(v) < min)
        fail_msg("vectors \"%s\": missing, not an array or fewer than %zu entries", key, min);
    return v;
}

/* Whether `o` has a string member `key` (for optional ones). */
static inline int el_vec_has(json_t *o, const char *key)
{
    return json_is_string(json_object_get(o, key));
}

/* The integer member `key` of `o`, which must be there. */
static inline uint64_t el_vec_uint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("vector field \"%s\" missing or not an integer", key);
    return (uint64_t)json_integer_value(v);
}

/* ---- decoding --------------------------------------------------------- */

/* Decodes hex into a fresh buffer (at least 1 byte allocated; free it). */
static inline uint8_t *el_vec_hex(const char *h, size_t *n)
{
    size_t len = strlen(h);
    uint8_t *b = malloc(len / 2 + 1);
    assert_non_null(b);
    assert_int_equal(el_hex_decode(h, len, b, len / 2 + 1), (ssize_t)(len / 2));
    *n = len / 2;
    return b;
}

/* Decodes hex of exactly n bytes (2n digits) into out. */
static inline void el_vec_hex_exact(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(h), 2 * n);
    assert_int_equal(el_hex_decode(h, 2 * n, out, n), (ssize_t)n);
}

/* Decodes hex of exactly 32 bytes (keys, hashes) into out. */
static inline void el_vec_hex32(const char *h, uint8_t out[32])
{
    el_vec_hex_exact(h, out, 32);
}

/* Decodes base64url of exactly n bytes into out. */
static inline void el_vec_b64_exact(const char *text, uint8_t *out, size_t n)
{
    assert_int_equal(el_b64url_decode(text, strlen(text), out, n), (ssize_t)n);
}

/* Fails, printing both in hex, unless (got, n) equals the hex `want`. */
static inline void el_vec_assert_hex(const uint8_t *got, size_t n, const char *want,
                                     const char *what)
{
    size_t wn;
    uint8_t *w = el_vec_hex(want, &wn);
    if (wn != n || memcmp(got, w, n) != 0) {
        char *g = malloc(2 * n + 1);
        if (g)
            el_hex_encode(got, n, g, 2 * n + 1);
        free(w);
        fail_msg("%s:\n got  %s\n want %s", what, g ? g : "?", want);
    }
    free(w);
}

/* ---- identities ------------------------------------------------------- */

/* The identities[] entry called `name` (e2ee.json). */
static inline json_t *el_vec_identity_entry(json_t *doc, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "identities"), i, v)
        if (strcmp(el_vec_str(v, "name"), name) == 0)
            return v;
    fail_msg("no identity \"%s\" in the vectors", name);
    return NULL;
}

/* The private keys of a vector entry (ik_seed_hex, sk_private_hex). */
static inline void el_vec_private_keys(json_t *v, uint8_t seed[EL_ID_KEY_LEN],
                                       uint8_t skp[EL_ID_KEY_LEN])
{
    el_vec_hex_exact(el_vec_str(v, "ik_seed_hex"), seed, EL_ID_KEY_LEN);
    el_vec_hex_exact(el_vec_str(v, "sk_private_hex"), skp, EL_ID_KEY_LEN);
}

/* The el_identity of a vector entry with ik_seed_hex and sk_private_hex;
 * its private keys are also left in seed and skp for the caller. */
static inline el_identity *el_vec_identity_keys(json_t *v, uint8_t seed[EL_ID_KEY_LEN],
                                                uint8_t skp[EL_ID_KEY_LEN])
{
    el_identity *id = NULL;
    char err[256] = "";
    el_vec_private_keys(v, seed, skp);
    if (el_identity_new(&id, seed, skp, err, sizeof err) != EL_OK)
        fail_msg("el_identity_new: %s", err);
    return id;
}

/* The el_identity of a vector entry with ik_seed_hex and sk_private_hex. */
static inline el_identity *el_vec_identity_of(json_t *v)
{
    uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
    el_identity *id = el_vec_identity_keys(v, seed, skp);
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(skp, sizeof skp);
    return id;
}

/* The el_identity of identities[] entry `name` (e2ee.json). */
static inline el_identity *el_vec_identity(json_t *doc, const char *name)
{
    return el_vec_identity_of(el_vec_identity_entry(doc, name));
}

/* ---- codes ------------------------------------------------------------ */

/* A vector's outcome name and the code it stands for. */
typedef struct {
    const char *name;
    int code;
} el_vec_code;

/* The code of `name` in tab[0..n), or the test fails ("unknown <what>"). */
static inline int el_vec_code_of(const el_vec_code *tab, size_t n, const char *name,
                                 const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, tab[i].name) == 0)
            return tab[i].code;
    fail_msg("unknown %s %s", what, name);
    return 0;
}

/* ---- fuzz seeds ------------------------------------------------------- */

/* Runs check on every file of tests/fuzz/corpus/<target> (at least
 * min_files), each in an exact-size copy so that ASan catches reads past
 * the input, as under libFuzzer. */
static inline void el_vec_run_corpus(const char *target,
                                     const char *(*check)(const uint8_t *, size_t),
                                     size_t min_files)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../fuzz/corpus/%s", EL_TEST_VECTORS, target);
    el_test_run_corpus(dir, check, min_files);
}

#endif
