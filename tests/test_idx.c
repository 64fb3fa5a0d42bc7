/* Tests for harness/idx.c: the IDX reader and dataset loader.
 *
 * Builds its own fixtures (raw and gzipped, both naming conventions, and one malformed file per
 * validation rule) in a temporary directory under /tmp, removed at the end; also checks the real
 * Fashion-MNIST when /usr/share/datasets/fashion-mnist exists. Prints one line per failed check
 * on stderr and "N passed, N failed" last; exits non-zero if anything failed. */
#define _XOPEN_SOURCE 700

#include "error.h"
#include "idx.h"

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"

#define PATHBUF 1024
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char g_base[] = "/tmp/test_idx.XXXXXX";

/* ---- fixture helpers ---- */

struct blob {
    unsigned char *d;
    size_t n;
};

/* An IDX file image: magic (0,0,type,rank), `ndims` big-endian dims, then the payload. */
static struct blob idx_bytes(uint8_t type, uint8_t rank, size_t ndims, const uint32_t *dims,
                             const uint8_t *payload, size_t plen)
{
    struct blob b;
    b.n = 4 + 4 * ndims + plen;
    b.d = malloc(b.n + 64); /* room for callers that append */
    if (b.d == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    b.d[0] = 0;
    b.d[1] = 0;
    b.d[2] = type;
    b.d[3] = rank;
    for (size_t i = 0; i < ndims; i++) {
        b.d[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b.d[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b.d[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b.d[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (plen)
        memcpy(b.d + 4 + 4 * ndims, payload, plen);
    return b;
}

static struct blob images3(uint32_t n, uint32_t h, uint32_t w, const uint8_t *pix)
{
    uint32_t dims[3] = {n, h, w};
    return idx_bytes(0x08, 3, 3, dims, pix, (size_t)n * h * w);
}

static struct blob labels1(uint32_t n, const uint8_t *lab)
{
    uint32_t dims[1] = {n};
    return idx_bytes(0x08, 1, 1, dims, lab, n);
}

static void write_file(const char *path, const void *data, size_t n, int gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (g == NULL || (n > 0 && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
            fprintf(stderr, "cannot write fixture %s\n", path);
            exit(2);
        }
        return;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "cannot write fixture %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

static void write_blob(const char *path, struct blob b, int gz)
{
    write_file(path, b.d, b.n, gz);
    free(b.d);
}

static unsigned char *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot read fixture %s\n", path);
        exit(2);
    }
    unsigned char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void pj(char *out, const char *a, const char *b)
{
    int n = snprintf(out, PATHBUF, "%s/%s", a, b);
    if (n < 0 || n >= PATHBUF) {
        fprintf(stderr, "path too long: %s/%s\n", a, b);
        exit(2);
    }
}

static void make_dir(char *out, const char *name)
{
    pj(out, g_base, name);
    if (mkdir(out, 0700) != 0) {
        fprintf(stderr, "cannot create %s: %s\n", out, strerror(errno));
        exit(2);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

/* The three-sample 2x2 fixture used by the valid cases. */
static const uint8_t k_pix[12] = {0, 150, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t k_lab[3] = {0, 1, 9};

/* Deterministic noise, so that gzip cannot shrink the payload much. */
static void noise(uint8_t *p, size_t n)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 24);
    }
}

static void reset_error(void)
{
    amp_fail(AMP_OK, "%s", "");
}

/* Asserts a failure is AMP_EINPUT, one line, and names `name` and `phrase` (phrase may be NULL). */
static void expect_einput(const char *what, int rc, const char *name, const char *phrase)
{
    const char *msg = amp_last_error();
    CHECK(rc == AMP_EINPUT, "%s: returned %d, expected AMP_EINPUT (message: \"%s\")", what, rc, msg);
    CHECK(strstr(msg, name) != NULL, "%s: message lacks \"%s\": \"%s\"", what, name, msg);
    if (phrase != NULL)
        CHECK(strstr(msg, phrase) != NULL, "%s: message lacks \"%s\": \"%s\"", what, phrase, msg);
    CHECK(strchr(msg, '\n') == NULL, "%s: message is not one line: \"%s\"", what, msg);
}

static int ds_zeroed(const struct dataset *d)
{
    return d->images == NULL && d->labels == NULL && d->n == 0 && d->h == 0 && d->w == 0;
}

static int idx_zeroed(const struct idx_array *a)
{
    return a->data == NULL && a->count == 0 && a->ndim == 0;
}

/* ---- valid files ---- */

static const char *const k_conv[4][2] = {
    {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
    {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
    {"train-images.idx3-ubyte", "train-labels.idx1-ubyte"},
    {"train-images.idx3-ubyte.gz", "train-labels.idx1-ubyte.gz"},
};

static void check_small(const char *what, const struct dataset *d, size_t n)
{
    CHECK(d->n == n && d->h == 2 && d->w == 2, "%s: got n=%zu h=%u w=%u, expected n=%zu 2x2", what,
          d->n, d->h, d->w, n);
    if (d->n != n || d->images == NULL || d->labels == NULL)
        return;
    int ok = 1;
    for (size_t i = 0; i < n * 4; i++)
        ok &= d->images[i] == (float)k_pix[i] / 255.0f;
    CHECK(ok, "%s: pixels differ from pixel/255.0f", what);
    CHECK(memcmp(d->labels, k_lab, n) == 0, "%s: labels differ", what);
}

static void test_valid(void)
{
    for (int c = 0; c < 4; c++) {
        char dir[PATHBUF], ip[PATHBUF], lp[PATHBUF], name[32];
        snprintf(name, sizeof name, "conv%d", c);
        make_dir(dir, name);
        pj(ip, dir, k_conv[c][0]);
        pj(lp, dir, k_conv[c][1]);
        int gz = c % 2;
        write_blob(ip, images3(3, 2, 2, k_pix), gz);
        write_blob(lp, labels1(3, k_lab), gz);

        struct idx_array a;
        int rc = idx_read(ip, 3, &a);
        CHECK(rc == AMP_OK, "idx_read %s: %d %s", ip, rc, amp_last_error());
        CHECK(a.ndim == 3 && a.dims[0] == 3 && a.dims[1] == 2 && a.dims[2] == 2 && a.count == 12,
              "idx_read %s: ndim %u dims %ux%ux%u count %zu", ip, a.ndim, a.dims[0], a.dims[1],
              a.dims[2], a.count);
        CHECK(a.data != NULL && a.count == 12 && memcmp(a.data, k_pix, 12) == 0,
              "idx_read %s: payload differs", ip);
        idx_free(&a);
        CHECK(idx_zeroed(&a), "idx_free left the struct non-zero");
        rc = idx_read(lp, 1, &a);
        CHECK(rc == AMP_OK && a.ndim == 1 && a.dims[0] == 3 && a.count == 3 &&
                  memcmp(a.data, k_lab, 3) == 0,
              "idx_read %s: rc %d ndim %u count %zu", lp, rc, a.ndim, a.count);
        idx_free(&a);

        struct dataset d;
        rc = dataset_load(dir, "train", 10, 0, &d);
        CHECK(rc == AMP_OK, "dataset_load %s: %d %s", dir, rc, amp_last_error());
        check_small(k_conv[c][0], &d, 3);
        if (c == 0 && d.n == 3) {
            CHECK(d.images[1] == 150 / 255.0f, "normalization: 150 -> %.9g, expected %.9g",
                  (double)d.images[1], (double)(150 / 255.0f));
            CHECK(d.images[0] == 0.0f && d.images[2] == 1.0f, "normalization: 0 -> %g, 255 -> %g",
                  (double)d.images[0], (double)d.images[2]);
        }
        dataset_free(&d);
        CHECK(ds_zeroed(&d), "dataset_free left the struct non-zero");

        /* limit handling */
        static const size_t limits[][2] = {{0, 3}, {1, 1}, {2, 2}, {3, 3}, {4, 3}, {1000000, 3}};
        for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
            char what[96];
            snprintf(what, sizeof what, "%s limit %zu", k_conv[c][0], limits[k][0]);
            rc = dataset_load(dir, "train", 10, limits[k][0], &d);
            CHECK(rc == AMP_OK, "%s: %d %s", what, rc, amp_last_error());
            check_small(what, &d, limits[k][1]);
            dataset_free(&d);
        }
    }

    /* t10k split, and labels just below nclasses are accepted */
    char dir[PATHBUF], p[PATHBUF];
    make_dir(dir, "t10k");
    pj(p, dir, "t10k-images-idx3-ubyte.gz");
    write_blob(p, images3(3, 2, 2, k_pix), 1);
    pj(p, dir, "t10k-labels.idx1-ubyte");
    write_blob(p, labels1(3, k_lab), 0);
    struct dataset d;
    int rc = dataset_load(dir, "t10k", 10, 0, &d);
    CHECK(rc == AMP_OK, "t10k mixed naming: %d %s", rc, amp_last_error());
    check_small("t10k", &d, 3);
    dataset_free(&d);
    rc = dataset_load(dir, "train", 10, 0, &d);
    expect_einput("train split absent", rc, "train-images-idx3-ubyte", "no train images file");
    rc = dataset_load(dir, "valid", 10, 0, &d);
    expect_einput("unknown split", rc, dir, "unknown split");
    CHECK(ds_zeroed(&d), "unknown split: output not zeroed");

    /* 4096-pixel sides are the largest allowed */
    uint8_t *big = calloc(4096, 1);
    uint8_t one_label = 0;
    make_dir(dir, "side4096");
    pj(p, dir, "train-images-idx3-ubyte");
    write_blob(p, images3(1, 4096, 1, big), 0);
    pj(p, dir, "train-labels-idx1-ubyte");
    write_blob(p, labels1(1, &one_label), 0);
    rc = dataset_load(dir, "train", 10, 0, &d);
    CHECK(rc == AMP_OK && d.n == 1 && d.h == 4096 && d.w == 1, "4096x1 image: %d %s", rc,
          amp_last_error());
    dataset_free(&d);
    free(big);
}

/* The first existing name in the fixed order wins. */
static void test_preference(void)
{
    char dir[PATHBUF], p[PATHBUF];
    make_dir(dir, "pref");
    uint8_t pix[12];
    static const uint8_t firsts[4] = {11, 22, 33, 44};
    for (int c = 0; c < 4; c++) {
        memcpy(pix, k_pix, sizeof pix);
        pix[0] = firsts[c];
        pj(p, dir, k_conv[c][0]);
        write_blob(p, images3(3, 2, 2, pix), c % 2);
    }
    pj(p, dir, "train-labels.idx1-ubyte.gz");
    write_blob(p, labels1(3, k_lab), 1);
    for (int c = 0; c < 4; c++) {
        struct dataset d;
        int rc = dataset_load(dir, "train", 10, 0, &d);
        CHECK(rc == AMP_OK && d.n == 3 && d.images[0] == firsts[c] / 255.0f,
              "preference with %s first: rc %d, first pixel %g (%s)", k_conv[c][0], rc,
              rc == AMP_OK && d.n > 0 ? (double)d.images[0] * 255 : -1.0, amp_last_error());
        dataset_free(&d);
        pj(p, dir, k_conv[c][0]);
        unlink(p);
    }
}

/* ---- malformed files ---- */

/* Writes `bad` as the images (labels_bad=0) or labels file of a fresh directory, with a valid
 * three-sample counterpart, then expects both dataset_load and idx_read to fail naming it. */
static void bad_case(const char *casename, int labels_bad, int gz, struct blob bad,
                     const char *phrase)
{
    char dir[PATHBUF], bp[PATHBUF], gp[PATHBUF], what[160];
    make_dir(dir, casename);
    const char *badname = labels_bad ? "train-labels-idx1-ubyte" : "train-images-idx3-ubyte";
    const char *goodname = labels_bad ? "train-images-idx3-ubyte" : "train-labels-idx1-ubyte";
    char badfile[64];
    snprintf(badfile, sizeof badfile, "%s%s", badname, gz ? ".gz" : "");
    pj(bp, dir, badfile);
    pj(gp, dir, goodname);
    write_blob(bp, bad, gz);
    write_blob(gp, labels_bad ? images3(3, 2, 2, k_pix) : labels1(3, k_lab), 0);

    struct dataset d;
    reset_error();
    int rc = dataset_load(dir, "train", 10, 0, &d);
    snprintf(what, sizeof what, "%s (dataset_load)", casename);
    expect_einput(what, rc, bp, phrase);
    CHECK(ds_zeroed(&d), "%s: dataset not zeroed after failure", what);
    if (rc == AMP_OK)
        dataset_free(&d);

    struct idx_array a;
    reset_error();
    rc = idx_read(bp, labels_bad ? 1 : 3, &a);
    snprintf(what, sizeof what, "%s (idx_read)", casename);
    expect_einput(what, rc, bp, phrase);
    CHECK(idx_zeroed(&a), "%s: idx_array not zeroed after failure", what);
    if (rc == AMP_OK)
        idx_free(&a);
}

/* Writes a gzip of `b` to a scratch file and returns its compressed bytes. */
static unsigned char *gzip_bytes(struct blob b, size_t *n)
{
    char p[PATHBUF];
    pj(p, g_base, "scratch.gz");
    write_blob(p, b, 1);
    unsigned char *z = read_whole(p, n);
    unlink(p);
    return z;
}

/* Like bad_case, but the bad file's bytes are written verbatim (already-mangled gzip). */
static void bad_gzip_case(const char *casename, unsigned char *z, size_t n, const char *phrase)
{
    struct blob b = {z, n};
    char dir[PATHBUF], bp[PATHBUF], gp[PATHBUF];
    make_dir(dir, casename);
    pj(bp, dir, "train-images-idx3-ubyte.gz");
    pj(gp, dir, "train-labels-idx1-ubyte");
    write_blob(bp, b, 0);
    uint8_t lab[100] = {0};
    write_blob(gp, labels1(100, lab), 0);

    struct dataset d;
    reset_error();
    int rc = dataset_load(dir, "train", 10, 0, &d);
    char what[160];
    snprintf(what, sizeof what, "%s (dataset_load)", casename);
    expect_einput(what, rc, bp, phrase);
    if (rc == AMP_OK)
        dataset_free(&d);
    struct idx_array a;
    reset_error();
    rc = idx_read(bp, 3, &a);
    snprintf(what, sizeof what, "%s (idx_read)", casename);
    expect_einput(what, rc, bp, phrase);
    if (rc == AMP_OK)
        idx_free(&a);
}

static void test_malformed_header(void)
{
    uint32_t d3[3] = {3, 2, 2};
    uint32_t d1[1] = {3};
    struct blob b;

    b = images3(3, 2, 2, k_pix);
    b.d[0] = 1;
    bad_case("magic_byte0", 0, 0, b, "bad magic number 0x01000803");
    b = labels1(3, k_lab);
    b.d[1] = 8;
    bad_case("magic_byte1", 1, 1, b, "bad magic number");
    bad_case("type_0d", 0, 0, idx_bytes(0x0D, 3, 3, d3, k_pix, 12), "unsupported data type 0x0D");
    bad_case("type_09", 1, 1, idx_bytes(0x09, 1, 1, d1, k_lab, 3), "unsupported data type 0x09");
    bad_case("rank_images", 0, 0, idx_bytes(0x08, 1, 1, (uint32_t[]){12}, k_pix, 12),
             "rank 1 in the magic number, expected rank 3");
    bad_case("rank_labels", 1, 0, idx_bytes(0x08, 3, 3, (uint32_t[]){3, 1, 1}, k_lab, 3),
             "rank 3 in the magic number, expected rank 1");
    bad_case("rank_zero", 1, 0, idx_bytes(0x08, 0, 0, NULL, k_lab, 3), "rank 0");

    bad_case("zero_dim_n", 0, 0, idx_bytes(0x08, 3, 3, (uint32_t[]){0, 2, 2}, NULL, 0),
             "dimension 1 of 3 is zero");
    bad_case("zero_dim_h", 0, 1, idx_bytes(0x08, 3, 3, (uint32_t[]){3, 0, 2}, NULL, 0),
             "dimension 2 of 3 is zero");
    bad_case("zero_dim_w", 0, 0, idx_bytes(0x08, 3, 3, (uint32_t[]){3, 2, 0}, NULL, 0),
             "dimension 3 of 3 is zero");
    bad_case("zero_dim_labels", 1, 0, idx_bytes(0x08, 1, 1, (uint32_t[]){0}, NULL, 0),
             "dimension 1 of 1 is zero");

    bad_case("overflow", 0, 0,
             idx_bytes(0x08, 3, 3, (uint32_t[]){0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, NULL, 0),
             "overflows size_t");
    bad_case("over_cap", 0, 0, idx_bytes(0x08, 3, 3, (uint32_t[]){0x8001, 256, 256}, NULL, 0),
             "exceeds the 2147483648-byte limit");
    bad_case("over_cap_labels", 1, 1, idx_bytes(0x08, 1, 1, (uint32_t[]){0xFFFFFFFFu}, NULL, 0),
             "exceeds the 2147483648-byte limit");
    uint8_t *big = calloc(4097, 1);
    bad_case("height_4097", 0, 0, images3(1, 4097, 1, big), "image size 4097x1 exceeds");
    bad_case("width_4097", 0, 1, images3(1, 1, 4097, big), "image size 1x4097 exceeds");
    free(big);

    b = idx_bytes(0, 0, 0, NULL, NULL, 0);
    b.n = 0;
    bad_case("empty", 0, 0, b, "truncated header: expected 4 bytes of magic number, got 0");
    b = images3(3, 2, 2, k_pix);
    b.n = 3;
    bad_case("short_magic", 0, 1, b, "truncated header: expected 4 bytes of magic number, got 3");
    b = images3(3, 2, 2, k_pix);
    b.n = 10;
    bad_case("short_dims", 0, 0, b, "truncated header: expected 16 bytes, got 10");
    b = labels1(3, k_lab);
    b.n = 7;
    bad_case("short_dims_labels", 1, 1, b, "truncated header: expected 8 bytes, got 7");
}

static void test_malformed_payload(void)
{
    struct blob b;
    b = images3(3, 2, 2, k_pix);
    b.n -= 2;
    bad_case("short_payload", 0, 0, b, "truncated payload: dimensions 3x2x2 need 12 bytes, got 10");
    b = labels1(3, k_lab);
    b.n -= 3;
    bad_case("short_payload_gz", 1, 1, b, "truncated payload: dimensions 3 need 3 bytes, got 0");

    b = images3(3, 2, 2, k_pix);
    memset(b.d + b.n, 0xAB, 5);
    b.n += 5;
    bad_case("trailing_raw", 0, 0, b, "5 trailing bytes after the 12-byte payload");
    b = labels1(3, k_lab);
    b.d[b.n++] = 0;
    bad_case("trailing_gz", 1, 1, b, "1 trailing byte after the 3-byte payload");

    /* gzip-level damage, on a 100x8x8 noise payload */
    uint8_t pix[6400];
    noise(pix, sizeof pix);
    size_t zn;
    unsigned char *z;

    z = gzip_bytes(images3(100, 8, 8, pix), &zn);
    bad_gzip_case("gz_cut_trailer", z, zn - 4, "corrupt or truncated gzip stream: unexpected end of file");
    z = gzip_bytes(images3(100, 8, 8, pix), &zn);
    bad_gzip_case("gz_cut_half", z, zn / 2, "corrupt or truncated gzip stream");
    z = gzip_bytes(images3(100, 8, 8, pix), &zn);
    bad_gzip_case("gz_cut_header", z, 12, "corrupt or truncated gzip stream");
    z = gzip_bytes(images3(100, 8, 8, pix), &zn);
    z[zn - 6] ^= 0x5A; /* CRC-32 of the trailer */
    bad_gzip_case("gz_bad_crc", z, zn, "corrupt or truncated gzip stream: incorrect data check");
    z = gzip_bytes(images3(100, 8, 8, pix), &zn);
    for (size_t i = 20; i < 40; i++)
        z[i] ^= 0xFF; /* damage the deflate data */
    bad_gzip_case("gz_bad_data", z, zn, "corrupt or truncated gzip stream");
}

static void test_files(void)
{
    char dir[PATHBUF], p[PATHBUF];
    struct dataset d;
    struct idx_array a;
    int rc;

    /* missing files */
    make_dir(dir, "empty_dir");
    reset_error();
    rc = dataset_load(dir, "train", 10, 0, &d);
    expect_einput("missing images", rc, dir, "no train images file found");
    for (int c = 0; c < 4; c++)
        CHECK(strstr(amp_last_error(), k_conv[c][0]) != NULL, "missing images: \"%s\" not named: %s",
              k_conv[c][0], amp_last_error());
    make_dir(dir, "no_labels");
    pj(p, dir, "train-images-idx3-ubyte");
    write_blob(p, images3(3, 2, 2, k_pix), 0);
    reset_error();
    rc = dataset_load(dir, "train", 10, 0, &d);
    expect_einput("missing labels", rc, dir, "no train labels file found");
    for (int c = 0; c < 4; c++)
        CHECK(strstr(amp_last_error(), k_conv[c][1]) != NULL, "missing labels: \"%s\" not named: %s",
              k_conv[c][1], amp_last_error());
    pj(p, g_base, "does-not-exist");
    reset_error();
    rc = idx_read(p, 1, &a);
    expect_einput("idx_read missing", rc, p, "No such file or directory");
    reset_error();
    rc = dataset_load(p, "train", 10, 0, &d);
    expect_einput("missing data directory", rc, p, "cannot access data directory");
    pj(p, g_base, "conv0/train-images-idx3-ubyte");
    reset_error();
    rc = dataset_load(p, "train", 10, 0, &d);
    expect_einput("data directory is a file", rc, p, "not a directory");

    /* a directory where the file should be */
    make_dir(dir, "is_dir");
    pj(p, dir, "train-images-idx3-ubyte");
    if (mkdir(p, 0700) != 0) {
        fprintf(stderr, "cannot create %s\n", p);
        exit(2);
    }
    pj(p, dir, "train-labels-idx1-ubyte");
    write_blob(p, labels1(3, k_lab), 0);
    pj(p, dir, "train-images-idx3-ubyte");
    reset_error();
    rc = dataset_load(dir, "train", 10, 0, &d);
    expect_einput("images is a directory", rc, p, "is a directory");
    reset_error();
    rc = idx_read(p, 3, &a);
    expect_einput("idx_read directory", rc, p, "is a directory");

    /* unreadable */
    make_dir(dir, "unreadable");
    pj(p, dir, "train-labels-idx1-ubyte.gz");
    write_blob(p, labels1(3, k_lab), 1);
    char ip[PATHBUF];
    pj(ip, dir, "train-images.idx3-ubyte");
    write_blob(ip, images3(3, 2, 2, k_pix), 0);
    chmod(ip, 0);
    if (access(ip, R_OK) == 0) {
        fprintf(stderr, "note: running with permission to read mode-000 files (root?): "
                        "skipping the unreadable-file check\n");
    } else {
        reset_error();
        rc = dataset_load(dir, "train", 10, 0, &d);
        expect_einput("unreadable images", rc, ip, strerror(EACCES));
        CHECK(strstr(amp_last_error(), "cannot open") != NULL, "unreadable: %s", amp_last_error());
    }
    chmod(ip, 0600);

    /* images/labels count mismatch */
    make_dir(dir, "mismatch");
    pj(ip, dir, "train-images-idx3-ubyte");
    write_blob(ip, images3(3, 2, 2, k_pix), 0);
    pj(p, dir, "train-labels.idx1-ubyte.gz");
    write_blob(p, labels1(2, k_lab), 1);
    reset_error();
    rc = dataset_load(dir, "train", 10, 0, &d);
    expect_einput("count mismatch", rc, ip, "has 3 images");
    CHECK(strstr(amp_last_error(), p) != NULL && strstr(amp_last_error(), "has 2 labels") != NULL,
          "count mismatch: labels file or count not named: %s", amp_last_error());
    CHECK(ds_zeroed(&d), "count mismatch: dataset not zeroed");

    /* label out of range */
    uint8_t pix[24] = {0};
    uint8_t lab[6] = {0, 1, 2, 3, 4, 12};
    make_dir(dir, "label_range");
    pj(ip, dir, "train-images-idx3-ubyte.gz");
    write_blob(ip, images3(6, 2, 2, pix), 1);
    pj(p, dir, "train-labels-idx1-ubyte.gz");
    write_blob(p, labels1(6, lab), 1);
    reset_error();
    rc = dataset_load(dir, "train", 10, 0, &d);
    char want[PATHBUF + 80];
    snprintf(want, sizeof want, "%s: label 12 at index 5 is out of range (10 classes)", p);
    expect_einput("label out of range", rc, p, want);
    CHECK(strcmp(amp_last_error(), want) == 0, "label out of range: message \"%s\"", amp_last_error());
    CHECK(ds_zeroed(&d), "label out of range: dataset not zeroed");
    reset_error();
    rc = dataset_load(dir, "train", 4, 0, &d);
    expect_einput("label == nclasses", rc, p, "label 4 at index 4 is out of range (4 classes)");
    reset_error();
    rc = dataset_load(dir, "train", 10, 2, &d);
    expect_einput("label out of range beyond limit", rc, p, "label 12 at index 5");
    rc = dataset_load(dir, "train", 13, 0, &d);
    CHECK(rc == AMP_OK && d.n == 6 && d.labels[5] == 12, "13 classes: %d %s", rc, amp_last_error());
    dataset_free(&d);
}

/* ---- the real data set ---- */

static void test_default_dir(void)
{
    const char *saved = getenv("AMPBENCH_DATA");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("AMPBENCH_DATA", "/some/where", 1);
    const char *d = dataset_default_dir();
    CHECK(d != NULL && strcmp(d, "/some/where") == 0, "default dir with $AMPBENCH_DATA: %s",
          d ? d : "(null)");
    unsetenv("AMPBENCH_DATA");
    d = dataset_default_dir();
    struct stat st;
    int have = stat(FASHION_DIR, &st) == 0 && S_ISDIR(st.st_mode);
    if (have)
        CHECK(d != NULL && strcmp(d, FASHION_DIR) == 0, "default dir: %s", d ? d : "(null)");
    else
        CHECK(d == NULL, "default dir without data: %s", d);
    if (copy) {
        setenv("AMPBENCH_DATA", copy, 1);
        free(copy);
    }
}

static void test_fashion_mnist(void)
{
    struct stat st;
    if (stat(FASHION_DIR, &st) != 0) {
        fprintf(stderr, "note: %s absent: skipping the Fashion-MNIST check\n", FASHION_DIR);
        return;
    }
    static const struct {
        const char *split;
        size_t n;
    } splits[2] = {{"train", 60000}, {"t10k", 10000}};
    for (int s = 0; s < 2; s++) {
        struct dataset d;
        int rc = dataset_load(FASHION_DIR, splits[s].split, 10, 0, &d);
        CHECK(rc == AMP_OK, "Fashion-MNIST %s: %d %s", splits[s].split, rc, amp_last_error());
        if (rc != AMP_OK)
            continue;
        CHECK(d.n == splits[s].n && d.h == 28 && d.w == 28, "Fashion-MNIST %s: n=%zu %ux%u",
              splits[s].split, d.n, d.h, d.w);
        size_t per_class[10] = {0}, bad = 0;
        for (size_t i = 0; i < d.n; i++) {
            if (d.labels[i] < 10)
                per_class[d.labels[i]]++;
            else
                bad++;
        }
        CHECK(bad == 0, "Fashion-MNIST %s: %zu labels >= 10", splits[s].split, bad);
        for (int c = 0; c < 10; c++)
            CHECK(per_class[c] == d.n / 10, "Fashion-MNIST %s: class %d has %zu samples",
                  splits[s].split, c, per_class[c]);
        float lo = 1, hi = 0;
        for (size_t i = 0; i < d.n * 28 * 28; i++) {
            lo = d.images[i] < lo ? d.images[i] : lo;
            hi = d.images[i] > hi ? d.images[i] : hi;
        }
        CHECK(lo == 0.0f && hi == 1.0f, "Fashion-MNIST %s: pixel range [%g, %g]", splits[s].split,
              (double)lo, (double)hi);
        dataset_free(&d);
    }
    struct dataset d;
    int rc = dataset_load(FASHION_DIR, "train", 10, 100, &d);
    CHECK(rc == AMP_OK && d.n == 100 && d.h == 28 && d.w == 28, "Fashion-MNIST limit 100: %d n=%zu",
          rc, d.n);
    dataset_free(&d);
}

int main(void)
{
    if (mkdtemp(g_base) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    test_valid();
    test_preference();
    test_malformed_header();
    test_malformed_payload();
    test_files();
    test_default_dir();
    test_fashion_mnist();
    if (nftw(g_base, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "note: could not remove %s\n", g_base);
    return check_summary();
}
