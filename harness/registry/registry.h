/* The registry: every backend by name (the CPU reference; CUDA in builds with
 * AMPBENCH_HAVE_CUDA), and opening one for `--device`. The one place that names both backends. */
#ifndef AMPBENCH_REGISTRY_H
#define AMPBENCH_REGISTRY_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The i-th backend compiled in (0: the CPU reference, then CUDA where built); NULL past the
 * last. */
const struct backend_ops *backend_at(size_t i);
/* The backend called `name` ("cpu", "cuda"; not "auto": see backend_resolve), NULL when none is
 * compiled in; whether it is usable is its own `usable` entry's answer. */
const struct backend_ops *backend_named(const char *name);

/* The backend `--device name` means: "auto" is the first backend with a `usable` entry that
 * says yes ("cuda" when the CUDA backend is compiled in and a device is usable), else "cpu"
 * (the first backend_open then prints a one-line note on stderr); any other name is returned
 * as it is. */
const char *backend_resolve(const char *name);

/* The backend named `name` ("cpu", "cuda", "auto"); AMP_EINPUT for an unknown or unavailable
 * one (for "cuda" in a build with CUDA: also when no device is usable). */
int backend_find(const char *name, const struct backend_ops **ops);
/* Opens the backend named `name`. */
int backend_open(struct backend *be, const char *name, const struct backend_options *opts);
void backend_close(struct backend *be);

#ifdef __cplusplus
}
#endif

#endif
