/* IDX (MNIST-format) file reader and image-classification dataset loader.
 *
 * idx_read parses one IDX file of unsigned bytes (raw or gzip-compressed), validating the
 * header against sane limits before allocating. dataset_load finds a split's images and labels
 * files in a directory, checks them against each other and returns normalized float images.
 * All functions return AMP_* status codes and record one message with amp_fail on failure. */
#ifndef AMPBENCH_IDX_H
#define AMPBENCH_IDX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One IDX file's contents: unsigned-byte payload (type code 0x08 only) and its dimensions. */
struct idx_array {
    uint8_t *data;      /* count bytes, malloc'd */
    uint32_t ndim;      /* rank read from the magic number */
    uint32_t dims[3];   /* ndim used */
    size_t count;       /* product of dims */
};

/* Reads an IDX file, raw or gzip (zlib gzopen/gzread handles both transparently).
 * expect_ndim: 1 for labels, 3 for images. On failure *out is left zeroed. */
int idx_read(const char *path, uint32_t expect_ndim, struct idx_array *out);
void idx_free(struct idx_array *a);

/* A split of an image classification dataset, normalized: pixel/255.0f, layout N x C x H x W
 * (IDX images are grayscale: C = 1). */
struct dataset {
    float *images;      /* n * c * h * w floats: the pixels / 255 */
    uint8_t *pixels;    /* the same n * c * h * w pixels as stored (uploaded by the training loop
                         * once, for batches gathered on the backend) */
    uint8_t *labels;    /* n labels, each < classes */
    size_t n;
    uint32_t c, h, w;
    uint32_t classes;
};

/* Loads split "train" or "t10k" from dir: finds the images and labels files under either naming
 * convention ("train-images-idx3-ubyte" and "train-images.idx3-ubyte", same for labels and t10k),
 * each raw or with ".gz" appended; the first that exists in the order
 * <split>-images-idx3-ubyte, <split>-images-idx3-ubyte.gz, <split>-images.idx3-ubyte,
 * <split>-images.idx3-ubyte.gz (likewise labels-idx1) is used.
 * limit: 0 = all, else keep only the first `limit` samples (larger than the file keeps all).
 * nclasses: every label in the file must be < nclasses. On failure *out is left zeroed. */
int dataset_load(const char *dir, const char *split, uint32_t nclasses, size_t limit,
                 struct dataset *out);
void dataset_free(struct dataset *d);

/* What dataset_load(dir, split, ..., limit) will need, from the images file's header alone
 * (nothing is allocated; a bad header fails as dataset_load would): the samples kept, the image
 * size, the bytes kept (float images and labels) and the peak bytes of the load (the raw payload
 * and labels as well, while the floats are made). */
struct dataset_size {
    size_t n;
    uint32_t h, w;
    size_t kept_bytes, peak_bytes;
};
int dataset_probe(const char *dir, const char *split, size_t limit, struct dataset_size *out);
/* Copies samples idx[0..n) of d into images (n x c x h x w floats) and labels (int32). */
void dataset_gather(const struct dataset *d, const uint32_t *idx, size_t n, float *images,
                    int32_t *labels);

/* The default data directory: $AMPBENCH_DATA if set (and non-empty), else the Debian package
 * dataset-fashion-mnist's location /usr/share/datasets/fashion-mnist if it exists, else NULL. */
const char *dataset_default_dir(void);

#ifdef __cplusplus
}
#endif

#endif
