#!/bin/sh
# The real ELECTRA-vs-BERT run (issue 6, session 10), from a frozen copy of the repository.
cd /tmp/exp7/code && exec /work/main/.venv/bin/python -m electra_tf.experiments.compare_objectives \
  --pretrain_data=/tmp/exp6/data \
  --glue_data_dir=/work/shared/data/glue \
  --output_dir=/tmp/exp7/out \
  --config=electra_mini \
  --budget_electra_steps=3000 \
  --fractions=0.25,0.5,1 \
  --tasks=sst-2,sts-b \
  --num_seeds=2 \
  --finetune_steps=400 \
  --max_train_examples=4800 \
  --log_every_steps=100
