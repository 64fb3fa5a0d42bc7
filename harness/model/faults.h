/* Test-only fault injection: the classic implementation bugs of mixed-precision training, each
 * planted in every model built afterwards, so that the tests can show that `ampbench parity`
 * (and `verify`) catch and name them. Only the test binary ampbench-faulty (tests/, main.c built
 * with AMPBENCH_FAULTS) calls model_plant_fault, from its AMPBENCH_FAULT environment variable;
 * the ampbench binary has no path to it, so no flag or variable turns a fault on by accident. */
#ifndef AMPBENCH_FAULTS_H
#define AMPBENCH_FAULTS_H

#include <stddef.h>

enum model_fault {
    FAULT_NONE,
    FAULT_NO_UNSCALE,          /* "no-unscale": gradients not unscaled (nor checked) before the step */
    FAULT_STEP_ON_INF,         /* "step-on-inf": the step taken despite inf/NaN gradients */
    FAULT_NO_BACKOFF,          /* "no-backoff": a scaler that never lowers its scale */
    FAULT_MASTER_NOT_UPDATED,  /* "stale-master": the step updates the copies, not the masters */
    FAULT_SCALED_TWICE,        /* "scaled-twice": the loss gradient multiplied by the scale twice */
    FAULT_STALE_COPY,          /* "stale-copy": the low-precision copy not refreshed after the step */
    /* Distributed runs (harness/dist), on the last rank only: */
    FAULT_RANK_INF,            /* "rank-inf": an inf in its gradients after the all-reduce at steps 3 and 8 */
    FAULT_RANK_INF_UNREDUCED,  /* "rank-inf-unreduced": as rank-inf, and the found-inf flag not reduced */
    FAULT_RANK_HANGS,          /* "rank-hangs": it stops (SIGSTOP) at its third step or heartbeat */
    FAULT_RANK_DIES,           /* "rank-dies": it is killed (SIGKILL) at its third step or heartbeat */
    NFAULTS
};

/* Plants the fault called `name` ("no-unscale", ...; "none" removes it): 0, or -1 when unknown. */
int model_plant_fault(const char *name);
enum model_fault model_planted_fault(void);
/* "no-unscale, ..." into buf. */
const char *model_fault_names(char *buf, size_t len);

#endif
