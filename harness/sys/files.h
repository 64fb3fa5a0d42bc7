/* Files and folders as the harness writes and reads them: atomic writes (a reader never sees half
 * a file), bounded whole-file reads, and fresh folders that never reuse one holding anything. */
#ifndef AMPBENCH_FILES_H
#define AMPBENCH_FILES_H

#include <stddef.h>

/* Writes len bytes of data to path through a temporary file beside it (created exclusively),
 * fsync, a rename and an fsync of the folder, so that a reader never sees half a file. */
int file_write_atomic(const char *path, const void *data, size_t len);
/* The same for dir/name. */
int file_write_in(const char *dir, const char *name, const void *data, size_t len);

/* Reads the regular file at path into *text_out (malloc'd, NUL-terminated; *len_out bytes
 * without the NUL). Refuses (AMP_EINPUT, naming the file) a missing or unreadable file, one that
 * is not a regular file, and one larger than max_bytes. */
int file_read_all(char **text_out, size_t *len_out, const char *path, size_t max_bytes);

/* Creates folder path and its parents; `what` names it in messages ("results directory").
 * When allow_empty, an existing empty writable folder is accepted too. Returns AMP_OK, AMP_EIO
 * without a message when path exists and is not accepted (the caller decides what to say), or
 * an error recorded with amp_fail. */
int dir_create_fresh(const char *path, int allow_empty, const char *what);
/* Creates a fresh folder <parent>/<UTC timestamp>-<random id> (and parent), never one that
 * exists; its path goes to path_out. */
int dir_create_stamped(char *path_out, size_t len, const char *parent, const char *what);
/* Creates folder path unless it exists already (AMP_EIO naming it when it cannot). */
int dir_ensure(const char *path);

#endif
