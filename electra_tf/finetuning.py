"""Fine-tuning ELECTRA on GLUE and SQuAD: one task, N seeded trials, metrics and output files.

``run_finetuning(options)`` is what ``python -m electra_tf.run_finetuning`` calls; it runs every
task of ``options.tasks`` and writes, under ``options.output_dir``:

  <task>/results.json              every metric of every trial, the median, the hyperparameters,
                                   the data used (files, example counts), the model and weights
  <task>/trial_<k>/dev_predictions.tsv     (GLUE: guid, label, prediction per dev example; MNLI
                                   writes one per dev split) or dev_predictions.json (SQuAD:
                                   question id -> answer) with dev_nbest.json / dev_null_scores.json
  <task>/trial_<k>/<Leaderboard>.tsv      GLUE test predictions ("index\\tprediction", GLUE's
                                   label strings) when the test split is available
  <task>/trial_<k>/{dev,test}_predictions.txt  ner/chunk: "token gold predicted" per dev word
                                   and "token\ttag" per test word, a blank line between
                                   sentences (electra_tf/token_classification.py); the median
                                   trial's test file is copied to <task>/test_predictions.txt
  <task>/trial_<k>/finetuned/      the fine-tuned model: model.weights.h5 (FinetuningModel: backbone
                                   + task_specific head), config.json (ElectraConfig),
                                   vocab.txt (a copy of the vocabulary it was trained with) and
                                   head.json ({"task", "head", "num_labels", "answerable",
                                   for SQuAD "span_head" ("joint" or "independent", absent =
                                   independent) and "beam_size",
                                   "label_names", "max_seq_length", "vocab_file" ("vocab.txt",
                                   relative to finetuned/), "vocab_source" (where it was copied
                                   from), "vocab_sha256", "do_lower_case", and for SQuAD "squad": the
                                   decoding settings and the tuned 2.0 "null_threshold", for
                                   tagging "tagging": scheme and default tag}); the
                                   format is electra_tf/artifacts.py's
  glue_submission/<Leaderboard>.tsv the test predictions of each task's median trial
  summary.json                     the headline score per task and the GLUE average of the
                                   GLUE tasks that were run

An existing <task>/results.json is never replaced unless ``overwrite`` is set.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from electra_tf import (
    artifacts,
    checkpointing,
    distribution,
    fileio,
    finetuning_metrics,
    finetuning_models,
    finetuning_tasks,
    layerwise_optimizer,
    modeling,
    squad,
    text_packing,
    token_classification,
    tokenization,
    training_callbacks,
)
from electra_tf import config as config_lib
from electra_tf.errors import UserError
from electra_tf.progress import ProgressReporter, log

RESULTS_FILENAME = artifacts.TASK_RESULTS_FILE
SUMMARY_FILENAME = "summary.json"
SUBMISSION_DIR = "glue_submission"
# The saved folders' names, owned by electra_tf.artifacts (kept here for older imports).
FINETUNED_DIR = artifacts.FINETUNED_DIR
MODEL_WEIGHTS_FILE = artifacts.MODEL_WEIGHTS_FILE
HEAD_FILE = artifacts.HEAD_FILE
VOCAB_FILE = artifacts.VOCAB_FILE

# The paper's fine-tuning hyperparameters by model size (reference doc, "Fine-tuning").
RECIPES = {
    "small": {"learning_rate": 3e-4, "layerwise_decay": 0.8},
    "base": {"learning_rate": 1e-4, "layerwise_decay": 0.8},
    "large": {"learning_rate": 5e-5, "layerwise_decay": 0.9},
}


def model_size(config) -> str:
    """small / base / large by hidden size (anything below Base's 768 uses the Small recipe)."""
    if config.hidden_size >= 1024:
        return "large"
    if config.hidden_size >= 768:
        return "base"
    return "small"


@dataclasses.dataclass
class FinetuningOptions:
    """Everything run_finetuning does, one field per run_finetuning flag (the CLI fills it from
    them; None fields take the recipe of the model size or task)."""

    tasks: str
    output_dir: str
    data_dir: Optional[str] = None
    use_tfds: bool = False
    tfds_data_dir: Optional[str] = None
    init_checkpoint: Optional[str] = None
    config: str = "electra_small"
    hparams: object = None
    vocab_file: Optional[str] = None
    overwrite: bool = False
    num_trials: int = 1
    seed: int = 12345
    # None: the recipe for the model size / the task.
    learning_rate: Optional[float] = None
    layerwise_decay: Optional[float] = None
    num_train_epochs: Optional[float] = None
    num_train_steps: Optional[int] = None  # overrides epochs (short runs, tests)
    warmup_proportion: float = 0.1
    weight_decay_rate: float = 0.0
    train_batch_size: int = 32
    eval_batch_size: int = 64
    max_seq_length: Optional[int] = None  # None: 128 GLUE/ner, 256 chunk, 512 SQuAD
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    # Also train on every pair with its sentences swapped (the reference's double_unordered).
    # None: the task's default, on for MRPC and STS-B (the only tasks that allow it).
    swap_sentence_order: Optional[bool] = None
    # "reference": the reference's layer-wise rates (top layer d^2, embeddings d^(n+2)), with
    # which its published numbers were made; "paper": the paper's (top layer d, embeddings
    # d^(n+1)).
    layerwise_decay_formula: str = "reference"
    max_train_examples: Optional[int] = None
    max_eval_examples: Optional[int] = None
    squad_holdout_articles: int = 0  # >0: train on dev minus the last N articles, eval on them
    # "joint": the reference's SQuAD head (end conditioned on the start, beam of n_best_size
    # starts); "independent": separate start and end logits (this project's earlier head).
    squad_head: str = "joint"
    # SQuAD 2.0: None tunes the no-answer threshold on dev (the official script's best F1); a
    # number fixes it (the reference writes its predictions with -2.75).
    squad_null_threshold: Optional[float] = None
    # SQuAD 1.1: also build and train the answerability classifier (every label "answerable",
    # weight 0.5), as the reference does; its logit is never used to decode 1.1 answers.
    squad_v1_answerable_head: bool = False
    strategy: str = "one_device"
    tpu: Optional[str] = None
    mixed_precision: str = "none"
    jit_compile: bool = False
    trim_padding: bool = True
    log_every_steps: int = 50
    save_weights: bool = True
    write_test_predictions: bool = True
    # Token classification (ner, chunk): the CoNLL tag column (-1: last) and "file" (train on
    # the file's tags) or "bioes" (re-encode them as BIOES, as the reference does).
    tag_column: int = -1
    tagging_scheme: str = "file"
    # The token type of every tagged sentence: 0 as single-text GLUE inputs, 1 the reference's.
    tagging_segment_id: int = 0
    # Spans of dev tags: "conlleval" or "reference" (an I- after another type extends the span).
    tagging_span_rule: str = "conlleval"
    # Long sentences: "score_all" (keep max_seq_length - 2 pieces, score every word, cut ones as
    # O) or "reference" (its word budget; only the kept words are scored).
    tagging_truncation: str = "score_all"
    # The tag set: "train" (the training file's tags) or "all_splits" (train, dev, test tags).
    tag_set_from: str = "train"
    # --task=custom: the user's CSV/TSV files (see finetuning_tasks.make_custom_task).
    task_name: str = "custom"
    task_type: str = "classification"
    train_file: Optional[str] = None
    dev_file: Optional[str] = None
    test_file: Optional[str] = None
    text_column: str = "text"
    text_b_column: Optional[str] = None
    label_column: str = "label"
    labels: Optional[str] = None  # comma-separated; None: the training file's, sorted
    delimiter: Optional[str] = None  # None: from the file extension
    id_column: Optional[str] = None
    # Long runs: a trial saves a checkpoint every save_checkpoints_steps and at its end; a rerun
    # of the same command resumes it. Dev metrics go to TensorBoard at the end of each epoch or
    # every eval_every_steps (> 0).
    save_checkpoints_steps: int = 1000
    keep_checkpoints: bool = False
    eval_every_steps: int = 0
    # False: score the fine-tuned model in finetuned_dir (default: this output_dir's) on dev and
    # write test predictions, without training.
    do_train: bool = True
    finetuned_dir: Optional[str] = None


# ---------------------------------------------------------------------------------------------
# Model and config


def resolve_model_config(options: FinetuningOptions):
    """The ElectraConfig (from the checkpoint when there is one) and the weights file or None."""
    hparams, _ = config_lib.parse_hparams(options.hparams)
    if options.init_checkpoint:
        # A run_pretraining --model_dir holds the model in its pretrained/ folder.
        directory = artifacts.find_pretrained(options.init_checkpoint) or options.init_checkpoint
        try:
            config_path, weights_path = artifacts.check_pretrained(
                directory, "point to the 'pretrained' directory that run_pretraining writes in its --model_dir"
            )
        except UserError as error:
            raise UserError(f"--init_checkpoint: {error}") from None
        config = config_lib.ElectraConfig.from_json_file(config_path)
        fixed = sorted(set(hparams) & set(config_lib.SIZE_KEYS))
        if fixed:
            raise UserError(
                f"--hparams: {', '.join(fixed)} cannot change with --init_checkpoint "
                f"(the weights in {directory} have the checkpoint's sizes)"
            )
        if hparams:
            config = config.replace(hparams, source="--hparams")
        return config, weights_path, directory
    return config_lib.load_config(options.config, hparams or None), None, None


def build_model(config, task, weights_path: Optional[str], *, squad_head: str = "joint", beam_size: int = 20):
    """FinetuningModel for ``task``, its backbone restored from ``weights_path`` if given.

    Args:
      config: the ElectraConfig; task: a finetuning_tasks task; weights_path: backbone weights
        or None for random ones.
      squad_head: SQuAD's span head, "joint" (the reference's) or "independent".
      beam_size: the joint head's starts (and ends per start) kept at prediction time.
    Returns:
      A built FinetuningModel.
    """
    backbone = modeling.ElectraBackbone(config)
    if weights_path:
        backbone.load_weights(weights_path)
    if token_classification.is_tagging(task):
        head, num_labels, answerable = "tagging", task.num_labels, False
    elif task.is_squad:
        head, num_labels, answerable = "span", 2, task.answerable_head
    elif task.is_regression:
        head, num_labels, answerable = "regression", 1, False
    else:
        head, num_labels, answerable = "classification", task.num_labels, False
    return finetuning_models.FinetuningModel(
        backbone,
        head,
        num_labels=num_labels,
        answerable=answerable,
        target_scale=getattr(task, "target_scale", 1.0),
        dropout_rate=config.hidden_dropout_prob,
        span_head=squad_head,
        beam_size=beam_size,
    )


# Loading a fine-tuned model is the folder format's (export uses it without this module).
load_finetuned = artifacts.load_finetuned


def _save_finetuned(
    model,
    config,
    task,
    directory: str,
    max_seq_length: int,
    *,
    vocab_file: Optional[str] = None,
    squad_decoding: Optional[dict] = None,
    extra_head: Optional[dict] = None,
    replace: bool = False,
) -> None:
    """artifacts.save_finetuned of ``model`` with the head.json of ``task``."""
    head = artifacts.finetuned_head(model, task, max_seq_length, squad=squad_decoding, extra=extra_head)
    artifacts.save_finetuned(model, config, directory, head, vocab_file=vocab_file, replace=replace)


# ---------------------------------------------------------------------------------------------
# Inputs


def encode_glue(examples, tokenizer, max_seq_length: int) -> dict[str, np.ndarray]:
    """[CLS] a [SEP] (b [SEP]) as int32 arrays [n, max_seq_length], packed by text_packing.pack
    (the exports' packer): a single text keeps its first max_seq_length - 2 pieces, a pair
    drops the longer text's last piece until it fits."""
    if not examples:
        return {name: np.zeros((0, max_seq_length), np.int32) for name in ("input_ids", "input_mask", "segment_ids")}
    ids_a = tokenizer.tokenize([example.text_a for example in examples])
    pairs = examples[0].text_b is not None
    ids_b = tokenizer.tokenize([example.text_b for example in examples]) if pairs else None
    features = text_packing.pack(
        ids_a,
        ids_b,
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        max_seq_length=max_seq_length,
        pad_to_max_length=True,
    )
    return {name: value.numpy() for name, value in features.items()}


def _trim_to_longest(features, labels, multiple: int = 32):
    """Cuts a batch's padding to its longest sequence (rounded up to ``multiple``): the real
    positions compute the same values, padding only costs time."""
    longest = tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1))
    length = tf.minimum(tf.shape(features["input_ids"])[1], (longest + multiple - 1) // multiple * multiple)
    # Per-token labels (tagging) are cut with the features they belong to.
    labels = {name: value[:, :length] if value.shape.rank == 2 else value for name, value in labels.items()}
    return {name: value[:, :length] for name, value in features.items()}, labels


def make_input_fn(
    features: dict,
    labels: dict,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    trim_padding: bool,
    skip_batches: int = 0,
):
    """A per-replica tf.data input function for strategy.distribute_datasets_from_function.

    Training reads the examples in an endless sequence of passes, pass p in the order
    stateless_shuffle(seed, p): the batch at every step is a function of the seed alone (not of
    tf.data's shuffle state, which depends on what ran before in the process), and
    ``skip_batches`` starts the sequence at a resumed trial's step.
    """
    count = len(next(iter(features.values())))

    def input_fn(context: tf.distribute.InputContext):
        per_replica = context.get_per_replica_batch_size(batch_size)
        if not training:
            dataset = tf.data.Dataset.from_tensor_slices((features, labels))
            if context.num_input_pipelines > 1:
                dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
            dataset = dataset.batch(per_replica, drop_remainder=False)
        else:
            tensors = tf.nest.map_structure(tf.convert_to_tensor, (features, labels))
            order = tf.data.Dataset.range(2**62).map(
                lambda index: tf.random.experimental.stateless_shuffle(
                    tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), index])
                )
            )
            order = order.unbatch()
            if context.num_input_pipelines > 1:
                order = order.shard(context.num_input_pipelines, context.input_pipeline_id)
            order = order.batch(per_replica, drop_remainder=True)
            if skip_batches:
                order = order.skip(skip_batches)
            dataset = order.map(lambda rows: tf.nest.map_structure(lambda t: tf.gather(t, rows), tensors))
        if trim_padding:
            dataset = dataset.map(_trim_to_longest, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    return input_fn


class FinetuningProgress(keras.callbacks.Callback):
    """Every ``every_steps`` steps (and at the last): a progress line (step, examples/s, ETA,
    loss, learning rate) and TensorBoard scalars ``loss`` (the mean over the steps since the
    previous line), ``learning_rate`` and ``examples_per_second``; stops fit after exactly
    ``total_steps`` optimizer steps.

    ``start_step`` is where a resumed trial starts: rates and the ETA count this run's steps.
    """

    def __init__(
        self,
        name: str,
        total_steps: int,
        batch_size: int,
        every_steps: int,
        start_step: int = 0,
        writer: Optional[tf.summary.SummaryWriter] = None,
    ):
        super().__init__()
        self.reporter = ProgressReporter(
            name, total=total_steps - start_step, total_key="steps", interval_seconds=0.0, stream=sys.stdout
        )
        self.batch_size = batch_size
        self.every_steps = max(1, every_steps)
        self.total_steps = total_steps
        self.start_step = start_step
        self.writer = writer
        self.steps = start_step  # the global step
        self.last_loss = float("nan")  # mean over the last reported window
        self._epoch_sum = 0.0
        self._window = [0.0, 0]
        self._window_started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        """Resets the running loss sum that Keras's per-epoch mean is unpicked from."""
        self._epoch_sum = 0.0

    def on_train_batch_end(self, batch, logs=None):
        """Counts the step, logs a progress line and scalars every ``every_steps`` steps, and stops fit at
        ``total_steps``."""
        self.steps += 1
        if logs and "loss" in logs:
            # Keras reports the running mean since the epoch began; the step's own loss is the
            # difference of the running sums.
            running = float(logs["loss"]) * (batch + 1)
            self._window[0] += running - self._epoch_sum
            self._window[1] += 1
            self._epoch_sum = running
        done = self.steps - self.start_step
        self.reporter.counts["steps"] = done
        self.reporter.counts["examples"] = done * self.batch_size
        if self.steps % self.every_steps == 0 or self.steps == self.total_steps:
            now = time.monotonic()
            if self._window[1]:
                self.last_loss = self._window[0] / self._window[1]
            rate = self._window[1] * self.batch_size / max(now - self._window_started, 1e-9)
            learning_rate = training_callbacks.current_learning_rate(self.model.optimizer)
            log(
                f"{self.reporter.line(now)} | step {self.steps}/{self.total_steps} | loss "
                f"{self.last_loss:.4f} | lr {learning_rate:.3g}"
            )
            if self.writer is not None:
                training_callbacks.write_scalars(
                    self.writer,
                    self.steps,
                    {"loss": self.last_loss, "learning_rate": learning_rate, "examples_per_second": rate},
                )
            self._window = [0.0, 0]
            self._window_started = now
        if self.steps >= self.total_steps:
            self.model.stop_training = True


class PeriodicEvaluation(keras.callbacks.Callback):
    """Scores dev every ``every_steps`` global steps before the last one (the caller scores
    the last), prints the metrics and writes them as TensorBoard scalars."""

    def __init__(self, counter, every_steps: int, total_steps: int, evaluate, writer, name: str):
        super().__init__()
        self.counter = counter
        self.every_steps = every_steps
        self.total_steps = total_steps
        self.evaluate = evaluate
        self.writer = writer
        self.name = name

    def on_train_batch_end(self, batch, logs=None):
        """Scores dev when the global step is a multiple of ``every_steps`` (not the last step), logging and writing the
        metrics."""
        step = self.counter.step
        if step >= self.total_steps or step % self.every_steps:
            return
        metrics = self.evaluate()
        log(
            f"[{self.name}] dev at step {step}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if isinstance(v, float))
        )
        if self.writer is not None:
            training_callbacks.write_scalars(
                self.writer, step, {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            )


# ---------------------------------------------------------------------------------------------
# One task


@dataclasses.dataclass
class TaskData:
    """One task's inputs, ready for the model. Features are {"input_ids", "input_mask",
    "segment_ids"} int32 [n, max_seq_length]; train_labels the label arrays [n] (the task's own
    keys for SQuAD and tagging); eval_sets: split -> (features, labels or None, examples, extra);
    test_sets: split -> (features, examples); info: what reading the data reported."""

    train_features: dict
    train_labels: dict
    eval_sets: dict  # split -> (features, labels or None, examples, extra)
    test_sets: dict  # split -> (features, examples)
    info: dict


def _glue_arrays(task, examples, tokenizer, max_seq_length):
    features = encode_glue(examples, tokenizer, max_seq_length)
    if examples[0].label is None:
        return features, None
    dtype = np.float32 if task.is_regression else np.int32
    return features, {"label": np.array([example.label for example in examples], dtype)}


def _subset(examples, limit: Optional[int]):
    return examples if not limit else examples[:limit]


def swap_sentence_order(task, options) -> bool:
    """Whether ``task`` trains on both sentence orders under ``options``."""
    if options.swap_sentence_order is None:
        return task.symmetric_pairs
    if options.swap_sentence_order and not task.symmetric_pairs:
        raise UserError(f"--swap_sentence_order applies to mrpc and sts-b, not {task.name}")
    return options.swap_sentence_order


def _prepare_train(task, options, tokenizer, max_seq_length, info):
    train, stats = finetuning_tasks.read_split(
        task, "train", data_dir=options.data_dir, use_tfds=options.use_tfds, tfds_data_dir=options.tfds_data_dir
    )
    if options.max_train_examples:
        # A fixed-seed sample, so that small subsets are not whatever the file starts with.
        order = np.random.RandomState(options.seed).permutation(len(train))
        train = [train[i] for i in sorted(order[: options.max_train_examples])]
    if swap_sentence_order(task, options):
        train = finetuning_tasks.swap_sentence_order(train)
    info["splits"]["train"] = dict(stats, used=len(train))
    return _glue_arrays(task, train, tokenizer, max_seq_length)


def prepare_glue(task, options, tokenizer, max_seq_length: int, with_train: bool = True) -> TaskData:
    """Encoded train (unless ``with_train`` is False), dev and test splits of a sentence task."""
    info = {"splits": {}}
    train_features = train_labels = None
    if with_train:
        train_features, train_labels = _prepare_train(task, options, tokenizer, max_seq_length, info)
    eval_sets = {}
    for split in task.dev_splits:
        examples, stats = finetuning_tasks.read_split(
            task, split, data_dir=options.data_dir, use_tfds=options.use_tfds, tfds_data_dir=options.tfds_data_dir
        )
        examples = _subset(examples, options.max_eval_examples)
        info["splits"][split] = dict(stats, used=len(examples))
        features, labels = _glue_arrays(task, examples, tokenizer, max_seq_length)
        eval_sets[split] = (features, labels, examples, None)
    test_sets = {}
    if options.write_test_predictions:
        for split in task.test_splits:
            if isinstance(task, finetuning_tasks.CustomTask):
                available = task.file(split) is not None
            else:
                available = options.use_tfds or fileio.isfile(finetuning_tasks.task_file(options.data_dir, task, split))
            if available:
                examples, stats = finetuning_tasks.read_split(
                    task,
                    split,
                    data_dir=options.data_dir,
                    use_tfds=options.use_tfds,
                    tfds_data_dir=options.tfds_data_dir,
                )
                info["splits"][split] = dict(stats, used=len(examples))
                test_sets[split] = (encode_glue(examples, tokenizer, max_seq_length), examples)
            else:
                log(f"[{task.name}] no {split} file; skipping leaderboard predictions")
    return TaskData(train_features, train_labels, eval_sets, test_sets, info)


def squad_file(data_dir: str, filename: str, version: str) -> str:
    """Finds a SQuAD JSON file under --data_dir.

    Args:
      data_dir: the folder given as --data_dir (local or remote).
      filename: e.g. "train-v1.1.json".
      version: "1.1" or "2.0", for the versioned sub-folders.

    Returns:
      The first existing of data_dir/filename, data_dir/{squad,SQuAD}/filename,
      data_dir/squad/v<version>/filename and data_dir/v<version>/filename.

    Raises:
      UserError: none of them exists.
    """
    for candidate in (
        os.path.join(data_dir, filename),
        os.path.join(data_dir, "squad", filename),
        os.path.join(data_dir, "SQuAD", filename),
        os.path.join(data_dir, "squad", f"v{version}", filename),
        os.path.join(data_dir, f"v{version}", filename),
    ):
        if fileio.isfile(candidate):
            return candidate
    raise UserError(
        f"--data_dir {data_dir}: {filename} not found (looked in {data_dir}, "
        f"{data_dir}/squad and {data_dir}/squad/v{version}); add the official file "
        "or use --squad_holdout_articles to train on part of the dev file"
    )


def prepare_squad(task, options, tokenizer, settings, with_train: bool = True) -> TaskData:
    """SQuAD windows for training and dev; ``with_train=False`` (scoring a fine-tuned model)
    reads and windows the dev questions only, and needs no training file."""
    if options.use_tfds:
        train_examples, dev_examples, info = _squad_from_tfds(task, options)
    else:
        if not options.data_dir:
            raise UserError("--data_dir is required (the SQuAD JSON files), or pass --use_tfds")
        dev_path = squad_file(options.data_dir, task.dev_file, task.version)
        if options.squad_holdout_articles:
            examples, stats = squad.read_squad(dev_path, is_training=True, version=task.version)
            if options.squad_holdout_articles >= stats["articles"]:
                raise UserError(
                    f"--squad_holdout_articles={options.squad_holdout_articles} "
                    f"leaves no training articles ({dev_path} has "
                    f"{stats['articles']})"
                )
            train_examples, dev_examples = squad.split_by_article(examples, options.squad_holdout_articles)
            # Evaluation scores every gold answer, not only the first one kept for training.
            all_examples, _ = squad.read_squad(dev_path, is_training=False, version=task.version)
            by_id = {example.qid: example for example in all_examples}
            dev_examples = [by_id[example.qid] for example in dev_examples]
            info = {
                "splits": {
                    "train": {
                        "file": dev_path,
                        "questions": len(train_examples),
                        "articles": stats["articles"] - options.squad_holdout_articles,
                        "note": "dev file minus the held-out articles",
                    },
                    "dev": {
                        "file": dev_path,
                        "questions": len(dev_examples),
                        "articles": options.squad_holdout_articles,
                        "note": "last articles of the dev file",
                    },
                }
            }
        else:
            train_examples, train_stats = [], {}
            if with_train:
                train_path = squad_file(options.data_dir, task.train_file, task.version)
                train_examples, train_stats = squad.read_squad(train_path, is_training=True, version=task.version)
            dev_examples, dev_stats = squad.read_squad(dev_path, is_training=False, version=task.version)
            info = {"splits": {"train": train_stats, "dev": dev_stats}}
    if options.max_train_examples:
        train_examples = train_examples[: options.max_train_examples]
    dev_examples = _subset(dev_examples, options.max_eval_examples)
    inputs, labels, train_counts = {}, {}, {}
    if with_train:
        train_features, _, train_counts = squad.featurize(train_examples, tokenizer, settings, is_training=True)
        if not train_features:
            raise UserError(f"[{task.name}] no training windows could be built")
        inputs, labels = squad.feature_arrays(train_features)
    dev_features, dev_pieces, dev_counts = squad.featurize(dev_examples, tokenizer, settings, is_training=False)
    dev_inputs, _ = squad.feature_arrays(dev_features)
    if with_train:
        info["splits"]["train"].update(used_questions=len(train_examples), **train_counts)
    else:
        info["splits"].pop("train", None)
    info["splits"]["dev"].update(used_questions=len(dev_examples), **dev_counts)
    return TaskData(inputs, labels, {"dev": (dev_inputs, None, dev_examples, (dev_features, dev_pieces))}, {}, info)


def _squad_from_tfds(task, options):
    # Slow to import (seconds) and needed by --use_tfds only.
    import tensorflow_datasets as tfds

    def load(split):
        try:
            dataset = tfds.load(task.tfds_name, split=split, data_dir=options.tfds_data_dir)
        except Exception as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(
                f"--use_tfds: cannot load {task.tfds_name} split {split} ({first}); check the network or use --data_dir"
            ) from None
        examples = []
        for record in tfds.as_numpy(dataset):
            texts = [t.decode("utf-8") for t in record["answers"]["text"]]
            starts = [int(s) for s in record["answers"]["answer_start"]]
            impossible = bool(record.get("is_impossible", False)) or not texts
            examples.append(
                squad.SquadExample(
                    record["id"].decode("utf-8"),
                    record["question"].decode("utf-8"),
                    record["context"].decode("utf-8"),
                    list(zip(texts, starts)),
                    impossible,
                    record["title"].decode("utf-8"),
                )
            )
        return examples

    train, dev = load("train"), load("validation")
    train = [dataclasses.replace(e, answers=e.answers[:1]) for e in train]
    return (
        train,
        dev,
        {"splits": {"train": {"tfds": f"{task.tfds_name}:train"}, "dev": {"tfds": f"{task.tfds_name}:validation"}}},
    )


def _write_tsv(path: str, header: tuple, rows) -> None:
    with fileio.open(path, "w") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(str(value) for value in row) + "\n")


def _predict(model, features: dict, batch_size: int):
    outputs = model.predict(features, batch_size=batch_size, verbose=0)
    return {name: np.asarray(value) for name, value in outputs.items()}


def _glue_predictions(task, outputs):
    if task.is_regression:
        return outputs["predictions"].astype(np.float64)
    return np.argmax(outputs["logits"], axis=-1)


TRIAL_RECORD_FILE = "trial.json"  # what a trial was started with, checked on resume
TRIAL_RESULT_FILE = "trial_result.json"  # written last: the trial is finished
LOGS_DIR = "logs"  # TensorBoard: logs/train (loss, learning_rate, examples_per_second), logs/dev


def _trial_record(task, data, options, hyper, seed, total_steps) -> dict:
    record = {
        "task": task.name,
        "seed": seed,
        "train_steps": total_steps,
        "hyperparameters": hyper,
        "data": data.info,
        "mixed_precision": options.mixed_precision,
        "trim_padding": options.trim_padding,
    }
    return json.loads(json.dumps(record))  # tuples as lists, as read back


def _check_trial_record(trial_dir: str, record: dict) -> bool:
    """Writes trial.json for a new trial; for an existing one, refuses other settings. Returns
    whether the trial was started before."""
    path = os.path.join(trial_dir, TRIAL_RECORD_FILE)
    if not fileio.isfile(path):
        fileio.write_json_atomic(path, record, sort_keys=True)
        return False
    saved = fileio.read_json(path)

    def flat(value, prefix=""):
        if isinstance(value, dict):
            for key, item in value.items():
                yield from flat(item, f"{prefix}{key}.")
        else:
            yield prefix.rstrip("."), value

    old, new = dict(flat(saved)), dict(flat(record))
    changed = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    if changed:
        details = ", ".join(f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in changed[:3])
        raise UserError(
            f"{path}: this trial was started with other settings ({details}); rerun "
            "the same command to resume it, or pass --overwrite to start again"
        )
    return True


def _build_for_restore(model, optimizer, features) -> None:
    """Creates the model's and optimizer's variables without a training step, so a checkpoint
    can be restored outside fit."""
    model({name: value[:1] for name, value in features.items()}, training=False)
    optimizer.build(model.trainable_variables)


def run_trial(
    task,
    data: TaskData,
    options: FinetuningOptions,
    config,
    weights_path,
    strategy,
    *,
    trial: int,
    hyper: dict,
    trial_dir: str,
    tokenizer_max_seq: int,
    vocab_file: Optional[str] = None,
) -> dict:
    """Fine-tunes one seed and evaluates it; returns {"seed", "metrics", "steps", ...}.

    Checkpoints (model, optimizer, step, dropout RNG state) go to <trial_dir>/checkpoints every
    ``options.save_checkpoints_steps`` and at the end; a trial_dir that has them is resumed from
    the newest (the input skips the batches already trained on), so the result equals an
    uninterrupted run's. TensorBoard scalars go to <trial_dir>/logs.
    """
    seed = options.seed + trial
    keras.utils.set_random_seed(seed)
    num_train = len(data.train_features["input_ids"])
    batch = options.train_batch_size
    if options.num_train_steps:
        total_steps = options.num_train_steps
    else:
        total_steps = max(1, int(math.ceil(num_train * hyper["num_train_epochs"] / batch)))
    epoch_steps = max(1, num_train // batch)  # drop_remainder: whole batches per pass
    fileio.makedirs(trial_dir)
    started_before = _check_trial_record(trial_dir, _trial_record(task, data, options, hyper, seed, total_steps))
    start_step = checkpointing.latest_checkpoint_step(trial_dir) if started_before else 0
    if start_step > total_steps:
        raise UserError(
            f"{trial_dir}: checkpoint at step {start_step} is past this trial's "
            f"{total_steps} steps; pass --overwrite to start again"
        )
    use_xla = distribution.resolve_jit_compile(strategy, options.jit_compile)
    with strategy.scope():
        model = build_model(config, task, weights_path, squad_head=options.squad_head, beam_size=options.n_best_size)
        optimizer = layerwise_optimizer.create_finetuning_optimizer(
            model.backbone,
            learning_rate=hyper["learning_rate"],
            layerwise_decay=hyper["layerwise_decay"],
            num_train_steps=total_steps,
            layerwise_decay_formula=hyper["layerwise_decay_formula"],
            warmup_proportion=options.warmup_proportion,
            weight_decay_rate=options.weight_decay_rate,
            clip_norm=config.clip_norm,
        )
        if options.mixed_precision == "fp16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, jit_compile=use_xla)
    distribution.per_replica_batch_size(batch, strategy)
    chief = distribution.is_chief(strategy)

    def make_checkpoint(built_model):
        return checkpointing.TrainingCheckpoint(
            trial_dir, built_model, built_model.optimizer, max_to_keep=2, is_chief=chief
        )

    logs_dir = os.path.join(trial_dir, LOGS_DIR)
    train_writer = tf.summary.create_file_writer(os.path.join(logs_dir, "train"))
    dev_writer = tf.summary.create_file_writer(os.path.join(logs_dir, "dev"))
    name = f"{task.name} trial {trial + 1}"
    started = time.monotonic()
    progress = FinetuningProgress(name, total_steps, batch, options.log_every_steps, start_step, train_writer)
    if start_step == total_steps:
        log(f"[{name}] restoring the finished training from its step-{start_step} checkpoint")
        with strategy.scope():
            _build_for_restore(model, optimizer, data.train_features)
            make_checkpoint(model).restore_latest()
    else:
        if start_step:
            log(f"[{name}] resuming from the checkpoint at step {start_step} of {total_steps}")
        train_dataset = strategy.distribute_datasets_from_function(
            make_input_fn(
                data.train_features,
                data.train_labels,
                batch_size=batch,
                training=True,
                seed=seed,
                trim_padding=options.trim_padding,
                skip_batches=start_step,
            )
        )
        counter = training_callbacks.StepCounter(total_steps)
        checkpointer = training_callbacks.RestoreAndCheckpoint(
            make_checkpoint, counter, expected_start_step=start_step, log=lambda message: log(f"[{name}] {message}")
        )
        callbacks = [counter, checkpointer, progress]
        if not task.is_squad and not token_classification.is_tagging(task):
            every = options.eval_every_steps or epoch_steps
            callbacks.append(
                PeriodicEvaluation(
                    counter,
                    every,
                    total_steps,
                    lambda: _score_sentence_task(task, model, data, options)[0],
                    dev_writer,
                    name,
                )
            )
        # A Keras epoch is one checkpoint interval (RestoreAndCheckpoint saves at its end);
        # StepCounter stops at exactly total_steps.
        interval = max(1, min(options.save_checkpoints_steps, total_steps))
        initial_epoch = start_step // interval
        epochs = initial_epoch + int(math.ceil((total_steps - start_step) / interval))
        model.fit(
            train_dataset,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=interval,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )
        checkpointer.save_now()
        if counter.step != total_steps:
            raise RuntimeError(f"trained to step {counter.step}, expected {total_steps}")
    train_seconds = time.monotonic() - started
    trained = total_steps - start_step

    result = {
        "trial": trial,
        "seed": seed,
        "train_steps": total_steps,
        "resumed_from_step": start_step,
        "train_seconds": round(train_seconds, 2),
        "train_examples_per_second": round(trained * batch / max(train_seconds, 1e-9), 2),
        "final_train_loss": progress.last_loss,
        "metrics": {},
    }
    if token_classification.is_tagging(task):
        result["metrics"] = token_classification.evaluate(task, model, data, options, trial_dir)
    elif task.is_squad:
        result["metrics"] = _evaluate_squad(task, model, data, options, trial_dir)
    else:
        result["metrics"] = _evaluate_sentence_task(task, model, data, options, trial_dir)
    training_callbacks.write_scalars(
        dev_writer, total_steps, {k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))}
    )
    if options.save_weights:
        squad_decoding = None
        if task.is_squad:
            squad_decoding = dataclasses.asdict(_squad_settings(options))
            # SQuAD 2.0: the no-answer threshold tuned on this trial's dev predictions.
            squad_decoding["null_threshold"] = result["metrics"].get("null_threshold")
        extra_head = token_classification.head_info(task) if token_classification.is_tagging(task) else None
        # A finetuned/ already there is from a run killed after saving it (the same weights):
        # replaced, and deleted only once the new copy is complete.
        _save_finetuned(
            model,
            config,
            task,
            os.path.join(trial_dir, FINETUNED_DIR),
            tokenizer_max_seq,
            vocab_file=vocab_file,
            squad_decoding=squad_decoding,
            extra_head=extra_head,
            replace=True,
        )
    fileio.write_json_atomic(os.path.join(trial_dir, TRIAL_RESULT_FILE), result, sort_keys=True)
    checkpoints = os.path.join(trial_dir, checkpointing.CHECKPOINT_SUBDIR)
    if not options.keep_checkpoints and fileio.exists(checkpoints):
        # finetuned/ holds the weights; the optimizer slots would triple the trial's size.
        fileio.rmtree(checkpoints)
    return result


def _score_sentence_task(task, model, data, options) -> tuple[dict, dict]:
    """(metrics, {split: predictions}) of ``model`` on the dev splits."""
    per_split, predictions = {}, {}
    for split, (features, labels, _, _) in data.eval_sets.items():
        predictions[split] = _glue_predictions(task, _predict(model, features, options.eval_batch_size))
        per_split[split] = task.compute_metrics(labels["label"], predictions[split])
    return _combine_split_metrics(per_split), predictions


def _evaluate_sentence_task(task, model, data, options, out_dir) -> dict:
    """Scores dev, writes <split>_predictions.tsv and the test predictions into ``out_dir``;
    returns the metrics."""
    metrics, predictions = _score_sentence_task(task, model, data, options)
    fileio.makedirs(out_dir)
    for split, (_, _, examples, _) in data.eval_sets.items():
        _write_tsv(
            os.path.join(out_dir, f"{split}_predictions.tsv"),
            ("guid", "label", "prediction"),
            (
                (
                    example.guid,
                    finetuning_tasks.submission_label(task, example.label),
                    finetuning_tasks.submission_label(task, prediction),
                )
                for example, prediction in zip(examples, predictions[split])
            ),
        )
    for split, submission in zip(task.test_splits, task.submission_files):
        if split not in data.test_sets:
            continue
        features, examples = data.test_sets[split]
        test_predictions = _glue_predictions(task, _predict(model, features, options.eval_batch_size))
        _write_tsv(
            os.path.join(out_dir, submission),
            ("index", "prediction"),
            (
                (example.guid, finetuning_tasks.submission_label(task, prediction))
                for example, prediction in zip(examples, test_predictions)
            ),
        )
    return metrics


def _combine_split_metrics(per_split: dict) -> dict:
    """One split: its metrics. MNLI: "<split>/<metric>" for each and score = the matched one
    (GLUE averages MNLI-m and MNLI-mm separately; the ELECTRA table reports matched)."""
    if len(per_split) == 1:
        return next(iter(per_split.values()))
    combined = {}
    for split, values in per_split.items():
        for name, value in values.items():
            combined[f"{split}/{name}"] = value
    combined["score"] = per_split[next(iter(per_split))]["score"]
    return combined


def _evaluate_squad(task, model, data, options, trial_dir) -> dict:
    features, _, examples, (windows, pieces) = data.eval_sets["dev"]
    outputs = _predict(model, features, options.eval_batch_size)
    settings = _squad_settings(options)
    predictions, nbest, null_scores = squad.decode_predictions(examples, windows, pieces, outputs, settings)
    gold = squad.gold_answers(examples)
    if task.version == "2.0":
        thresholds = finetuning_metrics.best_null_threshold(gold, predictions, null_scores)
        threshold = (
            thresholds["best_f1_threshold"]
            if options.squad_null_threshold is None
            else float(options.squad_null_threshold)
        )
        final = finetuning_metrics.apply_null_threshold(predictions, null_scores, threshold)
        scores = finetuning_metrics.squad_scores(gold, final)
        scores.update(thresholds, null_threshold=threshold)
        squad.write_json(os.path.join(trial_dir, "dev_null_scores.json"), null_scores)
    else:
        final = predictions
        scores = finetuning_metrics.squad_scores(gold, final)
    squad.write_json(os.path.join(trial_dir, "dev_predictions.json"), final)
    squad.write_json(os.path.join(trial_dir, "dev_nbest.json"), nbest)
    scores["score"] = (scores["exact_match"] + scores["f1"]) / 2.0
    return scores


def _squad_settings(options):
    return squad.SquadSettings(
        max_seq_length=options.max_seq_length or 512,
        doc_stride=options.doc_stride,
        max_query_length=options.max_query_length,
        max_answer_length=options.max_answer_length,
        n_best_size=options.n_best_size,
    )


def median_trial(trials: list, metric: str) -> dict:
    """The trial whose ``metric`` is the median (the lower middle one for an even count)."""
    ordered = sorted(trials, key=lambda t: t["metrics"][metric])
    return ordered[(len(ordered) - 1) // 2]


def _check_options(options: FinetuningOptions) -> None:
    for name in ("num_trials", "train_batch_size", "eval_batch_size"):
        if getattr(options, name) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(options, name)}")
    if options.num_train_steps is not None and options.num_train_steps < 1:
        raise UserError(f"--num_train_steps must be at least 1, got {options.num_train_steps}")
    if not options.output_dir:
        raise UserError("--output_dir is required")
    if not 0.0 <= options.warmup_proportion <= 1.0:
        raise UserError(f"--warmup_proportion must be in [0, 1], got {options.warmup_proportion}")
    if options.squad_head not in ("joint", "independent"):
        raise UserError(f"--squad_head must be joint (the reference's) or independent, got {options.squad_head!r}")
    if options.save_checkpoints_steps < 1:
        raise UserError(f"--save_checkpoints_steps must be at least 1, got {options.save_checkpoints_steps}")
    if options.eval_every_steps < 0:
        raise UserError(f"--eval_every_steps must be 0 (every epoch) or more, got {options.eval_every_steps}")
    if options.finetuned_dir and options.do_train:
        raise UserError(
            "--finetuned_dir is for --do_train=false (scoring a fine-tuned model); "
            "to fine-tune further, start from --init_checkpoint"
        )


def resolve_tasks(options: FinetuningOptions, labels: Optional[Sequence[str]] = None) -> list:
    """The tasks of ``options.tasks``; ``custom`` becomes the CustomTask of the custom flags
    (``labels``, when given, stand in for --labels: a fine-tuned model's label set)."""
    names = [part.strip() for part in (options.tasks or "").split(",") if part.strip()]
    custom = [name for name in names if name.lower() == "custom"]
    if len(custom) > 1:
        raise UserError("--task: 'custom' may appear once (one set of --train_file/--dev_file)")
    tasks = []
    for name in names:
        if name.lower() != "custom":
            tasks.extend(finetuning_tasks.parse_task_list(name))
            continue
        given = [label for label in (options.labels or "").split(",") if label.strip()]
        if labels is not None and given and [g.strip() for g in given] != list(labels):
            raise UserError(
                f"--labels={options.labels} differs from the fine-tuned model's "
                f"labels {','.join(labels)}; drop --labels"
            )
        tasks.append(
            finetuning_tasks.make_custom_task(
                name=options.task_name,
                task_type=options.task_type,
                data_dir=options.data_dir,
                train_file=options.train_file,
                dev_file=options.dev_file,
                test_file=options.test_file,
                text_column=options.text_column,
                text_b_column=options.text_b_column,
                label_column=options.label_column,
                labels=given or (list(labels) if labels else None),
                delimiter=options.delimiter,
                id_column=options.id_column,
                need_train=options.do_train,
            )
        )
    if not tasks:
        finetuning_tasks.parse_task_list("")  # raises the "--task is required" error
    return tasks


def _check_data_files(tasks, options) -> None:
    """Fails before any training when a task's training or dev file is missing."""
    if all(isinstance(task, finetuning_tasks.CustomTask) for task in tasks):
        return
    if not options.data_dir:
        raise UserError("--data_dir is required (GLUE folders / SQuAD JSON files), or pass --use_tfds")
    for task in tasks:
        if token_classification.is_tagging(task):
            token_classification.check_data_files(task, options.data_dir)
            continue
        if isinstance(task, finetuning_tasks.CustomTask):
            continue  # make_custom_task found its files
        if task.is_squad:
            squad_file(options.data_dir, task.dev_file, task.version)
            if not options.squad_holdout_articles:
                squad_file(options.data_dir, task.train_file, task.version)
            continue
        for split in ("train",) + task.dev_splits:
            path = finetuning_tasks.task_file(options.data_dir, task, split)
            if not fileio.isfile(path):
                raise UserError(
                    f"{path}: file not found; --data_dir must hold the GLUE folders "
                    f"({task.directory}/{split}.tsv for --task={task.name})"
                )


def _resolve_vocab(options, checkpoint_dir) -> str:
    """--vocab_file, or the checkpoint's vocab.txt; a --vocab_file that is not the checkpoint's
    own vocabulary (another sha256) is refused: the ids would mean other words to the model."""
    beside = os.path.join(checkpoint_dir, VOCAB_FILE) if checkpoint_dir else None
    has_beside = beside is not None and fileio.isfile(beside)
    if options.vocab_file:
        if has_beside and (tokenization.vocab_sha256(options.vocab_file) != tokenization.vocab_sha256(beside)):
            raise UserError(
                f"--vocab_file {options.vocab_file} is not the vocabulary the model "
                f"was pretrained with ({beside} differs); drop --vocab_file to use "
                "that one"
            )
        return options.vocab_file
    if has_beside:
        return beside
    raise UserError(
        "--vocab_file is required (the WordPiece vocabulary the model was "
        "pretrained with, e.g. bert-base-uncased/vocab.txt)"
    )


def run_finetuning(options: FinetuningOptions, strategy=None) -> dict:
    """Fine-tunes and evaluates every task in ``options.tasks``; returns the summary dict.

    Args:
      options: the tasks (comma-separated names), the data, the pretrained model
        (init_checkpoint; None fine-tunes from random weights) and the recipe; the fields mirror
        run_finetuning's flags.
      strategy: a tf.distribute strategy to use instead of building options.strategy's.

    Returns:
      The summary written to output_dir/summary.json: {"tasks": {task name: {"median_score",
      ...}}} plus "glue_average" and "glue_average_over" when GLUE tasks ran.

    Raises:
      UserError: bad options, missing data or model files, a vocabulary that is not the model's,
        or results already in output_dir without ``overwrite``.

    Example:

        options = FinetuningOptions(tasks="rte", output_dir="finetune_out",
                                    data_dir="../shared/data/glue",
                                    init_checkpoint="runs/small/pretrained")
        summary = run_finetuning(options)
        summary["tasks"]["rte"]["median_score"]  # dev accuracy x100, median over the trials
    """
    _check_options(options)
    if not options.do_train:
        return score_finetuned(options, strategy)
    tasks = resolve_tasks(options)
    config, weights_path, checkpoint_dir = resolve_model_config(options)
    vocab_file = _resolve_vocab(options, checkpoint_dir)
    if not options.use_tfds:
        _check_data_files(tasks, options)
    for task in tasks:
        results_path = os.path.join(options.output_dir, task.name, RESULTS_FILENAME)
        if fileio.exists(results_path) and not options.overwrite:
            raise UserError(
                f"{results_path} already exists; pass --overwrite to replace it or choose another --output_dir"
            )
    distribution.set_mixed_precision(options.mixed_precision)
    tokenizer = tokenization.Tokenizer(vocab_file, do_lower_case=config.do_lower_case)
    if tokenizer.vocab_size > config.vocab_size:
        raise UserError(
            f"--vocab_file {vocab_file} has {tokenizer.vocab_size} tokens but the "
            f"model's vocab_size is {config.vocab_size}; use the vocabulary the model "
            "was pretrained with"
        )
    if strategy is None:
        strategy = distribution.create_strategy(options.strategy, tpu=options.tpu)
    distribution.warn_if_bfloat16_is_emulated(strategy)
    if not distribution.is_chief(strategy):
        # Every worker trains and predicts in step; only the chief's files are kept.
        options = dataclasses.replace(options, output_dir=tempfile.mkdtemp(prefix="worker_"))
    if weights_path is None:
        log("=" * 78)
        log("WARNING: no --init_checkpoint: fine-tuning from RANDOMLY INITIALISED weights.")
        log("These results are the no-pretraining baseline, not ELECTRA's.")
        log("=" * 78)
    else:
        log(f"Initialising the encoder from {weights_path}")
    size = model_size(config)
    summary = {"tasks": {}}
    summary_path = os.path.join(options.output_dir, SUMMARY_FILENAME)
    if fileio.isfile(summary_path):
        with fileio.open(summary_path, "r") as handle:
            summary = json.load(handle)
    for task in tasks:
        summary["tasks"][task.name] = _run_task(
            task, options, config, weights_path, strategy, tokenizer, vocab_file, size
        )
    glue = {
        name: value["median_score"] for name, value in summary["tasks"].items() if name in finetuning_tasks.GLUE_TASKS
    }
    if glue:
        summary["glue_average"] = finetuning_metrics.glue_average(glue)
        summary["glue_average_over"] = sorted(glue)
    fileio.makedirs(options.output_dir)
    with fileio.open(summary_path, "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    if glue:
        log(f"GLUE average over {', '.join(sorted(glue))}: {summary['glue_average']:.2f}")
    return summary


def _run_task(task, options, config, weights_path, strategy, tokenizer, vocab_file, size):
    recipe = RECIPES[size]
    hyper = {
        "learning_rate": options.learning_rate or recipe["learning_rate"],
        "layerwise_decay": options.layerwise_decay or recipe["layerwise_decay"],
        "layerwise_decay_formula": options.layerwise_decay_formula,
        "num_train_epochs": options.num_train_epochs or task.num_epochs,
        "num_train_steps": options.num_train_steps,
        "warmup_proportion": options.warmup_proportion,
        "weight_decay_rate": options.weight_decay_rate,
        "train_batch_size": options.train_batch_size,
        "clip_norm": config.clip_norm,
        "dropout": config.hidden_dropout_prob,
        "recipe_size": size,
    }
    if task.is_squad:
        hyper["squad_head"] = options.squad_head
        hyper["squad_null_threshold"] = options.squad_null_threshold
        if options.squad_v1_answerable_head and task.version == "1.1":
            # Recorded only when set, so trials started before the flag existed still resume.
            hyper["squad_v1_answerable_head"] = True
            task = dataclasses.replace(task, v1_answerable_head=True)
    task_dir = os.path.join(options.output_dir, task.name)
    log(f"[{task.name}] reading data")
    if task.is_squad:
        settings = _squad_settings(options)
        max_seq = settings.max_seq_length
        hyper.update(dataclasses.asdict(settings))
        data = prepare_squad(task, options, tokenizer, settings)
    elif token_classification.is_tagging(task):
        max_seq = options.max_seq_length or task.max_seq_length
        hyper.update(
            max_seq_length=max_seq,
            tag_column=options.tag_column,
            tagging_scheme=options.tagging_scheme,
            tagging_segment_id=options.tagging_segment_id,
        )
        # The reference-restoring choices are recorded only when set, so trials started before
        # they existed still resume.
        for name, default in (
            ("tagging_span_rule", "conlleval"),
            ("tagging_truncation", "score_all"),
            ("tag_set_from", "train"),
        ):
            if getattr(options, name) != default:
                hyper[name] = getattr(options, name)
        # The tag set comes from the training file, so the task is returned with it.
        task, data = token_classification.prepare_data(task, options, tokenizer, max_seq)
    else:
        max_seq = options.max_seq_length or 128
        hyper["max_seq_length"] = max_seq
        hyper["swap_sentence_order"] = swap_sentence_order(task, options)
        data = prepare_glue(task, options, tokenizer, max_seq)
    if max_seq > config.max_position_embeddings:
        raise UserError(
            f"--max_seq_length={max_seq} exceeds the model's max_position_embeddings {config.max_position_embeddings}"
        )
    num_train = len(data.train_features["input_ids"])
    log(
        f"[{task.name}] {num_train} training {'windows' if task.is_squad else 'examples'}; "
        f"lr {hyper['learning_rate']}, layer-wise decay {hyper['layerwise_decay']}, "
        f"{hyper['num_train_epochs']} epochs, batch {options.train_batch_size}, "
        f"{options.num_trials} trial(s)"
    )
    trials = []
    for trial in range(options.num_trials):
        trial_dir = artifacts.trial_dir(task_dir, trial + 1)
        finished = os.path.join(trial_dir, TRIAL_RESULT_FILE)
        if options.overwrite and fileio.isdir(trial_dir):
            fileio.rmtree(trial_dir)
        if fileio.isfile(finished):
            # A rerun after a kill: this trial completed (its files are in place).
            _check_trial_record(
                trial_dir,
                _trial_record(
                    task, data, options, hyper, options.seed + trial, fileio.read_json(finished)["train_steps"]
                ),
            )
            result = fileio.read_json(finished)
            log(f"[{task.name}] trial {trial + 1} finished before; reusing {finished}")
        else:
            result = run_trial(
                task,
                data,
                options,
                config,
                weights_path,
                strategy,
                trial=trial,
                hyper=hyper,
                trial_dir=trial_dir,
                tokenizer_max_seq=max_seq,
                vocab_file=vocab_file,
            )
        metric_text = ", ".join(
            f"{k} {v:.2f}" for k, v in result["metrics"].items() if isinstance(v, float) and "threshold" not in k
        )
        log(f"[{task.name}] trial {trial + 1}/{options.num_trials} (seed {result['seed']}): {metric_text}")
        trials.append(result)
    metric_names = [k for k, v in trials[0]["metrics"].items() if isinstance(v, (int, float))]
    medians = {name: finetuning_metrics.median(t["metrics"][name] for t in trials) for name in metric_names}
    middle = median_trial(trials, "score")
    results = {
        "task": task.name,
        "headline_metric": task.headline_metric,
        "median": medians,
        "median_score": medians["score"],
        "median_trial": middle["trial"] + 1,
        "trials": trials,
        "hyperparameters": hyper,
        "data": data.info,
        "model": {
            "init_checkpoint": weights_path,
            "pretrained": weights_path is not None,
            "config": config.to_dict(),
            "vocab_file": vocab_file,
        },
        "strategy": options.strategy,
        "mixed_precision": options.mixed_precision,
    }
    fileio.makedirs(task_dir)
    with fileio.open(os.path.join(task_dir, RESULTS_FILENAME), "w") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
    if token_classification.is_tagging(task):
        token_classification.copy_median_outputs(task_dir, artifacts.trial_dir(task_dir, middle["trial"] + 1))
    elif isinstance(task, finetuning_tasks.CustomTask):
        for name in task.submission_files:
            source = os.path.join(artifacts.trial_dir(task_dir, middle["trial"] + 1), name)
            if fileio.isfile(source):
                fileio.copy(source, os.path.join(task_dir, name), overwrite=True)
    elif not task.is_squad:
        submission_dir = os.path.join(options.output_dir, SUBMISSION_DIR)
        for name in task.submission_files:
            source = os.path.join(artifacts.trial_dir(task_dir, middle["trial"] + 1), name)
            if fileio.isfile(source):
                fileio.makedirs(submission_dir)
                fileio.copy(source, os.path.join(submission_dir, name), overwrite=True)
    else:
        fileio.copy(
            os.path.join(artifacts.trial_dir(task_dir, middle["trial"] + 1), "dev_predictions.json"),
            os.path.join(task_dir, "predictions.json"),
            overwrite=True,
        )
    log(
        f"[{task.name}] median over {len(trials)} trial(s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in medians.items() if "threshold" not in k)
        + f"; results in {os.path.join(task_dir, RESULTS_FILENAME)}"
    )
    return {
        "median_score": medians["score"],
        "median": medians,
        "headline_metric": task.headline_metric,
        "num_trials": len(trials),
        "pretrained": weights_path is not None,
    }


# ---------------------------------------------------------------------------------------------
# --do_train=false

SCORED_DIR = "scored"  # <output_dir>/<task>/scored: a fine-tuned model's dev and test outputs


def _find_finetuned(options, task_name: str) -> str:
    """--finetuned_dir (a finetuned/ folder, a trial or a task folder), else the median trial's
    finetuned/ of <output_dir>/<task_name>."""
    directory = options.finetuned_dir or os.path.join(options.output_dir, task_name)
    flag = f"--finetuned_dir={options.finetuned_dir}" if options.finetuned_dir else f"--output_dir={options.output_dir}"
    found = artifacts.find_finetuned(directory, flag=flag, first_trial_if_unfinished=True)
    if found is None:
        raise UserError(
            f"{flag}: no fine-tuned model ({HEAD_FILE}) in {directory}; point "
            "--finetuned_dir at a trial's finetuned/ folder"
        )
    return found


def score_finetuned(options: FinetuningOptions, strategy=None) -> dict:
    """--do_train=false: scores a fine-tuned model on dev and writes test predictions.

    For each task, writes <output_dir>/<task>/scored/: results.json (the metrics, the model
    folder, the data), <split>_predictions.tsv and the test predictions file, as a trial does.
    Returns {"tasks": {name: metrics}}.
    """
    names = [part.strip() for part in (options.tasks or "").split(",") if part.strip()]
    if len(names) != 1:
        raise UserError("--do_train=false scores one --task at a time (the one --finetuned_dir was fine-tuned on)")
    task_name = options.task_name if names[0].lower() == "custom" else finetuning_tasks.get_task(names[0]).name
    directory = _find_finetuned(options, task_name)
    head = artifacts.read_head(directory)
    task = resolve_tasks(options, labels=head.get("label_names"))[0]
    tagging = token_classification.is_tagging(task)
    if head["task"] != task.name:
        raise UserError(
            f"{directory}/{HEAD_FILE}: this model was fine-tuned on {head['task']}, "
            f"not {task.name}; pass --task={head['task']} (with --task_name for "
            "custom tasks)"
        )
    out_dir = os.path.join(options.output_dir, task.name, SCORED_DIR)
    if fileio.exists(out_dir) and not options.overwrite:
        raise UserError(f"{out_dir} already exists; pass --overwrite to replace it")
    if not head.get("vocab_file"):
        raise UserError(f"{directory}/{HEAD_FILE}: no vocab_file recorded; re-run fine-tuning")
    if not (isinstance(task, finetuning_tasks.CustomTask) or task.is_squad or tagging or options.use_tfds):
        _check_dev_files(task, options)
    distribution.set_mixed_precision(options.mixed_precision)
    tokenizer = tokenization.Tokenizer(artifacts.finetuned_vocab(directory, head), do_lower_case=head["do_lower_case"])
    if tagging:
        # The tag set and its encoding are the model's, not the flags'.
        settings = head.get("tagging", {})
        options = dataclasses.replace(
            options,
            tag_column=settings.get("tag_column", options.tag_column),
            tagging_scheme=settings.get("scheme", options.tagging_scheme),
            tagging_segment_id=settings.get("segment_id", options.tagging_segment_id),
            tagging_span_rule=settings.get("span_rule", options.tagging_span_rule),
            tagging_truncation=settings.get("truncation", options.tagging_truncation),
        )
        task, data = token_classification.prepare_data(
            task, options, tokenizer, head["max_seq_length"], tag_names=tuple(head["label_names"])
        )
    elif task.is_squad:
        # Windows and decoding as the model was fine-tuned with (head.json's "squad").
        recorded = head.get("squad") or {}
        fields = {field.name for field in dataclasses.fields(squad.SquadSettings)}
        settings = squad.SquadSettings(**{k: v for k, v in recorded.items() if k in fields})
        options = dataclasses.replace(options, **dataclasses.asdict(settings))
        data = prepare_squad(task, options, tokenizer, settings, with_train=False)
    else:
        data = prepare_glue(task, options, tokenizer, head["max_seq_length"], with_train=False)
    if strategy is None:
        strategy = distribution.create_strategy(options.strategy, tpu=options.tpu)
    with strategy.scope():
        _, model = load_finetuned(directory)
    log(f"[{task.name}] scoring {directory} (no training)")
    writing = fileio.temporary_name(out_dir)
    try:
        fileio.makedirs(writing)
        if tagging:
            metrics = token_classification.evaluate(task, model, data, options, writing)
        elif task.is_squad:
            metrics = _evaluate_squad(task, model, data, options, writing)
        else:
            metrics = _evaluate_sentence_task(task, model, data, options, writing)
        fileio.write_json_atomic(
            os.path.join(writing, RESULTS_FILENAME),
            {
                "task": task.name,
                "finetuned_dir": fileio.abspath(directory),
                "metrics": metrics,
                "headline_metric": task.headline_metric,
                "data": data.info,
            },
            sort_keys=True,
        )
        if fileio.exists(out_dir):
            fileio.rmtree(out_dir)  # --overwrite
        fileio.move_tree(writing, out_dir, commit_files=[RESULTS_FILENAME])
    finally:
        if fileio.exists(writing):
            fileio.rmtree(writing)
    log(f"[{task.name}] " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()) + f"; written to {out_dir}")
    return {"tasks": {task.name: metrics}}


def _check_dev_files(task, options) -> None:
    if not options.data_dir:
        raise UserError("--data_dir is required (the GLUE folders), or pass --use_tfds")
    for split in task.dev_splits:
        path = finetuning_tasks.task_file(options.data_dir, task, split)
        if not fileio.isfile(path):
            raise UserError(
                f"{path}: file not found; --data_dir must hold the GLUE folders "
                f"({task.directory}/{split}.tsv for --task={task.name})"
            )
