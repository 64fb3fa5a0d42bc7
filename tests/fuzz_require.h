/* The contract check shared by the fuzz targets: REQUIRE(cond, printf-style message) prints
 * "<FUZZ_NAME>: contract broken: <cond>: <message>" and aborts, so that libFuzzer keeps the input.
 * Define FUZZ_NAME (a string) before including this. */
#ifndef AMPBENCH_FUZZ_REQUIRE_H
#define AMPBENCH_FUZZ_REQUIRE_H

#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond, ...)                                                                    \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s: contract broken: %s: ", FUZZ_NAME, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

#endif
