/* Terminal output of a run: a live line (batches done, samples/s, ETA) redrawn at most ten
 * times a second when stdout is a terminal, and one table row per finished epoch. */
#include "progress.h"

#include <string.h>

#include "clock.h"

void progress_init(struct progress_state *p, FILE *out, int live)
{
    p->out = out;
    p->live = live;
    p->last_draw_s = 0.0;
    p->after_epoch = NULL;
    p->after_batch = NULL;
    p->ctx = NULL;
}

/* The recipe's precision trace and the header of its epoch table. */
static void started(void *user, const struct recipe_result *r)
{
    struct progress_state *p = user;
    fprintf(p->out, "\n%s (seed %llu): %s\n", r->recipe->name, (unsigned long long)r->seed,
            r->recipe->summary);
    fprintf(p->out, "  precision trace:\n");
    int in_w = 5, compute_w = 24; /* the columns as wide as this recipe's longest entry */
    for (size_t i = 0; i < r->ntrace; i++) {
        const int in = (int)strlen(r->trace[i].input), compute = (int)strlen(r->trace[i].compute);
        in_w = in > in_w ? in : in_w;
        compute_w = compute > compute_w ? compute : compute_w;
    }
    for (size_t i = 0; i < r->ntrace; i++)
        fprintf(p->out, "    %-12s %-13s in %-*s compute %-*s out %-5s weights %s\n",
                r->trace[i].name, r->trace[i].layer, in_w, r->trace[i].input, compute_w,
                r->trace[i].compute, r->trace[i].output, r->trace[i].weights);
    fprintf(p->out, "  %-12s %5s %10s %10s %10s %10s %8s %10s %7s %9s %9s\n", "mode", "epoch",
            "train_loss", "train_acc", "test_loss", "test_acc", "epoch_s", "samples/s", "skipped",
            "scale", "grad_uflw");
}

static void batch_done(void *user, const struct recipe *r, uint32_t epoch, uint32_t epochs,
                       size_t batch, size_t batches, double elapsed_s)
{
    struct progress_state *p = user;
    if (p->after_batch)
        p->after_batch(p->ctx);
    if (!p->live)
        return;
    const double t = now_s();
    if (batch != batches && t - p->last_draw_s < 0.1)
        return;
    p->last_draw_s = t;
    const double rate = elapsed_s > 0 ? (double)batch / elapsed_s : 0.0;
    const double eta = rate > 0 ? (double)(batches - batch) / rate : 0.0;
    fprintf(p->out, "\r  %-12s epoch %u/%u  batch %zu/%zu  %.0f batches/s  ETA %.1fs   ",
            r->name, epoch, epochs, batch, batches, rate, eta);
    fflush(p->out);
}

static void epoch_done(void *user, const struct recipe *r, const struct epoch_metrics *m)
{
    struct progress_state *p = user;
    if (p->live)
        fprintf(p->out, "\r\033[K");
    fprintf(p->out, "  %-12s %5u %10.4f %9.2f%% %10.4f %9.2f%% %8.2f %10.0f %7u %9g %9.2e\n",
            r->name, m->epoch, m->train_loss, 100.0 * m->train_acc, m->test_loss,
            100.0 * m->test_acc, m->epoch_s, m->samples_per_s, m->skipped_steps, m->loss_scale,
            numerics_grad_underflow_frac(&m->numerics));
    fflush(p->out);
    if (p->after_epoch)
        p->after_epoch(p->ctx);
}

struct train_progress progress_callbacks(struct progress_state *p)
{
    return (struct train_progress){ .started = started, .batch_done = batch_done,
                                    .epoch_done = epoch_done, .user = p };
}

