#!/bin/sh
# The paper's Replace MLM ablation at the budget of the ELECTRA-vs-BERT run (issue 6, session 11),
# from a frozen copy of the repository; the same settings as /tmp/exp7/command.sh otherwise, full budget only (its no-pretraining baseline is that run's: the fine-tuning settings are the same).
cd /tmp/exp8/code && exec /work/main/.venv/bin/python -m electra_tf.experiments.compare_objectives \
  --pretrain_data=/tmp/exp6/data \
  --glue_data_dir=/work/shared/data/glue \
  --output_dir=/tmp/exp9/out \
  --config=electra_mini \
  --budget_electra_steps=3000 \
  --fractions=1 \
  --objectives=replace_mlm \
  --norandom_init_baseline \
  --tasks=sst-2,sts-b \
  --num_seeds=2 \
  --finetune_steps=400 \
  --max_train_examples=4800 \
  --log_every_steps=100
