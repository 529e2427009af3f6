/* safety.c - safety numbers (see safety.h and docs/PROTOCOL.md §10.1). */
#include "crypto/safety.h"

#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"

/* sizeof counts the label's NUL, which is exactly the 0x00 byte the
 * protocol puts after it. */
static const char dom_safety[] = "echolink-v1-safety";

/* 5199 iterations after the first hash: 5200 SHA-512 calls per party make
 * brute-forcing a key whose number collides with a victim's costly, while
 * computing one number stays in the millisecond range. */
#define SAFETY_ITERATIONS 5199
#define SHA512_LEN 64
#define CHUNK_BYTES 5
#define CHUNK_DIGITS 5
#define CHUNK_MOD 100000u

_Static_assert(EL_SAFETY_HALF_LEN / CHUNK_DIGITS * CHUNK_BYTES <= SHA512_LEN, "chunks fit");

/* One SHA-512 of a ‖ b, reusing ctx (re-initialised each time, which is
 * cheaper than allocating a context per iteration). */
static int sha512_2(EVP_MD_CTX *ctx, const EVP_MD *md, const void *a, size_t alen,
                    const void *b, size_t blen, uint8_t out[SHA512_LEN])
{
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1 ||
        EVP_DigestUpdate(ctx, b, blen) != 1 || EVP_DigestFinal_ex(ctx, out, &len) != 1 ||
        len != SHA512_LEN)
        return EL_ERR_CRYPTO;
    return EL_OK;
}

/* The iterated hash of one party: H0 over label ‖ ik ‖ peer_id, then
 * H = SHA-512(H ‖ ik) SAFETY_ITERATIONS times. */
static int iterate(const uint8_t ik[EL_ID_KEY_LEN], const char peer_id[EL_PEER_ID_LEN],
                   uint8_t h[SHA512_LEN])
{
    uint8_t first[sizeof dom_safety + EL_ID_KEY_LEN];
    int rc = EL_ERR_CRYPTO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    /* An explicit fetch: the implicit EVP_sha512() would look the algorithm
     * up again on every EVP_DigestInit_ex2 of the loop. */
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA512", NULL);
    if (!ctx || !md)
        goto out;
    memcpy(first, dom_safety, sizeof dom_safety);
    memcpy(first + sizeof dom_safety, ik, EL_ID_KEY_LEN);
    rc = sha512_2(ctx, md, first, sizeof first, peer_id, EL_PEER_ID_LEN, h);
    for (int i = 0; rc == EL_OK && i < SAFETY_ITERATIONS; i++)
        rc = sha512_2(ctx, md, h, SHA512_LEN, ik, EL_ID_KEY_LEN, h);
out:
    EVP_MD_free(md);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* Six big-endian 40-bit chunks of h, each mod 100000 as 5 digits. */
static void digits_of(const uint8_t h[SHA512_LEN], char out[EL_SAFETY_HALF_LEN + 1])
{
    for (int c = 0; c < EL_SAFETY_HALF_LEN / CHUNK_DIGITS; c++) {
        uint64_t v = 0;
        for (int j = 0; j < CHUNK_BYTES; j++)
            v = v << 8 | h[c * CHUNK_BYTES + j];
        v %= CHUNK_MOD;
        for (int d = CHUNK_DIGITS - 1; d >= 0; d--) {
            out[c * CHUNK_DIGITS + d] = (char)('0' + v % 10);
            v /= 10;
        }
    }
    out[EL_SAFETY_HALF_LEN] = '\0';
}

int el_safety_half(const uint8_t ik[EL_ID_KEY_LEN], char out[EL_SAFETY_HALF_LEN + 1])
{
    char peer_id[EL_PEER_ID_LEN + 1];
    uint8_t h[SHA512_LEN];
    if (!out)
        return EL_ERR_INVALID;
    out[0] = '\0';
    if (!ik)
        return EL_ERR_INVALID;
    int rc = el_id_peer_id(ik, peer_id);
    if (rc)
        return rc;
    rc = iterate(ik, peer_id, h);
    if (rc)
        return rc;
    digits_of(h, out);
    return EL_OK;
}

int el_safety_number(const uint8_t ik_a[EL_ID_KEY_LEN], const uint8_t ik_b[EL_ID_KEY_LEN],
                     char out[EL_SAFETY_SIZE])
{
    char a[EL_SAFETY_HALF_LEN + 1], b[EL_SAFETY_HALF_LEN + 1];
    if (!out)
        return EL_ERR_INVALID;
    out[0] = '\0';
    int rc = el_safety_half(ik_a, a);
    if (rc)
        return rc;
    rc = el_safety_half(ik_b, b);
    if (rc)
        return rc;
    /* Equal-length digit strings: byte order is numeric order, and sorting
     * makes the result independent of who computes it. */
    const char *lo = strcmp(a, b) <= 0 ? a : b;
    const char *hi = lo == a ? b : a;
    memcpy(out, lo, EL_SAFETY_HALF_LEN);
    memcpy(out + EL_SAFETY_HALF_LEN, hi, EL_SAFETY_HALF_LEN);
    out[EL_SAFETY_LEN] = '\0';
    return EL_OK;
}

int el_safety_number_bundles(const el_id_bundle *a, const el_id_bundle *b,
                             char out[EL_SAFETY_SIZE])
{
    if (!a || !b) {
        if (out)
            out[0] = '\0';
        return EL_ERR_INVALID;
    }
    return el_safety_number(a->ik, b->ik, out);
}

int el_safety_format(const char *number, char out[EL_SAFETY_FMT_SIZE])
{
    if (!out)
        return EL_ERR_INVALID;
    out[0] = '\0';
    if (!number)
        return EL_ERR_INVALID;
    for (int i = 0; i < EL_SAFETY_LEN; i++)
        if (number[i] < '0' || number[i] > '9')
            return EL_ERR_INVALID; /* also stops at an early NUL */
    if (number[EL_SAFETY_LEN] != '\0')
        return EL_ERR_INVALID;
    char *p = out;
    for (int g = 0; g < EL_SAFETY_GROUPS; g++) {
        if (g)
            *p++ = ' ';
        memcpy(p, number + g * EL_SAFETY_GROUP_LEN, EL_SAFETY_GROUP_LEN);
        p += EL_SAFETY_GROUP_LEN;
    }
    *p = '\0';
    return EL_OK;
}
