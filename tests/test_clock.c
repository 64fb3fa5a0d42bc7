/* harness/sys/clock.c: the process's CPU time read thread by thread. With two threads busy
 * (this one and a spinning one), no window reads more CPU time than two threads can run in it
 * (the process clock, CLOCK_PROCESS_CPUTIME_ID, read up to 2% more over 50 ms windows here on a
 * quiet machine: it counts the other thread's time only up to its last tick, or its last
 * context switch on a busy one); and a thread started between two readings is counted (the
 * process clock then). Prints "N passed, N failed"; exits non-zero on a failure. */
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

static atomic_int busy_done, release;

/* Runs until it has used 20 ms of CPU (its own clock, whatever the machine's load), then waits
 * (without running) until released. */
static void *busy_thread(void *arg)
{
    volatile double x = 0.0;
    struct timespec ts = { 0, 0 };
    while (ts.tv_sec == 0 && ts.tv_nsec < 20000000L) {
        x += 1.0;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    }
    atomic_store(&busy_done, 1);
    while (!atomic_load(&release))
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
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
    for (int w = 0; w < 20; w++) {
        const double t0 = now_s();
        const struct cpu_reading a = cpu_read();
        busy(0.05);
        const struct cpu_reading b = cpu_read();
        const double wall = now_s() - t0, cpu = cpu_seconds(&a, &b);
        worst = cpu / (2.0 * wall) > worst ? cpu / (2.0 * wall) : worst;
        total += cpu;
        wall_total += wall;
    }
    check(worst <= 1.0 + 1e-6,
          "two busy threads' CPU time within twice the wall time of every 50 ms window (worst "
          "%.5f of it)", worst);
    check(total > 0.1 * wall_total, "the busy threads' time counted (%.3f CPU-s in %.3f s)", total,
          wall_total);
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    /* a thread started between two readings (the spinner gone, this one waiting): its 20 ms in */
    const struct cpu_reading a = cpu_read();
    pthread_t t2;
    const int made = pthread_create(&t2, NULL, busy_thread, NULL) == 0;
    while (made && !atomic_load(&busy_done))
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    const struct cpu_reading b = cpu_read();
    atomic_store(&release, 1);
    if (made)
        pthread_join(t2, NULL);
    check(made && cpu_seconds(&a, &b) >= 0.0199,
          "a thread started between two readings counted (%.4f CPU-s of its 0.02)",
          cpu_seconds(&a, &b));
    return check_summary();
}
