#!/usr/bin/env bash
# A contested or hostile run folder: a second run given a folder another run holds exits 2 naming
# it; `report` writes nothing through a symbolic link planted in the folder; an interrupted or
# failing redraw leaves the previous images and report.md as they were; a full disk while the
# plots are drawn, or while a run rewrites its results after an epoch, exits 3 with one line and
# leaves no half-written file under a final name (on a small tmpfs: needs root, else that part is
# skipped and the test exits 77 at the end).
set -u
bin=$(realpath "$1")
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
small="--modes fp32,amp --epochs 1 --train-limit 300 --test-limit 100 --no-progress"
# one_line FILE: stderr holds exactly one line
one_line() { [ "$(wc -l < "$1")" -eq 1 ]; }
# sums DIR: the checksum of every file below DIR (links as links), sorted
sums() { (cd "$1" && find . \( -type f -o -type l \) -print0 | sort -z | xargs -0 -r sha256sum; \
          find . -type l -printf '%p -> %l\n' | sort); }
# png_whole FILE: a PNG that ends with its IEND chunk
png_whole() { [ "$(tail -c 12 "$1" | od -An -tx1 | tr -d ' \n')" = 0000000049454e44ae426082 ]; }

# ---- 1. Two runs, one folder: the second exits 2 naming it, the first is unharmed ----------
for kind in new empty; do
  out=$tmp/contested-$kind
  [ "$kind" = empty ] && mkdir "$out"
  "$bin" run --modes fp32 --epochs 500 --train-limit 500 --test-limit 100 --no-progress \
    --out "$out" > "a-$kind.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q '^results: ' "a-$kind.log" && break; sleep 0.1; done
  "$bin" run $small --out "$out" > "b-$kind.log" 2> "b-$kind.err"
  rc=$?
  kill -TERM "$pid"; wait "$pid"; rc_a=$?
  ok "$([ "$rc" -eq 2 ] && one_line "b-$kind.err" && grep -qF "$out: results directory is in use by another ampbench run" "b-$kind.err" \
        && [ "$rc_a" -eq 143 ] && python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['complete'] is False and list(j['modes'])==['fp32']" "$out/run.json" && echo 1)" \
     "second run on a held $kind folder: exit $rc (want 2), first $rc_a (want 143): $(cat "b-$kind.err")"
done

# ---- 2. Planted links: report writes through none of them -----------------------------------
run=$tmp/run
"$bin" run $small --out "$run" > run.log 2>&1 || { echo "FAIL: base run: $(cat run.log)"; exit 1; }
mkdir victims
for v in log tmp png svg csv; do echo "precious $v" > "victims/$v"; done
ln -sf "$tmp/victims/log" "$run/plots/gnuplot.log"
ln -s "$tmp/victims/tmp" "$run/plots/.memory.csv.tmp"
ln -sf "$tmp/victims/png" "$run/plots/loss.png"
ln -sf "$tmp/victims/svg" "$run/plots/accuracy.svg"
ln -sf "$tmp/victims/csv" "$run/plots/memory.csv"
before=$(sums victims)
"$bin" report "$run" > rep.log 2> rep.err
rc=$?
ok "$([ "$rc" -eq 0 ] && [ "$(sums victims)" = "$before" ] && [ ! -L "$run/plots/loss.png" ] && png_whole "$run/plots/loss.png" \
      && [ ! -L "$run/plots/memory.csv" ] && echo 1)" "report through planted links: exit $rc, victims changed or links kept: $(cat rep.err)"
rm "$run/plots/.memory.csv.tmp" # planted, not ours: left alone by report, removed here
# plots/ itself a link to another folder: refused (exit 3, one line), the other folder unchanged
mkdir elsewhere && echo keep > elsewhere/loss.png
linked=$tmp/linked && cp -r "$run" "$linked" && rm -rf "$linked/plots" && ln -s "$tmp/elsewhere" "$linked/plots"
"$bin" report "$linked" > /dev/null 2> linked.err
rc=$?
ok "$([ "$rc" -eq 3 ] && one_line linked.err && grep -q "plots: is a symbolic link" linked.err && [ "$(ls elsewhere)" = loss.png ] \
      && [ "$(cat elsewhere/loss.png)" = keep ] && echo 1)" "plots/ as a link: exit $rc (want 3): $(cat linked.err)"

# ---- 3. An interrupted or failed redraw keeps the previous images and report.md ------------
mkdir fakebin
printf '#!/bin/sh\nsleep 30\n' > fakebin/gnuplot && chmod +x fakebin/gnuplot
before=$(sums "$run")
PATH=$tmp/fakebin:$PATH "$bin" report "$run" > /dev/null 2> int.err &
pid=$!
sleep 1; kill -INT "$pid"; wait "$pid"; rc=$?
ok "$([ "$rc" -eq 130 ] && one_line int.err && grep -q "interrupted (signal 2) while drawing plot loss" int.err \
      && [ "$(sums "$run")" = "$before" ] && echo 1)" "report interrupted while drawing: exit $rc (want 130), folder changed: $(cat int.err)"
printf '#!/bin/sh\necho "half a picture" > "$(echo "$2" | sed "s/^imagedir=.//; s/.$//")/loss.png"\nexit 1\n' > fakebin/gnuplot
PATH=$tmp/fakebin:$PATH "$bin" report "$run" > /dev/null 2> fail.err
rc=$?
ok "$([ "$rc" -eq 0 ] && grep -q "plots skipped" fail.err && [ ! -e "$run/plots/loss.png" ] && ! ls -a "$run/plots" | grep -q '^\.draw-' \
      && grep -q "gnuplot failed" "$run/report.md" && echo 1)" "failing gnuplot: exit $rc, stale image or staging left: $(cat fail.err)"
"$bin" report "$run" > /dev/null 2>&1 # the images back

# ---- 4. Disk full while drawing: exit 3, one line, nothing half-written under a final name --
skipped=0
if [ "$(id -u)" -eq 0 ] && mkdir mnt && mount -t tmpfs -o size=2m tmpfs mnt 2>/dev/null; then
  cp -r "$run" mnt/run
  old_md=$(sha256sum < mnt/run/report.md)
  free=$(df --output=avail -B1 mnt | tail -1)
  head -c $((free - 48 * 1024)) /dev/zero > mnt/filler 2>/dev/null
  "$bin" report mnt/run > /dev/null 2> full.err
  rc=$?
  bad=0
  for f in mnt/run/plots/*.png; do [ -e "$f" ] && ! png_whole "$f" && bad=1; done
  for f in mnt/run/plots/*.svg; do [ -e "$f" ] && ! grep -q '</svg>' "$f" && bad=1; done
  ok "$([ "$rc" -eq 3 ] && one_line full.err && grep -q "disk full\|No space left on device" full.err && [ "$bad" -eq 0 ] \
        && [ "$(sha256sum < mnt/run/report.md)" = "$old_md" ] && ! ls -a mnt/run/plots | grep -q '^\.draw-\|\.tmp$' && echo 1)" \
     "disk full while drawing: exit $rc (want 3), half-written=$bad: $(cat full.err)"
  umount mnt
  # ... and while a run writes its results after an epoch: exit 3, one line, every file whole
  mount -t tmpfs -o size=24k tmpfs mnt
  "$bin" run --modes fp32,amp --epochs 3 --train-limit 1000 --test-limit 200 --no-progress \
    --out mnt/run > /dev/null 2> run-full.err
  rc=$?
  cat > whole.py <<'PY'
import csv, json, sys
d = sys.argv[1]
assert json.load(open(d + "/run.json"))["complete"] is False
for name in ("epochs.csv", "steps.csv"):
    rows = list(csv.reader(open(d + "/" + name)))
    assert len(rows) > 1 and len({len(r) for r in rows}) == 1, name
PY
  ok "$([ "$rc" -eq 3 ] && one_line run-full.err && grep -q "No space left on device" run-full.err \
        && python3 whole.py mnt/run && ! ls -a mnt/run | grep -q '\.tmp$' && echo 1)" \
     "disk full during a run: exit $rc (want 3), files not whole: $(cat run-full.err)"
  umount mnt
else
  skipped=1
  echo "note: cannot mount a tmpfs (not root): the disk-full case is skipped"
fi
summary || exit 1
[ "$skipped" -eq 0 ] || exit 77
