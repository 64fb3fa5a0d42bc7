#!/usr/bin/env bash
# The report: a short run ends with report.md and every plot as a valid PNG and SVG; report.md
# names every mode with its final test accuracy and loss as epochs.csv has them; `ampbench
# report` rebuilds it, fails with one line and exit 2 on a missing or broken run folder, and
# without gnuplot still writes the report, saying the plots were skipped.
set -u
bin=$(realpath "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else fail "$what"; fi; }

modes="fp32 amp amp-noscale bf16"
run=$tmp/run
if ! "$bin" run --modes "${modes// /,}" --epochs 2 --train-limit 2000 --test-limit 1000 \
     --no-progress --out "$run" >run.out 2>run.err; then
  fail "ampbench run failed: $(cat run.err)"
  echo "$passed passed, $failed failed"
  exit 1
fi
check "run prints where report.md is" grep -qF "report: $run/report.md" run.out

# Every image: PNG signature and a real picture (> 5 KB, IHDR width >= 800 px); SVG text with
# its closing tag (> 3 KB).
png_ok() {
  local f=$1
  [ -f "$f" ] || return 1
  [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || return 1
  [ "$(stat -c %s "$f")" -gt 5120 ] || return 1
  local width=$((16#$(tail -c +17 "$f" | head -c 4 | od -An -tx1 | tr -d ' \n')))
  [ "$width" -ge 800 ]
}
svg_ok() {
  local f=$1
  [ -f "$f" ] || return 1
  head -c 200 "$f" | head -n 1 | grep -qE '^(<\?xml|<svg)' || return 1
  grep -q '</svg>' "$f" && [ "$(stat -c %s "$f")" -gt 3072 ]
}
if command -v gnuplot >/dev/null; then
  for p in loss accuracy loss_scale underflow throughput memory; do
    check "plots/$p.png is not a valid PNG of > 5 KB" png_ok "$run/plots/$p.png"
    check "plots/$p.svg is not a valid SVG of > 3 KB" svg_ok "$run/plots/$p.svg"
  done
  check "report.md embeds the plots" grep -qF '![Loss scale](plots/loss_scale.png)' "$run/report.md"
  check "no plot was skipped" bash -c "! grep -q 'Plots skipped' '$run/report.md'"
else
  fail "gnuplot is not installed (scripts/install-deps.sh): no plots to check"
fi

# report.md: every mode's row with its final test accuracy and loss formatted from epochs.csv.
report=$run/report.md
check "report.md written" test -s "$report"
col() { head -n 1 "$run/epochs.csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
acc_col=$(col test_acc) loss_col=$(col test_loss)
for m in $modes; do
  acc=$(awk -F, -v m="$m" -v c="$acc_col" '$1 == m { a = $c } END { printf "%.2f", 100 * a }' \
        "$run/epochs.csv")
  loss=$(awk -F, -v m="$m" -v c="$loss_col" '$1 == m { l = $c } END { printf "%.4f", l }' \
         "$run/epochs.csv")
  row=$(grep -F "| $m | " "$report" | head -n 1)
  if [[ "$row" == "| $m | $acc% | "* && "$row" == *" | $loss | "* ]]; then ok
  else fail "report.md row of $m lacks $acc% / $loss: '$row'"; fi
done
check "report.md says the modes are not verified" grep -q "Not verified" "$report"
check "report.md has the precision trace" grep -qF "| conv3x3 | fp16 |" "$report"
check "report.md has the environment" grep -q "^| CPU | " "$report"

# `ampbench report` rebuilds the report of an existing run.
cp "$report" before.md
check "ampbench report RUN_DIR exits 0" "$bin" report "$run" >/dev/null
check "the rebuilt report has the same results table" \
  diff <(grep -F '| fp32 | ' before.md) <(grep -F '| fp32 | ' "$report")
check "ampbench report --help" bash -c "'$bin' report --help | grep -q 'usage: ampbench report RUN_DIR'"

# Several fp32 seeds (seeds.csv, as verify --seeds writes it): the loss/accuracy band's CSV.
cp -r "$run" seeded
{ echo "mode,seed,epoch,train_loss,train_acc,test_loss,test_acc"
  awk -F, -v OFS=, 'NR > 1 && $1 == "fp32" { print $1, 1, $2, $3, $4, $5, $6;
                                            print $1, 2, $2, $3 + 0.01, $4, $5 + 0.01, $6 }' \
      "$run/epochs.csv"; } >seeded/seeds.csv
"$bin" report seeded >/dev/null 2>&1
check "fp32_band.csv has fp32's mean and std per epoch" \
  test "$(grep -c '^[0-9]*,2,' seeded/plots/fp32_band.csv)" -eq 2
check "report.md describes the fp32 band" grep -q "mean +- standard deviation over its 2 seeds" \
  seeded/report.md

# Bad input: one line on stderr naming the file and the problem, exit 2.
expect_fail() {
  local want=$1; shift
  local err rc
  err=$("$bin" report "$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq 2 ] && [[ "$err" == *"$want"* ]] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]; then
    ok
  else
    fail "ampbench report $* -> rc=$rc, stderr: $err (wanted: $want)"
  fi
}
expect_fail "$tmp/nowhere: no such run folder" "$tmp/nowhere"
mkdir empty nojson badjson nocsv badcsv
expect_fail "empty/run.json: cannot read" empty
cp "$run/epochs.csv" nojson/
expect_fail "nojson/run.json: cannot read" nojson
printf '{"modes": {' >badjson/run.json; cp "$run/epochs.csv" badjson/
expect_fail "badjson/run.json: not valid JSON" badjson
cp "$run/run.json" nocsv/
expect_fail "nocsv/epochs.csv: cannot read" nocsv
cp "$run/run.json" badcsv/; printf 'mode,epoch\nfp32,1\n' >badcsv/epochs.csv
expect_fail "badcsv/epochs.csv: the header has no column" badcsv
expect_fail "missing RUN_DIR"
expect_fail "'--bogus': unknown option" --bogus

# Without gnuplot: the report is still written and says the plots were skipped and why.
cp -r "$run" nognuplot
rm -f nognuplot/report.md
out=$(env PATH=/nonexistent "$bin" report nognuplot 2>err.txt); rc=$?
check "report without gnuplot exits 0" test "$rc" -eq 0
check "report without gnuplot is written" test -s nognuplot/report.md
check "report without gnuplot says the plots were skipped" \
  grep -q "Plots skipped" nognuplot/report.md
check "report without gnuplot says how to get them" \
  grep -q "gnuplot not found.*apt-get install gnuplot-nox" nognuplot/report.md
check "report without gnuplot warns on stderr" grep -q "warning: 6 of 6 plots skipped" err.txt

# Scripts not found (AMPBENCH_PLOTS_DIR wrong): the same, naming the folder.
cp -r "$run" noscripts
AMPBENCH_PLOTS_DIR=$tmp/none "$bin" report noscripts >/dev/null 2>err.txt; rc=$?
check "report with no scripts exits 0" test "$rc" -eq 0
check "report with no scripts names AMPBENCH_PLOTS_DIR" grep -q "AMPBENCH_PLOTS_DIR" noscripts/report.md

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
