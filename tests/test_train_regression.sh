#!/usr/bin/env bash
# Training regression: 1 epoch of FP32 on the first 10,000 Fashion-MNIST training images,
# evaluated on the full test set, reaches test accuracy >= 0.78 (PyTorch: about 0.82).
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" run --modes fp32 --epochs 1 --train-limit 10000 --no-progress --out "$tmp/run" || exit 1
acc=$(awk -F, 'NR == 2 { print $6 }' "$tmp/run/epochs.csv")
tests=$(grep -c '"test_samples":	10000' "$tmp/run/run.json")
echo "fp32, 1 epoch, 10000 train samples: test accuracy $acc on the full test set"
if awk -v a="$acc" 'BEGIN { exit !(a >= 0.78) }' && [ "$tests" -eq 1 ]; then
  echo "1 passed, 0 failed"
else
  echo "FAIL: test accuracy $acc < 0.78 (or not the full test set)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
