#!/usr/bin/env bash
# The README's demo figures, measured on an IDLE machine (nothing else running: the demo's two arms
# take both cores, and the load average is recorded before and after):
#
#   npx tsc -p tsconfig.json && npx cmake-js compile --config Release --CDSEQTUNE_CUDA=OFF
#   scripts/demo-idle.sh          (the demo, then a few minutes of benchmark)
#
# 1. `npm run demo` (the default settings), timed; writes bench/results/<date>-demo.json (the
#    demo's report.json plus wall and CPU seconds of the whole run and the load averages) and
#    bench/results/<date>-demo.log (its progress lines and table).
# 2. `node dist/bench/demo-cpu-train.js --reps 5 --steps 30 --warmup 5` (seqtune against PyTorch
#    on the CPU, one thread each); writes bench/results/<date>-cpu-train.json.
set -euo pipefail
cd "$(dirname "$0")/.."
day=$(date -u +%F)
results=bench/results
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load_before"
# %e wall, %U user, %S system seconds of npm and every process under it (both arms' workers)
/usr/bin/time -f '%e %U %S' -o "$work/time" npm run --silent demo -- --out "$work/demo" 2>&1 | tee "$results/$day-demo.log"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
read -r wall user sys < "$work/time"
node -e '
  const fs = require("fs");
  const [report, out, wall, user, sys, before, after] = process.argv.slice(1);
  const r = JSON.parse(fs.readFileSync(report, "utf8"));
  const timing = { command: "npm run demo", wall_s: Number(wall), cpu_s: Number(user) + Number(sys), load_average_before: before, load_average_after: after };
  fs.writeFileSync(out, JSON.stringify({ timing, ...r }, null, 2) + "\n");
' "$work/demo/report.json" "$results/$day-demo.json" "$wall" "$user" "$sys" "$load_before" "$load_after"
cp "$work/demo/demo.svg" "$results/$day-demo.svg"
echo "npm run demo: ${wall} s wall, $(node -p "($user + $sys).toFixed(0)") s CPU; wrote $results/$day-demo.json, .log, .svg"

node dist/bench/demo-cpu-train.js --reps 5 --steps 30 --warmup 5
echo "load average after both: $(cut -d' ' -f1-3 /proc/loadavg)"
