#!/usr/bin/env bash
# Fault injection: each classic mixed-precision implementation bug, planted by the test-only
# binary ampbench-faulty (harness/model/faults.h), makes `ampbench parity` exit 1 and name the
# cause; the same command on the unmodified code passes, and the ampbench binary ignores
# AMPBENCH_FAULT (it has no path to the faults).
set -u
bin=$1 faulty=$2
. "$(dirname "$0")/lib.sh"
common=(--modes fp32,amp --train-limit 500 --test-limit 100)
# fault, extra flags, a phrase its cause must contain. The loss scaled twice at the default 2^16
# overflows (2^32 x the gradient) and the step is skipped; at 16 it is 16x too large.
cases=(
  "no-unscale||it was not undone"
  "scaled-twice|--scale-init 16|it was not undone"
  "stale-master||did not move in the step"
  "stale-copy||copy was not refreshed"
  "step-on-inf|--scale-init 1e19|such a step must be skipped"
  "no-backoff|--scale-init 1e19|did not back off"
)
for c in "${cases[@]}"; do
  IFS='|' read -r fault extra phrase <<< "$c"
  # shellcheck disable=SC2086
  AMPBENCH_FAULT=$fault "$faulty" parity "${common[@]}" $extra --out "$tmp/$fault" > "$tmp/$fault.log" 2>&1
  rc=$?
  ok "$([ $rc -eq 1 ] && grep -q "FAIL cause: .*$phrase" "$tmp/$fault.log" && grep -q '"cause"' "$tmp/$fault/parity.json" && echo 1)" \
     "$fault: parity exit $rc, cause: $(grep 'cause' "$tmp/$fault.log")"
  # shellcheck disable=SC2086
  "$bin" parity "${common[@]}" $extra --out "$tmp/$fault-clean" > "$tmp/$fault-clean.log" 2>&1
  rc=$?
  ok "$(! grep -q 'cause' "$tmp/$fault-clean.log" && { [ "$extra" = "--scale-init 1e19" ] || [ $rc -eq 0 ]; } && echo 1)" \
     "$fault: without the fault no cause is named (exit $rc)"
done
AMPBENCH_FAULT=no-unscale "$bin" parity "${common[@]}" --out "$tmp/ignored" > "$tmp/ignored.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "ampbench ignores AMPBENCH_FAULT"
AMPBENCH_FAULT=bogus "$faulty" parity "${common[@]}" --out "$tmp/bogus" > "$tmp/bogus.log" 2>&1
ok "$([ $? -eq 2 ] && grep -q "unknown fault 'bogus'" "$tmp/bogus.log" && echo 1)" "an unknown fault is refused"
summary
