#!/usr/bin/env bash
# Faults in distributed runs, planted by the test binary ampbench-faulty (harness/model/faults.h)
# on the last of 2 ranks: an inf in its gradients after the all-reduce (rank-inf) makes every
# rank skip the same steps (the found-inf flag is reduced; the replicas' parameters stay equal,
# which every epoch checks); without that reduction (rank-inf-unreduced) the replicas part and
# the run fails naming it; a rank that hangs (SIGSTOP) or dies (SIGKILL) makes the others exit
# with an error within --dist-timeout, in a data-parallel run and in a sweep, instead of hanging.
set -u
bin=$1 mpirun=$2 faulty=$3
. "$(dirname "$0")/lib.sh"
mpi=("$mpirun" --allow-run-as-root --oversubscribe -np 2)
common=(--epochs 1 --train-limit 640 --test-limit 100 --threads 1 --no-progress)

AMPBENCH_FAULT=rank-inf "${mpi[@]}" "$faulty" run --modes amp "${common[@]}" --data-parallel \
  --out "$tmp/inf" > "$tmp/inf.log" 2>&1
rc=$?
skipped=$(awk -F, '$1 == "amp" && $6 == 1 { printf "%s ", $3 }' "$tmp/inf/steps.csv" 2>/dev/null)
ok "$([ $rc -eq 0 ] && [ "$skipped" = "3 8 " ] && echo 1)" \
   "an inf on rank 1 only: rank 0 skipped steps '$skipped' (want 3 8), the replicas agree (exit $rc)"
scales=$(awk -F, '$1 == "amp" && ($3 == 3 || $3 == 4 || $3 == 8 || $3 == 9) { printf "%s ", $5 }' "$tmp/inf/steps.csv")
ok "$([ "$scales" = "65536 32768 32768 16384 " ] && echo 1)" "the scale backed off at both: $scales"

AMPBENCH_FAULT=rank-inf-unreduced "${mpi[@]}" "$faulty" run --modes amp "${common[@]}" --data-parallel \
  --out "$tmp/unreduced" > "$tmp/unreduced.log" 2>&1
rc=$?
ok "$([ $rc -eq 1 ] && grep -q 'ampbench: the replicas disagree on the parameters' "$tmp/unreduced.log" && echo 1)" \
   "found-inf not reduced: the replicas part and the run says so (exit $rc): $(grep 'disagree' "$tmp/unreduced.log" | head -1)"

# A rank that hangs or dies, with a 3 s timeout: the others end within seconds, with one line.
for fault in rank-hangs rank-dies; do
  for how in data-parallel sweep; do
    flags=(--modes fp32,amp "${common[@]}" --dist-timeout 3)
    [ $how = data-parallel ] && flags+=(--data-parallel)
    start=$(date +%s)
    AMPBENCH_FAULT=$fault timeout 120 "${mpi[@]}" "$faulty" run "${flags[@]}" --out "$tmp/$fault-$how" \
      > "$tmp/$fault-$how.log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    if [ $fault = rank-hangs ]; then
      # rank 0 waited 3 s for it, said so and ended every rank (exit 6: AMP_EDIST).
      ok "$([ $rc -eq 6 ] && [ $took -lt 60 ] && grep -q 'ampbench: rank .*(--dist-timeout).*it died or hangs\|ampbench: rank 0 of 2: .*did not take part within 3 s (--dist-timeout)' "$tmp/$fault-$how.log" && echo 1)" \
         "$fault, $how: exit $rc after ${took}s: $(grep -- '--dist-timeout' "$tmp/$fault-$how.log" | head -1)"
    else
      # the launcher sees the death and stops the others, which say where they were.
      ok "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -lt 60 ] && grep -q 'ampbench: interrupted (signal 15) \|--dist-timeout' "$tmp/$fault-$how.log" && echo 1)" \
         "$fault, $how: exit $rc after ${took}s: $(grep 'ampbench: interrupted\|dist-timeout' "$tmp/$fault-$how.log" | head -1)"
    fi
    ok "$(jq -r '.complete' "$tmp/$fault-$how/run.json" 2>/dev/null | grep -qx false && echo 1)" \
       "$fault, $how: run.json marked incomplete"
  done
done
summary
