#!/usr/bin/env bash
# Hostile inputs, each refused before any training with exit 2 (4 for memory) and one line on
# stderr naming the file or flag and the real cause, and no results folder: bounded readers
# (FIFO, /dev/zero, a directory, a dangling link, trailing garbage), inputs and outputs checked
# up front (a malformed baseline entry, --junit / --write-baseline / --micro / --out that could
# not be used at the end), one flag parser and one number rule for every command, messages on one
# line whatever a value holds, valid UTF-8 in run.json, and the memory estimate.
set -u
bin=$(realpath "$1")
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
small="--modes fp32 --epochs 1 --train-limit 200 --test-limit 100 --no-progress"
# expect RC TEXT ARGS...: exit RC, exactly one line on stderr containing TEXT, no folder "out"
# and no results/ appearing, within 20 s
expect() {
  local want=$1 text=$2; shift 2
  timeout 20 "$bin" "$@" > stdout.txt 2> stderr.txt
  local rc=$?
  ok "$([ "$rc" -eq "$want" ] && [ "$(wc -l < stderr.txt)" -eq 1 ] && grep -qF -- "$text" stderr.txt \
        && [ ! -e out ] && [ ! -e results ] && echo 1)" \
     "$*: exit $rc (want $want), stderr: $(head -c 600 stderr.txt) (want: $text)"
  rm -rf out results
}

# ---- bounded readers ----------------------------------------------------------------------
mkfifo fifo
expect 2 "/dev/zero: cannot read: a character device, not a regular file" verify $small --baseline /dev/zero --out out
expect 2 "fifo: cannot read: a FIFO, not a regular file" verify $small --baseline fifo --out out
mkdir adir
expect 2 "adir: cannot read: a directory, not a regular file" verify $small --baseline adir --out out
ln -s "$tmp/nothing" dangling
expect 2 "dangling: cannot read: a dangling symbolic link" verify $small --baseline dangling --out out
"$bin" verify $small --out base-run --write-baseline base.json > /dev/null 2>&1
python3 - base.json <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
open('garbage.json', 'w').write(json.dumps(b) + '\n{"more": 1}\n')
b['modes']['fp32'][0]['test_acc'] = '0.7'
json.dump(b, open('string-acc.json', 'w'))
PY
expect 2 "garbage.json: trailing data after the JSON value" verify $small --baseline garbage.json --out out
expect 2 "string-acc.json: mode fp32, epoch entry 1: \"test_acc\" is missing or not a finite number" \
  verify $small --baseline string-acc.json --out out
# a run folder's run.json: a FIFO, trailing garbage
"$bin" run $small --out r > /dev/null 2>&1
cp -r r r-fifo && rm r-fifo/run.json && mkfifo r-fifo/run.json
expect 2 "r-fifo/run.json: cannot read: a FIFO, not a regular file" report r-fifo
cp -r r r-garbage && echo '[1]' >> r-garbage/run.json
expect 2 "r-garbage/run.json: trailing data after the JSON value" report r-garbage

mkdir links
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz; do
  ln -s "/usr/share/datasets/fashion-mnist/$f" "links/$f"
done
ln -s "$tmp/nothing.gz" links/t10k-labels-idx1-ubyte.gz
expect 2 "t10k-labels-idx1-ubyte.gz: cannot open: a dangling symbolic link" run $small --data links --out out

# ---- every path checked before training -------------------------------------------------
expect 2 "--junit $tmp/missing/v.xml: folder $tmp/missing: No such file or directory" verify $small --junit "$tmp/missing/v.xml" --out out
expect 2 "--write-baseline adir: is a directory; give a file name" verify $small --write-baseline adir --out out
expect 2 "--micro adir: is a directory, not an executable" bench $small --micro adir --out out
if [ "$(id -u)" -ne 0 ]; then  # root searches any folder
  mkdir unsearchable && chmod 0600 unsearchable
  expect 2 "--out unsearchable: results directory is not writable and searchable" run $small --out unsearchable
fi
ln -s "$tmp/nothing" dangling-out
expect 2 "--out dangling-out: is a symbolic link to nothing (dangling)" run $small --out dangling-out

# ---- one parser, one number rule ----------------------------------------------------------
expect 2 "--channels: '0' is not a list of integers in [1, 1024] (0 is out of range [1, 1024])" bench $small --channels=0 --out out
expect 2 "--channels: '0' is not a list of integers in [1, 1024] (0 is out of range [1, 1024])" bench $small --channels 0 --out out
expect 2 "--batches: '32,-1' is not a list of integers in [1, 65536] ('-1' is not a non-negative integer)" bench $small --batches=32,-1 --out out
expect 2 "--channels: '-1' is not a non-negative integer" nets --channels=-1
expect 2 "--profile-steps: '-1' is not a non-negative integer" run $small --profile-steps 1:-1 --out out
expect 2 "--batch: '-1' is not a non-negative integer" run $small --batch -1 --out out
expect 2 "--lr: ' 0.1' is not a finite number" run $small --lr " 0.1" --out out
expect 2 "--scale-init 1e+06 is above --scale-max 1024" run $small --scale-init 1e6 --scale-max 1024 --out out
expect 2 "--scale-init 2 is below --scale-min 8" run $small --scale-init 2 --scale-min 8 --out out
expect 2 "--verbose: unknown option" info --verbose

# ---- messages: one line, the reason kept; valid UTF-8 in run.json --------------------------
expect 2 "--modes: unknown mode 'fp32\\nINJECTED' (known:" run --modes "$(printf 'fp32\nINJECTED')" --out out
expect 2 "--out nl\nname: contains a control character (0x0A)" run $small --out "$(printf 'nl\nname')"
long=$tmp$(python3 -c "print(('/' + 'd' * 199) * 20, end='')")
expect 2 "ddddd: path too long (4" run $small --out "$long"
ok "$([ "$(wc -c < stderr.txt)" -lt 1100 ] && grep -q '^ampbench: --out /.*\.\.\.\[[0-9]* bytes cut\]\.\.\.' stderr.txt && echo 1)" \
   "a long path is shortened in the middle: $(wc -c < stderr.txt) bytes"
latin=$(printf 'caf\351')
"$bin" run $small --out "$latin" > /dev/null 2> latin.err
ok "$([ $? -eq 0 ] && python3 -c "import json,sys; json.load(open(sys.argv[1], encoding='utf-8'))" "$latin/run.json" && echo 1)" \
   "a non-UTF-8 --out: run.json is not valid UTF-8 JSON: $(cat latin.err)"

# ---- memory: the estimate refuses a run that cannot fit, before any allocation ------------
mkdir big
be32() { printf "\\$(printf %03o $((($1 >> 24) & 255)))\\$(printf %03o $((($1 >> 16) & 255)))\\$(printf %03o $((($1 >> 8) & 255)))\\$(printf %03o $(($1 & 255)))"; }
for split in train t10k; do  # 100 images of 4096x4096, sparse (header only on disk)
  { printf '\0\0\10\3'; be32 100; be32 4096; be32 4096; } > "big/$split-images-idx3-ubyte"
  truncate -s $((16 + 100 * 4096 * 4096)) "big/$split-images-idx3-ubyte"
  { printf '\0\0\10\1'; be32 100; head -c 100 /dev/zero; } > "big/$split-labels-idx1-ubyte"
done
expect 4 "not enough memory: this run needs about" run --device cpu --data big --modes fp32 --epochs 1 --channels 512 --out out
ok "$(grep -q "(data set 1.*GB, tensors .* GB) but .* GB is available" stderr.txt && echo 1)" "memory message names both figures: $(cat stderr.txt)"
summary
