/* CUDA backend: batches built on the device from the data set held there (gather_batch; the
 * CPU reference's cpu_data.c): the samples of an index list, pixels normalised as
 * harness/data/idx.c does (x / 255, an IEEE FP32 division: the build does not use
 * --use_fast_math, so it is the host's bit for bit). Only the index list crosses from the host
 * per step. */
#include "cuda_dtype.h"
#include "cuda_internal.h"

enum { GATHER_THREADS = 256 };

/* images [n, pixels] = data[idx[i] * pixels + p] / 255, labels [n] = data_labels[idx[i]]: one
 * thread per output pixel (grid-stride), the first pixel's thread writes the label. */
__global__ void __launch_bounds__(GATHER_THREADS)
    gather_batch_kernel(float *images, int32_t *labels, const uint8_t *data,
                        const uint8_t *data_labels, const int32_t *idx, uint32_t pixels,
                        size_t total)
{
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t i = e / pixels, p = e % pixels, sample = (size_t)idx[i];
        images[e] = (float)data[sample * pixels + p] / 255.0f;
        if (p == 0)
            labels[i] = data_labels[sample];
    }
}

void cuda_gather_batch(void *ctx, struct amp_tensor *images, struct amp_tensor *labels,
                       const struct amp_tensor *data, const struct amp_tensor *data_labels,
                       const struct amp_tensor *idx, uint32_t n, uint32_t pixels)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const size_t total = (size_t)n * pixels;
    if (images->dtype != AMP_F32 || labels->dtype != AMP_I32 || data->dtype != AMP_U8 ||
        data_labels->dtype != AMP_U8 || idx->dtype != AMP_I32 || images->numel < total ||
        labels->numel < n || idx->numel < n) {
        CUDA_FAIL(c, "gather_batch: unsupported dtypes or sizes (images %s %zu, labels %s %zu, "
                  "data %s, data labels %s, idx %s %zu for %u x %u)", dtype_name(images->dtype),
                  images->numel, dtype_name(labels->dtype), labels->numel,
                  dtype_name(data->dtype), dtype_name(data_labels->dtype),
                  dtype_name(idx->dtype), idx->numel, n, pixels);
        return;
    }
    if (total == 0)
        return;
    CUDA_LAUNCH(c, gather_batch_kernel, cuda_blocks(c, total, GATHER_THREADS), GATHER_THREADS,
                (float *)images->data, (int32_t *)labels->data, (const uint8_t *)data->data,
                (const uint8_t *)data_labels->data, (const int32_t *)idx->data, pixels, total);
}
