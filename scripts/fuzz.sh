#!/usr/bin/env bash
# Fuzzes the IDX reader and dataset loader (harness/data/idx.c) with libFuzzer for SECONDS seconds.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60)
#
# Builds tests/fuzz_idx.c with harness/data/idx.c and harness/core/error.c using clang
# (-fsanitize=fuzzer,address,undefined) into build-fuzz/, copies the seed corpus
# tests/fuzz_corpus/ to build-fuzz/corpus/ (new inputs go there, never into tests/), and runs one
# fuzzing process. Exits non-zero on any crash, sanitizer report, leak, timeout or broken
# contract; the input that triggered it is saved under build-fuzz/artifacts/, and the output is in
# build-fuzz/fuzz.log. Reproduce with: build-fuzz/fuzz_idx build-fuzz/artifacts/<file>
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
       "-fsanitize=fuzzer,address,undefined" -fno-sanitize-recover=all -Wall -Wextra -Iharness/data -Iharness/core)
if ! "$cc" "${flags[@]}" tests/fuzz_idx.c harness/data/idx.c harness/core/error.c -lz -o "$out/fuzz_idx"; then
  echo "fuzz: cannot build the fuzz target with $cc; the libFuzzer runtime comes with" \
       "libclang-rt-14-dev on Debian 12 (scripts/install-deps.sh)" >&2
  exit 2
fi

rm -rf "$out/corpus" "$out/artifacts"
mkdir -p "$out/corpus" "$out/artifacts"
cp tests/fuzz_corpus/* "$out/corpus/"
# The target writes each input to files: on tmpfs when there is one (several times faster).
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  scratch=$(mktemp -d /dev/shm/ampbench-fuzz.XXXXXX)
else
  scratch=$(mktemp -d "$PWD/$out/tmp.XXXXXX")
fi
trap 'rm -rf "$scratch"' EXIT

# Memory limits: idx.c validates a header against a 2 GiB payload cap and then allocates the
# declared size before reading the payload, so a 16-byte file can ask for 2 GiB (the
# dims-at-limit seed does). That allocation is by design (and untouched, so it costs address
# space, not RAM); the limits sit just above it, so anything larger is still reported.
echo "fuzz: running build-fuzz/fuzz_idx for ${secs} s on a copy of tests/fuzz_corpus ($(ls tests/fuzz_corpus | wc -l) seeds)"
set +e
TMPDIR="$scratch" \
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$out/fuzz_idx" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -malloc_limit_mb=2100 \
  -dict=tests/fuzz_idx.dict -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
  "$out/corpus" >"$out/fuzz.log" 2>&1
rc=$?
set -e
grep -E '^(INFO: Seed|stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$out/fuzz.log" || true
if [ "$rc" -ne 0 ]; then
  tail -n 60 "$out/fuzz.log" >&2
  echo "fuzz: FAILED (exit $rc); inputs in $out/artifacts/: $(ls "$out/artifacts" | tr '\n' ' ')" >&2
  echo "fuzz: reproduce with: $out/fuzz_idx $out/artifacts/<file>" >&2
  exit 1
fi
echo "fuzz: no crash in ${secs} s ($(ls "$out/corpus" | wc -l) inputs in build-fuzz/corpus)"
