/* JSON files: written atomically (cJSON's formatted print of the tree with every string made
 * valid UTF-8, then file_write_atomic), read back bounded and parsed strictly. */
#ifndef AMPBENCH_JSONFILE_H
#define AMPBENCH_JSONFILE_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Writes root to path (dir/name) atomically; strings that are not valid UTF-8 in root are
 * replaced by their repaired copies (invalid bytes as U+FFFD) first. */
int json_write_file(const char *path, cJSON *root);
int json_write_in(const char *dir, const char *name, cJSON *root);

/* Parses text[0..len) as one JSON value and nothing else: refuses (AMP_EINPUT, naming `name`)
 * a NUL byte, invalid UTF-8, a syntax error and anything but whitespace after the value. */
int json_parse_strict(cJSON **out, const char *text, size_t len, const char *name);
/* The regular file at path (at most max_bytes; sys/files.h, file_read_all), parsed strictly. */
int json_read_file(cJSON **out, const char *path, size_t max_bytes);

#endif
