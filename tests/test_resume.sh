#!/bin/sh
# Stop a run mid-way (as if killed after step 10, last checkpoint at step 8), --resume it:
# the loss of every step must equal an uninterrupted run's exactly, and so must the weights.
set -eu
H=${HARNESS:-../harness}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args="--task mnist --backbone vit-nano:dim=32,depth=2,heads=2 --synth --protocol synth --out $out train.ckpt_interval=4"
$H $args --checkpoint "$out/full.safetensors" > "$out/full.log" 2>&1 || { cat "$out/full.log"; exit 1; }
$H $args --checkpoint "$out/cut.safetensors" --stop-after 10 > "$out/cut.log" 2>&1 || { cat "$out/cut.log"; exit 1; }
grep -q "stopped after step 10" "$out/cut.log"
test "$(wc -l < "$out/cut.safetensors.losses")" -eq 10
$H $args --checkpoint "$out/cut.safetensors" --resume > "$out/resume.log" 2>&1 || { cat "$out/resume.log"; exit 1; }
grep -q "resumed .* at step 8" "$out/resume.log"
echo "uninterrupted vs resumed losses:"
paste "$out/full.safetensors.losses" "$out/cut.safetensors.losses"
cmp "$out/full.safetensors.losses" "$out/cut.safetensors.losses"
test "$(wc -l < "$out/full.safetensors.losses")" -eq 20
# same final parameters and optimizer state, byte for byte (the metadata differs only in paths: none)
cmp "$out/full.safetensors" "$out/cut.safetensors"
echo "resume: bit-identical"
