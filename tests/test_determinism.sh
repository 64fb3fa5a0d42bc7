#!/usr/bin/env bash
# Two runs with the same seed give bit-identical per-epoch metrics, whatever the thread count;
# another seed gives different ones.
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(run --modes fp32 --epochs 2 --train-limit 2000 --test-limit 1000 --no-progress)
"$bin" "${args[@]}" --seed 5 --out "$tmp/a" >/dev/null || exit 1
"$bin" "${args[@]}" --seed 5 --out "$tmp/b" >/dev/null || exit 1
"$bin" "${args[@]}" --seed 6 --out "$tmp/c" >/dev/null || exit 1
"$bin" "${args[@]}" --seed 5 --threads 1 --out "$tmp/d" >/dev/null || exit 1
# Metrics without the timing columns (epoch_s, samples_per_s).
metrics() { cut -d, -f1-6,9- "$1/epochs.csv"; }
passed=0 failed=0
if [ "$(metrics "$tmp/a")" == "$(metrics "$tmp/b")" ] && [ "$(wc -l < "$tmp/a/epochs.csv")" -eq 3 ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: same seed, different metrics" >&2; diff <(metrics "$tmp/a") <(metrics "$tmp/b") >&2
fi
if [ "$(metrics "$tmp/a")" != "$(metrics "$tmp/c")" ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: seeds 5 and 6 gave identical metrics" >&2
fi
# Every output element has one owner thread: the thread count does not change the numbers.
# (Only the loss and accuracy columns: the conv workspace, and so peak_bytes, grows per thread.)
if [ "$(cut -d, -f1-6 "$tmp/a/epochs.csv")" == "$(cut -d, -f1-6 "$tmp/d/epochs.csv")" ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: --threads 1 changed the metrics" >&2
fi
# The presets' other ops (pooling, batch norm, strided and 1x1 convs, the GEMM conv path, FP16
# and BF16 data): every step's numbers identical at 1, 2 and 3 threads (3: uneven shares).
for net in lenet5 resnet8; do
  for t in 1 2 3; do
    "$bin" run --net "$net" --modes fp32,amp,bf16 --epochs 1 --train-limit 111 --test-limit 50 \
      --batch 37 --threads $t --no-progress --out "$tmp/$net-$t" >/dev/null || exit 1
  done
  if cmp -s "$tmp/$net-1/steps.csv" "$tmp/$net-2/steps.csv" &&
     cmp -s "$tmp/$net-1/steps.csv" "$tmp/$net-3/steps.csv" &&
     [ "$(cut -d, -f1-6 "$tmp/$net-1/epochs.csv")" == "$(cut -d, -f1-6 "$tmp/$net-3/epochs.csv")" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "FAIL: --net $net: the thread count changed the numbers" >&2
  fi
done
# fp8-current's scales (fp8.csv, 9 digits) show a last-bit difference in any gradient of the
# step before: resnet8's strided convs once chunked their filter gradient by the thread count.
# mxfp8 too: its SQNR sums (fixed pieces of whole slices of each MX layout) and its backward in
# two calls.
for t in 1 2; do
  "$bin" run --net resnet8 --policy autocast --modes fp8-current,mxfp8 --epochs 1 \
    --train-limit 128 --test-limit 64 --seed 5 --threads $t --no-progress --out "$tmp/fp8-$t" \
    >/dev/null || exit 1
done
if cmp -s "$tmp/fp8-1/fp8.csv" "$tmp/fp8-2/fp8.csv" && grep -q '^mxfp8,' "$tmp/fp8-1/fp8.csv"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: resnet8 fp8-current, mxfp8: fp8.csv differs at 1 and 2 threads" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
