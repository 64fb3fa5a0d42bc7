/* JUnit XML for verify's verdicts: one test case per recipe, so that CI systems show them. */
#ifndef AMPBENCH_JUNIT_H
#define AMPBENCH_JUNIT_H

#include "verify.h"

/* Writes the verdicts to `file` (atomically). */
int junit_write(const char *file, const struct verification *v, double seconds);

#endif
