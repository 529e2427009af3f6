/* fuzz_frame.c - libFuzzer target: arbitrary bytes as a received DATA frame
 * (el_fcipher_open, docs/PROTOCOL.md §9.3), and as a plaintext to seal and
 * open again. Seeds: tests/fuzz/corpus/frame/ (the frames and bad_frames of
 * tests/vectors/e2ee.json, under the same key as below).
 *
 * Invariants, checked by el_fuzz_check_frame():
 *  - the result is EL_OK or one of the four drop reasons, and the reason is
 *    the one the §9.3 rules (checked here independently, in their order)
 *    give for these bytes; on anything but "auth" the verdict is certain;
 *  - exactly the counter of that reason moved, by one;
 *  - the expected counter advances by one on EL_OK and not otherwise, and
 *    a rejected frame leaves the receiver able to open the genuine frame;
 *  - seal then open of the input as plaintext gives it back.
 * tests/unit/test_frame.c includes this file (with EL_FUZZ_NO_MAIN) and runs
 * the seeds through the same check. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "crypto/frame.h"

/* The "chat" key_ir of e2ee.json's alice->bob handshake, the key of every
 * frames/bad_frames seed. */
static const uint8_t el_fuzz_frame_key[32] = {
    0x86, 0x9b, 0x44, 0xc4, 0xca, 0x3e, 0xcd, 0x88, 0x67, 0x77, 0xab, 0xef, 0x1e, 0x21, 0x70, 0xf4,
    0xcc, 0x00, 0xbd, 0x73, 0xd5, 0x1a, 0x1e, 0x8e, 0x04, 0xfe, 0xa5, 0x63, 0xcc, 0xbb, 0xb8, 0xa2};

static uint64_t el_fuzz_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t el_fuzz_stat_sum(const el_fcipher_stats *s)
{
    return s->truncated + s->replay + s->reorder + s->auth;
}

/* One receiver at counter `at` opens the input. */
static const char *el_fuzz_open_at(const uint8_t *data, size_t size, uint64_t at)
{
    const char *bad = NULL;
    el_fcipher *rx = NULL;
    uint8_t *out = malloc(size ? size : 1);
    size_t outlen = 12345;
    if (!out || el_fcipher_new(&rx, el_fuzz_frame_key) != EL_OK || el_fcipher_seek(rx, at) != EL_OK) {
        bad = "setup failed";
        goto done;
    }
    int rc = el_fcipher_open(rx, data, size, out, size, &outlen);
    const el_fcipher_stats *st = el_fcipher_stats_get(rx);

    /* the §9.3 verdict, computed here from the rules */
    int want;
    if (size < EL_FRAME_OVERHEAD || size > EL_FRAME_MAX || data[0] != EL_FRAME_DATA)
        want = EL_ERR_INVALID;
    else if (el_fuzz_u64(data + 1) < at)
        want = EL_ERR_EXISTS;
    else if (el_fuzz_u64(data + 1) > at)
        want = EL_ERR_STATE;
    else
        want = 1; /* EL_OK or EL_ERR_CRYPTO: only the key can tell */

    if (want != 1 && rc != want) {
        bad = "wrong drop reason";
        goto done;
    }
    if (want == 1 && rc != EL_OK && rc != EL_ERR_CRYPTO) {
        bad = "unexpected result for a well-formed frame";
        goto done;
    }
    if (rc == EL_OK) {
        if (outlen != size - EL_FRAME_OVERHEAD || el_fcipher_counter(rx) != at + 1 ||
            el_fuzz_stat_sum(st) != 0)
            bad = "accepted frame: wrong length, counter or stats";
        goto done;
    }
    if (outlen != 0 || el_fcipher_counter(rx) != at || el_fuzz_stat_sum(st) != 1) {
        bad = "rejected frame changed the state or the stats wrongly";
        goto done;
    }
    if ((rc == EL_ERR_INVALID && st->truncated != 1) || (rc == EL_ERR_EXISTS && st->replay != 1) ||
        (rc == EL_ERR_STATE && st->reorder != 1) || (rc == EL_ERR_CRYPTO && st->auth != 1)) {
        bad = "the counted reason differs from the returned one";
        goto done;
    }
    /* still in sync: the genuine next frame opens */
    {
        el_fcipher *tx = NULL;
        uint8_t f[EL_FRAME_OVERHEAD + 3], p[3];
        size_t fl = 0, pl = 0;
        if (el_fcipher_new(&tx, el_fuzz_frame_key) != EL_OK || el_fcipher_seek(tx, at) != EL_OK ||
            el_fcipher_seal(tx, (const uint8_t *)"\x01{}", 3, f, sizeof f, &fl) != EL_OK ||
            el_fcipher_open(rx, f, fl, p, sizeof p, &pl) != EL_OK || pl != 3 || memcmp(p, "\x01{}", 3) != 0)
            bad = "a rejected frame broke the receiver";
        el_fcipher_free(tx);
    }
done:
    el_fcipher_free(rx);
    free(out);
    return bad;
}

static const char *el_fuzz_roundtrip(const uint8_t *data, size_t size)
{
    const char *bad = NULL;
    el_fcipher *tx = NULL, *rx = NULL;
    size_t ptlen = size > EL_FRAME_PT_MAX ? EL_FRAME_PT_MAX : size;
    uint8_t *frame = malloc(ptlen + EL_FRAME_OVERHEAD);
    uint8_t *back = malloc(ptlen ? ptlen : 1);
    size_t fl = 0, bl = 0;
    if (!frame || !back || el_fcipher_new(&tx, el_fuzz_frame_key) || el_fcipher_new(&rx, el_fuzz_frame_key))
        bad = "setup failed";
    else if (el_fcipher_seal(tx, data, ptlen, frame, ptlen + EL_FRAME_OVERHEAD, &fl) != EL_OK ||
             fl != ptlen + EL_FRAME_OVERHEAD)
        bad = "seal failed";
    else if (el_fcipher_open(rx, frame, fl, back, ptlen, &bl) != EL_OK || bl != ptlen ||
             (ptlen && memcmp(back, data, ptlen) != 0))
        bad = "seal/open round trip differs";
    el_fcipher_free(tx);
    el_fcipher_free(rx);
    free(frame);
    free(back);
    return bad;
}

static const char *el_fuzz_check_frame(const uint8_t *data, size_t size)
{
    const char *bad = el_fuzz_open_at(data, size, 0);
    if (!bad)
        bad = el_fuzz_open_at(data, size, 1);
    if (!bad)
        bad = el_fuzz_open_at(data, size, 65535); /* acceptance rekeys */
    if (!bad && size >= EL_FRAME_HEADER) /* the counter the frame names */
        bad = el_fuzz_open_at(data, size, el_fuzz_u64(data + 1) == UINT64_MAX ? 0 : el_fuzz_u64(data + 1) % (1u << 20));
    if (!bad)
        bad = el_fuzz_roundtrip(data, size);
    return bad;
}

#ifndef EL_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_frame(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_frame: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif
