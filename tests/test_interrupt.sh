#!/usr/bin/env bash
# SIGINT and SIGTERM during training: the run stops after the current step, writes the epochs
# that finished with "complete": false, says where they are, and exits 130 / 143.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
for sig in INT TERM; do
  "$bin" run --modes fp32 --epochs 500 --train-limit 1000 --test-limit 200 --no-progress \
    --out "$tmp/$sig" > "$tmp/$sig.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do  # wait (up to 60 s) until two epochs have finished
    [ "$(grep -c '^  fp32 ' "$tmp/$sig.log")" -ge 2 ] && break
    sleep 0.1
  done
  kill -"$sig" "$pid"
  wait "$pid"
  rc=$?
  want=$([ "$sig" = INT ] && echo 130 || echo 143)
  rows=$(($(wc -l < "$tmp/$sig/epochs.csv") - 1))
  ok "$([ "$rc" -eq "$want" ] && grep -q '"complete":	false' "$tmp/$sig/run.json" && [ "$rows" -ge 2 ] && [ "$rows" -lt 500 ] \
        && grep -q "interrupted" "$tmp/$sig.log" && grep -q "epochs that finished are in $tmp/$sig" "$tmp/$sig.log" && echo 1)" \
     "SIG$sig: exit $rc (want $want), $rows epochs written"
done
summary
