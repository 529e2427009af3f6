/* test.h - small helpers shared by the cmocka unit tests (tests/unit).
 *
 * Include after <cmocka.h>. Everything here is static inline so that a test
 * that uses only part of it compiles without unused-function warnings. */
#ifndef EL_TEST_H
#define EL_TEST_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Asserts that the span (ptr, len) equals the NUL-terminated string want,
 * printing both on failure (cmocka's assert_memory_equal prints offsets only). */
#define EL_ASSERT_SPAN(ptr, len, want)                                                     \
    do {                                                                                   \
        const char *el_sp_ = (const char *)(ptr);                                          \
        size_t el_sl_ = (size_t)(len);                                                     \
        const char *el_sw_ = (want);                                                       \
        if (el_sl_ != strlen(el_sw_) || (el_sl_ && memcmp(el_sp_, el_sw_, el_sl_) != 0))   \
            fail_msg("span \"%.*s\" (len %zu) != \"%s\" (len %zu)", (int)el_sl_,           \
                     el_sp_ ? el_sp_ : "", el_sl_, el_sw_, strlen(el_sw_));                \
    } while (0)

/* Reads a whole file into a malloc'ed buffer (NUL-terminated for
 * convenience, the NUL not counted in *len). Returns NULL on any error. */
static inline char *el_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Sends stdout to /dev/null until el_test_stdout_restore(saved). Returns the
 * saved descriptor, or -1 (then nothing was redirected). */
static inline int el_test_stdout_silence(void)
{
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0)
        return -1;
    FILE *null = fopen("/dev/null", "w");
    if (!null || dup2(fileno(null), STDOUT_FILENO) < 0) {
        if (null)
            fclose(null);
        close(saved);
        return -1;
    }
    fclose(null);
    return saved;
}

static inline void el_test_stdout_restore(int saved)
{
    if (saved < 0)
        return;
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
}

/* Redirects stdout into a temporary file; el_test_stdout_capture_end()
 * restores stdout and returns what was written (malloc'ed, NUL-terminated). */
typedef struct {
    int saved;
    FILE *tmp;
} el_test_capture;

static inline int el_test_stdout_capture_begin(el_test_capture *c)
{
    fflush(stdout);
    c->tmp = tmpfile();
    if (!c->tmp)
        return -1;
    c->saved = dup(STDOUT_FILENO);
    if (c->saved < 0 || dup2(fileno(c->tmp), STDOUT_FILENO) < 0) {
        if (c->saved >= 0)
            close(c->saved);
        fclose(c->tmp);
        return -1;
    }
    return 0;
}

static inline char *el_test_stdout_capture_end(el_test_capture *c)
{
    fflush(stdout);
    dup2(c->saved, STDOUT_FILENO);
    close(c->saved);
    long n = ftell(c->tmp);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf) {
        rewind(c->tmp);
        size_t r = fread(buf, 1, (size_t)n, c->tmp);
        buf[r] = '\0';
    }
    fclose(c->tmp);
    return buf;
}

/* Runs check() on every file of `dir` (at least min_files), each in an
 * exact-size copy so that ASan catches reads past the input, as under
 * libFuzzer. check returns NULL or what was violated. */
static inline void el_test_run_corpus(const char *dir, const char *(*check)(const uint8_t *, size_t),
                                      size_t min_files)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open corpus %s", dir);
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *buf = el_test_read_file(path, &len);
        if (!buf)
            fail_msg("cannot read %s", path);
        uint8_t *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, buf, len);
        free(buf);
        const char *violation = check(exact, len);
        free(exact);
        if (violation)
            fail_msg("%s: %s", path, violation);
        files++;
    }
    closedir(d);
    if (files < min_files)
        fail_msg("corpus %s has %zu files, expected at least %zu", dir, files, min_files);
}

#endif
