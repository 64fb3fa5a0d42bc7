#!/usr/bin/env bash
# The CLI rejects bad flags with one clear line naming the flag, exit code 2, and no results.
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
passed=0 failed=0

# expect_fail "<expected message fragment>" args...
expect_fail() {
  local want=$1; shift
  local err rc
  err=$("$bin" "$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq 2 ] && [[ "$err" == *"$want"* ]] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] \
     && [ ! -e results ] && [ ! -e out ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: ampbench $* -> rc=$rc, stderr: $err (wanted: $want)" >&2
  fi
}

expect_fail "--bogus: unknown option" run --bogus
expect_fail "--modes: unknown mode 'fp64' (known: fp32" run --modes fp64
expect_fail "--modes: 'fp32' is listed twice" run --modes fp32,fp32
expect_fail "--epochs: 'abc' is not a non-negative integer" run --epochs abc
expect_fail "--epochs: 0 is out of range" run --epochs 0
expect_fail "--epochs: '-3' is not a non-negative integer" run --epochs -3
expect_fail "--batch: 0 is out of range" run --batch 0 --out out
expect_fail "--batch: '-1' is not a non-negative integer" run --batch=-1
expect_fail "--batch: '12x' is not a non-negative integer" run --batch 12x
expect_fail "--lr: 'fast' is not a finite number" run --lr fast
expect_fail "--lr: 'nan' is not a finite number" run --lr nan
expect_fail "--lr: must be positive" run --lr 0
expect_fail "--momentum: 1 must be below 1" run --momentum 1
expect_fail "--channels: missing value N" run --channels
expect_fail "--device quantum: unknown device" run --device quantum --train-limit 10 --test-limit 10
expect_fail "--policy: unknown policy 'o2' (known: seed, autocast, naive)" run --policy o2
expect_fail "--net: unknown network 'vgg' (known: seed" run --net vgg
expect_fail "--net: missing value NAME" verify --net
expect_fail "--channels: 0 is out of range [1, 4096]" nets --channels 0

# `ampbench nets` lists the seed network: 16*1*9 + 16 conv and 10*16*784 + 10 linear parameters;
# FLOPs per training sample 2*(2*16*784*9) + 3*(2*12544*10) = 1,204,224.
out=$("$bin" nets 2>&1); rc=$?
if [ "$rc" -eq 0 ] && [[ "$out" == *"seed:"* ]] && [[ "$out" == *"total: 125610 parameters, 1.204e+06 FLOPs"* ]] \
   && [[ "$(printf '%s\n' "$out" | awk '/^seed:/ { on = 1; next } /^[^ ]/ { on = 0 } on' | grep -c '^  conv \|^  relu \|^  fc \|^  loss ')" == 4 ]] \
   && [[ "$out" == *"lenet5:"*"resnet8:"*"deep:"*"wide:"* ]]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: ampbench nets -> rc=$rc: $out" >&2
fi
expect_fail "--scale-min 8 is above --scale-max 4" run --scale-min 8 --scale-max 4
expect_fail "--loss-scale: 0 is out of range" run --loss-scale 0
expect_fail "--scale-growth-interval: 0 is out of range" run --scale-growth-interval 0
expect_fail "unknown command 'train' (see --help)" train
expect_fail "nowhere: cannot access data directory" run --data "$tmp/nowhere" --out out
expect_fail "--verbose: unknown option" info --verbose

# Out of memory: 4096 channels x 60,000 samples of activations cannot fit: refused before any
# allocation or folder (exit 4), one line with what the run needs and what is available.
err=$("$bin" run --device cpu --modes fp32 --channels 4096 --batch 60000 --epochs 1 --test-limit 10 --out "$tmp/oom" 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 4 ] && [[ "$err" == "ampbench: not enough memory: this run needs about "*" GB (data set "*" GB, tensors "*" GB) but "*" GB is available"* ]] \
   && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ ! -e "$tmp/oom" ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: out of memory: rc=$rc, stderr: $err" >&2
fi
rm -rf "$tmp/oom"

# --help and info succeed.
if "$bin" run --help | grep -q -- "--modes LIST" && "$bin" info | grep -q "CUDA backend"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: run --help / info" >&2
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
