/* The monotonic clock every timing in the harness reads (seconds as a double), and the
 * process's CPU time (clock.c). */
#ifndef AMPBENCH_CLOCK_H
#define AMPBENCH_CLOCK_H

#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The CPU seconds this process has run, all its threads together (ended ones included): unlike
 * now_s, blind to the time a shared machine's other tenants take from it (a VM's steal, a busy
 * host's run queue). The process clock (CLOCK_PROCESS_CPUTIME_ID) alone counts another running
 * thread's time only up to its last scheduler tick, so that 50 ms windows on two busy threads
 * read up to 2% more CPU time than two cores can give; on Linux each thread's clock is read
 * first, which brings it up to date (tests/test_clock.c). */
double cpu_s(void);

#endif
