#!/usr/bin/env bash
# Issue 17 part 3's pretraining data: both Wikipedia folders (200 files, 205 MB) at 128 tokens,
# 230,228 sequences in 100 shards (18 s on 2 cores), and the held-out set. Each is built only
# when its manifest is missing (a folder without one is a killed build's, and is rebuilt).
set -e
cd /work/main
if [ ! -f /work/runs/data/wiki200_128/manifest.json ]; then
  rm -rf /work/runs/data/wiki200_128
  .venv/bin/python -m electra_tf.build_pretraining_data \
    --corpus_dir=/work/shared/data/pretrain/wikipedia_en,/work/shared/data/pretrain/wikipedia_en_more \
    --vocab_file=/work/shared/data/vocab/bert-base-uncased/vocab.txt \
    --output_dir=/work/runs/data/wiki200_128 --max_seq_length=128 --num_processes=2
fi
# Held-out text for snapshot_scores.py: every SQuAD 1.1 dev context on a line of its own, a
# blank line between articles (48 documents), at 128 tokens (1,564 sequences).
if [ ! -f /work/runs/heldout/squad_dev_128/manifest.json ]; then
  rm -rf /work/runs/heldout
  mkdir -p /work/runs/heldout/text
  .venv/bin/python - <<'PY'
import json

articles = json.load(open("/work/shared/data/squad/v1.1/dev-v1.1.json"))["data"]
with open("/work/runs/heldout/text/squad_dev_contexts.txt", "w") as out:
    out.write("\n\n".join("\n".join(p["context"].replace("\n", " ") for p in a["paragraphs"]) for a in articles) + "\n")
PY
  .venv/bin/python -m electra_tf.build_pretraining_data --corpus_dir=/work/runs/heldout/text \
    --vocab_file=/work/shared/data/vocab/bert-base-uncased/vocab.txt \
    --output_dir=/work/runs/heldout/squad_dev_128 --max_seq_length=128 --num_processes=1 --num_shards=1
fi
