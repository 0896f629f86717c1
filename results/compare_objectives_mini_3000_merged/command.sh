#!/bin/sh
# The ELECTRA/BERT run and the All-Tokens MLM and Replace MLM runs at the same budget, side by
# side (from the repository root).
exec python -m electra_tf.experiments.merge_comparisons \
  --inputs=results/compare_objectives_mini_3000,results/compare_objectives_mini_3000_all_tokens_mlm,results/compare_objectives_mini_3000_replace_mlm \
  --output_dir=results/compare_objectives_mini_3000_merged --overwrite
