/* Where ampbench finds its own files (the gnuplot scripts, the tools it runs): beside an
 * installed binary, else in the source tree it was built from. */
#ifndef AMPBENCH_PATHS_H
#define AMPBENCH_PATHS_H

#include <stddef.h>

/* The folder `sub` ("plots" or "tools") of ampbench's shared files, into out:
 *   - for "plots", $AMPBENCH_PLOTS_DIR when set and not empty;
 *   - <dir of /proc/self/exe>/../share/ampbench/<sub> when that folder exists (an installed
 *     binary: <prefix>/bin/ampbench beside <prefix>/share/ampbench);
 *   - else <source tree of the build>/<sub> (the build-tree binary).
 * Returns out. */
const char *paths_share_dir(char *out, size_t len, const char *sub);

#endif
