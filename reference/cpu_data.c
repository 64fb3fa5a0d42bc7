/* CPU reference: batches built from the data set held by the backend (gather_batch): the
 * samples of an index list, pixels normalised as harness/data/idx.c does (x / 255 in FP32). */
#include "cpu_ops.h"

/* images [n, pixels] = data[idx[i] * pixels + p] / 255; labels [n] = data_labels[idx[i]]. */
void cpu_gather_batch(void *ctx, struct amp_tensor *images, struct amp_tensor *labels,
                      const struct amp_tensor *data, const struct amp_tensor *data_labels,
                      const struct amp_tensor *idx, uint32_t n, uint32_t pixels)
{
    struct cpu_ctx *c = ctx;
    const uint8_t *px = data->data, *lab = data_labels->data;
    const int32_t *ix = idx->data;
    float *out = images->data;
    int32_t *lo = labels->data;
#pragma omp parallel for schedule(static) num_threads(c->threads) \
    if ((size_t)n * pixels >= CPU_PARALLEL_MIN)
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *src = px + (size_t)ix[i] * pixels;
        float *dst = out + (size_t)i * pixels;
        for (uint32_t p = 0; p < pixels; p++)
            dst[p] = (float)src[p] / 255.0f;
        lo[i] = lab[ix[i]];
    }
}
