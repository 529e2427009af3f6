/* backup.c - identity backup and key files (see backup.h and
 * docs/PROTOCOL.md §10.4). */
#include "crypto/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "base/enc.h"
#include "base/err.h"

/* sizeof counts the label's NUL: exactly the 0x00 byte after the label. */
static const char dom_backup[] = "echolink-v1-backup";

#define KEY_LEN 32
#define TAG_LEN 16
#define PT_VERSION 0x01
#define AAD_LEN (sizeof dom_backup + 3 * 4 + EL_BACKUP_SALT_LEN)
/* scrypt needs 128·r·(n+2) bytes for V plus 128·r·p for B: just over 1 GiB
 * at the largest accepted n. OpenSSL's default cap is 32 MiB, too small even
 * for the default n, so we raise it to what the parameter checks allow. */
#define SCRYPT_MAXMEM (((uint64_t)1 << 30) + ((uint64_t)16 << 20))

static const char msg_bad_pass[] = "bad passphrase or corrupted backup";

_Static_assert(EL_BACKUP_PT_LEN == 1 + 2 * EL_ID_KEY_LEN, "plaintext layout");

/* The scrypt/AEAD parameters and ciphertext of one encrypted document. */
typedef struct {
    uint32_t n, r, p;
    uint8_t salt[EL_BACKUP_SALT_LEN];
    uint8_t nonce[EL_BACKUP_NONCE_LEN];
    uint8_t ct[EL_BACKUP_CT_LEN];
} sealed;

/* ---- parameters and crypto ------------------------------------------- */

static int params_ok(uint64_t n, uint64_t r, uint64_t p, char *err, size_t errlen)
{
    if (n < EL_BACKUP_N_MIN || n > EL_BACKUP_N_MAX || (n & (n - 1)) != 0)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "backup: n must be a power of two from 2^10 to 2^20, got %llu",
                         (unsigned long long)n);
    if (r != EL_BACKUP_R)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: r must be 8, got %llu",
                         (unsigned long long)r);
    if (p < 1 || p > EL_BACKUP_P_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: p must be 1 to 4, got %llu",
                         (unsigned long long)p);
    return EL_OK;
}

static int derive_key(const char *pass, const sealed *s, uint8_t key[KEY_LEN], char *err,
                      size_t errlen)
{
    int rc = EL_ERR_CRYPTO;
    uint64_t n = s->n, maxmem = SCRYPT_MAXMEM;
    uint32_t r = s->r, p = s->p;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        /* An empty passphrase still needs a non-NULL pointer. */
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, strlen(pass)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)s->salt,
                                          sizeof s->salt),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    if (ctx && EVP_KDF_derive(ctx, key, KEY_LEN, params) == 1)
        rc = EL_OK;
    else
        el_seterr(err, errlen, rc, "backup: scrypt (n=%u, r=%u, p=%u, %u MiB) failed",
                  s->n, s->r, s->p, (unsigned)((128ull * r * n) >> 20));
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

static void put_u32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* The associated data binds every parameter: changing n, r, p or salt in the
 * file makes it fail to authenticate instead of deriving another key. */
static void make_aad(const sealed *s, uint8_t aad[AAD_LEN])
{
    uint8_t *q = aad;
    memcpy(q, dom_backup, sizeof dom_backup);
    q += sizeof dom_backup;
    put_u32(q, s->n);
    put_u32(q + 4, s->r);
    put_u32(q + 8, s->p);
    memcpy(q + 12, s->salt, EL_BACKUP_SALT_LEN);
}

/* AES-256-GCM over the fixed-size plaintext. enc = 1: pt -> s->ct (with tag);
 * enc = 0: s->ct -> pt, EL_ERR_CRYPTO when the tag does not verify. */
static int gcm(int enc, const uint8_t key[KEY_LEN], sealed *s, uint8_t pt[EL_BACKUP_PT_LEN])
{
    uint8_t aad[AAD_LEN];
    int rc = EL_ERR_CRYPTO, len = 0, fin = 0;
    uint8_t *tag = s->ct + EL_BACKUP_PT_LEN;
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!cipher || !ctx)
        goto out;
    make_aad(s, aad);
    /* GCM's default IV length is 12 bytes, the size of our nonce. */
    if (EVP_CipherInit_ex2(ctx, cipher, key, s->nonce, enc, NULL) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &len, aad, sizeof aad) != 1)
        goto out;
    if (enc) {
        if (EVP_CipherUpdate(ctx, s->ct, &len, pt, EL_BACKUP_PT_LEN) != 1 ||
            EVP_CipherFinal_ex(ctx, s->ct + len, &fin) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) != 1)
            goto out;
    } else {
        if (EVP_CipherUpdate(ctx, pt, &len, s->ct, EL_BACKUP_PT_LEN) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) != 1 ||
            EVP_CipherFinal_ex(ctx, pt + len, &fin) != 1) {
            OPENSSL_cleanse(pt, EL_BACKUP_PT_LEN);
            goto out;
        }
    }
    if (len + fin == EL_BACKUP_PT_LEN)
        rc = EL_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    return rc;
}

/* ---- plaintext <-> identity ------------------------------------------- */

static int plaintext_of(const el_identity *id, uint8_t pt[EL_BACKUP_PT_LEN], char *err,
                        size_t errlen)
{
    pt[0] = PT_VERSION;
    int rc = el_identity_ik_seed(id, pt + 1);
    if (rc == EL_OK)
        rc = el_identity_sk_private(id, pt + 1 + EL_ID_KEY_LEN);
    if (rc) {
        OPENSSL_cleanse(pt, EL_BACKUP_PT_LEN);
        return el_seterr(err, errlen, rc, "backup: cannot read the identity's private keys");
    }
    return EL_OK;
}

static int identity_of(const uint8_t pt[EL_BACKUP_PT_LEN], el_identity **out, char *err,
                       size_t errlen)
{
    if (pt[0] != PT_VERSION)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "backup: unsupported key format 0x%02x (this build reads 0x01)", pt[0]);
    return el_identity_new(out, pt + 1, pt + 1 + EL_ID_KEY_LEN, err, errlen);
}

/* ---- JSON writing ----------------------------------------------------- */

static int set_b64(json_t *obj, const char *name, const uint8_t *data, size_t n)
{
    char text[EL_B64URL_LEN(EL_BACKUP_CT_LEN) + 1];
    if (n > EL_BACKUP_CT_LEN || el_b64url_encode(data, n, text, sizeof text) < 0)
        return -1;
    int rc = json_object_set_new(obj, name, json_string(text));
    OPENSSL_cleanse(text, sizeof text); /* the key file's "keys" passes through here */
    return rc;
}

/* Serialises compactly, members in insertion order (jansson keeps it), into
 * a buffer of our own so that the caller frees it with free() whatever
 * allocator jansson was given. Cleanses jansson's copy of secret strings. */
static int dump(json_t *doc, const char *secret_member, char **out, char *err, size_t errlen)
{
    size_t len = json_dumpb(doc, NULL, 0, JSON_COMPACT);
    char *buf = len ? malloc(len + 1) : NULL;
    if (buf && json_dumpb(doc, buf, len, JSON_COMPACT) == len) {
        buf[len] = '\0';
        *out = buf;
    } else {
        free(buf);
        buf = NULL;
    }
    json_t *secret = secret_member ? json_object_get(doc, secret_member) : NULL;
    if (secret)
        OPENSSL_cleanse((char *)json_string_value(secret), json_string_length(secret));
    json_decref(doc);
    if (!buf)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "backup: out of memory");
    return EL_OK;
}

static int write_sealed(const sealed *s, char **out, char *err, size_t errlen)
{
    json_t *doc = json_object();
    int bad = !doc;
    bad = bad || json_object_set_new(doc, "echolink_backup", json_integer(1));
    bad = bad || json_object_set_new(doc, "kdf", json_string("scrypt"));
    bad = bad || json_object_set_new(doc, "n", json_integer(s->n));
    bad = bad || json_object_set_new(doc, "r", json_integer(s->r));
    bad = bad || json_object_set_new(doc, "p", json_integer(s->p));
    bad = bad || set_b64(doc, "salt", s->salt, sizeof s->salt);
    bad = bad || set_b64(doc, "nonce", s->nonce, sizeof s->nonce);
    bad = bad || set_b64(doc, "ct", s->ct, sizeof s->ct);
    if (bad) {
        json_decref(doc);
        return el_seterr(err, errlen, EL_ERR_NOMEM, "backup: out of memory");
    }
    return dump(doc, NULL, out, err, errlen);
}

static int write_plain(const uint8_t pt[EL_BACKUP_PT_LEN], char **out, char *err, size_t errlen)
{
    json_t *doc = json_object();
    int bad = !doc;
    bad = bad || json_object_set_new(doc, "echolink_backup", json_integer(1));
    bad = bad || json_object_set_new(doc, "kdf", json_string("none"));
    bad = bad || set_b64(doc, "keys", pt, EL_BACKUP_PT_LEN);
    if (bad) {
        json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
        if (keys)
            OPENSSL_cleanse((char *)json_string_value(keys), json_string_length(keys));
        json_decref(doc);
        return el_seterr(err, errlen, EL_ERR_NOMEM, "backup: out of memory");
    }
    return dump(doc, "keys", out, err, errlen);
}

/* ---- export ----------------------------------------------------------- */

int el_backup_export_params(const el_identity *id, const char *passphrase, uint32_t n,
                            uint32_t p, const uint8_t salt[EL_BACKUP_SALT_LEN],
                            const uint8_t nonce[EL_BACKUP_NONCE_LEN], char **json, char *err,
                            size_t errlen)
{
    sealed s = {.n = n, .r = EL_BACKUP_R, .p = p};
    uint8_t key[KEY_LEN], pt[EL_BACKUP_PT_LEN];
    int rc;
    if (!json)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: NULL argument");
    *json = NULL;
    if (!id || !passphrase || !salt || !nonce)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: NULL argument");
    /* An empty passphrase would protect nothing; an unencrypted key file
     * (el_backup_save_file with NULL) says so openly instead. */
    if (!*passphrase)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: empty passphrase");
    rc = params_ok(n, EL_BACKUP_R, p, err, errlen);
    if (rc)
        return rc;
    memcpy(s.salt, salt, sizeof s.salt);
    memcpy(s.nonce, nonce, sizeof s.nonce);
    rc = plaintext_of(id, pt, err, errlen);
    if (rc)
        return rc;
    rc = derive_key(passphrase, &s, key, err, errlen);
    if (rc == EL_OK) {
        rc = gcm(1, key, &s, pt);
        if (rc)
            el_seterr(err, errlen, rc, "backup: AES-256-GCM encryption failed");
    }
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(pt, sizeof pt);
    if (rc)
        return rc;
    return write_sealed(&s, json, err, errlen);
}

int el_backup_export(const el_identity *id, const char *passphrase, char **json, char *err,
                     size_t errlen)
{
    uint8_t rnd[EL_BACKUP_SALT_LEN + EL_BACKUP_NONCE_LEN];
    if (json)
        *json = NULL;
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "backup: RAND_bytes failed");
    return el_backup_export_params(id, passphrase, EL_BACKUP_N_DEFAULT, 1, rnd,
                                   rnd + EL_BACKUP_SALT_LEN, json, err, errlen);
}

/* ---- JSON reading ----------------------------------------------------- */

static int get_uint(json_t *doc, const char *name, uint64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(doc, name);
    if (!v)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: member \"%s\" missing", name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "backup: member \"%s\" is not a non-negative integer", name);
    *out = (uint64_t)json_integer_value(v);
    return EL_OK;
}

/* Exactly `n` bytes of canonical unpadded base64url. */
static int get_b64(json_t *doc, const char *name, uint8_t *out, size_t n, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(doc, name);
    if (!v)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: member \"%s\" missing", name);
    const char *text = json_string_value(v);
    size_t len = text ? json_string_length(v) : 0;
    if (!text || len != EL_B64URL_LEN(n) ||
        el_b64url_decode(text, len, out, n) != (ssize_t)n)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "backup: member \"%s\" is not base64url of %zu bytes", name, n);
    return EL_OK;
}

static int get_sealed(json_t *doc, sealed *s, char *err, size_t errlen)
{
    uint64_t n = 0, r = 0, p = 0;
    int rc = get_uint(doc, "n", &n, err, errlen);
    if (rc == EL_OK)
        rc = get_uint(doc, "r", &r, err, errlen);
    if (rc == EL_OK)
        rc = get_uint(doc, "p", &p, err, errlen);
    if (rc == EL_OK)
        rc = params_ok(n, r, p, err, errlen);
    if (rc == EL_OK)
        rc = get_b64(doc, "salt", s->salt, sizeof s->salt, err, errlen);
    if (rc == EL_OK)
        rc = get_b64(doc, "nonce", s->nonce, sizeof s->nonce, err, errlen);
    if (rc == EL_OK)
        rc = get_b64(doc, "ct", s->ct, sizeof s->ct, err, errlen);
    s->n = (uint32_t)n;
    s->r = (uint32_t)r;
    s->p = (uint32_t)p;
    return rc;
}

static int open_sealed(json_t *doc, const char *passphrase, el_identity **out, char *err,
                       size_t errlen)
{
    sealed s;
    uint8_t key[KEY_LEN], pt[EL_BACKUP_PT_LEN];
    int rc = get_sealed(doc, &s, err, errlen);
    if (rc)
        return rc;
    rc = derive_key(passphrase, &s, key, err, errlen);
    if (rc == EL_OK) {
        rc = gcm(0, key, &s, pt);
        if (rc)
            el_seterr(err, errlen, rc, "%s", msg_bad_pass);
    }
    OPENSSL_cleanse(key, sizeof key);
    if (rc == EL_OK)
        rc = identity_of(pt, out, err, errlen);
    OPENSSL_cleanse(pt, sizeof pt);
    return rc;
}

static int open_plain(json_t *doc, el_identity **out, char *err, size_t errlen)
{
    uint8_t pt[EL_BACKUP_PT_LEN];
    int rc = get_b64(doc, "keys", pt, sizeof pt, err, errlen);
    json_t *keys = json_object_get(doc, "keys");
    if (json_is_string(keys))
        OPENSSL_cleanse((char *)json_string_value(keys), json_string_length(keys));
    if (rc == EL_OK)
        rc = identity_of(pt, out, err, errlen);
    OPENSSL_cleanse(pt, sizeof pt);
    return rc;
}

/* Which kind of document this is; "none" only where allow_none. Returns
 * 1 for scrypt, 0 for none, or a negative el_err. */
static int doc_kind(json_t *doc, int allow_none, char *err, size_t errlen)
{
    uint64_t version = 0;
    if (!json_is_object(doc))
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: not a JSON object");
    int rc = get_uint(doc, "echolink_backup", &version, err, errlen);
    if (rc)
        return rc;
    if (version != 1)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "backup: version %llu is not supported (this build reads 1)",
                         (unsigned long long)version);
    const char *kdf = json_string_value(json_object_get(doc, "kdf"));
    if (!kdf)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: member \"kdf\" missing");
    if (strcmp(kdf, "scrypt") == 0)
        return 1;
    if (strcmp(kdf, "none") == 0) {
        if (allow_none)
            return 0;
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "backup: this is an unencrypted key file, not a backup");
    }
    return el_seterr(err, errlen, EL_ERR_INVALID, "backup: unknown kdf \"%.32s\"", kdf);
}

static json_t *parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    /* Duplicate members are refused: two readers that pick different
     * copies of "n" or "ct" must not be able to disagree about a file. */
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        el_seterr(err, errlen, EL_ERR_INVALID, "backup: not valid JSON: %s (line %d)",
                  jerr.text, jerr.line);
    return doc;
}

/* Parses `text` and opens it. passphrase NULL: only "none" documents open. */
static int open_text(const char *text, size_t len, const char *passphrase, int allow_none,
                     const char *path, el_identity **out, char *err, size_t errlen)
{
    json_t *doc = parse(text, len, err, errlen);
    if (!doc)
        return EL_ERR_INVALID;
    int rc = doc_kind(doc, allow_none, err, errlen);
    if (rc == 0) {
        rc = open_plain(doc, out, err, errlen);
    } else if (rc == 1 && !passphrase) {
        rc = el_seterr(err, errlen, EL_ERR_DENIED, "key file \"%s\" is encrypted; a "
                       "passphrase is needed", path ? path : "");
    } else if (rc == 1) {
        rc = open_sealed(doc, passphrase, out, err, errlen);
    }
    json_decref(doc);
    return rc;
}

int el_backup_import(const char *json, const char *passphrase, el_identity **out, char *err,
                     size_t errlen)
{
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: NULL argument");
    *out = NULL;
    if (!json || !passphrase)
        return el_seterr(err, errlen, EL_ERR_INVALID, "backup: NULL argument");
    return open_text(json, strlen(json), passphrase, 0, NULL, out, err, errlen);
}

/* ---- key files -------------------------------------------------------- */

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

/* Writes `text` to a fresh 0600 temporary file next to `path` and moves it
 * into place: rename() to replace, link() to refuse an existing file (link
 * fails with EEXIST instead of overwriting, atomically). */
static int install(const char *path, const char *text, unsigned flags, char *err,
                   size_t errlen)
{
    char tmp[PATH_MAX];
    int rc = EL_ERR_IO;
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp)
        return el_seterr(err, errlen, EL_ERR_INVALID, "key file path too long");
    int fd = mkstemp(tmp); /* mode 0600 whatever the umask */
    if (fd < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "cannot create a file next to \"%s\": %s",
                         path, strerror(errno));
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
        el_seterr(err, errlen, rc, "cannot write \"%s\": %s", tmp, strerror(errno));
        close(fd);
        goto out;
    }
    if (close(fd) != 0) {
        el_seterr(err, errlen, rc, "cannot write \"%s\": %s", tmp, strerror(errno));
        goto out;
    }
    if (flags & EL_BACKUP_REPLACE) {
        if (rename(tmp, path) != 0) {
            el_seterr(err, errlen, rc, "cannot rename to \"%s\": %s", path, strerror(errno));
            goto out;
        }
        return EL_OK;
    }
    if (link(tmp, path) != 0) {
        if (errno == EEXIST)
            rc = el_seterr(err, errlen, EL_ERR_EXISTS,
                           "key file \"%s\" already exists; not overwriting it", path);
        else
            el_seterr(err, errlen, rc, "cannot create \"%s\": %s", path, strerror(errno));
        goto out;
    }
    rc = EL_OK;
out:
    unlink(tmp);
    return rc;
}

int el_backup_save_file(const char *path, const el_identity *id, const char *passphrase,
                        unsigned flags, char *err, size_t errlen)
{
    char *text = NULL;
    uint8_t pt[EL_BACKUP_PT_LEN];
    int rc;
    if (!path || !*path || !id)
        return el_seterr(err, errlen, EL_ERR_INVALID, "key file: NULL argument");
    if (passphrase) {
        rc = el_backup_export(id, passphrase, &text, err, errlen);
    } else {
        rc = plaintext_of(id, pt, err, errlen);
        if (rc == EL_OK)
            rc = write_plain(pt, &text, err, errlen);
        OPENSSL_cleanse(pt, sizeof pt);
    }
    if (rc)
        return rc;
    rc = install(path, text, flags, err, errlen);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return rc;
}

/* Like ssh with its private keys: a key file others can read (or write) is
 * refused outright rather than used, so the mistake gets fixed. */
static int check_mode(const char *path, const struct stat *st, char *err, size_t errlen)
{
    unsigned mode = (unsigned)st->st_mode & 07777;
    if (!S_ISREG(st->st_mode))
        return el_seterr(err, errlen, EL_ERR_INVALID, "key file \"%s\" is not a regular file",
                         path);
    if (mode & 077)
        return el_seterr(err, errlen, EL_ERR_DENIED,
                         "key file \"%s\" is %s by others (mode %04o); chmod 600 it", path,
                         (mode & 044) ? "readable" : "accessible", mode);
    if (st->st_size > EL_BACKUP_FILE_MAX)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE,
                         "key file \"%s\" is larger than %d bytes", path, EL_BACKUP_FILE_MAX);
    return EL_OK;
}

/* Reads the whole file into buf (at most EL_BACKUP_FILE_MAX bytes). */
static int read_all(int fd, const char *path, char *buf, size_t *len, char *err, size_t errlen)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, EL_BACKUP_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return el_seterr(err, errlen, EL_ERR_IO, "cannot read key file \"%s\": %s", path,
                             strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > EL_BACKUP_FILE_MAX)
            return el_seterr(err, errlen, EL_ERR_TOO_LARGE,
                             "key file \"%s\" is larger than %d bytes", path,
                             EL_BACKUP_FILE_MAX);
    }
    *len = n;
    return EL_OK;
}

int el_backup_load_file(const char *path, const char *passphrase, el_identity **out,
                        char *err, size_t errlen)
{
    struct stat st;
    size_t len = 0;
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "key file: NULL argument");
    *out = NULL;
    if (!path)
        return el_seterr(err, errlen, EL_ERR_INVALID, "key file: NULL argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return el_seterr(err, errlen, errno == ENOENT ? EL_ERR_NOT_FOUND : EL_ERR_IO,
                         "cannot open key file \"%s\": %s", path, strerror(errno));
    /* fstat on the opened descriptor: the file checked is the file read. */
    int rc = fstat(fd, &st) == 0
                 ? check_mode(path, &st, err, errlen)
                 : el_seterr(err, errlen, EL_ERR_IO, "cannot stat key file \"%s\": %s", path,
                             strerror(errno));
    char *buf = rc ? NULL : malloc(EL_BACKUP_FILE_MAX + 1);
    if (rc == EL_OK && !buf)
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    if (rc == EL_OK)
        rc = read_all(fd, path, buf, &len, err, errlen);
    close(fd);
    if (rc == EL_OK)
        rc = open_text(buf, len, passphrase, 1, path, out, err, errlen);
    if (buf) {
        OPENSSL_cleanse(buf, EL_BACKUP_FILE_MAX + 1);
        free(buf);
    }
    return rc;
}
