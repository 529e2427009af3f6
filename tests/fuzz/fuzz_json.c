/* fuzz_json.c - libFuzzer target: el_json_validate, el_json_scan and the navigation helpers, cross-checked
 * against jansson.
 * The invariants live in fuzz_checks.h (shared with tests/unit/test_fuzz_corpus.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_json(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_json: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
