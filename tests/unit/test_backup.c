/* test_backup.c - src/crypto/backup: the "backup" and "backup_negative"
 * vectors of tests/vectors/e2ee.json (gen-e2ee.mjs, node:crypto), one more
 * backup made by a one-off node:crypto script (p = 2, a non-ASCII
 * passphrase), a timed round trip at the default n = 2^17, tampering, and the
 * key files (0600, refused when open to others, replace or not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/backup.h"
#include "crypto/identity.h"
#include "test.h"
#include "vectors.h"

/* ---- helpers ---------------------------------------------------------- */

/* Asserts that `id` holds exactly these private keys. */
static void assert_keys(const el_identity *id, const uint8_t seed[EL_ID_KEY_LEN],
                        const uint8_t skp[EL_ID_KEY_LEN])
{
    uint8_t got[EL_ID_KEY_LEN];
    assert_non_null(id);
    assert_int_equal(el_identity_ik_seed(id, got), EL_OK);
    assert_memory_equal(got, seed, EL_ID_KEY_LEN);
    assert_int_equal(el_identity_sk_private(id, got), EL_OK);
    assert_memory_equal(got, skp, EL_ID_KEY_LEN);
}

static void assert_same_identity(const el_identity *a, const el_identity *b)
{
    uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
    assert_int_equal(el_identity_ik_seed(b, seed), EL_OK);
    assert_int_equal(el_identity_sk_private(b, skp), EL_OK);
    assert_keys(a, seed, skp);
    assert_memory_equal(el_identity_bundle(a), el_identity_bundle(b), sizeof(el_id_bundle));
    assert_string_equal(el_identity_peer_id(a), el_identity_peer_id(b));
}

static el_identity *fresh_identity(void)
{
    el_identity *id = NULL;
    char err[256] = "";
    if (el_identity_generate(&id, err, sizeof err) != EL_OK)
        fail_msg("el_identity_generate: %s", err);
    return id;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Replaces the first occurrence of `from` in `json` by `to` (malloc'ed). */
static char *replace(const char *json, const char *from, const char *to)
{
    const char *at = strstr(json, from);
    if (!at)
        fail_msg("\"%s\" not in %s", from, json);
    size_t head = (size_t)(at - json), flen = strlen(from), tlen = strlen(to);
    char *out = malloc(strlen(json) - flen + tlen + 1);
    assert_non_null(out);
    memcpy(out, json, head);
    memcpy(out + head, to, tlen);
    strcpy(out + head + tlen, at + flen);
    return out;
}

static const uint8_t salt0[EL_BACKUP_SALT_LEN] = {0, 1, 2, 3, 4, 5, 6, 7,
                                                   8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t nonce0[EL_BACKUP_NONCE_LEN] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
                                                     0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab};
/* U+2713 CHECK MARK: the passphrase is hashed as its UTF-8 bytes. */
static const char pass_utf8[] = "correct horse \xe2\x9c\x93";
/* node:crypto, scryptSync + aes-256-gcm, identity.json vectors[0], n=1024 p=2. */
static const char node_backup[] =
    "{\"echolink_backup\":1,\"kdf\":\"scrypt\",\"n\":1024,\"r\":8,\"p\":2,"
    "\"salt\":\"AAECAwQFBgcICQoLDA0ODw\",\"nonce\":\"oKGio6Slpqeoqaqr\","
    "\"ct\":\"CRzCcEDng3nmxfT4DQKEB4Y6ygRphBe4Z7S7pWvNE_ch4tlMtyWstULdaq6nMF3IzBM1xGAsspXqzj0"
    "pY-atVWqolirqFvK2JkPVrAYU3of8\"}";

/* ---- vectors ---------------------------------------------------------- */

static void test_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *cases = el_vec_cases(doc, "backup", 1);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
        uint8_t salt[EL_BACKUP_SALT_LEN], nonce[EL_BACKUP_NONCE_LEN];
        char err[256] = "", *json = NULL;
        json_t *entry = el_vec_identity_entry(doc, el_vec_str(c, "identity"));
        el_identity *want = el_vec_identity_keys(entry, seed, skp);
        el_identity *got = NULL;
        const char *pass = el_vec_str(c, "passphrase");

        /* Import: the same identity as identities[]. */
        int rc = el_backup_import(el_vec_str(c, "json"), pass, &got, err, sizeof err);
        if (rc != EL_OK)
            fail_msg("backup[%zu]: import failed: %s", i, err);
        assert_keys(got, seed, skp);
        assert_same_identity(got, want);

        /* Export with the vector's parameters: the same text, byte for byte. */
        assert_int_equal(el_vec_uint(c, "r"), EL_BACKUP_R);
        el_vec_hex_exact(el_vec_str(c, "salt_hex"), salt, sizeof salt);
        el_vec_hex_exact(el_vec_str(c, "nonce_hex"), nonce, sizeof nonce);
        rc = el_backup_export_params(want, pass, el_vec_uint(c, "n"), el_vec_uint(c, "p"), salt,
                                     nonce, &json, err, sizeof err);
        if (rc != EL_OK)
            fail_msg("backup[%zu]: export failed: %s", i, err);
        assert_string_equal(json, el_vec_str(c, "json"));
        free(json);
        el_identity_free(got);
        el_identity_free(want);
    }
    json_decref(doc);
}

static void test_negative_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *cases = el_vec_cases(doc, "backup_negative", 6);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = el_vec_str(c, "name"), *expect = el_vec_str(c, "expect");
        char err[256] = "";
        el_identity *id = NULL;
        int rc = el_backup_import(el_vec_str(c, "json"), el_vec_str(c, "passphrase"), &id, err,
                                  sizeof err);
        assert_null(id);
        if (strcmp(expect, "bad_passphrase") == 0) {
            if (rc != EL_ERR_CRYPTO)
                fail_msg("%s: want bad_passphrase, got %d (%s)", name, rc, err);
            assert_string_equal(err, "bad passphrase or corrupted backup");
        } else if (strcmp(expect, "invalid") == 0) {
            if (rc != EL_ERR_INVALID)
                fail_msg("%s: want invalid, got %d (%s)", name, rc, err);
        } else {
            fail_msg("%s: unknown expect \"%s\"", name, expect);
        }
    }
    json_decref(doc);
}

/* Files that import but are not export output (extra members). */
static void test_import_only_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *cases = el_vec_cases(doc, "backup_import_only", 1);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
        char err[256] = "";
        el_identity *id = NULL;
        el_vec_private_keys(c, seed, skp);
        int rc = el_backup_import(el_vec_str(c, "json"), el_vec_str(c, "passphrase"), &id, err,
                                  sizeof err);
        if (rc != EL_OK)
            fail_msg("%s: %s", el_vec_str(c, "name"), err);
        assert_keys(id, seed, skp);
        el_identity_free(id);
    }
    json_decref(doc);
}

/* A backup from a second, independent writer (see node_backup). */
static void test_node_backup(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    json_t *v = json_array_get(json_object_get(doc, "vectors"), 0);
    uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
    el_vec_private_keys(v, seed, skp);
    json_decref(doc);

    el_identity *id = NULL, *src = NULL;
    char err[256] = "", *json = NULL;
    assert_int_equal(el_backup_import(node_backup, pass_utf8, &id, err, sizeof err), EL_OK);
    assert_keys(id, seed, skp);

    assert_int_equal(el_identity_new(&src, seed, skp, err, sizeof err), EL_OK);
    assert_int_equal(el_backup_export_params(src, pass_utf8, 1024, 2, salt0, nonce0, &json, err,
                                             sizeof err),
                     EL_OK);
    assert_string_equal(json, node_backup);
    free(json);
    el_identity_free(src);
    el_identity_free(id);

    /* The passphrase is bytes: a look-alike (no check mark) does not open it. */
    assert_int_equal(el_backup_import(node_backup, "correct horse ", &id, err, sizeof err),
                     EL_ERR_CRYPTO);
    assert_null(id);
}

/* ---- round trips ------------------------------------------------------ */

static void test_default_round_trip(void **state)
{
    (void)state;
    el_identity *id = fresh_identity(), *back = NULL;
    char err[256] = "", *json = NULL, *json2 = NULL;

    double t0 = now_s();
    int rc = el_backup_export(id, "hunter2 but longer", &json, err, sizeof err);
    double t1 = now_s();
    if (rc != EL_OK)
        fail_msg("export: %s", err);
    rc = el_backup_import(json, "hunter2 but longer", &back, err, sizeof err);
    double t2 = now_s();
    if (rc != EL_OK)
        fail_msg("import: %s", err);
    print_message("n = 2^17: export %.2f s, import %.2f s\n", t1 - t0, t2 - t1);
    assert_true(t2 - t0 < 10.0);
    assert_same_identity(back, id);

    /* The default parameters, visible in the text. */
    json_t *doc = json_loads(json, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(el_vec_uint(doc, "n"), 131072);
    assert_int_equal(el_vec_uint(doc, "r"), 8);
    assert_int_equal(el_vec_uint(doc, "p"), 1);
    assert_string_equal(el_vec_str(doc, "kdf"), "scrypt");
    json_decref(doc);

    /* Fresh salt and nonce each time: two exports differ. */
    assert_int_equal(el_backup_export(id, "hunter2 but longer", &json2, err, sizeof err), EL_OK);
    assert_string_not_equal(json, json2);

    el_identity_free(back);
    back = NULL;
    assert_int_equal(el_backup_import(json, "hunter3 but longer", &back, err, sizeof err),
                     EL_ERR_CRYPTO);
    assert_string_equal(err, "bad passphrase or corrupted backup");
    assert_null(back);
    free(json);
    free(json2);
    el_identity_free(id);
}

static void test_params_round_trip(void **state)
{
    (void)state;
    el_identity *id = fresh_identity();
    for (uint32_t p = 1; p <= EL_BACKUP_P_MAX; p++) {
        el_identity *back = NULL;
        char err[256] = "", *json = NULL;
        assert_int_equal(el_backup_export_params(id, "pw", 1024, p, salt0, nonce0, &json, err,
                                                 sizeof err),
                         EL_OK);
        assert_int_equal(el_backup_import(json, "pw", &back, err, sizeof err), EL_OK);
        assert_same_identity(back, id);
        el_identity_free(back);
        free(json);
    }
    /* Parameters import would refuse are refused on export too. */
    char err[256] = "", *json = (char *)"x";
    assert_int_equal(el_backup_export_params(id, "pw", 1000, 1, salt0, nonce0, &json, err,
                                             sizeof err),
                     EL_ERR_INVALID);
    assert_null(json);
    assert_int_equal(el_backup_export_params(id, "pw", 1u << 21, 1, salt0, nonce0, &json, err,
                                             sizeof err),
                     EL_ERR_INVALID);
    assert_int_equal(el_backup_export_params(id, "pw", 512, 1, salt0, nonce0, &json, err,
                                             sizeof err),
                     EL_ERR_INVALID);
    assert_int_equal(el_backup_export_params(id, "pw", 1024, 0, salt0, nonce0, &json, err,
                                             sizeof err),
                     EL_ERR_INVALID);
    assert_int_equal(el_backup_export_params(id, "pw", 1024, 5, salt0, nonce0, &json, err,
                                             sizeof err),
                     EL_ERR_INVALID);
    assert_int_equal(el_backup_export(id, "", &json, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_backup_export(NULL, "pw", &json, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_backup_export(id, NULL, &json, err, sizeof err), EL_ERR_INVALID);
    el_identity_free(id);
}

/* ---- tampering -------------------------------------------------------- */

static int import_rc(const char *json, const char *pass, char *err, size_t errlen)
{
    el_identity *id = NULL;
    int rc = el_backup_import(json, pass, &id, err, errlen);
    if (rc == EL_OK)
        el_identity_free(id);
    else
        assert_null(id);
    return rc;
}

static void test_tampering(void **state)
{
    (void)state;
    el_identity *id = fresh_identity();
    char err[256] = "", *json = NULL;
    assert_int_equal(el_backup_export_params(id, "pw", 1024, 1, salt0, nonce0, &json, err,
                                             sizeof err),
                     EL_OK);
    assert_int_equal(import_rc(json, "pw", err, sizeof err), EL_OK);

    /* Parameters are bound by the associated data: changing any acceptable
     * one makes the file fail to authenticate. */
    static const struct {
        const char *from, *to;
        int rc;
    } cases[] = {
        {"\"n\":1024", "\"n\":2048", EL_ERR_CRYPTO},
        {"\"p\":1", "\"p\":2", EL_ERR_CRYPTO},
        {"\"salt\":\"AAEC", "\"salt\":\"AQEC", EL_ERR_CRYPTO},
        {"\"nonce\":\"oKGi", "\"nonce\":\"oKGj", EL_ERR_CRYPTO},
        {"\"n\":1024", "\"n\":1000", EL_ERR_INVALID},
        {"\"n\":1024", "\"n\":2097152", EL_ERR_INVALID},
        {"\"n\":1024", "\"n\":1024.0", EL_ERR_INVALID},
        {"\"n\":1024", "\"n\":\"1024\"", EL_ERR_INVALID},
        {"\"r\":8", "\"r\":16", EL_ERR_INVALID},
        {"\"p\":1", "\"p\":5", EL_ERR_INVALID},
        {"\"p\":1", "\"p\":0", EL_ERR_INVALID},
        {"\"echolink_backup\":1", "\"echolink_backup\":2", EL_ERR_INVALID},
        {"\"kdf\":\"scrypt\"", "\"kdf\":\"argon2id\"", EL_ERR_INVALID},
        {"\"kdf\":\"scrypt\"", "\"kdf\":\"none\"", EL_ERR_INVALID},
        {"\"salt\":\"AAECAwQFBgcICQoLDA0ODw\"", "\"salt\":\"AAECAwQFBgcICQoLDA0O\"", EL_ERR_INVALID},
        {"\"salt\":\"AAEC", "\"salt\":\"AA=C", EL_ERR_INVALID},
        {"\"nonce\":\"oKGio6Slpqeoqaqr\"", "\"nonce\":\"oKGio6Slpqeoqaqr\",\"n\":1024", EL_ERR_INVALID},
        {"{", "[", EL_ERR_INVALID},
        /* Unknown members are ignored. */
        {"\"kdf\"", "\"note\":\"made by a test\",\"kdf\"", EL_OK},
        {"\"kdf\"", "\"extra\":{\"deep\":[1,2,3]},\"kdf\"", EL_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bad = replace(json, cases[i].from, cases[i].to);
        int rc = import_rc(bad, "pw", err, sizeof err);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s -> %s): want %d, got %d (%s)", i, cases[i].from, cases[i].to,
                     cases[i].rc, rc, err);
        if (rc == EL_ERR_CRYPTO)
            assert_string_equal(err, "bad passphrase or corrupted backup");
        free(bad);
    }

    /* Every single character of ct altered (to another base64url digit whose
     * value differs in the bits that matter) fails to authenticate. */
    char *ct = strstr(json, "\"ct\":\"") + 6;
    size_t ctlen = strcspn(ct, "\"");
    assert_int_equal(ctlen, EL_B64URL_LEN(EL_BACKUP_CT_LEN));
    for (size_t i = 0; i + 1 < ctlen; i++) { /* the last digit carries 2 padding bits */
        char saved = ct[i];
        ct[i] = saved == 'A' ? 'B' : 'A';
        assert_int_equal(import_rc(json, "pw", err, sizeof err), EL_ERR_CRYPTO);
        ct[i] = saved;
    }
    assert_int_equal(import_rc(json, "pw", err, sizeof err), EL_OK);

    /* Members missing, one at a time. */
    static const char *const members[] = {"echolink_backup", "kdf", "n", "r", "p",
                                          "salt", "nonce", "ct"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        json_t *doc = json_loads(json, 0, NULL);
        assert_int_equal(json_object_del(doc, members[i]), 0);
        char *text = json_dumps(doc, JSON_COMPACT);
        assert_int_equal(import_rc(text, "pw", err, sizeof err), EL_ERR_INVALID);
        assert_non_null(strstr(err, members[i]));
        free(text);
        json_decref(doc);
    }

    /* Not JSON, a duplicate member, NULL arguments. */
    assert_int_equal(import_rc("not json", "pw", err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(import_rc("", "pw", err, sizeof err), EL_ERR_INVALID);
    char *dup = replace(json, "\"r\":8", "\"r\":8,\"r\":8");
    assert_int_equal(import_rc(dup, "pw", err, sizeof err), EL_ERR_INVALID);
    free(dup);
    assert_int_equal(import_rc(NULL, "pw", err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(import_rc(json, NULL, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_backup_import(json, "pw", NULL, err, sizeof err), EL_ERR_INVALID);
    free(json);
    el_identity_free(id);
}

/* ---- key files -------------------------------------------------------- */

typedef struct {
    char dir[64];
    char path[128];
} tmpdir;

static void tmp_make(tmpdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/el_backup_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/identity.json", t->dir);
}

static void tmp_remove(tmpdir *t)
{
    unlink(t->path);
    assert_int_equal(rmdir(t->dir), 0); /* also: no temporary file left behind */
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)st.st_mode & 07777;
}

static void test_key_file_plain(void **state)
{
    (void)state;
    tmpdir t;
    tmp_make(&t);
    el_identity *id = fresh_identity(), *back = NULL;
    char err[256] = "";

    /* Even with a permissive umask the file is 0600. */
    mode_t old = umask(0);
    int rc = el_backup_save_file(t.path, id, NULL, 0, err, sizeof err);
    umask(old);
    if (rc != EL_OK)
        fail_msg("save: %s", err);
    assert_int_equal(mode_of(t.path), 0600);

    /* The documented unencrypted form: kdf none, keys = 0x01 ‖ seed ‖ sk. */
    size_t len = 0;
    char *text = el_test_read_file(t.path, &len);
    assert_non_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_object_size(doc), 3);
    assert_int_equal(el_vec_uint(doc, "echolink_backup"), 1);
    assert_string_equal(el_vec_str(doc, "kdf"), "none");
    uint8_t keys[EL_BACKUP_PT_LEN], want[EL_ID_KEY_LEN];
    const char *b64 = el_vec_str(doc, "keys");
    assert_int_equal(el_b64url_decode(b64, strlen(b64), keys, sizeof keys), EL_BACKUP_PT_LEN);
    assert_int_equal(keys[0], 0x01);
    assert_int_equal(el_identity_ik_seed(id, want), EL_OK);
    assert_memory_equal(keys + 1, want, EL_ID_KEY_LEN);
    assert_int_equal(el_identity_sk_private(id, want), EL_OK);
    assert_memory_equal(keys + 1 + EL_ID_KEY_LEN, want, EL_ID_KEY_LEN);
    assert_true(strncmp(text, "{\"echolink_backup\":1,\"kdf\":\"none\",\"keys\":\"", 42) == 0);
    json_decref(doc);
    OPENSSL_cleanse(text, len);
    free(text);

    assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err), EL_OK);
    assert_same_identity(back, id);
    el_identity_free(back);
    /* A passphrase is not needed for an unencrypted file, and harmless. */
    assert_int_equal(el_backup_load_file(t.path, "pw", &back, err, sizeof err), EL_OK);
    assert_same_identity(back, id);
    el_identity_free(back);

    /* An unencrypted key file is not a backup. */
    text = el_test_read_file(t.path, &len);
    assert_int_equal(import_rc(text, "pw", err, sizeof err), EL_ERR_INVALID);
    free(text);

    /* Never overwritten by accident; replaced on request. */
    el_identity *other = fresh_identity();
    assert_int_equal(el_backup_save_file(t.path, other, NULL, 0, err, sizeof err),
                     EL_ERR_EXISTS);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err), EL_OK);
    assert_same_identity(back, id);
    el_identity_free(back);
    assert_int_equal(el_backup_save_file(t.path, other, NULL, EL_BACKUP_REPLACE, err, sizeof err),
                     EL_OK);
    assert_int_equal(mode_of(t.path), 0600);
    assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err), EL_OK);
    assert_same_identity(back, other);
    el_identity_free(back);

    el_identity_free(other);
    el_identity_free(id);
    tmp_remove(&t);
}

static void test_key_file_permissions(void **state)
{
    (void)state;
    tmpdir t;
    tmp_make(&t);
    el_identity *id = fresh_identity(), *back = NULL;
    char err[256] = "";
    assert_int_equal(el_backup_save_file(t.path, id, NULL, 0, err, sizeof err), EL_OK);

    static const struct {
        mode_t mode;
        const char *msg;
    } wide[] = {
        {0644, "is readable by others (mode 0644); chmod 600 it"},
        {0640, "is readable by others (mode 0640); chmod 600 it"},
        {0604, "is readable by others (mode 0604); chmod 600 it"},
        {0620, "is accessible by others (mode 0620); chmod 600 it"},
        {0601, "is accessible by others (mode 0601); chmod 600 it"},
    };
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        assert_int_equal(chmod(t.path, wide[i].mode), 0);
        assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err),
                         EL_ERR_DENIED);
        assert_null(back);
        assert_non_null(strstr(err, t.path));
        if (!strstr(err, wide[i].msg))
            fail_msg("message \"%s\" lacks \"%s\"", err, wide[i].msg);
    }
    /* Narrower than 0600 is fine. */
    assert_int_equal(chmod(t.path, 0400), 0);
    assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err), EL_OK);
    el_identity_free(back);
    assert_int_equal(chmod(t.path, 0600), 0);

    /* Missing file, a directory. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.json", t.dir);
    assert_int_equal(el_backup_load_file(missing, NULL, &back, err, sizeof err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(chmod(t.dir, 0700), 0);
    assert_int_equal(el_backup_load_file(t.dir, NULL, &back, err, sizeof err), EL_ERR_INVALID);
    assert_null(back);

    /* Garbage and oversized files. */
    FILE *f = fopen(t.path, "w");
    assert_non_null(f);
    fputs("{\"echolink_backup\":1,\"kdf\":\"none\",\"keys\":\"short\"}", f);
    fclose(f);
    assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err), EL_ERR_INVALID);
    f = fopen(t.path, "w");
    assert_non_null(f);
    for (int i = 0; i < EL_BACKUP_FILE_MAX + 1; i++)
        fputc(' ', f);
    fclose(f);
    assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err),
                     EL_ERR_TOO_LARGE);
    el_identity_free(id);
    tmp_remove(&t);
}

static void test_key_file_encrypted(void **state)
{
    (void)state;
    tmpdir t;
    tmp_make(&t);
    el_identity *id = fresh_identity(), *back = NULL;
    char err[256] = "";
    assert_int_equal(el_backup_save_file(t.path, id, "file pass", 0, err, sizeof err), EL_OK);
    assert_int_equal(mode_of(t.path), 0600);

    /* The file is a standard backup: import reads it too. */
    size_t len = 0;
    char *text = el_test_read_file(t.path, &len);
    assert_non_null(text);
    assert_int_equal(import_rc(text, "file pass", err, sizeof err), EL_OK);
    assert_null(strstr(text, "keys"));
    free(text);

    assert_int_equal(el_backup_load_file(t.path, NULL, &back, err, sizeof err), EL_ERR_DENIED);
    assert_non_null(strstr(err, "passphrase is needed"));
    assert_int_equal(el_backup_load_file(t.path, "wrong", &back, err, sizeof err),
                     EL_ERR_CRYPTO);
    assert_string_equal(err, "bad passphrase or corrupted backup");
    assert_null(back);
    assert_int_equal(el_backup_load_file(t.path, "file pass", &back, err, sizeof err), EL_OK);
    assert_same_identity(back, id);
    el_identity_free(back);
    el_identity_free(id);
    tmp_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_negative_vectors),
        cmocka_unit_test(test_import_only_vectors),
        cmocka_unit_test(test_node_backup),
        cmocka_unit_test(test_default_round_trip),
        cmocka_unit_test(test_params_round_trip),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_key_file_plain),
        cmocka_unit_test(test_key_file_permissions),
        cmocka_unit_test(test_key_file_encrypted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
