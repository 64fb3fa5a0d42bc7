#!/usr/bin/env bash
# ampbench bench end to end on tiny sweeps: bench.json, bench.csv and report.md written with one
# row per (net, mode, batch, channels) cell (seed, and lenet5, which takes no --channels), the modes' timed
# windows taking turns and the speedups paired by window, fp32's speedup exactly 1 (in
# wall-clock and in CPU time), the net in every cell, bad
# --batches and --nets lists refused with exit 2 before any work, --flag=value spellings, and the
# sweep's plots drawn when gnuplot is present. With PyTorch (python3-torch): the side-by-side
# column, PyTorch on the thread count ampbench's backend used, and the PyTorch networks built from
# ampbench's layer tables (`ampbench nets --json`); without it those checks are skipped. Not a
# speed test: the numbers themselves are only checked for being positive.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
tools=$(cd "$(dirname "$0")/../tools" && pwd)
AMPBENCH_PYTHON=/nonexistent "$bin" bench --modes fp32,amp --batches=8,16 --channels 2 --nets=seed \
  --train-limit 512 --test-limit 64 --out "$tmp/b" > "$tmp/log" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && echo 1)" "bench exit $rc: $(tail -3 "$tmp/log")"
rows=$(($(wc -l < "$tmp/b/bench.csv") - 1))
ok "$([ "$rows" -eq 4 ] && echo 1)" "bench.csv has $rows rows (want 4)"
ok "$(awk -F, 'NR > 1 && $1 == "fp32" && $12 != "1.0000" { bad = 1 } NR > 1 && $4 <= 0 { bad = 1 }
              NR > 1 && ($15 != "seed" || $16 < 1 || $17 <= 0) { bad = 1 }
              END { print bad ? 0 : 1 }' "$tmp/b/bench.csv")" "fp32 speedup 1, positive samples/s, net, threads and FLOPs"
# In CPU time: fp32's speedup exactly 1, and no more CPU-seconds than threads x seconds (samples
# per CPU-second at least samples/s over the threads; 1% for the clocks' granularity).
ok "$(awk -F, 'NR == 1 && ($18 != "samples_per_cpu_s" || $19 != "speedup_vs_fp32_cpu_time") { bad = 1 }
              NR > 1 && $1 == "fp32" && $19 != "1.0000" { bad = 1 }
              NR > 1 && ($18 <= 0 || $18 * $16 * 1.01 < $4) { bad = 1 }
              END { print bad ? 0 : 1 }' "$tmp/b/bench.csv")" "samples per CPU-second and the speedup in CPU time"
# The measured multiply-add rate (the bench's threads on FMA chains): named in bench.json and
# report.md, and each cell's GFLOP/s as a fraction of it, in (0, 1.5) (above 1 only where the
# clock turbos between the measurement and the cell: the nets run far below the FMA rate).
ok "$(awk -F, 'NR == 1 && $20 != "fma_fraction" { bad = 1 } NR > 1 && !($20 > 0 && $20 < 1.5) { bad = 1 }
              END { print bad ? 0 : 1 }' "$tmp/b/bench.csv")" "each cell's fraction of the measured FMA rate: $(cut -d, -f20 "$tmp/b/bench.csv" | tr '\n' ' ')"
ok "$(grep -qE '"fma_rate":[[:space:]]*"measured: [0-9]+ threads? x [0-9]+ independent a\*b\+c chains, [0-9]+ GFLOP/s' "$tmp/b/bench.json" \
      && grep -q '^FMA rate: measured: ' "$tmp/log" && grep -q 'FMA rate: measured: ' "$tmp/b/report.md" && echo 1)" \
   "the measured FMA rate in bench.json, the log and report.md: $(grep '^FMA rate' "$tmp/log")"
ok "$(grep -q '"samples_per_s_median"' "$tmp/b/bench.json" && grep -q '"net":	"seed"' "$tmp/b/bench.json" \
      && grep -q '^| seed | amp | 16 | 2 |' "$tmp/b/report.md" \
      && grep -q 'PyTorch not found' "$tmp/b/report.md" && echo 1)" "bench.json and report.md (PyTorch column skipped)"
ok "$(grep -qE '^  seed +amp +16 +2 ' "$tmp/log" && echo 1)" "the printed table names the net"
# The recipes of a (net, batch, channels) group take turns window by window (bench.json's
# windows: window w of every mode starts before window w + 1 of any), and each speedup is the
# median of the per-window ratios to fp32's same window (paired), in wall and CPU time.
ok "$(python3 - "$tmp/b/bench.json" <<'PY'
import json, statistics, sys
cells = json.load(open(sys.argv[1]))["cells"]
groups = {}
for c in cells:
    groups.setdefault((c["net"], c["batch"], c["channels"]), []).append(c)
good = len(groups) == 2
for g in groups.values():
    n = len(g[0]["windows"])
    good &= n == 5 and all(len(c["windows"]) == n for c in g) and len(g) == 2
    for w in range(n - 1):
        good &= max(c["windows"][w]["start_s"] for c in g) < min(c["windows"][w + 1]["start_s"] for c in g)
    ref = [c for c in g if c["mode"] == "fp32"][0]
    for c in g:
        for key, per in (("speedup_vs_fp32", "samples_per_s"), ("speedup_vs_fp32_cpu_time", "samples_per_cpu_s")):
            want = statistics.median(a[per] / b[per] for a, b in zip(c["windows"], ref["windows"]))
            good &= abs(c[key] - want) <= 1e-9 * max(1.0, want)
        good &= statistics.median(w["samples_per_s"] for w in c["windows"]) == c["samples_per_s_median"]
print(1 if good else 0)
PY
)" "windows interleaved across the group's modes; speedups the median of paired window ratios"
# Each cell gathers its batches on the backend from the training set uploaded once, as a run
# does: every cell's memory holds the 512 images (512 * 784 pixels) and labels as data.
ok "$(grep -o '"data_bytes":[^,}]*' "$tmp/b/bench.json" |
      awk -F: '$2 + 0 >= 512 * 785 { n++ } END { print n == 4 ? 1 : 0 }')" \
  "every cell's batches gathered from the data set on the backend (data_bytes)"
if command -v gnuplot >/dev/null; then
  ok "$([ -s "$tmp/b/plots/bench_throughput.png" ] && [ -s "$tmp/b/plots/bench_speedup.svg" ] && echo 1)" "bench plots"
fi
# Two nets: seed at two channel counts, lenet5 (no width left to --channels) once per mode and
# batch, its channels "-" / null, its FLOPs per sample those of `ampbench nets`.
AMPBENCH_PYTHON=/nonexistent "$bin" bench --nets seed,lenet5 --modes fp32,amp --batches 8 --channels 2,4 \
  --train-limit 256 --test-limit 64 --out "$tmp/n" > "$tmp/nlog" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && echo 1)" "bench --nets seed,lenet5: exit $rc: $(tail -3 "$tmp/nlog")"
flops=$("$bin" nets | awk '$1 == "lenet5:" { on = 1 } on && $1 == "total:" { print $4; exit }')
ok "$(awk -F, -v f="$flops" 'NR > 1 { n[$15 "," $3]++; rows++ }
      NR > 1 && $15 == "lenet5" && ($3 != "-" || sprintf("%.4g", $17) != f) { bad = 1 }
      NR > 1 && $1 == "fp32" && $12 != "1.0000" { bad = 1 }
      END { print (!bad && rows == 6 && n["seed,2"] == 2 && n["seed,4"] == 2 && n["lenet5,-"] == 2) ? 1 : 0 }' \
      "$tmp/n/bench.csv")" "nets x modes x batches x channels: $(cut -d, -f1,3,15,17 "$tmp/n/bench.csv" | tr '\n' ' ') (lenet5 FLOPs $flops)"
ok "$(grep -q '"channels":	null' "$tmp/n/bench.json" && grep -q '^| lenet5 | amp | 8 | - |' "$tmp/n/report.md" \
      && grep -qE '^  lenet5 +amp +8 +- ' "$tmp/nlog" && echo 1)" "lenet5's cells in bench.json, report.md and the table"
err=$("$bin" bench --batches 8,zero --out "$tmp/bad" 2>&1 >/dev/null)
rc=$?
ok "$([ $rc -eq 2 ] && [[ "$err" == *"--batches: '8,zero' is not a list of integers"* ]] && [ ! -e "$tmp/bad" ] && echo 1)" \
   "bad --batches refused (exit $rc: $err)"
for spelling in "--nets seed,nope" "--nets=seed,nope"; do
  # shellcheck disable=SC2086
  err=$("$bin" bench $spelling --out "$tmp/bad" 2>&1 >/dev/null)
  rc=$?
  ok "$([ $rc -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] \
        && [[ "$err" == *"--nets: unknown network 'nope' (known: seed"* ]] && [ ! -e "$tmp/bad" ] && echo 1)" \
     "unknown net refused before any work ($spelling: exit $rc: $err)"
done
err=$("$bin" bench --nets seed,seed --out "$tmp/bad" 2>&1 >/dev/null)
ok "$([[ "$err" == *"--nets: 'seed' is listed twice"* ]] && [ ! -e "$tmp/bad" ] && echo 1)" "a net listed twice refused ($err)"
err=$("$bin" bench --channels=2,x --out "$tmp/bad" 2>&1 >/dev/null)
ok "$([[ "$err" == *"--channels: '2,x' is not a list of integers"* ]] && [ ! -e "$tmp/bad" ] && echo 1)" \
   "--channels=LIST is the bench's list ($err)"

# The layer table: `ampbench nets --json` and export-init's "net" agree, widths resolved.
"$bin" nets --json seed --channels 4 > "$tmp/seed.json"
rc=$?
ok "$([ $rc -eq 0 ] && grep -q '"kind":	"conv"' "$tmp/seed.json" && grep -q '"width":	4' "$tmp/seed.json" \
      && grep -q '"input":	"relu"' "$tmp/seed.json" && echo 1)" "nets --json seed (exit $rc)"
err=$("$bin" nets --json nope 2>&1 >/dev/null)
ok "$([ $? -eq 2 ] && [[ "$err" == *"unknown network 'nope'"* ]] && echo 1)" "nets --json: unknown net ($err)"
"$bin" export-init --channels 4 --train-limit 64 --out "$tmp/init" > /dev/null 2>&1
ok "$(grep -q '"layers":' "$tmp/init/init.json" && grep -q '"width":	4' "$tmp/init/init.json" && echo 1)" \
   "export-init writes the layer table"

# PyTorch side by side, when a python with torch is there, found as the bench finds it:
# $AMPBENCH_PYTHON when set (and only it), else python3, else /usr/bin/python3.
py=
for p in ${AMPBENCH_PYTHON:-python3 /usr/bin/python3}; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "skipped: the PyTorch checks (no python3 with torch; apt-get install python3-torch)"
  summary
  exit $?
fi
# Every preset's table builds in PyTorch with the parameters ampbench registers, as many as
# `ampbench nets` counts.
"$bin" nets > "$tmp/nets.txt" 2>&1
for net in seed lenet5 resnet8 deep wide; do
  want=$(awk -v n="$net" '$1 == n ":" { on = 1 } on && $1 == "total:" { print $2; exit }' "$tmp/nets.txt")
  "$bin" nets --json "$net" > "$tmp/t_$net.json" 2>/dev/null
  out=$("$py" - "$tmp/t_$net.json" "$tools" <<'EOF' 2>&1
import json, sys
sys.path.insert(0, sys.argv[2])
import torch
from torch_bench import build_net
table = json.load(open(sys.argv[1]))
net = build_net(table)
logits = net(torch.rand(2, *table["input"]))
assert tuple(logits.shape) == (2, table["classes"]), logits.shape
names = list(net.params_by_name())
for l in table["layers"]:
    if l["kind"] in ("conv", "linear"):
        assert f"{l['name']}.weight" in names and (f"{l['name']}.bias" in names) == l["bias"], l
    if l["kind"] == "batchnorm":
        assert f"{l['name']}.weight" in names and f"{l['name']}.running_var" in net.buffers_by_name()
print("ok", sum(p.numel() for p in net.parameters()))
EOF
)
  ok "$([ "$out" = "ok $want" ] && echo 1)" "torch_bench.build_net($net): $out (ampbench nets: $want parameters)"
done
"$bin" bench --nets seed,lenet5 --modes fp32,bf16 --batches 8 --channels 2 --train-limit 256 \
  --test-limit 64 --out "$tmp/t" > "$tmp/tlog" 2>&1
rc=$?
ok "$([ $rc -eq 0 ] && echo 1)" "bench with PyTorch: exit $rc: $(tail -3 "$tmp/tlog")"
out=$("$py" - "$tmp/t/bench.json" <<'EOF' 2>&1
import json, sys
b = json.load(open(sys.argv[1]))
t, th = b["torch"], b["threads"]
assert isinstance(t, dict), f"no PyTorch result: {t}"
assert th["ampbench"] >= 1 and th["torch"] == th["ampbench"] == t["threads"], th
assert all(c["threads"] == th["ampbench"] for c in b["cells"]), "cell threads"
assert all(c.get("torch_samples_per_s", 0) > 0 for c in b["cells"]), b["cells"]
assert sorted((c["net"], c["channels"]) for c in b["cells"]) == [("lenet5", None)] * 2 + [("seed", 2)] * 2, b["cells"]
assert {c["recipe"] for c in t["cells"]} == {"fp32", "bf16"}, t["cells"]
print("ok", th)
EOF
)
ok "$([[ "$out" == ok* ]] && echo 1)" "PyTorch on ampbench's threads, every cell compared: $out"
ok "$(grep -q '^Threads: ampbench [0-9]* (the backend.s), PyTorch [0-9]*' "$tmp/t/report.md" \
      && grep -q '"layers"' "$tmp/t/torch_spec.json" && echo 1)" "report.md's threads line, torch_spec.json"
summary
