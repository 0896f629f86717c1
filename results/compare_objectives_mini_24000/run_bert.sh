#!/usr/bin/env bash
# Issue 17 part 3, stage 1: the masked LM at a budget of 24,000 electra_mini ELECTRA steps
# (2.57e15 training FLOPs), snapshots at 1/16..1 of it, against no pretraining, on SST-2, STS-B,
# MRPC and CoLA with 3 fine-tuning seeds (the reference's epochs: 3, STS-B 10, on at most 8,000
# examples), float32 (this machine's CPU has no bfloat16 matmul units: bf16 was 1.9x slower).
# One TensorFlow thread (PART3_THREADS=2: both cores, as run_all.sh pretrains, one stage at a
# time); run_all.sh fine-tunes two stages side by side, one thread each.
# Resumable: rerun this script; it continues the pretraining from its last checkpoint.
# Frozen code: /work/runs/code_part3 (commit in COMMIT). Data: /work/runs/data/wiki200_128
# (built by build_data.sh).
# With arguments, runs /work/runs/part3/priority.py on this stage's flags instead (e.g.
# run_bert.sh --encoders=random_init fine-tunes that encoder first; add --pretrain to pretrain
# up to a snapshot that is asked for).
cd /work/runs/code_part3
if [ $# -gt 0 ]; then driver=(/work/runs/part3/priority.py); else
  driver=(-m electra_tf.experiments.compare_objectives); fi
exec env PYTHONPATH=/work/runs/code_part3 TF_NUM_INTRAOP_THREADS="${PART3_THREADS:-1}" TF_NUM_INTEROP_THREADS="${PART3_THREADS:-1}" nice -n 19 /work/main/.venv/bin/python "${driver[@]}" \
  --pretrain_data=/work/runs/data/wiki200_128 --glue_data_dir=/work/shared/data/glue \
  --output_dir=/work/runs/part3/bert --config=electra_mini \
  --hparams='{"learning_rate": 5e-4, "num_warmup_steps": 1000}' \
  --budget_electra_steps=24000 --fractions=0.0625,0.125,0.25,0.5,1 --objectives=bert \
  --tasks=sst-2,sts-b,mrpc,cola --num_seeds=3 --max_train_examples=8000 \
  --log_every_steps=200 --mixed_precision=none "$@"
