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

/* Creates the temporary file beside path: dir/.name.<random>.tmp, O_EXCL (never an existing
 * file, even a stale one of a crashed writer). Returns the descriptor or -1 with errno. */
static int open_temp(char *tmp_out, size_t len, const char *dir, const char *name)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        const uint32_t id = random_id(attempt);
        if (snprintf(tmp_out, len, "%s/.%s.%08x.tmp", dir, name, id) >= (int)len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        const int fd = open(tmp_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
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

int file_write_in(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4200], tmp[4300];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return amp_fail(AMP_EIO, "%s/%s: path too long", dir, name);
    const int fd = open_temp(tmp, sizeof tmp, dir, name);
    if (fd < 0)
        return amp_fail(AMP_EIO, "%s: cannot write: %s", path, strerror(errno));
    int failed = write_all(fd, data, len) != 0 || fsync(fd) != 0;
    int err = failed ? errno : 0;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        unlink(tmp);
        return amp_fail(AMP_EIO, "%s: write failed: %s", path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        err = errno;
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

int file_write_atomic(const char *path, const void *data, size_t len)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        return file_write_in(".", path, data, len);
    snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return file_write_in(dir, slash + 1, data, len);
}

int file_read_all(char **text_out, size_t *len_out, const char *path, size_t max_bytes)
{
    *text_out = NULL;
    *len_out = 0;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return amp_fail(AMP_EINPUT, "%s: cannot read: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: cannot read: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        close(fd);
        return amp_fail(AMP_EINPUT, "%s: larger than %zu bytes, refused", path, max_bytes);
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
        return amp_fail(AMP_EINPUT, "%s: larger than %zu bytes, refused", path, max_bytes);
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
        return amp_fail(AMP_EINPUT, "%s: path too long", path);
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

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

int dir_create_fresh(const char *path, int allow_empty, const char *what)
{
    int rc = make_parents(path, what);
    if (rc != AMP_OK)
        return rc;
    if (mkdir(path, 0777) == 0)
        return AMP_OK;
    if (errno != EEXIST)
        return amp_fail(AMP_EINPUT, "%s: cannot create %s: %s", path, what, strerror(errno));
    struct stat st;
    if (allow_empty && stat(path, &st) == 0 && S_ISDIR(st.st_mode) && dir_is_empty(path)) {
        if (access(path, W_OK) != 0)
            return amp_fail(AMP_EINPUT, "%s: %s is not writable", path, what);
        return AMP_OK;
    }
    return AMP_EIO; /* exists (holding something, or not a folder): the caller decides */
}

int dir_create_stamped(char *path_out, size_t len, const char *parent, const char *what)
{
    char stamp[32];
    const time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int attempt = 0; attempt < 16; attempt++) {
        snprintf(path_out, len, "%s/%s-%06x", parent, stamp, random_id(attempt) & 0xFFFFFF);
        const int rc = dir_create_fresh(path_out, 0, what);
        if (rc != AMP_EIO)
            return rc;
    }
    return amp_fail(AMP_EIO, "%s: could not find a fresh folder name", parent);
}

int dir_ensure(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return amp_fail(AMP_EIO, "%s: cannot create: %s", path, strerror(errno));
    return AMP_OK;
}
