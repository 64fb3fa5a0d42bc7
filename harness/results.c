/* The run folder and what a run writes into it: run.json (cJSON) and epochs.csv, each written
 * to a temporary file and renamed into place so that a reader never sees half a file. */
#include "results.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

#ifndef AMPBENCH_VERSION
#define AMPBENCH_VERSION "unknown"
#endif

/* mkdir -p for the parents of path (not path itself). */
static int make_parents(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return amp_fail(AMP_EINPUT, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return amp_fail(AMP_EINPUT, "%s: cannot create results directory: %s", buf,
                            strerror(errno));
        *p = '/';
    }
    return AMP_OK;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

/* Creates path (parents too); an existing empty directory is accepted when allow_empty. */
static int create_fresh_dir(const char *path, int allow_empty)
{
    int rc = make_parents(path);
    if (rc != AMP_OK)
        return rc;
    if (mkdir(path, 0777) == 0)
        return AMP_OK;
    if (errno != EEXIST)
        return amp_fail(AMP_EINPUT, "%s: cannot create results directory: %s", path,
                        strerror(errno));
    struct stat st;
    if (allow_empty && stat(path, &st) == 0 && S_ISDIR(st.st_mode) && dir_is_empty(path)) {
        if (access(path, W_OK) != 0)
            return amp_fail(AMP_EINPUT, "%s: results directory is not writable", path);
        return AMP_OK;
    }
    return AMP_EIO; /* exists and holds something: the caller decides */
}

int results_create_dir(const char *requested, char *path_out, size_t len)
{
    if (requested) {
        if (snprintf(path_out, len, "%s", requested) >= (int)len)
            return amp_fail(AMP_EINPUT, "--out: path too long");
        int rc = create_fresh_dir(path_out, 1);
        if (rc == AMP_EIO)
            return amp_fail(AMP_EINPUT,
                            "--out %s: already exists and is not empty; results are never "
                            "overwritten, choose a new folder",
                            requested);
        return rc;
    }
    char stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int attempt = 0; attempt < 16; attempt++) {
        uint32_t id = 0;
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
            id = (uint32_t)getpid() * 2654435761u + (uint32_t)attempt;
        snprintf(path_out, len, "results/runs/%s-%06x", stamp, id & 0xFFFFFF);
        int rc = create_fresh_dir(path_out, 0);
        if (rc != AMP_EIO)
            return rc;
    }
    return amp_fail(AMP_EIO, "results/runs: could not find a fresh folder name");
}

static int write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return amp_fail(AMP_EIO, "%s: cannot write: %s", tmp, strerror(errno));
    size_t wrote = fwrite(data, 1, len, f);
    int flush_failed = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int close_failed = fclose(f) != 0;
    if (wrote != len || flush_failed || close_failed) {
        int err = errno;
        unlink(tmp);
        return amp_fail(AMP_EIO, "%s: write failed: %s", path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return amp_fail(AMP_EIO, "%s: cannot rename into place: %s", path, strerror(err));
    }
    return AMP_OK;
}

static cJSON *config_json(const struct run_record *rec)
{
    const struct amp_config *c = rec->config;
    cJSON *j = cJSON_CreateObject();
    cJSON *modes = cJSON_AddArrayToObject(j, "modes");
    for (size_t i = 0; i < c->nmodes; i++)
        cJSON_AddItemToArray(modes, cJSON_CreateString(c->modes[i]->name));
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "momentum", c->momentum);
    cJSON_AddNumberToObject(j, "channels", c->channels);
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
    cJSON_AddNumberToObject(j, "train_limit", (double)c->train_limit);
    cJSON_AddNumberToObject(j, "test_limit", (double)c->test_limit);
    cJSON_AddStringToObject(j, "data", rec->data_dir);
    cJSON_AddNumberToObject(j, "train_samples", (double)rec->train_samples);
    cJSON_AddNumberToObject(j, "test_samples", (double)rec->test_samples);
    cJSON_AddStringToObject(j, "device", c->device);
    cJSON_AddNumberToObject(j, "threads", c->threads);
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

static cJSON *memory_json(const struct mem_stats *m)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *cats = cJSON_AddObjectToObject(j, "peak_bytes_by_category");
    for (int c = 0; c < MEM_NCATEGORIES; c++)
        cJSON_AddNumberToObject(cats, mem_category_name(c), (double)m->peak[c]);
    cJSON_AddNumberToObject(j, "peak_bytes", (double)m->peak_total);
    return j;
}

static cJSON *mode_json(const struct mode_result *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "summary", r->recipe->summary);
    cJSON_AddNumberToObject(j, "threads", r->threads);
    cJSON_AddNumberToObject(j, "epochs_completed", r->nepochs);
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
        cJSON_AddItemToObject(o, "memory", memory_json(&m->mem));
        cJSON_AddItemToArray(epochs, o);
    }
    if (r->nepochs)
        cJSON_AddItemToObject(j, "memory", memory_json(&r->epochs[r->nepochs - 1].mem));
    return j;
}

static int write_run_json(const char *dir, const struct run_record *rec)
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
    cJSON *modes = cJSON_AddObjectToObject(root, "modes");
    for (size_t i = 0; i < rec->nmodes; i++)
        cJSON_AddItemToObject(modes, rec->modes[i].recipe->name, mode_json(&rec->modes[i]));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return amp_fail(AMP_ENOMEM, "out of memory formatting run.json");
    int rc = write_atomic(dir, "run.json", text, strlen(text));
    cJSON_free(text);
    return rc;
}

static int write_epochs_csv(const char *dir, const struct run_record *rec)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return amp_fail(AMP_ENOMEM, "out of memory formatting epochs.csv");
    fprintf(f, "mode,epoch,train_loss,train_acc,test_loss,test_acc,epoch_s,samples_per_s,"
               "act_bytes,peak_bytes\n");
    for (size_t i = 0; i < rec->nmodes; i++) {
        const struct mode_result *r = &rec->modes[i];
        for (uint32_t e = 0; e < r->nepochs; e++) {
            const struct epoch_metrics *m = &r->epochs[e];
            fprintf(f, "%s,%u,%.9g,%.9g,%.9g,%.9g,%.6f,%.2f,%zu,%zu\n", r->recipe->name,
                    m->epoch, m->train_loss, m->train_acc, m->test_loss, m->test_acc,
                    m->epoch_s, m->samples_per_s, m->mem.peak[MEM_ACTIVATIONS],
                    m->mem.peak_total);
        }
    }
    fclose(f);
    int rc = write_atomic(dir, "epochs.csv", buf, len);
    free(buf);
    return rc;
}

int results_write(const char *dir, const struct run_record *rec)
{
    int rc = write_epochs_csv(dir, rec);
    if (rc == AMP_OK)
        rc = write_run_json(dir, rec);
    return rc;
}
