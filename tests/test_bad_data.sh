#!/usr/bin/env bash
# Bad data files and bad --out folders, through the CLI: `ampbench run` refuses each with exit
# code 2 and exactly one line on stderr naming the file and the problem; it creates no results
# folder (neither --out nor results/ in the working directory) and changes no existing file.
# The valid files are the first samples of Fashion-MNIST (synthesized when it is not installed);
# each case breaks one thing in a copy. Prints "N passed, N failed" last.
# Usage: tests/test_bad_data.sh path/to/ampbench
set -u
bin=$1
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir "$tmp/work"
cd "$tmp/work" || exit 1 # the working directory, where a stray results/ would appear
passed=0 failed=0
fashion=/usr/share/datasets/fashion-mnist

# ---- valid data: train 100 and test 50 images of 28x28 ----------------------------------------
be32() { # a big-endian 32-bit unsigned integer
  printf "\\$(printf %03o $((($1 >> 24) & 255)))\\$(printf %03o $((($1 >> 16) & 255)))"
  printf "\\$(printf %03o $((($1 >> 8) & 255)))\\$(printf %03o $(($1 & 255)))"
}
# images FILE N [H W]: an IDX3 file of N HxW images (Fashion-MNIST's first N, else a pattern)
images() {
  local h=${3:-28} w=${4:-28}
  { printf '\0\0\10\3'; be32 "$2"; be32 "$h"; be32 "$w"
    if [ -r "$fashion/t10k-images-idx3-ubyte.gz" ] && [ "$h$w" = 2828 ]; then
      gzip -dc "$fashion/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c $(($2 * h * w))
    else
      head -c $(($2 * h * w)) /dev/urandom
    fi
  } >"$1"
}
# labels FILE N: an IDX1 file of N labels in 0..9
labels() {
  { printf '\0\0\10\1'; be32 "$2"
    if [ -r "$fashion/t10k-labels-idx1-ubyte.gz" ]; then
      gzip -dc "$fashion/t10k-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$2"
    else
      for ((i = 0; i < $2; i++)); do printf "\\$(printf %03o $((i % 10)))"; done
    fi
  } >"$1"
}
valid=$tmp/valid
mkdir "$valid"
images "$valid/train-images-idx3-ubyte" 100
labels "$valid/train-labels-idx1-ubyte" 100
images "$valid/t10k-images-idx3-ubyte" 50
labels "$valid/t10k-labels-idx1-ubyte" 50

# fresh: d := a fresh copy of the valid data
n_case=0
fresh() {
  n_case=$((n_case + 1))
  d=$tmp/case$n_case
  cp -r "$valid" "$d"
}
# patch FILE OFFSET BYTES...: overwrite bytes (octal escapes for printf) in place
patch() {
  local f=$1 off=$2; shift 2
  printf "$@" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# ---- the check -----------------------------------------------------------------------------------
# expect_refused "<what>" "<file or folder the message names>" "<phrase>" args...
# Runs `ampbench run args... --epochs 1 --no-progress` (with --out OUT unless args give --out).
expect_refused() {
  local what=$1 name=$2 phrase=$3; shift 3
  local out=$tmp/out$n_case.$RANDOM args=("$@") err rc lines problems=()
  [[ " $* " == *" --out "* ]] || args+=(--out "$out")
  err=$("$bin" run "${args[@]}" --epochs 1 --no-progress 2>&1 >/dev/null); rc=$?
  lines=$(printf '%s\n' "$err" | wc -l)
  [ "$rc" -eq 2 ] || problems+=("exit code $rc, expected 2")
  [ -n "$err" ] && [ "$lines" -eq 1 ] || problems+=("$lines lines on stderr, expected 1")
  [[ "$err" == *"$name"* ]] || problems+=("stderr does not name $name")
  [[ "$err" == *"$phrase"* ]] || problems+=("stderr lacks \"$phrase\"")
  [ ! -e "$out" ] || problems+=("created $out")
  [ ! -e results ] || problems+=("created results/ in the working directory")
  if [ ${#problems[@]} -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what: $(IFS=';'; echo "${problems[*]}")" >&2
    echo "      ampbench run ${args[*]}" >&2
    echo "      stderr: $err" >&2
  fi
  rm -rf results
}

# The valid data itself loads and trains (otherwise every case below passes for the wrong reason).
if "$bin" run --data "$valid" --epochs 1 --no-progress --out "$tmp/ok" >/dev/null 2>&1 \
   && [ -s "$tmp/ok/run.json" ] && [ -s "$tmp/ok/epochs.csv" ] && [ ! -e results ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: the valid fixture does not train" >&2
fi

# ---- headers ---------------------------------------------------------------------------------------
fresh; f=$d/train-images-idx3-ubyte; patch "$f" 0 '\1\2'
expect_refused "wrong magic" "$f" "bad magic number 0x01020803" --data "$d"

fresh; f=$d/t10k-labels-idx1-ubyte; patch "$f" 2 '\15'
expect_refused "wrong data type" "$f" "unsupported data type 0x0D" --data "$d"

fresh; f=$d/train-images-idx3-ubyte; patch "$f" 3 '\1'
expect_refused "wrong rank (images)" "$f" "rank 1 in the magic number, expected rank 3" --data "$d"

fresh; f=$d/train-labels-idx1-ubyte; patch "$f" 3 '\3'
expect_refused "wrong rank (labels)" "$f" "rank 3 in the magic number, expected rank 1" --data "$d"

fresh; f=$d/train-images-idx3-ubyte; : >"$f"
expect_refused "empty file" "$f" "truncated header" --data "$d"

fresh; f=$d/t10k-images-idx3-ubyte; head -c 10 "$valid/t10k-images-idx3-ubyte" >"$f"
expect_refused "truncated header" "$f" "truncated header" --data "$d"

fresh; f=$d/train-images-idx3-ubyte; patch "$f" 8 '\0\0\0\0'
expect_refused "zero dimension" "$f" "dimension 2 of 3 is zero" --data "$d"

fresh; f=$d/train-images-idx3-ubyte; patch "$f" 4 '\377\377\377\377\377\377\377\377\377\377\377\377'
expect_refused "dimensions overflow" "$f" "the size overflows size_t" --data "$d"

fresh; f=$d/train-images-idx3-ubyte; patch "$f" 4 '\0\1\0\0\0\0\1\0\0\0\1\0'
expect_refused "dimensions over the size limit" "$f" "exceeds the 2147483648-byte limit" --data "$d"

fresh; f=$d/train-images-idx3-ubyte; patch "$f" 4 '\0\0\0\1\0\0\23\210\0\0\0\1'
expect_refused "image side over the limit" "$f" "image size 5000x1 exceeds the 4096x4096 limit" --data "$d"

# ---- payloads --------------------------------------------------------------------------------------
fresh; f=$d/train-images-idx3-ubyte; patch "$f" 4 '\0\0\352\140' # 60000 images declared
expect_refused "dimensions exceed the file" "$f" "truncated payload: dimensions 60000x28x28 need 47040000 bytes, got 78400" --data "$d"

fresh; f=$d/t10k-labels-idx1-ubyte; head -c 48 "$valid/t10k-labels-idx1-ubyte" >"$f"
expect_refused "truncated payload" "$f" "truncated payload: dimensions 50 need 50 bytes, got 40" --data "$d"

fresh; f=$d/train-labels-idx1-ubyte; printf '\0\0\0' >>"$f"
expect_refused "trailing bytes" "$f" "3 trailing bytes after the 100-byte payload" --data "$d"

fresh; f=$d/train-labels-idx1-ubyte; patch "$f" 13 '\12' # label 5 := 10
expect_refused "label out of range" "$f" "label 10 at index 5 is out of range (10 classes)" --data "$d"

fresh; f=$d/train-labels-idx1-ubyte; labels "$f" 99
expect_refused "images/labels count mismatch" "$d/train-images-idx3-ubyte has 100 images but $f has 99 labels" "images but" --data "$d"

fresh; images "$d/t10k-images-idx3-ubyte" 50 14 14
expect_refused "test and training image sizes differ" "$d" "test images are 14x14 but training images are 28x28" --data "$d"

# ---- gzip ------------------------------------------------------------------------------------------
fresh; f=$d/train-images-idx3-ubyte.gz
gzip -c "$valid/train-images-idx3-ubyte" >"$tmp/whole.gz"; rm "$d/train-images-idx3-ubyte"
head -c $(($(stat -c %s "$tmp/whole.gz") / 2)) "$tmp/whole.gz" >"$f"
expect_refused "truncated gzip stream" "$f" "corrupt or truncated gzip stream" --data "$d"

fresh; f=$d/train-images-idx3-ubyte.gz; rm "$d/train-images-idx3-ubyte"
cp "$tmp/whole.gz" "$f"; size=$(stat -c %s "$f"); patch "$f" $((size - 8)) '\377\377' # CRC-32
expect_refused "corrupt gzip stream (bad CRC)" "$f" "corrupt or truncated gzip stream: incorrect data check" --data "$d"

fresh; f=$d/t10k-labels-idx1-ubyte.gz; rm "$d/t10k-labels-idx1-ubyte"
printf '\37\213\10\0\0\0\0\0\0\3this is not deflate data at all' >"$f"
expect_refused "corrupt gzip stream (bad deflate data)" "$f" "corrupt or truncated gzip stream" --data "$d"

# ---- files and folders -----------------------------------------------------------------------------
fresh; rm "$d/t10k-labels-idx1-ubyte"
expect_refused "missing labels file" "$d" "no t10k labels file found (tried t10k-labels-idx1-ubyte" --data "$d"

fresh; rm "$d/train-images-idx3-ubyte"
expect_refused "missing images file" "$d" "no train images file found" --data "$d"

fresh; f=$d/train-images-idx3-ubyte; rm "$f"; mkdir "$f"
expect_refused "data file is a directory" "$f" "is a directory, not an IDX file" --data "$d"

if [ "$(id -u)" -ne 0 ]; then # root reads anything
  fresh; f=$d/train-labels-idx1-ubyte; chmod 000 "$f"
  expect_refused "unreadable data file" "$f" "cannot open: Permission denied" --data "$d"
fi

expect_refused "--data is a regular file" "$valid/train-labels-idx1-ubyte" "data directory is not a directory" --data "$valid/train-labels-idx1-ubyte"
expect_refused "--data does not exist" "$tmp/nowhere" "cannot access data directory: No such file or directory" --data "$tmp/nowhere"

# ---- --out -----------------------------------------------------------------------------------------
# snapshot DIR: every path, and every file's checksum and modification time
snapshot() { (cd "$1" && find . -printf '%p %y %s %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }

mkdir -p "$tmp/full/sub"
echo '{"precious": true}' >"$tmp/full/run.json"; echo keep >"$tmp/full/sub/notes"
before=$(snapshot "$tmp/full")
expect_refused "--out is an existing non-empty folder" "--out $tmp/full" "already exists and is not empty; results are never overwritten" --data "$valid" --out "$tmp/full"
if [ "$(snapshot "$tmp/full")" != "$before" ]; then
  failed=$((failed + 1)); echo "FAIL: the existing --out folder changed" >&2
fi

mkdir "$tmp/dotfile"; : >"$tmp/dotfile/.hidden"
expect_refused "--out holds only a dot file" "--out $tmp/dotfile" "already exists and is not empty" --data "$valid" --out "$tmp/dotfile"
[ "$(ls -A "$tmp/dotfile")" = .hidden ] || { failed=$((failed + 1)); echo "FAIL: --out dot-file folder changed" >&2; }

echo "precious" >"$tmp/afile"
expect_refused "--out is an existing regular file" "--out $tmp/afile" "exists and is not a directory" --data "$valid" --out "$tmp/afile"
[ "$(cat "$tmp/afile")" = precious ] || { failed=$((failed + 1)); echo "FAIL: --out regular file changed" >&2; }

expect_refused "--out below a regular file" "$tmp/afile" "cannot create results directory: Not a directory" --data "$valid" --out "$tmp/afile/x/y"
[ "$(cat "$tmp/afile")" = precious ] || { failed=$((failed + 1)); echo "FAIL: --out parent file changed" >&2; }

if [ "$(id -u)" -ne 0 ]; then # root writes anywhere
  mkdir "$tmp/ro"; chmod 555 "$tmp/ro"
  expect_refused "--out in a read-only folder" "$tmp/ro/run" "cannot create results directory: Permission denied" --data "$valid" --out "$tmp/ro/run"
fi

# The same with the full default data set: refused with exit 2 before any training.
if [ -d "$fashion" ] && [ -f /etc/passwd ]; then
  start=$(date +%s.%N)
  expect_refused "--out /etc/passwd/x (full data set)" "/etc/passwd" "cannot create results directory: Not a directory" --data "$fashion" --train-limit 100 --test-limit 100 --out /etc/passwd/x
  echo "(--out /etc/passwd/x refused in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }') s: the data is loaded before the folder is checked)"
fi

# A successful run into an empty existing folder is allowed, and leaves only its own files there.
mkdir "$tmp/empty"
if "$bin" run --data "$valid" --epochs 1 --no-progress --out "$tmp/empty" >/dev/null 2>&1 \
   && [ -s "$tmp/empty/run.json" ] && [ -s "$tmp/empty/epochs.csv" ] \
   && [ -z "$(find "$tmp/empty" -name '.*')" ] && [ ! -e results ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: --out an empty folder (or temporary files left): $(ls -A "$tmp/empty" | tr '\n' ' ')" >&2
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
