/* Files and folders: atomic writes through an exclusively created temporary file and a rename,
 * bounded whole-file reads, fresh folders (mkdir -p that never reuses a folder holding anything). */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

/* A random number for a fresh name (the pid and the attempt where getrandom fails). */
static uint32_t random_id(int attempt)
{
    uint32_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint32_t)getpid() * 2654435761u + (uint32_t)attempt;
    return id;
}

int file_temp_in(char *tmp_out, size_t len, const char *dir, const char *name)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        const uint32_t id = random_id(attempt);
        if (snprintf(tmp_out, len, "%s/.%s.%08x.tmp", dir, name, id) >= (int)len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        /* O_EXCL never opens an existing name, not even a planted symbolic link. */
        const int fd = open(tmp_out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        const ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int file_commit_in(const char *dir, const char *tmp, const char *name)
{
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        unlink(tmp);
        return amp_fail(AMP_EIO, "%s/%s: path too long", dir, name);
    }
    /* rename replaces whatever the name was, a symbolic link included; it never follows one. */
    if (rename(tmp, path) != 0) {
        const int err = errno;
        unlink(tmp);
        return amp_fail(AMP_EIO, "%s: cannot rename into place: %s", path, strerror(err));
    }
    /* The rename itself lasts only once the folder's entry is on disk. */
    const int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return AMP_OK;
}

int file_write_in(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[4300];
    const int fd = file_temp_in(tmp, sizeof tmp, dir, name);
    if (fd < 0)
        return amp_fail(AMP_EIO, "%s/%s: cannot write: %s", dir, name, strerror(errno));
    int failed = write_all(fd, data, len) != 0 || fsync(fd) != 0;
    int err = failed ? errno : 0;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        unlink(tmp);
        return amp_fail(AMP_EIO, "%s/%s: write failed: %s", dir, name,
                        strerror(err ? err : ENOSPC));
    }
    return file_commit_in(dir, tmp, name);
}

int file_write_atomic(const char *path, const void *data, size_t len)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        return file_write_in(".", path, data, len);
    snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return file_write_in(dir, slash + 1, data, len);
}

/* Why path cannot be opened, naming the real cause (a dangling symbolic link is not "missing"). */
static const char *open_failure(const char *path, int err)
{
    struct stat st;
    if (err == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return "a dangling symbolic link (its target does not exist)";
    return strerror(err);
}

/* What a non-regular file is, for "not a regular file" messages. */
static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

int file_read_all(char **text_out, size_t *len_out, const char *path, size_t max_bytes)
{
    *text_out = NULL;
    *len_out = 0;
    /* O_NONBLOCK: opening a FIFO returns at once (a blocking open waits for a writer forever). */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return amp_fail(AMP_EINPUT, "%s: cannot read: %s", path, open_failure(path, errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: cannot read: %s, not a regular file", path,
                        file_kind(st.st_mode));
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: %lld bytes, larger than the %zu-byte limit, refused", path,
                        (long long)st.st_size, max_bytes);
    }
    /* The size may change under us: read up to max_bytes + 1 and check again. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap > max_bytes)
                break;
            char *grown = realloc(buf, 2 * cap + 1);
            if (!grown)
                free(buf);
            buf = grown;
            cap *= 2;
            continue;
        }
        const ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            const int err = errno;
            free(buf);
            close(fd);
            return amp_fail(AMP_EINPUT, "%s: read error: %s", path, strerror(err));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (!buf)
        return amp_fail(AMP_ENOMEM, "%s: out of memory reading it", path);
    if (n > max_bytes) {
        free(buf);
        return amp_fail(AMP_EINPUT, "%s: larger than the %zu-byte limit, refused", path, max_bytes);
    }
    buf[n] = '\0';
    *text_out = buf;
    *len_out = n;
    return AMP_OK;
}

/* mkdir -p for the parents of path (not path itself). */
static int make_parents(const char *path, const char *what)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return amp_fail(AMP_EINPUT, "%s: path too long (%zu bytes, the limit is %zu)", path,
                        strlen(path), sizeof buf - 1);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return amp_fail(AMP_EINPUT, "%s: cannot create %s: %s", buf, what, strerror(errno));
        *p = '/';
    }
    return AMP_OK;
}

/* Whether the folder open at fd holds nothing (not even a dot file). */
static int dir_fd_is_empty(int fd)
{
    const int copy = dup(fd);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (!d) {
        if (copy >= 0)
            close(copy);
        return 0;
    }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

int dir_claim(int *fd_out, const char *path, int allow_empty, const char *what)
{
    *fd_out = -1;
    int rc = make_parents(path, what);
    if (rc != AMP_OK)
        return rc;
    const int made = mkdir(path, 0777) == 0;
    if (!made && errno != EEXIST)
        return amp_fail(AMP_EINPUT, "%s: cannot create %s: %s", path, what, strerror(errno));
    struct stat st;
    if (!made && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return amp_fail(AMP_EINPUT, "%s: is a symbolic link%s; give the %s itself", path,
                        stat(path, &st) != 0 ? " to nothing (dangling)" : "", what);
    if (!made && lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        return amp_fail(AMP_EINPUT, "%s: exists and is not a directory", path);
    const int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return amp_fail(AMP_EINPUT, "%s: cannot open %s: %s", path, what, strerror(errno));
    /* The lock is the claim: held until the run ends, so that two runs never share a folder.
     * Emptiness is checked under it, so a run that finished before leaves the folder non-empty. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: %s is in use by another ampbench run; choose a new "
                        "folder", path, what);
    }
    if (!made && !(allow_empty && dir_fd_is_empty(fd))) {
        close(fd);
        return AMP_EIO; /* exists and holds something: the caller decides what to say */
    }
    if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: %s is not writable and searchable", path, what);
    }
    *fd_out = fd;
    return AMP_OK;
}

int dir_claim_stamped(int *fd_out, char *path_out, size_t len, const char *parent,
                      const char *what)
{
    char stamp[32];
    const time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int attempt = 0; attempt < 16; attempt++) {
        snprintf(path_out, len, "%s/%s-%06x", parent, stamp, random_id(attempt) & 0xFFFFFF);
        const int rc = dir_claim(fd_out, path_out, 0, what);
        if (rc != AMP_EIO)
            return rc;
    }
    return amp_fail(AMP_EIO, "%s: could not find a fresh folder name", parent);
}

int dir_ensure(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return amp_fail(AMP_EIO, "%s: cannot create: %s", path, strerror(errno));
    struct stat st;
    if (lstat(path, &st) != 0)
        return amp_fail(AMP_EIO, "%s: cannot create: %s", path, strerror(errno));
    if (S_ISLNK(st.st_mode))
        return amp_fail(AMP_EIO, "%s: is a symbolic link; refusing to write through it", path);
    if (!S_ISDIR(st.st_mode))
        return amp_fail(AMP_EIO, "%s: exists and is not a directory", path);
    return AMP_OK;
}

int file_check_writable(const char *path, const char *flag)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode) && stat(path, &st) != 0)
            return amp_fail(AMP_EINPUT, "%s %s: a dangling symbolic link (its target does not "
                            "exist)", flag, path);
        if (S_ISDIR(st.st_mode))
            return amp_fail(AMP_EINPUT, "%s %s: is a directory; give a file name", flag, path);
        if (!S_ISREG(st.st_mode))
            return amp_fail(AMP_EINPUT, "%s %s: %s, not a regular file", flag, path,
                            file_kind(st.st_mode));
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (strlen(path) >= sizeof dir)
        return amp_fail(AMP_EINPUT, "%s %s: path too long (%zu bytes, the limit is %zu)", flag,
                        path, strlen(path), sizeof dir - 1);
    snprintf(dir, sizeof dir, "%.*s", !slash ? 1 : slash == path ? 1 : (int)(slash - path),
             !slash ? "." : path);
    if (stat(dir, &st) != 0)
        return amp_fail(AMP_EINPUT, "%s %s: folder %s: %s", flag, path, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return amp_fail(AMP_EINPUT, "%s %s: %s is not a folder", flag, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return amp_fail(AMP_EINPUT, "%s %s: folder %s is not writable", flag, path, dir);
    return AMP_OK;
}
