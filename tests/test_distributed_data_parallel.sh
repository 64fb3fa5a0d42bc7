#!/usr/bin/env bash
# --data-parallel under mpirun -np 2 (docs/DISTRIBUTED.md): every rank a replica on its shard of
# each batch. With an FP32 all-reduce the run matches the single process within summation-order
# tolerance (the measured differences per epoch are printed); BF16 and FP16 all-reduce pass
# verify against a single-process baseline; FP16 overflow is counted; --sync-bn normalises over
# both shards (closer to the single process than per-rank statistics); bad flags are refused.
# With a 4th argument (the CUDA backend on its CPU emulation, tests/cuda_emu), the same FP32
# comparison on the CUDA backend, its gradients all-reduced through the host.
set -u
bin=$1 mpirun=$2 cuemu=${4:-}
. "$(dirname "$0")/lib.sh"
mpi=("$mpirun" --allow-run-as-root --oversubscribe -np 2)
# 651 samples: 20 full batches and one of 11, split 5 + 6 (uneven shards weighted by their size).
common=(--epochs 2 --train-limit 651 --test-limit 200 --threads 1 --no-progress)

"$bin" run --modes fp32,amp "${common[@]}" --out "$tmp/one" > "$tmp/one.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "single-process run"
"${mpi[@]}" "$bin" run --modes fp32,amp "${common[@]}" --data-parallel --out "$tmp/dp" > "$tmp/dp.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && echo 1)" "data-parallel run: exit $rc: $(tail -2 "$tmp/dp.log")"
# In one process (no launcher) --data-parallel is one replica of one: the same bits.
"$bin" run --modes fp32,amp "${common[@]}" --data-parallel --out "$tmp/alone" > "$tmp/alone.log" 2>&1
ok "$([ $? -eq 0 ] && cmp -s "$tmp/one/steps.csv" "$tmp/alone/steps.csv" && echo 1)" \
   "--data-parallel without a launcher: steps.csv bit for bit the single process's"
# Per epoch: the relative difference of train and test loss, and the test accuracy's, vs the
# single process (fp32 recipe: 1e-5 relative on the losses, the same accuracy to one sample).
diffs=$(paste -d, <(grep '^fp32,' "$tmp/one/epochs.csv") <(grep '^fp32,' "$tmp/dp/epochs.csv") |
  awk -F, '{ n = NF / 2; a = $3 - $(n + 3); b = $5 - $(n + 5); c = $6 - $(n + 6);
             printf "epoch %d: train_loss %.2e test_loss %.2e test_acc %+.4f\n", $2,
                    (a < 0 ? -a : a) / $3, (b < 0 ? -b : b) / $5, c }')
echo "fp32 all-reduce vs single process, relative differences:"
echo "$diffs"
ok "$(echo "$diffs" | awk '{ if ($4 > 1e-5 || $6 > 1e-5 || ($8 > 0.005 || $8 < -0.005)) bad = 1 }
                            END { if (!bad && NR == 2) print 1 }')" "fp32 within summation-order tolerance"
ok "$(diff <(grep '^amp,' "$tmp/one/epochs.csv" | cut -d, -f9,10) <(grep '^amp,' "$tmp/dp/epochs.csv" | cut -d, -f9,10) >/dev/null && echo 1)" \
   "amp: the same skipped steps and loss scale per epoch"
ok "$(jq -r '.config.distributed | "\(.mode) \(.allreduce_dtype) \(.sync_bn)"' "$tmp/dp/run.json" | grep -qx 'data-parallel fp32 false' && echo 1)" \
   "run.json: data-parallel, fp32 all-reduce, per-rank batch norm"
ok "$(grep -q 'data-parallel (fp32 all-reduce, per-rank batch norm)' "$tmp/dp/report.md" && echo 1)" "report.md says it"

if [ -n "$cuemu" ]; then
  cargs=(run --device cuda --modes fp32 --epochs 1 --train-limit 320 --test-limit 100 --threads 1 --no-progress)
  "$cuemu" "${cargs[@]}" --out "$tmp/c1" > "$tmp/c1.log" 2>&1
  "${mpi[@]}" "$cuemu" "${cargs[@]}" --data-parallel --out "$tmp/c2" > "$tmp/c2.log" 2>&1
  rc=$?
  ok "$([ $rc -eq 0 ] && paste -d, <(grep '^fp32,' "$tmp/c1/epochs.csv") <(grep '^fp32,' "$tmp/c2/epochs.csv") |
        awk -F, '{ n = NF / 2; a = ($3 - $(n + 3)) / $3; b = ($5 - $(n + 5)) / $5;
                   if (a > 1e-5 || a < -1e-5 || b > 1e-5 || b < -1e-5) bad = 1 } END { if (!bad && NR == 1) print 1 }')" \
     "CUDA backend (emulated): data-parallel within tolerance of one process (exit $rc)"
fi

# BF16 and FP16 all-reduce, judged by verify against the single-process fp32 reference.
vargs=(verify --modes amp --epochs 1 --train-limit 640 --test-limit 200 --threads 1 --no-progress)
"$bin" "${vargs[@]}" --write-baseline "$tmp/base.json" --out "$tmp/v1" > "$tmp/v1.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "single-process verify and baseline"
for d in bf16 fp16; do
  "${mpi[@]}" "$bin" "${vargs[@]}" --data-parallel --allreduce-dtype $d --baseline "$tmp/base.json" \
    --out "$tmp/v-$d" > "$tmp/v-$d.log" 2>&1
  rc=$?
  ok "$([ $rc -eq 0 ] && grep -q 'every metric within tolerance' "$tmp/v-$d.log" && echo 1)" \
     "$d all-reduce passes verify against the single-process baseline (exit $rc): $(grep -A2 '^verdicts' "$tmp/v-$d.log" | tail -1)"
  ok "$(jq -r '.config.distributed.allreduce_dtype' "$tmp/v-$d/run.json" | grep -qx $d && echo 1)" "run.json records $d"
done
# FP16 on the wire carries the scaled gradients: a scale of 2^40 overflows it, the elements are
# counted, and every replica skips those steps and backs off alike.
"${mpi[@]}" "$bin" run --modes amp --epochs 1 --train-limit 320 --test-limit 100 --threads 1 --no-progress \
  --scale-init 1099511627776 --data-parallel --allreduce-dtype fp16 --out "$tmp/ovf" > "$tmp/ovf.log" 2>&1
rc=$?
ovf=$(jq -r '.modes.amp.epochs[0].allreduce_overflow' "$tmp/ovf/run.json" 2>/dev/null)
skipped=$(jq -r '.modes.amp.epochs[0].skipped_steps' "$tmp/ovf/run.json" 2>/dev/null)
ok "$([ $rc -eq 0 ] && [ "${ovf:-0}" -gt 0 ] && [ "${skipped:-0}" -gt 0 ] && echo 1)" \
   "fp16 all-reduce overflow counted: $ovf elements, $skipped steps skipped (exit $rc)"

# Batch norm: per-rank statistics (DDP) vs --sync-bn, on resnet8.
rargs=(run --net resnet8 --modes fp32 --epochs 1 --train-limit 256 --test-limit 100 --threads 1 --no-progress)
"$bin" "${rargs[@]}" --out "$tmp/r1" > /dev/null 2>&1
"${mpi[@]}" "$bin" "${rargs[@]}" --data-parallel --out "$tmp/r-local" > /dev/null 2>&1
"${mpi[@]}" "$bin" "${rargs[@]}" --data-parallel --sync-bn --out "$tmp/r-sync" > "$tmp/r-sync.log" 2>&1
loss() { grep '^fp32,' "$1/epochs.csv" | cut -d, -f3; }
echo "resnet8 train loss: single $(loss "$tmp/r1"), per-rank BN $(loss "$tmp/r-local"), sync BN $(loss "$tmp/r-sync")"
ok "$(awk -v a="$(loss "$tmp/r1")" -v l="$(loss "$tmp/r-local")" -v s="$(loss "$tmp/r-sync")" \
      'BEGIN { ds = s - a; dl = l - a; if (ds < 0) ds = -ds; if (dl < 0) dl = -dl;
               if (ds / a < 1e-5 && ds < dl) print 1 }')" "--sync-bn matches the single process, per-rank statistics do not"
ok "$(jq -r '.config.distributed.sync_bn' "$tmp/r-sync/run.json" | grep -qx true && echo 1)" "run.json records sync_bn"

# Bad input: one line, exit 2, no folder.
bad() { # expected phrase, then the arguments
  local phrase=$1; shift
  "$@" > "$tmp/bad.log" 2>&1
  local rc=$?
  ok "$([ $rc -eq 2 ] && grep -q -- "$phrase" "$tmp/bad.log" && echo 1)" "refused ($phrase): exit $rc: $(grep ampbench: "$tmp/bad.log" | head -1)"
}
bad "--sync-bn: only with --data-parallel" "$bin" run --sync-bn --out "$tmp/b1"
bad "--allreduce-dtype: only with --data-parallel" "$bin" run --allreduce-dtype bf16 --out "$tmp/b2"
bad "--allreduce-dtype: unknown type 'fp8'" "$bin" run --data-parallel --allreduce-dtype fp8 --out "$tmp/b3"
bad "--dist-timeout: 0 is out of range" "$bin" run --dist-timeout 0 --out "$tmp/b4"
bad "needs a sample of every batch" "${mpi[@]}" "$bin" run --data-parallel --train-limit 65 --out "$tmp/b5"
bad "--data-parallel: not for bench" "$bin" bench --data-parallel --out "$tmp/b7"
bad "parity: runs as one process, not under an MPI launcher of 2 ranks" "${mpi[@]}" "$bin" parity --out "$tmp/b6"
ok "$(! ls -d "$tmp"/b? 2>/dev/null | grep -q . && echo 1)" "no folder for bad input"
summary
