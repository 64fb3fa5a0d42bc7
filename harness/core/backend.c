/* Backend-independent parts of the backend interface: dtypes, memory categories, tensor
 * allocation with per-category memory accounting. */
#include "backend.h"

#include <string.h>

#include "error.h"
size_t dtype_size(enum amp_dtype dtype)
{
    switch (dtype) {
    case AMP_F16:
    case AMP_BF16:
        return 2;
    case AMP_F32:
    case AMP_I32:
        return 4;
    case AMP_U8:
        return 1;
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
    case AMP_U8: return "uint8";
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
        [MEM_DATA] = "data",
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
    if (m->current[category] > m->peak[category])
        m->peak[category] = m->current[category];
    if (category == MEM_DATA)
        return AMP_OK; /* not a recipe's training memory (backend.h) */
    m->current_total += bytes;
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
    if (t->category != MEM_DATA)
        be->mem.current_total -= bytes;
    memset(t, 0, sizeof *t);
}
