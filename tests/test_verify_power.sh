#!/usr/bin/env bash
# verify catches a real numerical failure (docs/VERIFICATION.md, "Verification power"): with a
# small learning rate and no momentum, fp16-pure's FP16 weights (no FP32 master) swallow the
# small SGD updates (counted in swallowed_updates) and end more than the 1 pp tolerance below
# fp32, while amp, whose FP32 masters keep every update, stays with fp32: exit 1, fp16-pure
# FAIL on accuracy, amp PASS.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
"$bin" verify --modes fp32,amp,fp16-pure --lr 0.00005 --momentum 0 --epochs 3 --seed 1 \
  --train-limit 10000 --test-limit 2000 --no-progress --out "$tmp/v" > "$tmp/v.log" 2>&1
rc=$?
ok "$([ $rc -eq 1 ] && echo 1)" "verify exits 1 (got $rc)"
ok "$(grep -q '^  fp16-pure .*FAIL: accuracy' "$tmp/v.log" && echo 1)" "fp16-pure fails on accuracy: $(grep '^  fp16-pure .*%  ' "$tmp/v.log")"
ok "$(grep -q '^  amp .*PASS' "$tmp/v.log" && echo 1)" "amp passes: $(grep '^  amp .*%  ' "$tmp/v.log")"
sw() { awk -F, -v m="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "swallowed_updates") k = i; next }
                          $1 == m && $2 == 3 { print $k }' "$tmp/v/epochs.csv"; }
ok "$([ "$(sw fp16-pure)" -gt 1000000 ] && [ "$(sw amp)" = 0 ] && echo 1)" \
   "fp16-pure swallowed $(sw fp16-pure) updates in epoch 3, amp $(sw amp)"
summary
