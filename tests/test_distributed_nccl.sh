#!/usr/bin/env bash
# NCCL (harness/dist/nccl.c): --data-parallel on the CUDA backend, one rank per GPU, all-reduces
# the FP32 gradients in device memory. On every GPU of the machine (one rank each: rank r sees
# GPU r alone through CUDA_VISIBLE_DEVICES), the run says NCCL carried them and matches the
# single-GPU run within summation-order tolerance. Exit 77 (skipped) without a usable GPU.
set -u
bin=$1 mpirun=$2
info=$("$bin" info 2>&1)
if ! grep -q '^CUDA device:' <<<"$info" || grep -q '^CUDA device:  none' <<<"$info"; then
  echo "no usable CUDA device: skipped ($(grep '^CUDA device:' <<<"$info" || echo 'CUDA backend not compiled in'))"
  exit 77
fi
if ! grep -q 'nccl all-reduce on the cuda backend' <<<"$info"; then
  echo "ampbench built without NCCL: skipped"
  exit 77
fi
. "$(dirname "$0")/lib.sh"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${gpus:-0}" -ge 1 ] || gpus=1
common=(--device cuda --deterministic --modes fp32,amp --epochs 2 --train-limit 2048 --test-limit 500 --no-progress)
"$bin" run "${common[@]}" --out "$tmp/one" > "$tmp/one.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "single-GPU run: $(tail -1 "$tmp/one.log")"
cat > "$tmp/one_gpu_per_rank.sh" <<'EOS'
#!/bin/sh
export CUDA_VISIBLE_DEVICES=${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-0}}
exec "$@"
EOS
chmod +x "$tmp/one_gpu_per_rank.sh"
"$mpirun" --allow-run-as-root --oversubscribe -np "$gpus" "$tmp/one_gpu_per_rank.sh" "$bin" run "${common[@]}" \
  --data-parallel --out "$tmp/dp" > "$tmp/dp.log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && echo 1)" "data-parallel over $gpus GPU(s): exit $rc: $(tail -2 "$tmp/dp.log")"
ok "$(jq -r '.config.distributed | "\(.world_size) \(.allreduce_library)"' "$tmp/dp/run.json" | grep -qx "$gpus nccl" && echo 1)" \
   "run.json: $gpus rank(s), the gradients carried by NCCL"
diffs=$(paste -d, <(grep '^fp32,' "$tmp/one/epochs.csv") <(grep '^fp32,' "$tmp/dp/epochs.csv") |
  awk -F, '{ n = NF / 2; a = $3 - $(n + 3); b = $5 - $(n + 5);
             printf "epoch %d: train_loss %.2e test_loss %.2e\n", $2, (a < 0 ? -a : a) / $3, (b < 0 ? -b : b) / $5 }')
echo "$diffs"
ok "$(echo "$diffs" | awk '{ if ($4 > 1e-4 || $6 > 1e-4) bad = 1 } END { if (!bad && NR == 2) print 1 }')" \
   "fp32 within summation-order tolerance of the single GPU"
summary
