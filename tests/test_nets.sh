#!/usr/bin/env bash
# Every network preset trains: on the CPU reference, two short epochs of lenet5, resnet8 and deep
# (fp32 and amp; resnet8 also under the naive policy) lower the training loss below the first
# epoch's and below ln(10); wide runs one small epoch with a finite loss. With a CUDA device
# (the emulator in make test), each preset's first epoch on --device cuda matches the CPU's
# training loss within 1e-2 relative.
# Usage: test_nets.sh AMPBENCH [cuda]
set -u
bin=$1 device=${2:-cpu}
. "$(dirname "$0")/lib.sh"
col() { # run mode epoch column
  awk -F, -v m="$2" -v e="$3" -v c="$4" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
                                         $1 == m && $2 == e { print $k }' "$tmp/$1/epochs.csv"
}
train() { # name args...
  local name=$1; shift
  "$bin" run "$@" --no-progress --out "$tmp/$name" > "$tmp/$name.log" 2>&1
  local rc=$?
  ok "$([ $rc -eq 0 ] && echo 1)" "ampbench run $* exited $rc: $(tail -3 "$tmp/$name.log")"
  return $rc
}
if [ "$device" = cpu ]; then
  for net in lenet5 resnet8 deep; do
    train "$net" --net "$net" --modes fp32,amp --epochs 2 --train-limit 512 --test-limit 128 || continue
    for m in fp32 amp; do
      l1=$(col "$net" $m 1 train_loss) l2=$(col "$net" $m 2 train_loss)
      ok "$(awk -v a="$l1" -v b="$l2" 'BEGIN { print (b < a && b < 2.302585) ? 1 : 0 }')" \
         "$net $m: training loss $l1 -> $l2 (must fall, below ln 10)"
    done
  done
  train naive --net resnet8 --policy naive --modes fp32,amp,bf16 --epochs 2 --train-limit 512 --test-limit 128 &&
    for m in amp bf16; do
      l2=$(col naive $m 2 train_loss)
      ok "$(awk -v b="$l2" 'BEGIN { print (b < 2.302585) ? 1 : 0 }')" "resnet8 naive $m: loss $l2"
    done
  grep -q 'b2.bn1 .*fp16 stats, fp16 data' "$tmp/naive.log"
  ok "$([ $? -eq 0 ] && echo 1)" "the naive trace shows batch norm on fp16 statistics"
  train wide --net wide --modes fp32 --epochs 1 --train-limit 64 --test-limit 32 --batch 32 &&
    ok "$(awk -v a="$(col wide fp32 1 train_loss)" 'BEGIN { print (a == a + 0 && a < 10) ? 1 : 0 }')" \
       "wide: a finite training loss"
else
  info=$("$bin" info 2>&1)
  if ! grep -q '^CUDA device:' <<<"$info" || grep -q '^CUDA device:  none' <<<"$info"; then
    echo "no usable CUDA device: skipped"
    exit 77
  fi
  for net in lenet5 resnet8 deep wide; do
    size=(--train-limit 96 --test-limit 32 --batch 32)
    [ "$net" = wide ] && size=(--train-limit 8 --test-limit 8 --batch 8) # every emulated thread is a fiber
    for d in cpu cuda; do
      train "$net-$d" --net "$net" --device "$d" --modes fp32,amp --epochs 1 "${size[@]}"
    done
    for m in fp32 amp; do
      a=$(col "$net-cpu" $m 1 train_loss) b=$(col "$net-cuda" $m 1 train_loss)
      ok "$(awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; print (a != "" && d <= 1e-2 * a) ? 1 : 0 }')" \
         "$net $m: cuda training loss $b vs cpu $a"
    done
  done
fi
summary
