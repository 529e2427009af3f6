/* fuzz_sdp.c - libFuzzer target: el_sdp_parse / el_sdp_write round trips,
 * answers built to every accepted offer, and the candidate and fingerprint
 * helpers. The invariants live in fuzz_checks_rtc.h. Seeds:
 * tests/fuzz/corpus/sdp/ (captured browser SDPs); dictionary: sdp.dict. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_checks_rtc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_sdp(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_sdp: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
