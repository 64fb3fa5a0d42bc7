/* IDX (MNIST-format) reader and dataset loader.
 *
 * Files are read through zlib's gz* API, which reads gzip and raw files alike. The header is
 * checked against fixed limits before anything is allocated, the payload is read in chunks, and
 * every failure is reported as AMP_EINPUT (AMP_ENOMEM for allocation) with one message naming
 * the file. Nothing here prints or exits. */
#define _POSIX_C_SOURCE 200809L

#include "idx.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_BYTES ((size_t)1 << 31)        /* sanity cap on the payload size */
#define IDX_MAX_IMAGE_SIDE 4096u               /* cap on image height and width */
#define IDX_READ_CHUNK ((size_t)1 << 20)       /* bytes per gzread call */
#define IDX_TRAILING_CAP ((size_t)64 << 20)    /* stop counting trailing bytes here */
#define IDX_PATH_MAX 4096

/* Reports the gz stream's error state, if any. zlib prefixes its message with the stream's
 * name ("<fd:N>: ..." for gzdopen), which is dropped in favour of the real path. */
static int gz_status(gzFile gz, const char *path)
{
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum == Z_OK)
        return AMP_OK;
    if (msg == NULL)
        msg = "unknown error";
    if (msg[0] == '<') {
        const char *sep = strstr(msg, ": ");
        if (sep != NULL)
            msg = sep + 2;
    }
    if (errnum == Z_MEM_ERROR)
        return amp_fail(AMP_ENOMEM, "%s: out of memory while decompressing", path);
    if (errnum == Z_ERRNO)
        return amp_fail(AMP_EINPUT, "%s: read error: %s", path, msg);
    return amp_fail(AMP_EINPUT, "%s: corrupt or truncated gzip stream: %s", path, msg);
}

/* Reads up to n bytes in chunks; *got says how many arrived before end of file. */
/* The first payload allocation; it doubles while the stream delivers data. */
#define IDX_FIRST_ALLOC ((size_t)1 << 20)

static int read_full(gzFile gz, const char *path, void *buf, size_t n, size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        if (want > IDX_READ_CHUNK)
            want = IDX_READ_CHUNK;
        int r = gzread(gz, p + *got, (unsigned)want);
        if (r < 0) {
            int status = gz_status(gz, path);
            return status != AMP_OK ? status : amp_fail(AMP_EINPUT, "%s: read error", path);
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return gz_status(gz, path);
}

/* Counts what follows the payload, up to IDX_TRAILING_CAP bytes (*capped set when exceeded). */
static int count_trailing(gzFile gz, const char *path, size_t *extra, int *capped)
{
    unsigned char scratch[4096];
    *extra = 0;
    *capped = 0;
    for (;;) {
        int r = gzread(gz, scratch, (unsigned)sizeof scratch);
        if (r < 0) {
            int status = gz_status(gz, path);
            return status != AMP_OK ? status : amp_fail(AMP_EINPUT, "%s: read error", path);
        }
        if (r == 0)
            break;
        *extra += (size_t)r;
        if (*extra > IDX_TRAILING_CAP) {
            *capped = 1;
            break;
        }
    }
    return gz_status(gz, path);
}

static void format_dims(char *buf, size_t cap, uint32_t ndim, const uint32_t *dims)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < ndim && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, i == 0 ? "%u" : "x%u", (unsigned)dims[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* Parses header and payload from an open stream into out (out->data owned by the caller). */
/* Reads and checks the header: rank, dimensions and payload size within the limits. */
static int read_idx_header(gzFile gz, const char *path, uint32_t expect_ndim, uint32_t dims[3],
                           size_t *count_out)
{
    unsigned char hdr[4 + 4 * 3];
    size_t got;
    int status = read_full(gz, path, hdr, 4, &got);
    if (status != AMP_OK)
        return status;
    if (got < 4)
        return amp_fail(AMP_EINPUT, "%s: truncated header: expected 4 bytes of magic number, got %zu",
                        path, got);
    if (hdr[0] != 0 || hdr[1] != 0)
        return amp_fail(AMP_EINPUT,
                        "%s: bad magic number 0x%02X%02X%02X%02X (not an IDX file: the first two bytes must be zero)",
                        path, hdr[0], hdr[1], hdr[2], hdr[3]);
    if (hdr[2] != IDX_TYPE_UBYTE)
        return amp_fail(AMP_EINPUT,
                        "%s: unsupported data type 0x%02X (only 0x08, unsigned byte, is supported)",
                        path, hdr[2]);
    if (hdr[3] != expect_ndim)
        return amp_fail(AMP_EINPUT, "%s: rank %u in the magic number, expected rank %u", path,
                        (unsigned)hdr[3], (unsigned)expect_ndim);

    uint32_t ndim = expect_ndim;
    size_t hlen = 4 + 4 * (size_t)ndim;
    status = read_full(gz, path, hdr + 4, hlen - 4, &got);
    if (status != AMP_OK)
        return status;
    if (got < hlen - 4)
        return amp_fail(AMP_EINPUT, "%s: truncated header: expected %zu bytes, got %zu", path, hlen,
                        4 + got);

    for (uint32_t i = 0; i < ndim; i++) {
        const unsigned char *b = hdr + 4 + 4 * i;
        dims[i] = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) |
                  (uint32_t)b[3];
    }
    char dimstr[48];
    format_dims(dimstr, sizeof dimstr, ndim, dims);
    for (uint32_t i = 0; i < ndim; i++) {
        if (dims[i] == 0)
            return amp_fail(AMP_EINPUT, "%s: dimension %u of %u is zero (dimensions %s)", path,
                            (unsigned)(i + 1), (unsigned)ndim, dimstr);
    }
    size_t count = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        if (count > SIZE_MAX / dims[i])
            return amp_fail(AMP_EINPUT, "%s: absurd dimensions %s: the size overflows size_t",
                            path, dimstr);
        count *= dims[i];
    }
    if (count > IDX_MAX_BYTES)
        return amp_fail(AMP_EINPUT, "%s: absurd dimensions %s: %zu bytes exceeds the %zu-byte limit",
                        path, dimstr, count, IDX_MAX_BYTES);
    if (ndim == 3 && (dims[1] > IDX_MAX_IMAGE_SIDE || dims[2] > IDX_MAX_IMAGE_SIDE))
        return amp_fail(AMP_EINPUT, "%s: image size %ux%u exceeds the %ux%u limit", path,
                        (unsigned)dims[1], (unsigned)dims[2], IDX_MAX_IMAGE_SIDE,
                        IDX_MAX_IMAGE_SIDE);
    *count_out = count;
    return AMP_OK;
}

static int read_idx_stream(gzFile gz, const char *path, off_t file_size, uint32_t expect_ndim,
                           struct idx_array *out)
{
    const uint32_t ndim = expect_ndim;
    uint32_t dims[3] = {0, 0, 0};
    size_t count = 0, got;
    int status = read_idx_header(gz, path, expect_ndim, dims, &count);
    if (status != AMP_OK)
        return status;
    char dimstr[48];
    format_dims(dimstr, sizeof dimstr, ndim, dims);

    /* Trust the header only as far as the file goes: a raw file must hold the payload, and a
     * gzip stream's buffer grows with what it really delivers. */
    const size_t header = 4 + 4 * (size_t)ndim;
    if (gzdirect(gz) && (size_t)file_size < header + count)
        return amp_fail(AMP_EINPUT,
                        "%s: truncated payload: dimensions %s need %zu bytes, got %zu", path,
                        dimstr, count, (size_t)file_size > header ? (size_t)file_size - header : 0);
    size_t cap = count < IDX_FIRST_ALLOC ? count : IDX_FIRST_ALLOC;
    out->data = malloc(cap);
    if (out->data == NULL)
        return amp_fail(AMP_ENOMEM, "%s: out of memory allocating %zu bytes", path, cap);
    got = 0;
    for (;;) {
        size_t n;
        status = read_full(gz, path, out->data + got, cap - got, &n);
        if (status != AMP_OK)
            return status;
        got += n;
        if (got < cap || cap == count)
            break;
        cap = cap > count / 2 ? count : 2 * cap;
        uint8_t *grown = realloc(out->data, cap);
        if (grown == NULL)
            return amp_fail(AMP_ENOMEM, "%s: out of memory allocating %zu bytes", path, cap);
        out->data = grown;
    }
    if (got < count)
        return amp_fail(AMP_EINPUT,
                        "%s: truncated payload: dimensions %s need %zu bytes, got %zu", path,
                        dimstr, count, got);

    size_t extra;
    int capped;
    status = count_trailing(gz, path, &extra, &capped);
    if (status != AMP_OK)
        return status;
    if (extra != 0)
        return amp_fail(AMP_EINPUT, "%s: %s%zu trailing byte%s after the %zu-byte payload", path,
                        capped ? "more than " : "", capped ? IDX_TRAILING_CAP : extra,
                        extra == 1 ? "" : "s", count);

    out->ndim = ndim;
    memcpy(out->dims, dims, sizeof dims);
    out->count = count;
    return AMP_OK;
}

/* Opens path for reading as a gzip or raw stream: a regular file only (a FIFO under a data
 * file's name must not block the open: O_NONBLOCK); *size_out gets its size. */
static int open_idx(const char *path, gzFile *gz_out, off_t *size_out)
{
    *gz_out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 && errno == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return amp_fail(AMP_EINPUT, "%s: cannot open: a dangling symbolic link (its target does "
                        "not exist)", path);
    if (fd < 0)
        return amp_fail(AMP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: cannot stat: %s", path, strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: is a directory, not an IDX file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    gzFile gz = gzdopen(fd, "rb");
    if (gz == NULL) {
        close(fd);
        return amp_fail(AMP_ENOMEM, "%s: out of memory opening the file", path);
    }
    gzbuffer(gz, 1u << 17);
    *gz_out = gz;
    *size_out = st.st_size;
    return AMP_OK;
}

int idx_read(const char *path, uint32_t expect_ndim, struct idx_array *out)
{
    if (out == NULL)
        return amp_fail(AMP_EINPUT, "idx_read: no output given");
    memset(out, 0, sizeof *out);
    if (path == NULL)
        return amp_fail(AMP_EINPUT, "idx_read: no path given");
    if (expect_ndim < 1 || expect_ndim > 3)
        return amp_fail(AMP_EINPUT, "%s: unsupported expected rank %u (must be 1 to 3)", path,
                        (unsigned)expect_ndim);
    gzFile gz;
    off_t size;
    int status = open_idx(path, &gz, &size);
    if (status != AMP_OK)
        return status;
    status = read_idx_stream(gz, path, size, expect_ndim, out);
    gzclose(gz); /* closes fd; read errors were already taken from gzerror */
    if (status != AMP_OK)
        idx_free(out);
    return status;
}

void idx_free(struct idx_array *a)
{
    if (a == NULL)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* Finds <dir>/<split>-<kind>{-,.}idx<rank>-ubyte[.gz], the first that exists in a fixed order.
 * A candidate that exists but is unusable (a directory, unreadable) is still chosen, so that
 * idx_read reports what is wrong with it. */
static int find_split_file(const char *dir, const char *split, const char *kind, unsigned rank,
                           char *path, size_t cap)
{
    static const char *const seps[2] = {"-", "."};
    static const char *const exts[2] = {"", ".gz"};
    char names[4][128];
    int k = 0;
    for (int s = 0; s < 2; s++) {
        for (int e = 0; e < 2; e++, k++) {
            snprintf(names[k], sizeof names[k], "%s-%s%sidx%u-ubyte%s", split, kind, seps[s], rank,
                     exts[e]);
            int w = snprintf(path, cap, "%s/%s", dir, names[k]);
            if (w < 0 || (size_t)w >= cap)
                return amp_fail(AMP_EINPUT, "%s: data directory path too long", dir);
            struct stat st; /* lstat: a dangling link is chosen, and named as such */
            if (lstat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
                return AMP_OK;
        }
    }
    path[0] = '\0';
    return amp_fail(AMP_EINPUT, "%s: no %s %s file found (tried %s, %s, %s, %s)", dir, split, kind,
                    names[0], names[1], names[2], names[3]);
}

static int check_data_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return amp_fail(AMP_EINPUT, "%s: cannot access data directory: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return amp_fail(AMP_EINPUT, "%s: data directory is not a directory", dir);
    return AMP_OK;
}

int dataset_probe(const char *dir, const char *split, size_t limit, struct dataset_size *out)
{
    memset(out, 0, sizeof *out);
    int status = check_data_dir(dir);
    char img_path[IDX_PATH_MAX];
    if (status == AMP_OK)
        status = find_split_file(dir, split, "images", 3, img_path, sizeof img_path);
    gzFile gz = NULL;
    off_t size = 0;
    if (status == AMP_OK)
        status = open_idx(img_path, &gz, &size);
    if (status != AMP_OK)
        return status;
    uint32_t dims[3] = { 0, 0, 0 };
    size_t count = 0;
    status = read_idx_header(gz, img_path, 3, dims, &count);
    gzclose(gz);
    if (status != AMP_OK)
        return status;
    out->n = limit != 0 && limit < dims[0] ? limit : dims[0];
    out->h = dims[1];
    out->w = dims[2];
    /* The raw payload and labels while the floats are made, then the floats and labels. */
    out->kept_bytes = out->n * dims[1] * dims[2] * sizeof(float) + out->n;
    out->peak_bytes = out->kept_bytes + count + dims[0];
    return AMP_OK;
}

/* a's bytes, taken over (a->data NULL after), shrunk to the first `keep` (the kept samples). */
static uint8_t *take_bytes(struct idx_array *a, size_t keep)
{
    uint8_t *p = a->data;
    a->data = NULL;
    if (keep > 0 && keep < a->count) {
        uint8_t *shrunk = realloc(p, keep);
        if (shrunk != NULL)
            p = shrunk;
    }
    return p;
}

int dataset_load(const char *dir, const char *split, uint32_t nclasses, size_t limit,
                 struct dataset *out)
{
    if (out == NULL)
        return amp_fail(AMP_EINPUT, "dataset_load: no output given");
    memset(out, 0, sizeof *out);
    if (dir == NULL || dir[0] == '\0')
        return amp_fail(AMP_EINPUT, "dataset_load: no data directory given");
    if (split == NULL || (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0))
        return amp_fail(AMP_EINPUT, "%s: unknown split \"%s\" (expected train or t10k)", dir,
                        split != NULL ? split : "(null)");
    if (nclasses == 0)
        return amp_fail(AMP_EINPUT, "%s: number of classes must be at least 1", dir);

    int status = check_data_dir(dir);
    if (status != AMP_OK)
        return status;

    char img_path[IDX_PATH_MAX], lab_path[IDX_PATH_MAX];
    status = find_split_file(dir, split, "images", 3, img_path, sizeof img_path);
    if (status != AMP_OK)
        return status;
    status = find_split_file(dir, split, "labels", 1, lab_path, sizeof lab_path);
    if (status != AMP_OK)
        return status;

    struct idx_array img = {0}, lab = {0};
    status = idx_read(img_path, 3, &img);
    if (status != AMP_OK)
        goto fail;
    status = idx_read(lab_path, 1, &lab);
    if (status != AMP_OK)
        goto fail;
    if (img.dims[0] != lab.dims[0]) {
        status = amp_fail(AMP_EINPUT, "%s has %u images but %s has %u labels", img_path,
                          (unsigned)img.dims[0], lab_path, (unsigned)lab.dims[0]);
        goto fail;
    }
    for (size_t i = 0; i < lab.count; i++) {
        if (lab.data[i] >= nclasses) {
            status = amp_fail(AMP_EINPUT, "%s: label %u at index %zu is out of range (%u classes)",
                              lab_path, (unsigned)lab.data[i], i, (unsigned)nclasses);
            goto fail;
        }
    }

    size_t n = img.dims[0];
    if (limit != 0 && limit < n)
        n = limit;
    size_t pixels = n * img.dims[1] * img.dims[2]; /* <= img.count, cannot overflow */
    if (pixels > SIZE_MAX / sizeof(float)) {
        status = amp_fail(AMP_ENOMEM, "%s: %zu pixels do not fit in memory as floats", img_path,
                          pixels);
        goto fail;
    }
    out->images = malloc(pixels * sizeof(float));
    if (out->images == NULL) {
        status = amp_fail(AMP_ENOMEM, "%s: out of memory allocating %zu floats", img_path, pixels);
        goto fail;
    }
    for (size_t i = 0; i < pixels; i++)
        out->images[i] = (float)img.data[i] / 255.0f;
    out->pixels = take_bytes(&img, pixels);
    out->labels = take_bytes(&lab, n);
    out->n = n;
    out->c = 1;
    out->h = img.dims[1];
    out->w = img.dims[2];
    out->classes = nclasses;
    idx_free(&img);
    idx_free(&lab);
    return AMP_OK;

fail:
    idx_free(&img);
    idx_free(&lab);
    dataset_free(out);
    return status;
}

void dataset_free(struct dataset *d)
{
    if (d == NULL)
        return;
    free(d->images);
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

const char *dataset_default_dir(void)
{
    static const char debian_dir[] = "/usr/share/datasets/fashion-mnist";
    const char *env = getenv("AMPBENCH_DATA");
    if (env != NULL && env[0] != '\0')
        return env;
    struct stat st;
    if (stat(debian_dir, &st) == 0 && S_ISDIR(st.st_mode))
        return debian_dir;
    return NULL;
}

void dataset_gather(const struct dataset *d, const uint32_t *idx, size_t n, float *images,
                    int32_t *labels)
{
    const size_t pixels = (size_t)d->c * d->h * d->w;
    for (size_t i = 0; i < n; i++) {
        memcpy(images + i * pixels, d->images + (size_t)idx[i] * pixels, pixels * sizeof *images);
        labels[i] = d->labels[idx[i]];
    }
}
