#!/usr/bin/env bash
# The CI accuracy gate: every recipe on 10,000 Fashion-MNIST images for 2 epochs, judged against
# fp32 and against the committed baseline, with JUnit XML; a baseline whose numbers moved fails
# (exit 1, naming the metric); a baseline of another configuration is refused before training
# (exit 2); a diverging recipe fails with that reason while the others are still trained.
set -u
bin=$1
baseline=$2
. "$(dirname "$0")/lib.sh"
common=(--epochs 2 --train-limit 10000 --no-progress)

# 1. The gate.
"$bin" verify --modes fp32,tf32,amp,amp-static,amp-noscale,bf16,fp16-pure "${common[@]}" \
  --baseline "$baseline" --junit "$tmp/junit.xml" --out "$tmp/gate" > "$tmp/gate.log" 2>&1
rc=$?
sed -n '/^verdicts/,$p' "$tmp/gate.log"
ok "$([ $rc -eq 0 ] && grep -q 'verify: every recipe passed' "$tmp/gate.log" && echo 1)" "gate exit $rc"
ok "$([ "$(grep -c '<testcase ' "$tmp/junit.xml")" -eq 7 ] && grep -q 'failures="0"' "$tmp/junit.xml" && echo 1)" \
   "JUnit XML with 7 passing test cases"
ok "$(grep -q '"all_pass":	true' "$tmp/gate/run.json" && grep -q 'every metric within tolerance' "$tmp/gate.log" && echo 1)" \
   "run.json records the verdicts; the baseline matched"

# 2. A baseline whose amp accuracy is 5 pp higher than what ampbench produces: amp fails.
python3 - "$baseline" "$tmp/moved.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
b["modes"]["amp"][1]["test_acc"] += 0.05
json.dump(b, open(sys.argv[2], "w"), indent=1)
PY
"$bin" verify --modes fp32,amp "${common[@]}" --baseline "$tmp/moved.json" --out "$tmp/moved" > "$tmp/moved.log" 2>&1
rc=$?
ok "$([ $rc -eq 1 ] && grep -q 'moved: amp epoch 2 test_acc' "$tmp/moved.log" && grep -q 'amp .*FAIL' "$tmp/moved.log" && echo 1)" \
   "a moved baseline metric fails with exit 1 (got $rc)"

# 3. A baseline of another configuration is refused before any folder or training.
err=$("$bin" verify --modes fp32,amp --epochs 1 --train-limit 10000 --no-progress --baseline "$baseline" --out "$tmp/other" 2>&1 >/dev/null)
rc=$?
ok "$([ $rc -eq 2 ] && [[ "$err" == *"baseline of another configuration: epochs (baseline 2, run 1)"* ]] && [ ! -e "$tmp/other" ] && echo 1)" \
   "another configuration refused with exit 2 (got $rc: $err)"

# 4. Divergence: a learning rate of 1000 blows the loss up; the verdict says so, all modes ran.
"$bin" verify --modes fp32,amp-noscale --epochs 1 --train-limit 2000 --test-limit 500 --lr 1000 --no-progress --out "$tmp/div" > "$tmp/div.log" 2>&1
rc=$?
ok "$([ $rc -eq 1 ] && grep -q 'amp-noscale .*FAIL: diverged' "$tmp/div.log" && grep -q '"amp-noscale":' "$tmp/div/run.json" && echo 1)" \
   "a diverged recipe fails with exit 1 and is still recorded (got $rc)"

summary
