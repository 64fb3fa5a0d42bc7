/* The sweep over ranks: static assignment, results as messages (wire.c), heartbeats. */
#include "sweep.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "group.h"
#include "interrupt.h"
#include "wire.h"

enum { TAG_HEARTBEAT = 0, TAG_RESULT = 1 }; /* a result's tag is TAG_RESULT + its job */

int sweep_open(struct sweep *s, const struct amp_config *c, struct recipe_result *slots)
{
    const struct dist_group *g = dist_world();
    memset(s, 0, sizeof *s);
    s->c = c;
    s->slots = slots;
    s->njobs = (size_t)c->seeds * c->nrecipes;
    s->spread = g->size > 1 && !c->data_parallel;
    s->have = calloc(s->njobs, 1);
    s->last_heard = calloc((size_t)g->size, sizeof *s->last_heard);
    if (!s->have || !s->last_heard)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    for (int k = 0; k < g->size; k++)
        s->last_heard[k] = now_s();
    return AMP_OK;
}

void sweep_close(struct sweep *s)
{
    free(s->have);
    free(s->last_heard);
    memset(s, 0, sizeof *s);
}

static int owner(const struct sweep *s, size_t job)
{
    return s->spread ? (int)(job % (size_t)dist_world()->size) : dist_world()->rank;
}

int sweep_mine(const struct sweep *s, size_t job)
{
    return owner(s, job) == dist_world()->rank;
}

int sweep_done(struct sweep *s, size_t job)
{
    if (!s->spread || dist_world()->rank == 0) {
        s->have[job] = 1;
        return AMP_OK;
    }
    void *bytes;
    size_t len;
    int rc = wire_encode(&s->slots[job], s->c, &bytes, &len);
    if (rc == AMP_OK)
        rc = dist_send(0, TAG_RESULT + (int)job, bytes, len, "sending a result to rank 0");
    if (rc == AMP_OK)
        free(bytes);
    recipe_result_free(&s->slots[job]);
    s->last_beat = now_s();
    return rc;
}

/* Rank 0: every message that has arrived. */
static int take_in(struct sweep *s)
{
    int from, tag;
    while (dist_poll(&from, &tag)) {
        void *bytes;
        size_t len;
        int rc = dist_recv(from, tag, &bytes, &len, "receiving from a rank");
        const size_t job = (size_t)(tag - TAG_RESULT);
        if (rc == AMP_OK && tag >= TAG_RESULT) {
            if (job >= s->njobs || s->have[job] || owner(s, job) != from)
                rc = amp_fail(AMP_EFAIL, "rank %d sent a result for job %zu it does not own",
                              from, job);
            else
                rc = wire_decode(bytes, len, s->c, &s->slots[job]);
            if (rc == AMP_OK)
                s->have[job] = 1;
        }
        free(bytes);
        if (rc != AMP_OK)
            return rc;
        s->last_heard[from] = now_s();
    }
    return AMP_OK;
}

int sweep_service(struct sweep *s)
{
    if (!s->spread)
        return AMP_OK;
    if (dist_world()->rank == 0)
        return take_in(s);
    dist_fault_stop(++s->batches);
    if (now_s() - s->last_beat < 1.0)
        return AMP_OK;
    s->last_beat = now_s();
    static const unsigned char beat = 1;
    return dist_send(0, TAG_HEARTBEAT, &beat, 1, "a heartbeat to rank 0");
}

int sweep_collect(struct sweep *s)
{
    const struct dist_group *g = dist_world();
    if (!s->spread || g->rank != 0)
        return AMP_OK;
    const struct timespec nap = { 0, 1000000 }; /* 1 ms */
    for (;;) {
        int rc = take_in(s);
        if (rc != AMP_OK)
            return rc;
        size_t missing = s->njobs;
        for (size_t j = 0; j < s->njobs; j++)
            if (s->have[j])
                missing--;
            else if (now_s() - s->last_heard[owner(s, j)] > g->timeout_s)
                return amp_fail(AMP_EDIST, "rank %d sent nothing for %g s (--dist-timeout) and "
                                "still owes the result of %s seed %llu: it died or hangs",
                                owner(s, j), g->timeout_s,
                                s->c->recipes[j % s->c->nrecipes]->name,
                                (unsigned long long)(s->c->seed + j / s->c->nrecipes));
        if (!missing)
            return AMP_OK;
        if (interrupt_signal())
            return amp_fail(AMP_EINTR, "interrupted (signal %d) waiting for the other ranks' "
                            "results", interrupt_signal());
        nanosleep(&nap, NULL);
    }
}

size_t sweep_prefix(const struct sweep *s)
{
    size_t n = 0;
    while (n < s->njobs && s->have[n])
        n++;
    return n;
}
