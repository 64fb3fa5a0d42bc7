/* The registry: the one file that names every backend (the CPU reference, and CUDA in builds
 * with AMPBENCH_HAVE_CUDA); `--device` names are looked up and opened here, and the rest of the
 * harness reaches a backend's context-free queries (usable, describe_device, peak_flops) through
 * backend_at and backend_named. */
#include "registry.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* Each backend's table, defined in its own folder (reference/cpu_backend.c, kernels/cuda_backend.cu). */
extern const struct backend_ops cpu_backend_ops;
#ifdef AMPBENCH_HAVE_CUDA
extern const struct backend_ops cuda_backend_ops;
#endif

/* The CPU reference first. `--device auto` takes the first backend with a `usable` entry (a
 * device) that says yes, else the CPU reference. */
static const struct backend_ops *const backends[] = {
    &cpu_backend_ops,
#ifdef AMPBENCH_HAVE_CUDA
    &cuda_backend_ops,
#endif
};
enum { NBACKENDS = sizeof backends / sizeof backends[0] };

/* The note `auto` leaves for the first backend_open to print (once per process). */
static char auto_note[400];
static int auto_noted;

/* "cuda" -> "CUDA", for messages. */
static const char *upper(char *buf, size_t len, const char *name)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = (char)toupper((unsigned char)name[i]);
    buf[i] = '\0';
    return buf;
}

const struct backend_ops *backend_at(size_t i)
{
    return i < NBACKENDS ? backends[i] : NULL;
}

const struct backend_ops *backend_named(const char *name)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

const char *backend_resolve(const char *name)
{
    if (strcmp(name, "auto") != 0)
        return name;
    for (size_t i = 0; i < NBACKENDS; i++) {
        char why[256], dev[16];
        if (!backends[i]->usable)
            continue;
        if (backends[i]->usable(why, sizeof why))
            return backends[i]->name;
        if (!auto_noted)
            snprintf(auto_note, sizeof auto_note,
                     "ampbench: --device auto: no usable %s device (%s); running on the CPU",
                     upper(dev, sizeof dev, backends[i]->name), why);
    }
    return backends[0]->name;
}

int backend_find(const char *name, const struct backend_ops **ops)
{
    name = backend_resolve(name);
    const struct backend_ops *b = backend_named(name);
    char why[256], dev[16];
    if (b && b->usable && !b->usable(why, sizeof why))
        return amp_fail(AMP_EINPUT, "--device %s: no usable %s device (%s)", name,
                        upper(dev, sizeof dev, name), why);
    if (b) {
        *ops = b;
        return AMP_OK;
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

