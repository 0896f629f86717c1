#!/usr/bin/env bash
# The demo's schedule (issue 17 part 4): held-out replaced-token detection of the tiny preset
# (sequence 128) on the demo corpus, at the steps listed, for each schedule tried.
# Corpus and vocabulary: make demo's stages 1-2 (python -m electra_tf.demo --pretrain_steps=0);
# training data from its first two files, held-out data from the last.
set -eu
T=demo_output
.venv/bin/python -m electra_tf.build_pretraining_data --corpus_dir=$T/corpus/python_docs_000.txt,$T/corpus/python_docs_001.txt \
  --vocab_file=$T/vocab.txt --output_dir=$T/tune_train --num_shards=4
.venv/bin/python -m electra_tf.build_pretraining_data --corpus_dir=$T/corpus/python_docs_002.txt \
  --vocab_file=$T/vocab.txt --output_dir=$T/tune_heldout --num_shards=1
run() { .venv/bin/python -m electra_tf.experiments.measure_dynamics --pretrain_data=$T/tune_train \
  --eval_data=$T/tune_heldout --config=electra_tiny --hparams="$2" --num_train_steps=$3 --steps=$4 \
  --output_dir=results/demo_schedule/$1; }
run gentle1000 '{"learning_rate": 5e-4, "num_warmup_steps": 100}' 1000 25,50,75,100,150,200,300,400,600
run fast300 '{"learning_rate": 3e-3, "num_warmup_steps": 30}' 300 10,20,30,50,100,200,300
run short80 '{"learning_rate": 5e-4, "num_warmup_steps": 40}' 80 20,40,60,80
run short150 '{"learning_rate": 5e-4, "num_warmup_steps": 50}' 150 50,100,150
run low600 '{"learning_rate": 2e-4, "num_warmup_steps": 100}' 600 50,100,200,300,400,600
run lr1e4_400 '{"learning_rate": 1e-4, "num_warmup_steps": 100}' 400 100,200,300,400
run lr2e4_200 '{"learning_rate": 2e-4, "num_warmup_steps": 50}' 200 50,100,150,200
run lr5e5_600 '{"learning_rate": 5e-5, "num_warmup_steps": 100}' 600 150,300,450,600
