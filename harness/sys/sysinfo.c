/* What machine and build a run happened on, read from /proc, uname, the compiler and the
 * libraries themselves. */
#include "sysinfo.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#ifndef AMPBENCH_GIT_REVISION
#define AMPBENCH_GIT_REVISION "unknown"
#endif
#ifndef AMPBENCH_BUILD_TYPE
#define AMPBENCH_BUILD_TYPE "unknown"
#endif

static void read_cpu_model(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (colon) {
            snprintf(out, len, "%s", colon + 2);
            out[strcspn(out, "\n")] = '\0';
        }
        break;
    }
    fclose(f);
}

static void read_cpu_features(char *out, size_t len)
{
    out[0] = '\0';
#if defined(__x86_64__) || defined(__i386__)
    static const char *const names[] = { "sse4.2", "avx", "avx2", "fma", "f16c", "avx512f",
                                         "avx512bw", "avx512vl", "avx512bf16", "avx512fp16" };
    const int have[] = {
        __builtin_cpu_supports("sse4.2"), __builtin_cpu_supports("avx"),
        __builtin_cpu_supports("avx2"), __builtin_cpu_supports("fma"),
        __builtin_cpu_supports("f16c"), __builtin_cpu_supports("avx512f"),
        __builtin_cpu_supports("avx512bw"), __builtin_cpu_supports("avx512vl"),
        __builtin_cpu_supports("avx512bf16"), __builtin_cpu_supports("avx512fp16"),
    };
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && used < len; i++)
        if (have[i])
            used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", names[i]);
#else
    snprintf(out, len, "(not x86)");
#endif
}

void host_info_get(struct host_info *h)
{
    memset(h, 0, sizeof *h);
    read_cpu_model(h->cpu_model, sizeof h->cpu_model);
    read_cpu_features(h->cpu_features, sizeof h->cpu_features);
    h->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    h->max_threads = omp_get_max_threads();
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(h->os, sizeof h->os, "%.60s %.120s %.60s", u.sysname, u.release, u.machine);
    if (gethostname(h->hostname, sizeof h->hostname - 1) != 0)
        snprintf(h->hostname, sizeof h->hostname, "unknown");
#if defined(__clang__)
    snprintf(h->compiler, sizeof h->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(h->compiler, sizeof h->compiler, "gcc %s", __VERSION__);
#else
    snprintf(h->compiler, sizeof h->compiler, "unknown");
#endif
    snprintf(h->build_type, sizeof h->build_type, "%s", AMPBENCH_BUILD_TYPE);
    snprintf(h->git_revision, sizeof h->git_revision, "%s", AMPBENCH_GIT_REVISION);
    snprintf(h->zlib_release, sizeof h->zlib_release, "%s", zlibVersion());
    snprintf(h->cjson_version, sizeof h->cjson_version, "%s", cJSON_Version());
    snprintf(h->openmp_version, sizeof h->openmp_version, "%d", _OPENMP);
#ifdef AMPBENCH_HAVE_CUDA
    h->cuda_compiled = 1;
#endif
}

/* One number from a /sys or /proc file ("max" or unreadable: 0). */
static unsigned long long read_number(const char *path)
{
    unsigned long long v = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

unsigned long long host_memory_available(char *how, size_t len)
{
    unsigned long long avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &avail) == 1) {
                avail *= 1024;
                break;
            }
        fclose(f);
    }
    snprintf(how, len, "MemAvailable in /proc/meminfo");
    /* A cgroup v2 limit (a container, systemd-run -p MemoryMax) binds before the machine's. */
    const unsigned long long max = read_number("/sys/fs/cgroup/memory.max");
    const unsigned long long cur = read_number("/sys/fs/cgroup/memory.current");
    if (max && (!avail || max - (cur < max ? cur : max) < avail)) {
        avail = max - (cur < max ? cur : max);
        snprintf(how, len, "the cgroup's memory.max less memory.current");
    }
    return avail;
}
