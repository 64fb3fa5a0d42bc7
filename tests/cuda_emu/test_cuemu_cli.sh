#!/usr/bin/env bash
# The harness on the CUDA path, through the CLI, with the emulated device (ampbench-cuemu): info,
# --device auto picking it, run.json's backend record (graphs captured and replayed, only replays
# timed; no graphs with --no-graph), --profile-steps, verify and bench on it, and the errors without a device
# (CUEMU_DEVICES=0 makes the emulation report none), without cuBLAS (CUEMU_LIBS=none) or with a
# driver older than the runtime (CUEMU_DRIVER_VERSION).
set -u
bin=$1
. "$(dirname "$0")/../lib.sh"
small=(--epochs 1 --train-limit 320 --test-limit 100 --no-progress)
num() { grep -o "\"$2\":[[:space:]]*[0-9.]*" "$1" | head -1 | grep -o '[0-9.]*$'; }

"$bin" info >"$tmp/info" 2>&1
ok "$(grep -q '^CUDA device:  cuemu' "$tmp/info" && echo 1)" "info does not show the emulated device"

"$bin" run --modes fp32,amp "${small[@]}" --out "$tmp/auto" >"$tmp/auto.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && echo 1)" "run --device auto exited with $rc: $(tail -3 "$tmp/auto.log")"
ok "$(grep -q '"device":[[:space:]]*"cuda"' "$tmp/auto/run.json" 2>/dev/null && echo 1)" \
   "--device auto did not pick the CUDA device"
ok "$(grep -q '"device":[[:space:]]*"cuemu' "$tmp/auto/run.json" 2>/dev/null && echo 1)" \
   "run.json has no CUDA backend record"
ok "$([ "$(num "$tmp/auto/run.json" graph_replays)" -gt 0 ] 2>/dev/null && echo 1)" \
   "no CUDA Graph replays recorded in run.json"
ok "$([ "$(num "$tmp/auto/run.json" steps_timed)" = "$(num "$tmp/auto/run.json" graph_replays)" ] &&
      echo 1)" "steps_timed is not the number of replays (warm-up or capture steps were timed)"
ok "$([ -s "$tmp/auto/report.md" ] && echo 1)" "no report.md after a CUDA run"

"$bin" run --modes amp "${small[@]}" --device cuda --no-graph --profile-steps 2:4 \
    --out "$tmp/nograph" >"$tmp/nograph.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && [ "$(num "$tmp/nograph/run.json" graph_captures)" = 0 ] &&
      [ "$(num "$tmp/nograph/run.json" steps_timed)" -gt 0 ] && echo 1)" \
   "--no-graph --profile-steps: exit $rc, graphs captured anyway, or no step timed"

"$bin" verify --modes fp32,amp,bf16 "${small[@]}" --device cuda --out "$tmp/verify" \
    >"$tmp/verify.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && grep -q 'every recipe passed' "$tmp/verify.log" && echo 1)" \
   "verify --device cuda exited with $rc: $(tail -3 "$tmp/verify.log")"

"$bin" bench --modes fp32,amp --batches 32 --channels 16 --train-limit 320 --test-limit 64 \
    --device cuda --no-progress --out "$tmp/bench" >"$tmp/bench.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && [ -s "$tmp/bench/bench.json" ] && echo 1)" \
   "bench --device cuda exited with $rc: $(tail -3 "$tmp/bench.log")"

# Fault injection (CUEMU_FAIL_ALGOS): the heuristics' first candidates fail at execution; the
# backend's trial runs move on to the next ones (run.json's conv plans name them).
CUEMU_FAIL_ALGOS=fwd:1,bwd_data:0,bwd_filter:0 "$bin" run --modes fp32 "${small[@]}" \
    --device cuda --out "$tmp/faults" >"$tmp/faults.log" 2>&1
rc=$?
algo() { tr -d '[:space:]' <"$1" | grep -o "\"$2\":{\"algo\":\"[A-Z_0-9]*\"" | head -1 |
         grep -o '[A-Z_0-9]*"$' | tr -d '"'; }
ok "$([ $rc -eq 0 ] && [ "$(algo "$tmp/faults/run.json" forward)" = IMPLICIT_GEMM ] &&
      [ "$(algo "$tmp/faults/run.json" backward_data)" = ALGO_1 ] &&
      [ "$(algo "$tmp/faults/run.json" backward_filter)" = ALGO_3 ] && echo 1)" \
   "failed algorithms not skipped (exit $rc; forward $(algo "$tmp/faults/run.json" forward), \
backward_data $(algo "$tmp/faults/run.json" backward_data), \
backward_filter $(algo "$tmp/faults/run.json" backward_filter)): $(tail -2 "$tmp/faults.log")"
# The backward-filter heuristic query failing: the documented deterministic fallback (ALGO_1).
CUEMU_FAIL_ALGOS=bwd_filter:v7 "$bin" run --modes fp32 "${small[@]}" --device cuda \
    --out "$tmp/nov7" >"$tmp/nov7.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && [ "$(algo "$tmp/nov7/run.json" backward_filter)" = ALGO_1 ] && echo 1)" \
   "a failed v7 query: exit $rc, backward_filter $(algo "$tmp/nov7/run.json" backward_filter)"
# A malformed list is refused.
CUEMU_FAIL_ALGOS=fwd:x "$bin" run --modes fp32 "${small[@]}" --device cuda \
    --out "$tmp/badlist" >"$tmp/badlist.log" 2>&1
rc=$?
ok "$([ $rc -eq 2 ] && grep -q "CUEMU_FAIL_ALGOS: 'fwd:x'" "$tmp/badlist.log" && echo 1)" \
   "a malformed CUEMU_FAIL_ALGOS: exit $rc (want 2): $(tail -1 "$tmp/badlist.log")"
# Every forward algorithm failing: one error naming cuDNN's status, exit 1.
CUEMU_FAIL_ALGOS=fwd:0,fwd:1,fwd:2,fwd:4,fwd:5,fwd:6,fwd:7 "$bin" run --modes fp32 "${small[@]}" \
    --device cuda --out "$tmp/nofwd" >"$tmp/nofwd.log" 2>&1
rc=$?
ok "$([ $rc -eq 1 ] && grep -q 'no fp32 convolution algorithm.*forward: CUDNN_STATUS_EXECUTION_FAILED' \
      "$tmp/nofwd.log" && echo 1)" \
   "no forward algorithm: exit $rc (want 1) or no cuDNN status in: $(tail -2 "$tmp/nofwd.log")"

# A cuDNN runtime older than the headers of the build: a warning in info, on stderr at open
# and in run.json's backend record.
CUEMU_CUDNN_VERSION=90000 "$bin" info >"$tmp/oldinfo" 2>&1
ok "$(grep -q '^warning: .*cuDNN runtime 9.0.0 is older' "$tmp/oldinfo" && echo 1)" \
   "info does not warn of an older cuDNN runtime: $(grep cuDNN "$tmp/oldinfo")"
CUEMU_CUDNN_VERSION=90000 "$bin" run --modes fp32 "${small[@]}" --device cuda --out "$tmp/old" \
    >"$tmp/old.log" 2>&1
ok "$(grep -q 'ampbench: warning: cuDNN runtime 9.0.0' "$tmp/old.log" &&
      grep -q '"version_warning":[[:space:]]*"cuDNN runtime 9.0.0' "$tmp/old/run.json" && echo 1)" \
   "an older cuDNN runtime is not warned of on stderr and in run.json"
ok "$(grep -q '"version_warning":[[:space:]]*""' "$tmp/auto/run.json" && echo 1)" \
   "a version warning without CUEMU_CUDNN_VERSION"

CUEMU_DEVICES=0 "$bin" run --modes fp32 "${small[@]}" --device cuda --out "$tmp/none" \
    >"$tmp/none.log" 2>&1
rc=$?
ok "$([ $rc -eq 2 ] && grep -q -- '--device cuda: no usable CUDA device' "$tmp/none.log" &&
      [ ! -e "$tmp/none" ] && echo 1)" \
   "--device cuda without a device: exit $rc (want 2), one clear line, no results folder"
CUEMU_DEVICES=0 "$bin" run --modes fp32 "${small[@]}" --out "$tmp/fallback" \
    >"$tmp/fallback.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && grep -q 'running on the CPU' "$tmp/fallback.log" &&
      grep -q '"device":[[:space:]]*"cpu"' "$tmp/fallback/run.json" && echo 1)" \
   "--device auto without a device does not fall back to the CPU with a note (exit $rc)"

# cuBLAS and cuDNN found at run time (kernels/cuda_libs.c; CUEMU_LIBS plays which sonames exist):
# CUDA 13's first, CUDA 12's where only those exist, and a clear refusal naming cuBLAS without any;
# a driver older than the runtime carried in the binary (CUEMU_DRIVER_VERSION) is refused as such.
ok "$(grep -q '^CUDA libs:    libcublas.so.13 .*libcublasLt.so.13 .*libcudnn.so.9' "$tmp/info" &&
      grep -q '"libraries":[[:space:]]*"libcublas.so.13' "$tmp/auto/run.json" && echo 1)" \
   "info / run.json do not name the CUDA 13 libraries loaded: $(grep '^CUDA libs' "$tmp/info")"
CUEMU_LIBS=12 "$bin" info >"$tmp/info12" 2>&1
ok "$(grep -q '^CUDA libs:    libcublas.so.12 .*libcublasLt.so.12 .*libcudnn.so.9' "$tmp/info12" &&
      grep -q '^CUDA device:  cuemu' "$tmp/info12" && echo 1)" \
   "only CUDA 12 libraries: $(grep -E '^CUDA (libs|device)' "$tmp/info12")"
CUEMU_LIBS=none "$bin" run --modes fp32 "${small[@]}" --device cuda --out "$tmp/nolibs" \
    >"$tmp/nolibs.log" 2>&1
rc=$?
ok "$([ $rc -eq 2 ] && grep -q -- '--device cuda: no usable CUDA device (cuBLAS not found: no libcublas.so.13 or libcublas.so.12' "$tmp/nolibs.log" &&
      [ ! -e "$tmp/nolibs" ] && echo 1)" \
   "--device cuda without cuBLAS: exit $rc (want 2), naming it: $(head -2 "$tmp/nolibs.log")"
CUEMU_DRIVER_VERSION=12080 "$bin" run --modes fp32 "${small[@]}" --device cuda --out "$tmp/olddrv" \
    >"$tmp/olddrv.log" 2>&1
rc=$?
ok "$([ $rc -eq 2 ] && grep -q 'driver version is insufficient for CUDA runtime version' "$tmp/olddrv.log" && echo 1)" \
   "a driver older than the runtime: exit $rc (want 2): $(head -2 "$tmp/olddrv.log")"

summary
