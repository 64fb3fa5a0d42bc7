#!/usr/bin/env bash
# Every recipe trains 2 epochs on the first 10,000 Fashion-MNIST images and ends within 1.0
# percentage point of fp32's test accuracy (full test set, same seed); amp-noscale reports
# gradient underflow and amp (dynamic scaling) reports less; FP16 activations take less memory.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
modes=fp32,tf32,amp,amp-static,amp-noscale,bf16,fp16-pure
"$bin" run --modes "$modes" --epochs 2 --train-limit 10000 --no-progress --out "$tmp/run" >/dev/null || exit 1
csv=$tmp/run/epochs.csv
col() { awk -F, -v m="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
                                      $1 == m && $2 == 2 { print $k }' "$csv"; }
fp32=$(col fp32 test_acc)
for m in ${modes//,/ }; do
  acc=$(col "$m" test_acc)
  echo "$m: test accuracy $acc (fp32 $fp32)"
  ok "$(awk -v a="$acc" -v b="$fp32" 'BEGIN { d = a - b; if (d < 0) d = -d; print (d <= 0.01) }')" \
     "$m test accuracy $acc is more than 1.0 pp from fp32's $fp32"
done
noscale=$(col amp-noscale grad_underflow_frac)
amp=$(col amp grad_underflow_frac)
echo "gradient underflow fraction, epoch 2: amp-noscale $noscale, amp $amp"
ok "$(awk -v a="$noscale" -v b="$amp" 'BEGIN { print (a > 0 && b < a) }')" \
   "amp-noscale underflow $noscale should be > 0 and above amp's $amp"
fp32_act=$(col fp32 act_bytes)
amp_act=$(col amp act_bytes)
ok "$(awk -v a="$amp_act" -v b="$fp32_act" 'BEGIN { print (a < 0.6 * b) }')" \
   "amp activation bytes $amp_act are not well below fp32's $fp32_act"
ok "$([ -s "$tmp/run/steps.csv" ] && [ "$(grep -c '^amp,' "$tmp/run/steps.csv")" -eq 626 ] && echo 1)" \
   "steps.csv should hold 2 x 313 amp steps"
summary
