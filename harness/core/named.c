/* Lookups in a static table of named entries. */
#include "named.h"

#include <stdio.h>
#include <string.h>

/* A struct's first member sits at its address (C17 6.7.2.1). */
static const char *name_at(const void *table, size_t i, size_t stride)
{
    return *(const char *const *)((const char *)table + i * stride);
}

const void *named_find(const void *table, size_t count, size_t stride, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(name_at(table, i, stride), name) == 0)
            return (const char *)table + i * stride;
    return NULL;
}

const char *named_list(char *buf, size_t len, const void *table, size_t count, size_t stride)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                                 name_at(table, i, stride));
    return buf;
}
