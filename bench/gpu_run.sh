#!/bin/bash
# One device session: build, make check (CUDA parity runs, not skipped), compute-sanitizer
# on the parity table, the attention benchmark, the selective-scan checks and benchmark, the timm
# golden check, a CUDA training run, CUDA graphs against eager steps, fp32 vs TF32 harness bench,
# memcheck on replayed steps.
# Usage on the GPU machine (see ../shared/gpu/README.md): bash bench/gpu_run.sh [all|scan|scan-extra]
# (logs in $OUT). The whole run may not fit one 10-minute device command; the selective scan's parts:
#   scan:       the build, the scan's parity cases (every plan), scan_bench check (fast = simple,
#               determinism), the float64 PyTorch reference (scan_ref.py), the timing table
#   scan-extra: (on the warm machine, after scan) memcheck and racecheck on the scan's parity cases, the
#               plan sweep, an ncu speed-of-light profile of the scan kernels
set -u
MODE=${1:-all}
OUT=${OUT:-/tmp/imb-gpu}
mkdir -p "$OUT"
t0=$(date +%s)
row() { printf '| %-34s | %s |\n' "$1" "$2" | tee -a "$OUT/summary.md"; }
: > "$OUT/summary.md"
if [ -f .gpu-deps/unpack-deps.sh ]; then bash .gpu-deps/unpack-deps.sh .gpu-deps > "$OUT/deps.log" 2>&1; . /opt/imbdeps/env; fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
row "gpu" "$(head -1 "$OUT/gpu.txt")"
if [ "$MODE" = scan-extra ] && [ -f build/Makefile ]; then
  { cd build && make -j16; } > "$OUT/build.log" 2>&1
else
  { autoreconf -fi && mkdir -p build && cd build && ../configure && make -j16; } > "$OUT/build.log" 2>&1
fi
rc=$?; row "build" "rc=$rc ($(grep -m1 'CUDA backend' "$OUT/build.log" | sed 's/^ *//'))"
[ $rc -eq 0 ] || { tail -40 "$OUT/build.log"; exit 1; }
if [ "$MODE" = all ]; then
make -j8 check > "$OUT/check.log" 2>&1; row "make check" "rc=$? $(grep -E '^# (PASS|FAIL|SKIP|ERROR)' "$OUT/check.log" | tr '\n' ' ')"
cp tests/*.log "$OUT/" 2>/dev/null
row "parity table" "$(grep -c '  ok' tests/test_parity.log) ok, $(grep -c '  missing' tests/test_parity.log) missing, $(grep -c 'FAIL' tests/test_parity.log) FAIL"
IMB_CUDA_SYNC=1 timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 tests/test_parity > "$OUT/memcheck.log" 2>&1
row "compute-sanitizer memcheck" "rc=$? $(grep -m1 'ERROR SUMMARY' "$OUT/memcheck.log")"
timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 tests/test_cuda_smoke > "$OUT/racecheck.log" 2>&1
row "compute-sanitizer racecheck (smoke)" "rc=$? $(grep -m1 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/racecheck.log")"
fi
scan_main() {
  if [ "$MODE" != all ]; then
    make -j16 -C tests test_parity > "$OUT/check.log" 2>&1
    timeout 300 tests/test_parity scan > "$OUT/test_parity.log" 2>&1
    row "parity, scan cases (every plan)" "rc=$? $(grep -c '  ok' "$OUT/test_parity.log") ok, $(grep -c 'FAIL' "$OUT/test_parity.log") FAIL"
  fi
  timeout 300 ./scan_bench check scan_check > "$OUT/scan_check.log" 2>&1
  row "scan_bench check (fast = simple, determinism)" "rc=$? $(grep '^check:' "$OUT/scan_check.log")"
  timeout 300 python3 ../bench/scan_ref.py scan_check > "$OUT/scan_ref.log" 2>&1
  row "scan vs float64 PyTorch reference" "rc=$? $(tail -1 "$OUT/scan_ref.log")"
  timeout 200 ./scan_bench time > "$OUT/scan_time.log" 2>&1
  row "scan_bench time" "rc=$? (table below; plans in scan_time.log)"
}
scan_extra() {
  make -j16 -C tests test_parity >> "$OUT/check.log" 2>&1
  IMB_CUDA_SYNC=1 timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 tests/test_parity scan > "$OUT/scan_memcheck.log" 2>&1
  row "scan memcheck (parity scan cases)" "rc=$? $(grep -m1 'ERROR SUMMARY' "$OUT/scan_memcheck.log")"
  timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 tests/test_parity scan > "$OUT/scan_racecheck.log" 2>&1
  row "scan racecheck (parity scan cases)" "rc=$? $(grep -m1 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/scan_racecheck.log")"
  timeout 200 ./scan_bench sweep > "$OUT/scan_sweep.log" 2>&1
  row "scan_bench sweep (other plans)" "rc=$? (scan_sweep.log)"
  timeout 200 ncu --section SpeedOfLight --section Occupancy --section LaunchStats -k regex:scan_ ./scan_bench once > "$OUT/scan_ncu.log" 2>&1
  row "ncu, scan kernels" "rc=$? (scan_ncu.log)"
}
if [ "$MODE" != all ]; then
  [ -x scan_bench ] || { row "scan_bench" "missing: CUDA not configured?"; exit 1; }
  if [ "$MODE" = scan ]; then scan_main; else scan_extra; fi
  row "wall" "$(( $(date +%s) - t0 )) s"
  echo; cat "$OUT/summary.md"; echo; grep -v '^time ' "$OUT/scan_time.log" 2>/dev/null
  exit 0
fi
scan_main
scan_extra
if [ -f ../bench/attn_bench.cu ]; then
  nvcc -O3 -std=c++17 -lineinfo -gencode arch=compute_90,code=sm_90 -I. -I../kernels ../bench/attn_bench.cu \
      ../kernels/cuda/attention.cu -o attn_bench > "$OUT/attn_build.log" 2>&1 && ./attn_bench > "$OUT/attn_bench.log" 2>&1
  row "attn_bench" "rc=$? $(grep -iE 'tflop|fail' "$OUT/attn_bench.log" | head -4 | tr '\n' ';')"
fi
for dev in cuda cpu; do
  python3 ../bench/vit_timm.py --bin ./imb_logits --device $dev > "$OUT/timm_$dev.log" 2>&1
  row "timm vit_small logits ($dev)" "rc=$? $(tail -1 "$OUT/timm_$dev.log")"
done
./harness --task mnist --backbone vit-nano --synth --protocol quickstart --device cuda --out "$OUT/runs" > "$OUT/train_cuda.log" 2>&1
row "quickstart train on cuda" "rc=$? $(grep -A2 '^| task' "$OUT/train_cuda.log" | tail -1)"
# data parallel through NCCL with one GPU: --nproc 1 must train exactly like a plain run
tiny="--task mnist --backbone vit-nano --synth --protocol quickstart --device cuda --out $OUT/dp --stop-after 20"
./harness $tiny --checkpoint "$OUT/dp/plain.safetensors" > "$OUT/dp_plain.log" 2>&1
./harness --nproc 1 $tiny --checkpoint "$OUT/dp/nproc1.safetensors" > "$OUT/dp_nproc1.log" 2>&1
cmp -s "$OUT/dp/plain.safetensors.losses" "$OUT/dp/nproc1.safetensors.losses"
row "--nproc 1 (NCCL) losses == plain" "rc=$? $(grep -m1 'data parallel' "$OUT/dp_nproc1.log")"
# CUDA graphs, TF32 (issue 4): a replayed step gives the eager step's loss bit for bit
row "graph tests (test_graph_cuda)" "$(tail -1 tests/test_graph_cuda.log 2>/dev/null)"
g="--task mnist --backbone vit-nano --synth --protocol quickstart --device cuda --out $OUT/graph --stop-after 30"
./harness $g --checkpoint "$OUT/graph/on.safetensors" > "$OUT/graph_on.log" 2>&1
./harness $g --no-graph --checkpoint "$OUT/graph/off.safetensors" > "$OUT/graph_off.log" 2>&1
cmp -s "$OUT/graph/on.safetensors.losses" "$OUT/graph/off.safetensors.losses"
row "graph vs --no-graph: 30 losses identical" "rc=$? $(grep '^CUDA graphs:' "$OUT/graph_on.log" | tail -1)"
# samples/s over the 30 steps (warm-up and capture included) -> ms per step of batch 64
sps() { grep -o '[0-9.]* samples/s' "$1" | tail -1 | awk '{ printf "%s samples/s = %.3f ms/step", $1, 64000 / $1 }'; }
row "quickstart step, graph" "$(sps "$OUT/graph_on.log")"
row "quickstart step, --no-graph" "$(sps "$OUT/graph_off.log")"
for p in fp32 tf32; do
  ./harness bench --backbone vit-s --res 224 --batch 64 --device cuda --precision $p > "$OUT/bench_vits_$p.log" 2>&1
  row "bench vit-s 224 b64 $p (graph)" "rc=$? $(grep -m1 '^| vit-s' "$OUT/bench_vits_$p.log")"
done
./harness bench --backbone vit-s --res 224 --batch 64 --device cuda --precision fp32 --no-graph > "$OUT/bench_vits_eager.log" 2>&1
row "bench vit-s 224 b64 fp32 --no-graph" "rc=$? $(grep -m1 '^| vit-s' "$OUT/bench_vits_eager.log")"
# memcheck over 3 replayed train steps (step 1 eager, step 2 captured, steps 3-5 replayed)
timeout 600 compute-sanitizer --tool memcheck --error-exitcode 9 ./harness --task mnist --backbone vit-nano --synth \
    --protocol quickstart --device cuda --out "$OUT/msan" --stop-after 5 > "$OUT/memcheck_graph.log" 2>&1
row "memcheck, 3 replayed train steps" "rc=$? $(grep -m1 'ERROR SUMMARY' "$OUT/memcheck_graph.log") $(grep '^CUDA graphs:' "$OUT/memcheck_graph.log" | tail -1)"
row "wall" "$(( $(date +%s) - t0 )) s"
echo; cat "$OUT/summary.md"; echo; grep -v '^time ' "$OUT/scan_time.log" 2>/dev/null
