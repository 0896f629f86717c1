"""Diagnostic for issue 17 part 3: do the pretrained encoders' frozen features carry more about
SST-2 / STS-B than a random encoder's? Ridge probe (closed form) on [CLS] and mean-pooled final
states; SST-2 accuracy (sign of the ridge output on +-1 labels), STS-B Pearson on the dev set.

  cd /work/runs/code_part3 && nice /work/main/.venv/bin/python \
      /work/main/results/compare_objectives_mini_24000/probe.py DIR...
(DIR: a snapshot folder, or 'random' for electra_mini's random init). The ridge strength is the
best of four on the dev set, so every score is a little optimistic, alike for every encoder.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from electra_tf import artifacts, finetuning, finetuning_tasks, modeling, tokenization
from electra_tf import config as config_lib

GLUE = "/work/shared/data/glue"
VOCAB = "/work/shared/data/vocab/bert-base-uncased/vocab.txt"
N_TRAIN = 4000


def features(backbone, arrays):
    run = tf.function(lambda b: backbone(b, training=False))
    cls, mean = [], []
    for start in range(0, len(arrays["input_ids"]), 128):
        batch = {k: v[start : start + 128] for k, v in arrays.items()}
        hidden = np.asarray(run(batch), np.float64)
        mask = batch["input_mask"][..., None].astype(np.float64)
        cls.append(hidden[:, 0])
        mean.append((hidden * mask).sum(1) / mask.sum(1))
    return np.concatenate(cls), np.concatenate(mean)


def ridge(x, y, x_dev, lam):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, x_dev = (x - mu) / sd, (x_dev - mu) / sd
    x = np.hstack([x, np.ones((len(x), 1))])
    x_dev = np.hstack([x_dev, np.ones((len(x_dev), 1))])
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
    return x_dev @ w


tok = tokenization.Tokenizer(VOCAB, do_lower_case=True)
data = {}
for name in ("sst-2", "sts-b"):
    task = finetuning_tasks.get_task(name)
    train, _ = finetuning_tasks.read_glue_split(GLUE, task, "train")
    dev, _ = finetuning_tasks.read_glue_split(GLUE, task, "dev")
    rng = np.random.default_rng(0)
    train = [train[i] for i in rng.permutation(len(train))[:N_TRAIN]]

    def enc(examples):
        arrays = finetuning.encode_glue(examples, tok, 128)
        return {k: v for k, v in arrays.items() if k in ("input_ids", "input_mask", "segment_ids")}

    data[name] = (
        enc(train),
        np.array([float(e.label) for e in train]),
        enc(dev),
        np.array([float(e.label) for e in dev]),
    )

results = {}
for source in sys.argv[1:]:
    if source == "random":
        # The run's architecture; the random weights come from the seed, not from any snapshot.
        config = config_lib.load_config("electra_mini")
        keras.utils.set_random_seed(0)
        backbone = modeling.ElectraBackbone(config)
        backbone({k: v[:2] for k, v in data["sst-2"][0].items()})  # build the weights now
    else:
        config = artifacts.read_config(source)
        backbone = modeling.ElectraBackbone(config)
        backbone.load_weights(source + "/backbone.weights.h5")
    row = {}
    for name, (xtr, ytr, xdev, ydev) in data.items():
        ftr, fdev = features(backbone, xtr), features(backbone, xdev)
        for kind, a, b in (("cls", ftr[0], fdev[0]), ("mean", ftr[1], fdev[1])):
            best = None
            for lam in (1.0, 10.0, 100.0, 1000.0):
                if name == "sst-2":
                    pred = ridge(a, 2 * ytr - 1, b, lam)
                    score = 100 * np.mean((pred > 0) == (ydev > 0.5))
                else:
                    pred = ridge(a, ytr, b, lam)
                    score = 100 * np.corrcoef(pred, ydev)[0, 1]
                best = score if best is None else max(best, score)
            row[f"{name} {kind}"] = round(float(best), 1)
    results[source] = row
    print(source, row, flush=True)
