/* fuzz_seal.c - libFuzzer target: sealed envelopes (src/crypto/seal.h,
 * docs/PROTOCOL.md §10.3) opened by a fixed recipient, bob of
 * tests/vectors/e2ee.json. Seeds: tests/fuzz/corpus/seal/, real envelopes
 * to bob written by tests/fuzz/gen_seal_seeds.c (and the e2ee.json ones).
 *
 * Each input is used twice:
 *  1. as envelope bytes for el_seal_open. Invariants: the result is EL_OK
 *     or one of the documented reasons; a length or version outside the
 *     table is EL_ERR_INVALID before any crypto; on failure *ptlen is 0,
 *     the sender bundle is zeroed and the peer id is ""; on success the
 *     plaintext is len - 193 bytes, the sender bundle verifies and the
 *     peer id is the one its ik gives, a cap one byte short is
 *     EL_ERR_TOO_LARGE, and one flipped bit anywhere makes it fail; the
 *     plaintext then goes through the message checks of fuzz_msg.c, as the
 *     session hands an opened envelope to the message parser.
 *  2. as a plaintext, sealed by alice to bob with a fixed ephemeral key:
 *     it opens to the same bytes with alice as the sender.
 * tests/unit/test_fuzz_corpus.c includes this file with EL_FUZZ_NO_MAIN. */
#ifndef EL_FUZZ_SEAL_C
#define EL_FUZZ_SEAL_C

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "crypto/identity.h"
#include "crypto/seal.h"

#define EL_FUZZ_MSG_NO_MAIN
#include "fuzz_msg.c"

/* e2ee.json identities: ik seed, then sk private key. */
static const uint8_t el_fuzz_seal_alice[2][32] = {
    {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
     0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60},
    {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
     0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a}};
static const uint8_t el_fuzz_seal_bob[2][32] = {
    {0xc7, 0xa9, 0x73, 0xff, 0x3a, 0x5b, 0xc5, 0x21, 0xa0, 0x56, 0xf3, 0x8a, 0xc7, 0x4d, 0x0d, 0x3e,
     0x9b, 0xbb, 0xd1, 0x08, 0xc5, 0x91, 0xb7, 0xe0, 0xa4, 0x34, 0x4c, 0xa9, 0x9b, 0x3d, 0x07, 0x58},
    {0x3d, 0x42, 0xff, 0xa8, 0x8e, 0x46, 0x81, 0x94, 0x6e, 0x4e, 0xdd, 0x6e, 0x88, 0x84, 0x0d, 0x6d,
     0xe5, 0x66, 0x13, 0x22, 0xc4, 0x84, 0x33, 0xd3, 0xb7, 0x4f, 0x42, 0x11, 0xf4, 0xc3, 0x57, 0xea}};
static const uint8_t el_fuzz_seal_carol[2][32] = {
    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
    {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
     0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20}};

static const uint8_t el_fuzz_seal_eph[32] = {
    0x45, 0x23, 0x11, 0x09, 0x7e, 0x6d, 0x5c, 0x4b, 0x3a, 0x29, 0x18, 0x07, 0xf6, 0xe5, 0xd4, 0xc3,
    0xb2, 0xa1, 0x90, 0x8f, 0x7e, 0x6d, 0x5c, 0x4b, 0x3a, 0x29, 0x18, 0x07, 0xf6, 0xe5, 0xd4, 0x43};

/* The identities, made once per process and never freed (the fuzzer never
 * returns); the unit test frees them through el_fuzz_seal_done(). */
static el_identity *el_fuzz_seal_ids[3];

static const char *el_fuzz_seal_setup(void)
{
    if (el_fuzz_seal_ids[0])
        return NULL;
    if (el_identity_new(&el_fuzz_seal_ids[0], el_fuzz_seal_alice[0], el_fuzz_seal_alice[1], NULL, 0) ||
        el_identity_new(&el_fuzz_seal_ids[1], el_fuzz_seal_bob[0], el_fuzz_seal_bob[1], NULL, 0) ||
        el_identity_new(&el_fuzz_seal_ids[2], el_fuzz_seal_carol[0], el_fuzz_seal_carol[1], NULL, 0))
        return "seal: cannot make the identities";
    return NULL;
}

__attribute__((unused)) static void el_fuzz_seal_done(void)
{
    for (int i = 0; i < 3; i++) {
        el_identity_free(el_fuzz_seal_ids[i]);
        el_fuzz_seal_ids[i] = NULL;
    }
}

static int el_fuzz_seal_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* Opens env as bob with room for cap bytes; checks the failure contract. */
static int el_fuzz_seal_open(const uint8_t *env, size_t len, uint8_t *pt, size_t cap, size_t *ptlen,
                             el_id_bundle *snd, char pid[33], const char **bad)
{
    memset(snd, 0xa5, sizeof *snd);
    memset(pid, 'Q', 33);
    *ptlen = 777;
    int rc = el_seal_open(el_fuzz_seal_ids[1], env, len, snd, pid, pt, cap, ptlen);
    if (rc != EL_OK && (*ptlen != 0 || !el_fuzz_seal_zero(snd, sizeof *snd) || pid[0] != '\0'))
        *bad = "seal: a failed open left output behind";
    return rc;
}

static const char *el_fuzz_seal_check_open(const uint8_t *data, size_t size)
{
    const char *bad = NULL;
    size_t cap = size > EL_SEAL_OVERHEAD ? size - EL_SEAL_OVERHEAD : 1;
    uint8_t *pt = malloc(cap);
    uint8_t *flip = malloc(size ? size : 1);
    if (!pt || !flip)
        goto done;
    el_id_bundle snd;
    char pid[33];
    size_t ptlen;
    int rc = el_fuzz_seal_open(data, size, pt, cap, &ptlen, &snd, pid, &bad);
    if (bad)
        goto done;
    int malformed = size < EL_SEAL_MIN || size > EL_SEAL_MAX || data[0] != EL_SEAL_VERSION;
    if (malformed) {
        /* cap is 1 here for short inputs: the length rule must still win */
        if (rc != EL_ERR_INVALID && !(rc == EL_ERR_TOO_LARGE && size > EL_SEAL_MAX))
            bad = "seal: a malformed envelope is not EL_ERR_INVALID";
        goto done;
    }
    if (rc != EL_OK && rc != EL_ERR_INVALID && rc != EL_ERR_CRYPTO && rc != EL_ERR_DENIED) {
        bad = "seal: unexpected result";
        goto done;
    }
    if (strcmp(el_seal_reason(rc), rc == EL_OK ? "error" : rc == EL_ERR_INVALID ? "malformed"
                                               : rc == EL_ERR_CRYPTO            ? "auth"
                                                                                : "signature")) {
        bad = "seal: el_seal_reason names the result wrongly";
        goto done;
    }
    if (rc != EL_OK)
        goto done;
    char want[EL_PEER_ID_LEN + 1];
    if (ptlen != size - EL_SEAL_OVERHEAD || el_id_bundle_verify(&snd) != 0 ||
        el_id_peer_id(snd.ik, want) != 0 || strcmp(want, pid)) {
        bad = "seal: an opened envelope has a wrong length or sender";
        goto done;
    }
    bad = el_fuzz_check_msg(pt, ptlen);
    if (bad)
        goto done;
    {
        el_id_bundle s2;
        char p2[33];
        size_t l2;
        if (el_fuzz_seal_open(data, size, pt, ptlen - 1 ? ptlen - 1 : 0, &l2, &s2, p2, &bad) !=
                EL_ERR_TOO_LARGE && !bad)
            bad = "seal: a cap one byte short is not EL_ERR_TOO_LARGE";
        if (bad)
            goto done;
        /* one bit flipped, at a few places spread over the envelope */
        for (size_t k = 0; k < 8; k++) {
            size_t at = k * (size - 1) / 7;
            memcpy(flip, data, size);
            flip[at] ^= (uint8_t)(1u << (k % 8));
            if (el_fuzz_seal_open(flip, size, pt, cap, &l2, &s2, p2, &bad) == EL_OK) {
                bad = "seal: an envelope with a flipped bit opens";
                goto done;
            }
            if (bad)
                goto done;
        }
    }
done:
    free(pt);
    free(flip);
    return bad;
}

static const char *el_fuzz_seal_check_roundtrip(const uint8_t *data, size_t size)
{
    if (size < 1 || size > EL_SEAL_PT_MAX)
        return NULL;
    const char *bad = NULL;
    uint8_t *env = malloc(size + EL_SEAL_OVERHEAD), *pt = malloc(size);
    size_t elen = 0, plen = 0;
    el_id_bundle snd;
    char pid[33];
    if (!env || !pt)
        goto done;
    if (el_seal_with_ephemeral(el_fuzz_seal_ids[0], el_identity_bundle(el_fuzz_seal_ids[1]), data, size,
                               env, size + EL_SEAL_OVERHEAD, &elen, el_fuzz_seal_eph) != EL_OK ||
        elen != size + EL_SEAL_OVERHEAD) {
        bad = "seal: sealing a plaintext failed";
        goto done;
    }
    if (el_fuzz_seal_open(env, elen, pt, size, &plen, &snd, pid, &bad) != EL_OK || bad ||
        plen != size || memcmp(pt, data, size) ||
        strcmp(pid, el_identity_peer_id(el_fuzz_seal_ids[0]))) {
        if (!bad)
            bad = "seal: seal then open does not give the plaintext and sender back";
        goto done;
    }
    /* sealed to bob, carol cannot open it */
    if (el_seal_open(el_fuzz_seal_ids[2], env, elen, NULL, NULL, pt, size, &plen) != EL_ERR_CRYPTO)
        bad = "seal: another recipient opens it";
done:
    free(env);
    free(pt);
    return bad;
}

static const char *el_fuzz_check_seal(const uint8_t *data, size_t size)
{
    const char *bad = el_fuzz_seal_setup();
    if (!bad)
        bad = el_fuzz_seal_check_open(data, size);
    if (!bad)
        bad = el_fuzz_seal_check_roundtrip(data, size);
    return bad;
}

#ifndef EL_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_seal(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_seal: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif

#endif
