#!/usr/bin/env bash
# Profiles one ampbench run with Nsight Systems (nsys) when it is on the PATH, else Nsight Compute
# (ncu) on the NVTX step range, else with the NVTX recorder (tests/nvtx_recorder.c, an NVTX
# injection library): a text profile of the host time spent in every NVTX range, and the commands
# to run on a machine with Nsight.
# Usage: scripts/profile.sh path/to/ampbench [run options, including --profile-steps A:B]
# NVTX_RECORDER: the recorder library (default: tests/libnvtx_recorder.so beside the binary).
set -u
bin=$1
shift
out=results/profiles/$(date -u +%Y%m%d-%H%M%S)
nsight_commands() {
  cat <<MSG
On a machine with a GPU and Nsight (they come with the CUDA toolkit, or NVIDIA's nsight-systems /
nsight-compute packages):

  nsys profile -t cuda,nvtx,cudnn,cublas --capture-range=cudaProfilerApi --capture-range-end=stop \\
       -o ampbench $bin run $* --device cuda
  ncu --nvtx --nvtx-include "ampbench@step/" --launch-count 200 -o ampbench \\
       $bin run $* --device cuda

NVTX ranges are emitted on the CPU backend too: nsys profile -t nvtx,osrt $bin run $*
MSG
}
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
fi
recorder=${NVTX_RECORDER:-$(dirname "$bin")/tests/libnvtx_recorder.so}
if [ ! -f "$recorder" ]; then
  echo "profile: neither nsys (Nsight Systems) nor ncu (Nsight Compute) is on the PATH, and there is"
  echo "no NVTX recorder at $recorder (it is built with the tests where the NVTX3 headers are"
  echo "found, as the NVTX ranges are), so nothing ran."
  nsight_commands "$@"
  exit 0
fi
mkdir -p "$out"
echo "profile: neither nsys nor ncu is on the PATH: the NVTX ranges recorded by $recorder"
echo "         (text profile $out/profile.txt, every range event $out/nvtx-trace.tsv, the run $out/run)"
NVTX_INJECTION64_PATH=$(readlink -f "$recorder") NVTX_RECORDER_PROFILE=$out/profile.txt \
  NVTX_RECORDER_TRACE=$out/nvtx-trace.tsv "$bin" run --out "$out/run" "$@"
rc=$?
[ -f "$out/profile.txt" ] && cat "$out/profile.txt"
[ -s "$out/nvtx-trace.tsv" ] || echo "profile: the recorder saw no NVTX range (a build without the NVTX3 headers?)"
echo
nsight_commands "$@"
exit "$rc"
