/* Verification rules on synthetic results: the Welch and paired p-values against independently
 * computed values, single-seed and multi-seed verdicts (paired by seed, Welch's when the seeds
 * differ), divergence and incomplete runs. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "check.h"
#include "verify.h"


/* A finished 2-epoch result with the given final test accuracy and test losses. */
static struct recipe_result fake(const char *recipe, uint64_t seed, double acc, double loss1,
                               double loss2)
{
    struct recipe_result r = { .recipe = recipe_find(recipe), .seed = seed, .nepochs = 2 };
    r.epochs = calloc(2, sizeof *r.epochs);
    r.epochs[0] = (struct epoch_metrics){ .epoch = 1, .test_acc = acc - 0.02, .test_loss = loss1 };
    r.epochs[1] = (struct epoch_metrics){ .epoch = 2, .test_acc = acc, .test_loss = loss2 };
    return r;
}

static struct amp_config config(const char *recipes, uint32_t seeds)
{
    struct amp_config c;
    char arg[128];
    snprintf(arg, sizeof arg, "--modes=%s", recipes);
    char *argv[] = { arg, "--epochs", "2" };
    cli_parse(3, argv, &c, stdout, CLI_VERIFY, NULL);
    c.seeds = seeds;
    return c;
}

static const struct verdict *verdict_of(const struct verification *v, const char *recipe)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->verdicts[i].recipe->name, recipe) == 0)
            return &v->verdicts[i];
    return NULL;
}

static void test_welch(void)
{
    /* Values computed independently (numerical integration of the t density): equal variances,
     * t = 1.2247, df = 4 -> p = 0.143932; unequal sizes, t = 4.2426, df = 3.857 -> p = 0.0071494. */
    const double a[] = { 0.80, 0.81, 0.82 }, b[] = { 0.78, 0.79, 0.80 };
    const double p1 = welch_one_sided_p(a, 3, b, 3, 0.01);
    check(fabs(p1 - 0.143932) < 1e-5, "Welch p %.6f (want 0.143932)", p1);
    const double c[] = { 0.85, 0.86, 0.84, 0.85 }, d[] = { 0.80, 0.82, 0.81 };
    const double p2 = welch_one_sided_p(c, 4, d, 3, 0.01);
    check(fabs(p2 - 0.0071494) < 1e-6, "Welch p %.7f (want 0.0071494)", p2);
}

static void test_paired_p(void)
{
    /* d = b - a = -3, -3, -5 pp, margin 1 pp: t = (-3.667 + 1) / (1.1547 / sqrt 3) = -4, df 2,
     * where the t CDF is 1/2 + t / (2 sqrt(t^2 + 2)): P(T < -4) = 1/2 - 4 / (2 sqrt 18). */
    const double a[] = { 0.80, 0.86, 0.75 }, b[] = { 0.77, 0.83, 0.70 };
    const double want = 0.5 - 4.0 / (2.0 * sqrt(18.0));
    const double p = paired_drop_p(a, b, 3, 0.01), q = paired_within_p(a, b, 3, 0.01);
    check(fabs(p - want) < 1e-9 && fabs(q - (1.0 - want)) < 1e-9,
          "paired drop p %.9f, within p %.9f (want %.9f and its complement)", p, q, want);
    const double same[] = { 0.79, 0.85, 0.74 };
    check(paired_drop_p(a, same, 3, 0.005) == 0.0 && paired_within_p(a, same, 3, 0.02) == 0.0,
          "identical differences: p 0 on the side they lie");
}

/* Runs of one seed share the init and the batches: pairing them separates a consistent deficit,
 * or a consistent match, from fp32's own seed-to-seed spread, which Welch's test cannot. */
static void test_paired_verdicts(void)
{
    struct amp_config c = config("fp32,fp16-pure,amp", 3);
    struct recipe_result r[9];
    const double fp32[] = { 0.80, 0.86, 0.75 }, pure[] = { 0.77, 0.83, 0.70 },
                 amp[] = { 0.801, 0.859, 0.751 };
    for (int s = 0; s < 3; s++) {
        r[3 * s] = fake("fp32", 1 + s, fp32[s], 0.5, 0.4);
        r[3 * s + 1] = fake("fp16-pure", 1 + s, pure[s], 0.5, 0.4);
        r[3 * s + 2] = fake("amp", 1 + s, amp[s], 0.5, 0.4);
    }
    struct verification v;
    verify_judge(&c, r, 9, &v);
    const struct verdict *p = verdict_of(&v, "fp16-pure"), *a = verdict_of(&v, "amp");
    check(!p->pass && !p->inconclusive && strcmp(p->test, "paired") == 0 && p->p_value < 0.05 &&
              strstr(p->reason, "paired t-test over 3 seeds") != NULL,
          "fp16-pure -3, -3, -5 pp within a 5.5 pp fp32 spread fails: %s", p->reason);
    check(a->pass && !a->inconclusive && a->p_within < 0.05,
          "amp +0.1, -0.1, +0.1 pp within the same spread passes: %s", a->reason);
    check(strcmp(verification_rule(&v), "paired-t-one-sided-p0.05") == 0, "rule %s",
          verification_rule(&v));
    verification_free(&v);
    /* Other seeds than fp32's: no pairs, Welch's test, and the spread makes it inconclusive. */
    for (int s = 0; s < 3; s++)
        r[3 * s + 1].seed = 10 + (uint64_t)s;
    verify_judge(&c, r, 9, &v);
    p = verdict_of(&v, "fp16-pure");
    check(p->inconclusive && strcmp(p->test, "welch") == 0 && p->p_within < 0,
          "unpaired seeds: Welch's test, inconclusive: %s", p->reason);
    check(strcmp(verification_rule(&v), "welch-t-one-sided-p0.05") == 0, "rule %s",
          verification_rule(&v));
    verification_free(&v);
    for (int i = 0; i < 9; i++)
        recipe_result_free(&r[i]);
}

static void test_single_seed(void)
{
    struct amp_config c = config("fp32,amp,bf16,amp-noscale,fp16-pure", 1);
    struct recipe_result r[] = {
        fake("fp32", 1, 0.850, 0.50, 0.40), fake("amp", 1, 0.845, 0.50, 0.41),
        fake("bf16", 1, 0.830, 0.50, 0.40), fake("amp-noscale", 1, 0.851, 0.50, 0.43),
        fake("fp16-pure", 1, 0.850, 0.50, 0.40),
    };
    r[4].diverged = 1;
    r[4].diverged_epoch = 2;
    r[4].diverged_step = 7;
    struct verification v;
    verify_judge(&c, r, 5, &v);
    check(verdict_of(&v, "fp32")->pass, "fp32 is the passing reference");
    check(verdict_of(&v, "amp")->pass, "amp: -0.5 pp and +2.5%% loss pass");
    check(!verdict_of(&v, "bf16")->pass && strstr(verdict_of(&v, "bf16")->reason, "accuracy"),
          "bf16: -2.0 pp fails on accuracy (%s)", verdict_of(&v, "bf16")->reason);
    check(!verdict_of(&v, "amp-noscale")->pass &&
              strstr(verdict_of(&v, "amp-noscale")->reason, "test loss 7.5% above fp32 at epoch 2"),
          "amp-noscale: +7.5%% loss fails (%s)", verdict_of(&v, "amp-noscale")->reason);
    check(!verdict_of(&v, "fp16-pure")->pass && verdict_of(&v, "fp16-pure")->diverged &&
              strstr(verdict_of(&v, "fp16-pure")->reason, "epoch 2 step 7"),
          "fp16-pure: diverged (%s)", verdict_of(&v, "fp16-pure")->reason);
    check(!v.all_pass, "one failure fails the run");
    verification_free(&v);
    for (int i = 0; i < 5; i++)
        recipe_result_free(&r[i]);
}

static void test_seeds(void)
{
    struct amp_config c = config("fp32,amp,bf16", 3);
    struct recipe_result r[9];
    const double fp32[] = { 0.850, 0.852, 0.848 }, amp[] = { 0.846, 0.849, 0.844 },
                 bf16[] = { 0.830, 0.832, 0.829 };
    for (int s = 0; s < 3; s++) {
        r[3 * s] = fake("fp32", 1 + s, fp32[s], 0.5, 0.4);
        r[3 * s + 1] = fake("amp", 1 + s, amp[s], 0.5, 0.4);
        r[3 * s + 2] = fake("bf16", 1 + s, bf16[s], 0.5, 0.4);
    }
    struct verification v;
    verify_judge(&c, r, 9, &v);
    const struct verdict *a = verdict_of(&v, "amp"), *b = verdict_of(&v, "bf16");
    check(a->pass && a->p_value > 0.05, "amp (-0.37 pp) passes the paired test: p %.3g",
          a->p_value);
    check(!b->pass && b->p_value < 0.05, "bf16 (-1.97 pp) fails the paired test: p %.3g",
          b->p_value);
    check(fabs(a->stats.mean - 0.846333) < 1e-6 && a->stats.median == 0.846 &&
              a->stats.min == 0.844 && a->stats.max == 0.849 && fabs(a->stats.std - 0.0025166) < 1e-6,
          "amp stats: mean %.6f median %.3f min %.3f max %.3f std %.7f", a->stats.mean,
          a->stats.median, a->stats.min, a->stats.max, a->stats.std);
    verification_free(&v);
    for (int i = 0; i < 9; i++)
        recipe_result_free(&r[i]);
}

/* fp32's own spread above the tolerance: no verdict either way, the spread named. */
static void test_inconclusive(void)
{
    struct amp_config c = config("fp32,amp,bf16", 3);
    c.tol_acc = 1.0f;
    struct recipe_result r[9];
    const double fp32[] = { 0.80, 0.83, 0.77 }, amp[] = { 0.79, 0.82, 0.78 },
                 bf16[] = { 0.70, 0.71, 0.69 };
    for (int s = 0; s < 3; s++) {
        r[3 * s] = fake("fp32", 1 + s, fp32[s], 0.5, 0.4);
        r[3 * s + 1] = fake("amp", 1 + s, amp[s], 0.5, 0.4);
        r[3 * s + 2] = fake("bf16", 1 + s, bf16[s], 0.5, 0.4);
    }
    struct verification v;
    verify_judge(&c, r, 9, &v);
    const struct verdict *a = verdict_of(&v, "amp"), *b = verdict_of(&v, "bf16"),
                         *f = verdict_of(&v, "fp32");
    check(!a->pass && a->inconclusive && strcmp(verdict_word(a), "inconclusive") == 0 &&
              strstr(a->reason, "inconclusive: fp32's own spread is 3.00 pp") != NULL,
          "amp within a 3 pp fp32 spread: %s: %s", verdict_word(a), a->reason);
    check(!b->inconclusive && !b->pass && b->p_value < 0.05,
          "bf16 (-10 pp) fails: the paired test weighs the spread: %s", b->reason);
    check(f->pass && !f->inconclusive, "fp32 itself stays the reference");
    check(!v.all_pass, "an inconclusive run does not pass");
    verification_free(&v);
    /* Two seeds (no t-test): inconclusive whatever the difference. */
    struct amp_config two = config("fp32,amp", 2);
    two.tol_acc = 1.0f;
    struct recipe_result t[] = { fake("fp32", 1, 0.80, 0.5, 0.4), fake("fp32", 2, 0.84, 0.5, 0.4),
                                 fake("amp", 1, 0.70, 0.5, 0.4), fake("amp", 2, 0.72, 0.5, 0.4) };
    verify_judge(&two, t, 4, &v);
    check(verdict_of(&v, "amp")->inconclusive, "two seeds, fp32 spread 2.83 pp: inconclusive");
    verification_free(&v);
    for (int i = 0; i < 4; i++)
        recipe_result_free(&t[i]);
    for (int i = 0; i < 9; i++)
        recipe_result_free(&r[i]);
    /* One seed: no spread measured, so the tolerance rule decides. */
    struct amp_config one = config("fp32,amp", 1);
    struct recipe_result q[] = { fake("fp32", 1, 0.80, 0.5, 0.4), fake("amp", 1, 0.795, 0.5, 0.4) };
    verify_judge(&one, q, 2, &v);
    check(verdict_of(&v, "amp")->pass, "one seed: judged by the tolerance");
    verification_free(&v);
    recipe_result_free(&q[0]);
    recipe_result_free(&q[1]);
}

/* verify takes a preset's protocol unless the flags say otherwise; run does not. */
static void test_protocol(void)
{
    struct amp_config c;
    char *a1[] = { "--net", "resnet8" };
    cli_parse(2, a1, &c, stdout, CLI_VERIFY, NULL);
    check(c.seeds == 3 && c.epochs == 5, "verify --net resnet8: 3 seeds, 5 epochs (%u, %u)",
          c.seeds, c.epochs);
    char *a2[] = { "--net", "resnet8", "--seeds", "1", "--epochs=2" };
    cli_parse(5, a2, &c, stdout, CLI_VERIFY, NULL);
    check(c.seeds == 1 && c.epochs == 2, "--seeds and --epochs win over the protocol");
    cli_parse(2, a1, &c, stdout, CLI_RUN, NULL);
    check(c.seeds == 1, "run --net resnet8: one seed");
    char *a3[] = { "--net", "lenet5" };
    cli_parse(2, a3, &c, stdout, CLI_VERIFY, NULL);
    check(c.seeds == 3 && c.epochs == 5, "verify --net lenet5: 3 seeds, 5 epochs (%u, %u)",
          c.seeds, c.epochs);
    char *a4[] = { "--net", "seed" };
    cli_parse(2, a4, &c, stdout, CLI_VERIFY, NULL);
    check(c.seeds == 1, "verify --net seed: no protocol, one seed");
    char *a5[] = { "--net", "deep" };
    cli_parse(2, a5, &c, stdout, CLI_VERIFY, NULL);
    check(c.seeds == 1 && c.epochs == 5, "verify --net deep: one seed (fp32's spread 0.25 pp), 5 "
          "epochs (%u, %u)", c.seeds, c.epochs);
}

int main(void)
{
    test_protocol();
    test_welch();
    test_paired_p();
    test_paired_verdicts();
    test_single_seed();
    test_seeds();
    test_inconclusive();
    return check_summary();
}
