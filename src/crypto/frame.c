/* frame.c - DATA frames of §9.3 on a Noise CipherState (see frame.h).
 *
 * The CipherState's nonce is our frame counter: it is set from the counter
 * before each operation (they are always equal; setting it keeps the frame
 * header and the nonce provably the same number) and advances only when a
 * frame is sealed or accepted. The rekey happens eagerly, right after the
 * frame whose successor starts a new epoch, so that a rejected frame can
 * never leave a half-switched key behind. */
#include "crypto/frame.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "crypto/noise.h"

struct el_fcipher {
    el_noise_cipher *cs;
    uint64_t next;  /* n of the next frame sealed / expected */
    int broken;     /* a rekey failed: the key is unknown, refuse everything */
    el_fcipher_stats stats;
};

int el_fcipher_new(el_fcipher **out, const uint8_t key[32])
{
    el_fcipher *c;
    int rc;
    if (!out)
        return EL_ERR_INVALID;
    *out = NULL;
    if (!key)
        return EL_ERR_INVALID;
    c = calloc(1, sizeof *c);
    if (!c)
        return EL_ERR_NOMEM;
    rc = el_noise_cipher_new(&c->cs);
    if (!rc)
        rc = el_noise_cipher_set_key(c->cs, key);
    if (rc) {
        el_fcipher_free(c);
        return rc;
    }
    *out = c;
    return EL_OK;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* After frame `next - 1` was used: enter the next epoch if it starts here. */
static int advance(el_fcipher *c)
{
    c->next++;
    if (c->next % EL_FRAME_REKEY_EVERY != 0)
        return EL_OK;
    if (el_noise_cipher_rekey(c->cs) != EL_OK) {
        c->broken = 1;
        return EL_ERR_CRYPTO;
    }
    return EL_OK;
}

int el_fcipher_seal(el_fcipher *c, const uint8_t *pt, size_t ptlen,
                    uint8_t *out, size_t cap, size_t *outlen)
{
    size_t len = 0;
    int rc;
    if (!c || !outlen || !out || (ptlen && !pt))
        return EL_ERR_INVALID;
    *outlen = 0;
    if (ptlen > EL_FRAME_PT_MAX || cap < ptlen + EL_FRAME_OVERHEAD)
        return EL_ERR_TOO_LARGE;
    /* 2^64-1 is Noise's reserved nonce (REKEY): the channel is used up. */
    if (c->broken || c->next == UINT64_MAX)
        return EL_ERR_STATE;
    out[0] = EL_FRAME_DATA;
    put_u64(out + 1, c->next);
    el_noise_cipher_set_nonce(c->cs, c->next);
    rc = el_noise_cipher_encrypt(c->cs, out, EL_FRAME_HEADER, pt, ptlen, out + EL_FRAME_HEADER,
                                 cap - EL_FRAME_HEADER, &len);
    if (rc)
        return rc;
    /* The frame is complete even if the following rekey fails; the next
     * call then reports the broken state. */
    advance(c);
    *outlen = EL_FRAME_HEADER + len;
    return EL_OK;
}

int el_fcipher_open(el_fcipher *c, const uint8_t *frame, size_t len,
                    uint8_t *out, size_t cap, size_t *outlen)
{
    size_t ptlen = 0;
    uint64_t n;
    int rc;
    if (!c || !outlen || !out || (len && !frame))
        return EL_ERR_INVALID;
    *outlen = 0;
    if (c->broken || c->next == UINT64_MAX)
        return EL_ERR_STATE;
    if (len < EL_FRAME_OVERHEAD || len > EL_FRAME_MAX || frame[0] != EL_FRAME_DATA) {
        c->stats.truncated++;
        return EL_ERR_INVALID;
    }
    n = get_u64(frame + 1);
    if (n < c->next) {
        c->stats.replay++;
        return EL_ERR_EXISTS;
    }
    if (n > c->next) {
        c->stats.reorder++;
        return EL_ERR_STATE;
    }
    if (cap < len - EL_FRAME_OVERHEAD)
        return EL_ERR_TOO_LARGE;
    el_noise_cipher_set_nonce(c->cs, n);
    rc = el_noise_cipher_decrypt(c->cs, frame, EL_FRAME_HEADER, frame + EL_FRAME_HEADER,
                                 len - EL_FRAME_HEADER, out, cap, &ptlen);
    if (rc == EL_ERR_CRYPTO) {
        c->stats.auth++;
        return EL_ERR_CRYPTO;
    }
    if (rc)
        return rc;
    /* Accepted: a failed rekey after it surfaces on the next call. */
    advance(c);
    *outlen = ptlen;
    return EL_OK;
}

const char *el_fcipher_reason(int rc)
{
    switch (rc) {
    case EL_ERR_INVALID: return "truncated";
    case EL_ERR_EXISTS: return "replay";
    case EL_ERR_STATE: return "reorder";
    case EL_ERR_CRYPTO: return "auth";
    default: return "error";
    }
}

const el_fcipher_stats *el_fcipher_stats_get(const el_fcipher *c)
{
    return c ? &c->stats : NULL;
}

uint64_t el_fcipher_counter(const el_fcipher *c)
{
    return c ? c->next : 0;
}

int el_fcipher_seek(el_fcipher *c, uint64_t n)
{
    if (!c)
        return EL_ERR_INVALID;
    if (n < c->next)
        return EL_ERR_INVALID;
    if (c->broken)
        return EL_ERR_STATE;
    for (uint64_t e = c->next / EL_FRAME_REKEY_EVERY; e < n / EL_FRAME_REKEY_EVERY; e++) {
        if (el_noise_cipher_rekey(c->cs) != EL_OK) {
            c->broken = 1;
            return EL_ERR_CRYPTO;
        }
    }
    c->next = n;
    return EL_OK;
}

void el_fcipher_free(el_fcipher *c)
{
    if (!c)
        return;
    el_noise_cipher_free(c->cs);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}
