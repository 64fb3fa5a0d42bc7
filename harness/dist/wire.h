/* A recipe's result (struct recipe_result, train.h) as bytes, for the sweep's gather: every
 * field, the arrays it points to (epochs, steps, the trace, the backend's account, the FP8
 * statistics) written out with their lengths, pointers rebuilt on the way back. The ranks run
 * the same binary: plain-data records (epoch_metrics, step_record, fp8_epoch, ...) travel as
 * their bytes, guarded by their sizes in the header. */
#ifndef AMPBENCH_DIST_WIRE_H
#define AMPBENCH_DIST_WIRE_H

#include <stddef.h>

#include "config.h"
#include "train.h"

/* r as bytes into *bytes (malloc'd, *len long). */
int wire_encode(const struct recipe_result *r, const struct amp_config *c, void **bytes,
                size_t *len);
/* The result in bytes[len] into *out (free with recipe_result_free); AMP_EFAIL on a message
 * that is not a result of this configuration. */
int wire_decode(const void *bytes, size_t len, const struct amp_config *c,
                struct recipe_result *out);

#endif
