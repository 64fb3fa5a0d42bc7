#!/usr/bin/env bash
# The FP8 recipes end to end on the CPU reference: fp8-delayed, fp8-current and mxfp8 train the
# seed network (and lenet5 under autocast) and learn; fp8.csv holds every quantized tensor at
# every step; delayed scaling starts at scale 1 and then takes max / (the history's max amax),
# with --amax-history 1 the previous step's amax; current scaling takes this step's; run.json
# and the report carry the statistics and the first saturation; parity passes them with SQNR
# per tensor; bad FP8 flags are refused with one line.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"

modes=fp32,fp8-delayed,fp8-current,mxfp8
"$bin" run --modes "$modes" --epochs 2 --train-limit 2000 --test-limit 1000 --no-progress \
  --out "$tmp/run" >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; exit 1; }
csv=$tmp/run/fp8.csv
ok "$([ -s "$csv" ] && echo 1)" "fp8.csv was not written"
ok "$([ "$(head -1 "$csv")" = "mode,epoch,step,tensor,format,scale,amax,saturated_frac,underflow_frac,sqnr_db" ] && echo 1)" \
   "fp8.csv header: $(head -1 "$csv")"
# 2 epochs x 63 steps x 3 tensors (the seed's conv: input, weight, grad) per per-tensor FP8
# recipe; mxfp8 has 4: the input and the weight blocked for the forward, the input and the
# gradient along the plane pixels for the filter gradient (the network's first layer computes no
# input gradient: no copies of dy and w for it).
for m in fp8-delayed fp8-current mxfp8; do
  want=378; [ "$m" = mxfp8 ] && want=504
  rows=$(grep -c "^$m," "$csv")
  ok "$([ "$rows" -eq "$want" ] && echo 1)" "$m: $rows rows in fp8.csv, want $want"
done
mx_tensors=$(awk -F, '$1 == "mxfp8" && !s[$4]++ { printf "%s ", $4 }' "$csv")
ok "$([ "$mx_tensors" = "conv.input conv.weight conv.input.pixels conv.grad.pixels " ] && echo 1)" \
   "mxfp8's tensors: $mx_tensors"
ok "$([ "$(grep -c '^fp8-current,[0-9]*,[0-9]*,conv\.[a-z]*\.' "$csv")" -eq 0 ] && echo 1)" \
   "per-tensor scaling has no second copies"

ok "$([ "$(grep -c '^fp32,' "$csv")" -eq 0 ] && echo 1)" "fp32 has no FP8 rows"
grad_fmt=$(awk -F, '$1 == "fp8-delayed" && $4 == "conv.grad" { print $5; exit }' "$csv")
ok "$([ "$grad_fmt" = e5m2 ] && echo 1)" "fp8-delayed's gradient format is $grad_fmt, want e5m2"
mx_fmt=$(awk -F, '$1 == "mxfp8" && $4 == "conv.grad.pixels" { print $5; exit }' "$csv")
ok "$([ "$mx_fmt" = e4m3 ] && echo 1)" "mxfp8's gradient format is $mx_fmt, want e4m3"

# Delayed: step 1 at scale 1; each later scale is max / the largest amax so far (the history of
# 1024 steps holds them all), to FP32 precision. Current: max / this step's own amax.
check_scales() { # mode tensor fmt_max rule(running|own|previous) csv
  awk -F, -v m="$1" -v t="$2" -v max="$3" -v rule="$4" '
    $1 == m && $4 == t {
      k++
      if (k == 1 && rule != "own") { if ($6 != 1) bad = "step 1 scale " $6 }
      else {
        want = rule == "own" ? max / $7 : rule == "running" ? max / run : max / prev
        if ($6 < want * (1 - 1e-6) || $6 > want * (1 + 1e-6)) bad = "step " k " scale " $6 " want " want
      }
      run = $7 > run ? $7 : run; prev = $7
    }
    END { print bad == "" ? 1 : bad }' "$5"
}
for t in conv.input conv.weight conv.grad; do
  max=448; [ "$t" = conv.grad ] && max=57344
  r=$(check_scales fp8-delayed "$t" $max running "$csv")
  ok "$r" "fp8-delayed $t: $r"
  r=$(check_scales fp8-current "$t" $max own "$csv")
  ok "$r" "fp8-current $t: $r"
done
"$bin" run --modes fp8-delayed --amax-history 1 --epochs 1 --train-limit 640 --test-limit 100 \
  --no-progress --out "$tmp/h1" >/dev/null 2>&1 || exit 1
r=$(check_scales fp8-delayed conv.weight 448 previous "$tmp/h1/fp8.csv")
ok "$r" "--amax-history 1: the previous step's amax: $r"

# Every FP8 recipe learns, within 1 pp of fp32 here; SQNR of the input about E4M3's 31 dB.
acc() { awk -F, -v m="$1" '$1 == m && $2 == 2 { print $6 }' "$tmp/run/epochs.csv"; }
fp32=$(acc fp32)
for m in fp8-delayed fp8-current mxfp8; do
  a=$(acc "$m")
  ok "$(awk -v a="$a" -v b="$fp32" 'BEGIN { d = a - b; if (d < 0) d = -d; print (a > 0.6 && d <= 0.01) }')" \
     "$m test accuracy $a vs fp32 $fp32"
done
sqnr=$(awk -F, '$1 == "fp8-current" && $4 == "conv.input" { s += $10; n++ } END { print s / n }' "$csv")
ok "$(awk -v s="$sqnr" 'BEGIN { print (s > 28 && s < 36) }')" "fp8-current conv.input mean SQNR $sqnr dB"

# run.json and the report.
j=$tmp/run/run.json
ok "$(jq -r '.modes["fp8-delayed"].fp8.scaling' "$j" | grep -qx delayed && echo 1)" "run.json fp8.scaling"
ok "$(jq -r '.modes["fp8-delayed"].fp8.tensors | length' "$j" | grep -qx 3 && echo 1)" "run.json fp8.tensors"
ok "$(jq -r '.modes["mxfp8"].epochs[1].fp8[0].tensor' "$j" | grep -qx conv.input && echo 1)" \
   "run.json per-epoch fp8 statistics"
ok "$(jq -r '.config.fp8.amax_history' "$j" | grep -qx 1024 && echo 1)" "run.json config.fp8.amax_history"
ok "$(grep -q '^### FP8 scaling' "$tmp/run/report.md" && echo 1)" "report.md has the FP8 section"
if command -v gnuplot >/dev/null 2>&1; then
  ok "$([ -s "$tmp/run/plots/fp8.png" ] && [ -s "$tmp/run/plots/fp8.svg" ] && \
        grep -q '^### FP8 scales and SQNR' "$tmp/run/report.md" && echo 1)" "the FP8 plot is drawn and linked"
fi
# steps.csv's FP8 columns: per step the worst SQNR and largest fractions of fp8.csv's tensors
# at that step; nan for fp32.
steps="$tmp/run/steps.csv"
ok "$(head -1 "$steps" | grep -q ',fp8_sqnr_min_db,fp8_saturated_frac_max,fp8_underflow_frac_max$' && echo 1)" \
   "steps.csv ends with the FP8 columns"
bad=$(awk -F, 'FNR == 1 { next }
  NR == FNR { k = $1 "," $2 "," $3
              if (!(k in q) || $10 + 0 < q[k] + 0) q[k] = $10
              if (!(k in s) || $8 + 0 > s[k] + 0) s[k] = $8
              if (!(k in u) || $9 + 0 > u[k] + 0) u[k] = $9; next }
  { k = $1 "," $2 "," $3
    if ($1 == "fp32") { if ($(NF - 2) != "nan" || $(NF - 1) != "nan" || $NF != "nan") n++ }
    else if ($(NF - 2) != q[k] || $(NF - 1) != s[k] || $NF != u[k]) n++
    rows++ }
  END { print n + 0, rows + 0 }' "$csv" "$steps")
ok "$([ "${bad% *}" = 0 ] && [ "${bad#* }" -gt 0 ] && echo 1)" \
   "steps.csv's FP8 columns disagree with fp8.csv on ${bad% *} of ${bad#* } steps"
# fp8.csv is grouped by tensor within a mode: each tensor's steps are one run of rows.
runs=$(awk -F, 'NR > 1 { k = $1 "|" $4; if (k != last) { n[k]++; last = k } } END { m = 0; for (k in n) if (n[k] > m) m = n[k]; print m }' "$csv")
ok "$([ "$runs" = 1 ] && echo 1)" "fp8.csv rows of one tensor are not contiguous ($runs runs)"
ok "$(grep -Eq '^\*\*fp8-delayed\*\* \(delayed scaling\)\. (First saturation: epoch [0-9]+, step [0-9]+, tensor conv\.[a-z]+|No tensor saturated)\.' \
   "$tmp/run/report.md" && echo 1)" "report.md names the first saturation"
ok "$(grep -q 'in e4m3(fp32)' "$tmp/run.log" && echo 1)" "the precision trace shows the FP8 input"

# LeNet-5 under autocast: its linear layers too; parity with SQNR.
"$bin" run --net lenet5 --policy autocast --modes fp8-current --epochs 1 --train-limit 500 \
  --test-limit 100 --no-progress --out "$tmp/lenet" >/dev/null 2>&1 || exit 1
n=$(jq -r '.modes["fp8-current"].fp8.tensors | length' "$tmp/lenet/run.json")
ok "$([ "$n" -eq 15 ] && echo 1)" "lenet5 under autocast quantizes 15 tensors (5 layers x 3), got $n"
"$bin" parity --modes fp32,fp8-delayed,fp8-current,mxfp8 --out "$tmp/parity" >"$tmp/parity.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "parity of the FP8 recipes: $(tail -1 "$tmp/parity.log")"
ok "$(grep -q sqnr_dB "$tmp/parity.log" && jq -e '.modes["fp8-current"].tensors.logits.sqnr_db > 18' \
   "$tmp/parity/parity.json" >/dev/null && echo 1)" "parity prints and records SQNR"

# Bad flags: one line, exit 2, nothing written.
for args in "--amax-history 0" "--amax-history x" "--mx-scale ceil"; do
  # shellcheck disable=SC2086
  "$bin" run --modes mxfp8 $args --out "$tmp/bad" >"$tmp/bad.log" 2>&1
  rc=$?
  ok "$([ $rc -eq 2 ] && [ "$(wc -l <"$tmp/bad.log")" -eq 1 ] && [ ! -e "$tmp/bad" ] && echo 1)" \
     "$args: exit $rc, $(cat "$tmp/bad.log")"
done
summary
