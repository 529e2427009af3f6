/* noise.c - Noise_{XX,X}_25519_AESGCM_SHA256 on OpenSSL 3 EVP (see noise.h).
 *
 * Cost notes: every object fetches its algorithms once (EVP_*_fetch) and
 * keeps one context per primitive for its whole life, so a message costs no
 * allocation except the X25519 ones (EVP_PKEY objects, one derive context
 * per DH), which OpenSSL does not let us reuse. The AES-GCM context is keyed
 * once per key; each message only sets a new IV (key NULL), which skips the
 * key schedule. */
#include "crypto/noise.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "base/err.h"

#define KEYLEN EL_NOISE_KEYLEN
#define TAGLEN EL_NOISE_TAGLEN
#define IVLEN 12
/* EVP lengths are ints; nothing in EchoLink comes near this. */
#define AEAD_MAX ((size_t)INT_MAX / 2)

/* ---- CipherState -------------------------------------------------------- */

struct el_noise_cipher {
    EVP_CIPHER *alg;
    EVP_CIPHER_CTX *ctx; /* holds the key schedule; re-initialized per IV */
    int has_key;
    uint64_t n;
};

/* Noise AESGCM nonce: 32 zero bits, then u64(n) big-endian. */
static void gcm_iv(uint8_t iv[IVLEN], uint64_t n)
{
    memset(iv, 0, 4);
    for (int i = 0; i < 8; i++)
        iv[4 + i] = (uint8_t)(n >> (56 - 8 * i));
}

int el_noise_cipher_new(el_noise_cipher **out)
{
    el_noise_cipher *c;
    if (!out)
        return EL_ERR_INVALID;
    *out = NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return EL_ERR_NOMEM;
    c->alg = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    c->ctx = EVP_CIPHER_CTX_new();
    /* Bind the algorithm now so that later inits can pass cipher = NULL and
     * keep the provider context instead of rebuilding it. */
    if (!c->alg || !c->ctx || EVP_EncryptInit_ex2(c->ctx, c->alg, NULL, NULL, NULL) != 1) {
        el_noise_cipher_free(c);
        return EL_ERR_CRYPTO;
    }
    *out = c;
    return EL_OK;
}

int el_noise_cipher_set_key(el_noise_cipher *c, const uint8_t k[KEYLEN])
{
    if (!c || !k)
        return EL_ERR_INVALID;
    c->has_key = 0;
    if (EVP_EncryptInit_ex2(c->ctx, NULL, k, NULL, NULL) != 1)
        return EL_ERR_CRYPTO;
    c->has_key = 1;
    c->n = 0;
    return EL_OK;
}

int el_noise_cipher_has_key(const el_noise_cipher *c)
{
    return c && c->has_key;
}

void el_noise_cipher_set_nonce(el_noise_cipher *c, uint64_t n)
{
    if (c)
        c->n = n;
}

uint64_t el_noise_cipher_nonce(const el_noise_cipher *c)
{
    return c ? c->n : 0;
}

/* AES-256-GCM with the context's key and nonce `n`; writes ptlen + 16. */
static int gcm_seal(el_noise_cipher *c, uint64_t n, const uint8_t *ad, size_t adlen,
                    const uint8_t *pt, size_t ptlen, uint8_t *out)
{
    uint8_t iv[IVLEN];
    int l = 0, l2 = 0;
    gcm_iv(iv, n);
    if (EVP_EncryptInit_ex2(c->ctx, NULL, NULL, iv, NULL) != 1)
        return EL_ERR_CRYPTO;
    if (adlen && EVP_EncryptUpdate(c->ctx, NULL, &l, ad, (int)adlen) != 1)
        return EL_ERR_CRYPTO;
    l = 0;
    if (ptlen && EVP_EncryptUpdate(c->ctx, out, &l, pt, (int)ptlen) != 1)
        return EL_ERR_CRYPTO;
    if (EVP_EncryptFinal_ex(c->ctx, out + l, &l2) != 1 || (size_t)(l + l2) != ptlen)
        return EL_ERR_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_GET_TAG, TAGLEN, out + ptlen) != 1)
        return EL_ERR_CRYPTO;
    return EL_OK;
}

/* The inverse; ctlen excludes the tag. On failure `out` is zeroed. */
static int gcm_open(el_noise_cipher *c, uint64_t n, const uint8_t *ad, size_t adlen,
                    const uint8_t *ct, size_t ctlen, const uint8_t tag_in[TAGLEN], uint8_t *out)
{
    uint8_t iv[IVLEN], tag[TAGLEN];
    int l = 0, l2 = 0;
    /* copied first: with out == ct the tag sits right after what we write */
    memcpy(tag, tag_in, TAGLEN);
    gcm_iv(iv, n);
    if (EVP_DecryptInit_ex2(c->ctx, NULL, NULL, iv, NULL) != 1)
        goto fail;
    if (adlen && EVP_DecryptUpdate(c->ctx, NULL, &l, ad, (int)adlen) != 1)
        goto fail;
    l = 0;
    if (ctlen && EVP_DecryptUpdate(c->ctx, out, &l, ct, (int)ctlen) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_TAG, TAGLEN, tag) != 1)
        goto fail;
    if (EVP_DecryptFinal_ex(c->ctx, out + l, &l2) != 1 || (size_t)(l + l2) != ctlen)
        goto fail;
    return EL_OK;
fail:
    if (ctlen)
        OPENSSL_cleanse(out, ctlen);
    return EL_ERR_CRYPTO;
}

/* The shared body of encrypt (seal = 1) and decrypt: without a key the
 * input is copied through; with one, AES-GCM at nonce n, then n++. */
static int cipher_apply(el_noise_cipher *c, int seal, const uint8_t *ad, size_t adlen,
                        const uint8_t *in, size_t inlen, uint8_t *out, size_t cap,
                        size_t *outlen)
{
    int rc;
    size_t n_out;
    if (!c || !outlen || (adlen && !ad) || (inlen && !in) || !out)
        return EL_ERR_INVALID;
    *outlen = 0;
    if (!c->has_key) {
        if (cap < inlen)
            return EL_ERR_TOO_LARGE;
        if (inlen && out != in)
            memmove(out, in, inlen);
        *outlen = inlen;
        return EL_OK;
    }
    if (seal) {
        n_out = inlen + TAGLEN;
    } else {
        if (inlen < TAGLEN)
            return EL_ERR_CRYPTO; /* cannot even hold a tag: does not authenticate */
        n_out = inlen - TAGLEN;
    }
    if (inlen > AEAD_MAX || adlen > AEAD_MAX || cap < n_out)
        return EL_ERR_TOO_LARGE;
    if (c->n == UINT64_MAX)
        return EL_ERR_STATE;
    rc = seal ? gcm_seal(c, c->n, ad, adlen, in, inlen, out)
              : gcm_open(c, c->n, ad, adlen, in, n_out, in + n_out, out);
    if (rc)
        return rc;
    c->n++;
    *outlen = n_out;
    return EL_OK;
}

int el_noise_cipher_encrypt(el_noise_cipher *c, const uint8_t *ad, size_t adlen,
                            const uint8_t *pt, size_t ptlen,
                            uint8_t *out, size_t cap, size_t *outlen)
{
    return cipher_apply(c, 1, ad, adlen, pt, ptlen, out, cap, outlen);
}

int el_noise_cipher_decrypt(el_noise_cipher *c, const uint8_t *ad, size_t adlen,
                            const uint8_t *ct, size_t ctlen,
                            uint8_t *out, size_t cap, size_t *outlen)
{
    return cipher_apply(c, 0, ad, adlen, ct, ctlen, out, cap, outlen);
}

int el_noise_cipher_rekey(el_noise_cipher *c)
{
    static const uint8_t zeros[KEYLEN];
    uint8_t iv[IVLEN], k[KEYLEN];
    int l = 0, rc = EL_ERR_CRYPTO;
    if (!c)
        return EL_ERR_INVALID;
    if (!c->has_key)
        return EL_OK;
    /* Only the keystream part is needed: the tag of REKEY's encryption is
     * discarded by the spec, so Final is never called (the next init with a
     * new IV starts a fresh operation). */
    gcm_iv(iv, UINT64_MAX);
    if (EVP_EncryptInit_ex2(c->ctx, NULL, NULL, iv, NULL) == 1 &&
        EVP_EncryptUpdate(c->ctx, k, &l, zeros, KEYLEN) == 1 && l == KEYLEN &&
        EVP_EncryptInit_ex2(c->ctx, NULL, k, NULL, NULL) == 1)
        rc = EL_OK;
    OPENSSL_cleanse(k, sizeof k);
    if (rc)
        c->has_key = 0; /* half-done: refuse to go on with an unknown key */
    return rc;
}

void el_noise_cipher_free(el_noise_cipher *c)
{
    if (!c)
        return;
    EVP_CIPHER_CTX_free(c->ctx); /* the provider clears its key schedule */
    EVP_CIPHER_free(c->alg);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

/* ---- patterns ----------------------------------------------------------- */

enum { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS };

#define MAX_MSGS 3
#define MAX_TOKENS 5

typedef struct {
    const char *name;
    int pre_rs;                       /* responder's s is a pre-message */
    int nmsgs;
    uint8_t msgs[MAX_MSGS][MAX_TOKENS];
} pattern_def;

static const pattern_def patterns[] = {
    [EL_NOISE_XX] = {"Noise_XX_25519_AESGCM_SHA256", 0, 3,
                     {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}}},
    [EL_NOISE_X] = {"Noise_X_25519_AESGCM_SHA256", 1, 1, {{T_E, T_ES, T_S, T_SS}}},
};

/* ---- HandshakeState ----------------------------------------------------- */

struct el_noise {
    const pattern_def *p;
    int initiator;
    int index;     /* next message of the pattern */
    int in_msg;    /* tokens of message `index` done, payload pending */
    int failed;
    int split;

    /* SymmetricState */
    uint8_t ck[KEYLEN];
    uint8_t h[KEYLEN];
    el_noise_cipher *cs;
    EVP_MD *md;
    EVP_MD_CTX *mdctx;
    EVP_MAC *mac;
    EVP_MAC_CTX *macctx;

    EVP_PKEY *s, *e;
    uint8_t s_pub[KEYLEN], e_pub[KEYLEN];
    uint8_t rs[KEYLEN], re[KEYLEN];
    int has_rs, has_re;
    EVP_PKEY *rs_pk, *re_pk; /* made on first use, reused by later DHs */
    uint8_t e_fixed[KEYLEN];
    int has_e_fixed;
};

static int sha256_2(el_noise *n, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                    uint8_t out[KEYLEN])
{
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(n->mdctx, n->md, NULL) != 1 ||
        EVP_DigestUpdate(n->mdctx, a, alen) != 1 ||
        (blen && EVP_DigestUpdate(n->mdctx, b, blen) != 1) ||
        EVP_DigestFinal_ex(n->mdctx, out, &len) != 1 || len != KEYLEN)
        return EL_ERR_CRYPTO;
    return EL_OK;
}

static int mix_hash(el_noise *n, const uint8_t *data, size_t len)
{
    return sha256_2(n, n->h, KEYLEN, data, len, n->h);
}

static int hmac(el_noise *n, const uint8_t key[KEYLEN], const uint8_t *a, size_t alen,
                const uint8_t *b, size_t blen, uint8_t out[KEYLEN])
{
    size_t len = 0;
    if (EVP_MAC_init(n->macctx, key, KEYLEN, NULL) != 1 ||
        (alen && EVP_MAC_update(n->macctx, a, alen) != 1) ||
        (blen && EVP_MAC_update(n->macctx, b, blen) != 1) ||
        EVP_MAC_final(n->macctx, out, &len, KEYLEN) != 1 || len != KEYLEN)
        return EL_ERR_CRYPTO;
    return EL_OK;
}

/* Noise HKDF(ck, ikm) with two outputs (RFC 5869 with salt = ck, empty
 * info): temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01);
 * o2 = HMAC(temp, o1 ‖ 0x02). */
static int hkdf2(el_noise *n, const uint8_t *ikm, size_t ikmlen, uint8_t o1[KEYLEN],
                 uint8_t o2[KEYLEN])
{
    static const uint8_t one = 1, two = 2;
    uint8_t temp[KEYLEN];
    int rc = hmac(n, n->ck, ikm, ikmlen, NULL, 0, temp);
    if (!rc)
        rc = hmac(n, temp, &one, 1, NULL, 0, o1);
    if (!rc)
        rc = hmac(n, temp, o1, KEYLEN, &two, 1, o2);
    OPENSSL_cleanse(temp, sizeof temp);
    return rc;
}

static int mix_key(el_noise *n, const uint8_t ikm[KEYLEN])
{
    uint8_t ck[KEYLEN], k[KEYLEN];
    int rc = hkdf2(n, ikm, KEYLEN, ck, k);
    if (!rc) {
        memcpy(n->ck, ck, KEYLEN);
        rc = el_noise_cipher_set_key(n->cs, k);
    }
    OPENSSL_cleanse(ck, sizeof ck);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

static int encrypt_and_hash(el_noise *n, const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                            size_t *outlen)
{
    int rc = el_noise_cipher_encrypt(n->cs, n->h, KEYLEN, pt, len, out, cap, outlen);
    return rc ? rc : mix_hash(n, out, *outlen);
}

/* h changes only when the ciphertext authenticates, and the new h is taken
 * from the ciphertext before decryption so that out may overwrite it. */
static int decrypt_and_hash(el_noise *n, const uint8_t *ct, size_t len, uint8_t *out, size_t cap,
                            size_t *outlen)
{
    uint8_t h2[KEYLEN];
    int rc = sha256_2(n, n->h, KEYLEN, ct, len, h2);
    if (!rc)
        rc = el_noise_cipher_decrypt(n->cs, n->h, KEYLEN, ct, len, out, cap, outlen);
    if (!rc)
        memcpy(n->h, h2, KEYLEN);
    return rc;
}

static int raw_public(EVP_PKEY *k, uint8_t pub[KEYLEN])
{
    size_t len = KEYLEN;
    return EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == KEYLEN ? EL_OK : EL_ERR_CRYPTO;
}

/* An X25519 private key. When the public half is known (`known_pub`), it is
 * imported with the private one: OpenSSL then skips deriving it, which
 * costs a whole scalar multiplication. A wrong known_pub only breaks our
 * own handshakes (it is what we send and hash), never the peer's. */
static int load_private(const uint8_t priv[KEYLEN], const uint8_t *known_pub, EVP_PKEY **key,
                        uint8_t pub[KEYLEN])
{
    EVP_PKEY_CTX *ctx;
    OSSL_PARAM params[3];
    int ok;
    *key = NULL;
    if (!known_pub) {
        *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEYLEN);
        return *key ? raw_public(*key, pub) : EL_ERR_CRYPTO;
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, (void *)priv, KEYLEN);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)known_pub, KEYLEN);
    params[2] = OSSL_PARAM_construct_end();
    ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, key, EVP_PKEY_KEYPAIR, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return EL_ERR_CRYPTO;
    memcpy(pub, known_pub, KEYLEN);
    return EL_OK;
}

/* X25519(priv, peer) into out. A failed derivation or an all-zero result
 * (OpenSSL refuses the latter itself; we check anyway) both mean the peer
 * sent a low-order or unusable key: EL_ERR_INVALID. */
static int dh(EVP_PKEY *priv, EVP_PKEY **peer_pk, const uint8_t peer[KEYLEN], uint8_t out[KEYLEN])
{
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = KEYLEN;
    uint8_t acc = 0;
    int rc = EL_ERR_INVALID;
    if (!priv)
        return EL_ERR_STATE;
    if (!*peer_pk) {
        *peer_pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, KEYLEN);
        if (!*peer_pk)
            return EL_ERR_INVALID;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    if (!ctx)
        return EL_ERR_NOMEM;
    if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer_ex(ctx, *peer_pk, 0) != 1 ||
        EVP_PKEY_derive(ctx, out, &len) != 1 || len != KEYLEN)
        goto out;
    for (size_t i = 0; i < KEYLEN; i++)
        acc |= out[i];
    if (acc)
        rc = EL_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    if (rc)
        OPENSSL_cleanse(out, KEYLEN);
    return rc;
}

/* ee/es/se/ss: the first letter is the initiator's key, the second the
 * responder's; we use our private half and their public half. */
static int dh_token(el_noise *n, int t)
{
    int i_e = (t == T_EE || t == T_ES), r_e = (t == T_EE || t == T_SE);
    int mine_e = n->initiator ? i_e : r_e, theirs_e = n->initiator ? r_e : i_e;
    uint8_t out[KEYLEN];
    int rc;
    if (theirs_e && !n->has_re)
        return EL_ERR_STATE;
    if (!theirs_e && !n->has_rs)
        return EL_ERR_STATE;
    rc = dh(mine_e ? n->e : n->s, theirs_e ? &n->re_pk : &n->rs_pk, theirs_e ? n->re : n->rs, out);
    if (!rc)
        rc = mix_key(n, out);
    OPENSSL_cleanse(out, sizeof out);
    return rc;
}

static int new_ephemeral(el_noise *n)
{
    if (n->has_e_fixed) {
        int rc = load_private(n->e_fixed, NULL, &n->e, n->e_pub);
        OPENSSL_cleanse(n->e_fixed, KEYLEN);
        n->has_e_fixed = 0;
        return rc;
    }
    n->e = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    if (!n->e)
        return EL_ERR_CRYPTO;
    return raw_public(n->e, n->e_pub);
}

int el_noise_new(el_noise **out, el_noise_pattern pattern, int initiator,
                 const uint8_t *prologue, size_t prologue_len,
                 const uint8_t s_priv[KEYLEN], const uint8_t s_pub[KEYLEN], const uint8_t rs[KEYLEN])
{
    el_noise *n;
    size_t namelen;
    int rc;
    OSSL_PARAM params[2];

    if (!out)
        return EL_ERR_INVALID;
    *out = NULL;
    if ((pattern != EL_NOISE_XX && pattern != EL_NOISE_X) || !s_priv ||
        (prologue_len && !prologue))
        return EL_ERR_INVALID;
    if (pattern == EL_NOISE_X && initiator && !rs)
        return EL_ERR_INVALID;
    n = calloc(1, sizeof *n);
    if (!n)
        return EL_ERR_NOMEM;
    n->p = &patterns[pattern];
    n->initiator = initiator ? 1 : 0;

    rc = el_noise_cipher_new(&n->cs);
    if (rc)
        goto fail;
    rc = EL_ERR_CRYPTO;
    n->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    n->mdctx = EVP_MD_CTX_new();
    n->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    n->macctx = n->mac ? EVP_MAC_CTX_new(n->mac) : NULL;
    if (!n->md || !n->mdctx || !n->macctx)
        goto fail;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(n->macctx, params) != 1)
        goto fail;
    rc = load_private(s_priv, s_pub, &n->s, n->s_pub);
    if (rc)
        goto fail;

    /* InitializeSymmetric: h = name padded with zeros (both names are at
     * most 32 bytes), ck = h. */
    namelen = strlen(n->p->name);
    memcpy(n->h, n->p->name, namelen);
    memcpy(n->ck, n->h, KEYLEN);
    rc = mix_hash(n, prologue_len ? prologue : n->h, prologue_len);
    if (rc)
        goto fail;
    if (n->p->pre_rs) {
        if (n->initiator) {
            memcpy(n->rs, rs, KEYLEN);
            n->has_rs = 1;
        }
        rc = mix_hash(n, n->initiator ? n->rs : n->s_pub, KEYLEN);
        if (rc)
            goto fail;
    }
    *out = n;
    return EL_OK;
fail:
    el_noise_free(n);
    return rc;
}

int el_noise_set_ephemeral(el_noise *n, const uint8_t priv[KEYLEN])
{
    if (!n || !priv)
        return EL_ERR_INVALID;
    if (n->e || n->failed)
        return EL_ERR_STATE;
    memcpy(n->e_fixed, priv, KEYLEN);
    n->has_e_fixed = 1;
    return EL_OK;
}

int el_noise_is_complete(const el_noise *n)
{
    return n && n->index >= n->p->nmsgs;
}

int el_noise_my_turn(const el_noise *n)
{
    return n && !n->failed && !el_noise_is_complete(n) && ((n->index % 2 == 0) == (n->initiator == 1));
}

const uint8_t *el_noise_hash(const el_noise *n)
{
    return n ? n->h : NULL;
}

const uint8_t *el_noise_remote_static(const el_noise *n)
{
    return n && n->has_rs ? n->rs : NULL;
}

/* Bytes the tokens of the current message take on the wire. The cipher has
 * a key from the first DH on, so `s` after a DH token is encrypted. */
static size_t tokens_len(const el_noise *n)
{
    size_t len = 0;
    int keyed = el_noise_cipher_has_key(n->cs);
    for (const uint8_t *t = n->p->msgs[n->index]; t < n->p->msgs[n->index] + MAX_TOKENS && *t; t++) {
        if (*t == T_E)
            len += KEYLEN;
        else if (*t == T_S)
            len += KEYLEN + (keyed ? TAGLEN : 0);
        else
            keyed = 1;
    }
    return len;
}

/* Marks the handshake dead on any failure past the argument checks: Noise
 * gives no way to resume a half-processed message. */
static int fail(el_noise *n, int rc)
{
    if (rc)
        n->failed = 1;
    return rc;
}

/* The end of a token pass (read or write): on success the payload of
 * message `index` is next, and `o` bytes were written or read. */
static int tokens_done(el_noise *n, int rc, size_t o, size_t *done)
{
    if (rc)
        return fail(n, rc);
    n->in_msg = 1;
    *done = o;
    return EL_OK;
}

/* The end of a payload step (read or write): on success message `index` is
 * complete and the next one's tokens are due. */
static int payload_done(el_noise *n, int rc)
{
    if (rc)
        return fail(n, rc);
    n->in_msg = 0;
    n->index++;
    return EL_OK;
}

int el_noise_write_tokens(el_noise *n, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t o = 0, len;
    int rc = EL_OK;
    if (!n || !outlen || !out)
        return EL_ERR_INVALID;
    *outlen = 0;
    if (n->failed || n->in_msg || !el_noise_my_turn(n))
        return EL_ERR_STATE;
    if (cap < tokens_len(n))
        return EL_ERR_TOO_LARGE;
    for (const uint8_t *t = n->p->msgs[n->index]; !rc && t < n->p->msgs[n->index] + MAX_TOKENS && *t; t++) {
        if (*t == T_E) {
            if (n->e)
                return fail(n, EL_ERR_STATE);
            rc = new_ephemeral(n);
            if (!rc) {
                memcpy(out + o, n->e_pub, KEYLEN);
                o += KEYLEN;
                rc = mix_hash(n, n->e_pub, KEYLEN);
            }
        } else if (*t == T_S) {
            rc = encrypt_and_hash(n, n->s_pub, KEYLEN, out + o, cap - o, &len);
            o += len;
        } else {
            rc = dh_token(n, *t);
        }
    }
    return tokens_done(n, rc, o, outlen);
}

int el_noise_write_payload(el_noise *n, const uint8_t *payload, size_t plen,
                           uint8_t *out, size_t cap, size_t *outlen)
{
    int rc;
    if (!n || !outlen || !out || (plen && !payload))
        return EL_ERR_INVALID;
    *outlen = 0;
    if (n->failed || !n->in_msg || !el_noise_my_turn(n))
        return EL_ERR_STATE;
    if (plen > EL_NOISE_MSG_MAX || cap < plen + (el_noise_cipher_has_key(n->cs) ? TAGLEN : 0))
        return EL_ERR_TOO_LARGE;
    rc = encrypt_and_hash(n, payload, plen, out, cap, outlen);
    return payload_done(n, rc);
}

int el_noise_read_tokens(el_noise *n, const uint8_t *msg, size_t len, size_t *used)
{
    size_t o = 0, got;
    int rc = EL_OK;
    if (!n || !used || (len && !msg))
        return EL_ERR_INVALID;
    *used = 0;
    if (n->failed || n->in_msg || el_noise_is_complete(n) || el_noise_my_turn(n))
        return EL_ERR_STATE;
    if (len < tokens_len(n))
        return fail(n, EL_ERR_INVALID); /* a short message is not one of ours */
    for (const uint8_t *t = n->p->msgs[n->index]; !rc && t < n->p->msgs[n->index] + MAX_TOKENS && *t; t++) {
        if (*t == T_E) {
            if (n->has_re)
                return fail(n, EL_ERR_STATE);
            memcpy(n->re, msg + o, KEYLEN);
            n->has_re = 1;
            o += KEYLEN;
            rc = mix_hash(n, n->re, KEYLEN);
        } else if (*t == T_S) {
            size_t slen = KEYLEN + (el_noise_cipher_has_key(n->cs) ? TAGLEN : 0);
            if (n->has_rs)
                return fail(n, EL_ERR_STATE);
            rc = decrypt_and_hash(n, msg + o, slen, n->rs, KEYLEN, &got);
            if (!rc && got != KEYLEN)
                rc = EL_ERR_CRYPTO;
            if (!rc)
                n->has_rs = 1;
            o += slen;
        } else {
            rc = dh_token(n, *t);
        }
    }
    return tokens_done(n, rc, o, used);
}

int el_noise_read_payload(el_noise *n, const uint8_t *msg, size_t len,
                          uint8_t *out, size_t cap, size_t *outlen)
{
    int rc;
    if (!n || !outlen || !out || (len && !msg))
        return EL_ERR_INVALID;
    *outlen = 0;
    if (n->failed || !n->in_msg || el_noise_is_complete(n) || el_noise_my_turn(n))
        return EL_ERR_STATE;
    if (len > EL_NOISE_MSG_MAX)
        return fail(n, EL_ERR_TOO_LARGE);
    if (el_noise_cipher_has_key(n->cs) && len >= TAGLEN && cap < len - TAGLEN)
        return EL_ERR_TOO_LARGE;
    if (!el_noise_cipher_has_key(n->cs) && cap < len)
        return EL_ERR_TOO_LARGE;
    rc = decrypt_and_hash(n, msg, len, out, cap, outlen);
    return payload_done(n, rc);
}

int el_noise_write_message(el_noise *n, const uint8_t *payload, size_t plen,
                           uint8_t *out, size_t cap, size_t *outlen)
{
    size_t a = 0, b = 0;
    int rc;
    if (!outlen)
        return EL_ERR_INVALID;
    *outlen = 0;
    rc = el_noise_write_tokens(n, out, cap, &a);
    if (rc)
        return rc;
    rc = el_noise_write_payload(n, payload, plen, out + a, cap - a, &b);
    if (rc)
        return fail(n, rc); /* tokens are spent: the message cannot be redone */
    if (a + b > EL_NOISE_MSG_MAX)
        return fail(n, EL_ERR_TOO_LARGE);
    *outlen = a + b;
    return EL_OK;
}

int el_noise_read_message(el_noise *n, const uint8_t *msg, size_t len,
                          uint8_t *out, size_t cap, size_t *outlen)
{
    size_t used = 0;
    int rc;
    if (!outlen)
        return EL_ERR_INVALID;
    *outlen = 0;
    if (len > EL_NOISE_MSG_MAX)
        return n ? fail(n, EL_ERR_TOO_LARGE) : EL_ERR_INVALID;
    rc = el_noise_read_tokens(n, msg, len, &used);
    if (rc)
        return rc;
    rc = el_noise_read_payload(n, msg + used, len - used, out, cap, outlen);
    return rc ? fail(n, rc) : EL_OK;
}

int el_noise_split(el_noise *n, uint8_t k1[KEYLEN], uint8_t k2[KEYLEN])
{
    int rc;
    if (!n || !k1 || !k2)
        return EL_ERR_INVALID;
    if (n->failed || n->split || !el_noise_is_complete(n))
        return EL_ERR_STATE;
    rc = hkdf2(n, NULL, 0, k1, k2);
    OPENSSL_cleanse(n->ck, KEYLEN);
    n->split = 1;
    if (rc) {
        OPENSSL_cleanse(k1, KEYLEN);
        OPENSSL_cleanse(k2, KEYLEN);
    }
    return rc;
}

void el_noise_free(el_noise *n)
{
    if (!n)
        return;
    el_noise_cipher_free(n->cs);
    EVP_MD_CTX_free(n->mdctx);
    EVP_MD_free(n->md);
    EVP_MAC_CTX_free(n->macctx);
    EVP_MAC_free(n->mac);
    EVP_PKEY_free(n->s);
    EVP_PKEY_free(n->e);
    EVP_PKEY_free(n->rs_pk);
    EVP_PKEY_free(n->re_pk);
    OPENSSL_cleanse(n, sizeof *n);
    free(n);
}
