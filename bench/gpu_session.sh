#!/bin/bash
# One GPU session in three device calls of under 10 minutes (run them back to back on the warm
# machine, which keeps build/):
#   bash bench/gpu_session.sh check   build, make check (parity of every op incl. the scan, concept
#                                     and CTC kernels, graph tests), the scan's checks, reference and
#                                     timing (gpu_run.sh scan), CUDA graphs vs eager, --nproc 1
#   bash bench/gpu_session.sh perf    harness bench of every backbone (fp32, vit-s also tf32), timm
#                                     logits, librispeech CTC on CUDA (mini corpus in .ls-data),
#                                     vmamba/infomamba/linformer training on CUDA
#   bash bench/gpu_session.sh san     compute-sanitizer memcheck on the op table and on replayed
#                                     train steps, racecheck on the smoke test, MNIST on CUDA (.accept-data)
# Logs under $OUT; a summary table last.
set -u
OUT=${OUT:-/tmp/imb-gpu}
mkdir -p "$OUT"
t0=$(date +%s)
row() { printf '| %-40s | %s |\n' "$1" "$2" | tee -a "$OUT/summary.md"; }
[ -d /opt/imbdeps ] || { bash .gpu-deps/unpack-deps.sh .gpu-deps > "$OUT/deps.log" 2>&1; }
. /opt/imbdeps/env
case "${1:-check}" in
check)
  { autoreconf -fi && mkdir -p build && cd build && ../configure && make -j16; } > "$OUT/build.log" 2>&1
  rc=$?; cd "$(dirname "$0")/.." ; row build "rc=$rc $(grep -E 'NCCL \(' "$OUT/build.log" | tr -s ' ')"
  [ $rc -eq 0 ] || { tail -30 "$OUT/build.log"; exit 1; }
  cd build
  timeout 330 make -j16 check > "$OUT/check.log" 2>&1; row "make check" "rc=$? $(grep -E '^# (PASS|FAIL|SKIP|ERROR)' "$OUT/check.log" | tr '\n' ' ')"
  cp tests/*.log "$OUT/" 2>/dev/null
  grep -E '^(FAIL|ERROR)' "$OUT/check.log"
  row "parity" "$(grep -c '  ok' tests/test_parity.log) ok, $(grep -c '  missing' tests/test_parity.log) missing, $(grep -ci 'FAIL' tests/test_parity.log) FAIL"
  grep -iE 'fail|missing' tests/test_parity.log | head -10
  q="--task mnist --backbone vit-nano --synth --protocol quickstart --device cuda --out $OUT/q --stop-after 30"
  ./harness $q --checkpoint "$OUT/q/g.safetensors" > "$OUT/graph.log" 2>&1
  ./harness $q --no-graph --checkpoint "$OUT/q/e.safetensors" > "$OUT/eager.log" 2>&1
  cmp -s "$OUT/q/g.safetensors.losses" "$OUT/q/e.safetensors.losses"; row "graph vs eager, 30 losses" "rc=$? $(grep -ih 'graph' "$OUT/graph.log" | tail -2 | tr '\n' ' ' | cut -c1-300)"
  ./harness --nproc 1 $q --checkpoint "$OUT/q/n.safetensors" > "$OUT/nproc1.log" 2>&1
  cmp -s "$OUT/q/e.safetensors.losses" "$OUT/q/n.safetensors.losses"; row "--nproc 1 vs plain (eager) losses" "rc=$? $(grep -m1 'data parallel' "$OUT/nproc1.log")"
  timeout 100 ./scan_bench check scan_check > "$OUT/scan_check.log" 2>&1
  row "scan_bench check (fast = simple, determinism)" "rc=$? $(grep '^check:' "$OUT/scan_check.log")"
  timeout 120 python3 ../bench/scan_ref.py scan_check > "$OUT/scan_ref.log" 2>&1
  row "scan vs float64 PyTorch reference" "rc=$? $(tail -1 "$OUT/scan_ref.log")"
  timeout 120 ./scan_bench time > "$OUT/scan_time.log" 2>&1; row "scan_bench time" "rc=$?"
  grep -v '^time ' "$OUT/scan_time.log"
  ;;
perf)
  cd build
  OUT="$OUT" bash ../bench/bench_backbones.sh > "$OUT/bench_table.md" 2>&1; cat "$OUT/bench_table.md"
  timeout 120 ./harness bench --backbone vit-s --device cuda --res 224,384,512 --batch 64 --precision tf32 | grep '^|' | tee "$OUT/bench_vits_tf32.md"
  python3 ../bench/vit_timm.py --bin ./imb_logits --device cuda > "$OUT/timm.log" 2>&1; row "timm vit_small logits (cuda)" "rc=$? $(tail -1 "$OUT/timm.log")"
  for b in vit-nano infomamba-nano; do
    timeout 150 ./harness --task librispeech --backbone $b --data ../.ls-data/librispeech --protocol librispeech-synth \
        --device cuda --out "$OUT/ls-$b" train.steps=600 > "$OUT/ls_$b.log" 2>&1
    row "librispeech mini, $b, cuda fp32" "rc=$? $(grep -A2 '^| task' "$OUT/ls_$b.log" | tail -1)"
  done
  for b in vmamba-nano infomamba-nano linformer-nano; do
    timeout 60 ./harness --task mnist --backbone $b --synth --protocol quickstart --device cuda --out "$OUT/q-$b" > "$OUT/q_$b.log" 2>&1
    row "quickstart $b cuda" "rc=$? $(grep -A2 '^| task' "$OUT/q_$b.log" | tail -1)"
  done
  ;;
san)
  cd build
  IMB_CUDA_SYNC=1 timeout 280 compute-sanitizer --tool memcheck --error-exitcode 9 tests/test_parity > "$OUT/memcheck.log" 2>&1
  row "memcheck op table" "rc=$? $(grep -m1 'ERROR SUMMARY' "$OUT/memcheck.log")"
  timeout 100 compute-sanitizer --tool racecheck --error-exitcode 9 tests/test_cuda_smoke > "$OUT/racecheck.log" 2>&1
  row "racecheck smoke" "rc=$? $(grep -m1 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/racecheck.log")"
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 ./harness --task mnist --backbone infomamba-nano --synth \
      --protocol quickstart --device cuda --out "$OUT/msan" --stop-after 5 > "$OUT/memcheck_train.log" 2>&1
  row "memcheck 5 train steps infomamba-nano" "rc=$? $(grep -m1 'ERROR SUMMARY' "$OUT/memcheck_train.log")"
  mkdir -p "$OUT/mn" && tar -xzf ../.accept-data/mnist-idx.tar.gz -C "$OUT/mn"
  timeout 200 ./harness --task mnist --backbone vit-nano --data "$OUT/mn/mnist-idx" --device cuda --out "$OUT/mnist" > "$OUT/mnist_cuda.log" 2>&1
  row "mnist vit-nano cuda (mnist.ini)" "rc=$? $(grep -A2 '^| task' "$OUT/mnist_cuda.log" | tail -1)"
  ;;
esac
row wall "$(( $(date +%s) - t0 )) s"
echo; cat "$OUT/summary.md"
