/* The registry: the one file that names every backend (the CPU reference, and CUDA in builds
 * with AMPBENCH_HAVE_CUDA); `--device` names are looked up and opened here. */
#include "registry.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#ifdef AMPBENCH_HAVE_CUDA
#include "cuda_info.h"
#endif

/* Each backend's table, defined in its own folder (reference/cpu_backend.c, kernels/cuda_backend.cu). */
extern const struct backend_ops cpu_backend_ops;
#ifdef AMPBENCH_HAVE_CUDA
extern const struct backend_ops cuda_backend_ops;
#endif

static const struct backend_ops *const backends[] = {
    &cpu_backend_ops,
#ifdef AMPBENCH_HAVE_CUDA
    &cuda_backend_ops,
#endif
};

/* The note `auto` leaves for the first backend_open to print (once per process). */
static char auto_note[400];
static int auto_noted;

const char *backend_resolve(const char *name)
{
    if (strcmp(name, "auto") != 0)
        return name;
#ifdef AMPBENCH_HAVE_CUDA
    char why[256];
    if (cuda_device_usable(why, sizeof why))
        return "cuda";
    if (!auto_noted)
        snprintf(auto_note, sizeof auto_note,
                 "ampbench: --device auto: no usable CUDA device (%s); running on the CPU", why);
#endif
    return "cpu";
}

int backend_find(const char *name, const struct backend_ops **ops)
{
    name = backend_resolve(name);
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (strcmp(backends[i]->name, name) == 0) {
#ifdef AMPBENCH_HAVE_CUDA
            char why[256];
            if (backends[i] == &cuda_backend_ops && !cuda_device_usable(why, sizeof why))
                return amp_fail(AMP_EINPUT, "--device cuda: no usable CUDA device (%s)", why);
#endif
            *ops = backends[i];
            return AMP_OK;
        }
    }
#ifdef AMPBENCH_HAVE_CUDA
    return amp_fail(AMP_EINPUT, "--device %s: unknown device (known: auto, cpu, cuda)", name);
#else
    if (strcmp(name, "cuda") == 0)
        return amp_fail(AMP_EINPUT, "--device cuda: this build has no CUDA backend");
    return amp_fail(AMP_EINPUT, "--device %s: unknown device (known: auto, cpu)", name);
#endif
}

int backend_open(struct backend *be, const char *name, const struct backend_options *opts)
{
    memset(be, 0, sizeof *be);
    int rc = backend_find(name, &be->ops);
    if (rc == AMP_OK && auto_note[0]) {
        fprintf(stderr, "%s\n", auto_note);
        auto_note[0] = '\0';
        auto_noted = 1;
    }
    if (rc == AMP_OK)
        rc = be->ops->open(&be->ctx, opts);
    if (rc != AMP_OK) {
        be->ops = NULL;
        return rc;
    }
    be->threads = be->ops->threads(be->ctx);
    return AMP_OK;
}

void backend_close(struct backend *be)
{
    if (be->ops)
        be->ops->close(be->ctx);
    be->ops = NULL;
    be->ctx = NULL;
}

