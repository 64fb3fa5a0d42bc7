/* The monotonic clock every timing in the harness reads (seconds as a double). */
#ifndef AMPBENCH_CLOCK_H
#define AMPBENCH_CLOCK_H

#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
