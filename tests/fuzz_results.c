/* libFuzzer targets for the readers of files that come from outside (a run folder someone
 * sends, a baseline copied from another CI job): one source, four targets, chosen at build time
 * with -DFUZZ_RESULTS_TARGET=<n>:
 *   1 run.json:    the input is a run folder's run.json beside a valid epochs.csv; run_load.
 *   2 epochs.csv:  the input is epochs.csv beside a valid run.json; run_load.
 *   3 steps.csv:   steps_csv_check on the input.
 *   4 baseline:    baseline_parse on the input.
 * Beyond "no crash, no leak, no undefined behaviour" (ASan/UBSan), the contract of the readers:
 *   - a failure returns AMP_EINPUT or AMP_ENOMEM and records a message that names the file, and
 *     that message printed through text_one_line is one line without control characters;
 *   - run_load's success has at most MAX_MODES recipes with valid names, every epoch row within
 *     [1, 1e6]; baseline_parse's success has a "modes" object whose every entry is an array.
 * Built by scripts/fuzz.sh (clang -fsanitize=fuzzer,address,undefined); tests/fuzz_replay.c gives
 * each a main() so that ctest replays its seed corpus (tests/fuzz_corpus_<name>/). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baseline.h"
#include "error.h"
#include "report_run.h"
#include "text.h"

#ifndef FUZZ_RESULTS_TARGET
#error "build with -DFUZZ_RESULTS_TARGET=1 (run.json), 2 (epochs.csv), 3 (steps.csv) or 4 (baseline)"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "fuzz_results"
#include "fuzz_require.h"

static char g_dir[4096]; /* the private run folder */

#if FUZZ_RESULTS_TARGET <= 2 /* the companions of the input in its run folder */
static const char k_run_json[] =
    "{\"tool\": \"ampbench\", \"complete\": true, \"modes\": {\"fp32\": {\"epochs\": []}, "
    "\"amp\": {\"epochs\": []}}}\n";
static const char k_epochs_csv[] =
    "mode,epoch,train_loss,train_acc,test_loss,test_acc,epoch_s,samples_per_s,skipped_steps,"
    "loss_scale,grad_underflow_frac,act_underflow_frac,grad_overflow_frac,swallowed_updates,"
    "act_bytes,peak_bytes\n"
    "fp32,1,0.9,0.7,0.8,0.72,1.5,4000,0,1,0,0,0,0,1000,2000\n"
    "amp,1,0.9,0.7,0.8,0.72,1.2,5000,1,65536,0.01,0,0,0,600,1500\n";

static void put_file(const char *name, const void *data, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_results: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}
#endif

static void remove_dir(void)
{
    char path[4200];
    static const char *const names[] = { "run.json", "epochs.csv" };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_results.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "fuzz_results: mkdtemp: %s\n", strerror(errno));
        abort();
    }
    atexit(remove_dir);
    return 0;
}

/* A failure's contract: the status, a message naming `file`, one line once printed. */
static void check_failure(int rc, const char *file)
{
    REQUIRE(rc == AMP_EINPUT || rc == AMP_ENOMEM, "status %d", rc);
    const char *msg = amp_last_error();
    REQUIRE(strstr(msg, file) != NULL, "message \"%s\" does not name %s", msg, file);
    char line[1200];
    text_one_line(line, sizeof line, msg, 1000);
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        REQUIRE(*p >= 0x20 && *p != 0x7F, "control character 0x%02X in the printed line", *p);
    REQUIRE(utf8_valid_prefix(line, strlen(line)) == strlen(line), "printed line not UTF-8");
}

#if FUZZ_RESULTS_TARGET <= 2
static void check_run(const uint8_t *data, size_t size, const char *as)
{
    put_file("run.json", strcmp(as, "run.json") == 0 ? (const void *)data : k_run_json,
             strcmp(as, "run.json") == 0 ? size : sizeof k_run_json - 1);
    put_file("epochs.csv", strcmp(as, "epochs.csv") == 0 ? (const void *)data : k_epochs_csv,
             strcmp(as, "epochs.csv") == 0 ? size : sizeof k_epochs_csv - 1);
    struct run *r = calloc(1, sizeof *r);
    REQUIRE(r != NULL, "out of memory");
    r->dir = g_dir;
    amp_fail(AMP_OK, "%s", "");
    const int rc = run_load(r);
    if (rc != AMP_OK) {
        check_failure(rc, as);
    } else {
        REQUIRE(r->root != NULL && r->nrecipes <= MAX_MODES, "%zu recipes", r->nrecipes);
        for (size_t i = 0; i < r->nrecipes; i++)
            for (size_t k = 0; k < r->recipes[i].nrows; k++) {
                const double e = r->recipes[i].rows[k].v[EPOCHS_EPOCH];
                REQUIRE(e >= 1 && e <= 1e6, "epoch %g accepted", e);
            }
    }
    run_free(r);
    free(r);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#if FUZZ_RESULTS_TARGET == 1
    check_run(data, size, "run.json");
#elif FUZZ_RESULTS_TARGET == 2
    check_run(data, size, "epochs.csv");
#elif FUZZ_RESULTS_TARGET == 3
    size_t rows = 0;
    const int rc = steps_csv_check((const char *)data, size, "steps.csv", &rows);
    if (rc != AMP_OK)
        check_failure(rc, "steps.csv");
    else
        REQUIRE(rows <= size, "%zu rows from %zu bytes", rows, size);
#else
    struct baseline b;
    const int rc = baseline_parse(&b, (const char *)data, size, "baseline.json");
    if (rc != AMP_OK) {
        check_failure(rc, "baseline.json");
        REQUIRE(b.root == NULL && b.file == NULL, "a failed parse kept something");
    } else {
        const cJSON *modes = cJSON_GetObjectItemCaseSensitive(b.root, "modes");
        const cJSON *m;
        REQUIRE(cJSON_IsObject(modes), "no modes object accepted");
        cJSON_ArrayForEach(m, modes) REQUIRE(cJSON_IsArray(m), "mode %s not an array", m->string);
    }
    baseline_close(&b);
#endif
    return 0;
}
