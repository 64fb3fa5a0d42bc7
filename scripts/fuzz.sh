#!/usr/bin/env bash
# Fuzzes the readers of files that come from outside with libFuzzer, each for SECONDS seconds:
# the IDX reader and dataset loader (harness/data/idx.c, tests/fuzz_idx.c), then the run-folder
# and baseline readers (tests/fuzz_results.c, one target each: run.json, epochs.csv, steps.csv,
# the baseline JSON), two at a time (the CI machine has two cores): about 3 x SECONDS in all.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60)
#
# Builds each target with clang (-fsanitize=fuzzer,address,undefined) into build-fuzz/, copies
# its seed corpus (tests/fuzz_corpus/, tests/fuzz_corpus_<reader>/) to build-fuzz/corpus-<name>/
# (new inputs go there, never into tests/), and runs one fuzzing process per target. Exits
# non-zero on any crash, sanitizer report, leak, timeout or broken contract; the input that
# triggered it is saved under build-fuzz/artifacts-<name>/, and the output is in
# build-fuzz/<name>.log. Reproduce with: build-fuzz/fuzz_<name> build-fuzz/artifacts-<name>/<file>
# Needs clang and its fuzzer runtime (Debian 12: clang, libclang-rt-14-dev; scripts/install-deps.sh).
# FUZZ_CC=clang-15 scripts/fuzz.sh picks another clang.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS]  (a positive whole number; default 60)" >&2
  exit 2
fi

cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "fuzz: $cc not found: apt-get install clang libclang-rt-14-dev (or run scripts/install-deps.sh)" >&2
  exit 2
fi

out=build-fuzz
mkdir -p "$out"
flags=(-std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
       "-fsanitize=fuzzer,address,undefined" -fno-sanitize-recover=all -Wall -Wextra -Werror)
for d in core sys data out model train eval registry; do flags+=("-Iharness/$d"); done
build() { # build NAME SOURCES... [-D...]: build-fuzz/fuzz_NAME
  local name=$1; shift
  if ! "$cc" "${flags[@]}" "$@" -lz -lcjson -lm -o "$out/fuzz_$name"; then
    echo "fuzz: cannot build fuzz_$name with $cc; the libFuzzer runtime comes with" \
         "libclang-rt-14-dev on Debian 12 (scripts/install-deps.sh)" >&2
    exit 2
  fi
}
readers=(run_json epochs_csv steps_csv baseline)
build idx tests/fuzz_idx.c harness/data/idx.c harness/core/error.c
results_src=(tests/fuzz_results.c harness/out/report_load.c harness/out/schema.c
             harness/out/jsonfile.c harness/out/baseline_read.c harness/model/recipe.c
             harness/core/named.c harness/sys/files.c harness/sys/text.c harness/core/error.c)
for i in "${!readers[@]}"; do
  build "${readers[$i]}" "${results_src[@]}" "-DFUZZ_RESULTS_TARGET=$((i + 1))"
done

# The targets write each input to files: on tmpfs when there is one (several times faster).
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  scratch=$(mktemp -d /dev/shm/ampbench-fuzz.XXXXXX)
else
  scratch=$(mktemp -d "$PWD/$out/tmp.XXXXXX")
fi
trap 'rm -rf "$scratch"' EXIT

# fuzz NAME CORPUS EXTRA...: runs build-fuzz/fuzz_NAME on a copy of CORPUS; 0 when clean.
fuzz() {
  local name=$1 corpus=$2; shift 2
  rm -rf "$out/corpus-$name" "$out/artifacts-$name"
  mkdir -p "$out/corpus-$name" "$out/artifacts-$name" "$scratch/$name"
  cp "$corpus"/* "$out/corpus-$name/"
  echo "fuzz: running build-fuzz/fuzz_$name for ${secs} s on a copy of $corpus ($(ls "$corpus" | wc -l) seeds)"
  local rc=0
  TMPDIR="$scratch/$name" \
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$out/fuzz_$name" -max_total_time="$secs" -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts-$name/" "$@" "$out/corpus-$name" >"$out/$name.log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$out/$name.log" | sed "s/^/  $name: /" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$out/$name.log" >&2
    echo "fuzz: fuzz_$name FAILED (exit $rc); inputs in $out/artifacts-$name/: $(ls "$out/artifacts-$name" | tr '\n' ' ')" >&2
    echo "fuzz: reproduce with: $out/fuzz_$name $out/artifacts-$name/<file>" >&2
    return 1
  fi
  echo "fuzz: fuzz_$name: no crash in ${secs} s ($(ls "$out/corpus-$name" | wc -l) inputs in build-fuzz/corpus-$name)"
}

# Memory limits of the IDX target: idx.c validates a header against a 2 GiB payload cap and then
# allocates the declared size before reading the payload, so a 16-byte file can ask for 2 GiB
# (the dims-at-limit seed does). That allocation is by design (and untouched, so it costs address
# space, not RAM); the limits sit just above it, so anything larger is still reported. The
# results readers are capped at 256 MiB per file: 1 GiB is far above what they may take.
failed=0
fuzz idx tests/fuzz_corpus -rss_limit_mb=2560 -malloc_limit_mb=2100 -dict=tests/fuzz_idx.dict || failed=1
for i in 0 2; do
  fuzz "${readers[$i]}" "tests/fuzz_corpus_${readers[$i]}" -rss_limit_mb=1024 &
  first=$!
  fuzz "${readers[$((i + 1))]}" "tests/fuzz_corpus_${readers[$((i + 1))]}" -rss_limit_mb=1024 || failed=1
  wait "$first" || failed=1
done
[ "$failed" -eq 0 ] || { echo "fuzz: FAILED" >&2; exit 1; }
echo "fuzz: every target ran ${secs} s without a crash"
