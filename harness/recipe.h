/* Training recipes (the --modes): which precision each part of the step runs in. */
#ifndef AMPBENCH_RECIPE_H
#define AMPBENCH_RECIPE_H

#include "backend.h"

struct recipe {
    const char *name;
    const char *summary;
    enum amp_math math; /* how conv/GEMM treat FP32 inputs */
};

/* The recipe called `name`, or NULL. */
const struct recipe *recipe_find(const char *name);
/* Number of known recipes, and the i-th, in a fixed order. */
size_t recipe_count(void);
const struct recipe *recipe_at(size_t i);
/* "fp32, ..." into buf: the known names, for error messages and help. */
const char *recipe_names(char *buf, size_t len);

#endif
