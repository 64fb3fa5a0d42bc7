/* libFuzzer target for harness/idx.c: the IDX reader and the dataset loader.
 *
 * Each input is written to a file in a private temporary directory and
 *   1. read with idx_read as labels (rank 1), as a rank-2 array and as images (rank 3);
 *   2. loaded with dataset_load as the images file of a split whose labels file is valid (and,
 *      when the input parsed as images, has a matching count, except for one input in four);
 *   3. loaded with dataset_load as the labels file of a split whose images file is valid.
 * The naming convention and gzip/raw form of the companion file, and the sample limit, vary
 * with the input, so every lookup and validation path in idx.c is reachable.
 *
 * Beyond "no crash, no leak, no undefined behaviour" (ASan/UBSan), it checks the contract of
 * idx.h and error.h and aborts when it is broken:
 *   - a failure returns AMP_EINPUT or AMP_ENOMEM, leaves the output zeroed and records one
 *     non-empty line naming the file;
 *   - a success has the expected rank, count = product of the dimensions (within the limits),
 *     and for a raw (uncompressed) input exactly the input's payload;
 *   - two valid, matching files always load, with the sample limit applied, labels < 10 and
 *     pixels = byte / 255.0f; an out-of-range label or a count mismatch is always refused.
 *
 * Built by scripts/fuzz.sh (clang -fsanitize=fuzzer,address,undefined). tests/fuzz_replay.c
 * gives it a main() so that ctest replays the seed corpus (tests/fuzz_corpus/) with any compiler. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "error.h"
#include "idx.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCLASSES 10
#define MAX_COMPANION 65536u /* largest matching companion file the harness writes, in samples */

#define FUZZ_NAME "fuzz_idx"
#include "fuzz_require.h"

static char g_base[4096];     /* private temporary directory */
static char g_input[4200];    /* <base>/input: the fuzz input as a file */
static char g_split[4][4200]; /* <base>/c<k>: a split directory per naming convention */

static const char *const k_names[4][2] = {
    {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
    {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
    {"train-images.idx3-ubyte", "train-labels.idx1-ubyte"},
    {"train-images.idx3-ubyte.gz", "train-labels.idx1-ubyte.gz"},
};

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fuzz_idx: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (g_base[0] != '\0')
        nftw(g_base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    snprintf(g_base, sizeof g_base, "%s/fuzz_idx.XXXXXX", tmp);
    if (mkdtemp(g_base) == NULL)
        die("cannot create temporary directory", g_base);
    atexit(cleanup);
    snprintf(g_input, sizeof g_input, "%s/input", g_base);
    for (int k = 0; k < 4; k++) {
        snprintf(g_split[k], sizeof g_split[k], "%s/c%d", g_base, k);
        if (mkdir(g_split[k], 0700) != 0)
            die("cannot create", g_split[k]);
    }
    return 0;
}

/* Replaces path with a new file (unlink + create: truncating an existing file on ext4 makes
 * close() flush it, which would dominate the run time). */
static void write_file(const char *path, const void *data, size_t n)
{
    if (unlink(path) != 0 && errno != ENOENT)
        die("cannot remove", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        die("cannot open", path);
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("cannot write", path);
        }
        p += w;
        n -= (size_t)w;
    }
    if (close(fd) != 0)
        die("cannot close", path);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    if (unlink(path) != 0 && errno != ENOENT)
        die("cannot remove", path);
    gzFile g = gzopen(path, "wb1");
    if (g == NULL || (n > 0 && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK)
        die("cannot write gzip", path);
}

/* A valid IDX file: labels (rank 1, n labels i % 10) or images (rank 3, n x 2 x 2). */
static void write_companion(const char *path, unsigned rank, uint32_t n, int gz)
{
    size_t per = rank == 3 ? 4 : 1;
    size_t hlen = 4 + 4 * (size_t)rank;
    size_t len = hlen + per * n;
    unsigned char *b = malloc(len);
    if (b == NULL)
        die("out of memory for", path);
    b[0] = 0;
    b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)rank;
    uint32_t dims[3] = {n, 2, 2};
    for (unsigned i = 0; i < rank; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    for (size_t i = 0; i < per * n; i++)
        b[hlen + i] = rank == 3 ? (unsigned char)(i * 37u) : (unsigned char)(i % NCLASSES);
    if (gz)
        write_gz(path, b, len);
    else
        write_file(path, b, len);
    free(b);
}

static void reset_error(void)
{
    amp_fail(AMP_OK, "%s", "");
}

/* A failure: the right kind of status, one non-empty line naming `name`. */
static void check_failure(const char *what, int rc, const char *name)
{
    const char *msg = amp_last_error();
    REQUIRE(rc == AMP_EINPUT || rc == AMP_ENOMEM, "%s: status %d (%s)", what, rc, msg);
    REQUIRE(msg[0] != '\0', "%s: status %d with no message", what, rc);
    REQUIRE(strchr(msg, '\n') == NULL, "%s: message is not one line: %s", what, msg);
    REQUIRE(strstr(msg, name) != NULL, "%s: message does not name %s: %s", what, name, msg);
}

static int check_idx(const uint8_t *data, size_t size, uint32_t ndim, int rc,
                     const struct idx_array *a)
{
    char what[32];
    snprintf(what, sizeof what, "idx_read rank %u", (unsigned)ndim);
    if (rc != AMP_OK) {
        check_failure(what, rc, g_input);
        REQUIRE(a->data == NULL && a->count == 0 && a->ndim == 0 && a->dims[0] == 0,
                "%s: output not zeroed after failure", what);
        return 0;
    }
    REQUIRE(a->ndim == ndim, "%s: rank %u", what, (unsigned)a->ndim);
    size_t count = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        REQUIRE(a->dims[i] != 0, "%s: dimension %u is zero", what, (unsigned)i);
        count *= a->dims[i]; /* bounded by the 2^31 check below, so no overflow in practice */
    }
    REQUIRE(a->count == count && count <= ((size_t)1 << 31), "%s: count %zu", what, a->count);
    REQUIRE(a->data != NULL, "%s: no data", what);
    if (ndim == 3)
        REQUIRE(a->dims[1] <= 4096 && a->dims[2] <= 4096, "%s: image %ux%u", what,
                (unsigned)a->dims[1], (unsigned)a->dims[2]);
    /* A successful IDX file starts with a zero byte, so it was read raw, not as gzip
     * (gzip starts 0x1F 0x8B): the payload must be the input's bytes, all of them. */
    if (size > 0 && data[0] == 0) {
        size_t hlen = 4 + 4 * (size_t)ndim;
        REQUIRE(size == hlen + count, "%s: %zu-byte input, %zu-byte header + payload", what, size,
                hlen + count);
        for (uint32_t i = 0; i < ndim; i++) {
            const uint8_t *b = data + 4 + 4 * i;
            uint32_t d = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) |
                         (uint32_t)b[3];
            REQUIRE(a->dims[i] == d, "%s: dimension %u is %u, header says %u", what, (unsigned)i,
                    (unsigned)a->dims[i], (unsigned)d);
        }
        REQUIRE(memcmp(a->data, data + hlen, count) == 0, "%s: payload differs", what);
    }
    return 1;
}

/* A dataset_load result; `expect`: 1 = must load (unless out of memory), 0 = must be refused
 * (bad input), -1 = either. `a` is what the images file holds when known (for the pixels). */
static void check_dataset(const char *what, const char *dir, int rc, const struct dataset *d,
                          int expect, size_t limit, size_t nfile, const struct idx_array *img)
{
    if (rc != AMP_OK) {
        check_failure(what, rc, dir);
        REQUIRE(expect != 1 || rc == AMP_ENOMEM, "%s: valid files refused: %s", what,
                amp_last_error());
        REQUIRE(d->images == NULL && d->labels == NULL && d->n == 0 && d->h == 0 && d->w == 0,
                "%s: output not zeroed after failure", what);
        return;
    }
    REQUIRE(expect != 0, "%s: invalid files accepted", what);
    REQUIRE(d->images != NULL && d->labels != NULL && d->n > 0 && d->h > 0 && d->w > 0,
            "%s: empty result", what);
    if (nfile != 0) {
        size_t want = limit != 0 && limit < nfile ? limit : nfile;
        REQUIRE(d->n == want, "%s: %zu samples, expected %zu", what, d->n, want);
    }
    for (size_t i = 0; i < d->n; i++)
        REQUIRE(d->labels[i] < NCLASSES, "%s: label %u", what, (unsigned)d->labels[i]);
    size_t pixels = d->n * d->h * d->w;
    for (size_t i = 0; i < pixels; i++) {
        float v = d->images[i];
        REQUIRE(v >= 0.0f && v <= 1.0f, "%s: pixel %zu is %g", what, i, (double)v);
        if (img != NULL)
            REQUIRE(v == (float)img->data[i] / 255.0f, "%s: pixel %zu is %g, byte %u", what, i,
                    (double)v, (unsigned)img->data[i]);
    }
}

/* A companion count that differs from the input's count n (when the input parsed at all). */
static uint32_t other_count(int parsed, uint32_t n)
{
    if (!parsed || n >= MAX_COMPANION)
        return 3; /* n > 3 */
    return n + 1;
}

static void path_join(char *out, size_t cap, const char *dir, const char *name)
{
    if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_base[0] == '\0')
        LLVMFuzzerInitialize(NULL, NULL);
    write_file(g_input, data, size);

    /* 1. The reader, at every rank it supports and two it does not. */
    struct idx_array lab, arr, img;
    reset_error();
    int ok1 = check_idx(data, size, 1, idx_read(g_input, 1, &lab), &lab);
    reset_error();
    check_idx(data, size, 2, idx_read(g_input, 2, &arr), &arr);
    idx_free(&arr);
    reset_error();
    int ok3 = check_idx(data, size, 3, idx_read(g_input, 3, &img), &img);
    for (uint32_t bad = 0; bad <= 4; bad += 4) {
        reset_error();
        int rc = idx_read(g_input, bad, &arr);
        check_failure("idx_read unsupported rank", rc, g_input);
        REQUIRE(rc == AMP_EINPUT && arr.data == NULL, "idx_read rank %u accepted", (unsigned)bad);
    }

    /* Variations picked from the input: naming convention and gzip form of the companion file,
     * sample limit, and whether the companion's count deliberately mismatches. */
    unsigned sel = size > 0 ? data[size - 1] : 0;
    int conv = (int)(size % 4);
    int gz = conv % 2;
    size_t limit = (sel >> 2) & 1 ? 2 : 0;
    int mismatch = (sel & 3) == 3;
    char ipath[4300], lpath[4300];
    struct dataset d;

    /* 2. The input as the images file. */
    {
        const char *dir = g_split[conv];
        path_join(ipath, sizeof ipath, dir, k_names[conv][0]);
        path_join(lpath, sizeof lpath, dir, k_names[conv][1]);
        write_file(ipath, data, size);
        int match = ok3 && img.dims[0] <= MAX_COMPANION && !mismatch;
        uint32_t n = match ? img.dims[0] : other_count(ok3, img.dims[0]);
        write_companion(lpath, 1, n, gz);
        reset_error();
        int rc = dataset_load(dir, "train", NCLASSES, limit, &d);
        check_dataset("dataset_load, input as images", dir, rc, &d, ok3 ? match : 0, limit,
                      match ? img.dims[0] : 0, match ? &img : NULL);
        if (ok3 && !match)
            REQUIRE(strstr(amp_last_error(), "labels") != NULL,
                    "count mismatch not reported: %s", amp_last_error());
        dataset_free(&d);
    }

    /* 3. The input as the labels file (another naming convention, the other gzip form). */
    {
        int c2 = (conv + 1) % 4;
        const char *dir = g_split[c2];
        path_join(ipath, sizeof ipath, dir, k_names[c2][0]);
        path_join(lpath, sizeof lpath, dir, k_names[c2][1]);
        write_file(lpath, data, size);
        int match = ok1 && lab.dims[0] <= MAX_COMPANION && !mismatch;
        uint32_t n = match ? lab.dims[0] : other_count(ok1, lab.dims[0]);
        write_companion(ipath, 3, n, !gz);
        int in_range = 1;
        for (size_t i = 0; ok1 && i < lab.count; i++)
            in_range &= lab.data[i] < NCLASSES;
        reset_error();
        int rc = dataset_load(dir, "train", NCLASSES, limit, &d);
        int expect = ok1 && match && in_range;
        check_dataset("dataset_load, input as labels", dir, rc, &d, expect, limit,
                      match ? lab.dims[0] : 0, NULL);
        if (rc == AMP_OK)
            REQUIRE(memcmp(d.labels, lab.data, d.n) == 0, "labels differ from the file");
        if (ok1 && match && !in_range)
            REQUIRE(strstr(amp_last_error(), "out of range") != NULL,
                    "bad label not reported: %s", amp_last_error());
        dataset_free(&d);
    }

    idx_free(&lab);
    idx_free(&img);
    return 0;
}
