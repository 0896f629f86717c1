"""A pretraining job: data, strategy, model and optimizer in, checkpoints and a pretrained model out.

`run_pretraining(options)` is what `python -m electra_tf.run_pretraining` calls. `train(...)` is
the strategy-agnostic core (model.fit inside strategy.scope()) that it builds on; tests call it
with their own input functions.

Outputs in model_dir (only the chief writes under multi-worker):
  config.json          the resolved config (a restart must match it; --continue_training may
                       raise num_train_steps, recorded in its "history" list)
  checkpoints/         ckpt-<step>: model, optimizer (slots + iterations), RNG states
  train/, eval/        TensorBoard scalars: every metric and the learning rate; eval metrics
  eval_results.json    metrics of the final evaluation (with --eval_data), or of the newest
                       checkpoint scored by --mode=eval / continuous_eval
  pretrained/          the final model, written by save_pretrained, and the data's vocab.txt
                       (the folder's format: electra_tf/artifacts.py)
  pretrained.step_<N>/ an earlier final model, moved aside when --continue_training went on
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from electra_tf import (
    artifacts,
    checkpoint_conversion,
    checkpointing,
    distribution,
    fileio,
    optimization,
    pretraining_dataset,
    pretraining_manifest,
    pretraining_objective,
    run_lock,
    tokenization,
    training_callbacks,
)
from electra_tf import config as config_lib
from electra_tf.errors import UserError, WorkerLostError
from electra_tf.progress import log

PRETRAINED_SUBDIR = artifacts.PRETRAINED_DIR
EVAL_RESULTS_FILENAME = "eval_results.json"
MODES = ("train", "eval", "continuous_eval")
# --worker_timeout_seconds: a false alarm restarts every worker and loses the steps since the
# last checkpoint, while a late one only idles the survivors, so this is well above TF's own
# 10 s and above a network hiccup between machines.
DEFAULT_WORKER_TIMEOUT_SECONDS = 60.0
# Under TPUStrategy a host round trip per step costs more than a small model's step, so several
# steps run per call; Model Garden's steps_per_loop default is of this order.
TPU_STEPS_PER_EXECUTION = 100

# A per-replica input function: tf.distribute.InputContext -> tf.data.Dataset of feature dicts.
InputFunction = Callable[[tf.distribute.InputContext], tf.data.Dataset]


@dataclasses.dataclass
class PretrainingOptions:
    """Everything about a run that is not the model config."""

    model_dir: str
    pretrain_data: str
    strategy: str = "one_device"
    tpu: Optional[str] = None
    mixed_precision: str = "none"
    jit_compile: bool = False
    eval_data: Optional[str] = None
    eval_steps: Optional[int] = None  # None: the config's num_eval_steps
    eval_at_checkpoints: bool = True
    seed: Optional[int] = None  # None: the config's seed
    log_every_steps: int = 100
    # A save_pretrained directory (ours, or converted from a released checkpoint) to start from;
    # ignored when model_dir already holds a checkpoint to resume.
    init_checkpoint: Optional[str] = None
    # Pause at this step (a checkpoint is written there) while the learning-rate schedule stays
    # that of num_train_steps; a later run with the same model_dir continues from it. None: train
    # to num_train_steps. pretrained/ is written only once num_train_steps is reached.
    stop_at_step: Optional[int] = None
    # Accept a raised --num_train_steps on a model_dir trained with a smaller one: resume from
    # its newest checkpoint with the schedule of the new total.
    continue_training: bool = False
    # Steps per tf.function call (model.compile's steps_per_execution). None: a multiple-friendly
    # value up to TPU_STEPS_PER_EXECUTION under TPUStrategy, 1 elsewhere.
    steps_per_execution: Optional[int] = None
    # "train", or "eval" (score one checkpoint) / "continuous_eval" (score each new one).
    mode: str = "train"
    checkpoint_step: Optional[int] = None  # --mode=eval: this checkpoint instead of the newest
    eval_poll_seconds: float = 30.0
    eval_timeout_seconds: float = 3600.0
    # --strategy=multi_worker: the other workers stop, naming the lost task, once a worker has
    # sent no heartbeat for this long; rerunning every worker resumes from the last checkpoint.
    worker_timeout_seconds: float = DEFAULT_WORKER_TIMEOUT_SECONDS


@dataclasses.dataclass
class PretrainingResult:
    """What a pretraining call returns: the step it started from and reached, the last train and
    eval metrics, the pretrained/ folder it wrote (None before the final step) and the model."""

    final_step: int
    start_step: int
    train_metrics: dict
    eval_metrics: Optional[dict]
    pretrained_dir: Optional[str]
    model: Optional[keras.Model] = None  # the trained ElectraPretrainer (None if nothing ran)


def resolve_config(config: str, hparams, overrides: dict, manifest: Optional[dict]):
    """The run's ElectraConfig: preset/JSON, then --hparams, then explicit flags.

    vocab_size and the special token ids follow the data's manifest unless --hparams sets them:
    the presets carry BERT's 30,522 tokens and ids, and data built with another vocabulary should
    not need matching hparams.
    """
    hparams_dict, _ = config_lib.parse_hparams(hparams)
    resolved = config_lib.load_config(config, hparams_dict)
    changes = {key: value for key, value in overrides.items() if value is not None}
    if manifest is not None and "vocab_size" not in hparams_dict:
        manifest_vocab = manifest.get("vocab_size")
        if manifest_vocab and manifest_vocab != resolved.vocab_size:
            log(f"Using vocab_size={manifest_vocab} from the data manifest (config had {resolved.vocab_size})")
            changes["vocab_size"] = int(manifest_vocab)
        for name, token_id in (manifest.get("special_token_ids") or {}).items():
            if hasattr(resolved, name) and name not in hparams_dict and getattr(resolved, name) != token_id:
                log(f"Using {name}={token_id} from the data manifest (config had {getattr(resolved, name)})")
                changes[name] = int(token_id)
    return dataclasses.replace(resolved, **changes) if changes else resolved


def _check_positive(name: str, value: int) -> None:
    if value is None or value <= 0:
        raise UserError(f"--{name} must be a positive integer, got {value}")


def train(
    config,
    strategy: tf.distribute.Strategy,
    *,
    model_dir: str,
    train_input_fn: InputFunction,
    eval_input_fn: Optional[InputFunction] = None,
    eval_steps: int = 0,
    eval_at_checkpoints: bool = True,
    seed: int = 0,
    mixed_precision: str = "none",
    jit_compile: bool = False,
    log_every_steps: int = 100,
    save_pretrained_model: bool = True,
    init_checkpoint: Optional[str] = None,
    stop_at_step: Optional[int] = None,
    pretrained_extra_files: Optional[dict] = None,
    continue_training: bool = False,
    steps_per_execution: Optional[int] = None,
    worker_timeout_seconds: Optional[float] = None,
) -> PretrainingResult:
    """Trains `config`'s ElectraPretrainer under `strategy` up to config.num_train_steps.

    With `stop_at_step` it stops (and checkpoints) there instead, the optimizer and its
    learning-rate schedule still being those of the full num_train_steps run; the final model
    is saved only when num_train_steps is reached.

    Resumes from the newest checkpoint in model_dir. Input functions return per-replica batches
    ({"input_ids", "input_mask", "segment_ids"}: int32 [per_replica_batch, max_seq_length]) and
    are called through strategy.distribute_datasets_from_function. The input pipeline starts
    afresh on a resume; see `resumed_data_seed`.

    `pretrained_extra_files` ({name: source path}) are copied into the final model's folder.
    That folder is written under a temporary name and moved into place when complete; a run at
    the final step whose pretrained/ is missing or incomplete (killed during that save) writes
    it from the final checkpoint. The chief holds model_dir's run lock (run_lock) throughout.

    With `continue_training`, a model_dir recorded with a smaller (or larger) num_train_steps
    resumes with the schedule of config.num_train_steps; a finished run's pretrained/ is moved
    aside to pretrained.step_<N>/ first, so the new final model can take its place.

    Under multi-worker, a collective aborted because a peer died or froze (TF's heartbeat
    check, or the broken connection) becomes a WorkerLostError naming the lost task and the
    checkpoint step every worker resumes from when rerun; `worker_timeout_seconds` (what the
    strategy was configured with, see distribution.configure_worker_heartbeat) is only quoted.
    """
    chief = distribution.is_chief(strategy)
    lock = run_lock.RunLock(model_dir) if chief else None
    if lock is not None:
        lock.acquire()
    try:
        return _train(
            config,
            strategy,
            model_dir,
            train_input_fn,
            eval_input_fn,
            eval_steps,
            eval_at_checkpoints,
            seed,
            mixed_precision,
            jit_compile,
            log_every_steps,
            save_pretrained_model,
            init_checkpoint,
            stop_at_step,
            dict(pretrained_extra_files or {}),
            continue_training,
            steps_per_execution,
        )
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        if not distribution.is_multi_worker(strategy):
            raise
        raise lost_worker_error(error, strategy, model_dir, worker_timeout_seconds) from None
    finally:
        if lock is not None:
            lock.release()


def lost_worker_error(
    error: Exception, strategy: tf.distribute.Strategy, model_dir: str, worker_timeout_seconds: Optional[float]
) -> WorkerLostError:
    """The one-line error of a worker whose collective failed because a peer was lost.

    Args:
      error: the UnavailableError / DeadlineExceededError the collective raised.
      strategy: the multi-worker strategy.
      model_dir: where the checkpoint a rerun resumes from is.
      worker_timeout_seconds: the heartbeat timeout in force (None: TF's default).

    Returns:
      A WorkerLostError such as "worker 0: lost contact with /job:worker/task:1 (no heartbeat
      for 60 s, --worker_timeout_seconds); rerun every worker to resume from the last
      checkpoint (step 3)".
    """
    task_type, task_id = distribution.task_identity(strategy)
    lost = ", ".join(distribution.lost_tasks(error, strategy))
    text = " ".join(str(getattr(error, "message", None) or error).split())
    if "heartbeat" in text:
        timeout = f"{worker_timeout_seconds:g} s" if worker_timeout_seconds else "TF's default time"
        reason = f"no heartbeat for {timeout}, --worker_timeout_seconds"
    else:
        detail = text.rsplit("aborted by:", 1)[-1]
        for tail in ("[Op:", "Additional GRPC error information"):  # TF's context, not the cause
            detail = detail.split(tail, 1)[0]
        detail = detail.strip()
        reason = f"{type(error).__name__}: {detail[:120]}"
    step = checkpointing.latest_checkpoint_step(model_dir)
    resume = f"resume from the last checkpoint (step {step})" if step else "start again (no checkpoint was written yet)"
    return WorkerLostError(
        f"{task_type} {task_id}: lost contact with {lost} ({reason}); rerun every worker to {resume}"
    )


def _train(
    config,
    strategy,
    model_dir,
    train_input_fn,
    eval_input_fn,
    eval_steps,
    eval_at_checkpoints,
    seed,
    mixed_precision,
    jit_compile,
    log_every_steps,
    save_pretrained_model,
    init_checkpoint,
    stop_at_step,
    extra_files,
    continue_training=False,
    steps_per_execution=None,
):
    final_step = config.num_train_steps
    _check_positive("num_train_steps", final_step)
    _check_positive("save_checkpoints_steps", config.save_checkpoints_steps)
    stop_step = final_step if stop_at_step is None else stop_at_step
    if not 1 <= stop_step <= final_step:
        raise UserError(f"--stop_at_step={stop_at_step} must be between 1 and --num_train_steps={final_step}")
    chief = distribution.is_chief(strategy)
    task_type, task_id = distribution.task_identity(strategy)
    start_step = checkpointing.latest_checkpoint_step(model_dir)
    pretrained_dir = os.path.join(model_dir, PRETRAINED_SUBDIR)

    # Checked before config.json is written: a refused run leaves model_dir as it was.
    per_call = resolve_steps_per_execution(
        steps_per_execution,
        strategy,
        save_checkpoints_steps=config.save_checkpoints_steps,
        log_every_steps=log_every_steps,
        final_step=final_step,
        stop_step=stop_step,
        start_step=start_step,
        mixed_precision=mixed_precision,
    )
    if chief:

        def set_aside_pretrained(old_total: int, new_total: int) -> None:
            if not fileio.exists(pretrained_dir):
                return
            aside = f"{pretrained_dir.rstrip('/')}.step_{start_step}"
            if fileio.exists(aside):
                raise UserError(
                    f"--continue_training would move {pretrained_dir} to {aside}, "
                    "which exists; move one of them away first"
                )
            fileio.move_tree(pretrained_dir, aside, commit_files=[artifacts.CONFIG_FILE])
            log(f"Moved the step-{start_step} model {pretrained_dir} to {aside}")

        if checkpointing.write_or_check_config(
            model_dir,
            config.to_dict(),
            resuming=start_step > 0,
            continue_training=continue_training,
            trained_step=start_step,
            before_rewrite=set_aside_pretrained,
        ):
            log(
                f"Continuing {model_dir} from step {start_step} to --num_train_steps="
                f"{final_step}: the learning rate jumps to the {final_step}-step schedule's "
                f"value at step {start_step} (recorded in config.json's history)"
            )
    if (
        chief
        and save_pretrained_model
        and start_step >= final_step
        and not artifacts.pretrained_is_complete(pretrained_dir, config)
    ):
        log(
            f"{model_dir} is trained to step {start_step} but {pretrained_dir} is "
            f"{'incomplete' if fileio.exists(pretrained_dir) else 'missing'}; writing it from "
            "the final checkpoint"
        )
        model = _model_from_checkpoint(config, model_dir, start_step)
        artifacts.write_pretrained(model, pretrained_dir, extra_files)
        log(f"Saved the pretrained model in {pretrained_dir}")
        return PretrainingResult(start_step, start_step, {}, None, pretrained_dir, model)
    if start_step >= stop_step:
        log(
            f"{model_dir} is already trained to step {start_step} (stopping at {stop_step} of "
            f"--num_train_steps={final_step}); nothing to do"
        )
        return PretrainingResult(start_step, start_step, {}, None, pretrained_dir if start_step >= final_step else None)
    if chief and tf.io.gfile.exists(pretrained_dir):
        raise UserError(
            f"{pretrained_dir} already exists but training is at step {start_step} of {final_step}; "
            "move it away (it would be overwritten) or use a new --model_dir"
        )

    distribution.set_mixed_precision(mixed_precision)
    keras.utils.set_random_seed(seed)
    use_xla = distribution.resolve_jit_compile(strategy, jit_compile)
    with strategy.scope():
        model = pretraining_objective.ElectraPretrainer(config, seed=seed)
        optimizer = optimization.create_optimizer(config, final_step)
        if mixed_precision == "fp16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, jit_compile=use_xla, steps_per_execution=per_call)
        if init_checkpoint and start_step == 0:
            checkpoint_conversion.load_pretrained_into(model, init_checkpoint)
            log(f"Initialised every network from {init_checkpoint} (the optimizer starts fresh)")
        elif init_checkpoint:
            log(f"Resuming from step {start_step}; --init_checkpoint={init_checkpoint} is not used again")

    train_dataset = strategy.distribute_datasets_from_function(train_input_fn)
    validation = {}
    eval_dataset = None
    if eval_input_fn is not None and eval_steps > 0:
        eval_dataset = strategy.distribute_datasets_from_function(eval_input_fn)
        if eval_at_checkpoints:
            validation = dict(validation_data=eval_dataset, validation_freq=1)

    worker_tag = f"{task_type}{task_id}" if task_type else "worker"
    counter = training_callbacks.StepCounter(stop_step)
    checkpointer = training_callbacks.RestoreAndCheckpoint(
        lambda built_model: checkpointing.TrainingCheckpoint(
            model_dir,
            built_model,
            built_model.optimizer,
            max_to_keep=config.keep_checkpoint_max,
            is_chief=chief,
            worker_tag=worker_tag,
        ),
        counter,
        expected_start_step=start_step,
        log=log,
    )
    train_writer = eval_writer = None
    if chief:
        train_writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
        if eval_dataset is not None:
            eval_writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
    progress = training_callbacks.ProgressAndSummaries(
        counter,
        final_step=stop_step,
        global_batch_size=config.train_batch_size,
        tokens_per_sequence=config.max_seq_length,
        steps_per_execution=per_call,
        log_every_steps=log_every_steps,
        train_writer=train_writer,
        eval_writer=eval_writer,
    )

    steps_per_epoch = config.save_checkpoints_steps
    initial_epoch = start_step // steps_per_epoch
    # StepCounter stops fit at exactly stop_step; fp16 loss scaling may skip a few batches, so
    # allow more epochs than the step count needs.
    needed_epochs = math.ceil((stop_step - start_step) / steps_per_epoch)
    epochs = initial_epoch + (2 * needed_epochs + 1 if mixed_precision == "fp16" else needed_epochs)
    log(
        f"Training steps {start_step}..{stop_step} of {final_step} on "
        f"{strategy.num_replicas_in_sync} replica(s) "
        f"({type(strategy).__name__}, jit_compile={use_xla}, mixed_precision={mixed_precision}, "
        f"steps_per_execution={per_call}); "
        f"checkpoints every {steps_per_epoch} steps in {model_dir}"
    )
    model.fit(
        train_dataset,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=[counter, checkpointer, progress],
        verbose=0,
        shuffle=False,  # the input function shuffles
        **validation,
    )
    checkpointer.save_now()
    reached = int(model.optimizer.iterations.numpy())
    if reached != counter.step:
        raise RuntimeError(f"optimizer.iterations={reached} but {counter.step} steps were counted")

    eval_metrics = None
    if eval_dataset is not None:
        if progress.last_eval_step == reached:  # fit already evaluated at the final checkpoint
            eval_metrics = dict(progress.last_eval_logs)
        else:
            eval_metrics = {
                name: float(value) for name, value in model.evaluate(eval_dataset, verbose=0, return_dict=True).items()
            }
            training_callbacks.write_eval_summaries(eval_writer, reached, eval_metrics, sys.stdout)
        if chief:
            with tf.io.gfile.GFile(os.path.join(model_dir, EVAL_RESULTS_FILENAME), "w") as handle:
                handle.write(json.dumps(dict(eval_metrics, step=reached), indent=2, sort_keys=True) + "\n")
    for writer in (train_writer, eval_writer):
        if writer is not None:
            writer.close()
    finished = reached >= final_step
    if chief and save_pretrained_model and finished:
        artifacts.write_pretrained(model, pretrained_dir, extra_files)
        log(f"Saved the pretrained model in {pretrained_dir}")
    return PretrainingResult(
        final_step=reached,
        start_step=start_step,
        train_metrics=dict(progress.last_train_logs),
        eval_metrics=eval_metrics,
        pretrained_dir=pretrained_dir if chief and save_pretrained_model and finished else None,
        model=model,
    )


def default_tpu_steps_per_execution(*steps: int) -> int:
    """The largest count up to TPU_STEPS_PER_EXECUTION that divides every step in `steps`."""
    common = math.gcd(*steps)
    return max(k for k in range(1, TPU_STEPS_PER_EXECUTION + 1) if common % k == 0)


def resolve_steps_per_execution(
    requested: Optional[int],
    strategy,
    *,
    save_checkpoints_steps: int,
    log_every_steps: int,
    final_step: int,
    stop_step: int,
    start_step: int,
    mixed_precision: str,
) -> int:
    """Steps per compiled call. Keras runs the callbacks once per call, after its last step, so
    every step that must checkpoint, log or stop has to end a call: they must be multiples."""
    if requested is None:
        if not isinstance(strategy, tf.distribute.TPUStrategy) or mixed_precision == "fp16":
            return 1
        return default_tpu_steps_per_execution(
            save_checkpoints_steps, log_every_steps, final_step, stop_step, start_step
        )
    _check_positive("steps_per_execution", requested)
    if requested == 1:
        return 1
    if mixed_precision == "fp16":
        raise UserError(
            f"--steps_per_execution={requested} cannot be used with "
            "--mixed_precision=fp16 (skipped overflow batches shift the step count "
            "within a call); use --steps_per_execution=1"
        )
    for flag, value in (
        ("save_checkpoints_steps", save_checkpoints_steps),
        ("log_every_steps", log_every_steps),
        ("num_train_steps", final_step),
        ("stop_at_step", stop_step),
    ):
        if value % requested:
            raise UserError(
                f"--{flag}={value} is not a multiple of --steps_per_execution="
                f"{requested}; make it one or lower --steps_per_execution"
            )
    if start_step % requested:
        raise UserError(
            f"the newest checkpoint is at step {start_step}, not a multiple of "
            f"--steps_per_execution={requested}; resume with a divisor of {start_step}"
        )
    return requested


def _model_from_checkpoint(config, model_dir: str, step: int):
    """The ElectraPretrainer with the weights of model_dir's checkpoint ``step``."""
    path = os.path.join(model_dir, checkpointing.CHECKPOINT_SUBDIR, f"ckpt-{step}")
    model = pretraining_objective.ElectraPretrainer(config, seed=config.seed)
    length = config.max_seq_length
    model(
        {
            "input_ids": np.full((1, length), config.cls_token_id, np.int32),
            "input_mask": np.ones((1, length), np.int32),
            "segment_ids": np.zeros((1, length), np.int32),
        }
    )
    # The optimizer's slots are not needed for the final model, only the networks' weights.
    status = tf.train.Checkpoint(model=model).read(path)
    status.expect_partial().assert_existing_objects_matched()
    return model


def pretraining_input_fn(files, config, *, global_batch_size: int, seed: int) -> InputFunction:
    """Training input: shuffled, repeated, sharded by input pipeline, per-replica batches."""

    def input_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        # Given the context, make_pretraining_dataset divides the global batch by the replicas.
        return pretraining_dataset.make_pretraining_dataset(
            files,
            global_batch_size,
            config.max_seq_length,
            is_training=True,
            input_context=context,
            seed=seed,
        )

    return input_fn


def evaluation_input_fn(files, config, *, global_batch_size: int, steps: int) -> InputFunction:
    """Evaluation input: the first `steps` global batches, in file order, the same on every worker.

    Every worker reads the same examples (no sharding) and the data repeats as needed, so each
    evaluation sees exactly `steps` full batches on every replica: a short final batch or
    workers with different batch counts would stall the cross-replica reductions.
    """

    def input_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = context.get_per_replica_batch_size(global_batch_size)
        replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
        dataset = pretraining_dataset.make_pretraining_dataset(
            files, per_replica, config.max_seq_length, is_training=False
        )
        return dataset.unbatch().repeat().batch(per_replica, drop_remainder=True).take(steps * replicas_here)

    return input_fn


def resumed_data_seed(seed: int, start_step: int) -> int:
    """Shuffle seed for a run resumed at `start_step`.

    The input pipeline cannot be checkpointed through model.fit, so a resumed run reshuffles;
    mixing in the step keeps it from replaying the batches the first run began with.
    """
    return seed if start_step == 0 else (seed * 1_000_003 + start_step) % (2**31 - 1)


def _write_eval_results(model_dir: str, step: int, metrics: dict) -> str:
    """eval_results.json holds the newest checkpoint's scores: a result for an older step than
    the one recorded goes beside it as eval_results.step_<N>.json instead of replacing it."""
    path = os.path.join(model_dir, EVAL_RESULTS_FILENAME)
    if fileio.isfile(path):
        try:
            recorded = int(fileio.read_json(path).get("step", -1))
        except (ValueError, TypeError, AttributeError):
            recorded = -1
        if recorded > step:
            path = os.path.join(model_dir, f"eval_results.step_{step}.json")
    fileio.write_json_atomic(path, dict(metrics, step=step), sort_keys=True)
    return path


def _checkpoint_steps(model_dir: str) -> list[int]:
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, checkpointing.CHECKPOINT_SUBDIR))
    if state is None:
        return []
    return sorted(int(path.rsplit("-", 1)[1]) for path in state.all_model_checkpoint_paths)


class CheckpointEvaluator:
    """Scores model_dir's checkpoints on held-out data with one model built once.

    Every evaluation starts from the same random-generator states, so each checkpoint is scored
    on the same masks and replacements and the numbers are comparable across steps.
    """

    def __init__(
        self,
        config,
        strategy,
        model_dir: str,
        eval_input_fn: InputFunction,
        *,
        seed: int,
        mixed_precision: str,
        jit_compile: bool,
    ):
        self.model_dir = model_dir
        self.strategy = strategy
        distribution.set_mixed_precision(mixed_precision)
        keras.utils.set_random_seed(seed)
        length = config.max_seq_length
        batch = {
            "input_ids": tf.fill([1, length], config.cls_token_id),
            "input_mask": tf.ones([1, length], tf.int32),
            "segment_ids": tf.zeros([1, length], tf.int32),
        }
        with strategy.scope():
            self.model = pretraining_objective.ElectraPretrainer(config, seed=seed)
            self.model(batch)
            self.model.compile(jit_compile=distribution.resolve_jit_compile(strategy, jit_compile))
            # The checkpoint's object graph is that of an uncompiled model built by a call (as
            # _model_from_checkpoint reads it); compile's trackers shift a compiled model's.
            self.reader = pretraining_objective.ElectraPretrainer(config, seed=seed)
            self.reader(batch)
        self.random_states = checkpointing.random_state_variables(self.model)
        self.initial_states = [variable.numpy() for variable in self.random_states]
        self.dataset = strategy.distribute_datasets_from_function(eval_input_fn)
        self.chief = distribution.is_chief(strategy)
        self.writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval")) if self.chief else None

    def score(self, step: int) -> dict:
        """Scores model_dir's checkpoint ckpt-<step> on the held-out data.

        Args:
          step: the checkpoint's global step (one of model_dir/checkpoints' ckpt-<N>).

        Returns:
          The evaluation metrics (name -> float), also written as TensorBoard scalars under eval/ and,
          on the chief, to eval_results.json (or eval_results.step_<N>.json for an older step).
        """
        path = os.path.join(self.model_dir, checkpointing.CHECKPOINT_SUBDIR, f"ckpt-{step}")
        status = tf.train.Checkpoint(model=self.reader).read(path)
        status.expect_partial().assert_existing_objects_matched()
        for target, source in zip(self.model.weights, self.reader.weights):
            target.assign(source)
        for variable, value in zip(self.random_states, self.initial_states):
            variable.assign(value)
        metrics = {
            name: float(value) for name, value in self.model.evaluate(self.dataset, verbose=0, return_dict=True).items()
        }
        training_callbacks.write_eval_summaries(self.writer, step, metrics, sys.stdout)
        if self.chief:
            log(f"Wrote {_write_eval_results(self.model_dir, step, metrics)}")
        return metrics

    def close(self) -> None:
        """Closes the eval/ summary writer."""
        if self.writer is not None:
            self.writer.close()


def evaluate_checkpoints(
    options: PretrainingOptions,
    *,
    strategy: Optional[tf.distribute.Strategy] = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """--mode=eval / continuous_eval: {step: metrics} of the checkpoints scored, no training.

    The model is the one model_dir/config.json records. continuous_eval scores the newest
    checkpoint whenever a newer one appears (intermediate ones written while it was scoring are
    skipped, as Model Garden's does) and stops after the checkpoint of num_train_steps (re-read
    each time: --continue_training may raise it) or after eval_timeout_seconds without one.
    """
    model_dir = options.model_dir
    if not model_dir:
        raise UserError(f"--model_dir is required with --mode={options.mode}")
    if not options.eval_data:
        raise UserError(
            f"--eval_data is required with --mode={options.mode}: the held-out "
            "TFRecords (glob or manifest directory) to score checkpoints on"
        )
    continuous = options.mode == "continuous_eval"
    if continuous and options.checkpoint_step is not None:
        raise UserError("--checkpoint_step applies to --mode=eval; continuous_eval scores each new checkpoint")
    if options.eval_poll_seconds < 0 or options.eval_timeout_seconds < 0:
        raise UserError("--eval_poll_seconds and --eval_timeout_seconds must be >= 0")
    waited_since = clock()
    while continuous and checkpointing.latest_checkpoint_step(model_dir) == 0:
        if clock() - waited_since >= options.eval_timeout_seconds:
            log(
                f"No checkpoint appeared in {model_dir} within --eval_timeout_seconds="
                f"{options.eval_timeout_seconds:g}; stopping"
            )
            return {}
        sleep(options.eval_poll_seconds)
    config = checkpointing.load_run_config(model_dir)
    if options.seed is not None:
        config = dataclasses.replace(config, seed=options.seed)
    available = _checkpoint_steps(model_dir)
    if not available:
        raise UserError(
            f"{model_dir} has no checkpoint to evaluate; train first, or watch it with --mode=continuous_eval"
        )
    if options.checkpoint_step is not None and options.checkpoint_step not in available:
        raise UserError(
            f"--checkpoint_step={options.checkpoint_step}: {model_dir} has "
            f"checkpoints at steps {', '.join(map(str, available))}; pick one of them"
        )
    eval_files, eval_manifest = _resolve_data("--eval_data", options.eval_data)
    _check_against_manifest(config, eval_manifest, options.eval_data)
    eval_steps = options.eval_steps if options.eval_steps is not None else config.num_eval_steps
    _check_positive("eval_steps", eval_steps)
    distribution.set_mixed_precision(options.mixed_precision)
    if strategy is None:
        strategy = distribution.create_strategy(
            options.strategy, tpu=options.tpu, worker_timeout_seconds=_worker_timeout(options)
        )
    eval_input = evaluation_input_fn(
        eval_files, config, global_batch_size=_eval_batch_size(config, strategy), steps=eval_steps
    )
    evaluator = CheckpointEvaluator(
        config,
        strategy,
        model_dir,
        eval_input,
        seed=config.seed,
        mixed_precision=options.mixed_precision,
        jit_compile=options.jit_compile,
    )
    results: dict = {}
    try:
        if not continuous:
            step = options.checkpoint_step if options.checkpoint_step is not None else available[-1]
            results[step] = evaluator.score(step)
            return results
        waited_since = clock()
        while True:
            step = checkpointing.latest_checkpoint_step(model_dir)
            if step and step not in results:
                try:
                    results[step] = evaluator.score(step)
                except tf.errors.NotFoundError:
                    # keep_checkpoint_max removed it before it could be read; the next is newer.
                    log(f"Checkpoint {step} was deleted before it could be scored; skipping it")
                    results[step] = None
                waited_since = clock()
                final_step = int(checkpointing.read_run_config(model_dir)[0]["num_train_steps"])
                if step >= final_step:
                    log(f"Scored the checkpoint of the final step {final_step}; stopping")
                    break
                continue
            if clock() - waited_since >= options.eval_timeout_seconds:
                log(
                    f"No new checkpoint in {model_dir} for --eval_timeout_seconds="
                    f"{options.eval_timeout_seconds:g} after step {max(results, default=0)}; stopping"
                )
                break
            sleep(options.eval_poll_seconds)
    finally:
        evaluator.close()
    return {step: metrics for step, metrics in results.items() if metrics is not None}


def _eval_batch_size(config, strategy) -> int:
    eval_batch = config.eval_batch_size
    replicas = strategy.num_replicas_in_sync
    if eval_batch % replicas:
        eval_batch = max(replicas, eval_batch // replicas * replicas)
    return eval_batch


def run_pretraining(
    options: PretrainingOptions,
    *,
    config: str,
    hparams=None,
    num_train_steps: Optional[int] = None,
    train_batch_size: Optional[int] = None,
    save_checkpoints_steps: Optional[int] = None,
    keep_checkpoint_max: Optional[int] = None,
    strategy: Optional[tf.distribute.Strategy] = None,
) -> PretrainingResult:
    """Resolves data and config, builds the strategy (unless given) and runs `train`.

    With options.mode "eval" or "continuous_eval" it scores checkpoints instead (see
    `evaluate_checkpoints`; the config arguments are not used: model_dir records the model) and
    returns a PretrainingResult whose eval_metrics are those of the newest step scored.

    Args:
      options: where to write (model_dir), the data (pretrain_data, eval_data) and how to run
        (strategy, mixed_precision, mode, ...); the fields mirror run_pretraining's flags.
      config: a preset name ("electra_small") or a JSON config file.
      hparams: config overrides (dict, JSON string or JSON file), applied after ``config``.
      num_train_steps, train_batch_size, save_checkpoints_steps, keep_checkpoint_max: override
        the config's values when given (the flags of the same names).
      strategy: a tf.distribute strategy to use instead of building options.strategy's.

    Returns:
      A PretrainingResult: start and final step, last train/eval metrics, the pretrained/ folder
      written at the final step (save_pretrained's layout) and the trained ElectraPretrainer.

    Raises:
      UserError: a required option is missing or bad, the data cannot be found, or it does not
        match the config (sequence length, vocabulary).

    Example:

        options = PretrainingOptions(model_dir="runs/small", pretrain_data="pretrain_data/")
        result = run_pretraining(options, config="electra_small", num_train_steps=1000)
        result.pretrained_dir  # "runs/small/pretrained", what run_finetuning --init_checkpoint takes
    """
    if options.mode not in MODES:
        raise UserError(f"--mode={options.mode!r} is not known; use one of {', '.join(MODES)}")
    if options.mode != "train":
        scored = evaluate_checkpoints(options, strategy=strategy)
        last = max(scored, default=0)
        return PretrainingResult(last, last, {}, scored.get(last), None)
    if not options.model_dir:
        raise UserError("--model_dir is required")
    if not options.pretrain_data:
        raise UserError("--pretrain_data is required: a glob of TFRecord files or a directory with manifest.json")
    files, manifest = _resolve_data("--pretrain_data", options.pretrain_data)
    overrides = dict(
        num_train_steps=num_train_steps,
        train_batch_size=train_batch_size,
        save_checkpoints_steps=save_checkpoints_steps,
        keep_checkpoint_max=keep_checkpoint_max,
    )
    for name, value in overrides.items():
        if value is not None:
            _check_positive(name, value)
    overrides["seed"] = options.seed
    resolved = resolve_config(config, hparams, overrides, manifest)
    _check_against_manifest(resolved, manifest, options.pretrain_data)
    eval_files = None
    eval_steps = options.eval_steps if options.eval_steps is not None else resolved.num_eval_steps
    if options.eval_data:
        eval_files, eval_manifest = _resolve_data("--eval_data", options.eval_data)
        _check_against_manifest(resolved, eval_manifest, options.eval_data)
        _check_positive("eval_steps", eval_steps)
    distribution.set_mixed_precision(options.mixed_precision)  # validate before the (slow) strategy start

    strategy_was_made = strategy is None
    if strategy is None:
        strategy = distribution.create_strategy(
            options.strategy, tpu=options.tpu, worker_timeout_seconds=_worker_timeout(options)
        )
    distribution.per_replica_batch_size(resolved.train_batch_size, strategy)
    distribution.warn_if_bfloat16_is_emulated(strategy)
    start_step = checkpointing.latest_checkpoint_step(options.model_dir)
    train_input = pretraining_input_fn(
        files,
        resolved,
        global_batch_size=resolved.train_batch_size,
        seed=resumed_data_seed(resolved.seed, start_step),
    )
    eval_input = None
    if eval_files:
        eval_input = evaluation_input_fn(
            eval_files, resolved, global_batch_size=_eval_batch_size(resolved, strategy), steps=eval_steps
        )
    result = train(
        resolved,
        strategy,
        model_dir=options.model_dir,
        train_input_fn=train_input,
        eval_input_fn=eval_input,
        eval_steps=eval_steps if eval_files else 0,
        eval_at_checkpoints=options.eval_at_checkpoints,
        seed=resolved.seed,
        mixed_precision=options.mixed_precision,
        jit_compile=options.jit_compile,
        log_every_steps=options.log_every_steps,
        init_checkpoint=options.init_checkpoint,
        stop_at_step=options.stop_at_step,
        pretrained_extra_files=_vocabulary_to_copy(manifest),
        continue_training=options.continue_training,
        steps_per_execution=options.steps_per_execution,
        worker_timeout_seconds=_worker_timeout(options) if strategy_was_made else None,
    )
    return result


def _worker_timeout(options: PretrainingOptions) -> Optional[float]:
    """The heartbeat timeout to configure: only --strategy=multi_worker has peers to lose."""
    return options.worker_timeout_seconds if options.strategy == "multi_worker" else None


def _vocabulary_to_copy(manifest: Optional[dict]) -> dict:
    """{"vocab.txt": the data's vocabulary} to put beside the pretrained weights, so fine-tuning
    and export need no --vocab_file. Only a file whose sha256 is the one the data was built with
    is copied (the manifest records a path, which may have changed since); otherwise nothing."""
    if not manifest or not manifest.get("vocab_file"):
        return {}
    source = manifest["vocab_file"]
    if not fileio.isfile(source):
        return {}
    if manifest.get("vocab_sha256") and tokenization.vocab_sha256(source) != manifest["vocab_sha256"]:
        log(f"Not copying {source} into the pretrained model: it changed since the data was built")
        return {}
    return {artifacts.VOCAB_FILE: source}


def _resolve_data(flag: str, spec: str):
    try:
        return pretraining_dataset.resolve_pretraining_data(spec)
    except UserError as error:
        raise UserError(f"{flag}: {error}") from None


def _check_against_manifest(config, manifest: Optional[dict], source: str) -> None:
    if manifest is None:
        return
    pretraining_manifest.check_manifest_compatible(
        manifest,
        vocab_size=config.vocab_size,
        do_lower_case=config.do_lower_case,
        max_seq_length=config.max_seq_length,
        source=source,
        special_token_ids={name: getattr(config, name) for name in config_lib.SPECIAL_TOKEN_ID_KEYS},
    )
