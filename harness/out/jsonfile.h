/* A JSON document written to a file atomically (cJSON's formatted print, then file_write_atomic). */
#ifndef AMPBENCH_JSONFILE_H
#define AMPBENCH_JSONFILE_H

#include <cjson/cJSON.h>

/* Prints root (formatted, as cJSON_Print does) to path through a temporary file and a rename. */
int json_write_file(const char *path, const cJSON *root);
/* The same for dir/name. */
int json_write_in(const char *dir, const char *name, const cJSON *root);

#endif
