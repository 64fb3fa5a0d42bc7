/* A run folder read back: run.json (cJSON) and epochs.csv (through schema.h's columns), with
 * each recipe's summary for the report: last epoch, throughput, peak memory, skipped steps,
 * verdict; the reference is found by recipe_reference()'s name. */
#include "report_run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "files.h"
#include "jsonfile.h"
#include "recipe.h"

#define MAX_INPUT_BYTES (256u << 20) /* run.json / epochs.csv larger than this are refused */

int run_read_file(char **buf, size_t *len, const struct run *r, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    return file_read_all(buf, len, path, MAX_INPUT_BYTES);
}

/* Mode names go into CSVs and gnuplot word lists: letters, digits and . _ + - only. */
static int recipe_name_ok(const char *name)
{
    if (!*name || strlen(name) >= sizeof((struct recipe_sum *)0)->name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '+' || *p == '-'))
            return 0;
    return 1;
}

static struct recipe_sum *recipe_get(struct run *r, const char *name, int create)
{
    for (size_t i = 0; i < r->nrecipes; i++)
        if (strcmp(r->recipes[i].name, name) == 0)
            return &r->recipes[i];
    if (!create || r->nrecipes == MAX_MODES || !recipe_name_ok(name))
        return NULL;
    struct recipe_sum *m = &r->recipes[r->nrecipes++];
    memset(m, 0, sizeof *m);
    strcpy(m->name, name);
    return m;
}

static int load_run_json(struct run *r)
{
    char *text;
    size_t len;
    int rc = run_read_file(&text, &len, r, "run.json");
    if (rc != AMP_OK)
        return rc;
    char name[4200];
    snprintf(name, sizeof name, "%s/run.json", r->dir);
    rc = json_parse_strict(&r->root, text, len, name);
    free(text);
    if (rc != AMP_OK)
        return rc;
    const cJSON *recipes = cJSON_GetObjectItemCaseSensitive(r->root, "modes");
    if (!cJSON_IsObject(r->root) || !cJSON_IsObject(recipes))
        return amp_fail(AMP_EINPUT, "%s/run.json: no \"modes\" object; not an ampbench run",
                        r->dir);
    const cJSON *m;
    cJSON_ArrayForEach(m, recipes) {
        struct recipe_sum *s = m->string ? recipe_get(r, m->string, 1) : NULL;
        if (!s)
            return amp_fail(AMP_EINPUT, "%s/run.json: mode \"%.40s\": bad name (letters, "
                            "digits, . _ + - only) or more than %d modes", r->dir,
                            m->string ? m->string : "", MAX_MODES);
        s->json = m;
    }
    return AMP_OK;
}

static int load_epochs_csv(struct run *r)
{
    char *text;
    size_t len;
    int rc = run_read_file(&text, &len, r, "epochs.csv");
    if (rc != AMP_OK)
        return rc;
    if (memchr(text, '\0', len)) {
        free(text);
        return amp_fail(AMP_EINPUT, "%s/epochs.csv: binary data, not a CSV file", r->dir);
    }
    enum { MAXF = 64 };
    char *fields[MAXF];
    int colidx[EPOCHS_NCOLS];
    size_t nhead = 0, lineno = 0;
    char *save = NULL;
    rc = AMP_OK;
    for (char *line = strtok_r(text, "\n", &save); line && rc == AMP_OK;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++; /* strtok_r skips empty lines; the count is of non-empty lines */
        line[strcspn(line, "\r")] = '\0';
        if (!*line)
            continue;
        const size_t n = csv_split(line, fields, MAXF);
        if (nhead == 0) {
            if (strcmp(fields[0], "mode") != 0) {
                rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: the header does not start with "
                                          "\"mode\"; not an ampbench epochs.csv", r->dir);
                break;
            }
            csv_find_columns(colidx, epochs_columns, EPOCHS_NCOLS, fields, n);
            for (int c = EPOCHS_MODE + 1; c < EPOCHS_NCOLS && rc == AMP_OK; c++)
                if (colidx[c] < 0)
                    rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: the header has no column \"%s\"",
                                  r->dir, epochs_columns[c].name);
            nhead = n;
            continue;
        }
        if (n != nhead) {
            rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu has %zu fields, the header %zu",
                          r->dir, lineno, n, nhead);
            break;
        }
        struct recipe_sum *m = recipe_get(r, fields[0], 1);
        if (!m) {
            rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu: mode \"%.40s\": bad name "
                          "(letters, digits, . _ + - only) or more than %d modes", r->dir, lineno,
                          fields[0], MAX_MODES);
            break;
        }
        struct epoch_row row = { { 0 } };
        for (int c = EPOCHS_MODE + 1; c < EPOCHS_NCOLS; c++) {
            const char *s = fields[colidx[c]];
            char *endp;
            errno = 0;
            row.v[c] = strtod(s, &endp);
            if (!*s || *endp) {
                rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu: %s \"%.40s\" is not a number",
                              r->dir, lineno, epochs_columns[c].name, s);
                break;
            }
        }
        if (rc != AMP_OK)
            break;
        if (!(row.v[EPOCHS_EPOCH] >= 1 && row.v[EPOCHS_EPOCH] <= 1e6)) {
            rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu: epoch %g out of range", r->dir,
                          lineno, row.v[EPOCHS_EPOCH]);
            break;
        }
        if (m->nrows == m->cap) {
            const size_t cap = m->cap ? 2 * m->cap : 8;
            struct epoch_row *nr = realloc(m->rows, cap * sizeof *nr);
            if (!nr) {
                rc = amp_fail(AMP_ENOMEM, "out of memory reading epochs.csv");
                break;
            }
            m->rows = nr;
            m->cap = cap;
        }
        m->rows[m->nrows++] = row;
    }
    free(text);
    if (rc == AMP_OK && nhead == 0)
        rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: empty (no header)", r->dir);
    return rc;
}

static const char *verdict_of(const cJSON *recipe)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(recipe, "verdict");
    if (cJSON_IsString(v))
        return v->valuestring;
    if (!cJSON_IsObject(v))
        return NULL;
    static const char *const keys[] = { "verdict", "result", "status" };
    for (size_t i = 0; i < 3; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, keys[i]);
        if (cJSON_IsString(s))
            return s->valuestring;
    }
    return NULL;
}

static void summarise(struct run *r)
{
    for (size_t i = 0; i < r->nrecipes; i++) {
        struct recipe_sum *m = &r->recipes[i];
        m->last = NULL;
        double secs = 0, samples = 0;
        for (size_t k = 0; k < m->nrows; k++) {
            const struct epoch_row *e = &m->rows[k];
            if (!m->last || e->v[EPOCHS_EPOCH] >= m->last->v[EPOCHS_EPOCH])
                m->last = e;
            if (e->v[EPOCHS_PEAK_BYTES] > m->peak)
                m->peak = e->v[EPOCHS_PEAK_BYTES];
            m->skipped += e->v[EPOCHS_SKIPPED_STEPS];
            if (e->v[EPOCHS_EPOCH] > r->max_epoch)
                r->max_epoch = (unsigned)e->v[EPOCHS_EPOCH];
        }
        /* Throughput: all training samples over all training time of epochs 2..N (epoch 1
         * warms caches and allocations up), or epoch 1 when it is the only one. */
        for (int pass = 0; pass < 2 && secs <= 0; pass++)
            for (size_t k = 0; k < m->nrows; k++) {
                const struct epoch_row *e = &m->rows[k];
                if (pass == 0 && e->v[EPOCHS_EPOCH] < 2)
                    continue;
                secs += e->v[EPOCHS_EPOCH_S];
                samples += e->v[EPOCHS_SAMPLES_PER_S] * e->v[EPOCHS_EPOCH_S];
            }
        m->sps = secs > 0 ? samples / secs : NAN;
        m->verdict = m->json ? verdict_of(m->json) : NULL;
        if (strcmp(m->name, recipe_reference()->name) == 0 && m->last)
            r->fp32 = m;
    }
}

int steps_csv_check(const char *text, size_t len, const char *name, size_t *rows_out)
{
    *rows_out = 0;
    if (memchr(text, '\0', len))
        return amp_fail(AMP_EINPUT, "%s: binary data, not a CSV file", name);
    char *copy = malloc(len + 1);
    if (!copy)
        return amp_fail(AMP_ENOMEM, "out of memory reading %s", name);
    memcpy(copy, text, len);
    copy[len] = '\0';
    enum { MAXF = 64 };
    char *fields[MAXF], *save = NULL;
    size_t nhead = 0, lineno = 0;
    int rc = AMP_OK;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == AMP_OK;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        line[strcspn(line, "\r")] = '\0';
        const size_t n = csv_split(line, fields, MAXF);
        if (nhead == 0) { /* the fixed columns in order, then the per-class fractions */
            for (size_t c = 0; c < STEPS_NFIXED && rc == AMP_OK; c++)
                if (c >= n || strcmp(fields[c], steps_columns[c].name) != 0)
                    rc = amp_fail(AMP_EINPUT, "%s: the header's column %zu is not \"%s\"; not "
                                  "an ampbench steps.csv", name, c + 1, steps_columns[c].name);
            nhead = n;
            continue;
        }
        if (n != nhead) {
            rc = amp_fail(AMP_EINPUT, "%s: line %zu has %zu fields, the header %zu", name,
                          lineno, n, nhead);
            break;
        }
        if (!recipe_name_ok(fields[STEPS_MODE])) {
            rc = amp_fail(AMP_EINPUT, "%s: line %zu: mode \"%.40s\": bad name", name, lineno,
                          fields[STEPS_MODE]);
            break;
        }
        for (size_t c = STEPS_MODE + 1; c < n && rc == AMP_OK; c++) {
            char *end;
            const double v = strtod(fields[c], &end);
            const int integer = c == STEPS_EPOCH || c == STEPS_STEP;
            if (!*fields[c] || *end || (integer && !(v >= 1 && v <= 1e9 && v == (double)(long)v)))
                rc = amp_fail(AMP_EINPUT, "%s: line %zu, field %zu: \"%.40s\" is not %s", name,
                              lineno, c + 1, fields[c],
                              integer ? "a positive integer" : "a number");
        }
        ++*rows_out;
    }
    free(copy);
    if (rc == AMP_OK && nhead == 0)
        rc = amp_fail(AMP_EINPUT, "%s: empty (no header)", name);
    return rc;
}

int run_load(struct run *r)
{
    int rc = load_run_json(r);
    if (rc == AMP_OK)
        rc = load_epochs_csv(r);
    if (rc != AMP_OK)
        return rc;
    summarise(r);
    /* steps.csv only feeds the loss-scale plot: a missing or malformed one skips that plot. */
    char steps[4200], *text = NULL;
    size_t len = 0, rows = 0;
    struct stat sb;
    snprintf(steps, sizeof steps, "%s/steps.csv", r->dir);
    r->steps_problem[0] = '\0';
    if (stat(steps, &sb) != 0) {
        snprintf(r->steps_problem, sizeof r->steps_problem, "no steps.csv in the run folder");
    } else if (run_read_file(&text, &len, r, "steps.csv") != AMP_OK ||
               steps_csv_check(text, len, "steps.csv", &rows) != AMP_OK) {
        snprintf(r->steps_problem, sizeof r->steps_problem, "%.190s", amp_last_error());
    } else if (rows == 0) {
        snprintf(r->steps_problem, sizeof r->steps_problem, "steps.csv has no step");
    }
    free(text);
    r->have_steps = !r->steps_problem[0];
    /* fp8.csv feeds the FP8 plot only (gnuplot reads it; it is never evaluated). */
    char fp8[4200];
    snprintf(fp8, sizeof fp8, "%s/fp8.csv", r->dir);
    r->have_fp8 = lstat(fp8, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
    return AMP_OK;
}

void run_free(struct run *r)
{
    for (size_t i = 0; i < r->nrecipes; i++)
        free(r->recipes[i].rows);
    cJSON_Delete(r->root);
}

const cJSON *jget(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

const char *jstr(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = jget(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : dflt;
}

double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = jget(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int jtrue(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(jget(o, key));
}

double run_speedup(const struct run *r, const struct recipe_sum *m)
{
    return r->fp32 && r->fp32->sps > 0 ? m->sps / r->fp32->sps : NAN;
}

double run_saving(const struct run *r, const struct recipe_sum *m)
{
    return r->fp32 && r->fp32->peak > 0 ? 100.0 * (1.0 - m->peak / r->fp32->peak) : NAN;
}
