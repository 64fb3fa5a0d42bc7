/* What machine and build a run happened on: CPU, features, compiler, libraries, revision. */
#ifndef AMPBENCH_SYSINFO_H
#define AMPBENCH_SYSINFO_H

#include <stddef.h>

struct host_info {
    char cpu_model[128];
    char cpu_features[256]; /* space-separated SIMD features the build can use */
    int cores;              /* online logical CPUs */
    int max_threads;        /* OpenMP's default thread count */
    char os[256];
    char hostname[64];
    char compiler[64];
    char build_type[32];
    char git_revision[48];
    char zlib_release[16];
    char cjson_version[16];
    char openmp_version[16];
    int cuda_compiled;
};

void host_info_get(struct host_info *h);

/* Bytes of memory this process can still take: MemAvailable of /proc/meminfo, or the cgroup v2
 * limit less its use when that is lower; `how` names the source. 0 when unknown. */
unsigned long long host_memory_available(char *how, size_t len);

#endif
