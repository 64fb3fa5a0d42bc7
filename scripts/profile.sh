#!/usr/bin/env bash
# Profiles one ampbench run with Nsight Systems (nsys) when it is on the PATH, else Nsight Compute
# (ncu) on the NVTX step range, else prints the commands to run and why nothing ran.
# Usage: scripts/profile.sh path/to/ampbench [run options, including --profile-steps A:B]
set -u
bin=$1
shift
out=results/profiles/$(date -u +%Y%m%d-%H%M%S)
if command -v nsys >/dev/null 2>&1; then
  mkdir -p "$out"
  echo "profile: nsys, NVTX + CUDA + cuDNN + cuBLAS traces of the --profile-steps range -> $out/ampbench.nsys-rep"
  exec nsys profile -t cuda,nvtx,cudnn,cublas --capture-range=cudaProfilerApi \
    --capture-range-end=stop -o "$out/ampbench" "$bin" run "$@" --device cuda
elif command -v ncu >/dev/null 2>&1; then
  mkdir -p "$out"
  echo "profile: ncu on the kernels inside the NVTX 'step' ranges -> $out/ampbench.ncu-rep"
  exec ncu --nvtx --nvtx-include "ampbench@step/" --launch-count 200 -o "$out/ampbench" \
    "$bin" run "$@" --device cuda
else
  cat <<MSG
profile: neither nsys (Nsight Systems) nor ncu (Nsight Compute) is on the PATH, so nothing ran.
They come with the CUDA toolkit (or NVIDIA's nsight-systems / nsight-compute packages) and need
a GPU. On such a machine:

  nsys profile -t cuda,nvtx,cudnn,cublas --capture-range=cudaProfilerApi --capture-range-end=stop \\
       -o ampbench $bin run $* --device cuda
  ncu --nvtx --nvtx-include "ampbench@step/" --launch-count 200 -o ampbench \\
       $bin run $* --device cuda

NVTX ranges are emitted on the CPU backend too: nsys profile -t nvtx,osrt $bin run $*
MSG
  exit 0
fi
