/* gen_seal_seeds.c - writes the seeds of tests/fuzz/corpus/seal/: real
 * envelopes sealed to bob (tests/vectors/e2ee.json) by alice and carol, for
 * the plaintexts named on the command line (kind byte 0x01 prepended) and a
 * few built in (kind only, a file chunk, the largest plaintext). Run by hand
 * when the envelope format changes; the output is committed:
 *
 *   cmake --build build-fuzz --target gen_seal_seeds
 *   build-fuzz/bin/gen_seal_seeds tests/fuzz/corpus/seal tests/fuzz/corpus/msg/ok-*
 *
 * Deterministic: the ephemeral key of seed i is fixed by i. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EL_FUZZ_NO_MAIN
#include "fuzz_seal.c"

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        if (f)
            fclose(f);
        fprintf(stderr, "gen_seal_seeds: cannot write %s\n", path);
        return -1;
    }
    return fclose(f);
}

/* Seals pt from `from` to bob with ephemeral key number i into dir/name. */
static int seal_one(const char *dir, const char *name, int from, const uint8_t *pt, size_t n, int i)
{
    uint8_t eph[32];
    for (int k = 0; k < 32; k++)
        eph[k] = (uint8_t)(0x40 + i * 7 + k);
    eph[0] &= 248;
    uint8_t *env = malloc(n + EL_SEAL_OVERHEAD);
    size_t elen = 0;
    int rc = env ? el_seal_with_ephemeral(el_fuzz_seal_ids[from], el_identity_bundle(el_fuzz_seal_ids[1]),
                                          pt, n, env, n + EL_SEAL_OVERHEAD, &elen, eph)
                 : EL_ERR_NOMEM;
    if (rc == EL_OK) {
        /* a seed that the check refuses is a generator bug */
        const char *bad = el_fuzz_check_seal(env, elen);
        if (bad) {
            fprintf(stderr, "gen_seal_seeds: %s: %s\n", name, bad);
            rc = EL_ERR_STATE;
        } else {
            rc = write_file(dir, name, env, elen);
        }
    }
    free(env);
    return rc;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(EL_SEAL_PT_MAX + 1);
    size_t got = buf ? fread(buf + 1, 1, EL_SEAL_PT_MAX - 1, f) : 0;
    fclose(f);
    if (buf) {
        buf[0] = 0x01; /* a MESSAGE plaintext (§9.3) */
        *n = got + 1;
    }
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUTDIR [MESSAGE-FILE...]\n", argv[0]);
        return 2;
    }
    if (el_fuzz_seal_setup()) {
        fprintf(stderr, "gen_seal_seeds: setup failed\n");
        return 1;
    }
    const char *dir = argv[1];
    int rc = 0, i = 0;
    static const uint8_t kind_only[] = {0x01};
    rc |= seal_one(dir, "alice-kind-only", 0, kind_only, 1, i++);
    uint8_t chunk[24 + 1 + 16];
    memset(chunk, 0, sizeof chunk);
    chunk[0] = 0x02;
    memcpy(chunk + 1, "0123456789abcdef", 16);
    memcpy(chunk + 25, "chunk data here.", 16);
    rc |= seal_one(dir, "alice-chunk", 0, chunk, sizeof chunk, i++);
    uint8_t *big = malloc(EL_SEAL_PT_MAX);
    if (big) {
        memset(big, 'a', EL_SEAL_PT_MAX);
        big[0] = 0x01;
        rc |= seal_one(dir, "alice-largest", 0, big, EL_SEAL_PT_MAX, i++);
        free(big);
    }
    for (int a = 2; a < argc; a++) {
        size_t n = 0;
        uint8_t *pt = read_file(argv[a], &n);
        if (!pt) {
            fprintf(stderr, "gen_seal_seeds: cannot read %s\n", argv[a]);
            rc = 1;
            continue;
        }
        const char *base = strrchr(argv[a], '/');
        base = base ? base + 1 : argv[a];
        char name[256];
        snprintf(name, sizeof name, "%s-%s", a % 2 ? "carol" : "alice", base);
        rc |= seal_one(dir, name, a % 2 ? 2 : 0, pt, n, i++);
        free(pt);
    }
    el_fuzz_seal_done();
    return rc ? 1 : 0;
}
