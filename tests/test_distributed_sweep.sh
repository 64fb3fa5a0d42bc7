#!/usr/bin/env bash
# Sweeps over MPI ranks (docs/DISTRIBUTED.md): under `mpirun -np 2` the (recipe, seed) trainings
# are spread over the ranks and rank 0 writes the one run folder, equal to a single process's
# but for the timings: epochs.csv (timing columns aside), steps.csv, fp8.csv (an FP8 recipe's
# pointer-holding statistics, gathered through the wire format) and seeds.csv bit for bit, and
# run.json but for times, the command line and the ranks; verify judges the same.
set -u
bin=$1 mpirun=$2
. "$(dirname "$0")/lib.sh"
mpi=("$mpirun" --allow-run-as-root --oversubscribe -np 2)
common=(--epochs 2 --train-limit 640 --test-limit 200 --threads 1 --no-progress)
modes=(--modes fp32,amp,fp8-delayed)

"$bin" run "${modes[@]}" "${common[@]}" --out "$tmp/one" > "$tmp/one.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "single-process run: $(tail -1 "$tmp/one.log")"
# From a folder of its own, without --out: the default results/runs/<stamp>-<id>, claimed once.
mkdir "$tmp/cwd"
(cd "$tmp/cwd" && "${mpi[@]}" "$bin" run "${modes[@]}" "${common[@]}") > "$tmp/two.log" 2>&1
rc=$?
ok "$([ "$(ls "$tmp/cwd/results/runs" | wc -l)" -eq 1 ] && echo 1)" "one run folder: $(ls "$tmp/cwd/results/runs")"
ln -s "$tmp/cwd/results/runs/$(ls "$tmp/cwd/results/runs" | head -1)" "$tmp/two"
ok "$([ $rc -eq 0 ] && echo 1)" "mpirun -np 2 run: exit $rc: $(tail -3 "$tmp/two.log")"
ok "$([ "$(grep -c '^results written' "$tmp/two.log")" -eq 1 ] && grep -q '^distributed: 2 ranks' "$tmp/two.log" && echo 1)" \
   "only rank 0 speaks for the run"
metrics() { cut -d, -f1-6,9- "$1/epochs.csv"; }
ok "$([ "$(metrics "$tmp/one")" == "$(metrics "$tmp/two")" ] && echo 1)" "epochs.csv equal (timings aside)"
for f in steps.csv fp8.csv; do
  ok "$(cmp -s "$tmp/one/$f" "$tmp/two/$f" && echo 1)" "$f bit for bit"
done
# run.json without what may differ: times, the command, the ranks.
strip='del(.written_at, .command, .config.distributed, .config.out) | del(.. | .rank?) |
       del(.. | .epoch_s?, .samples_per_s?)'
ok "$(diff <(jq -S "$strip" "$tmp/one/run.json") <(jq -S "$strip" "$tmp/two/run.json") > "$tmp/json.diff" && echo 1)" \
   "run.json equal but for times and ranks: $(head -5 "$tmp/json.diff")"
ok "$(jq -r '.modes.amp.rank' "$tmp/two/run.json" | grep -qx 1 && jq -r '.modes["fp8-delayed"].rank' "$tmp/two/run.json" | grep -qx 0 && echo 1)" \
   "job j is trained by rank j % 2 (amp by rank 1)"
ok "$(jq -r '.config.distributed | "\(.world_size) \(.mode) \(.rank_hosts | length)"' "$tmp/two/run.json" | grep -qx '2 sweep 2' && echo 1)" \
   "run.json config.distributed: world size 2, mode sweep, two hosts"
ok "$(jq -r '.config.distributed | "\(.world_size) \(.mode)"' "$tmp/one/run.json" | grep -qx '1 single' && echo 1)" \
   "a single process says so"
ok "$(grep -q '2 MPI ranks, the (recipe, seed) trainings spread over them' "$tmp/two/report.md" && echo 1)" \
   "report.md says how it ran"

# verify with 3 seeds: 6 trainings over 2 ranks, judged on rank 0 alike.
vargs=(verify --modes amp --seeds 3 --epochs 1 --train-limit 320 --test-limit 100 --threads 1 --no-progress)
"$bin" "${vargs[@]}" --out "$tmp/v1" > "$tmp/v1.log" 2>&1
rc1=$?
"${mpi[@]}" "$bin" "${vargs[@]}" --out "$tmp/v2" > "$tmp/v2.log" 2>&1
rc2=$?
ok "$([ $rc1 -eq $rc2 ] && [ $rc2 -le 1 ] && echo 1)" "verify exits alike (single $rc1, mpirun $rc2): $(tail -2 "$tmp/v2.log")"
ok "$(cmp -s "$tmp/v1/seeds.csv" "$tmp/v2/seeds.csv" && echo 1)" "seeds.csv bit for bit"
ok "$(diff <(grep -A3 '^verdicts' "$tmp/v1.log") <(grep -A3 '^verdicts' "$tmp/v2.log") >/dev/null && echo 1)" \
   "the same verdicts"

# bench: the cells spread over the ranks, gathered on rank 0 into the one bench folder, in the
# single process's order, with the same deterministic figures (FLOPs, peak memory by category).
bargs=(bench --nets seed --batches 16,32 --channels 8 --modes fp32,amp,bf16 --threads 1
       --train-limit 640 --test-limit 100 --no-progress)
"$bin" "${bargs[@]}" --out "$tmp/b1" > "$tmp/b1.log" 2>&1
rc1=$?
"${mpi[@]}" "$bin" "${bargs[@]}" --out "$tmp/b2" > "$tmp/b2.log" 2>&1
rc2=$?
ok "$([ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && echo 1)" "bench exits 0 (single $rc1, mpirun $rc2): $(tail -2 "$tmp/b2.log")"
cells() { jq -c '[.cells[] | [.net, .mode, .batch, .channels, .flops_per_sample, .memory]]' "$1/bench.json"; }
ok "$([ -n "$(cells "$tmp/b1")" ] && [ "$(cells "$tmp/b1")" == "$(cells "$tmp/b2")" ] && echo 1)" \
   "bench.json: the same cells in the same order, FLOPs and memory equal"
ok "$([ "$(jq '.cells | length' "$tmp/b2/bench.json")" = 6 ] && \
      [ "$(jq '[.cells[] | select(.samples_per_s_median > 0)] | length' "$tmp/b2/bench.json")" = 6 ] && echo 1)" \
   "every one of the 6 gathered cells has its measured throughput"
ok "$(grep -q '^distributed: 2 ranks, the cells spread over them' "$tmp/b2.log" && \
      [ "$(grep -c '^bench written to' "$tmp/b2.log")" -eq 1 ] && echo 1)" "only rank 0 speaks for the bench"
summary
