/* The planted fault (faults.h): one process-wide value, FAULT_NONE unless a test binary sets it. */
#include "faults.h"

#include "named.h"

struct fault_name {
    const char *name;
};

static const struct fault_name faults[NFAULTS] = {
    [FAULT_NONE] = { "none" },
    [FAULT_NO_UNSCALE] = { "no-unscale" },
    [FAULT_STEP_ON_INF] = { "step-on-inf" },
    [FAULT_NO_BACKOFF] = { "no-backoff" },
    [FAULT_MASTER_NOT_UPDATED] = { "stale-master" },
    [FAULT_SCALED_TWICE] = { "scaled-twice" },
    [FAULT_STALE_COPY] = { "stale-copy" },
    [FAULT_RANK_INF] = { "rank-inf" },
    [FAULT_RANK_INF_UNREDUCED] = { "rank-inf-unreduced" },
    [FAULT_RANK_HANGS] = { "rank-hangs" },
    [FAULT_RANK_DIES] = { "rank-dies" },
};

static enum model_fault planted = FAULT_NONE;

int model_plant_fault(const char *name)
{
    const struct fault_name *f = named_find(faults, NFAULTS, sizeof faults[0], name);
    if (!f)
        return -1;
    planted = (enum model_fault)(f - faults);
    return 0;
}

enum model_fault model_planted_fault(void)
{
    return planted;
}

const char *model_fault_names(char *buf, size_t len)
{
    return named_list(buf, len, &faults[1], NFAULTS - 1, sizeof faults[0]);
}
