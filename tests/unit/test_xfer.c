/* test_xfer.c - src/client/xfer: the disk side of file transfers, on real
 * files in a temporary directory. Round trip in chunks of varying sizes with
 * an independent SHA-256, resume (after free, and from a part longer than
 * the file), refused chunks leaving the disk untouched, a hash mismatch that
 * resets the part, collision-free final names, name validation, and a
 * source that changes under the sender. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/enc.h"
#include "base/err.h"
#include "client/xfer.h"
#include "test.h"

#define ID_A "0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- helpers ---------------------------------------------------------- */

typedef struct {
    char dir[64];
    char err[512];
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/el_xfer_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* Deterministic pseudo-random bytes (xorshift64*): reproducible failures. */
static uint8_t *random_bytes(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (uint8_t)((x * 0x2545F4914F6CDD1DULL) >> 56);
    }
    return p;
}

/* SHA-256 by OpenSSL's one-shot API: independent of xfer.c's streaming. */
static void sha_hex(const uint8_t *p, size_t n, char out[EL_XFER_HEX_SIZE])
{
    uint8_t d[32];
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL), 1);
    assert_true(el_hex_encode(d, sizeof d, out, EL_XFER_HEX_SIZE) == 64);
}

static char *path_in(const fixture *f, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", f->dir, name) > 0);
    return p;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void assert_file(const char *path, const void *want, size_t n)
{
    size_t len = 0;
    char *got = el_test_read_file(path, &len);
    if (!got)
        fail_msg("cannot read %s", path);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    free(got);
}

static off_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return st.st_size;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static el_xfer_sink *sink_open(fixture *f, const char *id, const char *name, uint64_t size,
                               const char *sha)
{
    el_xfer_sink *k = NULL;
    int rc = el_xfer_sink_open(f->dir, id, name, size, sha, &k, f->err, sizeof f->err);
    if (rc != EL_OK)
        fail_msg("el_xfer_sink_open(%s): %d %s", name, rc, f->err);
    return k;
}

static void sink_write_ok(fixture *f, el_xfer_sink *k, const uint8_t *data, size_t from,
                          size_t to)
{
    int rc = el_xfer_sink_write(k, from, data + from, to - from, f->err, sizeof f->err);
    if (rc != EL_OK)
        fail_msg("el_xfer_sink_write(%zu..%zu): %d %s", from, to, rc, f->err);
    assert_int_equal(el_xfer_sink_offset(k), to);
}

/* Finishes and checks the result is <dir>/<want_name> holding data[0..n). */
static void finish_as(fixture *f, el_xfer_sink *k, const char *want_name, const uint8_t *data,
                      size_t n)
{
    char *final = NULL;
    char part[256];
    snprintf(part, sizeof part, "%s", el_xfer_sink_part_path(k));
    int rc = el_xfer_sink_finish(k, &final, f->err, sizeof f->err);
    if (rc != EL_OK)
        fail_msg("el_xfer_sink_finish: %d %s", rc, f->err);
    char *want = path_in(f, want_name);
    assert_string_equal(final, want);
    assert_file(final, data, n);
    assert_int_equal(file_size(part), -1);
    free(want);
    free(final);
}

/* A whole transfer of data[0..n) under `name` in one write. */
static void transfer(fixture *f, const char *id, const char *name, const uint8_t *data, size_t n,
                     const char *want_name)
{
    char sha[EL_XFER_HEX_SIZE];
    sha_hex(data, n, sha);
    el_xfer_sink *k = sink_open(f, id, name, n, sha);
    if (n)
        sink_write_ok(f, k, data, 0, n);
    finish_as(f, k, want_name, data, n);
    el_xfer_sink_free(k);
}

/* ---- round trip --------------------------------------------------------- */

static void test_round_trip_chunks(void **state)
{
    fixture *f = *state;
    const size_t n = 3 * 1024 * 1024 + 12345;
    uint8_t *data = random_bytes(n, 42);
    char *src_path = path_in(f, "orig.bin");
    write_file(src_path, data, n);

    char want[EL_XFER_HEX_SIZE], got[EL_XFER_HEX_SIZE], by_path[EL_XFER_HEX_SIZE];
    sha_hex(data, n, want);
    el_xfer_src *src = NULL;
    assert_int_equal(el_xfer_src_open(src_path, &src, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_xfer_src_size(src), n);
    assert_string_equal(el_xfer_src_name(src), "orig.bin");
    assert_int_equal(el_xfer_src_sha256(src, got, f->err, sizeof f->err), EL_OK);
    assert_string_equal(got, want);
    assert_int_equal(el_xfer_sha256_path(src_path, by_path, f->err, sizeof f->err), EL_OK);
    assert_string_equal(by_path, want);

    /* Received under another name, so source and result are distinct files. */
    el_xfer_sink *k = sink_open(f, ID_A, "copy.bin", n, got);
    assert_int_equal(el_xfer_sink_offset(k), 0);
    static const size_t sizes[] = {1, 7, EL_XFER_CHUNK, 4096, EL_XFER_CHUNK - 1, 100000, 3};
    uint8_t *buf = malloc(100000);
    assert_non_null(buf);
    uint64_t off = 0;
    for (size_t i = 0; off < n; i++) {
        size_t cap = sizes[i % (sizeof sizes / sizeof sizes[0])], r = 0;
        assert_int_equal(el_xfer_src_read(src, off, buf, cap, &r, f->err, sizeof f->err), EL_OK);
        assert_true(r == cap || off + r == n);
        assert_false(el_xfer_sink_complete(k));
        assert_int_equal(el_xfer_sink_write(k, off, buf, r, f->err, sizeof f->err), EL_OK);
        off += r;
        assert_int_equal(el_xfer_sink_offset(k), off);
    }
    size_t r = 1;
    assert_int_equal(el_xfer_src_read(src, n, buf, 10, &r, f->err, sizeof f->err), EL_OK);
    assert_int_equal(r, 0);
    assert_int_equal(el_xfer_src_read(src, n + 1, buf, 10, &r, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_true(el_xfer_sink_complete(k));
    finish_as(f, k, "copy.bin", data, n);
    assert_int_equal(el_xfer_sha256_path(f->dir, by_path, f->err, sizeof f->err), EL_ERR_INVALID);

    /* finished: nothing more is accepted */
    char *again = NULL;
    assert_int_equal(el_xfer_sink_finish(k, &again, f->err, sizeof f->err), EL_ERR_STATE);
    assert_null(again);
    assert_int_equal(el_xfer_sink_write(k, n, buf, 1, f->err, sizeof f->err), EL_ERR_STATE);

    el_xfer_sink_free(k);
    el_xfer_src_free(src);
    free(buf);
    free(src_path);
    free(data);
}

static void test_zero_bytes(void **state)
{
    fixture *f = *state;
    el_xfer_sink *k = sink_open(f, ID_A, "empty", 0, SHA_EMPTY);
    assert_true(el_xfer_sink_complete(k));
    assert_int_equal(el_xfer_sink_write(k, 0, "x", 1, f->err, sizeof f->err), EL_ERR_TOO_LARGE);
    finish_as(f, k, "empty", (const uint8_t *)"", 0);
    el_xfer_sink_free(k);

    char *p = path_in(f, "empty");
    char sha[EL_XFER_HEX_SIZE];
    assert_int_equal(el_xfer_sha256_path(p, sha, f->err, sizeof f->err), EL_OK);
    assert_string_equal(sha, SHA_EMPTY);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(el_xfer_hash_fd(fd, sha, f->err, sizeof f->err), EL_OK);
    assert_string_equal(sha, SHA_EMPTY);
    close(fd);
    free(p);
}

/* ---- resume ------------------------------------------------------------- */

static void test_resume_after_free(void **state)
{
    fixture *f = *state;
    const size_t n = 1024 * 1024 + 77, half = n / 2;
    uint8_t *data = random_bytes(n, 7);
    char sha[EL_XFER_HEX_SIZE];
    sha_hex(data, n, sha);

    el_xfer_sink *k = sink_open(f, ID_A, "r.bin", n, sha);
    sink_write_ok(f, k, data, 0, 1000);
    sink_write_ok(f, k, data, 1000, half);
    el_xfer_sink_free(k);   /* as if the process died: the part stays */

    char part[256];
    assert_int_equal(el_xfer_part_path(f->dir, ID_A, part, sizeof part), EL_OK);
    assert_int_equal(file_size(part), half);

    k = sink_open(f, ID_A, "r.bin", n, sha);
    assert_string_equal(el_xfer_sink_part_path(k), part);
    assert_int_equal(el_xfer_sink_offset(k), half);
    assert_int_equal(el_xfer_sink_write(k, 0, data, 10, f->err, sizeof f->err), EL_ERR_INVALID);
    sink_write_ok(f, k, data, half, n);
    /* The hash covers the re-read prefix: a wrong running hash would fail here. */
    finish_as(f, k, "r.bin", data, n);
    el_xfer_sink_free(k);
    free(data);
}

static void test_resume_part_longer_than_size(void **state)
{
    fixture *f = *state;
    const size_t n = 300000;
    uint8_t *data = random_bytes(n + 5000, 9);
    char sha[EL_XFER_HEX_SIZE], part[256];
    sha_hex(data, n, sha);
    assert_int_equal(el_xfer_part_path(f->dir, ID_B, part, sizeof part), EL_OK);
    write_file(part, data, n + 5000);

    el_xfer_sink *k = sink_open(f, ID_B, "long.bin", n, sha);
    assert_int_equal(file_size(part), n);
    assert_int_equal(el_xfer_sink_offset(k), n);
    assert_true(el_xfer_sink_complete(k));
    finish_as(f, k, "long.bin", data, n);
    el_xfer_sink_free(k);
    free(data);
}

static void test_part_mode_and_lock(void **state)
{
    fixture *f = *state;
    mode_t old = umask(0);
    el_xfer_sink *k = sink_open(f, ID_A, "m.txt", 4, SHA_EMPTY);
    umask(old);
    struct stat st;
    assert_int_equal(stat(el_xfer_sink_part_path(k), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* the same transfer opened twice would interleave writes */
    el_xfer_sink *k2 = NULL;
    assert_int_equal(el_xfer_sink_open(f->dir, ID_A, "m.txt", 4, SHA_EMPTY, &k2, f->err,
                                       sizeof f->err),
                     EL_ERR_STATE);
    assert_null(k2);
    assert_non_null(strstr(f->err, "already open"));
    el_xfer_sink_free(k);

    /* a loose mode left by someone else is tightened on resume */
    char part[256];
    assert_int_equal(el_xfer_part_path(f->dir, ID_A, part, sizeof part), EL_OK);
    assert_int_equal(chmod(part, 0644), 0);
    k = sink_open(f, ID_A, "m.txt", 4, SHA_EMPTY);
    assert_int_equal(stat(part, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    el_xfer_sink_free(k);
}

/* ---- refused chunks ----------------------------------------------------- */

static void test_wrong_offset_refused(void **state)
{
    fixture *f = *state;
    uint8_t *data = random_bytes(100, 3);
    char sha[EL_XFER_HEX_SIZE];
    sha_hex(data, 100, sha);
    el_xfer_sink *k = sink_open(f, ID_A, "o.bin", 100, sha);
    const char *part = el_xfer_sink_part_path(k);

    assert_int_equal(el_xfer_sink_write(k, 1, data + 1, 10, f->err, sizeof f->err), EL_ERR_INVALID);
    assert_string_equal(f->err, "expected offset 0, got 1");
    assert_int_equal(file_size(part), 0);
    assert_int_equal(el_xfer_sink_offset(k), 0);

    sink_write_ok(f, k, data, 0, 40);
    /* a duplicate (replayed) chunk and a gap are both refused */
    assert_int_equal(el_xfer_sink_write(k, 0, data, 40, f->err, sizeof f->err), EL_ERR_INVALID);
    assert_string_equal(f->err, "expected offset 40, got 0");
    assert_int_equal(el_xfer_sink_write(k, 50, data + 50, 10, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(file_size(part), 40);
    assert_int_equal(el_xfer_sink_offset(k), 40);
    assert_int_equal(el_xfer_sink_write(k, 40, data, 0, f->err, sizeof f->err), EL_ERR_INVALID);

    sink_write_ok(f, k, data, 40, 100);
    finish_as(f, k, "o.bin", data, 100);
    el_xfer_sink_free(k);
    free(data);
}

static void test_over_size_refused(void **state)
{
    fixture *f = *state;
    uint8_t *data = random_bytes(20, 4);
    char sha[EL_XFER_HEX_SIZE];
    sha_hex(data, 10, sha);
    el_xfer_sink *k = sink_open(f, ID_A, "s.bin", 10, sha);
    const char *part = el_xfer_sink_part_path(k);

    assert_int_equal(el_xfer_sink_write(k, 0, data, 11, f->err, sizeof f->err), EL_ERR_TOO_LARGE);
    assert_int_equal(file_size(part), 0);
    sink_write_ok(f, k, data, 0, 6);
    assert_int_equal(el_xfer_sink_write(k, 6, data + 6, 5, f->err, sizeof f->err), EL_ERR_TOO_LARGE);
    assert_int_equal(file_size(part), 6);
    char *final = NULL;
    assert_int_equal(el_xfer_sink_finish(k, &final, f->err, sizeof f->err), EL_ERR_STATE);
    assert_null(final);
    sink_write_ok(f, k, data, 6, 10);
    assert_int_equal(el_xfer_sink_write(k, 10, data + 10, 1, f->err, sizeof f->err),
                     EL_ERR_TOO_LARGE);
    finish_as(f, k, "s.bin", data, 10);
    el_xfer_sink_free(k);
    free(data);
}

static void test_hash_mismatch_resets(void **state)
{
    fixture *f = *state;
    const size_t n = 200000;
    uint8_t *good = random_bytes(n, 5);
    uint8_t *bad = malloc(n);
    assert_non_null(bad);
    memcpy(bad, good, n);
    bad[n / 2] ^= 1;
    char sha[EL_XFER_HEX_SIZE];
    sha_hex(good, n, sha);

    el_xfer_sink *k = sink_open(f, ID_A, "h.bin", n, sha);
    sink_write_ok(f, k, bad, 0, n);
    char *final = NULL;
    assert_int_equal(el_xfer_sink_finish(k, &final, f->err, sizeof f->err), EL_ERR_CRYPTO);
    assert_null(final);
    assert_non_null(strstr(f->err, "SHA-256 mismatch"));
    assert_int_equal(file_size(el_xfer_sink_part_path(k)), 0);
    assert_int_equal(el_xfer_sink_offset(k), 0);
    assert_false(el_xfer_sink_complete(k));
    char *h = path_in(f, "h.bin");
    assert_int_equal(file_size(h), -1);   /* nothing published */

    /* the retry starts from 0 with a fresh hash and succeeds */
    sink_write_ok(f, k, good, 0, n);
    finish_as(f, k, "h.bin", good, n);
    el_xfer_sink_free(k);
    free(h);
    free(bad);
    free(good);
}

/* ---- names -------------------------------------------------------------- */

static void test_collision_names(void **state)
{
    fixture *f = *state;
    char *a = path_in(f, "a.txt"), *b = path_in(f, "a");
    write_file(a, "old", 3);
    write_file(b, "OLD", 3);
    transfer(f, ID_A, "a.txt", (const uint8_t *)"new1", 4, "a (1).txt");
    transfer(f, ID_B, "a.txt", (const uint8_t *)"new2", 4, "a (2).txt");
    transfer(f, ID_A, "a", (const uint8_t *)"n", 1, "a (1)");
    transfer(f, ID_A, "a.tar.gz", (const uint8_t *)"z", 1, "a.tar.gz");
    transfer(f, ID_A, "a.tar.gz", (const uint8_t *)"z", 1, "a.tar (1).gz");
    assert_file(a, "old", 3);
    assert_file(b, "OLD", 3);

    /* 255 bytes with the extension kept: the copy shortens the stem */
    char name[256], want[256];
    memset(name, 'x', 251);
    strcpy(name + 251, ".txt");
    transfer(f, ID_A, name, (const uint8_t *)"1", 1, name);
    memset(want, 'x', 247);
    strcpy(want + 247, " (1).txt");
    assert_int_equal(strlen(want), 255);
    transfer(f, ID_B, name, (const uint8_t *)"2", 1, want);
    free(a);
    free(b);
}

static void test_bad_names_rejected(void **state)
{
    fixture *f = *state;
    char long_name[300];
    memset(long_name, 'y', 256);
    long_name[256] = '\0';
    const char *bad[] = {"../x", "a/b", "a\\b", "", "a\x01" "b", "tab\there", "del\x7f",
                         "c1\xc2\x85x", "bad\xff" "utf8", ".", "..", "/", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        el_xfer_sink *k = NULL;
        int rc = el_xfer_sink_open(f->dir, ID_A, bad[i], 1, SHA_EMPTY, &k, f->err, sizeof f->err);
        if (rc != EL_ERR_INVALID)
            fail_msg("name #%zu accepted (rc %d)", i, rc);
        assert_null(k);
    }
    el_xfer_sink *k = NULL;
    assert_int_equal(el_xfer_sink_open(f->dir, ID_A, NULL, 1, SHA_EMPTY, &k, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    /* the other FILE_META fields */
    assert_int_equal(el_xfer_sink_open(f->dir, "0123", "a", 1, SHA_EMPTY, &k, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_xfer_sink_open(f->dir, "0123456789ABCDEF0123456789ABCDEF", "a", 1,
                                       SHA_EMPTY, &k, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_xfer_sink_open(f->dir, ID_A, "a", 1, "abc", &k, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_xfer_sink_open(f->dir, ID_A, "a", EL_XFER_SIZE_MAX + 1, SHA_EMPTY, &k,
                                       f->err, sizeof f->err),
                     EL_ERR_INVALID);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope", f->dir);
    assert_int_equal(el_xfer_sink_open(missing, ID_A, "a", 1, SHA_EMPTY, &k, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_non_null(strstr(f->err, missing));
    assert_int_equal(count_entries(f->dir), 0);   /* nothing was created */

    /* 255 bytes is the limit, not over it */
    long_name[255] = '\0';
    transfer(f, ID_A, long_name, (const uint8_t *)"", 0, long_name);
}

static void test_leading_dot_and_bidi(void **state)
{
    fixture *f = *state;
    transfer(f, ID_A, ".bashrc", (const uint8_t *)"x", 1, "_.bashrc");
    transfer(f, ID_A, "..hidden", (const uint8_t *)"x", 1, "_..hidden");
    /* U+202E would show "abc\u202Etxt.exe" as "abcexe.txt" */
    transfer(f, ID_A, "abc\xe2\x80\xaetxt.exe", (const uint8_t *)"x", 1, "abc_txt.exe");
    transfer(f, ID_A, "caf\xc3\xa9.txt", (const uint8_t *)"x", 1, "caf\xc3\xa9.txt");
    /* 255 bytes after a leading dot: the '_' still fits, the stem gives way */
    char name[256], want[256];
    name[0] = '.';
    memset(name + 1, 'd', 250);
    strcpy(name + 251, ".txt");
    want[0] = '_';
    want[1] = '.';
    memset(want + 2, 'd', 249);
    strcpy(want + 251, ".txt");
    transfer(f, ID_A, name, (const uint8_t *)"x", 1, want);
}

static void test_discard(void **state)
{
    fixture *f = *state;
    el_xfer_sink *k = sink_open(f, ID_A, "d.bin", 10, SHA_EMPTY);
    assert_int_equal(el_xfer_sink_write(k, 0, "abc", 3, f->err, sizeof f->err), EL_OK);
    char part[256];
    snprintf(part, sizeof part, "%s", el_xfer_sink_part_path(k));
    assert_int_equal(file_size(part), 3);
    assert_int_equal(el_xfer_sink_discard(k, f->err, sizeof f->err), EL_OK);
    assert_int_equal(file_size(part), -1);
    assert_int_equal(el_xfer_sink_write(k, 3, "d", 1, f->err, sizeof f->err), EL_ERR_STATE);
    el_xfer_sink_free(k);
    assert_int_equal(count_entries(f->dir), 0);

    /* without an open sink (after a restart) */
    write_file(part, "zz", 2);
    assert_int_equal(el_xfer_part_remove(f->dir, ID_A, f->err, sizeof f->err), EL_OK);
    assert_int_equal(file_size(part), -1);
    assert_int_equal(el_xfer_part_remove(f->dir, ID_A, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_xfer_part_remove(f->dir, "../etc", f->err, sizeof f->err), EL_ERR_INVALID);
    char small[8];
    assert_int_equal(el_xfer_part_path(f->dir, ID_A, small, sizeof small), EL_ERR_TOO_LARGE);
}

/* ---- source ------------------------------------------------------------- */

static void test_src_changed_after_open(void **state)
{
    fixture *f = *state;
    uint8_t *data = random_bytes(70000, 11);
    char *p = path_in(f, "c.bin");
    write_file(p, data, 70000);
    el_xfer_src *src = NULL;
    uint8_t buf[1000];
    size_t n = 0;

    /* grows */
    assert_int_equal(el_xfer_src_open(p, &src, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_xfer_src_read(src, 0, buf, sizeof buf, &n, f->err, sizeof f->err), EL_OK);
    assert_int_equal(n, sizeof buf);
    FILE *fp = fopen(p, "ab");
    assert_non_null(fp);
    fputc('!', fp);
    fclose(fp);
    assert_int_equal(el_xfer_src_read(src, 1000, buf, sizeof buf, &n, f->err, sizeof f->err),
                     EL_ERR_STATE);
    assert_int_equal(n, 0);
    assert_non_null(strstr(f->err, "changed"));
    char sha[EL_XFER_HEX_SIZE];
    assert_int_equal(el_xfer_src_sha256(src, sha, f->err, sizeof f->err), EL_ERR_STATE);
    el_xfer_src_free(src);

    /* same size, new content: seen through the mtime (set explicitly so the
     * test does not depend on the clock ticking between two writes) */
    assert_int_equal(el_xfer_src_open(p, &src, f->err, sizeof f->err), EL_OK);
    el_xfer_stamp st;
    el_xfer_src_stamp(src, &st);
    assert_int_equal(st.size, 70001);
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 5), 1);
    struct timespec ts[2] = {{.tv_sec = 0, .tv_nsec = UTIME_OMIT},
                             {.tv_sec = st.mtime_sec - 100, .tv_nsec = 0}};
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
    assert_int_equal(el_xfer_src_read(src, 0, buf, sizeof buf, &n, f->err, sizeof f->err),
                     EL_ERR_STATE);
    el_xfer_src_free(src);

    /* shrinks */
    assert_int_equal(el_xfer_src_open(p, &src, f->err, sizeof f->err), EL_OK);
    assert_int_equal(truncate(p, 10), 0);
    assert_int_equal(el_xfer_src_read(src, 0, buf, sizeof buf, &n, f->err, sizeof f->err),
                     EL_ERR_STATE);
    el_xfer_src_free(src);
    free(p);
    free(data);
}

static int abort_at_first(uint64_t done, uint64_t total, void *user)
{
    *(int *)user += 1;
    return 1;
}

static void test_src_refused_and_named(void **state)
{
    fixture *f = *state;
    el_xfer_src *src = NULL;
    assert_int_equal(el_xfer_src_open(f->dir, &src, f->err, sizeof f->err), EL_ERR_INVALID);
    assert_null(src);
    assert_non_null(strstr(f->err, "not a regular file"));
    assert_non_null(strstr(f->err, f->dir));

    char *fifo = path_in(f, "pipe");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(el_xfer_src_open(fifo, &src, f->err, sizeof f->err), EL_ERR_INVALID);
    assert_int_equal(el_xfer_src_open("/dev/null", &src, f->err, sizeof f->err), EL_ERR_INVALID);

    char *missing = path_in(f, "missing");
    assert_int_equal(el_xfer_src_open(missing, &src, f->err, sizeof f->err), EL_ERR_NOT_FOUND);
    assert_non_null(strstr(f->err, missing));
    assert_non_null(strstr(f->err, strerror(ENOENT)));

    /* a local name that FILE_META could not carry is made valid */
    char *odd = path_in(f, "a\\b\x01" "c\xff.txt");
    write_file(odd, "hello", 5);
    assert_int_equal(el_xfer_src_open(odd, &src, f->err, sizeof f->err), EL_OK);
    assert_string_equal(el_xfer_src_name(src), "a_b_c_.txt");
    int calls = 0;
    char sha[EL_XFER_HEX_SIZE];
    assert_int_equal(el_xfer_src_sha256_progress(src, sha, abort_at_first, &calls, f->err,
                                                 sizeof f->err),
                     EL_ERR_STATE);
    assert_int_equal(calls, 1);
    el_xfer_src_free(src);
    el_xfer_src_free(NULL);
    el_xfer_sink_free(NULL);
    free(odd);
    free(missing);
    free(fifo);
}

static void test_guess_mime(void **state)
{
    assert_string_equal(el_xfer_guess_mime("a.txt"), "text/plain");
    assert_string_equal(el_xfer_guess_mime("photo.JPG"), "image/jpeg");
    assert_string_equal(el_xfer_guess_mime("x.jpeg"), "image/jpeg");
    assert_string_equal(el_xfer_guess_mime("voice.opus"), "audio/ogg");
    assert_string_equal(el_xfer_guess_mime("a.tar.gz"), "application/gzip");
    assert_string_equal(el_xfer_guess_mime("clip.webm"), "video/webm");
    assert_string_equal(el_xfer_guess_mime("data.csv"), "text/csv");
    assert_string_equal(el_xfer_guess_mime("README"), "application/octet-stream");
    assert_string_equal(el_xfer_guess_mime(".png"), "application/octet-stream");
    assert_string_equal(el_xfer_guess_mime("a.exe"), "application/octet-stream");
    assert_string_equal(el_xfer_guess_mime(NULL), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_part_longer_than_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_mode_and_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_offset_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_size_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_mismatch_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collision_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leading_dot_and_bidi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_src_changed_after_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_src_refused_and_named, setup, teardown),
        cmocka_unit_test(test_guess_mime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
