/* xfer.c - the disk side of file transfers (see xfer.h).
 *
 * Memory stays bounded by construction: chunks go straight from the caller's
 * buffer to pwrite (sink) or from pread into the caller's buffer (source),
 * and every hash pass reads through one EL_XFER_HASH_BUF buffer that is freed
 * when the pass ends. Files are addressed with pread/pwrite at explicit
 * offsets, so no code path depends on a file position. The sink names files
 * relative to a descriptor of its directory, so a directory renamed while a
 * transfer runs still receives the file it was given. */
#include "client/xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/evp.h>

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"

#define FILE_ID_HEX 32
#define SHA256_LEN 32
#define SHA256_HEX 64
/* "a (1).txt", ... "a (9999).txt": beyond that something is wrong. */
#define MAX_NAME_TRIES 10000
/* A longer "extension" is part of the name (a.verylong...): keep the end. */
#define MAX_EXT 32

struct el_xfer_src {
    int fd;
    char *path;      /* for error messages */
    char *name;      /* FILE_META name */
    struct stat st;  /* at open */
};

enum sink_state { SINK_OPEN, SINK_DONE, SINK_DISCARDED };

struct el_xfer_sink {
    int dirfd;
    int fd;
    char *dir;
    char *part_name;  /* ".<file_id>.part", relative to dirfd */
    char *part_path;  /* dir + "/" + part_name */
    char *name;       /* cleaned final name, may need shortening (see unique) */
    uint64_t size;
    uint64_t off;
    char want[EL_XFER_HEX_SIZE];
    EVP_MD_CTX *md;   /* SHA-256 of bytes [0, off) */
    enum sink_state state;
};

/* ---- system call helpers --------------------------------------------------- */

static int errno_code(int e)
{
    if (e == ENOENT || e == ENOTDIR)
        return EL_ERR_NOT_FOUND;
    if (e == EACCES || e == EPERM || e == EROFS)
        return EL_ERR_DENIED;
    if (e == ENOMEM)
        return EL_ERR_NOMEM;
    return EL_ERR_IO;
}

static int sys_fail(char *err, size_t errlen, const char *what, const char *path, int e)
{
    return el_seterr(err, errlen, errno_code(e), "%s %s: %s", what, path, strerror(e));
}

/* Reads until len bytes or EOF; *got says how many. 0 or -errno. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    size_t n = 0;
    while (n < len) {
        ssize_t r = pread(fd, (char *)buf + n, len - n, (off_t)(off + n));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return 0;
}

/* Writes all len bytes; 0 or -errno. */
static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t n = 0;
    while (n < len) {
        ssize_t w = pwrite(fd, (const char *)buf + n, len - n, (off_t)(off + n));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        n += (size_t)w;
    }
    return 0;
}

/* dir + "/" + name, malloc'ed; NULL on allocation failure. */
static char *join(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* ---- SHA-256 ----------------------------------------------------------------- */

static int md_new(EVP_MD_CTX **out, char *err, size_t errlen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    *out = NULL;
    if (!md)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "SHA-256: out of memory");
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "SHA-256: backend init failed");
    }
    *out = md;
    return EL_OK;
}

/* The digest of md so far, as hex; md itself keeps running (a copy is
 * finalised), so a failed step after this can be retried. */
static int md_hex(const EVP_MD_CTX *md, char out_hex[EL_XFER_HEX_SIZE], char *err, size_t errlen)
{
    uint8_t d[SHA256_LEN];
    unsigned int dlen = 0;
    EVP_MD_CTX *tmp = EVP_MD_CTX_new();
    int ok = tmp && EVP_MD_CTX_copy_ex(tmp, md) == 1 && EVP_DigestFinal_ex(tmp, d, &dlen) == 1 &&
             dlen == SHA256_LEN;
    EVP_MD_CTX_free(tmp);
    if (!ok)
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "SHA-256: backend failure");
    el_hex_encode(d, SHA256_LEN, out_hex, EL_XFER_HEX_SIZE);
    return EL_OK;
}

/* Feeds bytes [0, len) of fd into md (len UINT64_MAX: up to EOF) through one
 * bounded buffer. *done = bytes hashed. Ending before len is not an error
 * here: callers that know the size compare *done with it. */
static int hash_fd_into(int fd, EVP_MD_CTX *md, uint64_t len, uint64_t *done,
                        el_xfer_progress_cb cb, void *user, const char *path, char *err,
                        size_t errlen)
{
    uint8_t *buf = malloc(EL_XFER_HASH_BUF);
    uint64_t off = 0;
    int rc = EL_OK;
    if (!buf)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "SHA-256: out of memory");
    while (off < len) {
        size_t want = len - off < EL_XFER_HASH_BUF ? (size_t)(len - off) : EL_XFER_HASH_BUF;
        size_t got = 0;
        int e = pread_full(fd, buf, want, off, &got);
        if (e) {
            rc = sys_fail(err, errlen, "read", path, -e);
            break;
        }
        if (got && EVP_DigestUpdate(md, buf, got) != 1) {
            rc = el_seterr(err, errlen, EL_ERR_CRYPTO, "SHA-256: backend failure");
            break;
        }
        off += got;
        if (cb && cb(off, len, user)) {
            rc = el_seterr(err, errlen, EL_ERR_STATE, "hashing %s: aborted", path);
            break;
        }
        if (got < want)
            break;
    }
    free(buf);
    *done = off;
    return rc;
}

int el_xfer_hash_fd(int fd, char out_hex[EL_XFER_HEX_SIZE], char *err, size_t errlen)
{
    EVP_MD_CTX *md = NULL;
    uint64_t done = 0;
    if (fd < 0 || !out_hex)
        return el_seterr(err, errlen, EL_ERR_INVALID, "hash: bad argument");
    int rc = md_new(&md, err, errlen);
    if (rc == EL_OK)
        rc = hash_fd_into(fd, md, UINT64_MAX, &done, NULL, NULL, "descriptor", err, errlen);
    if (rc == EL_OK)
        rc = md_hex(md, out_hex, err, errlen);
    EVP_MD_CTX_free(md);
    return rc;
}

int el_xfer_sha256_path(const char *path, char out_hex[EL_XFER_HEX_SIZE], char *err,
                        size_t errlen)
{
    el_xfer_src *src = NULL;
    int rc = el_xfer_src_open(path, &src, err, errlen);
    if (rc == EL_OK)
        rc = el_xfer_src_sha256(src, out_hex, err, errlen);
    el_xfer_src_free(src);
    return rc;
}

/* ---- names --------------------------------------------------------------- */

/* Unicode direction controls: they make "exe.txt" display as "txt.exe". */
static int is_bidi(gunichar c)
{
    return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* Unicode Cc (U+0000-U+001F, U+007F-U+009F), the set §11 forbids in names. */
static int is_cc(gunichar c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/* §11's rule for a received name, plus what would escape the directory. */
static int name_check(const char *name, char *err, size_t errlen)
{
    if (!name)
        return el_seterr(err, errlen, EL_ERR_INVALID, "name: missing");
    size_t len = strlen(name);
    if (len < 1 || len > EL_XFER_NAME_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "name: %zu bytes, must be 1..%d", len,
                         EL_XFER_NAME_MAX);
    if (!g_utf8_validate(name, (gssize)len, NULL))
        return el_seterr(err, errlen, EL_ERR_INVALID, "name: not valid UTF-8");
    for (const char *p = name; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (is_cc(c) || c == '/' || c == '\\')
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "name: contains '/', '\\' or a control character");
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "name: \"%s\" is not a file name", name);
    return EL_OK;
}

/* A copy of in[0..len) where every invalid UTF-8 byte, '/', '\', control or
 * direction control becomes '_', cut to at most max bytes at a character
 * boundary, with `prefix` (if not 0) put before a leading '.'. Never longer
 * than len + 1. NULL on allocation failure. */
static char *name_clean(const char *in, size_t len, size_t max, char prefix)
{
    char *out = malloc(len + 2);
    size_t n = 0;
    if (!out)
        return NULL;
    if (prefix && len && in[0] == '.')
        out[n++] = prefix;
    for (size_t i = 0; i < len;) {
        gunichar c = g_utf8_get_char_validated(in + i, (gssize)(len - i));
        size_t clen = (c == (gunichar)-1 || c == (gunichar)-2)
                          ? 1
                          : (size_t)(g_utf8_next_char(in + i) - (in + i));
        int bad = clen == 1 && (unsigned char)in[i] >= 0x80;
        bad = bad || c == '/' || c == '\\' || is_cc(c) || is_bidi(c);
        if (n + (bad ? 1 : clen) > max)
            break;
        if (bad) {
            out[n++] = '_';
        } else {
            memcpy(out + n, in + i, clen);
            n += clen;
        }
        i += clen;
    }
    out[n] = '\0';
    return out;
}

/* Length of the longest prefix of s[0..len) that fits in max bytes without
 * splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

/* Candidate i for the final name: "name" (i = 0) or "stem (i).ext", the stem
 * shortened when the result would exceed NAME_MAX bytes. */
static int name_candidate(const char *name, unsigned i, char *out, size_t outlen)
{
    size_t len = strlen(name);
    const char *dot = strrchr(name, '.');
    size_t ext_len = dot && dot != name && strlen(dot) <= MAX_EXT ? strlen(dot) : 0;
    size_t stem_len = len - ext_len;
    char suffix[16] = "";
    if (i > 0)
        snprintf(suffix, sizeof suffix, " (%u)", i);
    size_t room = EL_XFER_NAME_MAX - strlen(suffix) - ext_len;
    stem_len = utf8_cut(name, stem_len, room);
    int n = snprintf(out, outlen, "%.*s%s%s", (int)stem_len, name, suffix, name + len - ext_len);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

const char *el_xfer_guess_mime(const char *name)
{
    static const struct {
        const char *ext, *mime;
    } table[] = {
        {"txt", "text/plain"},        {"md", "text/markdown"},     {"pdf", "application/pdf"},
        {"png", "image/png"},         {"jpg", "image/jpeg"},       {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},         {"webp", "image/webp"},      {"mp3", "audio/mpeg"},
        {"ogg", "audio/ogg"},
        /* RFC 7845: Ogg Opus files are audio/ogg ("audio/opus" is RTP's) */
        {"opus", "audio/ogg"},        {"wav", "audio/wav"},        {"m4a", "audio/mp4"},
        {"mp4", "video/mp4"},         {"webm", "video/webm"},      {"zip", "application/zip"},
        {"gz", "application/gzip"},   {"tar", "application/x-tar"}, {"json", "application/json"},
        {"html", "text/html"},        {"csv", "text/csv"},
    };
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (dot && dot != name)
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
            if (g_ascii_strcasecmp(dot + 1, table[i].ext) == 0)
                return table[i].mime;
    return "application/octet-stream";
}

int el_xfer_part_path(const char *dir, const char *file_id_hex, char *out, size_t outlen)
{
    if (!dir || !file_id_hex || !out || strlen(file_id_hex) != FILE_ID_HEX ||
        !el_is_lower_hex(file_id_hex, FILE_ID_HEX))
        return EL_ERR_INVALID;
    int n = snprintf(out, outlen, "%s/.%s.part", dir, file_id_hex);
    return n > 0 && (size_t)n < outlen ? EL_OK : EL_ERR_TOO_LARGE;
}

int el_xfer_part_remove(const char *dir, const char *file_id_hex, char *err, size_t errlen)
{
    char path[4096];
    int rc = el_xfer_part_path(dir, file_id_hex, path, sizeof path);
    if (rc != EL_OK)
        return el_seterr(err, errlen, rc, "part path: bad directory or file_id");
    if (unlink(path) != 0 && errno != ENOENT)
        return sys_fail(err, errlen, "remove", path, errno);
    return EL_OK;
}

/* ---- sender -------------------------------------------------------------- */

int el_xfer_src_open(const char *path, el_xfer_src **out, char *err, size_t errlen)
{
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "src_open: bad argument");
    *out = NULL;
    if (!path || !*path)
        return el_seterr(err, errlen, EL_ERR_INVALID, "src_open: empty path");
    el_xfer_src *s = calloc(1, sizeof *s);
    if (!s)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "src_open: out of memory");
    int rc;
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer before
     * the regular-file check below could refuse it. */
    s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (s->fd < 0) {
        rc = sys_fail(err, errlen, "open", path, errno);
        goto fail;
    }
    if (fstat(s->fd, &s->st) != 0) {
        rc = sys_fail(err, errlen, "stat", path, errno);
        goto fail;
    }
    if (!S_ISREG(s->st.st_mode)) {
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)s->st.st_size > EL_XFER_SIZE_MAX) {
        rc = el_seterr(err, errlen, EL_ERR_TOO_LARGE, "%s: larger than 2^53-1 bytes", path);
        goto fail;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    s->path = strdup(path);
    s->name = name_clean(base, strlen(base), EL_XFER_NAME_MAX, 0);
    if (!s->path || !s->name) {
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "src_open: out of memory");
        goto fail;
    }
    *out = s;
    return EL_OK;
fail:
    el_xfer_src_free(s);
    return rc;
}

void el_xfer_src_free(el_xfer_src *src)
{
    if (!src)
        return;
    if (src->fd >= 0)
        close(src->fd);
    free(src->path);
    free(src->name);
    free(src);
}

uint64_t el_xfer_src_size(const el_xfer_src *src)
{
    return (uint64_t)src->st.st_size;
}

const char *el_xfer_src_name(const el_xfer_src *src)
{
    return src->name;
}

void el_xfer_src_stamp(const el_xfer_src *src, el_xfer_stamp *out)
{
    out->size = (uint64_t)src->st.st_size;
    out->mtime_sec = (int64_t)src->st.st_mtim.tv_sec;
    out->mtime_nsec = src->st.st_mtim.tv_nsec;
    out->dev = (uint64_t)src->st.st_dev;
    out->ino = (uint64_t)src->st.st_ino;
}

/* EL_ERR_STATE when the file no longer has the size and mtime of open. */
static int src_unchanged(el_xfer_src *src, char *err, size_t errlen)
{
    struct stat now;
    if (fstat(src->fd, &now) != 0)
        return sys_fail(err, errlen, "stat", src->path, errno);
    if (now.st_size != src->st.st_size || now.st_mtim.tv_sec != src->st.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != src->st.st_mtim.tv_nsec)
        return el_seterr(err, errlen, EL_ERR_STATE,
                         "%s changed since it was opened (size %lld -> %lld)", src->path,
                         (long long)src->st.st_size, (long long)now.st_size);
    return EL_OK;
}

int el_xfer_src_sha256_progress(el_xfer_src *src, char out_hex[EL_XFER_HEX_SIZE],
                                el_xfer_progress_cb cb, void *user, char *err, size_t errlen)
{
    EVP_MD_CTX *md = NULL;
    uint64_t size = el_xfer_src_size(src), done = 0;
    int rc = md_new(&md, err, errlen);
    if (rc == EL_OK)
        rc = hash_fd_into(src->fd, md, size, &done, cb, user, src->path, err, errlen);
    if (rc == EL_OK)
        rc = src_unchanged(src, err, errlen);
    if (rc == EL_OK && done != size)
        rc = el_seterr(err, errlen, EL_ERR_STATE, "%s: shorter than when opened", src->path);
    if (rc == EL_OK)
        rc = md_hex(md, out_hex, err, errlen);
    EVP_MD_CTX_free(md);
    return rc;
}

int el_xfer_src_sha256(el_xfer_src *src, char out_hex[EL_XFER_HEX_SIZE], char *err,
                       size_t errlen)
{
    return el_xfer_src_sha256_progress(src, out_hex, NULL, NULL, err, errlen);
}

int el_xfer_src_read(el_xfer_src *src, uint64_t offset, void *buf, size_t cap, size_t *n,
                     char *err, size_t errlen)
{
    uint64_t size = el_xfer_src_size(src);
    *n = 0;
    if (offset > size)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: offset %llu beyond size %llu",
                         src->path, (unsigned long long)offset, (unsigned long long)size);
    size_t want = size - offset < cap ? (size_t)(size - offset) : cap;
    size_t got = 0;
    int e = pread_full(src->fd, buf, want, offset, &got);
    if (e)
        return sys_fail(err, errlen, "read", src->path, -e);
    /* Checked after the read, so a change made before or during it is seen. */
    int rc = src_unchanged(src, err, errlen);
    if (rc != EL_OK)
        return rc;
    if (got < want)
        return el_seterr(err, errlen, EL_ERR_STATE, "%s: shorter than when opened", src->path);
    *n = got;
    return EL_OK;
}

/* ---- receiver ------------------------------------------------------------ */

static int sink_args_ok(const char *dir, const char *file_id_hex, uint64_t size,
                        const char *sha256_hex, char *err, size_t errlen)
{
    if (!dir || !*dir)
        return el_seterr(err, errlen, EL_ERR_INVALID, "sink_open: no directory");
    if (!file_id_hex || strlen(file_id_hex) != FILE_ID_HEX ||
        !el_is_lower_hex(file_id_hex, FILE_ID_HEX))
        return el_seterr(err, errlen, EL_ERR_INVALID, "file_id: must be 32 lowercase hex");
    if (!sha256_hex || strlen(sha256_hex) != SHA256_HEX || !el_is_lower_hex(sha256_hex, SHA256_HEX))
        return el_seterr(err, errlen, EL_ERR_INVALID, "sha256: must be 64 lowercase hex");
    if (size > EL_XFER_SIZE_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "size: %llu is over 2^53-1",
                         (unsigned long long)size);
    return EL_OK;
}

/* Opens the part file, takes its lock, and hashes what an earlier run left
 * (cut to the announced size first). */
static int sink_open_part(el_xfer_sink *k, char *err, size_t errlen)
{
    struct stat st;
    k->fd = openat(k->dirfd, k->part_name,
                   O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
    if (k->fd < 0)
        return sys_fail(err, errlen, "open", k->part_path, errno);
    if (fstat(k->fd, &st) != 0)
        return sys_fail(err, errlen, "stat", k->part_path, errno);
    if (!S_ISREG(st.st_mode))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: not a regular file", k->part_path);
    /* Two writers on one part would interleave chunks (a duplicated
     * FILE_META, two processes on one profile). */
    if (flock(k->fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK
                   ? el_seterr(err, errlen, EL_ERR_STATE, "%s: already open", k->part_path)
                   : sys_fail(err, errlen, "lock", k->part_path, errno);
    if ((st.st_mode & 07777) != 0600 && fchmod(k->fd, 0600) != 0)
        return sys_fail(err, errlen, "chmod", k->part_path, errno);
    uint64_t have = (uint64_t)st.st_size;
    if (have > k->size) {
        if (ftruncate(k->fd, (off_t)k->size) != 0)
            return sys_fail(err, errlen, "truncate", k->part_path, errno);
        have = k->size;
    }
    int rc = md_new(&k->md, err, errlen);
    if (rc != EL_OK)
        return rc;
    uint64_t done = 0;
    rc = hash_fd_into(k->fd, k->md, have, &done, NULL, NULL, k->part_path, err, errlen);
    if (rc != EL_OK)
        return rc;
    if (done != have)
        return el_seterr(err, errlen, EL_ERR_IO, "%s: shrank while being read", k->part_path);
    k->off = have;
    return EL_OK;
}

int el_xfer_sink_open(const char *dir, const char *file_id_hex, const char *name, uint64_t size,
                      const char *sha256_hex, el_xfer_sink **out, char *err, size_t errlen)
{
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "sink_open: bad argument");
    *out = NULL;
    int rc = sink_args_ok(dir, file_id_hex, size, sha256_hex, err, errlen);
    if (rc == EL_OK)
        rc = name_check(name, err, errlen);
    if (rc != EL_OK)
        return rc;
    el_xfer_sink *k = calloc(1, sizeof *k);
    if (!k)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "sink_open: out of memory");
    k->dirfd = k->fd = -1;
    k->size = size;
    memcpy(k->want, sha256_hex, EL_XFER_HEX_SIZE);
    k->dir = strdup(dir);
    if (asprintf(&k->part_name, ".%s.part", file_id_hex) < 0)
        k->part_name = NULL;
    k->part_path = k->part_name ? join(dir, k->part_name) : NULL;
    /* 256 = the 255 allowed plus the '_' before a leading '.' */
    k->name = name_clean(name, strlen(name), EL_XFER_NAME_MAX + 1, '_');
    if (!k->dir || !k->part_name || !k->part_path || !k->name) {
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "sink_open: out of memory");
        goto fail;
    }
    k->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (k->dirfd < 0) {
        rc = sys_fail(err, errlen, "open directory", dir, errno);
        goto fail;
    }
    rc = sink_open_part(k, err, errlen);
    if (rc != EL_OK)
        goto fail;
    *out = k;
    return EL_OK;
fail:
    el_xfer_sink_free(k);
    return rc;
}

void el_xfer_sink_free(el_xfer_sink *sink)
{
    if (!sink)
        return;
    if (sink->fd >= 0)
        close(sink->fd);
    if (sink->dirfd >= 0)
        close(sink->dirfd);
    EVP_MD_CTX_free(sink->md);
    free(sink->dir);
    free(sink->part_name);
    free(sink->part_path);
    free(sink->name);
    free(sink);
}

uint64_t el_xfer_sink_offset(const el_xfer_sink *sink)
{
    return sink->off;
}

uint64_t el_xfer_sink_size(const el_xfer_sink *sink)
{
    return sink->size;
}

int el_xfer_sink_complete(const el_xfer_sink *sink)
{
    return sink->state == SINK_OPEN && sink->off == sink->size;
}

const char *el_xfer_sink_part_path(const el_xfer_sink *sink)
{
    return sink->part_path;
}

static int sink_usable(const el_xfer_sink *k, char *err, size_t errlen)
{
    if (k->state == SINK_DONE)
        return el_seterr(err, errlen, EL_ERR_STATE, "%s: transfer already finished", k->part_path);
    if (k->state == SINK_DISCARDED)
        return el_seterr(err, errlen, EL_ERR_STATE, "%s: transfer discarded", k->part_path);
    return EL_OK;
}

int el_xfer_sink_write(el_xfer_sink *sink, uint64_t offset, const void *data, size_t len,
                       char *err, size_t errlen)
{
    int rc = sink_usable(sink, err, errlen);
    if (rc != EL_OK)
        return rc;
    if (offset != sink->off)
        return el_seterr(err, errlen, EL_ERR_INVALID, "expected offset %llu, got %llu",
                         (unsigned long long)sink->off, (unsigned long long)offset);
    if (len == 0 || !data)
        return el_seterr(err, errlen, EL_ERR_INVALID, "empty chunk at offset %llu",
                         (unsigned long long)offset);
    if (len > sink->size - offset)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE,
                         "chunk of %zu bytes at offset %llu passes the size %llu", len,
                         (unsigned long long)offset, (unsigned long long)sink->size);
    int e = pwrite_full(sink->fd, data, len, offset);
    if (e) {
        /* Keep the file as long as what is confirmed; if even that fails the
         * extra bytes are this chunk's own prefix, so a resume that hashes
         * them stays correct. The write error is the one to report. */
        if (ftruncate(sink->fd, (off_t)sink->off) != 0)
            EL_WARN("%s: cannot cut back to %llu bytes: %s", sink->part_path,
                    (unsigned long long)sink->off, strerror(errno));
        return sys_fail(err, errlen, "write", sink->part_path, -e);
    }
    if (EVP_DigestUpdate(sink->md, data, len) != 1)
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "SHA-256: backend failure");
    sink->off += len;
    return EL_OK;
}

/* Moves the part to `cand` unless that name exists: 0 or -errno (-EEXIST:
 * taken). Never replaces a file, even one created a moment ago by someone
 * else: the check and the move are one step. */
static int place_as(el_xfer_sink *k, const char *cand)
{
    if (renameat2(k->dirfd, k->part_name, k->dirfd, cand, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -errno;
    /* A filesystem without RENAME_NOREPLACE: link() refuses existing names
     * too, and the part name is dropped once the new one exists. */
    if (linkat(k->dirfd, k->part_name, k->dirfd, cand, 0) != 0)
        return -errno;
    return unlinkat(k->dirfd, k->part_name, 0) == 0 ? 0 : -errno;
}

/* Gives the part the first free name of "name", "stem (1).ext", ...
 * *chosen is malloc'ed. */
static int sink_place(el_xfer_sink *k, char **chosen, char *err, size_t errlen)
{
    char cand[EL_XFER_NAME_MAX + 1];
    for (unsigned i = 0; i < MAX_NAME_TRIES; i++) {
        if (name_candidate(k->name, i, cand, sizeof cand) != 0)
            return el_seterr(err, errlen, EL_ERR_INVALID, "%s: cannot build a name", k->name);
        int e = place_as(k, cand);
        if (e == -EEXIST)
            continue;
        if (e)
            return sys_fail(err, errlen, "rename", k->part_path, -e);
        *chosen = strdup(cand);
        return *chosen ? EL_OK : el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    }
    return el_seterr(err, errlen, EL_ERR_EXISTS, "%s/%s: no free name after %d tries", k->dir,
                     k->name, MAX_NAME_TRIES);
}

int el_xfer_sink_finish(el_xfer_sink *sink, char **final_path, char *err, size_t errlen)
{
    char got[EL_XFER_HEX_SIZE];
    char *chosen = NULL;
    if (!final_path)
        return el_seterr(err, errlen, EL_ERR_INVALID, "finish: bad argument");
    *final_path = NULL;
    int rc = sink_usable(sink, err, errlen);
    if (rc != EL_OK)
        return rc;
    if (sink->off != sink->size)
        return el_seterr(err, errlen, EL_ERR_STATE, "%s: %llu of %llu bytes, not complete",
                         sink->part_path, (unsigned long long)sink->off,
                         (unsigned long long)sink->size);
    rc = md_hex(sink->md, got, err, errlen);
    if (rc != EL_OK)
        return rc;
    if (strcmp(got, sink->want) != 0) {
        /* Start over: keeping bytes that hash wrong would make every resume
         * fail the same way. */
        sink->off = 0;
        int trunc = ftruncate(sink->fd, 0);
        int init = EVP_DigestInit_ex(sink->md, EVP_sha256(), NULL);
        if (trunc != 0)
            return sys_fail(err, errlen, "truncate", sink->part_path, errno);
        if (init != 1)
            return el_seterr(err, errlen, EL_ERR_CRYPTO, "SHA-256: backend init failed");
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "SHA-256 mismatch: announced %s, received %s",
                         sink->want, got);
    }
    if (fsync(sink->fd) != 0)
        return sys_fail(err, errlen, "fsync", sink->part_path, errno);
    rc = sink_place(sink, &chosen, err, errlen);
    if (rc != EL_OK)
        return rc;
    sink->state = SINK_DONE;
    /* The rename is durable only once the directory is. The file is verified
     * and in place either way, so a failure here is worth a warning, not an
     * error that would hide where the file went. */
    if (fsync(sink->dirfd) != 0)
        EL_WARN("fsync %s: %s", sink->dir, strerror(errno));
    *final_path = join(sink->dir, chosen);
    free(chosen);
    if (!*final_path)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    return EL_OK;
}

int el_xfer_sink_discard(el_xfer_sink *sink, char *err, size_t errlen)
{
    int rc = sink_usable(sink, err, errlen);
    if (rc != EL_OK)
        return rc;
    sink->state = SINK_DISCARDED;
    if (unlinkat(sink->dirfd, sink->part_name, 0) != 0 && errno != ENOENT)
        return sys_fail(err, errlen, "remove", sink->part_path, errno);
    return EL_OK;
}
