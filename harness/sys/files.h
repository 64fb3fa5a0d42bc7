/* Files and folders as the harness writes and reads them: atomic writes (a reader never sees half
 * a file), bounded whole-file reads, and fresh folders that never reuse one holding anything. */
#ifndef AMPBENCH_FILES_H
#define AMPBENCH_FILES_H

#include <stddef.h>

/* Writes len bytes of data to path through a temporary file beside it (created exclusively),
 * fsync, a rename and an fsync of the folder, so that a reader never sees half a file. A failed
 * write (disk full) removes the temporary file and leaves the previous file, if any, in place. */
int file_write_atomic(const char *path, const void *data, size_t len);
/* The same for dir/name. */
int file_write_in(const char *dir, const char *name, const void *data, size_t len);
/* The two halves of file_write_in, for a file another process writes: creates dir/.name.<random>.tmp
 * exclusively (never an existing name, never through a symbolic link) and returns its descriptor
 * (-1 with errno); file_commit_in renames it over dir/name (replacing a link, never following
 * one) and fsyncs the folder; on failure the temporary file is removed. */
int file_temp_in(char *tmp_out, size_t len, const char *dir, const char *name);
int file_commit_in(const char *dir, const char *tmp, const char *name);

/* Reads the regular file at path into *text_out (malloc'd, NUL-terminated; *len_out bytes
 * without the NUL). Refuses (AMP_EINPUT, naming the file and the real cause) a missing file, a
 * dangling symbolic link, a directory, a FIFO or device (opened without blocking, refused at
 * once) and a file larger than max_bytes. */
int file_read_all(char **text_out, size_t *len_out, const char *path, size_t max_bytes);

/* Whether a file can be written at path later (checked before any work, so that a run never
 * fails at its end): AMP_EINPUT naming flag and path when path is a directory, a dangling link
 * or not a regular file, or its folder is missing, not a folder or not writable. */
int file_check_writable(const char *path, const char *flag);

/* Claims folder path for one run: creates it (and its parents) or, when allow_empty, takes an
 * existing empty folder (not a symbolic link); *fd_out gets the folder open with an exclusive
 * flock, held until it is closed, so that a second run given the same folder is refused
 * (AMP_EINPUT naming it). Returns AMP_OK, AMP_EIO without a message when path exists and holds
 * something (the caller decides what to say), or an error recorded with amp_fail. */
int dir_claim(int *fd_out, const char *path, int allow_empty, const char *what);
/* Claims a fresh folder <parent>/<UTC timestamp>-<random id> (and parent), never one that
 * exists; its path goes to path_out. */
int dir_claim_stamped(int *fd_out, char *path_out, size_t len, const char *parent,
                      const char *what);
/* Creates folder path unless it exists already; refuses (AMP_EIO naming it) a symbolic link or
 * a non-folder there, so that nothing is written through a link planted in a run folder. */
int dir_ensure(const char *path);

#endif
