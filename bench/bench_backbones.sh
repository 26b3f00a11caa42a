#!/bin/bash
# The paper's Table 3 layout for every backbone in one run (from build/): harness bench at
# 224/384/512, batch 64, then the latency growth 512/224 of each next to the token growth.
# Usage: bash ../bench/bench_backbones.sh [extra bench args, e.g. --precision tf32]   (logs in $OUT)
set -u
OUT=${OUT:-/tmp/imb-bench}
mkdir -p "$OUT"
extra="$*"
tag=$(echo "$extra" | tr -c 'a-z0-9\n' '_')
printf '| backbone | res | batch | params (M) | GFLOPs/img (2 per MAC) | latency (ms/batch) | infer img/s | train img/s | train memory (MiB) |\n|---|---|---|---|---|---|---|---|---|\n'
for b in vit-s linformer-s vmamba-t infomamba-t; do
  # shellcheck disable=SC2086
  timeout 300 ./harness bench --backbone $b --device cuda --res 224,384,512 --batch 64 $extra > "$OUT/bench_${b}${tag}.log" 2>&1 \
      || echo "| $b | failed: $(tail -1 "$OUT/bench_${b}${tag}.log") |"
  grep "^| $b |" "$OUT/bench_${b}${tag}.log"
done
echo
echo "| backbone | latency 512 / 224 | tokens 512 / 224 |"
echo "|---|---|---|"
for b in vit-s linformer-s vmamba-t infomamba-t; do
  awk -F'|' -v b="$b" '$2 ~ " "b" " { gsub(/ /, "", $3); lat[$3] = $7 } END {
      if (lat[224] > 0 && lat[512] > 0) printf "| %s | %.2f | %.2f |\n", b, lat[512] / lat[224], (512 / 224) ^ 2 }' \
      "$OUT/bench_${b}${tag}.log"
done
