#!/usr/bin/env bash
# SIGINT and SIGTERM during training: the run stops after the current step, writes the epochs
# that finished with "complete": false, says where they are, and exits 130 / 143; so do verify
# (with its report) and bench (the finished cells); SIGINT while a run draws its plots stops the
# drawing, keeps the complete results and says where they are. SIGKILL, which nothing can catch,
# still keeps every finished epoch: the results are rewritten after each one, and `report` draws
# them.
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

# wait_rows LOG N: until the log has N epoch rows of fp32 (up to 60 s)
wait_rows() { for _ in $(seq 600); do [ "$(grep -c '^  fp32 ' "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }

# SIGKILL after three epochs: run.json (incomplete, valid JSON), three or more rows, a report.
"$bin" run --modes fp32 --epochs 500 --train-limit 1000 --test-limit 200 --no-progress \
  --out "$tmp/kill" > "$tmp/kill.log" 2>&1 &
pid=$!
# until run.json, the last file written after an epoch, holds three epochs (up to 60 s)
epochs_in() { python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['modes']['fp32']['epochs']))" "$1" 2>/dev/null || echo 0; }
for _ in $(seq 300); do [ "$(epochs_in "$tmp/kill/run.json")" -ge 3 ] && break; sleep 0.2; done
kill -KILL "$pid"; wait "$pid"; rc=$?
rows=$(($(wc -l < "$tmp/kill/epochs.csv") - 1))
steps=$(($(wc -l < "$tmp/kill/steps.csv") - 1))
"$bin" report "$tmp/kill" > "$tmp/kill-report.log" 2>&1; rrc=$?
ok "$([ "$rc" -eq 137 ] && [ "$rows" -ge 3 ] && [ "$steps" -ge $((rows * 32)) ] \
      && python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['complete'] is False and len(j['modes']['fp32']['epochs']) >= 3" "$tmp/kill/run.json" \
      && [ "$rrc" -eq 0 ] && grep -q "Incomplete run" "$tmp/kill/report.md" && [ -s "$tmp/kill/plots/loss.png" ] && echo 1)" \
   "SIGKILL after 3 epochs: exit $rc, $rows epochs and $steps steps kept, report exit $rrc"

# verify, SIGTERM: stops, writes the finished epochs and a report, says where, exits 143.
"$bin" verify --modes fp32,amp --epochs 500 --train-limit 1000 --test-limit 200 --no-progress \
  --out "$tmp/verify" > "$tmp/verify.log" 2>&1 &
pid=$!
wait_rows "$tmp/verify.log" 2
kill -TERM "$pid"; wait "$pid"; rc=$?
ok "$([ "$rc" -eq 143 ] && grep -q '"complete":	false' "$tmp/verify/run.json" && [ -f "$tmp/verify/report.md" ] \
      && grep -q "epochs that finished are in $tmp/verify" "$tmp/verify.log" && echo 1)" \
   "verify SIGTERM: exit $rc (want 143), report and where: $(tail -3 "$tmp/verify.log")"

# bench, SIGINT: stops after the current cell, writes the finished cells, says where, exits 130.
"$bin" bench --modes fp32 --batches 8,16,32,64,128,256 --channels 4 --train-limit 512 \
  --test-limit 64 --out "$tmp/bench" > "$tmp/bench.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ "$(grep -c '^  seed ' "$tmp/bench.log")" -ge 1 ] && break; sleep 0.1; done
kill -INT "$pid"; wait "$pid"; rc=$?
cells=$(($(wc -l < "$tmp/bench/bench.csv") - 1))
ok "$([ "$rc" -eq 130 ] && [ "$cells" -ge 1 ] && [ "$cells" -lt 6 ] && grep -q "finished cells are in $tmp/bench" "$tmp/bench.log" && echo 1)" \
   "bench SIGINT: exit $rc (want 130), $cells cells written: $(tail -2 "$tmp/bench.log")"
# run, SIGINT while drawing its plots (a gnuplot that hangs): the results stay complete, the
# drawing stops, one line says where the results are, exit 130.
mkdir "$tmp/fakebin" && printf '#!/bin/sh\nsleep 30\n' > "$tmp/fakebin/gnuplot" && chmod +x "$tmp/fakebin/gnuplot"
PATH=$tmp/fakebin:$PATH "$bin" run --modes fp32 --epochs 1 --train-limit 300 --test-limit 100 \
  --no-progress --out "$tmp/plots" > "$tmp/plots.log" 2> "$tmp/plots.err" &
pid=$!
for _ in $(seq 600); do grep -q '^results written to' "$tmp/plots.log" && break; sleep 0.1; done
sleep 0.5; kill -INT "$pid"; wait "$pid"; rc=$?
ok "$([ "$rc" -eq 130 ] && [ "$(wc -l < "$tmp/plots.err")" -eq 1 ] && grep -q "while drawing plot loss" "$tmp/plots.err" \
      && grep -q "the results are in $tmp/plots" "$tmp/plots.err" && grep -q '"complete":	true' "$tmp/plots/run.json" \
      && ! ls -a "$tmp/plots/plots" | grep -q '^\.draw-\|\.png$' && echo 1)" \
   "run SIGINT while drawing: exit $rc (want 130): $(cat "$tmp/plots.err")"
summary
