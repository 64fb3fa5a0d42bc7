#!/usr/bin/env bash
# The NVTX ranges a profiler sees, checked without Nsight: short trainings run with the recorder
# (tests/nvtx_recorder.c) injected through NVTX_INJECTION64_PATH, and their traces must show
#   - the range tree of the seed network in the domain ampbench, exactly: epoch > step > forward
#     > each layer's <layer>_forward (but the ReLU's: it runs in the conv's epilogue, fused),
#     step > backward > each <layer>_backward (but the ReLU's: it runs in the linear's backward,
#     fused), step > scaler, optimizer, scaler_update;
#     evaluate > forward > each layer but the ReLU;
#   - pushes and pops that balance, every pop closing the innermost open range, nothing open at
#     exit;
#   - one "profile_steps" start/end range (the capture range of --profile-steps A:B) holding
#     exactly global steps A to B (2 epochs: the range crosses the epoch boundary), and, when B
#     is past the run's last step, closed after that step;
#   - a text profile (NVTX_RECORDER_PROFILE) with a line per range and the step count, and the
#     same from scripts/profile.sh (make profile) where neither nsys nor ncu is on the PATH.
# The checker is first shown to fail on doctored traces (a pop dropped, a capture range moved).
# Usage: test_nvtx_ranges.sh AMPBENCH LIBNVTX_RECORDER [DEVICE]; DEVICE cuda (the emulated one of
# tests/cuda_emu) also runs with CUDA Graphs, where replayed steps show the step range alone.
set -u
bin=$1 recorder=$2 device=${3:-cpu}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# 6 steps of 32 per epoch, 2 epochs.
steps=12
record() { # NAME args...: a traced run; its trace in $tmp/NAME.tsv, its profile in $tmp/NAME.prof
  local name=$1; shift
  NVTX_INJECTION64_PATH=$recorder NVTX_RECORDER_TRACE=$tmp/$name.tsv \
    NVTX_RECORDER_PROFILE=$tmp/$name.prof \
    "$bin" run --device "$device" --modes amp --epochs 2 --train-limit 192 --test-limit 64 \
    --batch 32 --no-progress --out "$tmp/$name" "$@" >"$tmp/$name.log" 2>&1
  local rc=$?
  ok "$([ "$rc" = 0 ] && echo 1)" "$name: ampbench run $* exited $rc: $(tail -n 3 "$tmp/$name.log")"
  ok "$([ -s "$tmp/$name.tsv" ] && echo 1)" "$name: no trace (was the recorder loaded?)"
}

# check TRACE A B LAST: prints one line per fault (nothing: the trace is right). LAST: the step the
# capture range must end after (B, or the run's last step when B is past it).
check() {
  awk -F'\t' -v first="$2" -v last="$4" '
    $1 == "push" || $1 == "pop" { if ($3 != "ampbench") print "range outside the ampbench domain: " $0 }
    $1 == "push" {
      key = $2 SUBSEP $3; stack[key, ++depth[key]] = $4
      if ($4 == "epoch/step") { step++; if (open) inside[step] = 1 }
    }
    $1 == "pop" {
      key = $2 SUBSEP $3
      if (depth[key] < 1) print "pop with nothing open: " $0
      else if (stack[key, depth[key]] != $4) print "pop of " $4 " while " stack[key, depth[key]] " is innermost"
      depth[key]--
    }
    $1 == "start" && $4 == "profile_steps" {
      starts++; open = 1
      for (k in depth) if (depth[k] > 0 && stack[k, depth[k]] ~ /step/) print "capture range opened inside a step"
    }
    $1 == "end" && $4 == "profile_steps" {
      ends++; open = 0; ended_after = step
      for (k in depth) if (depth[k] > 0 && stack[k, depth[k]] ~ /step/) print "capture range closed inside a step"
    }
    $1 ~ /unmatched|unknown|unclosed/ { print "recorder fault: " $0 }
    END {
      for (k in depth) if (depth[k] != 0) print "unbalanced: " depth[k] " ranges left open"
      if (starts != 1 || ends != 1) print "profile_steps: " starts + 0 " starts and " ends + 0 " ends, expected one each"
      n = 0; lo = 0; hi = 0
      for (s in inside) { n++; if (!lo || s + 0 < lo) lo = s + 0; if (s + 0 > hi) hi = s + 0 }
      if (lo != first || hi != last || n != last - first + 1)
        print "the capture range holds steps " lo ".." hi " (" n " steps), expected " first ".." last
      if (ended_after != last) print "the capture range ended after step " ended_after ", expected " last
    }' "$1"
}

# The tree: every path pushed in the domain ampbench, sorted.
tree() { awk -F'\t' '$1 == "push" && $3 == "ampbench" { print $4 }' "$1" | sort -u; }
cat >"$tmp/expected" <<'EOF'
epoch
epoch/step
epoch/step/backward
epoch/step/backward/conv_backward
epoch/step/backward/fc_backward
epoch/step/forward
epoch/step/forward/conv_forward
epoch/step/forward/fc_forward
epoch/step/forward/loss_forward
epoch/step/optimizer
epoch/step/scaler
epoch/step/scaler_update
evaluate
evaluate/forward
evaluate/forward/conv_forward
evaluate/forward/fc_forward
evaluate/forward/loss_forward
EOF
expect_tree() { # NAME
  tree "$tmp/$1.tsv" >"$tmp/$1.tree"
  ok "$(cmp -s "$tmp/expected" "$tmp/$1.tree" && echo 1)" \
    "$1: the range tree differs from the seed network's (< expected, > seen): $(diff "$tmp/expected" "$tmp/$1.tree" | grep '^[<>]' | tr '\n' ' ')"
}
expect_clean() { # NAME A B LAST
  local faults; faults=$(check "$tmp/$1.tsv" "$2" "$3" "$4")
  ok "$([ -z "$faults" ] && echo 1)" "$1: $(head -n 5 <<<"$faults" | tr '\n' ';')"
}

eager=()  # every step issues its ops (on the CUDA backend: no graph replays)
[ "$device" = cuda ] && eager=(--no-graph)
record eager --profile-steps 5:9 "${eager[@]}"
expect_tree eager
expect_clean eager 5 9 9
pushes=$(grep -c $'^push\t.*\tepoch/step$' "$tmp/eager.tsv")
ok "$([ "$pushes" = "$steps" ] && echo 1)" "eager: $pushes step ranges, expected $steps"
# The profile: a line per range, the step's call count.
ok "$(awk -v n="$steps" '$1 == "step" && $2 == n { f = 1 } END { print f + 0 }' "$tmp/eager.prof")" \
  "eager: the text profile has no 'step $steps ...' line: $(head -n 4 "$tmp/eager.prof" | tr '\n' ';')"
for r in ampbench@epoch forward conv_forward backward conv_backward scaler optimizer ampbench@evaluate \
         ampbench@profile_steps; do
  ok "$(awk -v r="$r" '$1 == r { f = 1 } END { print f + 0 }' "$tmp/eager.prof")" "eager: no '$r' line in the profile"
done

# B past the last step: the capture range closes after the run's last step.
record past_end --profile-steps 10:99 "${eager[@]}"
expect_clean past_end 10 99 "$steps"

if [ "$device" = cuda ]; then
  # With CUDA Graphs: the captured step shows the whole tree, replays the step range alone.
  record graphs --profile-steps 5:9
  expect_tree graphs
  expect_clean graphs 5 9 9
  fwd=$(grep -c $'^push\t.*\tepoch/step/forward$' "$tmp/graphs.tsv")
  ok "$([ "$fwd" -ge 1 ] && [ "$fwd" -lt "$steps" ] && echo 1)" \
    "graphs: $fwd steps show a forward range, expected at least 1 and fewer than $steps (replays)"
fi

# scripts/profile.sh (make profile) where neither nsys nor ncu is on the PATH: the text profile.
if [ "$device" = cpu ]; then
  (cd "$tmp" && PATH=/usr/bin:/bin NVTX_RECORDER=$recorder bash "$here/../scripts/profile.sh" \
     "$bin" --device cpu --modes amp --epochs 1 --train-limit 96 --test-limit 32 --profile-steps 2:3 \
     --no-progress) >"$tmp/profile.out" 2>&1
  rc=$?
  ok "$([ "$rc" = 0 ] && grep -q '^ampbench@profile_steps  *1 ' "$tmp/profile.out" &&
        grep -q '^  step  *3 ' "$tmp/profile.out" && grep -q 'nsys profile' "$tmp/profile.out" && echo 1)" \
    "profile.sh without Nsight (exit $rc) must print the text profile and the Nsight commands: $(tail -n 5 "$tmp/profile.out")"
fi

# The checker fails where it must: a pop dropped, the capture range one step late.
awk -F'\t' '!(dropped == 0 && $1 == "pop" && $4 == "epoch/step/scaler") { print; next } { dropped = 1 }' \
  "$tmp/eager.tsv" >"$tmp/bad_pop.tsv"
ok "$([ -n "$(check "$tmp/bad_pop.tsv" 5 9 9)" ] && echo 1)" "the checker accepts a trace with a pop dropped"
ok "$([ -n "$(check "$tmp/eager.tsv" 6 9 9)" ] && echo 1)" "the checker accepts a capture range from step 5 as 6..9"
ok "$([ -n "$(check "$tmp/eager.tsv" 5 10 10)" ] && echo 1)" "the checker accepts a capture range to step 9 as 5..10"
summary
