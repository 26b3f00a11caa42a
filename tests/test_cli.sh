#!/bin/sh
# The CLI: unknown names list the valid ones, bad data names the path, nothing crashes.
set -u
H=${HARNESS:-../harness}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fails=0
# expect <exit-status: 0 or nonzero> <text that must appear> <args...>
expect() {
    want=$1 text=$2
    shift 2
    "$H" "$@" > "$out/o" 2>&1
    rc=$?
    if { [ "$want" = 0 ] && [ $rc -ne 0 ]; } || { [ "$want" != 0 ] && { [ $rc -eq 0 ] || [ $rc -gt 128 ]; }; } \
       || ! grep -q -- "$text" "$out/o"; then
        echo "FAIL: harness $* (exit $rc), expected '$text' in:"; cat "$out/o"; fails=$((fails + 1))
    else
        echo "ok: harness $* -> $(grep -m1 -- "$text" "$out/o")"
    fi
}
expect 0 "usage: harness" --help
expect 0 "vit-nano vit-t vit-s vit-b" list
expect 0 "train.lr" list
expect 0 "vmamba-nano vmamba-t vmamba-s vmamba-b" list
expect 0 "mlp_ratio d_state ssm_ratio dt_rank directions ssm_init" list
expect 1 "unknown task 'nope'; valid: imagenet food101 food11 mnist" --task nope --backbone vit-nano
expect 1 "unknown backbone 'resnet'; valid: vit-nano" --task mnist --backbone resnet --synth
expect 1 "unknown backbone option 'depht'" --task mnist --backbone vit-nano:depht=2 --synth --out "$out"
expect 1 "unknown backbone option 'wat'" --task mnist --backbone vit-nano --synth --out "$out" wat=1
expect 1 "train.lrr" --task mnist --backbone vit-nano --synth --out "$out" train.lrr=1
expect 1 "train.lr" --task mnist --backbone vit-nano --synth --out "$out" train.lr=abc
expect 1 "unknown command 'fly'" fly
expect 1 "unknown argument '--bogus'" --bogus
expect 1 "needs --data DIR" --task mnist --backbone vit-nano
expect 1 "$out/missing" --task mnist --backbone vit-nano --data "$out/missing"
expect 1 "--device gpu: valid: cpu cuda" --device gpu
expect 1 "--precision fp16: valid: fp32 tf32 bf16" --precision fp16
expect 1 "tf32 is a CUDA precision" --task mnist --backbone vit-nano --synth --out "$out" --precision tf32
expect 1 "--precision bf16: not implemented yet" --task mnist --backbone vit-nano --synth --out "$out" --precision bf16
expect 1 "tf32 is a CUDA precision" bench --backbone vit-nano --precision tf32
mkdir -p "$out/empty/train" "$out/empty/val"
expect 1 "$out/empty" --task imagenet --backbone vit-nano --data "$out/empty"
expect 0 "| vit-nano | 28 | 4 |" bench --backbone vit-nano:dim=16,depth=1,heads=2 --res 28 --batch 4 --reps 2 --warmup 0 --patch 7
expect 1 "bench needs --backbone" bench
# 28.7M parameters: the 2x2 merging pads the odd grids of the default patch 16 (224: 14, 7, 4, 2)
expect 0 "| vmamba-t | 32 | 1 | 28.7" bench --backbone vmamba-t --res 32 --batch 1 --reps 1 --warmup 0 --patch 4
expect 0 "| vmamba-nano | 48 | 2 |" bench --backbone vmamba-nano --res 48 --batch 2 --reps 1 --warmup 0
expect 1 "--res 2x: expected" bench --backbone vit-nano --res 2x
expect 1 "size a multiple of patch" bench --backbone vit-nano --res 30 --patch 7 --batch 2 --reps 1
# an off-protocol override is recorded in the run record
expect 0 "val top1" --task mnist --backbone vit-nano:dim=16,depth=1,heads=2 --synth --protocol synth --out "$out" train.lr=2e-3
grep -q '"off_protocol":true' "$out/runs.jsonl" && grep -q '"train.lr=0.002"' "$out/runs.jsonl" \
    && echo "ok: record marks train.lr=2e-3 off-protocol" || { echo "FAIL: record"; cat "$out/runs.jsonl"; fails=$((fails + 1)); }
# --no-graph is recorded (on the CPU every step is eager anyway)
expect 0 "val top1" --task mnist --backbone vit-nano:dim=16,depth=1,heads=2 --synth --protocol synth --out "$out/ng" --no-graph
grep -q '"no_graph":true' "$out/ng/runs.jsonl" && grep -q '"cuda_graph":"off (--no-graph)"' "$out/ng/runs.jsonl" \
    && echo "ok: record has no_graph and cuda_graph" || { echo "FAIL: no_graph record"; cat "$out/ng/runs.jsonl"; fails=$((fails + 1)); }
# data parallel: --nproc 1 runs the group code path and trains exactly like a plain run;
# CPU groups of several ranks are refused before any work
expect 1 "--nproc > 1 needs --device cuda" --nproc 2 --task mnist --backbone vit-nano --synth --out "$out"
expect 1 "--nproc 0: expected" --nproc 0 --task mnist --backbone vit-nano --synth --out "$out"
tiny="--task mnist --backbone vit-nano:dim=16,depth=1,heads=2 --synth --protocol synth --out $out --stop-after 4"
expect 0 "stopped after step 4" $tiny --checkpoint "$out/plain.safetensors"
expect 0 "stopped after step 4" --nproc 1 $tiny --checkpoint "$out/nproc1.safetensors"
cmp "$out/plain.safetensors.losses" "$out/nproc1.safetensors.losses" && echo "ok: --nproc 1 losses = plain run" \
    || { echo "FAIL: --nproc 1 losses differ"; paste "$out/plain.safetensors.losses" "$out/nproc1.safetensors.losses"; fails=$((fails + 1)); }
# Linformer: a few steps through the whole harness, its options and its refusals
expect 0 "linformer-nano linformer-t linformer-s" list
expect 0 "val top1" --task mnist --backbone linformer-nano:dim=16,depth=2,heads=2,k=4 --synth --protocol synth --out "$out"
expect 0 "val top1" --task mnist --backbone linformer-nano:dim=16,depth=2,heads=2,share_kv=1,share_layers=1 --synth --protocol synth --out "$out" train.steps=4
expect 1 "linformer-nano: causal=1 is not supported" --task mnist --backbone linformer-nano:causal=1 --synth --out "$out"
expect 1 "option k=0: expected an integer in \[1, 65536\]" --task mnist --backbone linformer-nano --synth --out "$out" k=0
# the VMamba backbone end to end: a few steps on generated MNIST-layout data
expect 0 "| mnist | vmamba-nano |" --task mnist --backbone vmamba-nano --synth --protocol synth --out "$out"
echo "cli: $fails failed"
exit $fails
