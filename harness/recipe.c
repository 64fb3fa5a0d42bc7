/* The table of training recipes. */
#include "recipe.h"

#include <stdio.h>
#include <string.h>

static const struct recipe recipes[] = {
    { .name = "fp32", .summary = "FP32 everywhere (no TF32)", .math = AMP_MATH_F32 },
};

const struct recipe *recipe_find(const char *name)
{
    for (size_t i = 0; i < recipe_count(); i++)
        if (strcmp(recipes[i].name, name) == 0)
            return &recipes[i];
    return NULL;
}

size_t recipe_count(void)
{
    return sizeof recipes / sizeof recipes[0];
}

const struct recipe *recipe_at(size_t i)
{
    return i < recipe_count() ? &recipes[i] : NULL;
}

const char *recipe_names(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < recipe_count() && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", recipes[i].name);
    return buf;
}
