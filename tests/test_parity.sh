#!/usr/bin/env bash
# Step parity: every recipe, under both policies, within its per-dtype tolerance of fp32 on the
# same weights and batch (exit 0, parity.json written); a loss scale that overflows FP16 makes
# the amp gradients inf (1e19 x the loss gradient), which parity reports as a failure (exit 1).
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
all=fp32,tf32,amp,amp-static,amp-noscale,bf16,fp16-pure
for policy in seed autocast; do
  "$bin" parity --modes "$all" --policy "$policy" --train-limit 1000 --test-limit 100 --out "$tmp/$policy" > "$tmp/$policy.log" 2>&1
  rc=$?
  ok "$([ $rc -eq 0 ] && [ "$(grep -c '"pass":	true' "$tmp/$policy/parity.json")" -ge 49 ] && echo 1)" \
     "policy $policy: parity exit $rc: $(grep FAIL "$tmp/$policy.log")"
done
"$bin" parity --modes amp --scale-init 1e19 --train-limit 1000 --test-limit 100 --out "$tmp/overflow" > "$tmp/overflow.log" 2>&1
rc=$?
ok "$([ $rc -eq 1 ] && grep -q 'FAIL (inf/NaN)' "$tmp/overflow.log" && grep -q 'would be skipped' "$tmp/overflow.log" && echo 1)" \
   "an overflowing loss scale fails parity with exit 1 (got $rc)"
summary
