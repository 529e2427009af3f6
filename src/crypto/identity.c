/* identity.c - identity keys, bundles, peer IDs, login signatures (see
 * identity.h and docs/PROTOCOL.md §2). */
#include "crypto/identity.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/backup.h"

/* Domain-separation prefixes. sizeof() of each array counts the string's
 * terminating NUL, which is exactly the single 0x00 byte the protocol puts
 * after each label, so the arrays are hashed/signed with their full size. */
static const char dom_static_key[] = "echolink-v1-static-key";
static const char dom_peer_id[] = "echolink-v1-peer-id";
static const char dom_login[] = "echolink-v1-login";

_Static_assert(EL_ID_KEY_B64_LEN == EL_B64URL_LEN(EL_ID_KEY_LEN), "key b64 length");
_Static_assert(EL_ID_SIG_B64_LEN == EL_B64URL_LEN(EL_ID_SIG_LEN), "sig b64 length");
_Static_assert(EL_ID_NONCE_B64_LEN == EL_B64URL_LEN(EL_ID_NONCE_LEN), "nonce b64 length");
_Static_assert(EL_PEER_ID_LEN == EL_BASE32_LEN(20), "peer id length");

/* Longest signed messages; both are built on the stack. */
#define STATIC_MSG_LEN (sizeof dom_static_key + EL_ID_KEY_LEN)
#define LOGIN_MSG_MAX (sizeof dom_login + EL_ID_NONCE_LEN + EL_ID_SID_MAX)

struct el_identity {
    EVP_PKEY *ik;       /* Ed25519 private key */
    EVP_PKEY *sk;       /* X25519 private key */
    el_id_bundle bundle;
    char peer_id[EL_PEER_ID_LEN + 1];
};

/* ---- helpers ---------------------------------------------------------- */

/* Decodes one field that must be canonical base64url of exactly `n` bytes.
 * The length is checked first (bounded scan) so that the error says whether
 * the text is the wrong size or has bad characters/trailing bits. */
static int decode_field(const char *name, const char *text, uint8_t *out, size_t n,
                        char *err, size_t errlen)
{
    size_t want = EL_B64URL_LEN(n);
    if (!text)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: missing", name);
    size_t len = strnlen(text, want + 1);
    if (len != want)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "%s: expected %zu base64url characters (%zu bytes, no padding), got %s%zu",
                         name, want, n, len > want ? "more than " : "", len > want ? want : len);
    if (el_b64url_decode(text, len, out, n) != (ssize_t)n)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "%s: not canonical base64url (RFC 4648 §5, unpadded)", name);
    return EL_OK;
}

/* The protocol calls sid ASCII; we accept printable ASCII only so that no
 * encoding question (UTF-8 vs Latin-1, embedded controls) can make two
 * implementations sign different bytes for the "same" sid. */
static int sid_ok(const char *sid, size_t *lenp)
{
    if (!sid)
        return 0;
    size_t len = strnlen(sid, EL_ID_SID_MAX + 1);
    if (len == 0 || len > EL_ID_SID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)sid[i] < 0x21 || (unsigned char)sid[i] > 0x7e)
            return 0;
    *lenp = len;
    return 1;
}

static size_t login_msg(uint8_t msg[LOGIN_MSG_MAX], const uint8_t nonce[EL_ID_NONCE_LEN],
                        const char *sid, size_t sid_len)
{
    memcpy(msg, dom_login, sizeof dom_login);
    memcpy(msg + sizeof dom_login, nonce, EL_ID_NONCE_LEN);
    memcpy(msg + sizeof dom_login + EL_ID_NONCE_LEN, sid, sid_len);
    return sizeof dom_login + EL_ID_NONCE_LEN + sid_len;
}

static void static_key_msg(uint8_t msg[STATIC_MSG_LEN], const uint8_t sk[EL_ID_KEY_LEN])
{
    memcpy(msg, dom_static_key, sizeof dom_static_key);
    memcpy(msg + sizeof dom_static_key, sk, EL_ID_KEY_LEN);
}

/* y-coordinates of the Ed25519 points of order 1, 2, 4 and 8, including the
 * non-canonical spellings p and p+1 of y = 0 and y = 1 (the libsodium
 * blocklist; gen-identity.mjs recomputes it from the curve equation).
 *
 * OpenSSL verifies cofactorless and accepts small-order points: with the
 * identity point as ik, (R = identity, S = 0) is a valid signature of every
 * message, and any key owner can craft a signature with R = identity. The
 * WebCrypto spec says to reject both, but browsers and Node differ in whether
 * they do. So we reject small-order ik and R ourselves, here and in
 * web/lib/identity.js: every EchoLink verifier then gives the same answer,
 * and honest keys and signatures (never of small order) are unaffected. */
static const uint8_t small_order_y[][EL_ID_KEY_LEN] = {
    {0},
    {1},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

/* Keys and signatures are public: a plain comparison is fine here. */
static int small_order(const uint8_t pt[EL_ID_KEY_LEN])
{
    for (size_t i = 0; i < sizeof small_order_y / sizeof small_order_y[0]; i++) {
        if (memcmp(pt, small_order_y[i], EL_ID_KEY_LEN - 1) == 0 &&
            (pt[EL_ID_KEY_LEN - 1] & 0x7f) == small_order_y[i][EL_ID_KEY_LEN - 1])
            return 1;
    }
    return 0;
}

/* Ed25519 verification. OpenSSL rejects non-canonical S (S >= L), so a
 * signature cannot be re-encoded into a second valid one. */
static int ed25519_verify(const uint8_t pub[EL_ID_KEY_LEN], const uint8_t *msg, size_t len,
                          const uint8_t sig[EL_ID_SIG_LEN])
{
    int rc = EL_ERR_CRYPTO;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    if (small_order(pub) || small_order(sig))
        return EL_ERR_CRYPTO;
    pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, EL_ID_KEY_LEN);
    if (!pk)
        goto out;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        goto out;
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) != 1)
        goto out;
    if (EVP_DigestVerify(ctx, sig, EL_ID_SIG_LEN, msg, len) == 1)
        rc = EL_OK;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

static int ed25519_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[EL_ID_SIG_LEN])
{
    int rc = EL_ERR_CRYPTO;
    size_t siglen = EL_ID_SIG_LEN;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        goto out;
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1)
        goto out;
    if (EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1 || siglen != EL_ID_SIG_LEN)
        goto out;
    rc = EL_OK;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- public bundle ---------------------------------------------------- */

int el_id_bundle_verify(const el_id_bundle *b)
{
    uint8_t msg[STATIC_MSG_LEN];
    if (!b)
        return EL_ERR_CRYPTO;
    static_key_msg(msg, b->sk);
    return ed25519_verify(b->ik, msg, sizeof msg, b->sk_sig);
}

int el_id_bundle_from_b64(el_id_bundle *out, const char *ik, const char *sk,
                          const char *sk_sig, char *err, size_t errlen)
{
    int rc;
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "no output bundle");
    rc = decode_field("ik", ik, out->ik, EL_ID_KEY_LEN, err, errlen);
    if (rc)
        goto fail;
    rc = decode_field("sk", sk, out->sk, EL_ID_KEY_LEN, err, errlen);
    if (rc)
        goto fail;
    rc = decode_field("sk_sig", sk_sig, out->sk_sig, EL_ID_SIG_LEN, err, errlen);
    if (rc)
        goto fail;
    rc = el_id_bundle_verify(out);
    if (rc) {
        el_seterr(err, errlen, rc, "sk_sig: signature by ik over sk does not verify");
        goto fail;
    }
    return EL_OK;
fail:
    /* A half-filled bundle must not be mistaken for a checked one. */
    memset(out, 0, sizeof *out);
    return rc;
}

int el_id_bundle_to_b64(const el_id_bundle *b, char ik[EL_ID_KEY_B64_SIZE],
                        char sk[EL_ID_KEY_B64_SIZE], char sk_sig[EL_ID_SIG_B64_SIZE])
{
    if (!b || !ik || !sk || !sk_sig)
        return EL_ERR_INVALID;
    /* Sizes are fixed by the types, so the encoders cannot run out of room. */
    el_b64url_encode(b->ik, EL_ID_KEY_LEN, ik, EL_ID_KEY_B64_SIZE);
    el_b64url_encode(b->sk, EL_ID_KEY_LEN, sk, EL_ID_KEY_B64_SIZE);
    el_b64url_encode(b->sk_sig, EL_ID_SIG_LEN, sk_sig, EL_ID_SIG_B64_SIZE);
    return EL_OK;
}

/* ---- peer ID ---------------------------------------------------------- */

int el_id_peer_id(const uint8_t ik[EL_ID_KEY_LEN], char out[EL_PEER_ID_LEN + 1])
{
    uint8_t buf[sizeof dom_peer_id + EL_ID_KEY_LEN];
    uint8_t md[32];
    unsigned int mdlen = 0;

    if (!out)
        return EL_ERR_INVALID;
    out[0] = '\0';
    if (!ik)
        return EL_ERR_INVALID;
    memcpy(buf, dom_peer_id, sizeof dom_peer_id);
    memcpy(buf + sizeof dom_peer_id, ik, EL_ID_KEY_LEN);
    if (EVP_Digest(buf, sizeof buf, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof md)
        return EL_ERR_CRYPTO;
    /* 20 bytes = 160 bits = exactly 32 base32 digits, so no padding question. */
    el_base32_encode(md, 20, out, EL_PEER_ID_LEN + 1);
    return EL_OK;
}

int el_id_valid_peer_id(const char *s)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < EL_PEER_ID_LEN; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
            return 0; /* also stops at an early NUL */
    }
    return s[EL_PEER_ID_LEN] == '\0';
}

/* ---- login ------------------------------------------------------------ */

int el_id_verify_login(const el_id_bundle *b, const uint8_t nonce[EL_ID_NONCE_LEN],
                       const char *sid, const uint8_t sig[EL_ID_SIG_LEN])
{
    uint8_t msg[LOGIN_MSG_MAX];
    size_t sid_len;
    if (!b || !nonce || !sig || !sid_ok(sid, &sid_len))
        return EL_ERR_CRYPTO;
    size_t len = login_msg(msg, nonce, sid, sid_len);
    return ed25519_verify(b->ik, msg, len, sig);
}

int el_id_verify_login_b64(const el_id_bundle *b, const uint8_t nonce[EL_ID_NONCE_LEN],
                           const char *sid, const char *sig_b64)
{
    uint8_t sig[EL_ID_SIG_LEN];
    if (decode_field("sig", sig_b64, sig, sizeof sig, NULL, 0) != EL_OK)
        return EL_ERR_INVALID;
    return el_id_verify_login(b, nonce, sid, sig);
}

/* ---- private identity ------------------------------------------------- */

int el_identity_new(el_identity **out, const uint8_t ik_seed[EL_ID_KEY_LEN],
                    const uint8_t sk_private[EL_ID_KEY_LEN], char *err, size_t errlen)
{
    int rc;
    uint8_t msg[STATIC_MSG_LEN];
    size_t len;
    el_identity *id = NULL;

    if (!out || !ik_seed || !sk_private)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    *out = NULL;
    id = calloc(1, sizeof *id);
    if (!id)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");

    rc = EL_ERR_CRYPTO;
    id->ik = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, ik_seed, EL_ID_KEY_LEN);
    if (!id->ik) {
        el_seterr(err, errlen, rc, "cannot load the Ed25519 identity key");
        goto fail;
    }
    id->sk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk_private, EL_ID_KEY_LEN);
    if (!id->sk) {
        el_seterr(err, errlen, rc, "cannot load the X25519 static key");
        goto fail;
    }
    len = EL_ID_KEY_LEN;
    if (EVP_PKEY_get_raw_public_key(id->ik, id->bundle.ik, &len) != 1 || len != EL_ID_KEY_LEN) {
        el_seterr(err, errlen, rc, "cannot derive the identity public key");
        goto fail;
    }
    len = EL_ID_KEY_LEN;
    if (EVP_PKEY_get_raw_public_key(id->sk, id->bundle.sk, &len) != 1 || len != EL_ID_KEY_LEN) {
        el_seterr(err, errlen, rc, "cannot derive the static public key");
        goto fail;
    }
    static_key_msg(msg, id->bundle.sk);
    rc = ed25519_sign(id->ik, msg, sizeof msg, id->bundle.sk_sig);
    if (rc) {
        el_seterr(err, errlen, rc, "cannot sign the static key");
        goto fail;
    }
    /* Self-check: a bundle we hand out must be one peers accept. */
    rc = el_id_bundle_verify(&id->bundle);
    if (rc) {
        el_seterr(err, errlen, rc, "own sk_sig does not verify");
        goto fail;
    }
    rc = el_id_peer_id(id->bundle.ik, id->peer_id);
    if (rc) {
        el_seterr(err, errlen, rc, "cannot compute the peer ID");
        goto fail;
    }
    *out = id;
    return EL_OK;
fail:
    el_identity_free(id);
    return rc;
}

int el_identity_generate(el_identity **out, char *err, size_t errlen)
{
    uint8_t seeds[2 * EL_ID_KEY_LEN];
    int rc;
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    *out = NULL;
    if (RAND_bytes(seeds, sizeof seeds) != 1) {
        rc = el_seterr(err, errlen, EL_ERR_CRYPTO, "RAND_bytes failed");
    } else {
        rc = el_identity_new(out, seeds, seeds + EL_ID_KEY_LEN, err, errlen);
    }
    OPENSSL_cleanse(seeds, sizeof seeds);
    return rc;
}

void el_identity_free(el_identity *id)
{
    if (!id)
        return;
    /* EVP_PKEY_free clears the ECX private key buffers itself. */
    EVP_PKEY_free(id->ik);
    EVP_PKEY_free(id->sk);
    OPENSSL_cleanse(id, sizeof *id);
    free(id);
}

const el_id_bundle *el_identity_bundle(const el_identity *id)
{
    return id ? &id->bundle : NULL;
}

const char *el_identity_peer_id(const el_identity *id)
{
    return id ? id->peer_id : NULL;
}

int el_identity_sign_login(const el_identity *id, const uint8_t nonce[EL_ID_NONCE_LEN],
                           const char *sid, uint8_t sig[EL_ID_SIG_LEN])
{
    uint8_t msg[LOGIN_MSG_MAX];
    size_t sid_len;
    if (!id || !nonce || !sig || !sid_ok(sid, &sid_len))
        return EL_ERR_INVALID;
    size_t len = login_msg(msg, nonce, sid, sid_len);
    return ed25519_sign(id->ik, msg, len, sig);
}

int el_identity_sign_login_b64(const el_identity *id, const uint8_t nonce[EL_ID_NONCE_LEN],
                               const char *sid, char sig_b64[EL_ID_SIG_B64_SIZE])
{
    uint8_t sig[EL_ID_SIG_LEN];
    if (!sig_b64)
        return EL_ERR_INVALID;
    sig_b64[0] = '\0';
    int rc = el_identity_sign_login(id, nonce, sid, sig);
    if (rc)
        return rc;
    el_b64url_encode(sig, sizeof sig, sig_b64, EL_ID_SIG_B64_SIZE);
    return EL_OK;
}

static int raw_private(EVP_PKEY *key, uint8_t out[EL_ID_KEY_LEN])
{
    size_t len = EL_ID_KEY_LEN;
    if (EVP_PKEY_get_raw_private_key(key, out, &len) != 1 || len != EL_ID_KEY_LEN) {
        OPENSSL_cleanse(out, EL_ID_KEY_LEN);
        return EL_ERR_CRYPTO;
    }
    return EL_OK;
}

int el_identity_sk_private(const el_identity *id, uint8_t out[EL_ID_KEY_LEN])
{
    if (!out)
        return EL_ERR_INVALID;
    if (!id) {
        memset(out, 0, EL_ID_KEY_LEN);
        return EL_ERR_INVALID;
    }
    return raw_private(id->sk, out);
}

int el_identity_ik_seed(const el_identity *id, uint8_t out[EL_ID_KEY_LEN])
{
    if (!out)
        return EL_ERR_INVALID;
    if (!id) {
        memset(out, 0, EL_ID_KEY_LEN);
        return EL_ERR_INVALID;
    }
    return raw_private(id->ik, out);
}

int el_id_verify(const uint8_t ik[EL_ID_KEY_LEN], const uint8_t *msg, size_t len,
                 const uint8_t sig[EL_ID_SIG_LEN])
{
    if (!ik || (!msg && len) || !sig)
        return EL_ERR_CRYPTO;
    return ed25519_verify(ik, msg, len, sig);
}

int el_identity_sign(const el_identity *id, const uint8_t *msg, size_t len,
                     uint8_t sig[EL_ID_SIG_LEN])
{
    if (!id || (!msg && len) || !sig)
        return EL_ERR_INVALID;
    return ed25519_sign(id->ik, msg, len, sig);
}

/* ---- public key file (el_identity.h) ----------------------------------- */

/* The public names of the C client's key file: the format, its checks and
 * its errors are backup.c's; here only the flag is translated, so that the
 * public header does not depend on backup.h. */
int el_identity_load(const char *path, const char *passphrase, el_identity **out, char *err,
                     size_t errlen)
{
    return el_backup_load_file(path, passphrase, out, err, errlen);
}

int el_identity_save(const el_identity *id, const char *path, const char *passphrase,
                     unsigned flags, char *err, size_t errlen)
{
    unsigned bflags = (flags & EL_IDENTITY_REPLACE) ? EL_BACKUP_REPLACE : 0;
    return el_backup_save_file(path, id, passphrase, bflags, err, errlen);
}
