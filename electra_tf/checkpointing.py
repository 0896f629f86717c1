"""Training checkpoints that resume exactly: model weights, optimizer slots and step, RNG state.

Layout under model_dir:
  checkpoints/ckpt-<step>.index, .data-*   the last `keep_checkpoint_max` checkpoints
  checkpoints/checkpoint                   TF's pointer to the newest one
  config.json                              the resolved ElectraConfig of the run

The checkpoint number is the optimizer step, so a restart knows where it stands before any
variable exists. Keras's BackupAndRestore is not used: it restores at epoch granularity and
its own bookkeeping, while here every save must carry optimizer.iterations (which drives the
learning-rate schedule) and the keras.random seed-generator states (masking, dropout), which
tf.train.Checkpoint(model=...) alone does not store.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import tempfile
from typing import Callable, Optional

import keras
import tensorflow as tf

from electra_tf import config as config_lib
from electra_tf import fileio
from electra_tf.errors import UserError

CHECKPOINT_SUBDIR = "checkpoints"
CONFIG_FILENAME = "config.json"

# Keys of the resolved config that may differ between a run and its restart: they change
# bookkeeping or evaluation, not the trained variables or the learning-rate schedule.
RESUME_SAFE_CONFIG_KEYS = frozenset(
    {"save_checkpoints_steps", "keep_checkpoint_max", "eval_batch_size", "num_eval_steps"}
)


def latest_checkpoint_step(model_dir: str) -> int:
    """Optimizer step of the newest checkpoint in model_dir, or 0 when there is none."""
    path = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_SUBDIR))
    if path is None:
        return 0
    match = re.search(r"ckpt-(\d+)$", path)
    return int(match.group(1)) if match else 0


def random_state_variables(model: keras.Model) -> list:
    """The seed-generator states of `model`: in model.variables but not in model.weights."""
    weight_ids = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weight_ids]


class TrainingCheckpoint:
    """Saves and restores model + optimizer (+ iterations) + RNG state with a CheckpointManager.

    Under multi-worker training every worker must call `save` (saving takes part in
    collectives), but only the chief writes into model_dir; other workers write into a private
    temporary directory that is removed right after.
    """

    def __init__(
        self,
        model_dir: str,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        *,
        max_to_keep: int,
        is_chief: bool = True,
        worker_tag: str = "worker",
    ):
        self.model_dir = model_dir
        self.directory = os.path.join(model_dir, CHECKPOINT_SUBDIR)
        self.is_chief = is_chief
        self.max_to_keep = max_to_keep
        self.worker_tag = worker_tag
        self.optimizer = optimizer
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, random_states=random_state_variables(model)
        )
        self._manager: Optional[tf.train.CheckpointManager] = None

    def _chief_manager(self) -> tf.train.CheckpointManager:
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(
                self.checkpoint,
                self.directory,
                max_to_keep=self.max_to_keep,
                checkpoint_name="ckpt",
            )
        return self._manager

    def restore_latest(self) -> int:
        """Loads the newest checkpoint into the (built) model and optimizer; returns its step.

        Returns 0 and changes nothing when model_dir has no checkpoint.
        """
        path = tf.train.latest_checkpoint(self.directory)
        if path is None:
            return 0
        status = self.checkpoint.restore(path)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as error:
            raise UserError(
                f"{path}: the checkpoint does not match the model built from "
                f"{os.path.join(self.model_dir, CONFIG_FILENAME)} ({str(error).splitlines()[0]}); "
                "use a new --model_dir"
            ) from None
        step = int(self.optimizer.iterations.numpy())
        expected = latest_checkpoint_step(self.model_dir)
        if step != expected:
            raise UserError(
                f"{path}: optimizer.iterations is {step} but the checkpoint is numbered {expected}; "
                "the checkpoint directory was edited by hand, use a new --model_dir"
            )
        return step

    def save(self, step: int) -> Optional[str]:
        """Writes a checkpoint numbered `step`; returns its path on the chief, None elsewhere."""
        if self.is_chief:
            return self._chief_manager().save(checkpoint_number=step)
        scratch = tempfile.mkdtemp(prefix=f"electra_tf_{self.worker_tag}_ckpt_")
        try:
            tf.train.CheckpointManager(self.checkpoint, scratch, max_to_keep=1).save(checkpoint_number=step)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return None


# model_dir/config.json's record of --continue_training changes; not a config key.
HISTORY_KEY = "history"


def read_run_config(model_dir: str) -> tuple[dict, list]:
    """model_dir/config.json as (config keys, history list); UserError when missing or broken."""
    path = os.path.join(model_dir, CONFIG_FILENAME)
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path} does not exist; --model_dir must be a run_pretraining output")
    with tf.io.gfile.GFile(path) as handle:
        try:
            saved = json.load(handle)
        except ValueError as error:
            raise UserError(f"{path}: not valid JSON ({error}); use a new --model_dir") from None
    history = saved.pop(HISTORY_KEY, [])
    return saved, list(history)


def load_run_config(model_dir: str):
    """The ElectraConfig recorded in model_dir/config.json (its history left out)."""
    values, _ = read_run_config(model_dir)
    return config_lib.ElectraConfig.from_dict(values, source=os.path.join(model_dir, CONFIG_FILENAME))


def write_or_check_config(
    model_dir: str,
    config_dict: dict,
    *,
    resuming: bool,
    continue_training: bool = False,
    trained_step: int = 0,
    before_rewrite: Optional[Callable[[int, int], None]] = None,
) -> bool:
    """Writes config.json on a fresh run; on a restart, refuses a config that cannot resume.

    Only RESUME_SAFE_CONFIG_KEYS may differ, and with `continue_training` also num_train_steps
    (not below `trained_step`, the newest checkpoint's): then `before_rewrite(old, new)` runs
    and config.json is rewritten (atomically) with the new value and a history entry. Returns
    whether num_train_steps was changed so. config.json is never overwritten otherwise.
    """
    path = os.path.join(model_dir, CONFIG_FILENAME)
    if not tf.io.gfile.exists(path):
        if resuming:
            raise UserError(
                f"{model_dir} has checkpoints but no {CONFIG_FILENAME}; "
                "it was not written by run_pretraining, use a new --model_dir"
            )
        tf.io.gfile.makedirs(model_dir)
        with tf.io.gfile.GFile(path, "w") as handle:
            handle.write(json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
        return False
    saved, history = read_run_config(model_dir)
    changed = sorted(
        key
        for key in set(saved) | set(config_dict)
        if key not in RESUME_SAFE_CONFIG_KEYS and saved.get(key) != config_dict.get(key)
    )
    if changed == ["num_train_steps"] and continue_training:
        old, new = saved.get("num_train_steps"), config_dict["num_train_steps"]
        if new < trained_step:
            raise UserError(
                f"--num_train_steps={new} is below step {trained_step}, where {model_dir} "
                f"already is; --continue_training needs --num_train_steps >= {trained_step}"
            )
        if before_rewrite is not None:
            before_rewrite(old, new)
        history.append(
            {
                "step": trained_step,
                "old_num_train_steps": old,
                "new_num_train_steps": new,
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
        )
        fileio.write_json_atomic(path, dict(saved, **{HISTORY_KEY: history}, num_train_steps=new), sort_keys=True)
        return True
    if changed:
        details = ", ".join(f"{key}: {saved.get(key)!r} -> {config_dict.get(key)!r}" for key in changed[:4])
        more = f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
        if changed == ["num_train_steps"]:
            hint = (
                "add --continue_training to train on to the new total (the learning-rate "
                "schedule becomes that of the new --num_train_steps), or use a new --model_dir"
            )
        elif continue_training:
            hint = (
                "--continue_training may change only --num_train_steps; rerun with the same "
                "--config/--hparams/flags otherwise, or use a new --model_dir"
            )
        else:
            hint = "rerun with the same --config/--hparams/flags to resume, or use a new --model_dir"
        raise UserError(f"{path}: this --model_dir was trained with a different config ({details}{more}); " + hint)
    return False
