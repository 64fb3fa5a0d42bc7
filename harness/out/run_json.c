/* run.json: the configuration, the environment, every recipe's primary run (precision trace,
 * per-epoch metrics, numerics, memory), every seed's curves and verify's verdicts (cJSON). */
#include "results.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "jsonfile.h"

#ifndef AMPBENCH_VERSION
#define AMPBENCH_VERSION "unknown"
#endif

void results_protocol_json(cJSON *j, const struct amp_config *c)
{
    cJSON_AddStringToObject(j, "net", c->net->name);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "momentum", c->momentum);
    cJSON_AddNumberToObject(j, "channels", c->channels);
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
}

/* The process group: how many ranks, on which hosts, what they shared. */
static cJSON *distributed_json(const struct run_record *rec)
{
    const struct amp_config *c = rec->config;
    const int world = rec->world_size > 1 ? rec->world_size : 1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "world_size", world);
    cJSON_AddStringToObject(d, "mode", world == 1 ? "single" : c->data_parallel ? "data-parallel"
                                                                                : "sweep");
    cJSON *hosts = cJSON_AddArrayToObject(d, "rank_hosts");
    for (const char *h = rec->rank_hosts; h && *h;) {
        const char *comma = strchr(h, ',');
        const size_t len = comma ? (size_t)(comma - h) : strlen(h);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)len, h);
        cJSON_AddItemToArray(hosts, cJSON_CreateString(name));
        h += len + (comma != NULL);
    }
    cJSON_AddBoolToObject(d, "data_parallel", c->data_parallel);
    if (c->data_parallel) {
        cJSON_AddStringToObject(d, "allreduce_dtype", allreduce_dtype_name(c->allreduce_dtype));
        if (rec->allreduce_library)
            cJSON_AddStringToObject(d, "allreduce_library", rec->allreduce_library);
        cJSON_AddBoolToObject(d, "sync_bn", c->sync_bn);
    }
    cJSON_AddNumberToObject(d, "timeout_s", c->dist_timeout);
    return d;
}

static cJSON *config_json(const struct run_record *rec)
{
    const struct amp_config *c = rec->config;
    cJSON *j = cJSON_CreateObject();
    cJSON *recipes = cJSON_AddArrayToObject(j, "modes");
    for (size_t i = 0; i < c->nrecipes; i++)
        cJSON_AddItemToArray(recipes, cJSON_CreateString(c->recipes[i]->name));
    results_protocol_json(j, c);
    cJSON_AddNumberToObject(j, "train_limit", (double)c->train_limit);
    cJSON_AddNumberToObject(j, "test_limit", (double)c->test_limit);
    cJSON_AddStringToObject(j, "data", rec->data_dir);
    cJSON_AddNumberToObject(j, "train_samples", (double)rec->train_samples);
    cJSON_AddNumberToObject(j, "test_samples", (double)rec->test_samples);
    cJSON_AddStringToObject(j, "device", c->device);
    cJSON_AddNumberToObject(j, "threads", c->threads);
    cJSON_AddStringToObject(j, "policy", policy_name(c->policy));
    cJSON_AddBoolToObject(j, "deterministic", c->deterministic);
    cJSON_AddBoolToObject(j, "graphs", c->graphs);
    cJSON *sc = cJSON_AddObjectToObject(j, "loss_scaling");
    cJSON_AddNumberToObject(sc, "static_scale", c->loss_scale);
    cJSON_AddNumberToObject(sc, "init_scale", c->scale_init);
    cJSON_AddNumberToObject(sc, "growth_factor", 2.0);
    cJSON_AddNumberToObject(sc, "backoff_factor", 0.5);
    cJSON_AddNumberToObject(sc, "growth_interval", c->scale_growth_interval);
    cJSON_AddNumberToObject(sc, "min_scale", c->scale_min);
    cJSON_AddNumberToObject(sc, "max_scale", c->scale_max);
    cJSON *f8 = cJSON_AddObjectToObject(j, "fp8");
    cJSON_AddNumberToObject(f8, "amax_history", c->amax_history);
    cJSON_AddStringToObject(f8, "mx_scale", c->mx_scale == MX_SCALE_FLOOR ? "floor" : "rceil");
    cJSON_AddItemToObject(j, "distributed", distributed_json(rec));
    return j;
}

static cJSON *environment_json(const struct host_info *h)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "cpu_model", h->cpu_model);
    cJSON_AddStringToObject(j, "cpu_features", h->cpu_features);
    cJSON_AddNumberToObject(j, "cores", h->cores);
    cJSON_AddStringToObject(j, "os", h->os);
    cJSON_AddStringToObject(j, "hostname", h->hostname);
    cJSON_AddStringToObject(j, "compiler", h->compiler);
    cJSON_AddStringToObject(j, "build_type", h->build_type);
    cJSON_AddStringToObject(j, "git_revision", h->git_revision);
    cJSON *libs = cJSON_AddObjectToObject(j, "libraries");
    cJSON_AddStringToObject(libs, "zlib", h->zlib_release);
    cJSON_AddStringToObject(libs, "cjson", h->cjson_version);
    cJSON_AddStringToObject(libs, "openmp", h->openmp_version);
    cJSON_AddBoolToObject(j, "cuda_compiled", h->cuda_compiled);
    return j;
}

cJSON *results_memory_json(const struct mem_stats *m)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *cats = cJSON_AddObjectToObject(j, "peak_bytes_by_category");
    for (int c = 0; c < MEM_NCATEGORIES; c++)
        if (c != MEM_DATA)
            cJSON_AddNumberToObject(cats, mem_category_name(c), (double)m->peak[c]);
    cJSON_AddNumberToObject(j, "peak_bytes", (double)m->peak_total);
    /* the data set on the backend: not training memory (backend.h, MEM_DATA) */
    cJSON_AddNumberToObject(j, "data_bytes", (double)m->peak[MEM_DATA]);
    return j;
}

static cJSON *numerics_json(const struct numerics_summary *n)
{
    cJSON *j = cJSON_CreateObject();
    for (int k = 0; k < NCLASSES; k++) {
        cJSON *o = cJSON_AddObjectToObject(j, tensor_class_name(k));
        cJSON_AddNumberToObject(o, "rounded", (double)n->cls[k].rounded);
        cJSON_AddNumberToObject(o, "underflow", (double)n->cls[k].underflow);
        cJSON_AddNumberToObject(o, "overflow", (double)n->cls[k].overflow);
        cJSON_AddNumberToObject(o, "underflow_frac", numerics_underflow_frac(n, k));
        cJSON_AddNumberToObject(o, "overflow_frac", numerics_overflow_frac(n, k));
    }
    cJSON_AddNumberToObject(j, "grad_underflow_frac", numerics_grad_underflow_frac(n));
    cJSON_AddNumberToObject(j, "lowp_weight_updates", (double)n->updates);
    cJSON_AddNumberToObject(j, "swallowed_updates", (double)n->swallowed);
    return j;
}

static cJSON *trace_json(const struct recipe_result *r)
{
    cJSON *j = cJSON_CreateArray();
    for (size_t i = 0; i < r->ntrace; i++) {
        const struct layer_trace *t = &r->trace[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "layer", t->layer);
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "input", t->input);
        cJSON_AddStringToObject(o, "compute", t->compute);
        cJSON_AddStringToObject(o, "output", t->output);
        cJSON_AddStringToObject(o, "weights", t->weights);
        cJSON_AddItemToArray(j, o);
    }
    return j;
}

/* A dB figure, or null when infinite (an exact quantization: no noise). */
static void add_db(cJSON *o, const char *key, double db)
{
    if (isfinite(db))
        cJSON_AddNumberToObject(o, key, db);
    else
        cJSON_AddNullToObject(o, key);
}

static const char *const fp8_scaling_names[] = {
    [FP8_SCALING_NONE] = "none", [FP8_SCALING_DELAYED] = "delayed",
    [FP8_SCALING_CURRENT] = "current", [FP8_SCALING_MX] = "mx",
};

/* An FP8 recipe's scaling, its tensors and where one first saturated. */
static cJSON *fp8_json(const struct recipe_result *r)
{
    const struct fp8_run *f = &r->fp8;
    const struct fp8_plan *p = &r->plan.fp8;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "scaling", fp8_scaling_names[p->scaling]);
    cJSON_AddStringToObject(j, "forward_format", fp8_format_name(p->forward));
    cJSON_AddStringToObject(j, "backward_format", fp8_format_name(p->backward));
    if (p->scaling == FP8_SCALING_DELAYED)
        cJSON_AddNumberToObject(j, "amax_history", p->amax_history);
    if (p->scaling == FP8_SCALING_MX)
        cJSON_AddStringToObject(j, "mx_scale", p->mx_rounding == MX_SCALE_FLOOR ? "floor" : "rceil");
    cJSON *names = cJSON_AddArrayToObject(j, "tensors");
    for (size_t t = 0; t < f->ntensors; t++)
        cJSON_AddItemToArray(names, cJSON_CreateString(f->last[t].name));
    if (f->saturated) {
        cJSON *s = cJSON_AddObjectToObject(j, "first_saturation");
        cJSON_AddNumberToObject(s, "epoch", f->first_epoch);
        cJSON_AddNumberToObject(s, "step", f->first_step);
        cJSON_AddStringToObject(s, "tensor", f->last[f->first_tensor].name);
    } else {
        cJSON_AddNullToObject(j, "first_saturation");
    }
    return j;
}

/* Epoch e's statistics of every quantized tensor. */
static cJSON *fp8_epoch_json(const struct fp8_run *f, uint32_t e)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t t = 0; t < f->ntensors; t++) {
        const struct fp8_epoch *x = &f->epochs[(size_t)e * f->ntensors + t];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "tensor", f->last[t].name);
        cJSON_AddNumberToObject(o, "saturated_frac", x->n ? (double)x->saturated / (double)x->n : 0);
        cJSON_AddNumberToObject(o, "underflow_frac", x->n ? (double)x->underflow / (double)x->n : 0);
        cJSON_AddNumberToObject(o, "nonfinite", (double)x->nonfinite);
        add_db(o, "sqnr_min_db", x->sqnr_min_db);
        add_db(o, "sqnr_mean_db", x->finite_steps ? x->sqnr_mean_db : INFINITY);
        cJSON_AddNumberToObject(o, "scale_last", x->scale_last);
        cJSON_AddNumberToObject(o, "amax_max", x->amax_max);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static const char *scaling_name(enum loss_scaling s)
{
    return s == SCALING_DYNAMIC ? "dynamic" : s == SCALING_STATIC ? "static" : "none";
}

static cJSON *recipe_json(const struct recipe_result *r, int data_parallel)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "summary", r->recipe->summary);
    cJSON_AddNumberToObject(j, "seed", (double)r->seed);
    cJSON_AddStringToObject(j, "loss_scaling", scaling_name(r->recipe->scaling));
    cJSON_AddItemToObject(j, "precision_trace", trace_json(r));
    if (r->fp8.ntensors)
        cJSON_AddItemToObject(j, "fp8", fp8_json(r));
    cJSON_AddNumberToObject(j, "threads", r->threads);
    cJSON_AddNumberToObject(j, "rank", r->rank);
    cJSON *backend = r->backend_json ? cJSON_Parse(r->backend_json) : NULL;
    if (backend)
        cJSON_AddItemToObject(j, "backend", backend);
    cJSON_AddNumberToObject(j, "epochs_completed", r->nepochs);
    cJSON_AddBoolToObject(j, "diverged", r->diverged);
    if (r->diverged) {
        cJSON_AddNumberToObject(j, "diverged_epoch", r->diverged_epoch);
        cJSON_AddNumberToObject(j, "diverged_step", r->diverged_step);
    }
    cJSON_AddBoolToObject(j, "scale_fell_below_one", r->scale_below_one);
    cJSON *epochs = cJSON_AddArrayToObject(j, "epochs");
    for (uint32_t e = 0; e < r->nepochs; e++) {
        const struct epoch_metrics *m = &r->epochs[e];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", m->epoch);
        cJSON_AddNumberToObject(o, "train_loss", m->train_loss);
        cJSON_AddNumberToObject(o, "train_acc", m->train_acc);
        cJSON_AddNumberToObject(o, "test_loss", m->test_loss);
        cJSON_AddNumberToObject(o, "test_acc", m->test_acc);
        cJSON_AddNumberToObject(o, "epoch_s", m->epoch_s);
        cJSON_AddNumberToObject(o, "samples_per_s", m->samples_per_s);
        cJSON_AddNumberToObject(o, "steps", m->steps);
        cJSON_AddNumberToObject(o, "skipped_steps", m->skipped_steps);
        cJSON *sc = cJSON_AddObjectToObject(o, "scaler");
        cJSON_AddNumberToObject(sc, "scale", m->loss_scale);
        cJSON_AddNumberToObject(sc, "growth_tracker", m->growth_tracker);
        cJSON_AddItemToObject(o, "numerics", numerics_json(&m->numerics));
        if (r->fp8.ntensors)
            cJSON_AddItemToObject(o, "fp8", fp8_epoch_json(&r->fp8, e));
        cJSON_AddItemToObject(o, "memory", results_memory_json(&m->mem));
        if (data_parallel)
            cJSON_AddNumberToObject(o, "allreduce_overflow", (double)m->allreduce_overflow);
        cJSON_AddItemToArray(epochs, o);
    }
    if (r->nepochs)
        cJSON_AddItemToObject(j, "memory", results_memory_json(&r->epochs[r->nepochs - 1].mem));
    return j;
}

static cJSON *seed_runs_json(const struct run_record *rec)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < rec->nrecipes; i++) {
        const struct recipe_result *r = &rec->recipes[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "mode", r->recipe->name);
        cJSON_AddNumberToObject(o, "seed", (double)r->seed);
        cJSON_AddBoolToObject(o, "diverged", r->diverged);
        cJSON *acc = cJSON_AddArrayToObject(o, "test_acc");
        cJSON *loss = cJSON_AddArrayToObject(o, "test_loss");
        for (uint32_t e = 0; e < r->nepochs; e++) {
            cJSON_AddItemToArray(acc, cJSON_CreateNumber(r->epochs[e].test_acc));
            cJSON_AddItemToArray(loss, cJSON_CreateNumber(r->epochs[e].test_loss));
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *curve_json(const double *v, uint32_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[i]));
    return arr;
}

static cJSON *verification_json(const struct verification *v)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "tol_acc_pp", v->tol_acc);
    cJSON_AddNumberToObject(j, "tol_loss_rel", v->tol_loss);
    cJSON_AddNumberToObject(j, "seeds", v->seeds);
    cJSON_AddStringToObject(j, "rule", verification_rule(v));
    cJSON_AddBoolToObject(j, "all_pass", v->all_pass);
    if (v->baseline)
        cJSON_AddStringToObject(j, "baseline", v->baseline);
    cJSON *moves = cJSON_AddArrayToObject(j, "baseline_moves");
    for (size_t i = 0; i < v->nmoves; i++)
        cJSON_AddItemToArray(moves, cJSON_CreateString(v->moves[i]));
    cJSON *verdicts = cJSON_AddObjectToObject(j, "verdicts");
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict *d = &v->verdicts[i];
        cJSON *o = cJSON_AddObjectToObject(verdicts, d->recipe->name);
        cJSON_AddStringToObject(o, "verdict", verdict_word(d));
        cJSON_AddStringToObject(o, "reason", d->reason);
        cJSON_AddNumberToObject(o, "final_test_acc_mean", d->stats.mean);
        cJSON_AddNumberToObject(o, "final_test_acc_std", d->stats.std);
        cJSON_AddNumberToObject(o, "final_test_acc_min", d->stats.min);
        cJSON_AddNumberToObject(o, "final_test_acc_max", d->stats.max);
        cJSON_AddNumberToObject(o, "final_test_acc_median", d->stats.median);
        cJSON_AddNumberToObject(o, "delta_pp", d->delta_pp);
        cJSON_AddNumberToObject(o, "worst_test_loss_rel", d->worst_loss_rel);
        if (d->test) {
            cJSON_AddStringToObject(o, "test", d->test);
            cJSON_AddNumberToObject(o, "p_drop", d->p_value);
        }
        if (d->p_within >= 0)
            cJSON_AddNumberToObject(o, "p_within", d->p_within);
        cJSON_AddNumberToObject(o, "skipped_steps", d->skipped_steps);
        cJSON_AddNumberToObject(o, "grad_underflow_frac", d->grad_underflow);
        cJSON_AddNumberToObject(o, "baseline_moves", d->baseline_moved);
        cJSON_AddItemToObject(o, "test_acc_mean", curve_json(d->stats.acc_mean, d->stats.epochs));
        cJSON_AddItemToObject(o, "test_acc_std", curve_json(d->stats.acc_std, d->stats.epochs));
        cJSON_AddItemToObject(o, "test_loss_mean", curve_json(d->stats.loss_mean, d->stats.epochs));
        cJSON_AddItemToObject(o, "test_loss_std", curve_json(d->stats.loss_std, d->stats.epochs));
    }
    return j;
}

int results_write_run_json(const char *dir, const struct run_record *rec)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "ampbench");
    cJSON_AddStringToObject(root, "version", AMPBENCH_VERSION);
    cJSON_AddBoolToObject(root, "complete", rec->complete);
    char stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(root, "written_at", stamp);
    cJSON_AddStringToObject(root, "command", rec->command_line);
    cJSON_AddItemToObject(root, "config", config_json(rec));
    cJSON_AddItemToObject(root, "environment", environment_json(rec->host));
    cJSON *recipes = cJSON_AddObjectToObject(root, "modes");
    for (size_t i = 0; i < rec->nrecipes; i++)
        if (results_is_primary(rec, i))
            cJSON_AddItemToObject(recipes, rec->recipes[i].recipe->name, recipe_json(&rec->recipes[i],
                                                                   rec->config->data_parallel));
    if (rec->config->seeds > 1)
        cJSON_AddItemToObject(root, "seed_runs", seed_runs_json(rec));
    if (rec->verification) {
        const struct verification *v = rec->verification;
        cJSON_AddItemToObject(root, "verification", verification_json(v));
        for (size_t i = 0; i < v->n; i++) { /* each recipe's verdict beside its metrics too */
            const struct verdict *d = &v->verdicts[i];
            cJSON *o = cJSON_AddObjectToObject(
                cJSON_GetObjectItemCaseSensitive(recipes, d->recipe->name), "verdict");
            cJSON_AddStringToObject(o, "verdict", verdict_word(d));
            cJSON_AddStringToObject(o, "reason", d->reason);
        }
    }
    const int rc = json_write_in(dir, "run.json", root);
    cJSON_Delete(root);
    return rc;
}
