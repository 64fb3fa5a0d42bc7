#!/usr/bin/env bash
# Bit for bit: two configurations on the CPU reference give exactly the epochs.csv (every column
# but the timings epoch_s and samples_per_s) and steps.csv that the code produced before the
# network became a layer table (tests/fixtures/golden/, made by the code at commit 707416e with
# `tests/test_golden.sh BIN --regenerate`) in the Release build (-O3 -march=native
# -mprefer-vector-width=256: without the last flag GCC's tuning for the build machine picks the
# width of the vectorized `omp simd reduction` sums, and with it their order; on a VM that GCC 12
# takes for cooperlake rather than sapphirerapids, FP32 runs then end a few ulps away). --threads 2
# pins peak_bytes (the conv workspace is per thread). Other optimisation levels (the sanitizer
# build of make test-sanitize, which skips this test) may round the last bits differently.
# The fixtures predate the batches gathered on the backend from the data set uploaded once
# (gather_batch): the same bits, so the gather changed nothing. Configurations c (lenet5) and d
# (resnet8), the general conv path's 5x5, strided and 1x1 convs, batch norm and FP8, were added
# at the commit after 12b1334, from its binary; their numeric columns are those of c31ef69, the
# code before that session moved the path's kernels (both run and compared: only peak_bytes
# differs, the workspace 1.4-1.5 MB smaller).
#
# On another CPU: the CPU reference's vectors are 16 floats whatever the hardware width
# (reference/simd.h), so AVX2 and AVX-512 hosts sum in the same order; but -march=native decides
# whether a*b+c is fused (FMA), and a CPU without FMA may round the last bits differently. The
# fixtures record the FMA flag of the CPU that made them; on a CPU whose flag differs this test
# says so and compares the numeric columns within a relative 1e-4 instead (the accuracies, over
# 1,000 or 2,000 test images, then still exactly),
# which still catches any real change of the network, the plan or the data order.
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
golden=$here/fixtures/golden
. "$here/lib.sh"

configs=(
  "a|--modes fp32,tf32,amp,amp-static,amp-noscale,bf16,fp16-pure --epochs 2 --train-limit 6000 --test-limit 2000 --seed 1"
  "b|--modes fp32,amp,bf16 --policy autocast --epochs 1 --train-limit 3000 --test-limit 1000 --seed 3 --batch 50 --channels 8"
  "c|--net lenet5 --modes fp32,bf16,fp8-current --epochs 1 --train-limit 2048 --test-limit 512 --seed 2 --batch 64"
  "d|--net resnet8 --modes fp32,amp,mxfp8 --epochs 1 --train-limit 512 --test-limit 256 --seed 4 --batch 64"
)
fma=$(grep -m1 -qw fma /proc/cpuinfo && echo fma || echo nofma)
# epochs.csv without epoch_s (7) and samples_per_s (8); steps.csv as it is.
strip() { case "$1" in *epochs.csv) cut -d, -f1-6,9- "$1" ;; *) cat "$1" ;; esac; }

if [ "${2:-}" = "--regenerate" ]; then
  for c in "${configs[@]}"; do
    name=${c%%|*}
    # shellcheck disable=SC2086
    "$bin" run ${c#*|} --device cpu --threads 2 --no-progress --out "$tmp/$name" >/dev/null || exit 1
    for f in epochs.csv steps.csv; do strip "$tmp/$name/$f" > "$golden/$name-$f"; done
  done
  echo "$fma" > "$golden/cpu"
  echo "regenerated $golden"
  exit 0
fi

# Same numbers, or (on a CPU of other FMA support) numbers within rel 1e-4, accuracies equal.
close() {
  awk -F, 'NR == FNR { ref[FNR] = $0; next }
           { n = split(ref[FNR], r, ","); if (n != NF) { bad = 1; exit }
             for (i = 1; i <= NF; i++) {
               if ($i == r[i]) continue
               if ($i + 0 != $i || r[i] + 0 != r[i]) { bad = 1; exit }
               d = $i - r[i]; if (d < 0) d = -d; m = r[i] < 0 ? -r[i] : r[i]
               if (d > 1e-4 * m) { bad = 1; exit } } }
           END { exit bad || FNR != length(ref) }' "$1" "$2"
}
same_cpu=1
[ "$(cat "$golden/cpu")" = "$fma" ] || same_cpu=0
[ $same_cpu = 1 ] || echo "note: fixtures made on a CPU with '$(cat "$golden/cpu")', this one has '$fma': comparing within rel 1e-4"
for c in "${configs[@]}"; do
  name=${c%%|*}
  # shellcheck disable=SC2086
  "$bin" run ${c#*|} --device cpu --threads 2 --no-progress --out "$tmp/$name" >/dev/null
  ok "$([ $? = 0 ] && echo 1)" "config $name: run failed"
  for f in epochs.csv steps.csv; do
    strip "$tmp/$name/$f" > "$tmp/$name-$f"
    if [ $same_cpu = 1 ]; then
      cmp -s "$golden/$name-$f" "$tmp/$name-$f"; r=$?
    else
      close "$golden/$name-$f" "$tmp/$name-$f"; r=$?
    fi
    ok "$([ $r = 0 ] && echo 1)" "config $name: $f differs from the golden file ($(diff "$golden/$name-$f" "$tmp/$name-$f" | head -3 | tr '\n' ' '))"
  done
done
# The batches came from the data set uploaded once (gather_batch): config a's 6,000 + 2,000
# samples of 784 pixels and a label each, plus two index lists of 32 int32, in the data category
# beside (not inside) peak_bytes, which the golden epochs.csv pins unchanged.
data=$(grep -m1 -o '"data_bytes":[[:space:]]*[0-9]*' "$tmp/a/run.json" | grep -o '[0-9]*$')
ok "$([ "$data" = $(( 8000 * 785 + 2 * 32 * 4 )) ] && echo 1)" "config a: data_bytes $data, not the uploaded data set's $(( 8000 * 785 + 2 * 32 * 4 ))"
summary
