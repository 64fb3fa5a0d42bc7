#!/usr/bin/env bash
# End to end on the GPU: every recipe trains 1 epoch on a Fashion-MNIST subset with --device cuda
# and lands within the verify tolerances of the same run on the CPU reference (final test
# accuracy within 1.0 percentage point, test loss within 5% relative), the FP8 recipes' first
# quantizations (of the same input and weights) bit for bit the CPU's; under --deterministic two
# CUDA runs are bit for bit identical (every metric but the timings, and steps.csv), and so is a
# run without CUDA Graphs (--no-graph).
# Exit 77 (ctest: skipped) without a usable CUDA device or without the dataset.
# AMPBENCH_GPU_TRAIN_LIMITS=TRAIN:TEST:DETERMINISM sets the sample counts (default 5000:2000:3000;
# the CPU emulation of CUDA, tests/cuda_emu, uses smaller ones).
set -u
bin=$1
IFS=: read -r train_n test_n det_n <<<"${AMPBENCH_GPU_TRAIN_LIMITS:-5000:2000:3000}"
info=$("$bin" info 2>&1)
if ! grep -q '^CUDA device:' <<<"$info" || grep -q '^CUDA device:  none' <<<"$info"; then
  echo "no usable CUDA device: skipped ($(grep '^CUDA device:' <<<"$info" || echo 'CUDA backend not compiled in'))"
  exit 77
fi
if [ -z "${AMPBENCH_DATA:-}" ] && grep -q '^default data: (none' <<<"$info"; then
  echo "no Fashion-MNIST data (set AMPBENCH_DATA): skipped"
  exit 77
fi
. "$(dirname "$0")/lib.sh"
run() { # name args...: runs ampbench, keeps its output in $tmp/name.log
  local name=$1; shift
  "$bin" "$@" --no-progress --out "$tmp/$name" >"$tmp/$name.log" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: ampbench $* exited with $rc:" >&2
    cat "$tmp/$name.log" >&2
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
  fi
}

modes=fp32,tf32,amp,amp-static,amp-noscale,bf16,fp16-pure,fp8-delayed,fp8-current,mxfp8
common=(run --modes "$modes" --epochs 1 --train-limit "$train_n" --test-limit "$test_n")
run cpu "${common[@]}" --device cpu
run cuda "${common[@]}" --device cuda
col() { awk -F, -v m="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
                                     $1 == m && $2 == 1 { print $k }' "$tmp/$1/epochs.csv"; }
for m in ${modes//,/ }; do
  ca=$(col cpu "$m" test_acc) ga=$(col cuda "$m" test_acc)
  cl=$(col cpu "$m" test_loss) gl=$(col cuda "$m" test_loss)
  cs=$(col cpu "$m" samples_per_s) gs=$(col cuda "$m" samples_per_s)
  echo "$m: test accuracy cpu $ca cuda $ga, test loss cpu $cl cuda $gl, samples/s cpu $cs cuda $gs"
  ok "$(awk -v a="$ga" -v b="$ca" 'BEGIN { d = a - b; if (d < 0) d = -d; print (a != "" && d <= 0.01) }')" \
     "$m: cuda test accuracy $ga is more than 1.0 pp from the CPU reference's $ca"
  ok "$(awk -v a="$gl" -v b="$cl" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; print (a != "" && d <= 0.05) }')" \
     "$m: cuda test loss $gl is more than 5% from the CPU reference's $cl"
done
grep -h '^ampbench:' "$tmp/cuda.log" >&2 || true

# FP8: step 1 quantizes the same batch and the same initial weights on both backends, so its
# scale, amax and saturated/underflowed fractions of those tensors are the CPU's, bit for bit
# (mxfp8's second copies of them too: .input.pixels, .input.cols, .weight.cols).
first_q() { awk -F, '$2 == 1 && $3 == 1 && $4 ~ /\.(input|weight)(\.cols|\.pixels)?$/' "$tmp/$1/fp8.csv"; }
ok "$([ -n "$(first_q cpu)" ] && [ "$(first_q cpu)" == "$(first_q cuda)" ] && echo 1)" \
   "fp8: the first step's quantized inputs and weights differ between the CPU and CUDA"
[ "$(first_q cpu)" == "$(first_q cuda)" ] || diff <(first_q cpu) <(first_q cuda) >&2
# Per-tensor scaling runs its GEMMs as FP8 on cuBLASLt; MX has no such path (emulated in FP32).
gemms() { jq -r ".modes[\"$1\"].backend.fp8_gemms" "$tmp/cuda/run.json"; }
ok "$([ "$(gemms fp8-delayed)" -gt 0 ] && [ "$(gemms fp8-current)" -gt 0 ] && [ "$(gemms mxfp8)" = 0 ] && \
      [ "$(gemms amp)" = 0 ] && echo 1)" \
   "fp8_gemms: fp8-delayed $(gemms fp8-delayed), fp8-current $(gemms fp8-current), mxfp8 $(gemms mxfp8), amp $(gemms amp)"

# Bitwise repeatability under --deterministic, with and without CUDA Graphs.
det=(run --modes fp32,amp,bf16,fp16-pure --epochs 1 --train-limit "$det_n" --test-limit "$test_n"
     --device cuda --deterministic)
run det_a "${det[@]}"
run det_b "${det[@]}"
run det_nograph "${det[@]}" --no-graph
metrics() { cut -d, -f1-6,9- "$tmp/$1/epochs.csv"; }
ok "$([ "$(metrics det_a)" == "$(metrics det_b)" ] && cmp -s "$tmp/det_a/steps.csv" "$tmp/det_b/steps.csv" && echo 1)" \
   "--deterministic: two CUDA runs differ"
[ "$(metrics det_a)" == "$(metrics det_b)" ] || diff <(metrics det_a) <(metrics det_b) >&2
ok "$([ "$(metrics det_a)" == "$(metrics det_nograph)" ] && cmp -s "$tmp/det_a/steps.csv" "$tmp/det_nograph/steps.csv" && echo 1)" \
   "--deterministic: CUDA Graph replay and --no-graph differ"
[ "$(metrics det_a)" == "$(metrics det_nograph)" ] || diff <(metrics det_a) <(metrics det_nograph) >&2
summary
