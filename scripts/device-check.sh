#!/usr/bin/env bash
# The GPU check in one command, for a machine with an NVIDIA GPU and no network access:
#
#   scripts/device-check.sh [--probe] OUT_DIR [DATA_DIR]
#
# starts with the probe (at most 30 s; --probe: only the probe): the driver version, the CUDA,
# cuBLAS, cuDNN and NVRTC libraries found, `ldd` of the carried binary with the paths it really
# loads (a glibc too old for it reported as such), and `ampbench info --smoke` (the handles, one
# tiny conv per dtype and one GEMM per compute type, the backend's describe JSON; cuDNN's and
# cuBLAS's debug logs into OUT_DIR), each stage pass, fail or skip with its reason in
# OUT_DIR/probe.json (OUT_DIR/summary.json under --probe, exit 1 when a stage failed). It runs on
# a machine without a GPU too: the stages that need one are skipped, "no device".
#
# finds the CUDA runtime, cuBLAS, cuDNN and the NVRTC of the CUDA major that cuDNN was built for
# (CUDA installs, or the nvidia-* Python wheels next to PyTorch) and puts their folders, and only
# theirs, on LD_LIBRARY_PATH (never a system folder); every external command runs under `timeout`;
# uses a build carried from another machine (build-cuda/ or $AMPBENCH_BUILD) or builds one with
# nvcc; runs the gpu-labelled tests (op parity suite, end-to-end training against the CPU
# reference, --deterministic repeatability); trains every
# recipe for 2 epochs on Fashion-MNIST with --device cuda; runs the throughput sweep (batch 32 AMP
# with and without CUDA Graphs against PyTorch eager AMP on the same network, and --channels 64
# --batch 1024 AMP against FP32 for speed and peak memory); and writes OUT_DIR/summary.json,
# every log, nvidia-smi and versions into OUT_DIR. Built to finish within 8 minutes on an H200
# (each step has a time limit; a step that would overrun the budget is skipped and says so).
# It stops early, with exit status 2 and the reason in OUT_DIR/summary.json ("stopped"), when the
# carried build cannot run and cannot be rebuilt here, or when no usable CUDA device is seen (also
# after retrying with /usr/local/cuda-13*/compat, the forward-compatible libcuda, first on
# LD_LIBRARY_PATH).
#
#   scripts/device-check.sh --prepare [BUILD_DIR]
#
# on a build machine (no GPU needed): builds BUILD_DIR (default build-cuda) afresh with the CUDA
# backend, portable code (AMPBENCH_NATIVE=OFF: no -march=native) and no CPU emulation targets
# (AMPBENCH_CUEMU=OFF); bundles what the GPU machine may lack: libcjson/libgomp into
# BUILD_DIR/runtime-libs, the development files of cJSON, GSL and zlib into BUILD_DIR/deps (so that
# a rebuild on the GPU machine needs no apt: CMAKE_PREFIX_PATH, and cuDNN's headers from its wheel)
# and the Fashion-MNIST files into BUILD_DIR/fashion-mnist (about 30 MB);
# then deletes what the run does not need (object files, static libraries), so that carrying
# BUILD_DIR is enough and stays well under the 64 MiB carry limit. ctest still works there.
#
# DATA_DIR defaults to $AMPBENCH_DATA, BUILD/fashion-mnist, /usr/share/datasets/fashion-mnist; with
# no data the accuracy runs are skipped and the throughput runs use synthetic IDX files.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

die() { echo "device-check: $*" >&2; exit 1; }
# The one configuration for --prepare and for a rebuild on the GPU machine. No MPI: the GPU
# machine has one GPU and no Open MPI, and the carried binary must not need libmpi to start
# (NCCL and the CUDA libraries are loaded at run time, kernels/cuda_libs.c).
CMAKE_FLAGS=(-DAMPBENCH_CUDA=ON -DAMPBENCH_NATIVE=OFF -DAMPBENCH_CUEMU=OFF -DAMPBENCH_MPI=OFF
             -DCMAKE_BUILD_TYPE=Release)

# ---- --prepare (build machine) ------------------------------------------------------------------
if [ "${1:-}" = "--prepare" ]; then
  B=${2:-build-cuda}
  # Afresh (when BUILD_DIR is a build folder of this tree): nothing from an earlier configuration
  # (-march=native objects, CPU emulation targets) may be carried.
  if [ -f "$B/CMakeCache.txt" ] && [ "$(cd "$B" && pwd)" != "$ROOT" ] &&
     grep -Fqx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$B/CMakeCache.txt"; then
    rm -rf "$B"
  fi
  cmake -S . -B "$B" "${CMAKE_FLAGS[@]}" >/dev/null || die "configure failed"
  cmake --build "$B" -j "$(nproc)" || die "build failed"
  if [ ! -x "$B/ampbench" ] || [ ! -x "$B/tests/test_backend_ops" ]; then
    die "the build made no $B/ampbench or $B/tests/test_backend_ops (is the CUDA backend configured?)"
  fi
  # Every library outside glibc/libstdc++ and the CUDA stack (cJSON, GSL, zlib, libgomp): used
  # on the GPU machine only when its own are missing.
  mkdir -p "$B/runtime-libs"
  ldd "$B/ampbench" "$B/tests/test_backend_ops" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
    while read -r name path; do
      case "$name" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libstdc++*|libgcc_s*|ld-linux*) ;;
        libcuda*|libcublas*|libcudnn*|libnvrtc*|libnvJitLink*) ;;  # (libcuda* takes libcudart too)
        *) cp -L "$path" "$B/runtime-libs/" && echo "bundled $path" ;;
      esac
    done
  # A rebuild on the GPU machine that needs no apt: the development files of cJSON, GSL and zlib
  # (the headers and the libraries this build linked, under their link names and sonames) into
  # BUILD_DIR/deps, a prefix the rebuild hands CMake (CMAKE_PREFIX_PATH).
  mkdir -p "$B/deps/include" "$B/deps/lib"
  cache() { sed -n "s/^$1:[A-Z]*=//p" "$B/CMakeCache.txt"; }
  for h in "$(cache CJSON_INCLUDE_DIR)/cjson" "$(cache GSL_INCLUDE_DIR)/gsl" \
           "$(cache ZLIB_INCLUDE_DIR)/zlib.h" "$(cache ZLIB_INCLUDE_DIR)/zconf.h"; do
    cp -rL "$h" "$B/deps/include/" || die "cannot bundle $h"
  done
  for l in "$(cache CJSON_LIBRARY)" "$(cache GSL_LIBRARY)" "$(cache GSL_CBLAS_LIBRARY)" "$(cache ZLIB_LIBRARY_RELEASE)"; do
    soname=$(readelf -d "$l" | awk -F'[][]' '/SONAME/ { print $2 }')
    [ -n "$soname" ] || die "cannot bundle $l (no SONAME)"
    # (The same file as runtime-libs/ holds, linked, not copied: the carry limit.)
    if [ -e "$B/runtime-libs/$soname" ]; then ln -sf "../../runtime-libs/$soname" "$B/deps/lib/$soname"
    else cp -L "$l" "$B/deps/lib/$soname" || die "cannot bundle $l"; fi
    ln -sf "$soname" "$B/deps/lib/${l##*/}" || die "cannot bundle $l"
  done
  echo "bundled the cJSON, GSL and zlib development files into $B/deps"
  src=${AMPBENCH_DATA:-/usr/share/datasets/fashion-mnist}
  if [ -d "$src" ]; then
    mkdir -p "$B/fashion-mnist"
    cp -L "$src"/*-ubyte* "$B/fashion-mnist/" && echo "bundled the dataset from $src"
  else
    echo "no dataset at $src: not bundled"
  fi
  # What the run does not need: object files, static libraries, CMake's compiler-identification
  # scratch (5 MB of CUDA binaries each) and micro_ops. ctest needs only CMakeCache.txt, the
  # CTestTestfile.cmake files and the test binaries.
  find "$B" -type d -path '*/CMakeFiles/*.dir' -prune -exec rm -rf {} +
  rm -rf "$B"/*.a "$B/Testing" "$B/micro_ops" "$B/CMakeFiles/CheckCUDA" "$B"/CMakeFiles/[0-9]*/CompilerId* \
         "$B"/CMakeFiles/[0-9]*/CMakeDetermineCompilerABI_*.bin
  kib=$(du -sk "$B" | cut -f1)
  echo "$B: $((kib / 1024)) MiB to carry (the carry limit is 64 MiB, the working tree included)"
  [ "$kib" -le $((56 * 1024)) ] || echo "device-check: warning: $B is close to the carry limit" >&2
  exit 0
fi

PROBE_ONLY=""
if [ "${1:-}" = "--probe" ]; then
  PROBE_ONLY=1
  shift
fi
[ $# -ge 1 ] || die "usage: scripts/device-check.sh [--probe] OUT_DIR [DATA_DIR] | --prepare [BUILD_DIR]"
mkdir -p "$1" || die "cannot create $1"
OUT=$(cd "$1" && pwd)
exec > >(tee "$OUT/device-check.log") 2>&1
START=$(date +%s)
# Seconds for everything (8 minutes, a margin kept). The probe takes at most 30 s; the step maxima
# below add up to 420 s (gpu tests 130, tp_b32_amp_graph 50, torch_b32_amp 50, tp_c64_b1024 40,
# tp_b32_amp_nograph 40, train 70, the two other torch baselines 20 each), in that order, so even
# steps that all run to their limits fit, with about 20 s for the environment (each command
# under its own timeout) and the summary. A rebuild here (configure 60, build 180) skips train,
# and the last steps get what is left.
BUDGET=${DEVICE_CHECK_BUDGET:-470}
elapsed() { echo $(( $(date +%s) - START )); }
# A step's time limit: its own maximum, or what is left of the budget.
limit() { local left=$(( BUDGET - $(elapsed) )); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }
declare -A STATUS
note() { echo "== [$(elapsed)s] $*"; }
# step NAME MAX_SECONDS command...: runs with a time limit, output in OUT/NAME.log.
step() {
  local name=$1 max=$2; shift 2
  local t; t=$(limit "$max")
  if [ "$t" -lt 10 ]; then
    note "$name: skipped, the time budget is spent"
    STATUS[$name]="skipped (time budget)"
    return 124
  fi
  note "$name (limit ${t}s): $*"
  timeout --kill-after=10 "$t" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  STATUS[$name]=$rc
  tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
  note "$name: exit $rc"
  return $rc
}
# stop REASON: the check cannot go on; writes the summary with the reason and exits 2.
STOPPED=""
stop() {
  STOPPED=$*
  note "stopped: $STOPPED"
  summary
  exit 2
}

# ---- summary (at the end, or from stop) -----------------------------------------------------------
json_str() { sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1" | tr -d '\n'; }
status_json() { local first=1; printf '{'; for k in "${!STATUS[@]}"; do
  [ $first = 1 ] || printf ', '; first=0; printf '"%s": "%s"' "$k" "${STATUS[$k]}"; done; printf '}'; }
summary() {
  status_json >"$OUT/status.json"
  if [ -n "${PY:-}" ]; then
    x 60 "$PY" - "$OUT" "${BUILD_KIND:-}" "${DATA:-}" "${SYNTH:-0}" "$(elapsed)" "${STOPPED:-}" "${DRIVER:-}" \
      "${COMPAT:-}" "${MISSING:-}" "${REBUILD_WHY:-}" <<'PYEOF'
import csv, json, os, re, sys
out, build_kind, data, synth, elapsed, stopped, driver, compat, missing, rebuild_why = sys.argv[1:11]
def epochs(run):
    p = os.path.join(out, run, "epochs.csv")
    if not os.path.exists(p):
        return {}
    rows = {}
    for r in csv.DictReader(open(p)):
        rows.setdefault(r["mode"], []).append(r)
    return rows
def last(run, mode, col):
    rows = epochs(run).get(mode)
    try:
        return float(rows[-1][col])
    except Exception:
        return None
def torch_json(name):
    p = os.path.join(out, name + ".log")
    if not os.path.exists(p):
        return None
    for line in open(p):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None
def tests(name):
    p = os.path.join(out, name + ".log")
    if not os.path.exists(p):
        return None
    text = open(p, errors="replace").read()
    m = re.findall(r"(\d+) passed, (\d+) failed", text)
    m += re.findall(r"(\d+% tests passed, \d+ tests? failed out of \d+)", text)
    m += ["skipped: " + t for t in re.findall(r"\d+ - (\S+) \(Skipped\)", text)]
    fails = [l.strip() for l in text.splitlines() if "FAIL" in l][:40]
    return {"passed_failed": m, "fail_lines": fails}
def ratio(a, b):
    return round(a / b, 3) if a and b else None
probe_path = os.path.join(out, "probe.json")
s = {"mode": "full", "elapsed_s": int(elapsed), "stopped": stopped or None,
     "probe": json.load(open(probe_path)) if os.path.exists(probe_path) else None, "build": build_kind,
     "rebuild_reason": rebuild_why or None, "missing_libraries": missing.split() or None,
     "driver": driver or None, "cuda_compat": compat or None, "data": data,
     "synthetic_data": synth == "1", "status": json.load(open(os.path.join(out, "status.json")))}
info = os.path.join(out, "ampbench-info.txt")
s["ampbench_info"] = open(info).read().splitlines() if os.path.exists(info) else None
for t in ("gpu_tests", "test_backend_ops", "test_gpu_train"):
    r = tests(t)
    if r is not None:
        s.setdefault("tests", {})[t] = r
tr = epochs("train")
s["train"] = {m: {"test_acc": float(r[-1]["test_acc"]), "test_loss": float(r[-1]["test_loss"]),
                  "samples_per_s": float(r[-1]["samples_per_s"]),
                  "skipped_steps": int(r[-1]["skipped_steps"]),
                  "grad_underflow_frac": float(r[-1]["grad_underflow_frac"])} for m, r in tr.items()}
g = last("tp_b32_amp_graph", "amp", "samples_per_s")
ng = last("tp_b32_amp_nograph", "amp", "samples_per_s")
t32 = torch_json("torch_b32_amp")
f32 = last("tp_c64_b1024", "fp32", "samples_per_s")
a32 = last("tp_c64_b1024", "amp", "samples_per_s")
fm = last("tp_c64_b1024", "fp32", "peak_bytes")
am = last("tp_c64_b1024", "amp", "peak_bytes")
s["throughput"] = {
    "b32_amp_graph_samples_per_s": g, "b32_amp_nograph_samples_per_s": ng,
    "b32_fp32_graph_samples_per_s": last("tp_b32_amp_graph", "fp32", "samples_per_s"),
    "torch_eager_b32_amp": t32, "torch_eager_b32_fp32": torch_json("torch_b32_fp32"),
    "torch_eager_c64_b1024_amp": torch_json("torch_c64_b1024_amp"),
    "c64_b1024_fp32_samples_per_s": f32, "c64_b1024_amp_samples_per_s": a32,
    "c64_b1024_fp32_peak_bytes": fm, "c64_b1024_amp_peak_bytes": am}
s["targets"] = {
    "graph_vs_torch_eager_amp (>= 10)": ratio(g, t32 and t32.get("samples_per_s")),
    "graph_vs_torch_eager_amp_gpu_resident": ratio(g, t32 and t32.get("samples_per_s_resident")),
    "graph_vs_nograph": ratio(g, ng),
    "amp_vs_fp32_speed_c64_b1024 (>= 2)": ratio(a32, f32),
    "amp_vs_fp32_peak_memory_c64_b1024 (<= 0.6)": ratio(am, fm)}
for run in ("tp_c64_b1024", "tp_b32_amp_graph", "train"):
    p = os.path.join(out, run, "run.json")
    if os.path.exists(p):
        try:
            j = json.load(open(p))
            s.setdefault("run_json_backend", {})[run] = [m.get("backend") for m in j.get("modes", [])
                                                          if isinstance(m, dict)]
        except Exception as e:
            s.setdefault("run_json_backend", {})[run] = "unreadable: %s" % e
json.dump(s, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(json.dumps({"stopped": s["stopped"], "targets": s["targets"], "status": s["status"],
                  "tests": {k: v["passed_failed"] for k, v in s.get("tests", {}).items()}}, indent=2))
PYEOF
  else
    { printf '{"mode": "full", "elapsed_s": %s, "stopped": "%s", "build": "%s", "probe": ' "$(elapsed)" \
        "$(json_str "${STOPPED:-}")" "$(json_str "${BUILD_KIND:-}")"
      cat "$OUT/probe.json" 2>/dev/null || printf 'null'
      printf ', "status": '; cat "$OUT/status.json"; printf '}\n'
    } >"$OUT/summary.json"
    cat "$OUT/summary.json"
  fi
}

# The PyTorch steps run with the LD_LIBRARY_PATH this script started with (see torch_step).
ORIG_LD_SET=${LD_LIBRARY_PATH+set}
ORIG_LD=${LD_LIBRARY_PATH:-}
# x SECONDS command...: every external command runs under a time limit (a driver that hangs, a
# library that never finishes loading) so that no one command can take the whole check.
x() { local s=$1; shift; timeout --kill-after=5 "$s" "$@"; }
PY=$(command -v python3 || command -v python || true)

# ---- the probe: at most 30 seconds, first ---------------------------------------------------------
# Four stages, each pass, fail or skip with a reason, into OUT/probe.json (and OUT/summary.json under
# --probe): driver (nvidia-smi), libraries (the CUDA, cuBLAS, cuDNN and NVRTC sonames found, and the
# LD_LIBRARY_PATH made of their folders), ldd (the carried binary: the path of every library it
# really loads, or what is missing, or the glibc it needs) and smoke (`ampbench info --smoke`: the
# handles, one tiny conv per dtype, one GEMM per compute type, the describe JSON; cuDNN's and
# cuBLAS's debug logs into OUT). Without a GPU the stages that need one are skipped, "no device".
PROBE_BUDGET=30
PROBE_START=$(date +%s)
PROBE_STAGES=(driver libraries ldd smoke)
declare -A PROBE_RESULT PROBE_REASON
probe_limit() { # MAX: a stage's time limit within what is left of the probe's 30 s (at least 2)
  local left=$(( PROBE_BUDGET - ($(date +%s) - PROBE_START) ))
  [ "$left" -lt 2 ] && left=2
  [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
probe_stage() { # NAME pass|fail|skip REASON
  PROBE_RESULT[$1]=$2
  PROBE_REASON[$1]=$3
  note "probe $1: $2${3:+ ($3)}"
}
timed_out() { [ "$1" = 124 ] || [ "$1" = 137 ]; }
# A glibc or libstdc++ too old for a binary: the loader's "version `GLIBC_2.38' not found".
glibc_error() { grep -m 1 -oE "version \`(GLIBC|GLIBCXX|CXXABI)_[0-9.]+' not found( \(required by [^)]*\))?" "$1"; }
glibc_here() { x 5 ldd --version 2>/dev/null | head -n 1 | grep -oE '[0-9]+\.[0-9]+$'; }
mkdir -p "$OUT/probe"

# driver
DRIVER="" GPU_NAME="" NO_DEVICE=""
if ! command -v nvidia-smi >/dev/null; then
  NO_DEVICE="nvidia-smi not found"
  probe_stage driver skip "no device: $NO_DEVICE"
else
  x "$(probe_limit 10)" nvidia-smi --query-gpu=driver_version,name --format=csv,noheader \
    >"$OUT/probe/nvidia-smi.txt" 2>&1
  rc=$?
  line=$(head -n 1 "$OUT/probe/nvidia-smi.txt")
  if [ "$rc" = 0 ] && [ -n "$line" ]; then
    DRIVER=${line%%,*}
    GPU_NAME=${line#*, }
    old=""
    [ "${DRIVER%%.*}" -lt 580 ] 2>/dev/null && old="; older than 580: the CUDA 13 runtime needs cuda-compat"
    probe_stage driver pass "driver $DRIVER, $GPU_NAME$old"
  elif timed_out "$rc"; then
    NO_DEVICE="nvidia-smi did not answer"
    probe_stage driver fail "nvidia-smi did not answer within its time limit"
  else
    NO_DEVICE="nvidia-smi exits $rc"
    probe_stage driver fail "nvidia-smi exits $rc: $(tr -s '\n' ' ' <"$OUT/probe/nvidia-smi.txt" | cut -c 1-200)"
  fi
fi

# libraries
# The nvcc a rebuild would use: $CUDACXX, the one on PATH, or the newest /usr/local/cuda*/bin/nvcc.
# DEVICE_CHECK_CUDA_ROOTS (default: $CUDA_HOME $CUDA_PATH, nvcc's, /usr/local/cuda /usr/local/cuda-*)
# names the CUDA installs to search; empty hides them all (the test of a wheel-only machine).
NVCC=${CUDACXX:-$(command -v nvcc || true)}
if [ -z "$NVCC" ] && [ -z "${DEVICE_CHECK_CUDA_ROOTS+set}" ]; then
  for n in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do [ -x "$n" ] && NVCC=$n; done
fi
[ -n "$NVCC" ] && NVCC=$(readlink -f "$NVCC")
nvcc_home=""
[ -n "$NVCC" ] && nvcc_home=$(dirname "$(dirname "$NVCC")")
# Where a library may be: the CUDA installs, the nvidia-* wheels (nvidia/<pkg>/lib, nvidia/cu13/lib)
# and torch/lib of every site-packages, and the system folders.
cuda_roots=()
if [ -n "${DEVICE_CHECK_CUDA_ROOTS+set}" ]; then
  read -ra cuda_roots <<<"$DEVICE_CHECK_CUDA_ROOTS"
else
  cuda_roots=("${CUDA_HOME:-}" "${CUDA_PATH:-}" "$nvcc_home" /usr/local/cuda /usr/local/cuda-*)
fi
# Each root once, in order, without the unset ones (summary.json lists them).
roots=()
for d in "${cuda_roots[@]}"; do
  [ -n "$d" ] && [[ " ${roots[*]} " != *" $d "* ]] && roots+=("$d")
done
cuda_roots=("${roots[@]}")
candidates=()
for d in "${cuda_roots[@]}"; do
  [ -n "$d" ] && candidates+=("$d/lib64" "$d/lib" "$d/targets/x86_64-linux/lib")
done
if [ -n "$PY" ]; then
  while IFS= read -r sp; do
    [ -d "$sp" ] || continue
    for d in "$sp"/nvidia/*/lib "$sp"/torch/lib; do [ -d "$d" ] && candidates+=("$d"); done
  done < <(x "$(probe_limit 10)" "$PY" -c 'import site, sys
for p in site.getsitepackages() + [site.getusersitepackages()] + sys.path: print(p)' 2>/dev/null | sort -u)
fi
system_dirs=(/usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64 /usr/lib /usr/local/lib)
candidates+=("${system_dirs[@]}")
is_system_dir() { local s; for s in "${system_dirs[@]}"; do [ "$1" = "$s" ] && return 0; done; return 1; }
libpath=""
# Only the folders of the CUDA stack's sonames, never a system folder (the loader searches those
# anyway, after LD_LIBRARY_PATH): a folder such as torch/lib also holds a libgomp or a libstdc++
# that must not shadow the system's.
add_dir() { is_system_dir "$1" && return; case ":$libpath:" in *":$1:"*) ;; *) libpath=${libpath:+$libpath:}$1 ;; esac; }
find_lib() { # soname -> the first candidate folder that holds it
  for d in "${candidates[@]}"; do
    [ -e "$d/$1" ] && { echo "$d"; return 0; }
  done
  return 1
}
other_versions() { # soname -> the versions of that library in the candidate folders
  local d f
  for d in "${candidates[@]}"; do
    for f in "$d/${1%%.so*}".so.*; do [ -e "$f" ] && echo "$(readlink -f "$d")/${f##*/}"; done
  done | sort -u | head -n 8 | tr '\n' ' '
}
# The CUDA major cuDNN was built for (its runtime-compiled engines dlopen libnvrtc.so.<major>): the
# wheel's name (nvidia_cudnn_cu12-*.dist-info), else the NVRTC soname in its precompiled engines.
cudnn_cuda_major() { # cuDNN's lib folder
  local d=$1 m
  m=$(ls -d "$d"/../../../nvidia_cudnn_cu*.dist-info 2>/dev/null | head -n 1 | grep -oE 'cu[0-9]+' | tail -n 1)
  [ -n "$m" ] && { echo "${m#cu}"; return; }
  [ -e "$d/libcudnn_engines_precompiled.so.9" ] &&
    x "$(probe_limit 10)" grep -aoE -m 1 'libnvrtc\.so\.[0-9]+' "$d/libcudnn_engines_precompiled.so.9" |
    head -n 1 | grep -oE '[0-9]+$'
}
BUILD_KIND=""
pick_build() {
  for b in "${AMPBENCH_BUILD:-}" "$ROOT/build-cuda"; do
    [ -n "$b" ] && [ -x "$b/ampbench" ] && [ -x "$b/tests/test_backend_ops" ] && { echo "$b"; return 0; }
  done
  return 1
}
BUILD=$(pick_build || true)
CARRIED=$BUILD
# The carried binary links the CUDA runtime statically and loads cuBLAS at run time by soname,
# libcublas.so.13 else libcublas.so.12, with the libcublasLt of the same major
# (kernels/cuda_libs.c): the first major whose two libraries the candidate folders hold.
CUBLAS_MAJOR=""
for m in 13 12; do
  find_lib "libcublas.so.$m" >/dev/null && find_lib "libcublasLt.so.$m" >/dev/null && { CUBLAS_MAJOR=$m; break; }
done
needed=(libcublas.so.${CUBLAS_MAJOR:-13} libcublasLt.so.${CUBLAS_MAJOR:-13} libcudnn.so.9
        libcudnn_cnn.so.9 libcudnn_ops.so.9 libcudnn_graph.so.9 libcudnn_engines_precompiled.so.9
        libcudnn_engines_runtime_compiled.so.9 libcudnn_heuristic.so.9)
# The CUDA stack the carried binary itself names (a CUDA 12 build: libcudart.so.12, ...).
if [ -n "$BUILD" ]; then
  while read -r lib; do
    case $lib in libcu*|libnvrtc*|libnvJitLink*) needed+=("$lib") ;; esac
  done < <(x "$(probe_limit 5)" readelf -d "$BUILD/ampbench" 2>/dev/null | awk -F'[][]' '/NEEDED/ { print $2 }')
fi
cudnn_dir=$(find_lib libcudnn.so.9 || true)
NVRTC_MAJOR=""
[ -n "$cudnn_dir" ] && NVRTC_MAJOR=$(cudnn_cuda_major "$cudnn_dir")
needed+=("libnvrtc.so.${NVRTC_MAJOR:-13}")
: >"$OUT/libs.txt"
declare -A LIB_DIR
lib_missing=()
for lib in $(printf '%s\n' "${needed[@]}" | sort -u); do
  if d=$(find_lib "$lib"); then add_dir "$d"; LIB_DIR[$lib]=$d; echo "$lib: $d" >>"$OUT/libs.txt"
  else lib_missing+=("$lib"); echo "$lib: (not in the candidate folders; system default)" >>"$OUT/libs.txt"; fi
done
export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The libraries --prepare bundled, only when this machine lacks some of its own.
if [ -n "$BUILD" ] && [ -d "$BUILD/runtime-libs" ] && x "$(probe_limit 10)" ldd "$BUILD/ampbench" | grep -q "not found"; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$BUILD/runtime-libs
  echo "bundled runtime libraries added: $(cd "$BUILD/runtime-libs" && printf '%s ' *)" >>"$OUT/libs.txt"
fi
cat "$OUT/libs.txt"
note "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvrtc_note="cuDNN built for CUDA ${NVRTC_MAJOR:-? (assumed 13)}; cuBLAS ${CUBLAS_MAJOR:-none: no libcublas.so.13 or libcublas.so.12 (with its libcublasLt)} (loaded at run time)"
if [ ${#lib_missing[@]} = 0 ]; then
  probe_stage libraries pass "${#LIB_DIR[@]} found; $nvrtc_note"
else
  probe_stage libraries fail "not found in the candidate folders: ${lib_missing[*]}; $nvrtc_note"
fi

# ldd
# missing_libs BUILD_DIR [SECONDS]: the libraries its binaries need and cannot find (space-separated).
missing_libs() {
  x "${2:-10}" ldd "$1/ampbench" "$1/tests/test_backend_ops" >"$OUT/ldd-ampbench.txt" 2>&1
  awk '/not found/ { print $1 }' "$OUT/ldd-ampbench.txt" | sort -u | tr '\n' ' ' | sed 's/ $//'
}
REBUILD_WHY=""
MISSING=""
GLIBC_ERR=""
if [ -z "$BUILD" ]; then
  REBUILD_WHY="no carried build (build-cuda/ or \$AMPBENCH_BUILD)"
  probe_stage ldd skip "$REBUILD_WHY"
else
  x "$(probe_limit 10)" ldd "$BUILD/ampbench" >"$OUT/probe/ldd.txt" 2>&1
  rc=$?
  MISSING=$(missing_libs "$BUILD" "$(probe_limit 10)")
  GLIBC_ERR=$(glibc_error "$OUT/probe/ldd.txt")
  if [ -n "$GLIBC_ERR" ]; then
    REBUILD_WHY="the carried build needs a newer C/C++ runtime than this machine's (glibc $(glibc_here)): $GLIBC_ERR"
    probe_stage ldd fail "$REBUILD_WHY"
  elif [ -n "$MISSING" ]; then
    REBUILD_WHY="the carried build misses $MISSING"
    for l in $MISSING; do
      echo "   $l: other versions in the candidate folders: $(other_versions "$l")"
    done | tee -a "$OUT/libs.txt"
    probe_stage ldd fail "$REBUILD_WHY"
  elif [ "$rc" != 0 ]; then
    probe_stage ldd fail "ldd exits $rc: $(tail -n 1 "$OUT/probe/ldd.txt" | cut -c 1-200)"
  else
    probe_stage ldd pass "$(grep -c '=> /' "$OUT/probe/ldd.txt") libraries resolved (paths in probe.json)"
  fi
fi

# smoke
if [ -z "$BUILD" ]; then
  probe_stage smoke skip "no carried build"
elif [ "${PROBE_RESULT[ldd]}" = fail ]; then
  probe_stage smoke skip "the carried build cannot load (see the ldd stage)"
else
  CUDNN_LOGLEVEL_DBG=3 CUDNN_LOGDEST_DBG="$OUT/cudnn-smoke.log" CUBLAS_LOGINFO_DBG=1 \
    CUBLAS_LOGDEST_DBG="$OUT/cublas-smoke.log" \
    x "$(probe_limit 20)" "$BUILD/ampbench" info --smoke >"$OUT/probe/smoke.txt" 2>&1
  rc=$?
  GLIBC_ERR=$(glibc_error "$OUT/probe/smoke.txt")
  cuda_lines=$(grep -c '^smoke cuda: .*: ok' "$OUT/probe/smoke.txt")
  if timed_out "$rc"; then
    probe_stage smoke fail "ampbench info --smoke did not finish within its time limit"
  elif [ -n "$GLIBC_ERR" ]; then
    REBUILD_WHY="the carried build needs a newer C/C++ runtime than this machine's (glibc $(glibc_here)): $GLIBC_ERR"
    probe_stage smoke fail "$REBUILD_WHY"
  elif [ "$rc" != 0 ]; then
    probe_stage smoke fail "exit $rc: $(grep -m 1 -E 'FAIL|ampbench:|error' "$OUT/probe/smoke.txt" | cut -c 1-240)"
  elif grep -q '^smoke cuda: skipped' "$OUT/probe/smoke.txt"; then
    probe_stage smoke skip "no device: $(sed -n 's/^smoke cuda: skipped (no usable device: \(.*\))$/\1/p' "$OUT/probe/smoke.txt" | head -n 1)"
  elif [ "$cuda_lines" = 0 ]; then
    probe_stage smoke fail "no CUDA backend in the carried build (no 'smoke cuda' lines)"
  else
    probe_stage smoke pass "$cuda_lines CUDA cases exact"
  fi
fi

# probe.json: the stages, then what they found.
json_list() { # items...: a JSON array of strings
  local first=1 i
  printf '['
  for i in "$@"; do [ $first = 1 ] || printf ', '; first=0; printf '"%s"' "$(json_str "$i")"; done
  printf ']'
}
write_probe() {
  {
    printf '{\n  "mode": "%s",\n  "elapsed_s": %s,\n  "stages": {' "$1" "$(( $(date +%s) - PROBE_START ))"
    local first=1 s
    for s in "${PROBE_STAGES[@]}"; do
      [ $first = 1 ] || printf ','
      first=0
      printf '\n    "%s": {"result": "%s", "reason": "%s"}' "$s" "${PROBE_RESULT[$s]}" "$(json_str "${PROBE_REASON[$s]}")"
    done
    printf '\n  },\n  "driver": "%s",\n  "gpu": "%s",\n' "$(json_str "$DRIVER")" "$(json_str "$GPU_NAME")"
    printf '  "carried_build": "%s",\n  "ld_library_path": "%s",\n' "$(json_str "$BUILD")" "$(json_str "$LD_LIBRARY_PATH")"
    printf '  "cuda_roots": %s,\n  "cudnn_cuda_major": "%s",\n' "$(json_list "${cuda_roots[@]}")" "$NVRTC_MAJOR"
    printf '  "cublas_major": "%s",\n' "$CUBLAS_MAJOR"
    printf '  "libraries": {'
    first=1
    local l
    for l in $(printf '%s\n' "${needed[@]}" | sort -u); do
      [ $first = 1 ] || printf ','
      first=0
      if [ -n "${LIB_DIR[$l]:-}" ]; then printf '\n    "%s": "%s"' "$l" "$(json_str "${LIB_DIR[$l]}/$l")"
      else printf '\n    "%s": null' "$l"; fi
    done
    printf '\n  },\n  "ldd": ['
    first=1
    local name arrow path rest
    if [ -f "$OUT/probe/ldd.txt" ]; then
      while read -r name arrow path rest; do
        [ "$arrow" = "=>" ] || continue
        [ $first = 1 ] || printf ','
        first=0
        if [ "$path" = not ]; then printf '\n    {"soname": "%s", "path": null}' "$(json_str "$name")"
        else printf '\n    {"soname": "%s", "path": "%s", "file": "%s"}' "$(json_str "$name")" \
               "$(json_str "$path")" "$(json_str "$(readlink -f "$path")")"; fi
      done <"$OUT/probe/ldd.txt"
    fi
    printf '\n  ],\n  "smoke": '
    local lines=()
    [ -f "$OUT/probe/smoke.txt" ] && mapfile -t lines < <(grep '^smoke ' "$OUT/probe/smoke.txt")
    json_list "${lines[@]}"
    printf '\n}\n'
  } >"$OUT/probe.json"
}
write_probe "$([ -n "$PROBE_ONLY" ] && echo probe || echo full)"
note "probe: $(for s in "${PROBE_STAGES[@]}"; do printf '%s %s, ' "$s" "${PROBE_RESULT[$s]}"; done | sed 's/, $//') (OUT/probe.json)"
if [ -n "${PROBE_ONLY:-}" ]; then
  cp "$OUT/probe.json" "$OUT/summary.json"
  for s in "${PROBE_STAGES[@]}"; do [ "${PROBE_RESULT[$s]}" = fail ] && exit 1; done
  exit 0
fi

# ---- environment ----------------------------------------------------------------------------------
note "collecting the environment"
mkdir -p "$OUT/env"
{ x 15 nvidia-smi || echo "nvidia-smi failed"; } >"$OUT/env/nvidia-smi.txt" 2>&1
{ x 15 nvidia-smi -q || true; } >"$OUT/env/nvidia-smi-q.txt" 2>&1
{ echo "${NVCC:-no nvcc}"; [ -n "$NVCC" ] && x 10 "$NVCC" --version; } >"$OUT/env/nvcc.txt" 2>&1
{ uname -a; cat /etc/os-release 2>/dev/null; nproc; free -g; x 5 ldd --version | head -n 1; } >"$OUT/env/system.txt" 2>&1
{ x 5 cmake --version; x 5 ctest --version; x 5 gcc --version; } >"$OUT/env/tools.txt" 2>&1
env | grep -E '^(CUDA|LD_LIBRARY|PATH|NVIDIA|AMPBENCH|CUDNN)' >"$OUT/env/vars.txt" 2>&1
if [ -n "$PY" ]; then
  x 30 "$PY" - >"$OUT/env/python.txt" 2>&1 <<'PYEOF'
import sys
print(sys.version)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
    print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
except Exception as e:
    print("torch unavailable:", e)
PYEOF
fi
head -n 20 "$OUT/env/nvidia-smi.txt"
note "NVIDIA driver: ${DRIVER:-unknown (nvidia-smi failed)}"
note "nvcc: ${NVCC:-none}"

# The carried build's own `ampbench info` (the probe's smoke may fail for reasons a rebuild does
# not mend: a backend that refuses a case).
if [ -z "$REBUILD_WHY" ]; then
  x 30 "$BUILD/ampbench" info >"$OUT/ampbench-info-carried.txt" 2>&1
  rc=$?
  GLIBC_ERR=$(glibc_error "$OUT/ampbench-info-carried.txt")
  if [ -n "$GLIBC_ERR" ]; then
    REBUILD_WHY="the carried build needs a newer C/C++ runtime than this machine's (glibc $(glibc_here)): $GLIBC_ERR"
  elif [ "$rc" != 0 ]; then
    REBUILD_WHY="'ampbench info' of the carried build exits $rc$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")"
  fi
fi
# cuDNN's warnings and errors of everything below (the probe's smoke logged at info level).
export CUDNN_LOGLEVEL_DBG=2 CUDNN_LOGDEST_DBG="$OUT/cudnn.log"

# What a rebuild needs that this machine lacks (CMakeLists.txt: cmake, a C and a C++ compiler, nvcc,
# cuDNN 9's headers and library, and the development files of zlib, GSL and cJSON), looked for in
# the prefixes CMake searches: $CMAKE_PREFIX_PATH, the parents of PATH's bin folders, $CONDA_PREFIX,
# /usr/local, /usr.
prefixes=()
IFS=: read -ra prefixes <<<"${CMAKE_PREFIX_PATH:-}"
IFS=: read -ra pathdirs <<<"$PATH"
for d in "${pathdirs[@]}"; do case $d in */bin|*/sbin) prefixes+=("${d%/*}") ;; esac; done
# The development files --prepare bundled (BUILD/deps: cJSON, GSL and zlib headers and libraries).
DEPS=""
[ -n "$CARRIED" ] && [ -d "$CARRIED/deps/include" ] && DEPS=$CARRIED/deps
prefixes+=("${CONDA_PREFIX:-}" ${DEPS:+"$DEPS"} /usr/local /usr)
have_header() { # HEADER: under one of the prefixes
  local p
  for p in "${prefixes[@]}"; do
    [ -n "$p" ] && { [ -e "$p/include/$1" ] || [ -e "$p/include/x86_64-linux-gnu/$1" ]; } && return 0
  done
  return 1
}
have_dev() { # HEADER LIBNAME: the header and a linkable lib<LIBNAME>.so or .a under the prefixes
  local p l
  have_header "$1" || return 1
  for p in "${prefixes[@]}"; do
    for l in lib lib64 lib/x86_64-linux-gnu; do
      [ -n "$p" ] && { [ -e "$p/$l/lib$2.so" ] || [ -e "$p/$l/lib$2.a" ]; } && return 0
    done
  done
  return 1
}
# cuDNN's headers may only be in the wheel (nvidia/cudnn/include): then it is CUDNN_ROOT.
cudnn_lib=$(find_lib libcudnn.so.9 || true)
cudnn_root=""
[ -n "$cudnn_lib" ] && [ -e "$cudnn_lib/../include/cudnn_version.h" ] && cudnn_root=$(cd "$cudnn_lib/.." && pwd)
rebuild_lacks() { # prints what is missing, "; "-separated (nothing: a rebuild can be tried)
  local lacks=()
  command -v cmake >/dev/null || lacks+=(cmake)
  command -v cc >/dev/null || command -v gcc >/dev/null || lacks+=("a C compiler")
  command -v c++ >/dev/null || command -v g++ >/dev/null || lacks+=("a C++ compiler")
  [ -n "$NVCC" ] || lacks+=(nvcc)
  have_dev zlib.h z || lacks+=("zlib dev files (zlib.h, libz.so)")
  { have_dev gsl/gsl_sf.h gsl && have_dev gsl/gsl_cblas.h gslcblas; } ||
    lacks+=("GSL dev files (gsl/gsl_sf.h, libgsl.so, libgslcblas.so)")
  have_dev cjson/cJSON.h cjson || lacks+=("cJSON dev files (cjson/cJSON.h, libcjson.so)")
  [ -n "$cudnn_lib" ] || lacks+=("cuDNN 9 (libcudnn.so.9)")
  [ -n "$cudnn_root" ] || [ -e "$nvcc_home/include/cudnn_version.h" ] || have_header cudnn_version.h ||
    lacks+=("cuDNN 9 headers (cudnn_version.h)")
  [ ${#lacks[@]} = 0 ] || printf '%s; ' "${lacks[@]}" | sed 's/; $//'
}

REBUILT=0
if [ -n "$REBUILD_WHY" ]; then
  note "rebuilding here: $REBUILD_WHY"
  BUILD_KIND=${CARRIED:+"carried ($CARRIED), unusable; "}"not rebuilt"
  lacking=$(rebuild_lacks)
  [ -z "$lacking" ] || stop "cannot rebuild here ($REBUILD_WHY): this machine lacks $lacking"
  BUILD="$ROOT/build-device"
  BUILD_KIND="built here ($REBUILD_WHY)"
  REBUILT=1
  cmake_error() { # the first CMake error of a log, on one line
    grep -m 1 -A 4 'CMake Error' "$1" 2>/dev/null | tr -s ' \n' ' ' | cut -c 1-300
  }
  step build_configure 60 cmake -S "$ROOT" -B "$BUILD" "${CMAKE_FLAGS[@]}" -DCMAKE_CUDA_COMPILER="$NVCC" \
       ${DEPS:+-DCMAKE_PREFIX_PATH=$DEPS} \
       ${cudnn_root:+-DCUDNN_ROOT=$cudnn_root} ||
    stop "rebuild: configure failed ($(cmake_error "$OUT/build_configure.log"); see build_configure.log); $REBUILD_WHY"
  step build 180 cmake --build "$BUILD" -j "$(nproc)"
  rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    stop "rebuild: the build ran out of time (see build.log); $REBUILD_WHY"
  elif [ "$rc" != 0 ]; then
    stop "rebuild: the build failed ($(grep -m 1 -E 'error:|Error [0-9]' "$OUT/build.log" | cut -c 1-200); see build.log); $REBUILD_WHY"
  fi
  if [ ! -x "$BUILD/ampbench" ] || [ ! -x "$BUILD/tests/test_backend_ops" ]; then
    stop "rebuild: no $BUILD/ampbench or tests/test_backend_ops after the build (see build.log); $REBUILD_WHY"
  fi
  MISSING=$(missing_libs "$BUILD")
  if [ -n "$MISSING" ] && [ -n "$DEPS" ]; then # linked against the bundled cJSON/GSL/zlib
    export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$DEPS/lib
    MISSING=$(missing_libs "$BUILD")
  fi
  if [ -n "$MISSING" ]; then
    for l in $MISSING; do echo "   $l: other versions in the candidate folders: $(other_versions "$l")"; done
    stop "the rebuilt ampbench cannot load either; missing: $MISSING"
  fi
else
  BUILD_KIND="carried ($BUILD)"
fi
note "build: $BUILD_KIND"
BIN="$BUILD/ampbench"

# ---- the device -----------------------------------------------------------------------------------
GPU_OK=0
COMPAT=""
gpu_seen() { # runs ampbench info into OUT/ampbench-info.txt; true when it sees a usable device
  x 30 "$BIN" info >"$OUT/ampbench-info.txt" 2>&1
  grep -q '^CUDA device:  [^n]' "$OUT/ampbench-info.txt"
}
gpu_seen && GPU_OK=1
if [ "$GPU_OK" = 0 ]; then
  # A driver older than the CUDA 13 runtime: the forward-compatible libcuda of cuda-compat.
  for c in /usr/local/cuda-13*/compat; do [ -d "$c" ] && COMPAT=$c; done
  if [ -n "$COMPAT" ]; then
    note "no usable device ($(grep '^CUDA device:' "$OUT/ampbench-info.txt")); retrying with $COMPAT"
    cp "$OUT/ampbench-info.txt" "$OUT/ampbench-info-without-compat.txt"
    export LD_LIBRARY_PATH=$COMPAT:$LD_LIBRARY_PATH
    if gpu_seen; then GPU_OK=1; note "the device is usable with $COMPAT first on LD_LIBRARY_PATH"
    else export LD_LIBRARY_PATH=${LD_LIBRARY_PATH#"$COMPAT":}; COMPAT=""; fi
  fi
fi
cat "$OUT/ampbench-info.txt"
if [ "$GPU_OK" = 0 ]; then
  why=$(grep -m 1 '^CUDA device:' "$OUT/ampbench-info.txt" | sed 's/^CUDA device: *//; s/^none (\(.*\))$/\1/')
  stop "ampbench sees no usable CUDA device (${why:-no 'CUDA device:' line from ampbench info}; driver ${DRIVER:-unknown}$(
        ls -d /usr/local/cuda-13*/compat >/dev/null 2>&1 && echo ", also with cuda-compat" ||
        echo ", no /usr/local/cuda-13*/compat"))"
fi

# ---- data -----------------------------------------------------------------------------------------
DATA=""
for d in "${2:-}" "${AMPBENCH_DATA:-}" "$BUILD/fashion-mnist" "${CARRIED:+$CARRIED/fashion-mnist}" \
         "$ROOT/build-cuda/fashion-mnist" /usr/share/datasets/fashion-mnist "$ROOT/data/fashion-mnist"; do
  [ -n "$d" ] && ls "$d"/train-images*idx3* >/dev/null 2>&1 && { DATA=$d; break; }
done
SYNTH=0
if [ -z "$DATA" ]; then
  note "no Fashion-MNIST data: accuracy runs skipped; throughput runs use synthetic IDX files"
  if [ -n "$PY" ]; then
    DATA="$OUT/synthetic-data"
    SYNTH=1
    x 60 "$PY" - "$DATA" <<'PYEOF'
import os, struct, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
for split, n in (("train", 60000), ("t10k", 10000)):
    with open(os.path.join(d, split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + os.urandom(n * 784))
    with open(os.path.join(d, split + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(b % 10 for b in os.urandom(n)))
PYEOF
  fi
fi
export AMPBENCH_DATA=$DATA
note "data: ${DATA:-none}"

# ---- gpu-labelled tests ---------------------------------------------------------------------------
cache_home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
if [ "$cache_home" = "$ROOT" ] && command -v ctest >/dev/null; then
  # (cd, not ctest --test-dir: that needs ctest 3.20.)
  # shellcheck disable=SC2016
  step gpu_tests 130 bash -c 'cd "$1" && ctest -L "^gpu$" -V' gpu_tests "$BUILD"
  cp "$BUILD/Testing/Temporary/LastTest.log" "$OUT/ctest-LastTest.log" 2>/dev/null
else
  # A build configured elsewhere: its ctest files name that machine's paths; run them directly.
  step test_backend_ops 60 "$BUILD/tests/test_backend_ops"
  if [ "$SYNTH" = 0 ] && [ -n "$DATA" ]; then
    step test_gpu_train 90 bash "$ROOT/tests/test_gpu_train.sh" "$BIN"
  fi
fi

# ---- throughput sweep: the headline figures first -----------------------------------------------
tp() { # name max_seconds args...
  local name=$1 max=$2; shift 2
  rm -rf "${OUT:?}/$name"
  step "$name" "$max" "$BIN" run --device cuda --epochs 2 --no-progress --out "$OUT/$name" "$@"
}
# The PyTorch baseline runs with the LD_LIBRARY_PATH this script started with (plus cuda-compat when
# ampbench needed it): the folders added for ampbench (CUDA 13, cuDNN for CUDA 13) could shadow the
# libraries of torch's own wheels (libcudnn.so.9 is the soname of the CUDA 12 and 13 builds alike).
# (Nor does torch write into ampbench's cuDNN log.)
if [ -n "$COMPAT" ]; then TORCH_ENV=(env -u CUDNN_LOGLEVEL_DBG "LD_LIBRARY_PATH=$COMPAT${ORIG_LD:+:$ORIG_LD}")
elif [ -n "$ORIG_LD_SET" ]; then TORCH_ENV=(env -u CUDNN_LOGLEVEL_DBG "LD_LIBRARY_PATH=$ORIG_LD")
else TORCH_ENV=(env -u CUDNN_LOGLEVEL_DBG -u LD_LIBRARY_PATH); fi
torch_step() { # name max_seconds args...
  local name=$1 max=$2; shift 2
  if [ -n "$PY" ]; then step "$name" "$max" "${TORCH_ENV[@]}" "$PY" "$ROOT/scripts/torch_baseline.py" "$@"
  else STATUS[$name]="skipped (no python)"; fi
}
tp tp_b32_amp_graph 50 --modes amp,fp32 --batch 32
torch_step torch_b32_amp 50 --mode amp --batch 32 --steps 400
tp tp_c64_b1024 40 --modes fp32,amp --channels 64 --batch 1024
tp tp_b32_amp_nograph 40 --modes amp,fp32 --batch 32 --no-graph

# ---- training: every recipe, 2 epochs ----------------------------------------------------------
MODES=fp32,tf32,amp,amp-static,amp-noscale,bf16,fp16-pure
if [ "$REBUILT" = 1 ]; then
  note "train: skipped (rebuilt here: the build took its time)"
  STATUS[train]="skipped (rebuilt on the device)"
elif [ "$SYNTH" = 0 ] && [ -n "$DATA" ]; then
  rm -rf "$OUT/train"
  step train 70 "$BIN" run --device cuda --modes "$MODES" --epochs 2 --no-progress --out "$OUT/train"
fi

# ---- the other PyTorch baselines ------------------------------------------------------------------
torch_step torch_b32_fp32 20 --mode fp32 --batch 32 --steps 400
torch_step torch_c64_b1024_amp 20 --mode amp --batch 1024 --channels 64 --steps 60

summary
note "done: $OUT/summary.json"
