#!/usr/bin/env bash
# Issue 17 part 3, stage 2: ELECTRA (generator 1/4 of the width, the preset's), then ELECTRA with
# a 1/2-width generator, at the same budget and with every setting of stage 1 (run_bert.sh) but
# the objective; no second random-init baseline (stage 1 has it). Two output directories, so
# that ELECTRA's fine-tuning (the headline comparison) does not wait for the second pretraining
# run; merge_comparisons puts bert/, electra/ and electra_half/ side by side.
# Fine-tuning: the reference's epochs (3, STS-B 10) on at most 8,000 examples, float32 and one
# TensorFlow thread (PART3_THREADS=2 for both cores), as in stage 1.
# Usage: run_electra.sh electra|half|both [priority.py flags]. Resumable: rerun this script.
# With flags after the first argument, runs /work/runs/part3/priority.py on this stage's flags
# instead (e.g. run_electra.sh electra --pretrain --encoders=electra_step_24000).
cd /work/runs/code_part3
stage="${1:-both}"
shift || true
if [ $# -gt 0 ]; then driver=(/work/runs/part3/priority.py); else
  driver=(-m electra_tf.experiments.compare_objectives); fi
run() {  # $1 objective, $2 output directory, then priority.py's flags
  local objective="$1" output_dir="$2"
  shift 2
  env PYTHONPATH=/work/runs/code_part3 TF_NUM_INTRAOP_THREADS="${PART3_THREADS:-1}" TF_NUM_INTEROP_THREADS="${PART3_THREADS:-1}" nice -n 19 /work/main/.venv/bin/python "${driver[@]}" \
    --pretrain_data=/work/runs/data/wiki200_128 --glue_data_dir=/work/shared/data/glue \
    --output_dir="$output_dir" --config=electra_mini \
    --hparams='{"learning_rate": 5e-4, "num_warmup_steps": 1000}' \
    --budget_electra_steps=24000 --fractions=0.0625,0.125,0.25,0.5,1 \
    --objectives="$objective" --norandom_init_baseline \
    --tasks=sst-2,sts-b,mrpc,cola --num_seeds=3 --max_train_examples=8000 \
    --log_every_steps=200 --mixed_precision=none "$@"
}
case "$stage" in
  electra) run electra /work/runs/part3/electra "$@" ;;
  half) run electra_gen_half /work/runs/part3/electra_half "$@" ;;
  *) run electra /work/runs/part3/electra "$@" && run electra_gen_half /work/runs/part3/electra_half "$@" ;;
esac
