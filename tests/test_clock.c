/* harness/sys/clock.c's cpu_s: the process's CPU time. With two threads busy (this one and a
 * spinning one), no window reads more CPU time than two threads can run in it (the process
 * clock alone, CLOCK_PROCESS_CPUTIME_ID, read up to 2% more over 50 ms windows on a quiet
 * machine here: it counts the other thread's time only up to its last tick, or its last context
 * switch on a busy machine); and a thread that starts and ends between two readings is counted.
 * Prints "N passed, N failed"; exits non-zero on a failure. */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "clock.h"

static atomic_int stop;

static void *spin(void *arg)
{
    volatile double x = 0.0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x += 1.0;
    return arg;
}

static void busy(double seconds)
{
    volatile double x = 0.0;
    const double t0 = now_s();
    while (now_s() - t0 < seconds)
        x += 1.0;
}

/* Runs until it has used 20 ms of CPU (its own clock, whatever the machine's load). */
static void *busy_thread(void *arg)
{
    volatile double x = 0.0;
    struct timespec ts = { 0, 0 };
    while (ts.tv_sec == 0 && ts.tv_nsec < 20000000L) {
        x += 1.0;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    }
    return arg;
}

int main(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, spin, NULL) != 0) {
        check(0, "pthread_create");
        return check_summary();
    }
    double worst = 0.0, total = 0.0, wall_total = 0.0;
    for (int w = 0; w < 40; w++) {
        const double t0 = now_s(), c0 = cpu_s();
        busy(0.05);
        const double cpu = cpu_s() - c0, wall = now_s() - t0;
        worst = cpu / (2.0 * wall) > worst ? cpu / (2.0 * wall) : worst;
        total += cpu;
        wall_total += wall;
    }
    check(worst <= 1.0, "two busy threads' CPU time within twice the wall time of every 50 ms "
                        "window (worst %.5f of it)", worst);
    check(total > 0.1 * wall_total, "the busy threads' time counted (%.3f CPU-s in %.3f s)", total,
          wall_total);
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    /* a thread that starts and ends between two readings: its 20 ms in */
    const double c0 = cpu_s();
    pthread_t t2;
    const int made = pthread_create(&t2, NULL, busy_thread, NULL) == 0;
    if (made)
        pthread_join(t2, NULL);
    const double cpu = cpu_s() - c0;
    check(made && cpu >= 0.02, "a thread that started and ended between two readings counted "
                               "(%.4f CPU-s of its 0.02)", cpu);
    return check_summary();
}
