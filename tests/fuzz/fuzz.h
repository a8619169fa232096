/* Shared declarations of the fuzz targets: the libFuzzer entry point (also driven by driver.c in
 * the crash-regression tests) and a check that aborts so a broken invariant counts as a crash. */
#ifndef P2P_TESTS_FUZZ_H
#define P2P_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/** libFuzzer entry point: runs one input; returns 0 (the input is always "interesting"). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** Aborts (a libFuzzer crash, a failed regression test) when an invariant does not hold. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
