/* seal.c - sealed envelopes, Noise_X to the recipient's static key (see
 * seal.h and docs/PROTOCOL.md §10.3). */
#include "crypto/seal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "crypto/noise.h"

/* sizeof counts the NUL: exactly the 0x00 the protocol puts after a label. */
static const char dom_seal[] = "echolink-v1-seal";

#define E_OFF 1
#define PAYLOAD_OFF (1 + 32 + 48)          /* 81 */
#define ID_LEN (EL_ID_KEY_LEN + EL_ID_SIG_LEN) /* ik ‖ sk_sig */

_Static_assert(EL_SEAL_OVERHEAD == PAYLOAD_OFF + ID_LEN + 16, "envelope layout");

int el_seal_with_ephemeral(const el_identity *sender, const el_id_bundle *recipient, const uint8_t *pt,
                           size_t ptlen, uint8_t *out, size_t cap, size_t *outlen,
                           const uint8_t e_priv[32])
{
    uint8_t skp[EL_ID_KEY_LEN];
    el_noise *n = NULL;
    const el_id_bundle *me;
    size_t tl = 0, pl = 0;
    int rc;

    if (!outlen)
        return EL_ERR_INVALID;
    *outlen = 0;
    if (!sender || !recipient || !pt || !out || ptlen == 0)
        return EL_ERR_INVALID;
    if (ptlen > EL_SEAL_PT_MAX || cap < ptlen + EL_SEAL_OVERHEAD)
        return EL_ERR_TOO_LARGE;
    /* Sealing to an unchecked sk would send the message to whoever made it. */
    rc = el_id_bundle_verify(recipient);
    if (rc)
        return rc;
    rc = el_identity_sk_private(sender, skp);
    if (rc)
        return rc;
    rc = el_noise_new(&n, EL_NOISE_X, 1, (const uint8_t *)dom_seal, sizeof dom_seal, skp,
                      el_identity_bundle(sender)->sk, recipient->sk);
    OPENSSL_cleanse(skp, sizeof skp);
    if (rc)
        return rc;
    if (e_priv) {
        rc = el_noise_set_ephemeral(n, e_priv);
        if (rc)
            goto out;
    }
    out[0] = EL_SEAL_VERSION;
    rc = el_noise_write_tokens(n, out + E_OFF, PAYLOAD_OFF - E_OFF, &tl);
    if (rc)
        goto out;
    if (tl != PAYLOAD_OFF - E_OFF) {
        rc = EL_ERR_CRYPTO;
        goto out;
    }
    /* The payload is assembled where its ciphertext goes and encrypted in
     * place: no copy of the plaintext outside the caller's buffers. */
    me = el_identity_bundle(sender);
    memcpy(out + PAYLOAD_OFF, me->ik, EL_ID_KEY_LEN);
    memcpy(out + PAYLOAD_OFF + EL_ID_KEY_LEN, me->sk_sig, EL_ID_SIG_LEN);
    memcpy(out + PAYLOAD_OFF + ID_LEN, pt, ptlen);
    rc = el_noise_write_payload(n, out + PAYLOAD_OFF, ID_LEN + ptlen, out + PAYLOAD_OFF,
                                cap - PAYLOAD_OFF, &pl);
    if (rc) {
        OPENSSL_cleanse(out + PAYLOAD_OFF, ID_LEN + ptlen);
        goto out;
    }
    *outlen = PAYLOAD_OFF + pl;
out:
    el_noise_free(n);
    return rc;
}

int el_seal(const el_identity *sender, const el_id_bundle *recipient, const uint8_t *pt, size_t ptlen,
            uint8_t *out, size_t cap, size_t *outlen)
{
    return el_seal_with_ephemeral(sender, recipient, pt, ptlen, out, cap, outlen, NULL);
}

/* Noise's results mapped onto §10.3's reasons: a zero DH is malformed, a
 * tag that does not verify is auth. */
static int open_reason(int rc)
{
    return rc == EL_ERR_INVALID || rc == EL_ERR_CRYPTO || rc == EL_ERR_NOMEM ? rc : EL_ERR_CRYPTO;
}

int el_seal_open(const el_identity *recipient, const uint8_t *env, size_t len,
                 el_id_bundle *sender, char sender_peer_id[33], uint8_t *pt, size_t cap, size_t *ptlen)
{
    uint8_t skp[EL_ID_KEY_LEN];
    uint8_t *payload = NULL;
    el_noise *n = NULL;
    el_id_bundle from;
    size_t used = 0, pl = 0;
    int rc;

    if (sender)
        memset(sender, 0, sizeof *sender);
    if (sender_peer_id)
        sender_peer_id[0] = '\0';
    if (!ptlen)
        return EL_ERR_INVALID;
    *ptlen = 0;
    if (!recipient || !pt || (len && !env))
        return EL_ERR_INVALID;
    if (len < EL_SEAL_MIN || len > EL_SEAL_MAX || env[0] != EL_SEAL_VERSION)
        return EL_ERR_INVALID;
    if (cap < len - EL_SEAL_OVERHEAD)
        return EL_ERR_TOO_LARGE;

    rc = el_identity_sk_private(recipient, skp);
    if (rc)
        return rc;
    rc = el_noise_new(&n, EL_NOISE_X, 0, (const uint8_t *)dom_seal, sizeof dom_seal, skp,
                      el_identity_bundle(recipient)->sk, NULL);
    OPENSSL_cleanse(skp, sizeof skp);
    if (rc)
        return rc;
    rc = el_noise_read_tokens(n, env + E_OFF, len - E_OFF, &used);
    if (rc) {
        rc = open_reason(rc);
        goto out;
    }
    payload = malloc(len - PAYLOAD_OFF);
    if (!payload) {
        rc = EL_ERR_NOMEM;
        goto out;
    }
    rc = el_noise_read_payload(n, env + E_OFF + used, len - E_OFF - used, payload, len - PAYLOAD_OFF, &pl);
    if (rc) {
        rc = open_reason(rc);
        goto out;
    }
    if (pl != len - EL_SEAL_OVERHEAD + ID_LEN) {
        rc = EL_ERR_INVALID;
        goto out;
    }
    memcpy(from.ik, payload, EL_ID_KEY_LEN);
    memcpy(from.sk, el_noise_remote_static(n), EL_ID_KEY_LEN);
    memcpy(from.sk_sig, payload + EL_ID_KEY_LEN, EL_ID_SIG_LEN);
    if (el_id_bundle_verify(&from) != EL_OK) {
        rc = EL_ERR_DENIED;
        goto out;
    }
    if (sender_peer_id) {
        rc = el_id_peer_id(from.ik, sender_peer_id);
        if (rc)
            goto out;
    }
    memcpy(pt, payload + ID_LEN, pl - ID_LEN);
    *ptlen = pl - ID_LEN;
    if (sender)
        *sender = from;
out:
    if (payload) {
        OPENSSL_cleanse(payload, len - PAYLOAD_OFF);
        free(payload);
    }
    if (rc && sender_peer_id)
        sender_peer_id[0] = '\0';
    el_noise_free(n);
    return rc;
}

const char *el_seal_reason(int rc)
{
    switch (rc) {
    case EL_ERR_INVALID: return "malformed";
    case EL_ERR_CRYPTO: return "auth";
    case EL_ERR_DENIED: return "signature";
    default: return "error";
    }
}
