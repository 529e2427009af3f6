/* e2ee_bench - the cost of EchoLink's E2EE (PROTOCOL.md §9): one transport
 * frame sealed and opened (el_fcipher) for several message sizes, and one
 * whole Noise XX handshake (both sides, in memory). bench/e2ee.sh prints it
 * beside `openssl speed -evp aes-256-gcm` from the same run.
 *
 *   e2ee_bench [seconds-per-figure]
 *
 * Output, one line per figure:
 *   frame <bytes> <ns per seal+open> <messages measured>
 *   handshake <us per handshake (both sides)> <handshakes measured> */
#include "crypto/e2ee.h"
#include "crypto/frame.h"
#include "crypto/identity.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_frames(size_t size, double secs)
{
    uint8_t key[32];
    el_fcipher *tx = NULL, *rx = NULL;
    RAND_bytes(key, sizeof key);
    if (el_fcipher_new(&tx, key) || el_fcipher_new(&rx, key))
        return -1;
    uint8_t *pt = malloc(size), *frame = malloc(size + EL_FRAME_OVERHEAD), *back = malloc(size + 1);
    RAND_bytes(pt, (int)size);
    uint64_t n = 0;
    double t0 = now(), t = t0;
    while (t - t0 < secs) {
        for (int i = 0; i < 256; i++, n++) {
            size_t flen = 0, blen = 0;
            if (el_fcipher_seal(tx, pt, size, frame, size + EL_FRAME_OVERHEAD, &flen) ||
                el_fcipher_open(rx, frame, flen, back, size + 1, &blen) || blen != size) {
                fprintf(stderr, "e2ee_bench: frame round trip failed at %llu\n", (unsigned long long)n);
                return -1;
            }
        }
        t = now();
    }
    if (memcmp(pt, back, size) != 0)
        return -1;
    printf("frame %zu %.0f %llu\n", size, (t - t0) * 1e9 / (double)n, (unsigned long long)n);
    free(pt);
    free(frame);
    free(back);
    el_fcipher_free(tx);
    el_fcipher_free(rx);
    return 0;
}

/* One complete handshake between two fresh el_hs objects. */
static int one_handshake(const el_identity *a, const el_identity *b, const uint8_t fp[2][32])
{
    el_hs *i = NULL, *r = NULL;
    uint8_t m1[512], m2[512], m3[512];
    size_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    int rc = el_hs_new(&i, EL_HS_INITIATOR, a, el_identity_peer_id(b), fp[0], fp[1]);
    rc = rc ? rc : el_hs_new(&r, EL_HS_RESPONDER, b, el_identity_peer_id(a), fp[0], fp[1]);
    rc = rc ? rc : el_hs_start(i, m1, sizeof m1, &n1);
    rc = rc ? rc : el_hs_recv(r, m1, n1, m2, sizeof m2, &n2);
    rc = rc ? rc : el_hs_recv(i, m2, n2, m3, sizeof m3, &n3);
    rc = rc ? rc : el_hs_recv(r, m3, n3, m1, sizeof m1, &n4);
    if (!rc && !(el_hs_is_done(i) && el_hs_is_done(r)))
        rc = -1;
    el_hs_free(i);
    el_hs_free(r);
    return rc;
}

static int bench_handshake(double secs)
{
    el_identity *a = NULL, *b = NULL;
    char err[128];
    uint8_t fp[2][32];
    RAND_bytes(&fp[0][0], sizeof fp);
    if (el_identity_generate(&a, err, sizeof err) || el_identity_generate(&b, err, sizeof err))
        return -1;
    uint64_t n = 0;
    double t0 = now(), t = t0;
    while (t - t0 < secs) {
        if (one_handshake(a, b, (const uint8_t(*)[32])fp) != 0) {
            fprintf(stderr, "e2ee_bench: handshake failed\n");
            return -1;
        }
        n++;
        t = now();
    }
    printf("handshake %.1f %llu\n", (t - t0) * 1e6 / (double)n, (unsigned long long)n);
    el_identity_free(a);
    el_identity_free(b);
    return 0;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    static const size_t sizes[] = {16, 100, 1024, 8192, 16384, 65536};
    if (secs <= 0)
        secs = 1.0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (bench_frames(sizes[i], secs) != 0)
            return 1;
    return bench_handshake(secs) != 0;
}
