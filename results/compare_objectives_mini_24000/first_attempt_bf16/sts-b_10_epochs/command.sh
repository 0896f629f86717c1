#!/usr/bin/env bash
# Issue 17 part 3 diagnostic: STS-B with the reference's recipe length (10 epochs of at most 8,000
# examples; STS-B has 5,749 pairs, trained in both orders: 3,593 steps) instead of the run's 400 steps, full-budget masked LM vs random init.
cd /work/runs/code_part3
common="--task=sts-b --data_dir=/work/shared/data/glue --max_train_examples=8000 --num_trials=1 \
  --mixed_precision=bf16 --nosave_weights --log_every_steps=500 \
  --vocab_file=/work/shared/data/vocab/bert-base-uncased/vocab.txt"
nice -n 10 /work/main/.venv/bin/python -m electra_tf.run_finetuning $common \
  --init_checkpoint=/work/runs/part3/bert/snapshots/bert/step_25982 --output_dir=/work/runs/part3/finetune_400steps/sts-b_10_epochs/bert_10ep
nice -n 10 /work/main/.venv/bin/python -m electra_tf.run_finetuning $common \
  --config=/work/runs/part3/bert/random_init/config.json --output_dir=/work/runs/part3/finetune_400steps/sts-b_10_epochs/random_10ep
