"""Issue 17 part 3: what each snapshot's encoder looks like on held-out text (SQuAD 1.1 dev
contexts, 1,564 sequences of 128, not in the pretraining corpus's files): masked-LM accuracy at
fresh masks, mean pairwise cosine of the final token states and of [CLS], and for ELECTRA the
exact held-out AUC against its own generator, the replaced rate and the discriminator's log loss
against a constant predictor's. Adds the snapshots not yet scored to
/work/runs/part3/snapshot_scores.json (copied here). The held-out TFRecords are built as README.md says.

  cd /work/main && nice -n 19 /work/main/.venv/bin/python \
      /work/main/results/compare_objectives_mini_24000/snapshot_scores.py
"""

import glob
import json
import os

import tensorflow as tf

from electra_tf import artifacts, checkpoint_conversion, pretraining_dataset, pretraining_objective
from electra_tf.experiments import pretraining_dynamics as dyn

HELD_OUT = "/work/runs/heldout/squad_dev_128"
OUT = "/work/runs/part3/snapshot_scores.json"
NUM_BATCHES = 16

scores = json.load(open(OUT)) if os.path.exists(OUT) else {}
files, _ = pretraining_dataset.resolve_pretraining_data(HELD_OUT)
dirs = sorted(glob.glob("/work/runs/part3/*/snapshots/*/step_*/snapshot.json"))
for marker in dirs:
    directory = os.path.dirname(marker)
    key = os.path.relpath(directory, "/work/runs/part3")
    if key in scores:
        continue
    if not os.path.exists(os.path.join(directory, "generator.weights.h5")):
        print(f"{key}: encoder only (put back from keep_snapshot.sh), not scored", flush=True)
        continue
    config = artifacts.read_config(directory)
    tf.keras.utils.set_random_seed(0)
    model = pretraining_objective.ElectraPretrainer(config, seed=0)
    checkpoint_conversion.load_pretrained_into(model, directory)
    record = dyn.held_out_scores(model, files, max_seq_length=128, num_batches=NUM_BATCHES)
    record["step"] = json.load(open(marker))["step"]
    scores[key] = record
    print(key, {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}, flush=True)
    with open(OUT + ".tmp", "w") as handle:
        json.dump(scores, handle, indent=1, sort_keys=True)
    os.replace(OUT + ".tmp", OUT)
    tf.keras.backend.clear_session()
