/* Backend-independent parts of the backend interface: choosing a backend by name, tensor
 * allocation with per-category memory accounting. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#ifdef AMPBENCH_HAVE_CUDA
#include "cuda_info.h"
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

size_t dtype_size(enum amp_dtype dtype)
{
    switch (dtype) {
    case AMP_F16:
    case AMP_BF16:
        return 2;
    case AMP_F32:
    case AMP_I32:
        return 4;
    }
    return 4;
}

int dtype_is_lowp(enum amp_dtype dtype)
{
    return dtype == AMP_F16 || dtype == AMP_BF16;
}

const char *dtype_name(enum amp_dtype dtype)
{
    switch (dtype) {
    case AMP_F32: return "fp32";
    case AMP_F16: return "fp16";
    case AMP_BF16: return "bf16";
    case AMP_I32: return "int32";
    }
    return "?";
}

const char *mem_category_name(enum mem_category category)
{
    static const char *const names[MEM_NCATEGORIES] = {
        [MEM_WEIGHTS] = "weights",
        [MEM_WEIGHT_COPIES] = "weight_copies",
        [MEM_WEIGHT_GRADS] = "weight_grads",
        [MEM_ACTIVATIONS] = "activations",
        [MEM_ACTIVATION_GRADS] = "activation_grads",
        [MEM_OPTIMIZER] = "optimizer",
        [MEM_WORKSPACE] = "workspace",
    };
    return (unsigned)category < MEM_NCATEGORIES ? names[category] : "?";
}

int tensor_alloc(struct backend *be, struct amp_tensor *t, size_t numel, enum amp_dtype dtype,
                 enum mem_category category)
{
    size_t bytes = numel * dtype_size(dtype);
    memset(t, 0, sizeof *t);
    int rc = be->ops->alloc(be->ctx, &t->data, bytes);
    if (rc != AMP_OK)
        return amp_fail(rc, "out of %s memory allocating %zu bytes of %s", be->ops->name, bytes,
                        mem_category_name(category));
    t->numel = numel;
    t->dtype = dtype;
    t->category = category;
    struct mem_stats *m = &be->mem;
    m->current[category] += bytes;
    m->current_total += bytes;
    if (m->current[category] > m->peak[category])
        m->peak[category] = m->current[category];
    if (m->current_total > m->peak_total)
        m->peak_total = m->current_total;
    return AMP_OK;
}

void tensor_free(struct backend *be, struct amp_tensor *t)
{
    if (!t->data)
        return;
    size_t bytes = t->numel * dtype_size(t->dtype);
    be->ops->free(be->ctx, t->data);
    be->mem.current[t->category] -= bytes;
    be->mem.current_total -= bytes;
    memset(t, 0, sizeof *t);
}
