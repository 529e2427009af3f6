/* profile.c - profile directory, owner lock, identity file and settings
 * (see profile.h). */
#include "client/profile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "base/err.h"
#include "base/log.h"
#include "crypto/backup.h"

#define SETTINGS_FILE_MAX (1u << 20) /* a settings file is a few hundred bytes */
#define LOCK_TRIES 10                /* ~100 ms of retries, see el_profile_lock */
#define LOCK_RETRY_NS 10000000L

struct el_profile {
    char *name;
    char *dir;
    char *identity;
    char *history;
    char *trust;
    char *files;
    char *control;
    char *lock;
    char *settings;
    int lock_fd;  /* >= 0 while this handle owns the profile */
    json_t *conf; /* profile.json, always an object */
};

/* ---- names and places ----------------------------------------------------- */

static int name_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

int el_profile_valid_name(const char *name, char *err, size_t errlen)
{
    static const char rule[] =
        "a profile name is 1 to 64 characters of A-Z a-z 0-9 . _ - and does not start with '.'";
    if (!name || !*name)
        return el_seterr(err, errlen, EL_ERR_INVALID, "empty profile name: %s", rule);
    size_t n = strlen(name);
    int ok = n <= EL_PROFILE_NAME_MAX && name[0] != '.';
    for (size_t i = 0; ok && i < n; i++)
        ok = name_char_ok(name[i]);
    if (ok)
        return EL_OK;
    /* echo the name back only in a form that cannot garble the terminal */
    char shown[EL_PROFILE_NAME_MAX + 1];
    size_t k = 0;
    for (; k < n && k < EL_PROFILE_NAME_MAX; k++)
        shown[k] = (name[k] > 0x20 && name[k] < 0x7f) ? name[k] : '?';
    shown[k] = '\0';
    return el_seterr(err, errlen, EL_ERR_INVALID, "bad profile name \"%s%s\": %s", shown,
                     n > EL_PROFILE_NAME_MAX ? "..." : "", rule);
}

/* The directory that holds all profiles, from the environment. */
static int base_dir(char *out, size_t outlen, char *err, size_t errlen)
{
    const char *v = getenv("ECHOLINK_HOME");
    int n;
    if (v && *v) {
        n = snprintf(out, outlen, "%s", v);
    } else {
        v = getenv("XDG_DATA_HOME");
        if (v && v[0] == '/') {
            n = snprintf(out, outlen, "%s/echolink", v);
        } else {
            v = getenv("HOME");
            if (!v || !*v)
                return el_seterr(err, errlen, EL_ERR_INVALID,
                                 "cannot place profiles: set HOME, XDG_DATA_HOME or ECHOLINK_HOME");
            n = snprintf(out, outlen, "%s/.local/share/echolink", v);
        }
    }
    if (n < 0 || (size_t)n >= outlen)
        return el_seterr(err, errlen, EL_ERR_INVALID, "profile directory path too long");
    /* "a/" and "a" are the same directory; keep paths tidy in messages */
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return EL_OK;
}

int el_profile_dir(const char *name, char *out, size_t outlen, char *err, size_t errlen)
{
    char base[PATH_MAX];
    if (!out || outlen == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_dir: no output buffer");
    out[0] = '\0';
    int rc = el_profile_valid_name(name, err, errlen);
    if (rc)
        return rc;
    rc = base_dir(base, sizeof base, err, errlen);
    if (rc)
        return rc;
    int n = snprintf(out, outlen, "%s/%s", base, name);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return el_seterr(err, errlen, EL_ERR_INVALID, "profile directory path too long");
    }
    return EL_OK;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return el_seterr(err, errlen, EL_ERR_INVALID, "profile directory path too long");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return el_seterr(err, errlen, errno == EACCES ? EL_ERR_DENIED : EL_ERR_IO,
                             "cannot create directory %s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    return EL_OK;
}

/* The profile directory must be ours and closed to everyone else: it holds
 * the identity key, and whoever can write it can swap trust pins. */
static int check_dir(const char *name, const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return el_seterr(err, errlen, EL_ERR_NOT_FOUND,
                             "no profile %s: run `echolink init` (looked in %s)", name, dir);
        return el_seterr(err, errlen, EL_ERR_IO, "cannot open profile directory %s: %s", dir,
                         strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return el_seterr(err, errlen, EL_ERR_INVALID, "profile path %s is not a directory", dir);
    if (st.st_uid != geteuid())
        return el_seterr(err, errlen, EL_ERR_DENIED,
                         "profile directory %s belongs to another user (uid %ld)", dir,
                         (long)st.st_uid);
    if (st.st_mode & 077)
        return el_seterr(err, errlen, EL_ERR_DENIED,
                         "profile directory %s is accessible by other users (mode %04o); "
                         "fix it with: chmod 700 %s",
                         dir, (unsigned)(st.st_mode & 07777), dir);
    return EL_OK;
}

static int ensure_subdir(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return el_seterr(err, errlen, EL_ERR_IO, "cannot create directory %s: %s", path,
                         strerror(errno));
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return el_seterr(err, errlen, EL_ERR_IO, "%s is not a directory", path);
    return EL_OK;
}

static char *join(const char *dir, const char *file)
{
    return g_strconcat(dir, "/", file, NULL);
}

/* ---- settings ------------------------------------------------------------- */

static int check_display_name(json_t *v, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    size_t n = s ? json_string_length(v) : 0;
    if (!s || n == 0 || n > EL_PROFILE_DISPLAY_MAX || strlen(s) != n)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "a display name is 1 to %d bytes of text", EL_PROFILE_DISPLAY_MAX);
    if (!g_utf8_validate(s, (gssize)n, NULL))
        return el_seterr(err, errlen, EL_ERR_INVALID, "a display name must be UTF-8");
    for (const char *c = s; *c; c = g_utf8_next_char(c)) {
        if (g_unichar_iscntrl(g_utf8_get_char(c)))
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "a display name cannot contain control characters");
    }
    return EL_OK;
}

static int check_url(const char *u, char *err, size_t errlen)
{
    static const char *const schemes[] = {"ws://", "wss://", "http://", "https://"};
    size_t n = strlen(u), plen = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(schemes) && !plen; i++) {
        if (g_ascii_strncasecmp(u, schemes[i], strlen(schemes[i])) == 0)
            plen = strlen(schemes[i]);
    }
    if (!plen || n == plen || n > EL_PROFILE_URL_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "bad server URL \"%.80s\": use ws://, wss://, http:// or https:// "
                         "and a host (at most %d bytes)",
                         u, EL_PROFILE_URL_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f)
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "bad server URL: printable ASCII only (no spaces; write an "
                             "international host name in its xn-- form)");
    }
    return EL_OK;
}

static int check_servers(json_t *v, char *err, size_t errlen)
{
    if (!json_is_array(v))
        return el_seterr(err, errlen, EL_ERR_INVALID, "\"servers\" must be a list of URLs");
    if (json_array_size(v) > EL_PROFILE_SERVERS_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "at most %d servers",
                         EL_PROFILE_SERVERS_MAX);
    size_t i;
    json_t *u;
    json_array_foreach(v, i, u)
    {
        const char *s = json_string_value(u);
        if (!s || strlen(s) != json_string_length(u))
            return el_seterr(err, errlen, EL_ERR_INVALID, "\"servers\" must be a list of URLs");
        int rc = check_url(s, err, errlen);
        if (rc)
            return rc;
    }
    return EL_OK;
}

/* The members this module gives a meaning to; NULL values mean "absent". */
static int check_member(const char *key, json_t *v, char *err, size_t errlen)
{
    if (!v)
        return EL_OK;
    if (strcmp(key, "name") == 0)
        return check_display_name(v, err, errlen);
    if (strcmp(key, "servers") == 0)
        return check_servers(v, err, errlen);
    return EL_OK;
}

static int check_settings(json_t *conf, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(conf, key, v)
    {
        int rc = check_member(key, v, err, errlen);
        if (rc)
            return rc;
    }
    return EL_OK;
}

static int load_settings(el_profile *p, char *err, size_t errlen)
{
    struct stat st;
    json_error_t jerr;
    int fd = open(p->settings, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        if (errno != ENOENT)
            return el_seterr(err, errlen, EL_ERR_IO, "cannot open %s: %s", p->settings,
                             strerror(errno));
        p->conf = json_object();
        return p->conf ? EL_OK : el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    }
    int rc = EL_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = el_seterr(err, errlen, EL_ERR_IO, "%s is not a regular file", p->settings);
    } else if (st.st_size > SETTINGS_FILE_MAX) {
        rc = el_seterr(err, errlen, EL_ERR_TOO_LARGE, "%s is larger than %u bytes",
                       p->settings, SETTINGS_FILE_MAX);
    } else if (st.st_mode & 022) {
        rc = el_seterr(err, errlen, EL_ERR_DENIED,
                       "%s is writable by other users; fix it with: chmod 600 %s", p->settings,
                       p->settings);
    } else {
        char why[256] = "not a JSON object";
        p->conf = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
        if (!p->conf)
            rc = el_seterr(err, errlen, EL_ERR_INVALID, "%s:%d: %s (fix or remove the file)",
                           p->settings, jerr.line, jerr.text);
        else if (!json_is_object(p->conf) || check_settings(p->conf, why, sizeof why) != EL_OK)
            rc = el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s (fix or remove the file)",
                           p->settings, why);
    }
    close(fd);
    return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Temporary file + fsync + rename, then fsync of the directory so that the
 * rename itself survives a power cut. */
static int save_settings(const el_profile *p, json_t *conf, char *err, size_t errlen)
{
    char *text = json_dumps(conf, JSON_INDENT(2));
    char *tmp = g_strconcat(p->settings, ".XXXXXX", NULL);
    int rc = EL_ERR_IO, fd = -1;
    if (!text) {
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        el_seterr(err, errlen, rc, "cannot create a file in %s: %s", p->dir, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 ||
        write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        el_seterr(err, errlen, rc, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        el_seterr(err, errlen, rc, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, p->settings) != 0) {
        el_seterr(err, errlen, rc, "cannot rename %s to %s: %s", tmp, p->settings,
                  strerror(errno));
        goto out;
    }
    int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        /* best effort: the new file is in place either way */
        if (fsync(dfd) != 0)
            EL_WARN("cannot sync directory %s: %s", p->dir, strerror(errno));
        close(dfd);
    }
    rc = EL_OK;
out:
    if (fd >= 0)
        close(fd);
    if (rc != EL_OK)
        unlink(tmp);
    g_free(tmp);
    free(text);
    return rc;
}

/* ---- open / close ---------------------------------------------------------- */

int el_profile_open(const char *name, unsigned flags, el_profile **out, char *err,
                    size_t errlen)
{
    char dir[PATH_MAX];
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_open: NULL argument");
    *out = NULL;
    int rc = el_profile_dir(name, dir, sizeof dir, err, errlen);
    if (rc)
        return rc;
    if (flags & EL_PROFILE_CREATE) {
        struct stat st;
        int existed = stat(dir, &st) == 0;
        rc = make_dirs(dir, err, errlen);
        if (rc)
            return rc;
        /* a umask may have taken more than group/other bits away */
        if (!existed && chmod(dir, 0700) != 0)
            return el_seterr(err, errlen, EL_ERR_IO, "cannot chmod %s: %s", dir,
                             strerror(errno));
    }
    rc = check_dir(name, dir, err, errlen);
    if (rc)
        return rc;

    el_profile *p = g_new0(el_profile, 1);
    p->lock_fd = -1;
    p->name = g_strdup(name);
    p->dir = g_strdup(dir);
    p->identity = join(dir, "identity.key");
    p->history = join(dir, "history.db");
    p->trust = join(dir, "trust.db");
    p->files = join(dir, "files");
    p->control = join(dir, "control.sock");
    p->lock = join(dir, "lock");
    p->settings = join(dir, "profile.json");
    rc = ensure_subdir(p->files, err, errlen);
    if (rc == EL_OK)
        rc = load_settings(p, err, errlen);
    if (rc) {
        el_profile_close(p);
        return rc;
    }
    *out = p;
    return EL_OK;
}

void el_profile_close(el_profile *p)
{
    if (!p)
        return;
    el_profile_unlock(p);
    json_decref(p->conf);
    g_free(p->name);
    g_free(p->dir);
    g_free(p->identity);
    g_free(p->history);
    g_free(p->trust);
    g_free(p->files);
    g_free(p->control);
    g_free(p->lock);
    g_free(p->settings);
    g_free(p);
}

const char *el_profile_name(const el_profile *p) { return p->name; }
const char *el_profile_path(const el_profile *p) { return p->dir; }
const char *el_profile_identity_path(const el_profile *p) { return p->identity; }
const char *el_profile_history_path(const el_profile *p) { return p->history; }
const char *el_profile_trust_path(const el_profile *p) { return p->trust; }
const char *el_profile_files_path(const el_profile *p) { return p->files; }
const char *el_profile_control_path(const el_profile *p) { return p->control; }
const char *el_profile_lock_path(const el_profile *p) { return p->lock; }
const char *el_profile_settings_path(const el_profile *p) { return p->settings; }

/* ---- the owner lock -------------------------------------------------------- */

/* The pid the holder wrote, or -1 when there is none (yet) or it is garbage. */
static pid_t read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || end == buf || (*end != '\n' && *end != '\0') || v <= 0 || v > INT_MAX)
        return -1;
    return (pid_t)v;
}

static int write_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        return -1;
    return 0;
}

static int busy(const el_profile *p, int fd, char *err, size_t errlen)
{
    pid_t pid = read_pid(fd);
    if (pid > 0)
        return el_seterr(err, errlen, EL_ERR_STATE,
                         "profile %s is in use by process %ld (echolink chat/listen); "
                         "one-shot commands hand their work to it, or stop it first",
                         p->name, (long)pid);
    return el_seterr(err, errlen, EL_ERR_STATE,
                     "profile %s is in use by another process (echolink chat/listen); "
                     "stop it first",
                     p->name);
}

int el_profile_lock(el_profile *p, char *err, size_t errlen)
{
    if (!p)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_lock: NULL argument");
    if (p->lock_fd >= 0)
        return EL_OK;
    int fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "cannot open %s: %s", p->lock, strerror(errno));
    /* A failure may be el_profile_lock_holder's shared probe, held for
     * microseconds: retry briefly before calling the profile busy. */
    for (int tries = 0;; tries++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            int rc = el_seterr(err, errlen, EL_ERR_IO, "cannot lock %s: %s", p->lock,
                               strerror(errno));
            close(fd);
            return rc;
        }
        if (tries + 1 >= LOCK_TRIES) {
            int rc = busy(p, fd, err, errlen);
            close(fd);
            return rc;
        }
        struct timespec ts = {0, LOCK_RETRY_NS};
        nanosleep(&ts, NULL);
    }
    if (write_pid(fd) != 0) {
        int rc = el_seterr(err, errlen, EL_ERR_IO, "cannot write %s: %s", p->lock,
                           strerror(errno));
        close(fd); /* releases the lock */
        return rc;
    }
    p->lock_fd = fd;
    return EL_OK;
}

void el_profile_unlock(el_profile *p)
{
    if (!p || p->lock_fd < 0)
        return;
    /* The pid goes first so that nobody reads ours after we let go; a
     * failure here is harmless since a pid without the lock means nothing. */
    if (ftruncate(p->lock_fd, 0) != 0)
        EL_DEBUG("cannot empty %s: %s", p->lock, strerror(errno));
    close(p->lock_fd);
    p->lock_fd = -1;
}

bool el_profile_locked(const el_profile *p)
{
    return p && p->lock_fd >= 0;
}

pid_t el_profile_lock_holder(const el_profile *p)
{
    if (!p)
        return -1;
    if (p->lock_fd >= 0)
        return getpid();
    int fd = open(p->lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    pid_t pid;
    int r;
    do
        r = flock(fd, LOCK_SH | LOCK_NB);
    while (r != 0 && errno == EINTR);
    if (r == 0)
        pid = 0; /* nobody holds it: a pid in the file is a crashed owner's */
    else if (errno == EWOULDBLOCK)
        pid = read_pid(fd);
    else
        pid = -1;
    close(fd); /* also drops our shared lock */
    return pid;
}

/* ---- identity ------------------------------------------------------------- */

bool el_profile_has_identity(const el_profile *p)
{
    struct stat st;
    return p && lstat(p->identity, &st) == 0;
}

static int identity_exists(const el_profile *p, char *err, size_t errlen)
{
    return el_seterr(err, errlen, EL_ERR_EXISTS,
                     "profile %s already has an identity (%s); it is never overwritten: "
                     "use another profile (--profile NAME), or import with --force",
                     p->name, p->identity);
}

int el_profile_create_identity(el_profile *p, el_identity **out, char *err, size_t errlen)
{
    el_identity *id = NULL;
    if (out)
        *out = NULL;
    if (!p)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_create_identity: NULL argument");
    if (el_profile_has_identity(p))
        return identity_exists(p, err, errlen);
    int rc = el_identity_generate(&id, err, errlen);
    if (rc)
        return rc;
    rc = el_backup_save_file(p->identity, id, NULL, 0, err, errlen);
    if (rc == EL_ERR_EXISTS) /* created by someone else since the check */
        rc = identity_exists(p, err, errlen);
    if (rc == EL_OK && out)
        *out = id;
    else
        el_identity_free(id);
    return rc;
}

int el_profile_load_identity(const el_profile *p, const char *passphrase, el_identity **out,
                             char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!p || !out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_load_identity: NULL argument");
    int rc = el_backup_load_file(p->identity, passphrase, out, err, errlen);
    if (rc == EL_ERR_NOT_FOUND)
        return el_seterr(err, errlen, rc, "profile %s has no identity: run `echolink init`",
                         p->name);
    return rc;
}

int el_profile_export(const el_profile *p, const char *path, const char *passphrase,
                      unsigned flags, char *err, size_t errlen)
{
    el_identity *id = NULL;
    if (!p || !path || !*path)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_export: NULL argument");
    if (!passphrase || !*passphrase)
        return el_seterr(err, errlen, EL_ERR_INVALID, "an identity backup needs a passphrase");
    int rc = el_profile_load_identity(p, NULL, &id, err, errlen);
    if (rc)
        return rc;
    rc = el_backup_save_file(path, id, passphrase,
                             (flags & EL_PROFILE_FORCE) ? EL_BACKUP_REPLACE : 0, err, errlen);
    if (rc == EL_ERR_EXISTS)
        rc = el_seterr(err, errlen, rc, "%s already exists; not overwriting it", path);
    el_identity_free(id);
    return rc;
}

/* Reads a backup file into a NUL-terminated buffer. Unlike the key file a
 * backup may have any mode: it is only useful with the passphrase. */
static int read_backup(const char *path, char **out, char *err, size_t errlen)
{
    struct stat st;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return el_seterr(err, errlen, errno == ENOENT ? EL_ERR_NOT_FOUND : EL_ERR_IO,
                         "cannot open %s: %s", path, strerror(errno));
    int rc = EL_OK;
    char *buf = NULL;
    size_t len = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "%s is not a regular file", path);
        goto out;
    }
    buf = malloc(EL_BACKUP_FILE_MAX + 1);
    if (!buf) {
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, EL_BACKUP_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = el_seterr(err, errlen, EL_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > EL_BACKUP_FILE_MAX) {
            rc = el_seterr(err, errlen, EL_ERR_TOO_LARGE,
                           "%s is larger than %d bytes: not an identity backup", path,
                           EL_BACKUP_FILE_MAX);
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int el_profile_import(el_profile *p, const char *path, const char *passphrase, unsigned flags,
                      el_identity **out, char *err, size_t errlen)
{
    char *text = NULL;
    el_identity *id = NULL;
    if (out)
        *out = NULL;
    if (!p || !path || !passphrase)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_import: NULL argument");
    int force = (flags & EL_PROFILE_FORCE) != 0;
    if (!force && el_profile_has_identity(p))
        return identity_exists(p, err, errlen);
    int rc = read_backup(path, &text, err, errlen);
    if (rc)
        return rc;
    rc = el_backup_import(text, passphrase, &id, err, errlen);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (rc)
        return rc;
    rc = el_backup_save_file(p->identity, id, NULL, force ? EL_BACKUP_REPLACE : 0, err, errlen);
    if (rc == EL_ERR_EXISTS)
        rc = identity_exists(p, err, errlen);
    if (rc == EL_OK && out)
        *out = id;
    else
        el_identity_free(id);
    return rc;
}

/* ---- settings API ------------------------------------------------------------ */

const char *el_profile_display_name(const el_profile *p)
{
    return p ? json_string_value(json_object_get(p->conf, "name")) : NULL;
}

size_t el_profile_server_count(const el_profile *p)
{
    return p ? json_array_size(json_object_get(p->conf, "servers")) : 0;
}

const char *el_profile_server(const el_profile *p, size_t i)
{
    return p ? json_string_value(json_array_get(json_object_get(p->conf, "servers"), i)) : NULL;
}

json_t *el_profile_setting(const el_profile *p, const char *key)
{
    return p && key ? json_object_get(p->conf, key) : NULL;
}

int el_profile_set_setting(el_profile *p, const char *key, json_t *value, char *err,
                           size_t errlen)
{
    int rc;
    json_t *next = NULL;
    if (!p || !key || !*key) {
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_set_setting: NULL argument");
        goto out;
    }
    rc = check_member(key, value, err, errlen);
    if (rc)
        goto out;
    /* a shallow copy: only the one member changes, and the old settings stay
     * intact in memory if the file cannot be written */
    next = json_copy(p->conf);
    if (!next || (value && json_object_set(next, key, value) != 0)) {
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!value)
        json_object_del(next, key); /* -1 only when it was absent: nothing to do */
    rc = save_settings(p, next, err, errlen);
    if (rc)
        goto out;
    json_decref(p->conf);
    p->conf = next;
    next = NULL;
out:
    json_decref(next);
    json_decref(value);
    return rc;
}

int el_profile_set_display_name(el_profile *p, const char *name, char *err, size_t errlen)
{
    json_t *v = NULL;
    if (name) {
        v = json_stringn_nocheck(name, strlen(name));
        if (!v)
            return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    }
    return el_profile_set_setting(p, "name", v, err, errlen);
}

int el_profile_set_servers(el_profile *p, const char *const *urls, size_t n, char *err,
                           size_t errlen)
{
    if (n && !urls)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_profile_set_servers: NULL argument");
    if (n > EL_PROFILE_SERVERS_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "at most %d servers",
                         EL_PROFILE_SERVERS_MAX);
    json_t *arr = json_array();
    if (!arr)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        /* nocheck: check_url (through set_setting) judges the bytes, and a
         * URL that is not UTF-8 fails there with a clearer message */
        json_t *s = urls[i] ? json_stringn_nocheck(urls[i], strlen(urls[i])) : NULL;
        if (!s || json_array_append_new(arr, s) != 0) {
            json_decref(arr);
            return el_seterr(err, errlen, urls[i] ? EL_ERR_NOMEM : EL_ERR_INVALID,
                             urls[i] ? "out of memory" : "NULL server URL");
        }
    }
    return el_profile_set_setting(p, "servers", arr, err, errlen);
}
