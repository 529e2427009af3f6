/* fuzz_sio.c - libFuzzer target: el_sio_parse: field invariants and a serialize/parse round trip.
 * The invariants live in fuzz_checks.h (shared with tests/unit/test_fuzz_corpus.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_sio(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_sio: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
