#!/usr/bin/env bash
# Installable: `cmake --install BUILD --prefix P` puts bin/ampbench, the gnuplot scripts and the
# tools under P; the installed binary, run from outside the source tree, finds them beside itself
# (P/share/ampbench) and writes report.md with every plot. Without gnuplot this test fails and
# says so (the plots are part of what it checks).
set -u
cmake_bin=$1 build=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

prefix=$tmp/prefix
"$cmake_bin" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "cmake --install failed: $(tail -n 5 "$tmp/install.log")"
ok "$([ -x "$prefix/bin/ampbench" ] && echo 1)" "no $prefix/bin/ampbench"
for f in plots/loss.gp plots/style.gp plots/bench_throughput.gp tools/torch_bench.py; do
  ok "$([ -f "$prefix/share/ampbench/$f" ] && echo 1)" "share/ampbench/$f not installed"
done

if ! command -v gnuplot >/dev/null; then
  ok 0 "gnuplot is not installed (apt-get install gnuplot-nox, or scripts/install-deps.sh): cannot check the installed binary's plots"
  summary
  exit 1
fi

# Outside the source tree, with no hint where the scripts are: they must come from the prefix.
mkdir "$tmp/elsewhere" && cd "$tmp/elsewhere" || exit 1
env -u AMPBENCH_PLOTS_DIR "$prefix/bin/ampbench" run --modes fp32 --epochs 1 --train-limit 500 \
  --test-limit 200 --no-progress --out "$tmp/elsewhere/run" >"$tmp/run.log" 2>&1
ok "$([ $? -eq 0 ] && echo 1)" "the installed ampbench run failed: $(tail -n 5 "$tmp/run.log")"
ok "$([ -s run/report.md ] && echo 1)" "no report.md"
ok "$(grep -q 'Plots skipped' run/report.md 2>/dev/null && echo 0 || echo 1)" \
  "report.md says plots were skipped: $(grep -A3 'Plots skipped' run/report.md 2>/dev/null | tr '\n' ' ')"
for p in loss accuracy loss_scale underflow throughput memory; do
  ok "$([ -s "run/plots/$p.png" ] && [ -s "run/plots/$p.svg" ] && echo 1)" "no plots/$p.png/.svg"
done
summary
