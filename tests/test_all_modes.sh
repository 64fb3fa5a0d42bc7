#!/usr/bin/env bash
# Every recipe trains and evaluates briefly (1 epoch, 256 training and 128 test samples) and its
# results are written: a short end-to-end pass over all the code paths, for the sanitizer suite
# (make test-sanitize), which skips the long accuracy tests (label `long`: recipes, verify_gate).
# The list of recipes is taken from ampbench itself, so a new recipe is covered automatically.
set -u
bin=$1
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1

modes=$("$bin" run --modes '?' 2>&1 | sed -n 's/.*(known: \(.*\))$/\1/p' | tr -d ' ')
n=$(tr ',' '\n' <<<"$modes" | grep -c .)
ok "$([ "$n" -ge 1 ] && echo 1)" "no recipe list in \`ampbench run --modes ?\`'s message"
if [ "$n" -ge 1 ]; then
  "$bin" run --modes "$modes" --epochs 1 --train-limit 256 --test-limit 128 --no-progress \
    --out "$tmp/run" >"$tmp/log" 2>&1
  rc=$?
  ok "$([ "$rc" -eq 0 ] && echo 1)" "ampbench run --modes $modes exited $rc: $(tail -n 5 "$tmp/log")"
  rows=$(($(wc -l <"$tmp/run/epochs.csv" 2>/dev/null || echo 1) - 1))
  ok "$([ "$rows" -eq "$n" ] && echo 1)" "epochs.csv has $rows rows, expected one per recipe ($n)"
  ok "$(grep -q '"complete":	true' "$tmp/run/run.json" 2>/dev/null && echo 1)" "run.json does not say complete"
  ok "$([ ! -e results ] && echo 1)" "a results/ folder appeared in the working directory"
  echo "recipes: $modes"
fi
summary
