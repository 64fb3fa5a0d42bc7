#!/usr/bin/env bash
# scripts/device-check.sh --probe on this machine (no GPU needed):
#   - with no carried build: OUT/summary.json has the probe's shape (mode, elapsed_s <= 30, the
#     four stages driver, libraries, ldd, smoke, each pass/fail/skip with a reason), the driver and
#     smoke stages skipped "no device" where nvidia-smi is absent;
#   - the full check with no carried build and no cmake: exit 2, summary.json (mode full) holds the
#     reason it stopped and the probe;
#   - a carried build that needs a newer glibc (a loader error, through a stand-in ldd): the ldd
#     stage fails naming the glibc version, not a missing library;
#   - `ampbench info --smoke`: every CPU case exact, exit 0;
#   - with a CUDA build (its ampbench, the toolkit's and cuDNN's library folders):
#     a wheel-only machine, the toolkit's and cuDNN's .so files linked into a site-packages tree
#     (nvidia/<pkg>/lib, with a nvidia_cudnn_cu13 dist-info) found through PYTHONPATH, the CUDA
#     installs hidden (DEVICE_CHECK_CUDA_ROOTS empty, no nvcc on PATH): every library of the CUDA
#     stack comes from that tree, the carried binary links none of cudart, cuBLAS, cuDNN (static
#     runtime, the libraries loaded at run time), LD_LIBRARY_PATH holds only its folders, the
#     NVRTC of cuDNN's CUDA major is chosen, and the smoke stage is skipped "no device" after the
#     CPU cases passed; the same with only CUDA 12 cuBLAS wheels (cuBLAS 12 chosen, the stages
#     pass) and with no cuBLAS at all (the libraries stage fails naming it);
#   - with the emulated CUDA backend (--cuemu BIN): `info --smoke` passes every CUDA case.
# Usage: test_device_check.sh SOURCE_DIR AMPBENCH [CUDA_LIB_DIR CUDNN_LIB_DIR] [--cuemu BIN]
set -u
src=$1 bin=$2
shift 2
cuda_lib="" cudnn_lib="" cuemu_bin=""
if [ $# -ge 2 ] && [ "$1" != --cuemu ]; then cuda_lib=$1 cudnn_lib=$2; shift 2; fi
[ "${1:-}" = --cuemu ] && cuemu_bin=$2
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "FAIL: jq is not installed (scripts/install-deps.sh)" >&2; exit 1; }

# The script runs from a copy of the tree's scripts/, so that no build-cuda/ of the source tree is
# taken for a carried build; PATH has no nvidia-smi and no nvcc.
mkdir -p "$tmp/tree/scripts" "$tmp/bin"
cp "$src/scripts/device-check.sh" "$tmp/tree/scripts/"
for t in bash sh env timeout date cat grep sed awk tr cut head tail sort uniq wc tee mkdir cp rm ls \
         readlink dirname basename readelf ldd python3 find du uname nproc free printf; do
  p=$(command -v "$t") && ln -sf "$p" "$tmp/bin/$t"
done
# (The interpreter itself, not a version manager's shim that needs its own PATH.)
py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && ln -sf "$py" "$tmp/bin/python3"
probe() { # NAME env-assignments...: runs the probe into $tmp/NAME, its exit status in $tmp/NAME.rc
  local name=$1; shift
  env -i HOME="$HOME" PATH="${probe_path:-$tmp/bin}" DEVICE_CHECK_CUDA_ROOTS= "$@" \
    bash "$tmp/tree/scripts/device-check.sh" --probe "$tmp/$name" >"$tmp/$name.log" 2>&1
  echo $? >"$tmp/$name.rc"
}
q() { jq -r "$1" "$tmp/$2/summary.json" 2>/dev/null; } # FILTER NAME

# ---- no carried build: the summary's shape -----------------------------------------------------
probe bare AMPBENCH_BUILD=/nonexistent
ok "$([ -s "$tmp/bare/summary.json" ] && jq -e . "$tmp/bare/summary.json" >/dev/null && echo 1)" \
  "bare: no valid summary.json: $(tail -n 3 "$tmp/bare.log")"
ok "$([ "$(q .mode bare)" = probe ] && echo 1)" "bare: mode is '$(q .mode bare)', expected probe"
ok "$([ "$(q '.elapsed_s <= 30' bare)" = true ] && echo 1)" "bare: the probe took $(q .elapsed_s bare) s (limit 30)"
ok "$([ "$(q '.stages | keys | join(",")' bare)" = "driver,ldd,libraries,smoke" ] && echo 1)" \
  "bare: stages are '$(q '.stages | keys | join(",")' bare)'"
ok "$([ "$(q '[.stages[] | select((.result | IN("pass", "fail", "skip")) and (.reason | length > 0))] | length' bare)" = 4 ] && echo 1)" \
  "bare: every stage needs a result pass/fail/skip and a reason: $(q -c .stages bare)"
ok "$([ "$(q .stages.driver.result bare)" = skip ] && q .stages.driver.reason bare | grep -q '^no device' && echo 1)" \
  "bare: driver stage without nvidia-smi: $(q -c .stages.driver bare)"
ok "$([ "$(q .stages.ldd.result bare)" = skip ] && [ "$(q .stages.smoke.result bare)" = skip ] && echo 1)" \
  "bare: ldd and smoke without a carried build must be skipped: $(q -c .stages bare)"
ok "$([ "$(q '.libraries | length' bare)" -ge 10 ] && [ "$(q '.ldd | type' bare)" = array ] &&
      [ "$(q '.smoke | type' bare)" = array ] && echo 1)" "bare: libraries, ldd or smoke missing: $(head -c 300 "$tmp/bare/summary.json")"
ok "$(grep -q '^== .*probe libraries: ' "$tmp/bare.log" && echo 1)" "bare: no probe line in the log"

# ---- the full check where it cannot go on: the probe inside its summary -------------------------
# (No carried build, and no cmake on PATH to rebuild with: it stops, exit 2.)
env -i HOME="$HOME" PATH="$tmp/bin" DEVICE_CHECK_CUDA_ROOTS= AMPBENCH_BUILD=/nonexistent \
  bash "$tmp/tree/scripts/device-check.sh" "$tmp/full" >"$tmp/full.log" 2>&1
rc=$?
ok "$([ "$rc" = 2 ] && [ "$(q .mode full)" = full ] && q .stopped full | grep -q 'cannot rebuild here' && echo 1)" \
  "full: expected exit 2 and a 'cannot rebuild here' stop, got $rc: $(q .stopped full) $(tail -n 2 "$tmp/full.log")"
ok "$([ "$(q .probe.mode full)" = full ] && [ "$(q '.probe.stages | length' full)" = 4 ] && echo 1)" \
  "full: summary.json must hold the probe: $(q -c .probe.stages full)"

# ---- a carried build that needs a newer glibc ----------------------------------------------------
mkdir -p "$tmp/old/tests" "$tmp/oldbin"
printf '#!/bin/sh\necho "ampbench: should not run"\n' >"$tmp/old/ampbench"
cp "$tmp/old/ampbench" "$tmp/old/tests/test_backend_ops"
chmod +x "$tmp/old/ampbench" "$tmp/old/tests/test_backend_ops"
cat >"$tmp/oldbin/ldd" <<'EOF'
#!/bin/sh
case "$1" in --version) echo "ldd (GNU libc) 2.31"; exit 0 ;; esac
for f in "$@"; do
  echo "$f: /lib/x86_64-linux-gnu/libc.so.6: version \`GLIBC_2.99' not found (required by $f)"
  echo "	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0000000000)"
done
EOF
chmod +x "$tmp/oldbin/ldd"
probe_path=$tmp/oldbin:$tmp/bin probe oldglibc AMPBENCH_BUILD="$tmp/old"
ok "$([ "$(q .stages.ldd.result oldglibc)" = fail ] && q .stages.ldd.reason oldglibc | grep -q 'glibc 2.31.*GLIBC_2.99' && echo 1)" \
  "oldglibc: the ldd stage must fail naming the glibc versions: $(q -c .stages.ldd oldglibc)"
ok "$([ "$(q .stages.smoke.result oldglibc)" = skip ] && echo 1)" "oldglibc: smoke must be skipped: $(q -c .stages.smoke oldglibc)"
ok "$([ "$(cat "$tmp/oldglibc.rc")" = 1 ] && echo 1)" "oldglibc: a failed stage must exit 1, not $(cat "$tmp/oldglibc.rc")"

# ---- the smoke on the CPU backend ---------------------------------------------------------------
"$bin" info --smoke >"$tmp/cpu-smoke.txt" 2>&1
rc=$?
ok "$([ "$rc" = 0 ] && [ "$(grep -c '^smoke cpu: .*: ok' "$tmp/cpu-smoke.txt")" = 8 ] &&
      tail -n 1 "$tmp/cpu-smoke.txt" | grep -qx 'smoke: passed' && echo 1)" \
  "info --smoke exits $rc, expected 8 CPU cases ok: $(grep -E '^smoke cpu|FAIL' "$tmp/cpu-smoke.txt" | head -n 3)"

# ---- a wheel-only machine ----------------------------------------------------------------------
if [ -n "$cuda_lib" ]; then
  site=$tmp/site
  link_libs() { # FROM_DIR PKG PATTERN...: the wheel's nvidia/PKG/lib, the files linked in
    local from=$1 pkg=$2 f; shift 2
    mkdir -p "$site/nvidia/$pkg/lib"
    for pat in "$@"; do for f in "$from"/$pat; do [ -e "$f" ] && ln -sf "$(readlink -f "$f")" "$site/nvidia/$pkg/lib/${f##*/}"; done; done
  }
  link_libs "$cuda_lib" cuda_runtime 'libcudart.so.*'
  link_libs "$cuda_lib" cublas 'libcublas.so.*' 'libcublasLt.so.*'
  link_libs "$cuda_lib" cuda_nvrtc 'libnvrtc.so.*' 'libnvrtc-builtins.so.*'
  link_libs "$cudnn_lib" cudnn 'libcudnn*.so.9'
  mkdir -p "$site/nvidia_cudnn_cu13-9.0.0.dist-info"
  build=$(dirname "$bin")
  probe wheels AMPBENCH_BUILD="$build" PYTHONPATH="$site"
  ok "$([ "$(q .stages.libraries.result wheels)" = pass ] && echo 1)" "wheels: libraries stage: $(q -c .stages.libraries wheels)"
  outside=$(jq -r --arg s "$site" '.libraries | to_entries[] | select((.value // "") | startswith($s) | not) | .key' \
            "$tmp/wheels/summary.json")
  ok "$([ -z "$outside" ] && echo 1)" "wheels: libraries not from the wheel tree: $outside"
  ldp=$(q .ld_library_path wheels)
  ok "$([ -n "$ldp" ] && ! tr ':' '\n' <<<"$ldp" | grep -qv "^$site/nvidia/" && echo 1)" \
    "wheels: LD_LIBRARY_PATH must hold the wheel folders only: $ldp"
  # The carried binary: static cudart, cuBLAS and cuDNN loaded at run time (no NEEDED entry).
  linked=$(jq -r '.ldd[].soname' "$tmp/wheels/summary.json" | grep -E '^lib(cudart|cublas|cublasLt|cudnn)\.so' | tr '\n' ' ')
  ok "$([ -z "$linked" ] && echo 1)" "wheels: the carried binary must not link $linked"
  ok "$([ "$(q .cublas_major wheels)" = 13 ] && [ "$(q '.libraries["libcublas.so.13"]' wheels)" = "$site/nvidia/cublas/lib/libcublas.so.13" ] && echo 1)" \
    "wheels: cuBLAS 13 from the wheel tree: major '$(q .cublas_major wheels)', $(q '.libraries["libcublas.so.13"]' wheels)"
  # Only CUDA 12 wheels: cuBLAS 12 is the one the binary will load (stand-in files of that name).
  site12=$tmp/site12
  mkdir -p "$site12/nvidia/cublas/lib" "$site12/nvidia_cudnn_cu12-9.0.0.dist-info"
  cp -r "$site/nvidia/cudnn" "$site/nvidia/cuda_nvrtc" "$site12/nvidia/"
  for l in libcublas.so.12 libcublasLt.so.12 libnvrtc.so.12; do : >"$site12/nvidia/cublas/lib/$l"; done
  probe wheels12 AMPBENCH_BUILD="$build" PYTHONPATH="$site12"
  ok "$([ "$(q .stages.libraries.result wheels12)" = pass ] && [ "$(q .cublas_major wheels12)" = 12 ] &&
        [ "$(q '.libraries["libcublas.so.12"]' wheels12)" = "$site12/nvidia/cublas/lib/libcublas.so.12" ] &&
        q .stages.libraries.reason wheels12 | grep -q 'cuBLAS 12 (loaded at run time)' && echo 1)" \
    "wheels12: cuBLAS 12 wheels must pass the libraries stage: $(q -c .stages.libraries wheels12), major '$(q .cublas_major wheels12)'"
  ok "$([ "$(q .stages.ldd.result wheels12)" = pass ] && echo 1)" "wheels12: ldd stage: $(q -c .stages.ldd wheels12)"
  # No cuBLAS at all: the libraries stage names what is missing.
  site0=$tmp/site0
  mkdir -p "$site0/nvidia"
  cp -r "$site/nvidia/cudnn" "$site0/nvidia/"
  probe nocublas AMPBENCH_BUILD="$build" PYTHONPATH="$site0"
  ok "$([ "$(q .stages.libraries.result nocublas)" = fail ] && [ "$(q .cublas_major nocublas)" = "" ] &&
        q .stages.libraries.reason nocublas | grep -q 'libcublas.so.13.*no libcublas.so.13 or libcublas.so.12' && echo 1)" \
    "nocublas: the libraries stage must fail naming cuBLAS: $(q -c .stages.libraries nocublas)"
  ok "$([ "$(q .cudnn_cuda_major wheels)" = 13 ] && [ "$(q '.libraries["libnvrtc.so.13"]' wheels)" = "$site/nvidia/cuda_nvrtc/lib/libnvrtc.so.13" ] && echo 1)" \
    "wheels: NVRTC for cuDNN's CUDA 13: major '$(q .cudnn_cuda_major wheels)', $(q '.libraries["libnvrtc.so.13"]' wheels)"
  ok "$([ "$(q .stages.ldd.result wheels)" = pass ] && echo 1)" "wheels: ldd stage: $(q -c .stages.ldd wheels)"
  ok "$([ "$(q .stages.smoke.result wheels)" = skip ] && q .stages.smoke.reason wheels | grep -q '^no device' && echo 1)" \
    "wheels: smoke without a GPU must be skipped, no device: $(q -c .stages.smoke wheels)"
  ok "$([ "$(q '[.smoke[] | select(test("^smoke cpu: .*: ok"))] | length' wheels)" = 8 ] && echo 1)" \
    "wheels: the 8 CPU smoke cases must pass: $(q -c .smoke wheels)"
fi

# ---- the smoke on the emulated CUDA backend ----------------------------------------------------
if [ -n "$cuemu_bin" ]; then
  "$cuemu_bin" info --smoke >"$tmp/cuemu-smoke.txt" 2>&1
  rc=$?
  ok "$([ "$rc" = 0 ] && echo 1)" "cuemu: info --smoke exits $rc: $(grep -m 3 FAIL "$tmp/cuemu-smoke.txt")"
  ok "$([ "$(grep -c '^smoke cuda: .*: ok' "$tmp/cuemu-smoke.txt")" = 8 ] && echo 1)" \
    "cuemu: expected 8 CUDA cases ok: $(grep '^smoke cuda' "$tmp/cuemu-smoke.txt" | head -n 3)"
  ok "$(grep -q '^smoke cuda: describe {' "$tmp/cuemu-smoke.txt" && echo 1)" "cuemu: no describe JSON line"
fi
summary
