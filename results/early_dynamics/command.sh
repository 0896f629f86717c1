#!/usr/bin/env bash
# Issue 17 part 2: the early dynamics on the reference's exact pretraining step.
# Run from the repository root. The runs used frozen copies of commit ed08d91 (the four runs
# without replacement) and a92357d (mask_with_replacement); 2-core CPU shared with other work.
set -eu
D=../shared/data
# Training data: wiki_00-07 of the Wikipedia sample at sequence 64 (13,250 sequences);
# held-out data: wiki_49 (1,676 sequences).
.venv/bin/python -m electra_tf.build_pretraining_data \
  --corpus_dir=$(ls -d $D/pretrain/wikipedia_en/wiki_0[0-7] | paste -sd,) \
  --vocab_file=$D/vocab/bert-base-uncased/vocab.txt --output_dir=data/train64 \
  --max_seq_length=64 --num_shards=8
.venv/bin/python -m electra_tf.build_pretraining_data --corpus_dir=$D/pretrain/wikipedia_en/wiki_49 \
  --vocab_file=$D/vocab/bert-base-uncased/vocab.txt --output_dir=data/eval64 \
  --max_seq_length=64 --num_shards=1
# One run per preset and schedule (fast: lr 3e-3, 30 warm-up steps; gentle: lr 5e-4, 100), and
# the reference's masking with replacement for the tiny preset.
for cfg in electra_tiny electra_mini; do
  for sched in fast gentle; do
    if [ $sched = fast ]; then H='"learning_rate": 3e-3, "num_warmup_steps": 30';
    else H='"learning_rate": 5e-4, "num_warmup_steps": 100'; fi
    for masking in "" withrepl; do
      [ -n "$masking" ] && [ $cfg = electra_mini ] && continue
      extra=""; [ -n "$masking" ] && extra=', "mask_with_replacement": true'
      .venv/bin/python -m electra_tf.experiments.measure_dynamics --pretrain_data=data/train64 \
        --eval_data=data/eval64 --config=$cfg --hparams="{\"max_seq_length\": 64, $H$extra}" \
        --num_train_steps=1000 --steps=10,25,50,100,200,400,700,1000 \
        --output_dir=results/early_dynamics/${cfg}_${sched}${masking:+_$masking}
    done
  done
done
