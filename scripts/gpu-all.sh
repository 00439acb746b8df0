#!/usr/bin/env bash
# `scripts/gpu.sh all`: every GPU job in one device command, each time-boxed from one overall
# budget (SEQTUNE_GPU_BUDGET_S, default 560 s: a device command may run 600), so a hang costs only
# its own slot. Jobs run in order, the most telling first; a job's slot is its cap, cut so that
# every later job still has its minimum, but never below its own minimum while the budget has it
# (earlier jobs come first); a job the budget cannot give its minimum is skipped. `timeout` stops
# a job's whole process group: SIGINT at slot - grace, SIGKILL grace seconds later. Each job writes
# into $OUT/<job>/ (its log.txt and the JSON its benchmark writes); at the end everything under
# $OUT is tarred into $OUT/gpu-all.tar.gz, the one file that comes back (with summary.txt inside,
# also printed; only the jobs' folders and summary.txt are tarred and removed). Exit 1 when any job failed, ran out of time or was skipped.
# SEQTUNE_GPU_ALL_JOBS names a file of job lines to run instead (the CPU test's fake jobs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${OUT:-$(mktemp -d /tmp/seqtune-gpu-all.XXXXXX)}
budget=${SEQTUNE_GPU_BUDGET_S:-560}
grace=${SEQTUNE_GPU_GRACE_S:-5}
mkdir -p "$out"

# name, minimum seconds, cap seconds, command (the rest of the line; run by bash -c).
default_jobs() {
  cat <<'JOBS'
tests 20 90 scripts/gpu.sh tests
parity-12345 20 90 SEQTUNE_TEST_SEED=12345 scripts/gpu.sh parity
parity-777 20 90 SEQTUNE_TEST_SEED=777 scripts/gpu.sh parity
user 60 150 scripts/gpu.sh user
sanitize 30 120 scripts/gpu.sh sanitize
train-1b-lora 30 120 scripts/gpu.sh bench train --rows 1b:lora --ac off --steps 5 --warmup 2
kernels 15 60 scripts/gpu.sh bench kernels --tokens 8192
attention 15 60 scripts/gpu.sh bench attention --lengths 2048,8192 --head-dims 128
hf-parity 15 60 scripts/gpu.sh hf-parity
train-8b-lora-1b-full 40 150 scripts/gpu.sh bench train --rows 8b:lora,1b:full --ac off,on --steps 4 --warmup 2
train-parity 30 120 scripts/gpu.sh train-parity
generate 30 90 scripts/gpu.sh bench generate --presets 1b
JOBS
}

if [ -n "${SEQTUNE_GPU_ALL_JOBS:-}" ]; then
  mapfile -t jobs < "$SEQTUNE_GPU_ALL_JOBS"
else
  mapfile -t jobs < <(default_jobs)
fi

start=$(date +%s)
summary="$out/summary.txt"
printf '%-24s %-8s %6s %6s\n' job result secs slot > "$summary"
failed=0
names=()
for i in "${!jobs[@]}"; do
  read -r name min cap command <<<"${jobs[$i]}"
  [ -n "${name:-}" ] || continue
  # The minimum every later job needs, and what is left of the budget.
  later=0
  for ((j = i + 1; j < ${#jobs[@]}; j++)); do
    read -r _ m _ <<<"${jobs[$j]}"
    later=$((later + ${m:-0}))
  done
  left=$((budget - ($(date +%s) - start)))
  slot=$((left - later))
  [ "$slot" -ge "$min" ] || slot=$min
  [ "$slot" -le "$cap" ] || slot=$cap
  [ "$slot" -le "$left" ] || slot=$left
  dir="$out/$name"
  mkdir -p "$dir"
  names+=("$name")
  if [ "$slot" -lt "$min" ]; then
    printf '%-24s %-8s %6s %6s\n' "$name" skipped 0 "$slot" | tee -a "$summary"
    failed=1
    continue
  fi
  echo "== $name (slot ${slot}s): $command"
  job_start=$(date +%s)
  rc=0
  limit=$((slot - grace > 1 ? slot - grace : 1))
  OUT="$dir" timeout --signal=INT --kill-after="$grace" "$limit" bash -c "$command" >"$dir/log.txt" 2>&1 || rc=$?
  secs=$(($(date +%s) - job_start))
  case $rc in
    0) result=ok ;;
    124 | 137) result=timeout; failed=1 ;;
    *) result="rc=$rc"; failed=1 ;;
  esac
  tail -3 "$dir/log.txt" | sed 's/^/   /'
  printf '%-24s %-8s %6s %6s\n' "$name" "$result" "$secs" "$slot" | tee -a "$summary"
done
echo "total $(($(date +%s) - start))s of a ${budget}s budget" | tee -a "$summary"
cat "$summary"
tar -czf "$out/gpu-all.tar.gz" -C "$out" summary.txt "${names[@]}"
for name in "${names[@]}"; do rm -rf "${out:?}/$name"; done
rm -f "$summary"
echo "wrote $out/gpu-all.tar.gz"
exit $failed
