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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
