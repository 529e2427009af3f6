/* fuzz_dcep.c - libFuzzer target: el_dcep_parse / el_dcep_write round trips
 * (DATA_CHANNEL_OPEN and ACK, RFC 8832). The invariants live in
 * fuzz_checks_rtc.h. Seeds: tests/fuzz/corpus/dcep/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_checks_rtc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_dcep(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_dcep: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
