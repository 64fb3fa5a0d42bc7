/* The process's CPU time (clock.h). */
#include "clock.h"

#include <stdlib.h>
#if defined(__linux__)
#include <dirent.h>
#endif

double cpu_s(void)
{
#if defined(__linux__)
    /* Each thread's own clock read first: reading a running thread's clock brings its CPU time
       up to date (the kernel's task_sched_runtime), which the process clock alone leaves at the
       thread's last tick. The clock id is the kernel's MAKE_THREAD_CPUCLOCK(tid,
       CPUCLOCK_SCHED), the one glibc's pthread_getcpuclockid builds. */
    DIR *d = opendir("/proc/self/task");
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            const unsigned long tid = strtoul(e->d_name, NULL, 10);
            struct timespec ts;
            clock_gettime((clockid_t)((int)(~(unsigned)tid << 3) | 6), &ts);
        }
        closedir(d);
    }
#endif
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
