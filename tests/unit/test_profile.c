/* test_profile.c - src/client/profile: where profiles live (ECHOLINK_HOME,
 * XDG_DATA_HOME, HOME), name rules, creation and the directory mode check,
 * the owner lock (two handles, another process, a crashed owner's stale
 * pid), identity create/load/no-overwrite, passphrase export/import and the
 * settings file. Every test runs in its own temporary ECHOLINK_HOME. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#include "base/err.h"
#include "client/profile.h"
#include "crypto/identity.h"

/* ---- helpers -------------------------------------------------------------- */

typedef struct {
    char home[64]; /* ECHOLINK_HOME for this test */
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_rf(const char *dir)
{
    /* a test may have made something unreadable: give it back first */
    chmod(dir, 0700);
    assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->home, sizeof f->home, "/tmp/el_profile_XXXXXX");
    if (!mkdtemp(f->home))
        return -1;
    setenv("ECHOLINK_HOME", f->home, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unsetenv("ECHOLINK_HOME");
    rm_rf(f->home);
    free(f);
    return 0;
}

static el_profile *open_ok(const char *name, unsigned flags)
{
    el_profile *p = NULL;
    char err[512] = "";
    int rc = el_profile_open(name, flags, &p, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("el_profile_open(%s): %d %s", name, rc, err);
    return p;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static char *slurp(const char *path)
{
    size_t len = 0;
    char *s = el_test_read_file(path, &len);
    if (!s)
        fail_msg("cannot read %s", path);
    return s;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* ---- where ------------------------------------------------------------------ */

static void expect_dir(const char *name, const char *want)
{
    char out[512], err[256] = "";
    int rc = el_profile_dir(name, out, sizeof out, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("el_profile_dir(%s): %s", name, err);
    assert_string_equal(out, want);
}

static void test_dir_resolution(void **state)
{
    char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char *saved_xdg = getenv("XDG_DATA_HOME") ? strdup(getenv("XDG_DATA_HOME")) : NULL;
    char out[512], err[256];

    setenv("ECHOLINK_HOME", "/e/home/", 1);
    setenv("XDG_DATA_HOME", "/x/data", 1);
    setenv("HOME", "/h/user", 1);
    expect_dir("default", "/e/home/default"); /* ECHOLINK_HOME wins */
    expect_dir("work", "/e/home/work");

    setenv("ECHOLINK_HOME", "", 1); /* empty is unset */
    expect_dir("default", "/x/data/echolink/default");

    unsetenv("ECHOLINK_HOME");
    expect_dir("bob", "/x/data/echolink/bob");

    setenv("XDG_DATA_HOME", "relative/data", 1); /* not absolute: ignored (XDG spec) */
    expect_dir("bob", "/h/user/.local/share/echolink/bob");
    unsetenv("XDG_DATA_HOME");
    expect_dir("default", "/h/user/.local/share/echolink/default");

    unsetenv("HOME");
    assert_int_equal(el_profile_dir("default", out, sizeof out, err, sizeof err),
                     EL_ERR_INVALID);
    assert_contains(err, "HOME");

    /* too small an output buffer is an error, never a truncated path */
    setenv("HOME", "/h/user", 1);
    char tiny[8];
    assert_int_equal(el_profile_dir("default", tiny, sizeof tiny, err, sizeof err),
                     EL_ERR_INVALID);
    assert_string_equal(tiny, "");

    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    if (saved_xdg)
        setenv("XDG_DATA_HOME", saved_xdg, 1);
    free(saved_home);
    free(saved_xdg);
    fixture *f = *state;
    setenv("ECHOLINK_HOME", f->home, 1);
}

static void test_names(void **state)
{
    char err[256];
    char longest[EL_PROFILE_NAME_MAX + 2];
    memset(longest, 'a', EL_PROFILE_NAME_MAX);
    longest[EL_PROFILE_NAME_MAX] = '\0';
    const char *good[] = {"default", "a", "A.b_c-1", "work.2", "x..y", longest};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        err[0] = '\0';
        if (el_profile_valid_name(good[i], err, sizeof err) != EL_OK)
            fail_msg("\"%s\" refused: %s", good[i], err);
    }
    longest[EL_PROFILE_NAME_MAX] = 'a';
    longest[EL_PROFILE_NAME_MAX + 1] = '\0';
    const char *bad[] = {"", ".", "..", ".hidden", "a/b", "../x", "a b", "tab\t",
                         "caf\xc3\xa9", "semi;colon", longest};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        if (el_profile_valid_name(bad[i], err, sizeof err) != EL_ERR_INVALID)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_contains(err, "1 to 64 characters of A-Z a-z 0-9 . _ -");
    }
    assert_int_equal(el_profile_valid_name(NULL, err, sizeof err), EL_ERR_INVALID);

    /* the rule is enforced where it matters: nothing is created */
    el_profile *p = (el_profile *)1;
    assert_int_equal(el_profile_open("../escape", EL_PROFILE_CREATE, &p, err, sizeof err),
                     EL_ERR_INVALID);
    assert_null(p);
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/../escape", f->home);
    assert_int_equal(access(path, F_OK), -1);
}

/* ---- open / create -------------------------------------------------------------- */

static void test_create_open(void **state)
{
    fixture *f = *state;
    char nested[128], err[512] = "", want[256];
    el_profile *p = (el_profile *)1;

    /* parents are created too, each 0700 */
    snprintf(nested, sizeof nested, "%s/a/b", f->home);
    setenv("ECHOLINK_HOME", nested, 1);

    assert_int_equal(el_profile_open("alice", 0, &p, err, sizeof err), EL_ERR_NOT_FOUND);
    assert_null(p);
    assert_contains(err, "no profile alice: run `echolink init`");

    mode_t old = umask(022);
    p = open_ok("alice", EL_PROFILE_CREATE);
    umask(old);
    snprintf(want, sizeof want, "%s/alice", nested);
    assert_string_equal(el_profile_path(p), want);
    assert_string_equal(el_profile_name(p), "alice");
    assert_int_equal(mode_of(want), 0700);
    assert_int_equal(mode_of(nested), 0700);

    struct {
        const char *(*get)(const el_profile *);
        const char *file;
    } paths[] = {
        {el_profile_identity_path, "identity.key"}, {el_profile_history_path, "history.db"},
        {el_profile_trust_path, "trust.db"},        {el_profile_files_path, "files"},
        {el_profile_control_path, "control.sock"},  {el_profile_lock_path, "lock"},
        {el_profile_settings_path, "profile.json"},
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        snprintf(want, sizeof want, "%s/alice/%s", nested, paths[i].file);
        assert_string_equal(paths[i].get(p), want);
    }
    struct stat st;
    assert_int_equal(stat(el_profile_files_path(p), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mode_of(el_profile_files_path(p)), 0700);
    el_profile_close(p);

    /* an existing profile opens without CREATE; CREATE on it changes nothing */
    p = open_ok("alice", 0);
    el_profile_close(p);
    p = open_ok("alice", EL_PROFILE_CREATE);
    el_profile_close(p);
    el_profile_close(NULL);

    /* a file where the directory should be */
    snprintf(want, sizeof want, "%s/plain", nested);
    write_text(want, "x", 0600);
    assert_int_equal(el_profile_open("plain", 0, &p, err, sizeof err), EL_ERR_INVALID);
    assert_contains(err, "not a directory");

    setenv("ECHOLINK_HOME", f->home, 1);
}

static void test_dir_mode(void **state)
{
    char err[512] = "";
    el_profile *p = open_ok("bob", EL_PROFILE_CREATE);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", el_profile_path(p));
    el_profile_close(p);

    const mode_t open_modes[] = {0750, 0705, 0755, 0710, 0777};
    for (size_t i = 0; i < sizeof open_modes / sizeof *open_modes; i++) {
        assert_int_equal(chmod(dir, open_modes[i]), 0);
        p = (el_profile *)1;
        assert_int_equal(el_profile_open("bob", 0, &p, err, sizeof err), EL_ERR_DENIED);
        assert_null(p);
        assert_contains(err, "accessible by other users");
        assert_contains(err, "chmod 700");
        /* CREATE does not quietly fix (or accept) a directory it did not make */
        assert_int_equal(el_profile_open("bob", EL_PROFILE_CREATE, &p, err, sizeof err),
                         EL_ERR_DENIED);
    }
    assert_int_equal(chmod(dir, 0700), 0);
    p = open_ok("bob", 0);
    el_profile_close(p);
}

/* ---- lock ------------------------------------------------------------------------ */

static void test_lock_two_handles(void **state)
{
    char err[512] = "", want[128];
    el_profile *p1 = open_ok("carol", EL_PROFILE_CREATE);
    el_profile *p2 = open_ok("carol", 0);

    assert_int_equal(el_profile_lock_holder(p1), 0);
    assert_false(el_profile_locked(p1));
    assert_int_equal(el_profile_lock(p1, err, sizeof err), EL_OK);
    assert_true(el_profile_locked(p1));
    assert_int_equal(el_profile_lock(p1, err, sizeof err), EL_OK); /* again: still ours */
    assert_int_equal(mode_of(el_profile_lock_path(p1)), 0600);

    char *text = slurp(el_profile_lock_path(p1));
    snprintf(want, sizeof want, "%ld\n", (long)getpid());
    assert_string_equal(text, want);
    free(text);

    /* flock belongs to the open file description: a second handle in the
     * same process is refused like another process would be */
    assert_int_equal(el_profile_lock(p2, err, sizeof err), EL_ERR_STATE);
    assert_false(el_profile_locked(p2));
    snprintf(want, sizeof want, "profile carol is in use by process %ld (echolink chat/listen)",
             (long)getpid());
    assert_contains(err, want);
    assert_int_equal(el_profile_lock_holder(p2), getpid());
    assert_int_equal(el_profile_lock_holder(p1), getpid());

    /* closing the owner lets the other one in */
    el_profile_close(p1);
    assert_int_equal(el_profile_lock_holder(p2), 0);
    assert_int_equal(el_profile_lock(p2, err, sizeof err), EL_OK);

    /* unlock without close works the same */
    el_profile_unlock(p2);
    assert_false(el_profile_locked(p2));
    p1 = open_ok("carol", 0);
    assert_int_equal(el_profile_lock(p1, err, sizeof err), EL_OK);
    el_profile_close(p1);
    el_profile_close(p2);
}

static void test_lock_stale_pid(void **state)
{
    char err[512] = "", want[64];
    el_profile *p = open_ok("dave", EL_PROFILE_CREATE);
    /* a pid left behind by an owner that crashed: nobody holds the flock */
    write_text(el_profile_lock_path(p), "999999\n", 0600);
    assert_int_equal(el_profile_lock_holder(p), 0);
    assert_int_equal(el_profile_lock(p, err, sizeof err), EL_OK);
    char *text = slurp(el_profile_lock_path(p));
    snprintf(want, sizeof want, "%ld\n", (long)getpid());
    assert_string_equal(text, want);
    free(text);
    el_profile_close(p);
    /* a released lock leaves no pid that could mislead */
    p = open_ok("dave", 0);
    text = slurp(el_profile_lock_path(p));
    assert_string_equal(text, "");
    free(text);
    el_profile_close(p);
}

/* Another process owns the profile, then dies by SIGKILL (no clean-up). */
static void test_lock_other_process(void **state)
{
    int ready[2], hold[2];
    char err[512] = "", want[128];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    el_profile *p = open_ok("erin", EL_PROFILE_CREATE);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        el_profile *c = NULL;
        char cerr[256];
        char ok = el_profile_open("erin", 0, &c, cerr, sizeof cerr) == EL_OK &&
                          el_profile_lock(c, cerr, sizeof cerr) == EL_OK
                      ? 'y'
                      : 'n';
        if (write(ready[1], &ok, 1) != 1)
            _exit(2);
        char b;
        while (read(hold[0], &b, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    char ok = 0;
    assert_int_equal(read(ready[0], &ok, 1), 1);
    assert_int_equal(ok, 'y');

    assert_int_equal(el_profile_lock_holder(p), child);
    assert_int_equal(el_profile_lock(p, err, sizeof err), EL_ERR_STATE);
    snprintf(want, sizeof want, "profile erin is in use by process %ld", (long)child);
    assert_contains(err, want);

    assert_int_equal(kill(child, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    close(ready[0]);
    close(hold[1]);

    /* the kernel released the flock; the child's pid is still in the file */
    char *text = slurp(el_profile_lock_path(p));
    snprintf(want, sizeof want, "%ld\n", (long)child);
    assert_string_equal(text, want);
    free(text);
    assert_int_equal(el_profile_lock_holder(p), 0);
    assert_int_equal(el_profile_lock(p, err, sizeof err), EL_OK);
    el_profile_close(p);
}

/* ---- identity ---------------------------------------------------------------------- */

static void test_identity(void **state)
{
    char err[512] = "";
    el_identity *id = NULL, *again = NULL;
    el_profile *p = open_ok("frank", EL_PROFILE_CREATE);

    assert_false(el_profile_has_identity(p));
    assert_int_equal(el_profile_load_identity(p, NULL, &id, err, sizeof err), EL_ERR_NOT_FOUND);
    assert_null(id);
    assert_contains(err, "profile frank has no identity: run `echolink init`");

    assert_int_equal(el_profile_create_identity(p, &id, err, sizeof err), EL_OK);
    assert_non_null(id);
    assert_true(el_profile_has_identity(p));
    assert_int_equal(mode_of(el_profile_identity_path(p)), 0600);

    assert_int_equal(el_profile_load_identity(p, NULL, &again, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(again), el_identity_peer_id(id));
    assert_memory_equal(el_identity_bundle(again), el_identity_bundle(id), sizeof(el_id_bundle));
    el_identity_free(again);
    again = NULL;

    /* never overwritten */
    char *before = slurp(el_profile_identity_path(p));
    assert_int_equal(el_profile_create_identity(p, &again, err, sizeof err), EL_ERR_EXISTS);
    assert_null(again);
    assert_contains(err, "profile frank already has an identity");
    assert_int_equal(el_profile_create_identity(p, NULL, err, sizeof err), EL_ERR_EXISTS);
    char *after = slurp(el_profile_identity_path(p));
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* a key file others can read is refused (backup.h's rule, seen through us) */
    assert_int_equal(chmod(el_profile_identity_path(p), 0644), 0);
    assert_int_equal(el_profile_load_identity(p, NULL, &again, err, sizeof err), EL_ERR_DENIED);
    assert_int_equal(chmod(el_profile_identity_path(p), 0600), 0);

    /* create without an out pointer still writes it */
    el_profile *q = open_ok("frank2", EL_PROFILE_CREATE);
    assert_int_equal(el_profile_create_identity(q, NULL, err, sizeof err), EL_OK);
    assert_true(el_profile_has_identity(q));
    el_profile_close(q);

    el_identity_free(id);
    el_profile_close(p);
}

static void test_export_import(void **state)
{
    fixture *f = *state;
    char err[512] = "", backup[256];
    el_identity *id = NULL, *got = NULL;
    snprintf(backup, sizeof backup, "%s/backup.json", f->home);

    el_profile *a = open_ok("gina", EL_PROFILE_CREATE);
    assert_int_equal(el_profile_export(a, backup, "pw", 0, err, sizeof err), EL_ERR_NOT_FOUND);
    assert_int_equal(el_profile_create_identity(a, &id, err, sizeof err), EL_OK);
    assert_int_equal(el_profile_export(a, backup, "", 0, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_profile_export(a, backup, NULL, 0, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(access(backup, F_OK), -1);

    assert_int_equal(el_profile_export(a, backup, "correct horse", 0, err, sizeof err), EL_OK);
    assert_int_equal(mode_of(backup), 0600);
    char *text = slurp(backup);
    assert_contains(text, "\"kdf\":\"scrypt\""); /* encrypted, not the plain key file */
    free(text);
    assert_int_equal(el_profile_export(a, backup, "correct horse", 0, err, sizeof err),
                     EL_ERR_EXISTS);
    assert_int_equal(
        el_profile_export(a, backup, "correct horse", EL_PROFILE_FORCE, err, sizeof err), EL_OK);
    /* a backup copied around may lose its mode: import does not care */
    assert_int_equal(chmod(backup, 0644), 0);

    el_profile *b = open_ok("hank", EL_PROFILE_CREATE);
    assert_int_equal(el_profile_import(b, backup, "wrong horse", 0, &got, err, sizeof err),
                     EL_ERR_CRYPTO);
    assert_null(got);
    assert_false(el_profile_has_identity(b));
    assert_int_equal(el_profile_import(b, backup, "correct horse", 0, &got, err, sizeof err),
                     EL_OK);
    assert_string_equal(el_identity_peer_id(got), el_identity_peer_id(id));
    el_identity_free(got);
    got = NULL;
    assert_int_equal(mode_of(el_profile_identity_path(b)), 0600);
    assert_int_equal(el_profile_load_identity(b, NULL, &got, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(got), el_identity_peer_id(id));
    el_identity_free(got);
    got = NULL;

    /* an existing identity is kept without FORCE, replaced with it */
    el_profile *c = open_ok("ivan", EL_PROFILE_CREATE);
    el_identity *own = NULL;
    assert_int_equal(el_profile_create_identity(c, &own, err, sizeof err), EL_OK);
    assert_int_equal(el_profile_import(c, backup, "correct horse", 0, NULL, err, sizeof err),
                     EL_ERR_EXISTS);
    assert_contains(err, "already has an identity");
    assert_int_equal(el_profile_load_identity(c, NULL, &got, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(got), el_identity_peer_id(own));
    el_identity_free(got);
    got = NULL;
    assert_int_equal(
        el_profile_import(c, backup, "correct horse", EL_PROFILE_FORCE, NULL, err, sizeof err),
        EL_OK);
    assert_int_equal(el_profile_load_identity(c, NULL, &got, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(got), el_identity_peer_id(id));
    el_identity_free(got);
    el_identity_free(own);

    /* not a backup at all, and a missing file */
    char junk[256];
    snprintf(junk, sizeof junk, "%s/junk.json", f->home);
    write_text(junk, "{\"hello\":1}", 0600);
    el_profile *d = open_ok("jill", EL_PROFILE_CREATE);
    assert_int_equal(el_profile_import(d, junk, "pw", 0, NULL, err, sizeof err), EL_ERR_INVALID);
    snprintf(junk, sizeof junk, "%s/missing.json", f->home);
    assert_int_equal(el_profile_import(d, junk, "pw", 0, NULL, err, sizeof err),
                     EL_ERR_NOT_FOUND);
    assert_false(el_profile_has_identity(d));

    el_identity_free(id);
    el_profile_close(a);
    el_profile_close(b);
    el_profile_close(c);
    el_profile_close(d);
}

/* ---- settings ------------------------------------------------------------------------ */

static void test_settings(void **state)
{
    char err[512] = "";
    el_profile *p = open_ok("kim", EL_PROFILE_CREATE);
    assert_null(el_profile_display_name(p));
    assert_int_equal(el_profile_server_count(p), 0);
    assert_null(el_profile_server(p, 0));
    assert_int_equal(access(el_profile_settings_path(p), F_OK), -1); /* nothing written yet */

    assert_int_equal(el_profile_set_display_name(p, "Kim \xe2\x9c\x93", err, sizeof err), EL_OK);
    const char *urls[] = {"wss://one.example/", "https://two.example:8443"};
    assert_int_equal(el_profile_set_servers(p, urls, 2, err, sizeof err), EL_OK);
    assert_int_equal(el_profile_set_setting(p, "theme", json_string("dark"), err, sizeof err),
                     EL_OK);
    assert_int_equal(mode_of(el_profile_settings_path(p)), 0600);
    el_profile_close(p);

    /* round trip through the file */
    p = open_ok("kim", 0);
    assert_string_equal(el_profile_display_name(p), "Kim \xe2\x9c\x93");
    assert_int_equal(el_profile_server_count(p), 2);
    assert_string_equal(el_profile_server(p, 0), urls[0]);
    assert_string_equal(el_profile_server(p, 1), urls[1]);
    assert_null(el_profile_server(p, 2));
    assert_string_equal(json_string_value(el_profile_setting(p, "theme")), "dark");
    assert_null(el_profile_setting(p, "absent"));

    /* refused values leave memory and file as they were */
    char *before = slurp(el_profile_settings_path(p));
    char big[EL_PROFILE_DISPLAY_MAX + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *bad_names[] = {"", big, "tab\there", "bad\xff utf8"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
        assert_int_equal(el_profile_set_display_name(p, bad_names[i], err, sizeof err),
                         EL_ERR_INVALID);
    const char *bad_urls[][1] = {{"ftp://x"}, {"wss://"}, {"wss://a b"}, {"not a url"},
                                 {"wss://caf\xc3\xa9.example"}};
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
        err[0] = '\0';
        assert_int_equal(el_profile_set_servers(p, bad_urls[i], 1, err, sizeof err),
                         EL_ERR_INVALID);
        assert_contains(err, "server URL");
    }
    const char *many[EL_PROFILE_SERVERS_MAX + 1];
    for (size_t i = 0; i < EL_PROFILE_SERVERS_MAX + 1; i++)
        many[i] = "wss://x.example";
    assert_int_equal(el_profile_set_servers(p, many, EL_PROFILE_SERVERS_MAX + 1, err, sizeof err),
                     EL_ERR_INVALID);
    assert_int_equal(el_profile_set_setting(p, "servers", json_string("wss://x"), err, sizeof err),
                     EL_ERR_INVALID);
    assert_int_equal(el_profile_set_setting(p, "name", json_integer(5), err, sizeof err),
                     EL_ERR_INVALID);
    assert_string_equal(el_profile_display_name(p), "Kim \xe2\x9c\x93");
    assert_int_equal(el_profile_server_count(p), 2);
    char *after = slurp(el_profile_settings_path(p));
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* removing members, and an empty server list */
    assert_int_equal(el_profile_set_display_name(p, NULL, err, sizeof err), EL_OK);
    assert_int_equal(el_profile_set_servers(p, NULL, 0, err, sizeof err), EL_OK);
    assert_int_equal(el_profile_set_setting(p, "absent", NULL, err, sizeof err), EL_OK);
    el_profile_close(p);
    p = open_ok("kim", 0);
    assert_null(el_profile_display_name(p));
    assert_int_equal(el_profile_server_count(p), 0);
    assert_string_equal(json_string_value(el_profile_setting(p, "theme")), "dark");

    /* a broken or tampered settings file stops the open with its path named */
    char path[256];
    snprintf(path, sizeof path, "%s", el_profile_settings_path(p));
    el_profile_close(p);
    el_profile *q = (el_profile *)1;
    write_text(path, "{\"name\": ", 0600);
    assert_int_equal(el_profile_open("kim", 0, &q, err, sizeof err), EL_ERR_INVALID);
    assert_null(q);
    assert_contains(err, path);
    write_text(path, "[1,2]", 0600);
    assert_int_equal(el_profile_open("kim", 0, &q, err, sizeof err), EL_ERR_INVALID);
    write_text(path, "{\"servers\": [\"gopher://x\"]}", 0600);
    assert_int_equal(el_profile_open("kim", 0, &q, err, sizeof err), EL_ERR_INVALID);
    assert_contains(err, path);
    assert_contains(err, "server URL");
    write_text(path, "{\"name\": \"ok\"}", 0666);
    assert_int_equal(el_profile_open("kim", 0, &q, err, sizeof err), EL_ERR_DENIED);
    assert_contains(err, "chmod 600");
    write_text(path, "{\"name\": \"ok\", \"extra\": {\"kept\": true}}", 0600);
    q = open_ok("kim", 0);
    assert_string_equal(el_profile_display_name(q), "ok");
    /* members this module does not know survive a rewrite */
    assert_int_equal(el_profile_set_display_name(q, "ok2", err, sizeof err), EL_OK);
    el_profile_close(q);
    q = open_ok("kim", 0);
    assert_true(json_is_true(json_object_get(el_profile_setting(q, "extra"), "kept")));
    assert_string_equal(el_profile_display_name(q), "ok2");
    el_profile_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_stale_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
