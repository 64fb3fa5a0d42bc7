/* `ampbench info`: version, build options, CPU and threads; the backends compiled in, and what
 * each says of its device (for CUDA: the GPU, driver, CUDA runtime, cuBLAS and cuDNN versions
 * and SM count). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "runner.h"
#include "error.h"
#include "cli.h"
#include "idx.h"
#include "registry.h"
#include "sysinfo.h"

#ifndef AMPBENCH_VERSION
#define AMPBENCH_VERSION "unknown"
#endif

int cmd_info(int argc, char **argv, const char *command_line)
{
    (void)command_line;
    const int rc = cli_parse_extras(argc, argv, NULL);
    if (rc < 0) {
        printf("usage: ampbench info\n  prints version, build options, CPU features and threads\n");
        return 0;
    }
    if (rc != AMP_OK)
        return runner_report_error(rc);
    struct host_info h;
    host_info_get(&h);
    const char *data = dataset_default_dir();
    printf("ampbench %s (git %s, %s build)\n", AMPBENCH_VERSION, h.git_revision, h.build_type);
    printf("compiler:     %s\n", h.compiler);
    printf("CUDA backend: %s\n", h.cuda_compiled ? "compiled in" : "not compiled in");
    printf("backends:     ");
    const struct backend_ops *b, *preferred = NULL;
    for (size_t i = 0; (b = backend_at(i)); i++) {
        printf("%s%s", i ? ", " : "", b->name);
        if (b->usable && !preferred)
            preferred = b;
    }
    if (preferred)
        printf(" (--device auto picks %s when a device is usable)", preferred->name);
    printf("\n");
    for (size_t i = 0; (b = backend_at(i)); i++)
        if (b->describe_device) {
            char dev[1024];
            b->describe_device(dev, sizeof dev);
            fputs(dev, stdout);
        }
    printf("CPU:          %s\n", h.cpu_model);
    printf("CPU features: %s\n", h.cpu_features);
    printf("cores:        %d (OpenMP threads by default: %d)\n", h.cores, h.max_threads);
    printf("OS:           %s\n", h.os);
    printf("libraries:    zlib %s, cJSON %s, OpenMP %s\n", h.zlib_release, h.cjson_version,
           h.openmp_version);
    printf("default data: %s\n", data ? data : "(none: apt-get install dataset-fashion-mnist)");
    return 0;
}
