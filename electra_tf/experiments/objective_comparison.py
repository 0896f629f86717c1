"""ELECTRA vs masked-LM pretraining at equal compute: pretrain, snapshot, fine-tune, report.

``run_comparison(options)`` is what ``python -m electra_tf.experiments.compare_objectives``
calls. For each objective it pretrains the same encoder size for the same training FLOPs
(electra_tf.flops.training_step_flops: the generator counts for ELECTRA), as ONE run with the
learning-rate schedule of the full budget that pauses at every fraction of the budget to save
a snapshot; then it fine-tunes every snapshot, and a randomly initialised encoder of the same
size, on the GLUE tasks with several seeds, and reports the medians.

Layout of output_dir (every stage writes its marker last, so a rerun skips finished work and an
interrupted pretraining segment resumes from its checkpoint):

  experiment.json                     the settings; a rerun with other settings is refused
  pretrain/<objective>/               run_pretraining's model_dir (config.json, checkpoints/)
  snapshots/<objective>/step_<n>/     save_pretrained at step n; snapshot.json is its marker
  random_init/config.json             the encoder config the no-pretraining baseline starts from
  finetune/<encoder>/<task>/results.json   run_finetuning's per-task results (the marker)
  results.json, results.md, plot.png  rewritten after every finished encoder (see comparison_report)
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from electra_tf import artifacts, fileio, finetuning_tasks, pretraining_dataset, progress
from electra_tf import config as config_lib
from electra_tf import flops as flops_lib
from electra_tf.errors import UserError
from electra_tf.experiments import comparison_report
from electra_tf.progress import ProgressReporter

# Keras, TensorFlow and the training code are imported by the functions that train, so planning
# and the bookkeeping of a resumed experiment stay cheap.

# Objective name -> the config keys that select it.
OBJECTIVES = {
    "electra": {"electra_objective": True, "discriminator_task": "detection"},
    # The paper's other recommended generator size (its Figure 3: 1/4 to 1/2 of the
    # discriminator's width); "electra" takes the preset's (1/4 in every preset).
    "electra_gen_half": {"electra_objective": True, "discriminator_task": "detection", "generator_hidden_size": 0.5},
    "bert": {"electra_objective": False},
    # The paper's ablations (section 3.2). "ELECTRA 15%": the discriminator learns from the
    # masked positions only; Replace MLM: a masked LM whose masked positions hold generator
    # samples instead of [MASK]; All-Tokens MLM: that, predicting every token, with copying.
    "electra_15": {"electra_objective": True, "discriminator_task": "detection", "disc_loss_masked_only": True},
    "replace_mlm": {"electra_objective": True, "discriminator_task": "replace_mlm"},
    "all_tokens_mlm": {"electra_objective": True, "discriminator_task": "all_tokens_mlm"},
}
DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
DEFAULT_TASKS = ("sst-2", "mrpc", "cola", "sts-b", "rte")
RANDOM_INIT = "random_init"

# FLOPs convention name -> config -> {"total": FLOPs per step, and parts where counted}.
FLOPS_CONVENTIONS = {
    "matmul": flops_lib.training_step_flops,
    "paper": lambda config: {"total": flops_lib.paper_training_step_flops(config)},
}

SETTINGS_FILE = "experiment.json"
# The experiment.json keys that decide the pretraining runs and their snapshots; the others only
# concern fine-tuning.
PRETRAINING_SETTINGS = (
    "pretrain_data",
    "pretrain_data_examples",
    "vocab_file",
    "config",
    "budget_flops",
    "flops_convention",
    "fractions",
    "objectives",
    "pretraining",
    "mixed_precision",
)
SNAPSHOT_MARKER = "snapshot.json"
OUTPUT_SUBDIRS = ("pretrain", "snapshots", "random_init", "finetune")


@dataclasses.dataclass
class ComparisonOptions:
    """The experiment's settings, one field per compare_objectives flag: data, model size, the
    pretraining budget and snapshot fractions, objectives, and the fine-tuning recipe."""

    pretrain_data: str  # a build_pretraining_data directory (with manifest.json) or a glob
    glue_data_dir: str
    output_dir: str
    config: str = "electra_mini"
    hparams: object = None  # applied to every objective (dict, JSON string or file)
    budget_flops: Optional[float] = None
    budget_electra_steps: Optional[int] = None  # the budget as steps of the ELECTRA run
    # "matmul": electra_tf.flops.training_step_flops (what this implementation computes);
    # "paper": paper_training_step_flops (the reference script's count, for published budgets).
    flops_convention: str = "matmul"
    fractions: Sequence[float] = DEFAULT_FRACTIONS
    objectives: Sequence[str] = ("electra", "bert")
    tasks: Sequence[str] = DEFAULT_TASKS
    num_seeds: int = 3
    vocab_file: Optional[str] = None  # None: the one named in the data's manifest
    include_random_init: bool = True
    # Fine-tuning, kept affordable: None means run_finetuning's default (the paper's recipe).
    max_train_examples: Optional[int] = None
    max_eval_examples: Optional[int] = None
    finetune_epochs: Optional[float] = None
    finetune_steps: Optional[int] = None
    finetune_learning_rate: Optional[float] = None
    finetune_batch_size: int = 32
    finetune_seed: int = 12345
    overwrite: bool = False
    log_every_steps: int = 100
    # run_pretraining's and run_finetuning's --mixed_precision, for both stages (none, bf16).
    mixed_precision: str = "none"


@dataclasses.dataclass
class Segment:
    """One pause point of an objective's pretraining run."""

    objective: str
    fraction: float
    step: int
    flops: float

    @property
    def encoder_name(self) -> str:
        """The snapshot's name in reports and under finetune/: "<objective>_step_<step>"."""
        return f"{self.objective}_step_{self.step}"


log = functools.partial(progress.log, prefix="[compare_objectives] ")


# ---------------------------------------------------------------------------------------------
# Planning


def parse_fractions(values) -> tuple[float, ...]:
    """Budget fractions from a list of numbers or strings: in (0, 1], sorted, the last one 1."""
    fractions = []
    for value in values:
        try:
            fraction = float(value)
        except (TypeError, ValueError):
            raise UserError(
                f"--fractions: {value!r} is not a number; give fractions of the budget such as 0.25,0.5,1"
            ) from None
        if not 0.0 < fraction <= 1.0:
            raise UserError(
                f"--fractions: {fraction} is outside (0, 1]; give fractions of the budget such as 0.25,0.5,1"
            )
        fractions.append(fraction)
    fractions = sorted(set(fractions))
    if not fractions or fractions[-1] != 1.0:
        raise UserError("--fractions must include 1 (the full budget), e.g. 0.25,0.5,1")
    return tuple(fractions)


def check_objectives(objectives: Sequence[str]) -> tuple[str, ...]:
    """The --objectives names, stripped, lower-cased and de-duplicated in order.

    Args:
      objectives: names from OBJECTIVES; blank entries are ignored.

    Returns:
      The checked names as a tuple.

    Raises:
      UserError: no name is left, or one is not in OBJECTIVES.
    """
    names = tuple(dict.fromkeys(name.strip().lower() for name in objectives if name.strip()))
    if not names:
        raise UserError(f"--objectives is empty; use some of {', '.join(OBJECTIVES)}")
    for name in names:
        if name not in OBJECTIVES:
            raise UserError(f"--objectives: unknown objective '{name}'; use {', '.join(OBJECTIVES)}")
    return names


def objective_config(options: ComparisonOptions, objective: str, manifest: Optional[dict]):
    """The resolved ElectraConfig of one objective's pretraining run."""
    from electra_tf import pretraining

    hparams, _ = config_lib.parse_hparams(options.hparams)
    for key in OBJECTIVES[objective]:
        if key in hparams:
            raise UserError(f"--hparams: {key} is set by --objectives; leave it out")
    merged = dict(hparams, **OBJECTIVES[objective])
    config = pretraining.resolve_config(options.config, merged, {}, manifest)
    if config.disc_loss_masked_only and config.disc_bias_prior < 0.5:
        # The preset's (or --hparams') prior is the replaced rate over all tokens; the masked
        # positions this objective counts are mostly replaced, so it applies the other way round.
        merged["disc_bias_prior"] = 1.0 - config.disc_bias_prior
        config = pretraining.resolve_config(options.config, merged, {}, manifest)
    return config, merged


def plan_segments(budget_flops: float, step_flops: float, objective: str, fractions: Sequence[float]) -> list[Segment]:
    """Pause points of one objective: steps = floor(budget / FLOPs per step), then each fraction
    of those steps (at least 1, no duplicates)."""
    total_steps = int(budget_flops // step_flops)
    if total_steps < 1:
        raise UserError(
            f"the budget of {budget_flops:.3g} FLOPs is less than one {objective} "
            f"step ({step_flops:.3g} FLOPs); raise --budget_flops"
        )
    segments: list[Segment] = []
    for fraction in fractions:
        step = max(1, int(round(fraction * total_steps)))
        if segments and step <= segments[-1].step:
            continue
        segments.append(Segment(objective, fraction, step, step * step_flops))
    return segments


@dataclasses.dataclass
class Plan:
    """The resolved experiment: each objective's config, hparams, FLOPs per step and snapshot
    segments under the common budget, the tasks, the vocabulary and the settings recorded in
    experiment.json."""

    budget_flops: float
    configs: dict  # objective -> ElectraConfig
    hparams: dict  # objective -> the hparams dict given to run_pretraining
    step_flops: dict  # objective -> training_step_flops parts
    segments: dict  # objective -> [Segment]
    tasks: tuple
    vocab_file: str
    settings: dict


def make_plan(options: ComparisonOptions) -> Plan:
    """Checks ``options`` and resolves them into the experiment's Plan.

    Reads the pretraining data's manifest (for the vocabulary and example count), builds each
    objective's config, prices a training step under the FLOPs convention and splits the common
    budget into snapshot segments at ``options.fractions``.

    Args:
      options: the experiment's settings.

    Returns:
      The Plan: per-objective configs, hparams, FLOPs per step and segments, plus the settings
      recorded in experiment.json.

    Raises:
      UserError: a required flag is missing, a value is out of range, a task is not GLUE, the data
        or vocabulary cannot be found, or the FLOPs convention is unknown.
    """
    if not options.output_dir:
        raise UserError("--output_dir is required")
    if not options.glue_data_dir:
        raise UserError("--glue_data_dir is required (the folder with CoLA/, SST-2/, ...)")
    if (options.budget_flops is None) == (options.budget_electra_steps is None):
        raise UserError("give exactly one of --budget_flops and --budget_electra_steps")
    if options.num_seeds < 1:
        raise UserError(f"--num_seeds must be at least 1, got {options.num_seeds}")
    objectives = check_objectives(options.objectives)
    fractions = parse_fractions(options.fractions)
    tasks = tuple(task.name for task in finetuning_tasks.parse_task_list(",".join(options.tasks)))
    squad = [name for name in tasks if name not in finetuning_tasks.GLUE_TASKS]
    if squad:
        raise UserError(f"--tasks: {squad[0]} is not a GLUE task; this experiment reports GLUE")
    if not options.pretrain_data:
        raise UserError("--pretrain_data is required: a directory written by build_pretraining_data")
    try:
        _, manifest = pretraining_dataset.resolve_pretraining_data(options.pretrain_data)
    except UserError as error:
        raise UserError(f"--pretrain_data: {error}") from None
    vocab_file = options.vocab_file or (manifest or {}).get("vocab_file")
    if not vocab_file:
        raise UserError("--vocab_file is required when --pretrain_data has no manifest.json naming its vocabulary")
    if not fileio.isfile(vocab_file):
        raise UserError(f"vocabulary {vocab_file} not found; pass --vocab_file")

    if options.flops_convention not in FLOPS_CONVENTIONS:
        raise UserError(
            f"--flops_convention={options.flops_convention!r} is not known; use {' or '.join(FLOPS_CONVENTIONS)}"
        )
    configs, hparams, step_flops = {}, {}, {}
    for objective in ("electra",) + tuple(o for o in objectives if o != "electra"):
        configs[objective], hparams[objective] = objective_config(options, objective, manifest)
        step_flops[objective] = FLOPS_CONVENTIONS[options.flops_convention](configs[objective])
    if options.budget_flops is not None:
        if not options.budget_flops > 0:
            raise UserError(f"--budget_flops must be positive, got {options.budget_flops}")
        budget = float(options.budget_flops)
    else:
        if options.budget_electra_steps < 1:
            raise UserError(f"--budget_electra_steps must be at least 1, got {options.budget_electra_steps}")
        budget = options.budget_electra_steps * step_flops["electra"]["total"]
    if "electra" not in objectives:
        del configs["electra"], hparams["electra"], step_flops["electra"]
    segments = {
        objective: plan_segments(budget, step_flops[objective]["total"], objective, fractions)
        for objective in objectives
    }

    settings = {
        "pretrain_data": fileio.abspath(options.pretrain_data),
        "pretrain_data_examples": (manifest or {}).get("num_examples"),
        "glue_data_dir": fileio.abspath(options.glue_data_dir),
        "vocab_file": fileio.abspath(vocab_file),
        "config": options.config,
        "budget_flops": budget,
        "flops_convention": options.flops_convention,
        "fractions": list(fractions),
        "objectives": list(objectives),
        "mixed_precision": options.mixed_precision,
        "pretraining": {
            objective: {
                "config": configs[objective].to_dict(),
                "flops_per_step": step_flops[objective],
                "steps": [segment.step for segment in segments[objective]],
            }
            for objective in objectives
        },
        "tasks": list(tasks),
        "num_seeds": options.num_seeds,
        "include_random_init": options.include_random_init,
        "finetuning": {
            "max_train_examples": options.max_train_examples,
            "max_eval_examples": options.max_eval_examples,
            "epochs": options.finetune_epochs,
            "steps": options.finetune_steps,
            "learning_rate": options.finetune_learning_rate,
            "batch_size": options.finetune_batch_size,
            "first_seed": options.finetune_seed,
        },
    }
    return Plan(budget, configs, hparams, step_flops, segments, tasks, vocab_file, settings)


def check_or_write_settings(output_dir: str, settings: dict, overwrite: bool) -> None:
    """Writes experiment.json, or checks that a rerun has the same settings.

    With ``overwrite`` a different experiment's outputs (only the ones this module writes) are
    removed first. When only fine-tuning settings changed and the user has moved finetune/
    away, the pretraining snapshots are reused and experiment.json is updated.
    """
    path = os.path.join(output_dir, SETTINGS_FILE)
    normalised = json.loads(json.dumps(settings))
    if fileio.isfile(path):
        try:
            saved = fileio.read_json(path)
        except ValueError:
            saved = None
        same_pretraining = isinstance(saved, dict) and all(
            saved.get(key) == normalised.get(key) for key in PRETRAINING_SETTINGS
        )
        finetune_results = os.path.join(output_dir, "finetune")
        if saved != normalised and same_pretraining and not fileio.exists(finetune_results):
            log(
                f"only fine-tuning settings changed ({_first_difference(saved, normalised)}) and "
                f"{finetune_results} is gone: reusing the pretraining snapshots"
            )
        elif saved != normalised:
            if not overwrite:
                difference = _first_difference(saved, normalised)
                hint = (
                    f"; the pretraining settings match, so moving {finetune_results} aside reuses the snapshots"
                    if same_pretraining
                    else ""
                )
                raise UserError(
                    f"{path}: --output_dir holds another experiment ({difference})"
                    f"{hint}; use a new --output_dir, or --overwrite to replace it"
                )
            log(f"--overwrite: removing the earlier experiment's outputs in {output_dir}")
            for name in OUTPUT_SUBDIRS:
                if fileio.exists(os.path.join(output_dir, name)):
                    fileio.rmtree(os.path.join(output_dir, name))
            for name in ("results.json", "results.md", "plot.png", SETTINGS_FILE):
                if fileio.exists(os.path.join(output_dir, name)):
                    fileio.remove(os.path.join(output_dir, name))
        else:
            return
    elif fileio.isdir(output_dir) and fileio.listdir(output_dir) and not overwrite:
        raise UserError(
            f"--output_dir {output_dir} is not empty and has no {SETTINGS_FILE}; use a new or empty directory"
        )
    fileio.write_json_atomic(path, normalised, sort_keys=True)


def _first_difference(saved, current, prefix: str = "") -> str:
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current)):
            if saved.get(key) != current.get(key):
                return _first_difference(saved.get(key), current.get(key), f"{prefix}{key}.")
    name = prefix.rstrip(".") or "settings"
    return f"{name}: {json.dumps(saved)[:60]} -> {json.dumps(current)[:60]}"


# ---------------------------------------------------------------------------------------------
# Pretraining


def snapshot_dir(output_dir: str, segment: Segment) -> str:
    """Where ``segment``'s pretrained snapshot goes: <output_dir>/snapshots/<objective>/step_<step>."""
    return os.path.join(output_dir, "snapshots", segment.objective, f"step_{segment.step}")


def _clear_keras_state() -> None:
    import keras

    keras.backend.clear_session()
    gc.collect()


def _restore_pretrainer(config, model_dir: str, step: int):
    """The ElectraPretrainer of checkpoint ckpt-<step> in model_dir.

    Keras 3 models reach tf.train.Checkpoint mostly through the optimizer's list of the
    variables it trains, so the optimizer is rebuilt as training built it and restored too.
    """
    import tensorflow as tf

    from electra_tf import checkpointing, optimization, pretraining_objective

    path = os.path.join(model_dir, checkpointing.CHECKPOINT_SUBDIR, f"ckpt-{step}")
    if not tf.io.gfile.exists(path + ".index"):
        raise UserError(
            f"{path}: the checkpoint of the step to snapshot is missing; remove "
            f"{model_dir} to pretrain this objective again"
        )
    model = pretraining_objective.ElectraPretrainer(config, seed=0)
    length = config.max_seq_length
    model(
        {
            "input_ids": np.full((1, length), config.cls_token_id, np.int32),
            "input_mask": np.ones((1, length), np.int32),
            "segment_ids": np.zeros((1, length), np.int32),
        }
    )
    optimizer = optimization.create_optimizer(config, config.num_train_steps)
    optimizer.build(model.trainable_variables)
    status = tf.train.Checkpoint(
        model=model, optimizer=optimizer, random_states=checkpointing.random_state_variables(model)
    ).read(path)
    status.assert_existing_objects_matched()
    return model


def pretrain_segment(options: ComparisonOptions, plan: Plan, segment: Segment) -> dict:
    """Continues the objective's run to segment.step and saves the snapshot; returns its record."""
    from electra_tf import pretraining

    objective = segment.objective
    config = plan.configs[objective]
    total_steps = plan.segments[objective][-1].step
    model_dir = os.path.join(options.output_dir, "pretrain", objective)
    started = time.monotonic()
    run_options = pretraining.PretrainingOptions(
        model_dir=model_dir,
        pretrain_data=options.pretrain_data,
        log_every_steps=options.log_every_steps,
        stop_at_step=segment.step,
        mixed_precision=options.mixed_precision,
    )
    result = pretraining.run_pretraining(
        run_options, config=options.config, hparams=plan.hparams[objective], num_train_steps=total_steps
    )
    seconds = time.monotonic() - started
    model = result.model
    if model is None:  # the checkpoint was written but the snapshot was not (interrupted)
        model = _restore_pretrainer(config, model_dir, segment.step)
    elif result.final_step != segment.step:
        raise RuntimeError(f"pretraining stopped at step {result.final_step}, not {segment.step}")
    record = {
        "objective": objective,
        "fraction": segment.fraction,
        "step": segment.step,
        "pretraining_flops": segment.flops,
        "segment_seconds": round(seconds, 1),
        "segment_start_step": result.start_step,
        "train_metrics": {k: float(v) for k, v in (result.train_metrics or {}).items()},
    }
    save_snapshot(model, snapshot_dir(options.output_dir, segment), record)
    del model, result
    _clear_keras_state()
    return record


def save_snapshot(model, target: str, record: dict) -> None:
    """Writes ``model``'s pretrained/ folder with ``record`` as its snapshot.json to ``target``
    (local or gs://), replacing an unfinished one there.

    The folder is written under a temporary name and moved into place with snapshot.json (what
    ``read_snapshot`` looks for) last, so an interrupted save never looks finished; a folder
    already at ``target`` (one without snapshot.json: its save was interrupted after the move)
    is deleted only once the new one is complete. Temporary folders that killed saves left are
    deleted first: like the rest of the driver, this assumes one process per --output_dir.
    """
    fileio.remove_temporaries(target)
    staging = fileio.temporary_name(target)
    try:
        artifacts.save_pretrained(model, staging)
        fileio.write_json_atomic(os.path.join(staging, SNAPSHOT_MARKER), record, sort_keys=True)
        fileio.move_tree(staging, target, commit_files=[artifacts.CONFIG_FILE, SNAPSHOT_MARKER], replace=True)
    finally:
        if fileio.exists(staging):
            fileio.rmtree(staging)


def read_snapshot(output_dir: str, segment: Segment) -> Optional[dict]:
    """The snapshot.json record of ``segment``'s finished snapshot (objective, step, FLOPs, seconds, train metrics), or
    None if it is not complete."""
    path = os.path.join(snapshot_dir(output_dir, segment), SNAPSHOT_MARKER)
    if not fileio.isfile(path):
        return None
    return fileio.read_json(path)


# ---------------------------------------------------------------------------------------------
# Fine-tuning


def finetune_dir(output_dir: str, encoder_name: str) -> str:
    """The fine-tuning output folder of one encoder: <output_dir>/finetune/<encoder_name>."""
    return os.path.join(output_dir, "finetune", encoder_name)


def finished_tasks(output_dir: str, encoder_name: str, tasks: Sequence[str]) -> dict:
    """task -> its results.json (as a dict) for the tasks this encoder has finished."""
    done = {}
    for task in tasks:
        path = os.path.join(finetune_dir(output_dir, encoder_name), task, artifacts.TASK_RESULTS_FILE)
        if fileio.isfile(path):
            done[task] = fileio.read_json(path)
    return done


def random_init_config_path(options: ComparisonOptions, plan: Plan) -> str:
    """Writes (once) the encoder config of the no-pretraining baseline: the same sizes."""
    config = next(iter(plan.configs.values()))
    config = config.replace({"electra_objective": True})
    path = os.path.join(options.output_dir, RANDOM_INIT, "config.json")
    if not fileio.isfile(path):
        fileio.makedirs(os.path.dirname(path))
        config.to_json_file(path)
    return path


def finetune_encoder(
    options: ComparisonOptions, plan: Plan, encoder_name: str, init_checkpoint: Optional[str], tasks: Sequence[str]
) -> None:
    """Runs run_finetuning on ``tasks`` for one encoder (a snapshot, or random init)."""
    from electra_tf import finetuning

    # Without a checkpoint, run_finetuning builds the encoder from this config (random init).
    baseline = {} if init_checkpoint else {"config": random_init_config_path(options, plan)}
    finetune_options = finetuning.FinetuningOptions(
        **baseline,
        tasks=",".join(tasks),
        output_dir=finetune_dir(options.output_dir, encoder_name),
        data_dir=options.glue_data_dir,
        init_checkpoint=init_checkpoint,
        vocab_file=plan.vocab_file,
        num_trials=options.num_seeds,
        seed=options.finetune_seed,
        learning_rate=options.finetune_learning_rate,
        num_train_epochs=options.finetune_epochs,
        num_train_steps=options.finetune_steps,
        train_batch_size=options.finetune_batch_size,
        max_train_examples=options.max_train_examples,
        max_eval_examples=options.max_eval_examples,
        log_every_steps=max(options.log_every_steps, 1),
        save_weights=False,
        write_test_predictions=False,
        mixed_precision=options.mixed_precision,
    )
    finetuning.run_finetuning(finetune_options)
    _clear_keras_state()


# ---------------------------------------------------------------------------------------------
# The experiment


def run_comparison(options: ComparisonOptions) -> dict:
    """Runs (or resumes) the whole experiment; returns the results dict also written to
    output_dir/results.json."""
    plan = make_plan(options)
    check_or_write_settings(options.output_dir, plan.settings, options.overwrite)
    for objective, config in plan.configs.items():
        parts = flops_lib.training_step_flops(config)
        log(
            f"{objective}: {parts['total']:.4g} training FLOPs per step, matmul count ("
            + ", ".join(f"{name} {value:.3g}" for name, value in parts.items() if name != "total")
            + f"); {flops_lib.paper_training_step_flops(config):.4g} in the paper's convention"
        )
    log(f"budget {plan.budget_flops:.4g} FLOPs per objective ({options.flops_convention} convention)")
    for objective, segments in plan.segments.items():
        log(
            f"{objective}: {segments[-1].step} steps for the budget; snapshots at steps "
            + ", ".join(f"{s.step} ({s.fraction:g}, {s.flops:.3g} FLOPs)" for s in segments)
        )

    encoders = _encoders_in_order(options, plan)
    # Only the stages left to do count, so that skipped ones do not distort the rate and ETA.
    pending = sum(
        read_snapshot(options.output_dir, segment) is None
        for segments in plan.segments.values()
        for segment in segments
    )
    pending += sum(len(finished_tasks(options.output_dir, name, plan.tasks)) < len(plan.tasks) for name, _ in encoders)
    progress = ProgressReporter(
        "compare_objectives", total=max(pending, 1), total_key="stages_done", interval_seconds=0.0, stream=sys.stdout
    )
    snapshots: dict[str, dict] = {}
    for objective, segments in plan.segments.items():
        for segment in segments:
            record = read_snapshot(options.output_dir, segment)
            if record is not None:
                log(f"{segment.encoder_name}: snapshot already saved, skipping")
            else:
                log(
                    f"pretraining {objective} to step {segment.step} of "
                    f"{segments[-1].step} ({segment.fraction:g} of the budget)"
                )
                record = pretrain_segment(options, plan, segment)
                log(
                    f"{segment.encoder_name}: snapshot saved in "
                    f"{snapshot_dir(options.output_dir, segment)} "
                    f"({record['segment_seconds']:.0f} s)"
                )
                progress.update(stages_done=1)
            snapshots[segment.encoder_name] = record

    for encoder_name, init_checkpoint in encoders:
        done = finished_tasks(options.output_dir, encoder_name, plan.tasks)
        missing = [task for task in plan.tasks if task not in done]
        if missing:
            log(
                f"fine-tuning {encoder_name} on {', '.join(missing)} x {options.num_seeds} "
                f"seed(s)" + (f" (already done: {', '.join(done)})" if done else "")
            )
            finetune_encoder(options, plan, encoder_name, init_checkpoint, missing)
            results = comparison_report.collect_results(options.output_dir, plan, snapshots)
            comparison_report.write_reports(options.output_dir, results)
            progress.update(stages_done=1)
        else:
            log(f"{encoder_name}: every task already fine-tuned, skipping")
    results = comparison_report.collect_results(options.output_dir, plan, snapshots)
    paths = comparison_report.write_reports(options.output_dir, results)
    log("done: " + ", ".join(paths))
    return results


def _encoders_in_order(options: ComparisonOptions, plan: Plan) -> list[tuple[str, Optional[str]]]:
    """(encoder name, snapshot dir or None) in the order they are fine-tuned: the full-budget
    snapshots first, then the baseline, then the smaller fractions, largest first, so that an
    experiment cut short has its headline comparison."""
    by_fraction: dict[float, list] = {}
    for segments in plan.segments.values():
        for segment in segments:
            by_fraction.setdefault(segment.fraction, []).append(segment)
    ordered = []
    fractions = sorted(by_fraction, reverse=True)
    for fraction in fractions[:1]:
        ordered += [(s.encoder_name, snapshot_dir(options.output_dir, s)) for s in by_fraction[fraction]]
    if options.include_random_init:
        ordered.append((RANDOM_INIT, None))
    for fraction in fractions[1:]:
        ordered += [(s.encoder_name, snapshot_dir(options.output_dir, s)) for s in by_fraction[fraction]]
    return ordered
