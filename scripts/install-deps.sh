#!/usr/bin/env bash
# Installs what ampbench needs to build, test and plot, from Debian/Ubuntu packages.
# Runs apt-get as root or through sudo; otherwise prints the exact command and fails.
# Usage: scripts/install-deps.sh [--check]   (--check: only report what is missing)
set -euo pipefail

packages=(
  cmake make gcc g++ pkg-config git
  zlib1g-dev          # gzip IDX files
  libcjson-dev        # run.json
  libgsl-dev          # Student t distribution for verify's Welch test
  libbenchmark-dev    # micro-benchmarks (bench/)
  gnuplot-nox         # plots
  jq                  # tests: run.json and the device probe's summary.json
  python3             # tests: JSON checks (bench.json, run.json, baselines)
  openmpi-bin libopenmpi-dev  # distributed runs under mpirun (harness/dist, docs/DISTRIBUTED.md)
  dataset-fashion-mnist  # the default data: /usr/share/datasets/fashion-mnist
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer (Debian 12's clang is clang-14)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all dependencies present"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "install-deps: missing: ${missing[*]}"
  exit 1
fi

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root:  apt-get update && ${cmd[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" "${cmd[@]}"
