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

/* The CPU seconds this process has run, all its threads together: unlike now_s, blind to the
 * time a shared machine's other tenants take from it (a VM's steal, a busy host's run queue). */
static inline double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
