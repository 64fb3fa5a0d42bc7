/* The one lookup of ampbench's shared files: $AMPBENCH_PLOTS_DIR, share/ampbench beside the
 * running binary (/proc/self/exe), or the source tree named at build time. */
#include "paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AMPBENCH_SOURCE_DIR
#define AMPBENCH_SOURCE_DIR "."
#endif

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *paths_share_dir(char *out, size_t len, const char *sub)
{
    const char *env = strcmp(sub, "plots") == 0 ? getenv("AMPBENCH_PLOTS_DIR") : NULL;
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return out;
    }
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            const int w = snprintf(out, len, "%s/../share/ampbench/%s", exe, sub);
            if (w > 0 && (size_t)w < len && is_dir(out))
                return out;
        }
    }
    snprintf(out, len, "%s/%s", AMPBENCH_SOURCE_DIR, sub);
    return out;
}
