"""Keras callbacks of a pretraining run: progress lines, TensorBoard scalars, checkpoints, stop."""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Optional, TextIO

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from electra_tf.progress import ProgressReporter

# TensorBoard-only scalars of the train writer: not metrics, so not in last_train_logs.
THROUGHPUT_SCALARS = ("sequences_per_second", "tokens_per_second", "step_time_seconds")

# Shown first on each progress line, in this order, when the model reports them.
HEADLINE_METRICS = (
    "loss",
    "disc_auc",
    "masked_lm_accuracy",
    "disc_loss",
    "masked_lm_loss",
    "main_mlm_accuracy",
    "main_mlm_loss",
)


def _scalar_metadata() -> bytes:
    # What tensorboard's tf.summary.scalar writes; TensorFlow alone lacks that op when the
    # tensorboard package is absent, and the raw write keeps it optional (needed only to view).
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    ).SerializeToString()


def write_scalars(writer: tf.summary.SummaryWriter, step: int, values: dict) -> None:
    """One TensorBoard scalar per entry of `values` at `step`."""
    metadata = _scalar_metadata()
    with writer.as_default():
        for name, value in values.items():
            tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=metadata)
    writer.flush()


def _as_float(value) -> float:
    return float(np.asarray(value))


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the next update uses (the schedule evaluated at optimizer.iterations)."""
    return _as_float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class StepCounter(keras.callbacks.Callback):
    """Tracks the global optimizer step and stops fit exactly at `final_step`.

    Reads optimizer.iterations after every batch rather than counting batches: with fp16 loss
    scaling a batch whose gradients overflow is skipped and does not count as a step.
    `start_step` is the restored value of optimizer.iterations.
    """

    def __init__(self, final_step: int):
        super().__init__()
        self.final_step = final_step
        self.start_step = 0
        self.step = 0

    def reset(self, start_step: int) -> None:
        """Sets the counter to ``start_step`` (the restored optimizer.iterations) before training starts."""
        self.start_step = self.step = start_step

    def on_train_batch_end(self, batch, logs=None):
        """Reads the global step from optimizer.iterations and stops fit once it reaches ``final_step``."""
        self.step = int(self.model.optimizer.iterations.numpy())
        if self.step >= self.final_step:
            self.model.stop_training = True


class RestoreAndCheckpoint(keras.callbacks.Callback):
    """Restores the newest checkpoint once Keras has built the model and optimizer, and saves
    one at the end of every epoch (an epoch is `save_checkpoints_steps` steps).

    `make_checkpoint(model)` returns a checkpointing.TrainingCheckpoint; it is called in
    on_train_begin because only then do the optimizer's slot variables exist.
    """

    def __init__(
        self,
        make_checkpoint: Callable,
        counter: StepCounter,
        expected_start_step: int,
        log: Callable[[str], None],
    ):
        super().__init__()
        self.make_checkpoint = make_checkpoint
        self.counter = counter
        self.expected_start_step = expected_start_step
        self.log = log
        self.checkpoint = None
        self.last_saved_step: Optional[int] = None

    def on_train_begin(self, logs=None):
        """Restores the latest checkpoint (model, optimizer, random states) and starts the step
        counter from its step."""
        self.checkpoint = self.make_checkpoint(self.model)
        step = self.checkpoint.restore_latest()
        if step != self.expected_start_step:
            raise RuntimeError(
                f"restored step {step}, expected {self.expected_start_step}: checkpoints changed "
                "while the run was starting"
            )
        if step:
            self.log(
                f"Resumed from checkpoint at step {step} "
                f"(optimizer.iterations={int(self.model.optimizer.iterations.numpy())})"
            )
            self.last_saved_step = step
        self.counter.reset(step)

    def save_now(self) -> None:
        """Saves a checkpoint at the current global step, unless that step is 0 or already saved."""
        step = self.counter.step
        # Step 0 happens when fp16 loss scaling skipped every batch of the first epoch.
        if step and step != self.last_saved_step:
            path = self.checkpoint.save(step)
            self.last_saved_step = step
            if path:
                self.log(f"Saved checkpoint {path}")

    def on_epoch_end(self, epoch, logs=None):
        """Saves a checkpoint at the end of each fit epoch (one epoch spans save_checkpoints_steps steps)."""
        self.save_now()


class ProgressAndSummaries(keras.callbacks.Callback):
    """Every `log_every_steps` steps: one progress line (step, loss, disc AUC, seq/s, ETA) and
    TensorBoard scalars for every training metric and the learning rate. Validation metrics
    (the `val_` logs Keras adds at epoch end) go to the eval writer.

    Training metrics are Keras's running means since the last checkpoint (fit resets them every
    epoch). Throughput scalars (THROUGHPUT_SCALARS) are measured over the steps since the
    previous report; the first report's interval includes tracing and compiling. Writers are
    None on non-chief workers, which then only print.

    With steps_per_execution > 1 Keras calls the batch hooks once per call, after its last
    step; every call consumed that many batches.
    """

    def __init__(
        self,
        counter: StepCounter,
        *,
        final_step: int,
        global_batch_size: int,
        log_every_steps: int,
        tokens_per_sequence: int = 0,
        steps_per_execution: int = 1,
        train_writer: Optional[tf.summary.SummaryWriter],
        eval_writer: Optional[tf.summary.SummaryWriter],
        stream: Optional[TextIO] = None,
    ):
        super().__init__()
        self.counter = counter
        self.final_step = final_step
        self.global_batch_size = global_batch_size
        self.tokens_per_sequence = tokens_per_sequence
        self.steps_per_execution = max(1, steps_per_execution)
        self.clock = time.monotonic
        self.log_every_steps = max(1, log_every_steps)
        self.train_writer = train_writer
        self.eval_writer = eval_writer
        self.stream = stream if stream is not None else sys.stdout
        self.reporter: Optional[ProgressReporter] = None
        self.last_train_logs: dict[str, float] = {}
        self.last_eval_logs: dict[str, float] = {}
        self.last_eval_step: Optional[int] = None

    def on_train_begin(self, logs=None):
        """Starts the step/sequence counting (which never prints by itself) from the restored step."""
        # The reporter only counts; it never prints by itself (interval = inf).
        self.reporter = ProgressReporter(
            name="pretrain",
            total=max(self.final_step - self.counter.start_step, 1),
            total_key="steps",
            interval_seconds=math.inf,
            stream=self.stream,
        )
        self.last_seen_step = self.counter.start_step
        self.interval_start = (self.clock(), self.counter.start_step, 0)
        self.sequences_seen = 0

    def on_train_batch_end(self, batch, logs=None):
        """Counts the batch's sequences and, every ``log_every_steps`` global steps and at the last, reports."""
        step = self.counter.step
        # A batch skipped by fp16 loss scaling consumed sequences but made no step.
        sequences = self.global_batch_size * self.steps_per_execution
        self.reporter.update(steps=step - self.last_seen_step, sequences=sequences)
        self.sequences_seen += sequences
        advanced = step != self.last_seen_step
        self.last_seen_step = step
        if advanced and (step % self.log_every_steps == 0 or step >= self.final_step):
            self.report(step, logs or {})

    def report(self, step: int, logs: dict) -> None:
        """Writes one progress line (step, headline metrics, learning rate, rates, ETA) and the train/ scalars.

        Args:
          step: the global step reported.
          logs: fit's running metrics (name -> tensor or float); written with learning_rate and the
            throughput scalars (sequences_per_second, step_time_seconds, tokens_per_second).
        """
        values = {name: _as_float(value) for name, value in logs.items()}
        learning_rate = current_learning_rate(self.model.optimizer)
        self.last_train_logs = dict(values, learning_rate=learning_rate)
        ordered = [name for name in HEADLINE_METRICS if name in values]
        metrics = " | ".join(f"{name} {values[name]:.4f}" for name in ordered)
        self.stream.write(
            f"step {step}/{self.final_step} | {metrics} | lr {learning_rate:.3g} | {self.reporter.line()}\n"
        )
        self.stream.flush()
        throughput = self._throughput(step)
        if self.train_writer is not None:
            write_scalars(self.train_writer, step, dict(self.last_train_logs, **throughput))

    def _throughput(self, step: int) -> dict:
        now = self.clock()
        start_time, start_step, start_sequences = self.interval_start
        self.interval_start = (now, step, self.sequences_seen)
        seconds = max(now - start_time, 1e-9)
        sequences = self.sequences_seen - start_sequences
        values = {"sequences_per_second": sequences / seconds, "step_time_seconds": seconds / max(step - start_step, 1)}
        if self.tokens_per_sequence:
            values["tokens_per_second"] = sequences * self.tokens_per_sequence / seconds
        return values

    def on_epoch_end(self, epoch, logs=None):
        """Writes the epoch's validation metrics (fit's val_* logs) as eval/ scalars at the current step."""
        eval_logs = {
            name[len("val_") :]: _as_float(value) for name, value in (logs or {}).items() if name.startswith("val_")
        }
        if eval_logs:
            self.last_eval_logs, self.last_eval_step = eval_logs, self.counter.step
            write_eval_summaries(self.eval_writer, self.counter.step, eval_logs, self.stream)


def write_eval_summaries(writer: Optional[tf.summary.SummaryWriter], step: int, results: dict, stream: TextIO) -> None:
    """Prints eval metrics in one line and writes them as TensorBoard scalars at `step`."""
    line = " | ".join(f"{name} {value:.4f}" for name, value in sorted(results.items()))
    stream.write(f"eval at step {step} | {line}\n")
    stream.flush()
    if writer is not None:
        write_scalars(writer, step, results)
