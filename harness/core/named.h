/* Lookups in a static table of named entries (recipes, network presets): arrays of structs whose
 * first member is `const char *name`. */
#ifndef AMPBENCH_NAMED_H
#define AMPBENCH_NAMED_H

#include <stddef.h>

/* The entry of table[0..count) (each `stride` bytes) called `name`, or NULL. */
const void *named_find(const void *table, size_t count, size_t stride, const char *name);
/* "a, b, c": the entries' names into buf (truncated to len), for error messages and help. */
const char *named_list(char *buf, size_t len, const void *table, size_t count, size_t stride);

#endif
