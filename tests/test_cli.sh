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
mkdir -p "$out/empty/train" "$out/empty/val"
expect 1 "$out/empty" --task imagenet --backbone vit-nano --data "$out/empty"
expect 0 "| vit-nano | 28 | 4 |" bench --backbone vit-nano:dim=16,depth=1,heads=2 --res 28 --batch 4 --reps 2 --warmup 0 --patch 7
expect 1 "bench needs --backbone" bench
expect 1 "--res 2x: expected" bench --backbone vit-nano --res 2x
expect 1 "size a multiple of patch" bench --backbone vit-nano --res 30 --patch 7 --batch 2 --reps 1
# an off-protocol override is recorded in the run record
expect 0 "val top1" --task mnist --backbone vit-nano:dim=16,depth=1,heads=2 --synth --protocol synth --out "$out" train.lr=2e-3
grep -q '"off_protocol":true' "$out/runs.jsonl" && grep -q '"train.lr=0.002"' "$out/runs.jsonl" \
    && echo "ok: record marks train.lr=2e-3 off-protocol" || { echo "FAIL: record"; cat "$out/runs.jsonl"; fails=$((fails + 1)); }
# data parallel: --nproc 1 runs the group code path and trains exactly like a plain run;
# CPU groups of several ranks are refused before any work
expect 1 "--nproc > 1 needs --device cuda" --nproc 2 --task mnist --backbone vit-nano --synth --out "$out"
expect 1 "--nproc 0: expected" --nproc 0 --task mnist --backbone vit-nano --synth --out "$out"
tiny="--task mnist --backbone vit-nano:dim=16,depth=1,heads=2 --synth --protocol synth --out $out --stop-after 4"
expect 0 "stopped after step 4" $tiny --checkpoint "$out/plain.safetensors"
expect 0 "stopped after step 4" --nproc 1 $tiny --checkpoint "$out/nproc1.safetensors"
cmp "$out/plain.safetensors.losses" "$out/nproc1.safetensors.losses" && echo "ok: --nproc 1 losses = plain run" \
    || { echo "FAIL: --nproc 1 losses differ"; paste "$out/plain.safetensors.losses" "$out/nproc1.safetensors.losses"; fails=$((fails + 1)); }
echo "cli: $fails failed"
exit $fails
