#!/bin/bash
# One device session: build, make check (CUDA parity runs, not skipped), compute-sanitizer
# on the parity table, the attention benchmark, the timm golden check, a CUDA training run.
# Usage on the GPU machine (see ../shared/gpu/README.md): bash bench/gpu_run.sh  (logs in $OUT)
set -u
OUT=${OUT:-/tmp/imb-gpu}
mkdir -p "$OUT"
t0=$(date +%s)
row() { printf '| %-34s | %s |\n' "$1" "$2" | tee -a "$OUT/summary.md"; }
: > "$OUT/summary.md"
if [ -f .gpu-deps/unpack-deps.sh ]; then bash .gpu-deps/unpack-deps.sh .gpu-deps > "$OUT/deps.log" 2>&1; . /opt/imbdeps/env; fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
row "gpu" "$(head -1 "$OUT/gpu.txt")"
{ autoreconf -fi && mkdir -p build && cd build && ../configure && make -j16; } > "$OUT/build.log" 2>&1
rc=$?; row "build" "rc=$rc ($(grep -m1 'CUDA backend' "$OUT/build.log" | sed 's/^ *//'))"
[ $rc -eq 0 ] || { tail -40 "$OUT/build.log"; exit 1; }
make -j8 check > "$OUT/check.log" 2>&1; row "make check" "rc=$? $(grep -E '^# (PASS|FAIL|SKIP|ERROR)' "$OUT/check.log" | tr '\n' ' ')"
cp tests/*.log "$OUT/" 2>/dev/null
row "parity table" "$(grep -c '  ok' tests/test_parity.log) ok, $(grep -c '  missing' tests/test_parity.log) missing, $(grep -c 'FAIL' tests/test_parity.log) FAIL"
IMB_CUDA_SYNC=1 timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 tests/test_parity > "$OUT/memcheck.log" 2>&1
row "compute-sanitizer memcheck" "rc=$? $(grep -m1 'ERROR SUMMARY' "$OUT/memcheck.log")"
timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 tests/test_cuda_smoke > "$OUT/racecheck.log" 2>&1
row "compute-sanitizer racecheck (smoke)" "rc=$? $(grep -m1 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/racecheck.log")"
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
row "wall" "$(( $(date +%s) - t0 )) s"
echo; cat "$OUT/summary.md"
