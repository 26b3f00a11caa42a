#!/bin/sh
# The librispeech task end to end on a tiny espeak-ng corpus: --synth picks the librispeech-synth
# protocol, every eval set is scored (WER/CER as jiwer), the run record says how it decoded,
# eval reloads the checkpoint (CMVN included) and gets the same numbers, an interrupted run
# resumes bit-identically, prepare and bad data give clear answers. SKIP (77) without espeak-ng.
set -u
command -v espeak-ng > /dev/null 2>&1 || { echo "espeak-ng not on PATH: SKIP"; exit 77; }
H=${HARNESS:-../harness}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
tiny="--task librispeech --backbone vit-nano:dim=16,depth=1,heads=2 --synth --out $out data.synth_train=24
      data.synth_val=4 train.steps=6 train.warmup_steps=2 train.batch=4 train.eval_interval=3 train.ckpt_interval=2
      ctc.stem_channels=4 ctc.beam_width=3"

$H $tiny --checkpoint "$out/full.safetensors" > "$out/full.log" 2>&1 || { cat "$out/full.log"; fail "tiny run"; }
grep -q "protocol librispeech-synth" "$out/full.log" && echo "ok: --synth picked librispeech-synth" \
    || fail "--synth did not pick librispeech-synth"
for m in wer_dev_clean cer_dev_clean wer_dev_other wer_test_clean wer_test_other cer_test_other val_loss; do
    grep -q "\"$m\":" "$out/runs.jsonl" || fail "metric $m missing from the run record"
done
grep -q '"ctc_decode":"prefix_beam"' "$out/runs.jsonl" && grep -q '"ctc_beam_width":3' "$out/runs.jsonl" \
    && grep -q '"eval_sets":"dev-clean,dev-other,test-clean,test-other"' "$out/runs.jsonl" \
    && echo "ok: record has the decoder and the eval sets" || { fail "record"; cat "$out/runs.jsonl"; }
grep -q "| val wer_dev_clean | val cer_dev_clean | val wer_dev_other" "$out/full.log" \
    && echo "ok: summary columns start with wer_dev_clean" || fail "summary columns"

# the hypotheses of every eval set, "<utterance> <words>", one line per utterance
[ "$(wc -l < "$out/full.safetensors.test-other.hyp")" -eq 4 ] && grep -q "^7[0-9]*-[0-9]*-[0-9]* " "$out/full.safetensors.test-other.hyp" \
    && echo "ok: hypotheses written" || { fail "hypotheses"; cat "$out/full.safetensors.test-other.hyp"; }

# eval: weights and CMVN from the checkpoint give the training run's final numbers
$H eval $tiny --checkpoint "$out/full.safetensors" > "$out/eval.log" 2>&1 || { cat "$out/eval.log"; fail "eval"; }
row() { grep "^| librispeech |" "$1" | cut -d'|' -f6-14; }
[ -n "$(row "$out/full.log")" ] && [ "$(row "$out/full.log")" = "$(row "$out/eval.log")" ] \
    && echo "ok: eval reproduces the run's metrics" \
    || { fail "eval metrics differ"; row "$out/full.log"; row "$out/eval.log"; }

# resume after a stop at step 3 (checkpoint at 2): same losses and weights as the full run
$H $tiny --checkpoint "$out/cut.safetensors" --stop-after 3 > "$out/cut.log" 2>&1 || { cat "$out/cut.log"; fail "cut"; }
$H $tiny --checkpoint "$out/cut.safetensors" --resume > "$out/resume.log" 2>&1 || { cat "$out/resume.log"; fail "resume"; }
grep -q "resumed .* at step 2" "$out/resume.log" || fail "resume did not start at step 2"
cmp "$out/full.safetensors.losses" "$out/cut.safetensors.losses" && cmp "$out/full.safetensors" "$out/cut.safetensors" \
    && echo "ok: resumed run is bit-identical" \
    || { fail "resume differs"; paste "$out/full.safetensors.losses" "$out/cut.safetensors.losses"; }

# prepare packs every split present; a missing dataset or eval set is named
$H prepare --task librispeech --data "$out/synth/librispeech" --protocol librispeech-synth > "$out/prep.log" 2>&1 \
    && grep -q "test-other" "$out/prep.log" && echo "ok: prepare" || { fail "prepare"; cat "$out/prep.log"; }
$H --task librispeech --backbone vit-nano --data "$out/nothing" > "$out/bad.log" 2>&1
[ $? -eq 1 ] && grep -q "$out/nothing" "$out/bad.log" && echo "ok: missing data root named" \
    || { fail "missing data"; cat "$out/bad.log"; }
$H $tiny --checkpoint "$out/x.safetensors" data.val_split=dev-nothing > "$out/bad2.log" 2>&1
[ $? -eq 1 ] && grep -q "none of the eval sets 'dev-nothing'" "$out/bad2.log" && echo "ok: missing eval sets named" \
    || { fail "missing eval set"; cat "$out/bad2.log"; }
echo "ctc task: $fails failed"
exit $fails
