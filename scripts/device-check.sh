#!/usr/bin/env bash
# The GPU check in one command, for a machine with an NVIDIA GPU and no network access:
#
#   scripts/device-check.sh OUT_DIR [DATA_DIR]
#
# finds the CUDA runtime, cuBLAS and cuDNN (system install, or the nvidia-* Python wheels next to
# PyTorch) and puts them on LD_LIBRARY_PATH; uses a build carried from another machine (build-cuda/,
# or $AMPBENCH_BUILD) or builds one with nvcc; runs the gpu-labelled tests (op parity suite,
# end-to-end training against the CPU reference, --deterministic repeatability); trains every
# recipe for 2 epochs on Fashion-MNIST with --device cuda; runs the throughput sweep (batch 32 AMP
# with and without CUDA Graphs against PyTorch eager AMP on the same network, and --channels 64
# --batch 1024 AMP against FP32 for speed and peak memory); and writes OUT_DIR/summary.json,
# every log, nvidia-smi and versions into OUT_DIR. Built to finish within 8 minutes on an H200
# (each step has a time limit; a step that would overrun the budget is skipped and says so).
#
#   scripts/device-check.sh --prepare [BUILD_DIR]
#
# on a build machine (no GPU needed): builds BUILD_DIR (default build-cuda) with the CUDA backend
# and bundles what the GPU machine may lack: libcjson/libgomp into BUILD_DIR/runtime-libs and the
# Fashion-MNIST files into BUILD_DIR/fashion-mnist (about 30 MB), so that carrying BUILD_DIR is
# enough.
#
# DATA_DIR defaults to $AMPBENCH_DATA, BUILD/fashion-mnist, /usr/share/datasets/fashion-mnist; with
# no data the accuracy runs are skipped and the throughput runs use synthetic IDX files.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)

die() { echo "device-check: $*" >&2; exit 1; }

# ---- --prepare (build machine) ------------------------------------------------------------------
if [ "${1:-}" = "--prepare" ]; then
  B=${2:-build-cuda}
  cmake -S . -B "$B" -DAMPBENCH_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null || die "configure failed"
  cmake --build "$B" -j "$(nproc)" || die "build failed"
  # Every library outside glibc/libstdc++ and the CUDA stack (cJSON, GSL, zlib, libgomp): used
  # on the GPU machine only when its own are missing.
  mkdir -p "$B/runtime-libs"
  ldd "$B/ampbench" "$B/tests/test_backend_ops" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
    while read -r name path; do
      case "$name" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libstdc++*|libgcc_s*|ld-linux*) ;;
        libcuda*|libcublas*|libcudnn*|libcudart*|libnvrtc*|libnvJitLink*) ;;
        *) cp -L "$path" "$B/runtime-libs/" && echo "bundled $path" ;;
      esac
    done
  src=${AMPBENCH_DATA:-/usr/share/datasets/fashion-mnist}
  if [ -d "$src" ]; then
    mkdir -p "$B/fashion-mnist"
    cp -L "$src"/*-ubyte* "$B/fashion-mnist/" && echo "bundled the dataset from $src"
  else
    echo "no dataset at $src: not bundled"
  fi
  du -sh "$B"
  exit 0
fi

[ $# -ge 1 ] || die "usage: scripts/device-check.sh OUT_DIR [DATA_DIR] | --prepare [BUILD_DIR]"
mkdir -p "$1" || die "cannot create $1"
OUT=$(cd "$1" && pwd)
exec > >(tee "$OUT/device-check.log") 2>&1
START=$(date +%s)
BUDGET=${DEVICE_CHECK_BUDGET:-470}   # seconds for everything (8 minutes, a margin kept)
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

# ---- environment ----------------------------------------------------------------------------------
note "collecting the environment"
mkdir -p "$OUT/env"
{ nvidia-smi 2>&1 || echo "nvidia-smi failed"; } >"$OUT/env/nvidia-smi.txt"
{ nvidia-smi -q 2>&1 || true; } >"$OUT/env/nvidia-smi-q.txt"
{ command -v nvcc && nvcc --version; } >"$OUT/env/nvcc.txt" 2>&1
{ uname -a; cat /etc/os-release 2>/dev/null; nproc; free -g; } >"$OUT/env/system.txt" 2>&1
{ cmake --version; gcc --version; } >"$OUT/env/tools.txt" 2>&1
env | grep -E '^(CUDA|LD_LIBRARY|PATH|NVIDIA|AMPBENCH|CUDNN)' >"$OUT/env/vars.txt" 2>&1
PY=$(command -v python3 || command -v python || true)
if [ -n "$PY" ]; then
  "$PY" - >"$OUT/env/python.txt" 2>&1 <<'EOF'
import sys
print(sys.version)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
    print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
except Exception as e:
    print("torch unavailable:", e)
EOF
fi
head -n 20 "$OUT/env/nvidia-smi.txt"

# ---- libraries ------------------------------------------------------------------------------------
# Where a library may be: CUDA toolkits, the system, and the nvidia-* wheels (nvidia/<pkg>/lib,
# nvidia/cu13/lib) and torch/lib of every site-packages.
candidates=()
for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda /usr/local/cuda-*; do
  [ -n "$d" ] && candidates+=("$d/lib64" "$d/lib" "$d/targets/x86_64-linux/lib")
done
candidates+=(/usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib)
if [ -n "$PY" ]; then
  while IFS= read -r sp; do
    [ -d "$sp" ] || continue
    for d in "$sp"/nvidia/*/lib "$sp"/torch/lib; do candidates+=("$d"); done
  done < <("$PY" -c 'import site, sys
for p in site.getsitepackages() + [site.getusersitepackages()] + sys.path: print(p)' 2>/dev/null | sort -u)
fi
libpath=""
add_dir() { case ":$libpath:" in *":$1:"*) ;; *) libpath=${libpath:+$libpath:}$1 ;; esac; }
find_lib() { # soname -> the first candidate folder that holds it
  for d in "${candidates[@]}"; do
    [ -e "$d/$1" ] && { echo "$d"; return 0; }
  done
  return 1
}

# ---- the build ------------------------------------------------------------------------------------
BUILD_KIND=""
pick_build() {
  for b in "${AMPBENCH_BUILD:-}" "$ROOT/build-cuda"; do
    [ -n "$b" ] && [ -x "$b/ampbench" ] && [ -x "$b/tests/test_backend_ops" ] && { echo "$b"; return 0; }
  done
  return 1
}
BUILD=$(pick_build || true)
needed=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libcudnn_cnn.so.9
        libcudnn_ops.so.9 libcudnn_graph.so.9 libcudnn_engines_precompiled.so.9
        libcudnn_engines_runtime_compiled.so.9 libcudnn_heuristic.so.9 libnvrtc.so.13)
if [ -n "$BUILD" ]; then
  while read -r lib; do needed+=("$lib"); done < <(readelf -d "$BUILD/ampbench" 2>/dev/null |
    awk -F'[][]' '/NEEDED/ { print $2 }')
fi
: >"$OUT/libs.txt"
for lib in $(printf '%s\n' "${needed[@]}" | sort -u); do
  if d=$(find_lib "$lib"); then add_dir "$d"; echo "$lib: $d" >>"$OUT/libs.txt"
  else echo "$lib: (not in the candidate folders; system default)" >>"$OUT/libs.txt"; fi
done
export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The libraries --prepare bundled, only when this machine lacks some of its own.
if [ -n "$BUILD" ] && [ -d "$BUILD/runtime-libs" ] && ldd "$BUILD/ampbench" | grep -q "not found"; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$BUILD/runtime-libs
  echo "bundled runtime libraries added: $(ls "$BUILD/runtime-libs" | tr '\n' ' ')" >>"$OUT/libs.txt"
fi
ldd "$BUILD/ampbench" >"$OUT/ldd-ampbench.txt" 2>&1
note "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
cat "$OUT/libs.txt"

if [ -n "$BUILD" ] && ldd "$BUILD/ampbench" | grep -q "not found"; then
  note "the carried build $BUILD misses libraries:"; ldd "$BUILD/ampbench" | grep "not found"
fi
if [ -z "$BUILD" ] || ! "$BUILD/ampbench" info >/dev/null 2>&1; then
  # Build here. cuDNN's headers may only be in the wheel (nvidia/cudnn/include).
  cudnn_root=""
  d=$(find_lib libcudnn.so.9 || true)
  [ -n "$d" ] && [ -e "$d/../include/cudnn_version.h" ] && cudnn_root=$(cd "$d/.." && pwd)
  BUILD="$ROOT/build-device"
  BUILD_KIND="built here"
  step build_configure 120 cmake -S "$ROOT" -B "$BUILD" -DAMPBENCH_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
       ${cudnn_root:+-DCUDNN_ROOT=$cudnn_root}
  step build 240 cmake --build "$BUILD" -j "$(nproc)"
else
  BUILD_KIND="carried ($BUILD)"
fi
note "build: $BUILD_KIND"
"$BUILD/ampbench" info >"$OUT/ampbench-info.txt" 2>&1
cat "$OUT/ampbench-info.txt"
BIN="$BUILD/ampbench"
GPU_OK=0
grep -q '^CUDA device:  [^n]' "$OUT/ampbench-info.txt" && GPU_OK=1
[ "$GPU_OK" = 1 ] || note "ampbench sees no usable CUDA device: the GPU steps will fail or skip"

# ---- data -----------------------------------------------------------------------------------------
DATA=""
for d in "${2:-}" "${AMPBENCH_DATA:-}" "$BUILD/fashion-mnist" /usr/share/datasets/fashion-mnist \
         "$ROOT/data/fashion-mnist"; do
  [ -n "$d" ] && ls "$d"/train-images*idx3* >/dev/null 2>&1 && { DATA=$d; break; }
done
SYNTH=0
if [ -z "$DATA" ]; then
  note "no Fashion-MNIST data: accuracy runs skipped; throughput runs use synthetic IDX files"
  if [ -n "$PY" ]; then
    DATA="$OUT/synthetic-data"
    SYNTH=1
    "$PY" - "$DATA" <<'EOF'
import os, struct, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
for split, n in (("train", 60000), ("t10k", 10000)):
    with open(os.path.join(d, split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + os.urandom(n * 784))
    with open(os.path.join(d, split + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(b % 10 for b in os.urandom(n)))
EOF
  fi
fi
export AMPBENCH_DATA=$DATA
note "data: ${DATA:-none}"

# ---- gpu-labelled tests ---------------------------------------------------------------------------
cache_home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
if [ "$cache_home" = "$ROOT" ] && command -v ctest >/dev/null; then
  step gpu_tests 300 ctest --test-dir "$BUILD" -L gpu -V
  cp "$BUILD/Testing/Temporary/LastTest.log" "$OUT/ctest-LastTest.log" 2>/dev/null
else
  # A build configured elsewhere: its ctest files name that machine's paths; run them directly.
  step test_backend_ops 150 "$BUILD/tests/test_backend_ops"
  if [ "$SYNTH" = 0 ] && [ -n "$DATA" ]; then
    step test_gpu_train 240 bash "$ROOT/tests/test_gpu_train.sh" "$BIN"
  fi
fi

# ---- training: every recipe, 2 epochs ----------------------------------------------------------
MODES=fp32,tf32,amp,amp-static,amp-noscale,bf16,fp16-pure
if [ "$SYNTH" = 0 ] && [ -n "$DATA" ]; then
  rm -rf "$OUT/train"
  step train 180 "$BIN" run --device cuda --modes "$MODES" --epochs 2 --no-progress --out "$OUT/train"
fi

# ---- throughput sweep -----------------------------------------------------------------------------
tp() { # name args...
  local name=$1; shift
  rm -rf "$OUT/$name"
  step "$name" 90 "$BIN" run --device cuda --epochs 2 --no-progress --out "$OUT/$name" "$@"
}
tp tp_b32_amp_graph --modes amp,fp32 --batch 32
tp tp_b32_amp_nograph --modes amp,fp32 --batch 32 --no-graph
tp tp_c64_b1024 --modes fp32,amp --channels 64 --batch 1024
if [ -n "$PY" ]; then
  step torch_b32_amp 90 "$PY" "$ROOT/scripts/torch_baseline.py" --mode amp --batch 32 --steps 400
  step torch_b32_fp32 60 "$PY" "$ROOT/scripts/torch_baseline.py" --mode fp32 --batch 32 --steps 400
  step torch_c64_b1024_amp 60 "$PY" "$ROOT/scripts/torch_baseline.py" --mode amp --batch 1024 --channels 64 --steps 60
fi

# ---- summary --------------------------------------------------------------------------------------
status_json() { local first=1; printf '{'; for k in "${!STATUS[@]}"; do
  [ $first = 1 ] || printf ', '; first=0; printf '"%s": "%s"' "$k" "${STATUS[$k]}"; done; printf '}'; }
status_json >"$OUT/status.json"
if [ -n "$PY" ]; then
  "$PY" - "$OUT" "$BUILD_KIND" "$DATA" "$SYNTH" "$(elapsed)" <<'EOF'
import csv, json, os, re, sys
out, build_kind, data, synth, elapsed = sys.argv[1:6]
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
s = {"elapsed_s": int(elapsed), "build": build_kind, "data": data, "synthetic_data": synth == "1",
     "status": json.load(open(os.path.join(out, "status.json")))}
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
print(json.dumps({"targets": s["targets"], "status": s["status"],
                  "tests": {k: v["passed_failed"] for k, v in s.get("tests", {}).items()}}, indent=2))
EOF
else
  { printf '{"elapsed_s": %s, "build": "%s", "status": ' "$(elapsed)" "$BUILD_KIND"; cat "$OUT/status.json"; printf '}\n'; } >"$OUT/summary.json"
  cat "$OUT/summary.json"
fi
note "done: $OUT/summary.json"
