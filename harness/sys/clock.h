/* The monotonic clock every timing in the harness reads (seconds as a double), and the
 * process's CPU time (clock.c). */
#ifndef AMPBENCH_CLOCK_H
#define AMPBENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A reading of the CPU time this process has run, all its threads together: unlike now_s,
 * blind to the time a shared machine's other tenants take from it (a VM's steal, a busy host's
 * run queue). On Linux, each thread's own clock summed: the process clock
 * (CLOCK_PROCESS_CPUTIME_ID) counts another thread's running time only up to its last
 * scheduler tick, so that 50 ms windows on two busy threads read up to 2% more CPU time than
 * two cores can give (tests/test_clock.c). Elsewhere, and where a thread came or went between
 * two readings, the process clock (a thread that both starts and ends between two readings goes
 * unseen: the bench's threads, OpenMP's pool, stay). */
struct cpu_reading {
    double threads_s; /* the threads' clocks summed (< 0: not available) */
    double process_s; /* the process clock */
    uint64_t who[2];  /* the threads read: their count and the sum of their ids' squares */
};
struct cpu_reading cpu_read(void);
/* The CPU seconds from reading a to reading b (read later). */
double cpu_seconds(const struct cpu_reading *a, const struct cpu_reading *b);

#endif
