/* fuzz_eio.c - libFuzzer target: el_eio_parse and el_eio_payload_next over polling bodies, with
 * el_b64_decode of binary records (canonical encodings only) and el_sio_parse
 * of message records.
 * The invariants live in fuzz_checks.h (shared with tests/unit/test_fuzz_corpus.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_eio(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_eio: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
