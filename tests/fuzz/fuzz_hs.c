/* fuzz_hs.c - libFuzzer target: arbitrary bytes fed to el_hs_recv (the §9
 * handshake) in each state a handshake can be in when a chat message
 * arrives:
 *   responder waiting for HS1; initiator waiting for HS2 (after start);
 *   responder waiting for HS3 (after a genuine HS1); initiator before start;
 *   both sides after a completed handshake.
 * Keys, fingerprints and ephemerals are those of e2ee.json's "alice->bob"
 * handshake, so the seeds in tests/fuzz/corpus/hs/ (its HS1/HS2/HS3 and the
 * negative vectors) reach the deep paths.
 *
 * Invariants, checked by el_fuzz_check_hs():
 *  - EL_OK only for a message of the expected type and length, and in the
 *    HS2/HS3 states only for exactly the genuine message;
 *  - on failure: out holds ABORT ‖ reason = el_hs_failure() (2 bytes), or
 *    nothing when the input was an ABORT (then the failure is ABORTED with
 *    that reason byte); a wrong type/length is always UNEXPECTED;
 *  - a failed handshake stays failed: the next call returns EL_ERR_STATE,
 *    writes nothing, and el_hs_channel refuses;
 *  - after done, only an ABORT changes anything.
 * tests/unit/test_e2ee.c includes this file (with EL_FUZZ_NO_MAIN) and runs
 * the seeds through the same check. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/e2ee.h"
#include "crypto/identity.h"

typedef struct {
    el_identity *alice, *bob;
    uint8_t fp_i[32], fp_r[32], e_i[32], e_r[32];
    uint8_t hs1[EL_HS1_LEN], hs2[EL_HS2_LEN], hs3[EL_HS3_LEN];
} el_fuzz_hs_fixture;

static void el_fuzz_hex(const char *h, uint8_t *out, size_t n)
{
    if (el_hex_decode(h, 2 * n, out, n) != (ssize_t)n)
        abort();
}

static el_identity *el_fuzz_identity(const char *seed_hex, const char *sk_hex)
{
    uint8_t seed[32], sk[32];
    el_identity *id = NULL;
    el_fuzz_hex(seed_hex, seed, 32);
    el_fuzz_hex(sk_hex, sk, 32);
    if (el_identity_new(&id, seed, sk, NULL, 0) != EL_OK)
        abort();
    return id;
}

static el_hs *el_fuzz_hs_new(const el_fuzz_hs_fixture *fx, el_hs_role role)
{
    el_hs *hs = NULL;
    int ini = role == EL_HS_INITIATOR;
    const el_identity *self = ini ? fx->alice : fx->bob;
    const el_identity *peer = ini ? fx->bob : fx->alice;
    if (el_hs_new(&hs, role, self, el_identity_peer_id(peer), fx->fp_i, fx->fp_r) != EL_OK ||
        el_hs_set_ephemeral(hs, ini ? fx->e_i : fx->e_r) != EL_OK)
        abort();
    return hs;
}

/* Built once (keys and the genuine transcript); lives for the process. */
static const el_fuzz_hs_fixture *el_fuzz_hs_fx(void)
{
    static el_fuzz_hs_fixture fx;
    static int ready;
    if (ready)
        return &fx;
    fx.alice = el_fuzz_identity("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    fx.bob = el_fuzz_identity("c7a973ff3a5bc521a056f38ac74d0d3e9bbbd108c591b7e0a4344ca99b3d0758",
                              "3d42ffa88e4681946e4edd6e88840d6de5661322c48433d3b74f4211f4c357ea");
    el_fuzz_hex("ed164c7577f3b2d91be08de4d2639e8b4c913399235ae01a746175453697939c", fx.fp_i, 32);
    el_fuzz_hex("65e57593ce7dcf45fd2075e9eb354ba9af31302b17f3fda4ba5e31c73f18e8d1", fx.fp_r, 32);
    el_fuzz_hex("afadd406cb349c87cc3704df98e1a4b3983e213e3bed9c68b705e5b614e6800f", fx.e_i, 32);
    el_fuzz_hex("3190a9738444c8191e6bbf5d96c9d5fed444b05659005efa8c314139ee7bace3", fx.e_r, 32);
    el_hs *i = el_fuzz_hs_new(&fx, EL_HS_INITIATOR), *r = el_fuzz_hs_new(&fx, EL_HS_RESPONDER);
    uint8_t out[EL_HS_MSG_MAX];
    size_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    if (el_hs_start(i, fx.hs1, sizeof fx.hs1, &n1) || el_hs_recv(r, fx.hs1, n1, out, sizeof out, &n2) ||
        n2 != EL_HS2_LEN)
        abort();
    memcpy(fx.hs2, out, EL_HS2_LEN);
    if (el_hs_recv(i, fx.hs2, n2, out, sizeof out, &n3) || n3 != EL_HS3_LEN)
        abort();
    memcpy(fx.hs3, out, EL_HS3_LEN);
    if (el_hs_recv(r, fx.hs3, n3, out, sizeof out, &n4) || n4 != 0 || !el_hs_is_done(r))
        abort();
    el_hs_free(i);
    el_hs_free(r);
    ready = 1;
    return &fx;
}

static int el_fuzz_is_abort(const uint8_t *d, size_t n)
{
    return n == EL_HS_ABORT_LEN && d[0] == EL_HS_ABORT;
}

/* Checks one el_hs_recv on `hs` (in the state described by want_type /
 * want_len; 0 = no handshake message is acceptable; `genuine` = the only
 * message that may succeed, or NULL for "any well-formed one"). */
static const char *el_fuzz_hs_step(el_hs *hs, const uint8_t *d, size_t n, uint8_t want_type,
                                   size_t want_len, const uint8_t *genuine)
{
    uint8_t out[EL_HS_MSG_MAX];
    size_t outlen = 999;
    int rc = el_hs_recv(hs, d, n, out, sizeof out, &outlen);
    int well_formed = want_type && n == want_len && d[0] == want_type;
    if (rc == EL_OK) {
        if (!well_formed || el_fuzz_is_abort(d, n))
            return "accepted a message of the wrong type or length";
        if (genuine && memcmp(d, genuine, n) != 0)
            return "accepted a message that is not the genuine one";
        if (el_hs_failure(hs) != EL_HS_FAIL_NONE)
            return "success with a failure recorded";
        return NULL;
    }
    el_hs_fail f = el_hs_failure(hs);
    if (el_fuzz_is_abort(d, n)) {
        if (f != EL_HS_FAIL_ABORTED || outlen != 0 || el_hs_peer_reason(hs) != d[1] ||
            strncmp(el_hs_error(hs), "peer aborted: ", 14) != 0)
            return "ABORT not reported as such";
    } else {
        if (outlen != EL_HS_ABORT_LEN || out[0] != EL_HS_ABORT || out[1] != (uint8_t)f)
            return "failure without the matching ABORT";
        if (!well_formed && f != EL_HS_FAIL_UNEXPECTED)
            return "wrong type/length not reported as unexpected";
        if (f < EL_HS_FAIL_BINDING || f > EL_HS_FAIL_UNEXPECTED || f == EL_HS_FAIL_TIMEOUT)
            return "impossible failure reason";
        if (!el_hs_error(hs)[0])
            return "failure without text";
    }
    if (el_hs_is_done(hs) || el_hs_remote_bundle(hs) || el_hs_hash(hs))
        return "failed handshake still looks done";
    /* final */
    outlen = 999;
    if (el_hs_recv(hs, d, n, out, sizeof out, &outlen) != EL_ERR_STATE || outlen != 0)
        return "a failed handshake answered again";
    el_fcipher *tx = NULL, *rx = NULL;
    if (el_hs_channel(hs, "chat", &tx, &rx) != EL_ERR_STATE || tx || rx)
        return "a failed handshake gave channel keys";
    return NULL;
}

static const char *el_fuzz_check_hs(const uint8_t *d, size_t n)
{
    const el_fuzz_hs_fixture *fx = el_fuzz_hs_fx();
    const char *bad = NULL;
    uint8_t out[EL_HS_MSG_MAX];
    size_t ol = 0;
    el_hs *a = NULL, *b = NULL;

    /* responder waiting for HS1: any well-formed HS1 may be answered */
    b = el_fuzz_hs_new(fx, EL_HS_RESPONDER);
    bad = el_fuzz_hs_step(b, d, n, EL_HS1, EL_HS1_LEN, NULL);
    el_hs_free(b);
    if (bad)
        return bad;

    /* initiator waiting for HS2 */
    a = el_fuzz_hs_new(fx, EL_HS_INITIATOR);
    if (el_hs_start(a, out, sizeof out, &ol) != EL_OK)
        return "start failed";
    bad = el_fuzz_hs_step(a, d, n, EL_HS2, EL_HS2_LEN, fx->hs2);
    el_hs_free(a);
    if (bad)
        return bad;

    /* responder waiting for HS3 */
    b = el_fuzz_hs_new(fx, EL_HS_RESPONDER);
    if (el_hs_recv(b, fx->hs1, sizeof fx->hs1, out, sizeof out, &ol) != EL_OK)
        return "genuine HS1 refused";
    bad = el_fuzz_hs_step(b, d, n, EL_HS3, EL_HS3_LEN, fx->hs3);
    el_hs_free(b);
    if (bad)
        return bad;

    /* initiator before start: nothing is acceptable */
    a = el_fuzz_hs_new(fx, EL_HS_INITIATOR);
    bad = el_fuzz_hs_step(a, d, n, 0, 0, NULL);
    el_hs_free(a);
    if (bad)
        return bad;

    /* both sides done: only an ABORT matters */
    a = el_fuzz_hs_new(fx, EL_HS_INITIATOR);
    b = el_fuzz_hs_new(fx, EL_HS_RESPONDER);
    if (el_hs_start(a, out, sizeof out, &ol) || el_hs_recv(b, fx->hs1, sizeof fx->hs1, out, sizeof out, &ol) ||
        el_hs_recv(a, fx->hs2, sizeof fx->hs2, out, sizeof out, &ol) ||
        el_hs_recv(b, fx->hs3, sizeof fx->hs3, out, sizeof out, &ol))
        bad = "genuine handshake failed";
    for (int side = 0; !bad && side < 2; side++) {
        el_hs *hs = side ? b : a;
        ol = 999;
        int rc = el_hs_recv(hs, d, n, out, sizeof out, &ol);
        if (ol != 0)
            bad = "a done handshake answered";
        else if (el_fuzz_is_abort(d, n) && (rc != EL_ERR_DENIED || el_hs_is_done(hs)))
            bad = "ABORT after done ignored";
        else if (!el_fuzz_is_abort(d, n) && (rc != EL_ERR_STATE || !el_hs_is_done(hs)))
            bad = "a non-ABORT message changed a done handshake";
    }
    el_hs_free(a);
    el_hs_free(b);
    return bad;
}

#ifndef EL_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_hs(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_hs: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif
