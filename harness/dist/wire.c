/* recipe_result to bytes and back: a header (magic, record sizes), then every field in order. */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define WIRE_MAGIC 0x414d5052ull /* "AMPR" */

struct writer {
    unsigned char *buf;
    size_t len, cap;
    int failed;
};

static void put(struct writer *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *grown = realloc(w->buf, cap);
        if (!grown) {
            w->failed = 1;
            return;
        }
        w->buf = grown;
        w->cap = cap;
    }
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u64(struct writer *w, uint64_t v)
{
    put(w, &v, sizeof v);
}

/* A string, or none (NULL). */
static void put_str(struct writer *w, const char *s)
{
    put_u64(w, s ? strlen(s) + 1 : 0);
    if (s)
        put(w, s, strlen(s) + 1);
}

/* count records of `size` bytes. */
static void put_array(struct writer *w, const void *p, size_t count, size_t size)
{
    put_u64(w, count);
    put(w, p, count * size);
}

struct reader {
    const unsigned char *buf;
    size_t len, at;
    int failed;
};

static void get(struct reader *r, void *p, size_t n)
{
    if (r->failed || n > r->len - r->at) {
        r->failed = 1;
        memset(p, 0, n);
        return;
    }
    memcpy(p, r->buf + r->at, n);
    r->at += n;
}

static uint64_t get_u64(struct reader *r)
{
    uint64_t v = 0;
    get(r, &v, sizeof v);
    return v;
}

/* A malloc'd copy of count records of `size` bytes (NULL for none), *count set; `expect`, when
 * not 0, is the only count accepted. */
static void *get_array(struct reader *r, size_t size, size_t *count, size_t expect)
{
    const uint64_t n = get_u64(r);
    *count = 0;
    if (r->failed || (expect && n != expect) || n > (r->len - r->at) / (size ? size : 1)) {
        r->failed |= n != 0;
        return NULL;
    }
    if (n == 0)
        return NULL;
    void *p = malloc((size_t)n * size);
    if (!p) {
        r->failed = 1;
        return NULL;
    }
    get(r, p, (size_t)n * size);
    *count = (size_t)n;
    return p;
}

static char *get_str(struct reader *r)
{
    size_t n;
    char *s = get_array(r, 1, &n, 0);
    if (s && s[n - 1] != '\0')
        r->failed = 1;
    return s;
}

/* The sizes of the plain records that travel as bytes, in the header: a rank of another build
 * is refused, not misread. */
enum { NRECORDS = 6 };
static void record_sizes(uint64_t out[NRECORDS])
{
    const uint64_t sizes[NRECORDS] = { sizeof(struct epoch_metrics), sizeof(struct step_record),
                                       sizeof(struct layer_trace), sizeof(struct model_fp8),
                                       sizeof(struct fp8_epoch), sizeof(struct fp8_step) };
    memcpy(out, sizes, sizeof sizes);
}

int wire_encode(const struct recipe_result *res, const struct amp_config *c, void **bytes,
                size_t *len)
{
    struct writer w = { 0 };
    uint64_t sizes[NRECORDS];
    record_sizes(sizes);
    put_u64(&w, WIRE_MAGIC);
    put(&w, sizes, sizeof sizes);
    put_str(&w, res->recipe->name);
    put_u64(&w, res->seed);
    put_u64(&w, res->nepochs);
    put_array(&w, res->epochs, c->epochs, sizeof *res->epochs);
    put_array(&w, res->steps, res->nsteps, sizeof *res->steps);
    const int64_t flags[] = { res->threads, res->diverged, res->diverged_epoch,
                              res->diverged_step, res->scale_below_one, res->rank };
    put(&w, flags, sizeof flags);
    put_str(&w, res->backend_json);
    /* The trace: each line's layer named by its preset name (a pointer into c->net). */
    put_array(&w, res->trace, res->ntrace, sizeof *res->trace);
    for (size_t i = 0; i < res->ntrace; i++)
        put_str(&w, res->trace[i].name);
    const struct fp8_run *f = &res->fp8;
    put_u64(&w, f->ntensors);
    if (f->ntensors) {
        put_array(&w, f->last, f->ntensors, sizeof *f->last);
        put_array(&w, f->epochs, (size_t)c->epochs * f->ntensors, sizeof *f->epochs);
        put_array(&w, f->steps, f->nsteps, sizeof *f->steps);
        const uint64_t first[] = { (uint64_t)f->saturated, f->first_epoch, f->first_step,
                                   f->first_tensor };
        put(&w, first, sizeof first);
    }
    if (w.failed) {
        free(w.buf);
        return amp_fail(AMP_ENOMEM, "out of host memory sending the result of %s",
                        res->recipe->name);
    }
    *bytes = w.buf;
    *len = w.len;
    return AMP_OK;
}

/* The preset's own name of a trace line (the pointer the decoded line must hold). */
static const char *layer_name(const struct net_preset *net, const char *name)
{
    for (size_t i = 0; name && i < net->nlayers; i++)
        if (strcmp(net->layers[i].name, name) == 0)
            return net->layers[i].name;
    return NULL;
}

int wire_decode(const void *bytes, size_t len, const struct amp_config *c,
                struct recipe_result *out)
{
    struct reader r = { .buf = bytes, .len = len };
    memset(out, 0, sizeof *out);
    uint64_t sizes[NRECORDS], got[NRECORDS];
    record_sizes(sizes);
    const uint64_t magic = get_u64(&r);
    get(&r, got, sizeof got);
    if (r.failed || magic != WIRE_MAGIC || memcmp(got, sizes, sizeof sizes) != 0)
        return amp_fail(AMP_EFAIL, "a rank sent a result this binary cannot read (another "
                        "build of ampbench?)");
    char *name = get_str(&r);
    out->recipe = name ? recipe_find(name) : NULL;
    free(name);
    if (!out->recipe)
        r.failed = 1;
    else
        out->plan = train_plan_of(c, out->recipe);
    out->seed = get_u64(&r);
    out->nepochs = (uint32_t)get_u64(&r);
    size_t n;
    out->epochs = get_array(&r, sizeof *out->epochs, &n, c->epochs);
    out->steps = get_array(&r, sizeof *out->steps, &out->nsteps, 0);
    int64_t flags[6];
    get(&r, flags, sizeof flags);
    out->threads = (int)flags[0];
    out->diverged = (int)flags[1];
    out->diverged_epoch = (uint32_t)flags[2];
    out->diverged_step = (uint32_t)flags[3];
    out->scale_below_one = (int)flags[4];
    out->rank = (uint32_t)flags[5];
    out->backend_json = get_str(&r);
    out->trace = get_array(&r, sizeof *out->trace, &out->ntrace, 0);
    for (size_t i = 0; i < out->ntrace && !r.failed; i++) {
        char *layer = get_str(&r);
        out->trace[i].name = layer_name(c->net, layer);
        r.failed |= !out->trace[i].name;
        free(layer);
    }
    struct fp8_run *f = &out->fp8;
    f->ntensors = (size_t)get_u64(&r);
    if (f->ntensors && !r.failed) {
        f->last = get_array(&r, sizeof *f->last, &n, f->ntensors);
        f->epochs = get_array(&r, sizeof *f->epochs, &n, (size_t)c->epochs * f->ntensors);
        f->steps = get_array(&r, sizeof *f->steps, &f->nsteps, 0);
        f->steps_cap = f->nsteps;
        uint64_t first[4];
        get(&r, first, sizeof first);
        f->saturated = (int)first[0];
        f->first_epoch = (uint32_t)first[1];
        f->first_step = (uint32_t)first[2];
        f->first_tensor = (uint32_t)first[3];
    }
    if (r.failed || r.at != r.len || !out->epochs) {
        recipe_result_free(out);
        return amp_fail(AMP_EFAIL, "a rank sent a malformed result (%zu bytes)", len);
    }
    return AMP_OK;
}
