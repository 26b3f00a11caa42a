#!/bin/sh
# Text tasks through the harness: --synth training for agnews and imdb (accuracy in the run
# record), harness prepare, bit-identical resume, and bad data named by file and line.
set -eu
H=${HARNESS:-../harness}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bb="vit-nano:dim=32,depth=2,heads=2"
small="data.synth_train=48 data.synth_val=16 train.batch=16 train.warmup_steps=2 train.ckpt_interval=4"
run() { log=$1; shift; "$H" "$@" > "$out/$log" 2>&1 || { cat "$out/$log"; exit 1; }; }

# agnews: trains, evaluates, records accuracy and the tokenizer size
run a.log --task agnews --backbone $bb --synth --out "$out/a" $small train.steps=24 train.eval_interval=12
grep -q "step 12: val accuracy" "$out/a.log"
grep -q '"task": *"agnews"' "$out/a/runs.jsonl"
grep -q '"accuracy"' "$out/a/runs.jsonl"
grep -q '"vocab"' "$out/a/runs.jsonl"
grep -q '"off_protocol": *true' "$out/a/runs.jsonl"
# eval of the checkpoint gives the accuracy the run ended with
run e.log eval --task agnews --backbone $bb --synth --out "$out/a" $small train.steps=24
acc() { grep '^| agnews |' "$out/$1" | cut -d'|' -f6; }
test -n "$(acc a.log)" && test "$(acc a.log)" = "$(acc e.log)" || { echo "train vs eval accuracy: $(acc a.log) / $(acc e.log)"; exit 1; }
# prepare on the same data reuses the caches and reports them
run p.log prepare --task agnews --data "$out/a/synth/agnews"
grep -q "agnews train: 192 texts, 4 classes" "$out/p.log"
grep -q "agnews test: 64 texts, 4 classes" "$out/p.log"
if grep -q "prepare:" "$out/p.log"; then echo "prepare rebuilt valid caches:"; cat "$out/p.log"; exit 1; fi

# resume: cut at step 10 (last checkpoint at 8), resumed, equals the uninterrupted run
args="--task agnews --backbone $bb --synth --out $out/r $small train.steps=16 train.eval_interval=0"
run full.log $args --checkpoint "$out/full.safetensors"
run cut.log $args --checkpoint "$out/cut.safetensors" --stop-after 10
run resume.log $args --checkpoint "$out/cut.safetensors" --resume
grep -q "resumed .* at step 8" "$out/resume.log"
cmp "$out/full.safetensors.losses" "$out/cut.safetensors.losses"
cmp "$out/full.safetensors" "$out/cut.safetensors"

# imdb: the folder layout end to end
run i.log --task imdb --backbone $bb --synth --out "$out/i" $small train.steps=6 data.max_len=64
grep -q '"task": *"imdb"' "$out/i/runs.jsonl"

# bad data: the file, the line and the field
cp -r "$out/a/synth/agnews" "$out/bad"
printf '"9","a title","a description"\n' >> "$out/bad/train.csv"
if "$H" prepare --task agnews --data "$out/bad" > "$out/bad.log" 2>&1; then cat "$out/bad.log"; exit 1; fi
grep -q "harness: error: $out/bad/train.csv:193: class" "$out/bad.log" || { cat "$out/bad.log"; exit 1; }
echo "text cli: ok"
