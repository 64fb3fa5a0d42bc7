#!/usr/bin/env bash
# ampbench bench end to end on a tiny sweep: bench.json, bench.csv and report.md written with one
# row per (mode, batch, channels) cell, fp32's speedup exactly 1, a bad --batches list refused
# with exit 2, and the sweep's plots drawn when gnuplot is present. Not a speed test: the
# numbers themselves are only checked for being positive.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
AMPBENCH_PYTHON=/nonexistent "$bin" bench --modes fp32,amp --batches 8,16 --channels 2 \
  --train-limit 512 --test-limit 64 --out "$tmp/b" > "$tmp/log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && echo 1)" "bench exit $rc: $(tail -3 "$tmp/log")"
rows=$(($(wc -l < "$tmp/b/bench.csv") - 1))
ok "$([ "$rows" -eq 4 ] && echo 1)" "bench.csv has $rows rows (want 4)"
ok "$(awk -F, 'NR > 1 && $1 == "fp32" && $12 != "1.0000" { bad = 1 } NR > 1 && $4 <= 0 { bad = 1 }
              END { print bad ? 0 : 1 }' "$tmp/b/bench.csv")" "fp32 speedup 1 and positive samples/s"
ok "$(grep -q '"samples_per_s_median"' "$tmp/b/bench.json" && grep -q '^| amp | 16 | 2 |' "$tmp/b/report.md" \
      && grep -q 'PyTorch not found' "$tmp/b/report.md" && echo 1)" "bench.json and report.md (PyTorch column skipped)"
if command -v gnuplot >/dev/null; then
  ok "$([ -s "$tmp/b/plots/bench_throughput.png" ] && [ -s "$tmp/b/plots/bench_speedup.svg" ] && echo 1)" "bench plots"
fi
err=$("$bin" bench --batches 8,zero --out "$tmp/bad" 2>&1 >/dev/null)
rc=$?
ok "$([ $rc -eq 2 ] && [[ "$err" == *"--batches: '8,zero' is not a list of integers"* ]] && [ ! -e "$tmp/bad" ] && echo 1)" \
   "bad --batches refused (exit $rc: $err)"
summary
