/* The process's CPU time, read thread by thread (clock.h). */
#include "clock.h"

#include <stdlib.h>
#if defined(__linux__)
#include <dirent.h>
#endif

static double seconds_of(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return -1.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct cpu_reading cpu_read(void)
{
    struct cpu_reading r = { .threads_s = -1.0, .process_s = seconds_of(CLOCK_PROCESS_CPUTIME_ID) };
#if defined(__linux__)
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return r;
    double sum = 0.0;
    int lost = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        const unsigned long tid = strtoul(e->d_name, NULL, 10);
        /* the thread's CPU clock: the kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), the
           id glibc's pthread_getcpuclockid builds; read from another thread, it includes the
           time the thread has run since its last tick */
        const double s = seconds_of((clockid_t)((int)(~(unsigned)tid << 3) | 6));
        if (s < 0.0) { /* (it ended meanwhile) */
            lost = 1;
            continue;
        }
        sum += s;
        r.who[0]++;
        r.who[1] += (uint64_t)tid * tid;
    }
    closedir(d);
    if (!lost)
        r.threads_s = sum;
#endif
    return r;
}

double cpu_seconds(const struct cpu_reading *a, const struct cpu_reading *b)
{
    if (a->threads_s >= 0.0 && b->threads_s >= 0.0 && a->who[0] == b->who[0] &&
        a->who[1] == b->who[1])
        return b->threads_s - a->threads_s;
    return b->process_s - a->process_s;
}
