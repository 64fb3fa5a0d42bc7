/* The training loop: per epoch, a seeded shuffle, batches through the network (the last partial
 * batch included), then evaluation on the test split. */
#include "train.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "model.h"
#include "rng.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Host staging of one batch, gathered from the dataset by index. */
struct staging {
    float *images;
    int32_t *labels;
};

static void gather(struct staging *st, const struct dataset *d, const uint32_t *idx, size_t n)
{
    const size_t pixels = (size_t)d->h * d->w;
    for (size_t i = 0; i < n; i++) {
        const uint32_t j = idx ? idx[i] : (uint32_t)i;
        memcpy(st->images + i * pixels, d->images + (size_t)j * pixels, pixels * sizeof(float));
        st->labels[i] = d->labels[j];
    }
}

/* Runs one pass over d in batches (training when `order` is given, in that order). */
static int run_pass(struct seed_net *net, struct staging *st, const struct dataset *d,
                    const uint32_t *order, const struct amp_config *c, const struct recipe *r,
                    uint32_t epoch, const struct train_progress *progress, double *loss,
                    double *acc)
{
    const size_t batch = net->shape.batch;
    const size_t batches = (d->n + batch - 1) / batch;
    const size_t pixels = (size_t)d->h * d->w;
    const double t0 = now_s();
    double loss_sum = 0.0;
    size_t correct = 0;
    for (size_t b = 0; b < batches; b++) {
        const size_t first = b * batch;
        const uint32_t n = (uint32_t)(first + batch <= d->n ? batch : d->n - first);
        int rc;
        if (order) {
            gather(st, d, order + first, n);
            rc = seed_net_set_batch(net, st->images, st->labels, n);
        } else {
            for (uint32_t i = 0; i < n; i++)
                st->labels[i] = d->labels[first + i];
            rc = seed_net_set_batch(net, d->images + first * pixels, st->labels, n);
        }
        struct batch_stats bs;
        if (rc == AMP_OK)
            rc = seed_net_step(net, n, order != NULL, c->lr, c->momentum, &bs);
        if (rc != AMP_OK)
            return rc;
        loss_sum += bs.loss_sum;
        correct += bs.correct;
        if (order && progress && progress->batch_done)
            progress->batch_done(progress->user, r, epoch, c->epochs, b + 1, batches,
                                 now_s() - t0);
    }
    *loss = loss_sum / (double)d->n;
    *acc = (double)correct / (double)d->n;
    return AMP_OK;
}

int train_mode(const struct amp_config *c, const struct recipe *r, const struct dataset *train,
               const struct dataset *test, const struct train_progress *progress,
               struct mode_result *out)
{
    memset(out, 0, sizeof *out);
    out->recipe = r;
    out->epochs = calloc(c->epochs, sizeof *out->epochs);
    uint32_t *order = malloc(train->n * sizeof *order);
    const uint32_t batch = (uint32_t)(c->batch < train->n ? c->batch : train->n);
    struct staging st = {
        .images = malloc((size_t)batch * train->h * train->w * sizeof(float)),
        .labels = malloc((size_t)batch * sizeof(int32_t)),
    };
    if (!out->epochs || !order || !st.images || !st.labels) {
        free(order);
        free(st.images);
        free(st.labels);
        mode_result_free(out);
        return amp_fail(AMP_ENOMEM, "out of host memory setting up mode %s", r->name);
    }

    struct backend be;
    struct seed_net net;
    int rc = backend_open(&be, c->device, c->threads);
    if (rc == AMP_OK) {
        const struct seed_shape shape = { .batch = batch, .c_in = 1, .h = train->h,
                                          .w = train->w, .channels = c->channels,
                                          .classes = 10 };
        rc = seed_net_create(&net, &be, &shape);
        if (rc == AMP_OK) {
            /* Every mode starts from the same weights and sees the same batches. */
            struct rng init_rng, shuffle_rng;
            rng_seed(&init_rng, c->seed);
            rng_seed(&shuffle_rng, c->seed ^ 0x53485546464C45ull);
            rc = seed_net_init(&net, &init_rng);
            for (size_t i = 0; i < train->n; i++)
                order[i] = (uint32_t)i;
            for (uint32_t e = 1; e <= c->epochs && rc == AMP_OK; e++) {
                struct epoch_metrics *m = &out->epochs[e - 1];
                m->epoch = e;
                rng_shuffle(&shuffle_rng, order, train->n);
                double t0 = now_s();
                rc = run_pass(&net, &st, train, order, c, r, e, progress, &m->train_loss,
                              &m->train_acc);
                m->epoch_s = now_s() - t0;
                m->samples_per_s = (double)train->n / m->epoch_s;
                if (rc == AMP_OK)
                    rc = run_pass(&net, &st, test, NULL, c, r, e, NULL, &m->test_loss,
                                  &m->test_acc);
                if (rc == AMP_OK) {
                    m->mem = be.mem;
                    out->nepochs = e;
                    if (progress && progress->epoch_done)
                        progress->epoch_done(progress->user, r, m);
                }
            }
            out->threads = be.threads;
            seed_net_destroy(&net);
        }
        backend_close(&be);
    }
    free(order);
    free(st.images);
    free(st.labels);
    return rc;
}

void mode_result_free(struct mode_result *r)
{
    free(r->epochs);
    r->epochs = NULL;
}
