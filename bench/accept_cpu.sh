#!/bin/bash
# Acceptance trainings on the CPU, several at once on a many-core machine: every job gets its
# own OpenMP threads, output folder and log; prints the harness's summary row of each job.
# Usage (from the build folder): bash ../bench/accept_cpu.sh THREADS_PER_JOB 'name|harness args' ...
#   e.g. bash ../bench/accept_cpu.sh 4 'mnist-vit|--task mnist --backbone vit-nano --data /data/mnist-idx'
# Logs and records under $OUT/accept/<name>/.
set -u
OUT=${OUT:-/tmp/imb-accept}
threads=${1:?threads per job}
shift
mkdir -p "$OUT/accept"
pids=()
names=()
for job in "$@"; do
  name=${job%%|*}
  args=${job#*|}
  dir="$OUT/accept/$name"
  mkdir -p "$dir"
  # shellcheck disable=SC2086  # args is a word list on purpose
  ( start=$(date +%s)
    OMP_NUM_THREADS=$threads ./harness $args --out "$dir" > "$dir/log.txt" 2>&1
    echo "$? $(( $(date +%s) - start ))" > "$dir/status" ) &
  pids+=($!)
  names+=("$name")
done
wait "${pids[@]}"
printf '\n| job | rc | wall s | summary row (task, backbone, params, steps, metrics..., samples/s, wall s) |\n|---|---|---|---|\n'
for name in "${names[@]}"; do
  dir="$OUT/accept/$name"
  read -r rc wall < "$dir/status"
  row=$(grep -A2 '^| task' "$dir/log.txt" | tail -1)
  [ -n "$row" ] || row="$(tail -1 "$dir/log.txt")"
  printf '| %s | %s | %s | %s |\n' "$name" "$rc" "$wall" "$row"
done
