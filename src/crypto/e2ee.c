/* e2ee.c - the §9 handshake on top of noise.c (see e2ee.h).
 *
 * The state machine per role:
 *   initiator: START --start--> WAIT2 --HS2/reply HS3--> DONE
 *   responder: WAIT1 --HS1/reply HS2--> WAIT3 --HS3--> DONE
 * and FAILED from anywhere (also DONE, on a received ABORT). */
#include "crypto/e2ee.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "base/err.h"
#include "crypto/noise.h"

/* sizeof counts the NUL: exactly the 0x00 the protocol puts after a label. */
static const char dom_noise[] = "echolink-v1-noise";
static const char dom_handshake[] = "echolink-v1-handshake";
static const char dom_channel[] = "echolink-v1-channel";

#define KEYLEN 32
#define PROLOGUE_LEN (sizeof dom_noise + 2 * KEYLEN)

typedef enum { ST_START, ST_WAIT1, ST_WAIT2, ST_WAIT3, ST_DONE, ST_FAILED } hs_state;

struct el_hs {
    el_hs_role role;
    hs_state st;
    el_noise *noise;
    const el_identity *id;    /* ours (borrowed), signs hs_sig */
    el_id_bundle self;        /* our bundle: ik and sk_sig go in the payload */
    char expected[EL_PEER_ID_LEN + 1];
    el_id_bundle remote;      /* valid when st == ST_DONE */
    uint8_t h[KEYLEN];        /* final handshake hash, when done */
    uint8_t k_ir[KEYLEN], k_ri[KEYLEN];
    el_hs_fail fail;
    int peer_reason;
    char error[64];
};

/* ---- failure texts ---------------------------------------------------- */

static const char *fail_text(int reason)
{
    switch (reason) {
    case EL_HS_FAIL_BINDING: return "identity/channel binding mismatch";
    case EL_HS_FAIL_IDENTITY: return "identity mismatch";
    case EL_HS_FAIL_SIGNATURE: return "bad signature";
    case EL_HS_FAIL_MALFORMED: return "malformed handshake message";
    case EL_HS_FAIL_TIMEOUT: return "timeout";
    case EL_HS_FAIL_UNEXPECTED: return "unexpected message";
    default: return NULL;
    }
}

static int fail_rc(el_hs_fail why)
{
    switch (why) {
    case EL_HS_FAIL_MALFORMED: return EL_ERR_INVALID;
    case EL_HS_FAIL_UNEXPECTED: return EL_ERR_STATE;
    case EL_HS_FAIL_ABORTED: return EL_ERR_DENIED;
    case EL_HS_FAIL_TIMEOUT: return EL_ERR_STATE;
    default: return EL_ERR_CRYPTO;
    }
}

/* Wipes what a failed handshake must not keep. */
static void wipe_secrets(el_hs *hs)
{
    el_noise_free(hs->noise);
    hs->noise = NULL;
    OPENSSL_cleanse(hs->k_ir, KEYLEN);
    OPENSSL_cleanse(hs->k_ri, KEYLEN);
    OPENSSL_cleanse(hs->h, KEYLEN);
    memset(&hs->remote, 0, sizeof hs->remote);
}

/* Fails the handshake with `why`; writes the ABORT into out (when out is
 * not NULL). Returns the error the caller hands back. */
static int fail(el_hs *hs, el_hs_fail why, uint8_t *out, size_t *outlen)
{
    hs->st = ST_FAILED;
    hs->fail = why;
    snprintf(hs->error, sizeof hs->error, "%s", fail_text(why));
    wipe_secrets(hs);
    if (out && outlen) {
        out[0] = EL_HS_ABORT;
        out[1] = (uint8_t)why;
        *outlen = EL_HS_ABORT_LEN;
    }
    return fail_rc(why);
}

static int peer_aborted(el_hs *hs, uint8_t reason)
{
    const char *t = fail_text(reason);
    hs->st = ST_FAILED;
    hs->fail = EL_HS_FAIL_ABORTED;
    hs->peer_reason = reason;
    if (t)
        snprintf(hs->error, sizeof hs->error, "peer aborted: %s", t);
    else
        snprintf(hs->error, sizeof hs->error, "peer aborted: reason %u", (unsigned)reason);
    wipe_secrets(hs);
    return EL_ERR_DENIED;
}

/* ---- Ed25519 ---------------------------------------------------------- */

/* ---- construction ----------------------------------------------------- */

int el_hs_new(el_hs **out, el_hs_role role, const el_identity *self, const char *expected_peer_id,
              const uint8_t fp_initiator[32], const uint8_t fp_responder[32])
{
    uint8_t prologue[PROLOGUE_LEN];
    uint8_t skp[KEYLEN];
    el_hs *hs;
    int rc;

    if (!out)
        return EL_ERR_INVALID;
    *out = NULL;
    if ((role != EL_HS_INITIATOR && role != EL_HS_RESPONDER) || !self || !fp_initiator ||
        !fp_responder || !el_id_valid_peer_id(expected_peer_id))
        return EL_ERR_INVALID;
    hs = calloc(1, sizeof *hs);
    if (!hs)
        return EL_ERR_NOMEM;
    hs->role = role;
    hs->st = role == EL_HS_INITIATOR ? ST_START : ST_WAIT1;
    hs->peer_reason = -1;
    hs->self = *el_identity_bundle(self);
    memcpy(hs->expected, expected_peer_id, EL_PEER_ID_LEN + 1);

    memcpy(prologue, dom_noise, sizeof dom_noise);
    memcpy(prologue + sizeof dom_noise, fp_initiator, KEYLEN);
    memcpy(prologue + sizeof dom_noise + KEYLEN, fp_responder, KEYLEN);

    hs->id = self;
    rc = el_identity_sk_private(self, skp);
    if (!rc)
        rc = el_noise_new(&hs->noise, EL_NOISE_XX, role == EL_HS_INITIATOR, prologue, sizeof prologue,
                          skp, hs->self.sk, NULL);
    OPENSSL_cleanse(skp, sizeof skp);
    if (rc) {
        el_hs_free(hs);
        return rc;
    }
    *out = hs;
    return EL_OK;
}

int el_hs_set_ephemeral(el_hs *hs, const uint8_t priv[32])
{
    if (!hs || !priv)
        return EL_ERR_INVALID;
    if (hs->st != ST_START && hs->st != ST_WAIT1)
        return EL_ERR_STATE;
    return el_noise_set_ephemeral(hs->noise, priv);
}

/* ---- messages --------------------------------------------------------- */

/* Noise failures under §9's names: a ciphertext that does not decrypt means
 * the prologues (fingerprints) or keys differ; a zero DH is malformed, and
 * so is anything else going wrong inside (never a success). */
static el_hs_fail noise_fail(int rc)
{
    return rc == EL_ERR_CRYPTO ? EL_HS_FAIL_BINDING : EL_HS_FAIL_MALFORMED;
}

/* Writes the tokens and the identity payload of HS2/HS3 after the type
 * byte: out[0] = type, then tokens, then AEAD(ik ‖ sk_sig ‖ hs_sig). */
static el_hs_fail write_identity_msg(el_hs *hs, uint8_t type, uint8_t *out, size_t cap, size_t *outlen)
{
    uint8_t payload[EL_HS_PAYLOAD_LEN];
    uint8_t signed_msg[sizeof dom_handshake + KEYLEN];
    size_t tl = 0, pl = 0;
    int rc;

    out[0] = type;
    rc = el_noise_write_tokens(hs->noise, out + 1, cap - 1, &tl);
    if (rc)
        return EL_HS_FAIL_MALFORMED; /* a zero DH (low-order key) or worse */
    /* sk_sig over our Noise static key is our bundle's sk_sig: Ed25519 is
     * deterministic, so signing again would give the same bytes. */
    memcpy(payload, hs->self.ik, 32);
    memcpy(payload + 32, hs->self.sk_sig, 64);
    memcpy(signed_msg, dom_handshake, sizeof dom_handshake);
    memcpy(signed_msg + sizeof dom_handshake, el_noise_hash(hs->noise), KEYLEN);
    if (el_identity_sign(hs->id, signed_msg, sizeof signed_msg, payload + 96) != EL_OK)
        return EL_HS_FAIL_MALFORMED;
    rc = el_noise_write_payload(hs->noise, payload, sizeof payload, out + 1 + tl, cap - 1 - tl, &pl);
    if (rc)
        return EL_HS_FAIL_MALFORMED;
    *outlen = 1 + tl + pl;
    return EL_HS_FAIL_NONE;
}

/* Reads HS2/HS3 (after the type byte) and checks the identity payload in
 * §9's order: decryption, sk_sig over the received s, hs_sig over our h,
 * then peer_id(ik). On success the remote bundle is filled in. */
static el_hs_fail read_identity_msg(el_hs *hs, const uint8_t *body, size_t len)
{
    uint8_t payload[EL_HS_PAYLOAD_LEN];
    uint8_t signed_msg[sizeof dom_handshake + KEYLEN];
    char pid[EL_PEER_ID_LEN + 1];
    el_id_bundle b;
    size_t used = 0, pl = 0;
    int rc;

    rc = el_noise_read_tokens(hs->noise, body, len, &used);
    if (rc)
        return noise_fail(rc);
    memcpy(signed_msg, dom_handshake, sizeof dom_handshake);
    memcpy(signed_msg + sizeof dom_handshake, el_noise_hash(hs->noise), KEYLEN);
    rc = el_noise_read_payload(hs->noise, body + used, len - used, payload, sizeof payload, &pl);
    if (rc)
        return noise_fail(rc);
    if (pl != EL_HS_PAYLOAD_LEN)
        return EL_HS_FAIL_MALFORMED;
    memcpy(b.ik, payload, 32);
    memcpy(b.sk, el_noise_remote_static(hs->noise), 32);
    memcpy(b.sk_sig, payload + 32, 64);
    if (el_id_bundle_verify(&b) != EL_OK ||
        el_id_verify(b.ik, signed_msg, sizeof signed_msg, payload + 96) != EL_OK)
        return EL_HS_FAIL_SIGNATURE;
    if (el_id_peer_id(b.ik, pid) != EL_OK)
        return EL_HS_FAIL_MALFORMED;
    if (strcmp(pid, hs->expected) != 0)
        return EL_HS_FAIL_IDENTITY;
    hs->remote = b;
    return EL_HS_FAIL_NONE;
}

/* After the last message: keep h and the split keys, drop the Noise state. */
static el_hs_fail finish(el_hs *hs)
{
    memcpy(hs->h, el_noise_hash(hs->noise), KEYLEN);
    if (el_noise_split(hs->noise, hs->k_ir, hs->k_ri) != EL_OK)
        return EL_HS_FAIL_MALFORMED;
    el_noise_free(hs->noise);
    hs->noise = NULL;
    hs->st = ST_DONE;
    return EL_HS_FAIL_NONE;
}

int el_hs_start(el_hs *hs, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t tl = 0, pl = 0;
    int rc;
    if (!hs || !out || !outlen)
        return EL_ERR_INVALID;
    *outlen = 0;
    if (hs->role != EL_HS_INITIATOR || hs->st != ST_START)
        return EL_ERR_STATE;
    if (cap < EL_HS1_LEN)
        return EL_ERR_TOO_LARGE;
    out[0] = EL_HS1;
    rc = el_noise_write_tokens(hs->noise, out + 1, cap - 1, &tl);
    if (!rc) /* HS1's payload is empty but still hashed (no key yet: clear) */
        rc = el_noise_write_payload(hs->noise, NULL, 0, out + 1 + tl, cap - 1 - tl, &pl);
    if (rc || 1 + tl + pl != EL_HS1_LEN) {
        int r = fail(hs, EL_HS_FAIL_MALFORMED, NULL, NULL);
        return rc ? rc : r;
    }
    hs->st = ST_WAIT2;
    *outlen = EL_HS1_LEN;
    return EL_OK;
}

/* The responder's answer to HS1. */
static el_hs_fail on_hs1(el_hs *hs, const uint8_t *msg, uint8_t *out, size_t cap, size_t *outlen)
{
    uint8_t empty[1];
    size_t used = 0, pl = 0;
    int rc = el_noise_read_tokens(hs->noise, msg + 1, EL_HS1_LEN - 1, &used);
    if (!rc)
        rc = el_noise_read_payload(hs->noise, msg + 1 + used, EL_HS1_LEN - 1 - used, empty, sizeof empty, &pl);
    if (rc)
        return noise_fail(rc);
    el_hs_fail f = write_identity_msg(hs, EL_HS2, out, cap, outlen);
    if (f)
        return f;
    hs->st = ST_WAIT3;
    return EL_HS_FAIL_NONE;
}

/* The initiator's answer to HS2. */
static el_hs_fail on_hs2(el_hs *hs, const uint8_t *msg, uint8_t *out, size_t cap, size_t *outlen)
{
    el_hs_fail f = read_identity_msg(hs, msg + 1, EL_HS2_LEN - 1);
    if (!f)
        f = write_identity_msg(hs, EL_HS3, out, cap, outlen);
    if (!f)
        f = finish(hs);
    if (f)
        *outlen = 0;
    return f;
}

static el_hs_fail on_hs3(el_hs *hs, const uint8_t *msg)
{
    el_hs_fail f = read_identity_msg(hs, msg + 1, EL_HS3_LEN - 1);
    return f ? f : finish(hs);
}

int el_hs_recv(el_hs *hs, const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    uint8_t want_type;
    size_t want_len;
    el_hs_fail f;

    if (!hs || !out || !outlen || (len && !msg))
        return EL_ERR_INVALID;
    *outlen = 0;
    if (cap < EL_HS_MSG_MAX)
        return EL_ERR_TOO_LARGE;
    if (hs->st == ST_FAILED)
        return EL_ERR_STATE;
    if (len == EL_HS_ABORT_LEN && msg[0] == EL_HS_ABORT)
        return peer_aborted(hs, msg[1]);
    if (hs->st == ST_DONE)
        return EL_ERR_STATE;

    /* §9.1: type and length first, before any decryption */
    switch (hs->st) {
    case ST_WAIT1: want_type = EL_HS1; want_len = EL_HS1_LEN; break;
    case ST_WAIT2: want_type = EL_HS2; want_len = EL_HS2_LEN; break;
    case ST_WAIT3: want_type = EL_HS3; want_len = EL_HS3_LEN; break;
    default: want_type = 0; want_len = 0; break; /* initiator before start */
    }
    if (!want_type || len != want_len || msg[0] != want_type)
        return fail(hs, EL_HS_FAIL_UNEXPECTED, out, outlen);

    if (hs->st == ST_WAIT1)
        f = on_hs1(hs, msg, out, cap, outlen);
    else if (hs->st == ST_WAIT2)
        f = on_hs2(hs, msg, out, cap, outlen);
    else
        f = on_hs3(hs, msg);
    if (f)
        return fail(hs, f, out, outlen);
    return EL_OK;
}

int el_hs_timeout(el_hs *hs, uint8_t *out, size_t cap, size_t *outlen)
{
    if (!hs || !out || !outlen)
        return EL_ERR_INVALID;
    *outlen = 0;
    if (cap < EL_HS_ABORT_LEN)
        return EL_ERR_TOO_LARGE;
    if (hs->st == ST_DONE || hs->st == ST_FAILED)
        return EL_ERR_STATE;
    fail(hs, EL_HS_FAIL_TIMEOUT, out, outlen);
    return EL_OK;
}

/* ---- results ---------------------------------------------------------- */

int el_hs_is_done(const el_hs *hs)
{
    return hs && hs->st == ST_DONE;
}

el_hs_role el_hs_role_of(const el_hs *hs)
{
    return hs ? hs->role : EL_HS_INITIATOR;
}

el_hs_fail el_hs_failure(const el_hs *hs)
{
    return hs ? hs->fail : EL_HS_FAIL_NONE;
}

int el_hs_peer_reason(const el_hs *hs)
{
    return hs ? hs->peer_reason : -1;
}

const char *el_hs_error(const el_hs *hs)
{
    return hs ? hs->error : "";
}

const el_id_bundle *el_hs_remote_bundle(const el_hs *hs)
{
    return el_hs_is_done(hs) ? &hs->remote : NULL;
}

const uint8_t *el_hs_hash(const el_hs *hs)
{
    return el_hs_is_done(hs) ? hs->h : NULL;
}

int el_hs_valid_label(const char *label)
{
    if (!label)
        return 0;
    if (strcmp(label, "chat") == 0)
        return 1;
    if (label[0] != 'f' || label[1] != ':')
        return 0;
    for (size_t i = 2; i < 34; i++) {
        char c = label[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0; /* also stops at an early NUL */
    }
    return label[34] == '\0';
}

/* key(dir, label) = HKDF-SHA256(salt = h, ikm = k, info = dom ‖ label). */
static int channel_key(const uint8_t h[KEYLEN], const uint8_t k[KEYLEN], const char *label,
                       uint8_t out[KEYLEN])
{
    uint8_t info[sizeof dom_channel + EL_HS_LABEL_MAX];
    size_t llen = strlen(label);
    OSSL_PARAM params[5];
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int rc = EL_ERR_CRYPTO;

    memcpy(info, dom_channel, sizeof dom_channel);
    memcpy(info + sizeof dom_channel, label, llen);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k, KEYLEN);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)h, KEYLEN);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof dom_channel + llen);
    params[4] = OSSL_PARAM_construct_end();
    if (ctx && EVP_KDF_derive(ctx, out, KEYLEN, params) == 1)
        rc = EL_OK;
    EVP_KDF_CTX_free(ctx); /* clears the key material it copied */
    EVP_KDF_free(kdf);
    return rc;
}

int el_hs_channel(const el_hs *hs, const char *label, el_fcipher **tx, el_fcipher **rx)
{
    uint8_t ktx[KEYLEN], krx[KEYLEN];
    int rc;
    if (!tx || !rx)
        return EL_ERR_INVALID;
    *tx = *rx = NULL;
    if (!hs || !el_hs_valid_label(label))
        return EL_ERR_INVALID;
    if (hs->st != ST_DONE)
        return EL_ERR_STATE;
    const uint8_t *mine = hs->role == EL_HS_INITIATOR ? hs->k_ir : hs->k_ri;
    const uint8_t *theirs = hs->role == EL_HS_INITIATOR ? hs->k_ri : hs->k_ir;
    rc = channel_key(hs->h, mine, label, ktx);
    if (!rc)
        rc = channel_key(hs->h, theirs, label, krx);
    if (!rc)
        rc = el_fcipher_new(tx, ktx);
    if (!rc)
        rc = el_fcipher_new(rx, krx);
    OPENSSL_cleanse(ktx, sizeof ktx);
    OPENSSL_cleanse(krx, sizeof krx);
    if (rc) {
        el_fcipher_free(*tx);
        el_fcipher_free(*rx);
        *tx = *rx = NULL;
    }
    return rc;
}

void el_hs_free(el_hs *hs)
{
    if (!hs)
        return;
    el_noise_free(hs->noise);
    OPENSSL_cleanse(hs, sizeof *hs);
    free(hs);
}
