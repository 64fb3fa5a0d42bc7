/* Loss scaling with torch.amp.GradScaler semantics (plus Apex-style optional bounds). The state
 * lives in backend memory (a MEM_OPTIMIZER tensor) so that a GPU backend updates it on the device
 * without a host synchronisation; this header holds the one definition of the update rule, for
 * host code and device code alike. */
#ifndef AMPBENCH_SCALER_H
#define AMPBENCH_SCALER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__CUDACC__)
#define AMP_HOST_DEVICE __host__ __device__
#else
#define AMP_HOST_DEVICE
#endif

struct loss_scaler {
    /* Configuration. */
    float growth_factor;      /* GradScaler default 2.0; 1.0 for a static scale */
    float backoff_factor;     /* default 0.5; 1.0 for a static scale */
    int32_t growth_interval;  /* default 2000 clean steps */
    float min_scale;          /* Apex-style lower bound; 0 = none */
    float max_scale;          /* upper bound; 0 = none */
    /* State. */
    float scale;              /* the scale the next step multiplies the loss by */
    int32_t growth_tracker;   /* consecutive clean steps since the last change */
    int32_t found_inf;        /* set by unscale when a gradient holds inf/NaN */
    /* The last step, for reports (written by scaler_update). */
    float last_scale;
    int32_t last_skipped;
};

/* Builds a scaler. dynamic = 0 gives a static scale: it never changes, yet steps whose gradients
 * hold inf/NaN are still skipped (Apex's static loss scale does the same). */
static inline struct loss_scaler scaler_make(float init_scale, int dynamic, int32_t growth_interval,
                                             float min_scale, float max_scale)
{
    struct loss_scaler s = {
        .growth_factor = dynamic ? 2.0f : 1.0f,
        .backoff_factor = dynamic ? 0.5f : 1.0f,
        .growth_interval = growth_interval,
        .min_scale = min_scale,
        .max_scale = max_scale,
        .scale = init_scale,
        .growth_tracker = 0,
        .found_inf = 0,
        .last_scale = init_scale,
        .last_skipped = 0,
    };
    return s;
}

/* GradScaler.update(): torch._amp_update_scale_'s rule. On inf/NaN: scale *= backoff, tracker
 * reset; else the tracker counts up and, at growth_interval, scale *= growth (only if the result
 * is finite) and the tracker resets. Then the optional bounds clamp the scale, and found_inf is
 * cleared for the next step. */
AMP_HOST_DEVICE static inline void scaler_update(struct loss_scaler *s)
{
    s->last_scale = s->scale;
    s->last_skipped = s->found_inf != 0;
    if (s->found_inf) {
        s->scale *= s->backoff_factor;
        s->growth_tracker = 0;
    } else {
        const int32_t successful = s->growth_tracker + 1;
        if (successful == s->growth_interval) {
            const float grown = s->scale * s->growth_factor;
            if (grown - grown == 0.0f) /* finite */
                s->scale = grown;
            s->growth_tracker = 0;
        } else {
            s->growth_tracker = successful;
        }
    }
    if (s->min_scale > 0.0f && s->scale < s->min_scale)
        s->scale = s->min_scale;
    if (s->max_scale > 0.0f && s->scale > s->max_scale)
        s->scale = s->max_scale;
    s->found_inf = 0;
}

#ifdef __cplusplus
}
#endif

#endif
