/* The training loop: per epoch, a seeded shuffle, batches through the network (the last partial
 * batch included), then evaluation on the test split; per-step loss scale, skipped steps and
 * rounding diagnostics. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "interrupt.h"
#include "model.h"
#include "nvtx.h"
#include "registry.h"
#include "rng.h"

const char *tensor_class_name(enum tensor_class c)
{
    static const char *const names[NCLASSES] = {
        [CLASS_ACTIVATIONS] = "activations",
        [CLASS_ACTIVATION_GRADS] = "activation_grads",
        [CLASS_WEIGHT_GRADS] = "weight_grads",
        [CLASS_WEIGHTS] = "weights",
    };
    return names[c];
}

static enum tensor_class class_of(enum mem_category cat)
{
    switch (cat) {
    case MEM_ACTIVATIONS: return CLASS_ACTIVATIONS;
    case MEM_ACTIVATION_GRADS: return CLASS_ACTIVATION_GRADS;
    case MEM_WEIGHT_GRADS: return CLASS_WEIGHT_GRADS;
    default: return CLASS_WEIGHTS;
    }
}

static void summarize(struct numerics_summary *sum, const struct numerics_counts *c)
{
    memset(sum, 0, sizeof *sum);
    for (int cat = 0; cat < MEM_NCATEGORIES; cat++) {
        struct class_numerics *k = &sum->cls[class_of(cat)];
        k->rounded += c->rounded[cat];
        k->underflow += c->underflow[cat];
        k->overflow += c->overflow[cat];
    }
    sum->updates = c->updates;
    sum->swallowed = c->swallowed;
}

static void accumulate(struct numerics_summary *into, const struct numerics_summary *add)
{
    for (int k = 0; k < NCLASSES; k++) {
        into->cls[k].rounded += add->cls[k].rounded;
        into->cls[k].underflow += add->cls[k].underflow;
        into->cls[k].overflow += add->cls[k].overflow;
    }
    into->updates += add->updates;
    into->swallowed += add->swallowed;
}

static double frac(uint64_t part, uint64_t whole)
{
    return whole ? (double)part / (double)whole : 0.0;
}

double numerics_underflow_frac(const struct numerics_summary *n, enum tensor_class c)
{
    return frac(n->cls[c].underflow, n->cls[c].rounded);
}

double numerics_overflow_frac(const struct numerics_summary *n, enum tensor_class c)
{
    return frac(n->cls[c].overflow, n->cls[c].rounded);
}

double numerics_grad_underflow_frac(const struct numerics_summary *n)
{
    const struct class_numerics *a = &n->cls[CLASS_ACTIVATION_GRADS], *w = &n->cls[CLASS_WEIGHT_GRADS];
    return frac(a->underflow + w->underflow, a->rounded + w->rounded);
}

/* The data sets on the backend (uploaded once; batches gathered there from index lists) and
 * the evaluation's index list (the test split in order). */
struct staging {
    struct model_data train, test;
    uint32_t *idx;
};

/* Everything one recipe's training needs. */
struct session {
    const struct amp_config *c;
    const struct recipe *r;
    struct backend be;
    struct model *model;
    struct staging st;
    const struct train_progress *progress;
    struct recipe_result *out;
    size_t steps_cap;
    int capturing;       /* inside the --profile-steps range */
    uint64_t capture_id; /* its NVTX start/end range */
};

/* The capture range of --profile-steps: the backend's profiler range (cudaProfilerStart/Stop,
 * for nsys --capture-range=cudaProfilerApi) and an NVTX start/end range "profile_steps" in the
 * ampbench domain (for nsys --capture-range=nvtx, on every backend; tests/nvtx_recorder.c checks
 * it brackets exactly the steps named). */
static void capture(struct session *s, int start)
{
    struct backend *be = &s->be;
    if (start == s->capturing)
        return;
    s->capturing = start;
    if (start)
        s->capture_id = nvtx_range_start("profile_steps");
    if (be->ops->profile_range)
        be->ops->profile_range(be->ctx, start);
    if (!start)
        nvtx_range_end(s->capture_id);
}

static int record_step(struct session *s, const struct step_record *rec)
{
    struct recipe_result *out = s->out;
    if (!s->c->steps_csv)
        return AMP_OK;
    if (out->nsteps == s->steps_cap) {
        size_t cap = s->steps_cap ? 2 * s->steps_cap : 1024;
        struct step_record *grown = realloc(out->steps, cap * sizeof *grown);
        if (!grown)
            return amp_fail(AMP_ENOMEM, "out of host memory recording steps of %s", s->r->name);
        out->steps = grown;
        s->steps_cap = cap;
    }
    out->steps[out->nsteps++] = *rec;
    return AMP_OK;
}

/* --data-parallel: this replica's shard of the batch of n samples at `first` (rank r of W takes
 * [r*n/W, (r+1)*n/W)); the whole batch otherwise. */
static void shard_of(const struct amp_config *c, size_t *first, uint32_t *n)
{
    if (!c->sync)
        return;
    const uint64_t r = c->sync->rank, w = c->sync->replicas, begin = r * *n / w,
                   end = (r + 1) * *n / w;
    *first += begin;
    *n = (uint32_t)(end - begin);
}

/* --data-parallel: the step's loss, accuracy and rounding counts summed over the replicas. */
static int reduce_step(const struct model_sync *sync, struct step_result *sr,
                       struct numerics_counts *counts)
{
    double v[2 + 3 * MEM_NCATEGORIES + 2] = { sr->loss_sum, sr->correct };
    uint64_t *const fields[] = { counts->rounded, counts->underflow, counts->overflow };
    for (int f = 0; f < 3; f++)
        for (int k = 0; k < MEM_NCATEGORIES; k++)
            v[2 + f * MEM_NCATEGORIES + k] = (double)fields[f][k];
    v[2 + 3 * MEM_NCATEGORIES] = (double)counts->updates;
    v[3 + 3 * MEM_NCATEGORIES] = (double)counts->swallowed;
    const int rc = sync->sum(sync->user, v, sizeof v / sizeof v[0]);
    sr->loss_sum = v[0];
    sr->correct = (uint32_t)v[1];
    for (int f = 0; f < 3; f++)
        for (int k = 0; k < MEM_NCATEGORIES; k++)
            fields[f][k] = (uint64_t)v[2 + f * MEM_NCATEGORIES + k];
    counts->updates = (uint64_t)v[2 + 3 * MEM_NCATEGORIES];
    counts->swallowed = (uint64_t)v[3 + 3 * MEM_NCATEGORIES];
    return rc;
}

/* One training epoch over `order`. Stops early (no error) when the loss diverges. */
static int train_epoch(struct session *s, const struct dataset *d, const uint32_t *order,
                       struct epoch_metrics *m)
{
    const struct amp_config *c = s->c;
    struct backend *be = &s->be;
    /* the global batch (a replica's model holds its shard of it) */
    const size_t batch = c->batch < d->n ? c->batch : d->n, batches = (d->n + batch - 1) / batch;
    const double t0 = now_s();
    double loss_sum = 0.0;
    size_t correct = 0;
    struct numerics_counts counts;
    be->ops->read_counts(be->ctx, &counts); /* start the epoch from zero */
    const uint64_t overflow_before = c->sync ? c->sync->overflow(c->sync->user) : 0;
    for (size_t b = 0; b < batches; b++) {
        const size_t first = b * batch;
        const uint32_t n = (uint32_t)(first + batch <= d->n ? batch : d->n - first);
        const uint64_t global_step = (uint64_t)(m->epoch - 1) * batches + b + 1;
        if (global_step == c->profile_first)
            capture(s, 1);
        nvtx_push("step");
        size_t mine = first;
        uint32_t n_mine = n;
        shard_of(c, &mine, &n_mine);
        struct step_result sr;
        int rc = model_gather_batch(s->model, &s->st.train, order + mine, n_mine);
        if (rc == AMP_OK)
            rc = model_train_step(s->model, n_mine, c->lr, c->momentum, &sr);
        nvtx_pop();
        if (global_step == c->profile_last)
            capture(s, 0);
        if (rc == AMP_OK)
            rc = be->ops->read_counts(be->ctx, &counts);
        if (rc == AMP_OK && c->sync)
            rc = reduce_step(c->sync, &sr, &counts);
        if (rc != AMP_OK)
            return rc;
        struct numerics_summary step_numerics;
        summarize(&step_numerics, &counts);
        accumulate(&m->numerics, &step_numerics);
        loss_sum += sr.loss_sum;
        correct += sr.correct;
        m->steps++;
        m->skipped_steps += (uint32_t)sr.skipped;
        m->loss_scale = model_has_scaler(s->model) ? sr.scaler.scale : 1.0f;
        m->growth_tracker = sr.scaler.growth_tracker;
        if (model_has_scaler(s->model) && sr.scaler.scale < 1.0f)
            s->out->scale_below_one = 1;
        struct step_record rec = { .epoch = m->epoch, .step = (uint32_t)b + 1,
                                   .loss = (float)(sr.loss_sum / n), .loss_scale = sr.loss_scale,
                                   .skipped = sr.skipped };
        for (int k = 0; k < NCLASSES; k++) {
            rec.underflow[k] = (float)numerics_underflow_frac(&step_numerics, k);
            rec.overflow[k] = (float)numerics_overflow_frac(&step_numerics, k);
        }
        rc = record_step(s, &rec);
        if (rc == AMP_OK)
            rc = fp8_run_step(&s->out->fp8, s->model, m->epoch, (uint32_t)b + 1, c->steps_csv);
        if (rc != AMP_OK)
            return rc;
        if (!isfinite(sr.loss_sum)) {
            s->out->diverged = 1;
            s->out->diverged_epoch = m->epoch;
            s->out->diverged_step = (uint32_t)b + 1;
            break;
        }
        if (s->progress && s->progress->batch_done)
            s->progress->batch_done(s->progress->user, s->r, m->epoch, c->epochs, b + 1, batches,
                                    now_s() - t0);
        if (interrupt_signal())
            return amp_fail(AMP_EINTR, "interrupted (signal %d) at epoch %u, step %zu of %s",
                            interrupt_signal(), m->epoch, b + 1, s->r->name);
    }
    m->epoch_s = now_s() - t0;
    m->samples_per_s = (double)d->n / m->epoch_s;
    if (c->sync) { /* the replicas still hold one model */
        m->allreduce_overflow = c->sync->overflow(c->sync->user) - overflow_before;
        const int rc = c->sync->check(c->sync->user, s->model);
        if (rc != AMP_OK)
            return rc;
    }
    m->train_loss = loss_sum / (double)d->n;
    m->train_acc = (double)correct / (double)d->n;
    return AMP_OK;
}

/* Evaluation over the whole split in order, forward only. */
static int evaluate(struct session *s, const struct dataset *d, double *loss, double *acc)
{
    const size_t batch = model_shape_of(s->model)->batch, batches = (d->n + batch - 1) / batch;
    double loss_sum = 0.0;
    size_t correct = 0;
    for (size_t b = 0; b < batches; b++) {
        const size_t first = b * batch;
        const uint32_t n = (uint32_t)(first + batch <= d->n ? batch : d->n - first);
        for (uint32_t i = 0; i < n; i++)
            s->st.idx[i] = (uint32_t)(first + i);
        struct step_result sr;
        int rc = model_gather_batch(s->model, &s->st.test, s->st.idx, n);
        if (rc == AMP_OK)
            rc = model_evaluate(s->model, n, &sr);
        if (rc != AMP_OK)
            return rc;
        loss_sum += sr.loss_sum;
        correct += sr.correct;
    }
    *loss = loss_sum / (double)d->n;
    *acc = (double)correct / (double)d->n;
    /* Evaluation rounds activations too; those counts do not belong to the next epoch. */
    struct numerics_counts discard;
    return s->be.ops->read_counts(s->be.ctx, &discard);
}

struct precision_plan train_plan_of(const struct amp_config *c, const struct recipe *r)
{
    struct precision_plan plan = precision_plan_of(r, c->policy);
    plan.fp8.amax_history = c->amax_history;
    plan.fp8.mx_rounding = c->mx_scale;
    return plan;
}

void train_shuffle_stream(struct rng *r, uint64_t seed)
{
    rng_seed(r, seed ^ 0x53485546464C45ull); /* "SHUFFLE": a stream apart from the init's */
}

struct model_shape train_model_shape(const struct amp_config *c, const struct dataset *d,
                                     uint32_t batch)
{
    return (struct model_shape){ .batch = batch, .c_in = d->c, .h = d->h, .w = d->w,
                                 .classes = d->classes, .channels = c->channels };
}

int train_open_model(const struct amp_config *c, const struct recipe *r,
                     const struct precision_plan *plan, const struct model_shape *shape,
                     struct backend *be, struct model **model)
{
    *model = NULL;
    int rc = backend_open(be, c->device,
                          &(struct backend_options){ .threads = c->threads,
                                                     .deterministic = c->deterministic,
                                                     .graphs = c->graphs });
    if (rc != AMP_OK)
        return rc;
    const struct loss_scaler scaler =
        r->scaling == SCALING_STATIC
            ? scaler_make(c->loss_scale, 0, (int32_t)c->scale_growth_interval, 0.0f, 0.0f)
            : scaler_make(c->scale_init, 1, (int32_t)c->scale_growth_interval, c->scale_min,
                          c->scale_max);
    rc = model_create(model, be, c->net, shape, plan, r->scaling, &scaler);
    if (rc == AMP_OK) {
        struct rng init;
        rng_seed(&init, c->seed);
        rc = model_init(*model, &init);
    }
    if (rc != AMP_OK)
        train_close_model(be, model);
    return rc;
}

void train_close_model(struct backend *be, struct model **model)
{
    model_destroy(*model);
    *model = NULL;
    backend_close(be);
}

static int run_epochs(struct session *s, const struct dataset *train, const struct dataset *test,
                      uint32_t *order)
{
    const struct amp_config *c = s->c;
    /* Every recipe starts from the same weights (train_open_model) and sees the same batches. */
    struct rng shuffle_rng;
    train_shuffle_stream(&shuffle_rng, c->seed);
    int rc = AMP_OK;
    for (size_t i = 0; i < train->n; i++)
        order[i] = (uint32_t)i;
    for (uint32_t e = 1; e <= c->epochs && rc == AMP_OK && !s->out->diverged; e++) {
        struct epoch_metrics *m = &s->out->epochs[e - 1];
        m->epoch = e;
        rng_shuffle(&shuffle_rng, order, train->n);
        nvtx_push("epoch");
        rc = train_epoch(s, train, order, m);
        nvtx_pop();
        if (rc == AMP_OK && !s->out->diverged) {
            nvtx_push("evaluate");
            rc = evaluate(s, test, &m->test_loss, &m->test_acc);
            nvtx_pop();
        }
        if (rc == AMP_OK && s->out->diverged)
            m->test_loss = m->test_acc = NAN;
        if (rc == AMP_OK) {
            m->mem = s->be.mem;
            s->out->nepochs = e;
            if (s->progress && s->progress->epoch_done)
                s->progress->epoch_done(s->progress->user, s->r, m);
        }
    }
    return rc;
}

/* The precision trace of the recipe's plan, into out. */
static int record_trace(const struct net_preset *net, const struct model_shape *shape,
                        struct recipe_result *out)
{
    struct layer_info *info = calloc(net->nlayers, sizeof *info);
    out->trace = calloc(net->nlayers, sizeof *out->trace);
    int rc = info && out->trace ? model_layers(net, shape, &out->plan, info, net->nlayers,
                                               &out->ntrace)
                                : amp_fail(AMP_ENOMEM, "out of host memory");
    for (size_t i = 0; i < out->ntrace && rc == AMP_OK; i++)
        out->trace[i] = info[i].trace;
    free(info);
    return rc;
}

int train_recipe(const struct amp_config *c, const struct recipe *r, const struct dataset *train,
                 const struct dataset *test, const struct train_progress *progress,
                 struct recipe_result *out)
{
    memset(out, 0, sizeof *out);
    out->recipe = r;
    out->seed = c->seed;
    out->plan = train_plan_of(c, r);
    out->epochs = calloc(c->epochs, sizeof *out->epochs);
    uint32_t *order = malloc(train->n * sizeof *order);
    uint32_t batch = (uint32_t)(c->batch < train->n ? c->batch : train->n);
    if (c->sync) /* a replica holds its shard: at most ceil(batch / replicas) samples */
        batch = (batch + c->sync->replicas - 1) / c->sync->replicas;
    struct session s = {
        .c = c, .r = r, .progress = progress, .out = out,
        .st = { .idx = malloc((size_t)batch * sizeof(uint32_t)) },
    };
    int rc = AMP_OK;
    if (!out->epochs || !order || !s.st.idx)
        rc = amp_fail(AMP_ENOMEM, "out of host memory setting up recipe %s", r->name);
    struct backend *be = &s.be;
    const struct model_shape shape = train_model_shape(c, train, batch);
    if (rc == AMP_OK)
        rc = train_open_model(c, r, &out->plan, &shape, be, &s.model);
    if (rc == AMP_OK && c->sync)
        rc = model_set_sync(s.model, c->sync);
    if (rc == AMP_OK)
        rc = model_data_upload(s.model, &s.st.train, train->pixels, train->labels, train->n);
    if (rc == AMP_OK)
        rc = model_data_upload(s.model, &s.st.test, test->pixels, test->labels, test->n);
    if (rc == AMP_OK) {
        rc = record_trace(c->net, &shape, out);
        if (rc == AMP_OK)
            rc = fp8_run_open(&out->fp8, s.model, c->epochs);
        if (rc == AMP_OK && progress && progress->started)
            progress->started(progress->user, out);
    }
    if (rc == AMP_OK) {
        rc = run_epochs(&s, train, test, order);
        capture(&s, 0); /* still open when the run had fewer steps than B, diverged or failed */
        out->threads = be->threads;
        if (be->ops->describe) { /* algorithms, graphs, device memory: for run.json */
            const int need = be->ops->describe(be->ctx, NULL, 0);
            out->backend_json = need > 0 ? malloc((size_t)need + 1) : NULL;
            if (out->backend_json)
                be->ops->describe(be->ctx, out->backend_json, (size_t)need + 1);
        }
    }
    if (s.model) {
        model_data_free(s.model, &s.st.train);
        model_data_free(s.model, &s.st.test);
        train_close_model(be, &s.model);
    }
    free(order);
    free(s.st.idx);
    return rc;
}

void recipe_result_free(struct recipe_result *r)
{
    free(r->epochs);
    free(r->steps);
    free(r->backend_json);
    free(r->trace);
    fp8_run_free(&r->fp8);
    r->trace = NULL;
    r->epochs = NULL;
    r->steps = NULL;
    r->backend_json = NULL;
}
