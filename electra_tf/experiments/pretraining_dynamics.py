"""How a pretraining run's discriminator develops: held-out scores at chosen steps of one run.

At each of ``--steps`` the run pauses (run_pretraining's stop_at_step: the learning-rate schedule
stays that of ``--num_train_steps``), the model is scored on held-out data, and the run goes on.
Per step it records

  disc_auc          exact ROC AUC of P(replaced) over the real tokens of the held-out batches,
                    against that step's own generator's replacements (ranks, ties averaged)
  mlm_accuracy      the generator's accuracy at the masked positions
  token_cosine      mean pairwise cosine similarity of the discriminator's final hidden states
                    over the real tokens of the first held-out batch, uncorrupted: ~1 means every
                    token has the same state (the collapse), a random encoder gives ~0.4; for a
                    masked-LM-only run, the generator's states (and such a run has no disc_auc)
  cls_cosine        the same over the [CLS] states of that batch's sequences
  disc_loss         the discriminator's mean log loss over the real held-out tokens, next to
  prior_loss        that of always predicting the replaced rate (replaced_rate): a collapsed
                    discriminator's loss is barely below it

and writes ``dynamics.json`` and ``dynamics.md`` into ``--output_dir`` (the model in
``--output_dir/model``; an interrupted study resumes where it stopped).

Example:

    python -m electra_tf.experiments.measure_dynamics \\
      --pretrain_data=data/train64 --eval_data=data/eval64 --config=electra_tiny \\
      --hparams='{"max_seq_length": 64, "learning_rate": 3e-3, "num_warmup_steps": 30}' \\
      --num_train_steps=1000 --steps=10,25,50,100,200,400,700,1000 --output_dir=out/tiny_fast
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional, Sequence

import numpy as np

from electra_tf import fileio, pretraining_dataset
from electra_tf.errors import UserError
from electra_tf.progress import log

# TensorFlow and the training code are imported by the functions that run the model, so reading
# and reporting a finished record stays cheap.

RESULTS_FILENAME = "dynamics.json"
TABLE_FILENAME = "dynamics.md"


def exact_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC from ranks (Mann-Whitney U), ties averaged: exact, unlike bucketed estimates."""
    scores = np.asarray(scores, np.float64)
    order = np.argsort(scores, kind="mergesort")
    _, inverse, counts = np.unique(scores[order], return_inverse=True, return_counts=True)
    positions = np.arange(1, len(scores) + 1, dtype=np.float64)
    average_rank = np.bincount(inverse, weights=positions) / counts
    ranks = np.empty(len(scores))
    ranks[order] = average_rank[inverse]
    positive = np.asarray(labels) > 0.5
    num_positive, num_negative = positive.sum(), (~positive).sum()
    if not num_positive or not num_negative:
        return float("nan")
    return float((ranks[positive].sum() - num_positive * (num_positive + 1) / 2) / (num_positive * num_negative))


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct rows of ``vectors`` [n, d]."""
    vectors = np.asarray(vectors, np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    total = unit.sum(0)
    n = len(unit)
    # sum over i != j of u_i . u_j = |sum u|^2 - sum |u_i|^2
    return float((total @ total - n) / (n * (n - 1)))


def held_out_scores(
    model, eval_files: Sequence[str], *, max_seq_length: int, batch_size: int = 32, num_batches: int = 16
) -> dict:
    """Scores an ElectraPretrainer on held-out TFRecords.

    Returns {"disc_auc", "mlm_accuracy", "token_cosine", "cls_cosine", "tokens", "replaced_rate",
    "disc_loss", "prior_loss"} (see the module docstring); "tokens" counts the real tokens of the
    scored batches, "replaced_rate" the share of them the generator replaced, "disc_loss" the
    discriminator's mean log loss on them and "prior_loss" that of always predicting
    replaced_rate (where a discriminator that learned nothing from its input stays). A
    masked-LM-only model (``electra_objective`` false) has no detection head: its record has only
    the first four keys, and its cosines are those of the encoder fine-tuning starts from, the
    generator's. Each call draws fresh masks, so two calls differ by about 0.005 AUC.
    """
    import tensorflow as tf

    detection = model.discriminator is not None
    if detection and model.task != "detection":
        raise UserError(
            f"held-out scores need replaced-token detection or masked LM only; this model's "
            f"discriminator_task is {model.task}"
        )
    # Inside tf.function, as fit and evaluate run the model.
    score = tf.function(lambda batch: model(batch, training=False))
    states = tf.function(lambda batch: model.backbone(batch, training=False))
    dataset = pretraining_dataset.make_pretraining_dataset(
        list(eval_files), batch_size, max_seq_length, is_training=False
    )
    logits, labels, hits = [], [], []
    tokens = 0
    token_cosine = cls_cosine = None
    for batch in dataset.take(num_batches):
        outputs = score(batch)
        real = np.asarray(outputs["input_mask"]) > 0
        tokens += int(real.sum())
        if detection:
            logits.append(np.asarray(outputs["disc_logits"], np.float64)[real])
            labels.append(np.asarray(outputs["disc_labels"])[real])
        predicted = np.argmax(np.asarray(outputs["mlm_logits"]), axis=-1)
        chosen = np.asarray(outputs["masked_lm_weights"]) > 0
        hits.append((predicted == np.asarray(outputs["masked_lm_ids"]))[chosen])
        if token_cosine is None:
            hidden = np.asarray(states(batch), np.float32)
            token_cosine = mean_pairwise_cosine(hidden[np.asarray(batch["input_mask"]) > 0])
            cls_cosine = mean_pairwise_cosine(hidden[:, 0])
    if not hits:
        raise UserError(f"{eval_files[0]}: the held-out data has no complete batch of {batch_size}")
    record = {
        "mlm_accuracy": float(np.concatenate(hits).mean()),
        "token_cosine": token_cosine,
        "cls_cosine": cls_cosine,
        "tokens": tokens,
    }
    if detection:
        logit, label = np.concatenate(logits), np.concatenate(labels)
        record["disc_auc"] = exact_auc(logit, label)  # ranks: the same as over probabilities
        # The collapse shows as a loss no better than a constant prediction of the replaced rate.
        rate = float(label.mean())
        record["replaced_rate"] = rate
        record["disc_loss"] = float(np.mean(np.logaddexp(0.0, logit) - label * logit))  # from logits: no overflow
        record["prior_loss"] = float(-sum(p * np.log(p) for p in (rate, 1 - rate) if p > 0))
    return record


@dataclasses.dataclass
class DynamicsOptions:
    """One measure_dynamics run, one field per flag: the data, model, schedule length, the steps
    at which the discriminator is scored, and how many held-out batches score it."""

    pretrain_data: str
    eval_data: str
    output_dir: str
    config: str
    num_train_steps: int
    steps: Sequence[int]
    hparams: Optional[str] = None
    seed: int = 11
    eval_batches: int = 16
    mixed_precision: str = "none"
    log_every_steps: int = 100


def parse_steps(text: str, num_train_steps: int) -> list[int]:
    """'10,25,100' -> [10, 25, 100]: increasing, each in [1, num_train_steps]."""
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--steps must be comma-separated integers, got {text!r}") from None
    if not steps or steps != sorted(set(steps)) or steps[0] < 1 or steps[-1] > num_train_steps:
        raise UserError(
            f"--steps must be increasing step numbers in 1..{num_train_steps} (--num_train_steps), got {text!r}"
        )
    return steps


def _auc_text(row: dict) -> str:
    """A masked-LM-only run has no detection head, so no AUC."""
    return f"{row['disc_auc']:.3f}" if "disc_auc" in row else "-"


def _table(record: dict) -> str:
    lines = [
        f"# Pretraining dynamics: {record['config']} {record['hparams'] or ''}".rstrip(),
        "",
        f"num_train_steps {record['num_train_steps']}, seed {record['seed']}, held-out {record['eval_data']}",
        "",
        "| step | held-out disc AUC | disc loss (constant predictor's) | generator MLM accuracy | token cosine "
        "| [CLS] cosine |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in record["points"]:
        # Records written before the losses were measured have none.
        losses = f"{row['disc_loss']:.3f} ({row['prior_loss']:.3f})" if "prior_loss" in row else "-"
        lines.append(
            f"| {row['step']} | {_auc_text(row)} | {losses} | {row['mlm_accuracy']:.3f} | "
            f"{row['token_cosine']:.3f} | {row['cls_cosine']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def run_dynamics(options: DynamicsOptions) -> dict:
    """Trains one run with pauses at ``options.steps`` and scores each; returns the record."""
    from electra_tf import pretraining

    fileio.makedirs(options.output_dir)
    results_path = os.path.join(options.output_dir, RESULTS_FILENAME)
    identity = {
        "config": options.config,
        "hparams": options.hparams,
        "num_train_steps": options.num_train_steps,
        "seed": options.seed,
        "pretrain_data": options.pretrain_data,
        "eval_data": options.eval_data,
        "eval_batches": options.eval_batches,
        "mixed_precision": options.mixed_precision,
    }
    record = dict(identity, points=[])
    if fileio.exists(results_path):
        previous = fileio.read_json(results_path)
        changed = [key for key in identity if previous.get(key) != identity[key]]
        if changed:
            raise UserError(
                f"{results_path} was written with other settings ({changed[0]}: "
                f"{previous.get(changed[0])!r}); use a new --output_dir"
            )
        record = previous
    done = {row["step"] for row in record["points"]}
    eval_files, _ = pretraining_dataset.resolve_pretraining_data(options.eval_data)
    model_dir = os.path.join(options.output_dir, "model")
    for step in options.steps:
        if step in done:
            continue
        started = time.monotonic()
        result = pretraining.run_pretraining(
            pretraining.PretrainingOptions(
                model_dir=model_dir,
                pretrain_data=options.pretrain_data,
                seed=options.seed,
                stop_at_step=step,
                mixed_precision=options.mixed_precision,
                log_every_steps=options.log_every_steps,
            ),
            config=options.config,
            hparams=options.hparams,
            num_train_steps=options.num_train_steps,
            # Only the pauses are needed to resume; each pause writes its own checkpoint.
            save_checkpoints_steps=options.num_train_steps,
            keep_checkpoint_max=1,
        )
        if result.model is None:
            raise UserError(
                f"{model_dir} is already past step {step} but {results_path} has no "
                "score for it; use a new --output_dir"
            )
        scores = held_out_scores(
            result.model,
            eval_files,
            max_seq_length=result.model.config.max_seq_length,
            num_batches=options.eval_batches,
        )
        row = dict(step=step, seconds=round(time.monotonic() - started, 1), **scores)
        log(
            f"step {step}: held-out disc AUC {_auc_text(row)}, generator MLM accuracy "
            f"{row['mlm_accuracy']:.3f}, token cosine {row['token_cosine']:.3f}, [CLS] cosine "
            f"{row['cls_cosine']:.3f}"
        )
        record["points"].append(row)
        record["points"].sort(key=lambda r: r["step"])
        fileio.write_json_atomic(results_path, record)
        fileio.write_text_atomic(os.path.join(options.output_dir, TABLE_FILENAME), _table(record))
    return record
