"""The two saved-model folders: their file names, head.json's schema, and writing, finding,
validating and reading them. Training jobs write them; export, conversion and scoring read them
through this module only, so serving never depends on the training code.

``pretrained/`` (run_pretraining's final model; also what convert_checkpoint writes for a
released checkpoint):

  config.json                 the ElectraConfig without the run's settings (model_dict; written
                              last: its presence marks the folder done)
  backbone.weights.h5         the encoder to fine-tune (ElectraBackbone), the discriminator's or,
                              for electra_objective=false, the masked LM's
  discriminator.weights.h5    backbone + replaced-token head (ELECTRA objective only)
  generator.weights.h5        generator + MLM head (absent for uniform_generator)
  vocab.txt                   the vocabulary, when the pretraining data's (or the checkpoint's)
                              was available

A run_pretraining --model_dir holds it as <model_dir>/pretrained.

``finetuned/`` (one fine-tuning trial's model, <output_dir>/<task>/trial_<k>/finetuned; the task
folder's results.json names the median trial):

  model.weights.h5            FinetuningModel: backbone + task_specific head, no optimizer slots
  config.json                 the ElectraConfig without the run's settings (model_dict)
  vocab.txt                   a copy of the vocabulary it was fine-tuned with
  head.json                   what rebuilds the head and its decoding (written last; see below)

head.json is a JSON object (``HEAD_FIELDS`` is the table, ``validate_head`` the check):

  task            str   the task: a GLUE name, squad-v1.1/squad-v2.0, ner/chunk, or --task_name
  head            str   "classification", "regression", "span" (SQuAD) or "tagging"
  num_labels      int   the head's outputs (2 for span heads)
  max_seq_length  int   the fine-tuning sequence length (export's default)
  answerable      bool  SQuAD 2.0's no-answer head; absent = false
  target_scale    float regression outputs are divided by it in training; absent = 1.0
  pair            bool  sentence-pair input; absent (written before custom tasks) = the GLUE
                        task's own (False for any other task)
  label_names     list  class / tag names in output order; null for span and regression heads
  vocab_file      str   "vocab.txt" (relative to the folder); older folders: an absolute path
  vocab_source    str   where the vocabulary was copied from (for the record)
  vocab_sha256    str   sha256 of the vocabulary's bytes
  do_lower_case   bool  the tokenizer's lower-casing
  span_head       str   span heads: "joint" (the reference's) or "independent"; absent (written
                        before the joint head existed) = "independent"
  beam_size       int   span heads: starts (and ends per start) kept by the joint head; absent = 20
  squad_version   str   span heads: "1.1" or "2.0"; a 1.1 model may carry the answerability head
                        (--squad_v1_answerable_head) that only 2.0 decoding reads; absent = "2.0"
                        when answerable (written before 1.1 could have that head)
  squad           dict  span heads: squad.SquadSettings' fields (windows and decoding) and
                        "null_threshold" (SQuAD 2.0's tuned no-answer threshold, or null)
  tagging         dict  tagging heads: "scheme" ("file" or "bioes"), "default_tag",
                        "tag_column", "segment_id", "span_rule" ("conlleval" or "reference"),
                        "truncation" ("score_all" or "reference")

``read_head`` fills the "absent =" defaults, so every reader sees one shape.

This module imports nothing heavy at its top: export's flag checks and conversion's format
probes read these folders without building a model. Only ``save_finetuned``,
``load_finetuned`` and the weight writers touch Keras, through the models they are given or
import inside them.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Mapping, Optional

from electra_tf import config as config_lib
from electra_tf import fileio
from electra_tf.errors import UserError
from electra_tf.progress import log

# pretrained/
PRETRAINED_DIR = "pretrained"
CONFIG_FILE = "config.json"
BACKBONE_WEIGHTS_FILE = "backbone.weights.h5"
DISCRIMINATOR_WEIGHTS_FILE = "discriminator.weights.h5"
GENERATOR_WEIGHTS_FILE = "generator.weights.h5"
VOCAB_FILE = "vocab.txt"

# finetuned/ and the task folder around it
FINETUNED_DIR = "finetuned"
MODEL_WEIGHTS_FILE = "model.weights.h5"
HEAD_FILE = "head.json"
TASK_RESULTS_FILE = "results.json"  # <task>/results.json: every trial and "median_trial"
TRIAL_PREFIX = "trial_"

HEAD_KINDS = ("classification", "regression", "span", "tagging")
INDEPENDENT_SPAN_HEAD = "independent"
DEFAULT_BEAM_SIZE = 20

_INT, _FLOAT, _BOOL, _STR = (int,), (int, float), (bool,), (str,)
_NULL = (type(None),)
# name -> (allowed JSON types, required); see the module docstring for their meaning.
HEAD_FIELDS = {
    "task": (_STR, True),
    "head": (_STR, True),
    "num_labels": (_INT, True),
    "max_seq_length": (_INT, True),
    "answerable": (_BOOL, False),
    "target_scale": (_FLOAT, False),
    "pair": (_BOOL, False),
    "label_names": ((list,) + _NULL, False),
    "vocab_file": (_STR + _NULL, False),
    "vocab_source": (_STR + _NULL, False),
    "vocab_sha256": (_STR + _NULL, False),
    "do_lower_case": (_BOOL + _NULL, False),
    "span_head": (_STR, False),
    "beam_size": (_INT, False),
    "squad_version": (_STR, False),
    "squad": ((dict,) + _NULL, False),
    "tagging": ((dict,) + _NULL, False),
}
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true/false",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


# ---------------------------------------------------------------------------------------------
# Names and finding


def trial_dir(task_dir: str, trial: int) -> str:
    """<task_dir>/trial_<trial> (trials count from 1)."""
    return os.path.join(task_dir, f"{TRIAL_PREFIX}{trial}")


def median_trial(task_dir: str) -> Optional[int]:
    """The median trial's number from <task_dir>/results.json, or None without that file."""
    results = os.path.join(task_dir, TASK_RESULTS_FILE)
    if not fileio.isfile(results):
        return None
    return fileio.read_json(results).get("median_trial")


def is_finetuned(directory: str) -> bool:
    """True when ``directory`` is a finetuned/ folder (its head.json, written last, is there)."""
    return fileio.isfile(os.path.join(directory, HEAD_FILE))


def find_finetuned(path: str, *, flag: str, first_trial_if_unfinished: bool = False) -> Optional[str]:
    """The finetuned/ folder that ``path`` names: itself, a trial folder, or a task folder
    (its median trial, from results.json).

    Args:
      path: a finetuned/, trial_<k>/ or <task>/ folder (local or remote).
      flag: how the user gave ``path`` ("--input x"), for the error message.
      first_trial_if_unfinished: a task folder without results.json (a run that has not
        finished) means its trial_1.
    Returns:
      The finetuned/ folder, or None when ``path`` is not fine-tuning output.
    Raises:
      UserError: the median trial saved no model.
    """
    if is_finetuned(path):
        return path
    nested = os.path.join(path, FINETUNED_DIR)
    if is_finetuned(nested):
        return nested
    trial = median_trial(path)
    if trial is not None:
        candidate = os.path.join(trial_dir(path, trial), FINETUNED_DIR)
        if not is_finetuned(candidate):
            raise UserError(
                f"{flag}: the median trial's {candidate} has no {HEAD_FILE}; "
                "fine-tune with weights saved (save_weights) or point to another "
                "trial's finetuned/ folder"
            )
        return candidate
    if first_trial_if_unfinished:
        candidate = os.path.join(trial_dir(path, 1), FINETUNED_DIR)
        if is_finetuned(candidate):
            return candidate
    return None


def has_pretrained_files(directory: str) -> bool:
    """config.json and backbone.weights.h5 (what fine-tuning and export need) are there."""
    return all(fileio.isfile(os.path.join(directory, name)) for name in (CONFIG_FILE, BACKBONE_WEIGHTS_FILE))


def find_pretrained(path: str) -> Optional[str]:
    """``path`` itself or its pretrained/ (a run_pretraining --model_dir), whichever holds a
    pretrained model; None when neither does."""
    for candidate in (path, os.path.join(path, PRETRAINED_DIR)):
        if has_pretrained_files(candidate):
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# Validating


def pretrained_files(config) -> list[str]:
    """The files save_pretrained writes for ``config`` (the ElectraPretrainer's networks)."""
    names = [CONFIG_FILE, BACKBONE_WEIGHTS_FILE]
    if config.electra_objective:
        names.append(DISCRIMINATOR_WEIGHTS_FILE)
    if not (config.uniform_generator and config.electra_objective):
        names.append(GENERATOR_WEIGHTS_FILE)
    return names


def pretrained_is_complete(directory: str, config) -> bool:
    """Every file ``pretrained_files(config)`` names is in ``directory``."""
    return all(fileio.isfile(os.path.join(directory, name)) for name in pretrained_files(config))


def check_pretrained(directory: str, hint: str) -> tuple[str, str]:
    """(config path, backbone weights path) of a pretrained/ folder.

    Raises:
      UserError: one of them is missing; the message is ``hint`` after the missing path.
    """
    paths = (fileio.join(directory, CONFIG_FILE), fileio.join(directory, BACKBONE_WEIGHTS_FILE))
    for path in paths:
        if not fileio.isfile(path):
            raise UserError(f"{path} not found; {hint}")
    return paths


def _malformed(path: str, problem: str) -> UserError:
    return UserError(
        f"{path}: {problem}; it must be the {HEAD_FILE} that run_finetuning wrote "
        "(re-run fine-tuning to write it again)"
    )


def validate_head(head, source: str = HEAD_FILE) -> dict:
    """Checks ``head`` against HEAD_FIELDS and returns it.

    Args:
      head: the parsed head.json.
      source: the file it came from, named in the error.
    Raises:
      UserError: one line naming ``source`` and the first problem found.
    """
    if not isinstance(head, dict):
        raise _malformed(source, f"expected a JSON object, found {type(head).__name__}")
    for name, (types, required) in HEAD_FIELDS.items():
        if name not in head:
            if required:
                raise _malformed(source, f"no {name!r}")
            continue
        value = head[name]
        # JSON true/false are ints to isinstance; a count given as true is still wrong.
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong:
            expected = " or ".join(_TYPE_NAMES[kind] for kind in types)
            raise _malformed(source, f"{name!r} is {json.dumps(value)[:40]}, expected {expected}")
    if head["head"] not in HEAD_KINDS:
        raise _malformed(source, f"'head' is {head['head']!r}, expected one of {', '.join(HEAD_KINDS)}")
    names = head.get("label_names")
    if head["head"] in ("classification", "tagging") and names is not None and (len(names) != head["num_labels"]):
        raise _malformed(source, f"{len(names)} label_names for num_labels {head['num_labels']}")
    return head


def _glue_pair(task_name: str) -> bool:
    # Cycle: finetuning_tasks imports this module (through token_classification).
    from electra_tf import finetuning_tasks

    task = finetuning_tasks.GLUE_TASKS.get(task_name)
    return bool(task is not None and task.is_pair)


def normalize_head(head: dict) -> dict:
    """``head`` with the defaults of older writers filled in (see the module docstring)."""
    head = dict(head)
    head.setdefault("answerable", False)
    head.setdefault("target_scale", 1.0)
    if "pair" not in head:
        head["pair"] = _glue_pair(head["task"])
    if head["head"] == "span":
        head.setdefault("span_head", INDEPENDENT_SPAN_HEAD)
        head.setdefault("beam_size", DEFAULT_BEAM_SIZE)
    return head


def read_head(directory: str) -> dict:
    """The validated, normalised head.json of a finetuned/ folder.

    Raises:
      UserError: the file is missing, not JSON, or does not fit the schema (one line naming it).
    """
    path = os.path.join(directory, HEAD_FILE)
    if not fileio.isfile(path):
        raise UserError(f"{path} not found; point to a fine-tuning trial's {FINETUNED_DIR}/ folder")
    try:
        head = json.loads(fileio.read_text(path))
    except (ValueError, UnicodeDecodeError) as error:
        raise _malformed(path, f"not valid JSON ({str(error).splitlines()[0]})") from None
    return normalize_head(validate_head(head, path))


def check_finetuned(directory: str) -> dict:
    """The head of a finetuned/ folder whose model files are all there (the vocabulary is
    checked where it is used: a --vocab_file may stand in for a missing one).

    Raises:
      UserError: head.json is malformed, or config.json or model.weights.h5 is missing.
    """
    head = read_head(directory)
    for name in (CONFIG_FILE, MODEL_WEIGHTS_FILE):
        path = os.path.join(directory, name)
        if not fileio.isfile(path):
            raise UserError(
                f"{path} not found; {directory} is an incomplete {FINETUNED_DIR}/ folder (re-run fine-tuning for it)"
            )
    return head


# ---------------------------------------------------------------------------------------------
# Reading


def read_config(directory: str):
    """The ElectraConfig in ``directory``/config.json (either folder)."""
    return config_lib.ElectraConfig.from_json_file(os.path.join(directory, CONFIG_FILE))


def finetuned_vocab(directory: str, head: Mapping) -> Optional[str]:
    """The vocabulary a finetuned/ folder's head.json records, as a path; None if it records
    none. finetuned/ carries its copy; older folders recorded an absolute path instead."""
    recorded = head.get("vocab_file")
    if recorded is not None and not os.path.isabs(recorded) and not fileio.is_remote(recorded):
        recorded = os.path.join(directory, recorded)
    return recorded


def pretrained_vocab(directory: str) -> Optional[str]:
    """``directory``/vocab.txt when a pretrained/ folder has one, else None."""
    path = os.path.join(directory, VOCAB_FILE)
    return path if fileio.isfile(path) else None


def build_finetuned_model(config, head: Mapping, dropout_rate: float = 0.1):
    """An untrained FinetuningModel of the shape ``head`` describes.

    Both the writer's weights-only copy and the reader are built here, so a folder's weights
    always fit what reading it builds.
    """
    # Keras-heavy, and a cycle (modeling imports this module): imported when a model is built.
    from electra_tf import finetuning_models, modeling

    return finetuning_models.FinetuningModel(
        modeling.ElectraBackbone(config),
        head["head"],
        num_labels=head["num_labels"],
        answerable=head.get("answerable", False),
        target_scale=head.get("target_scale", 1.0),
        dropout_rate=dropout_rate,
        span_head=head.get("span_head", INDEPENDENT_SPAN_HEAD),
        beam_size=head.get("beam_size", DEFAULT_BEAM_SIZE),
    )


def load_finetuned(directory: str):
    """(head dict, FinetuningModel) from a trial's finetuned/ directory.

    A span head.json without "span_head" (written before the joint head existed) holds the
    independent head's weights and loads as that.

    Returns:
      (head, model): ``read_head``'s dict and the model with its weights loaded.
    Raises:
      UserError: head.json is malformed or a model file is missing.

    Example:

        head, model = load_finetuned("finetune_out/rte/trial_1/finetuned")
        head["task"], head["head"]  # e.g. ("rte", "classification")
    """
    head = check_finetuned(directory)
    model = build_finetuned_model(read_config(directory), head)
    model.load_weights(os.path.join(directory, MODEL_WEIGHTS_FILE))
    return head, model


# ---------------------------------------------------------------------------------------------
# Writing


def pretrained_networks(model) -> dict:
    """{weights file name: network} for the networks an ElectraPretrainer has."""
    networks = {BACKBONE_WEIGHTS_FILE: model.backbone}
    if model.discriminator is not None:
        networks[DISCRIMINATOR_WEIGHTS_FILE] = model.discriminator
    if model.generator is not None:
        networks[GENERATOR_WEIGHTS_FILE] = model.generator
    return networks


def write_pretrained_files(config, networks: Mapping, directory: str) -> None:
    """config.json and each of ``networks`` ({file name: network}) into ``directory``, in place
    (callers that need the folder to appear whole write into a temporary one)."""
    fileio.makedirs(directory)
    config.to_model_json_file(fileio.join(directory, CONFIG_FILE))
    for name, network in networks.items():
        network.save_weights(fileio.join(directory, name), overwrite=True)


def save_pretrained(model, directory, overwrite: bool = False):
    """Writes the pretrained networks in the form fine-tuning and export load.

    directory/config.json             the ElectraConfig without the run's settings (model_dict)
    directory/backbone.weights.h5     the encoder to fine-tune (ElectraBackbone: embeddings,
                                      projection, layers) - the discriminator's, or the masked
                                      LM's for electra_objective=false
    directory/discriminator.weights.h5  backbone + replaced-token head (ELECTRA objective only)
    directory/generator.weights.h5    generator backbone + MLM head (includes the embeddings it
                                      uses; absent for uniform_generator)
    Existing files are only replaced with ``overwrite=True``.

    Args:
      model: the trained ElectraPretrainer.
      directory: the folder to write (local or gs://); created if missing.
      overwrite: replace files already there instead of raising UserError.

    Returns:
      The directory: the string as given, or a pathlib.Path when given a path object.

    Example:

        result = electra_tf.pretraining.run_pretraining(options, config="electra_small")
        save_pretrained(result.model, "gs://my-bucket/electra_small/pretrained", overwrite=True)
        config, backbone = electra_tf.load_pretrained_backbone("gs://my-bucket/electra_small/pretrained")
    """
    # Strings and tf.io.gfile (electra_tf.fileio), so gs:// directories work: pathlib would turn
    # "gs://b/x" into the local "gs:/b/x".
    given, directory = directory, os.fspath(directory)
    networks = pretrained_networks(model)
    existing = [name for name in [CONFIG_FILE, *networks] if fileio.exists(fileio.join(directory, name))]
    if existing and not overwrite:
        raise UserError(
            f"{fileio.join(directory, existing[0])} already exists; choose another directory or pass overwrite=True"
        )
    write_pretrained_files(model.config, networks, directory)
    return given if isinstance(given, str) else pathlib.Path(directory)


def write_pretrained(model, directory: str, extra_files: Optional[Mapping] = None) -> None:
    """save_pretrained into a hidden sibling, then moved into place with config.json last.

    A kill leaves either no folder or (gs://, mid-copy) one without config.json, and a rerun
    writes it again: a leftover incomplete folder (such a kill's) is replaced, as are the
    temporary folders of interrupted saves; a complete one never is.

    Args:
      model: the trained ElectraPretrainer.
      directory: the pretrained/ folder to create.
      extra_files: {name in the folder: source path} copied in too (the vocabulary, as
        {VOCAB_FILE: path}).
    Raises:
      UserError: a complete folder is already there.
    """
    if fileio.exists(directory):
        if pretrained_is_complete(directory, model.config):
            raise UserError(f"{directory} already exists; use a new --model_dir")
        log(f"Removing the incomplete {directory} (a save that was interrupted)")
        fileio.rmtree(directory)
    fileio.remove_temporaries(directory)
    staging = fileio.temporary_name(directory)
    try:
        save_pretrained(model, staging)
        for name, source in (extra_files or {}).items():
            fileio.copy(source, os.path.join(staging, name))
        fileio.move_tree(staging, directory, commit_files=[CONFIG_FILE])
    finally:
        if fileio.exists(staging):
            fileio.rmtree(staging)


def copy_vocab(source_dir: str, destination: str, overwrite: bool = False) -> Optional[str]:
    """Copies ``source_dir``/vocab.txt into ``destination`` (atomically); returns the copy, or
    None when there is nothing to copy or ``destination`` has one and ``overwrite`` is off (an
    existing vocabulary is the user's)."""
    source = fileio.join(fileio.fspath(source_dir), VOCAB_FILE)
    if not fileio.isfile(source):
        return None
    target = fileio.join(fileio.fspath(destination), VOCAB_FILE)
    if fileio.exists(target) and not overwrite:
        return None
    fileio.write_bytes_atomic(target, fileio.read_bytes(source))
    return target


def tagging_settings(
    *,
    scheme: str,
    default_tag: str,
    tag_column: int,
    segment_id: int,
    span_rule: str = "conlleval",
    truncation: str = "score_all",
) -> dict:
    """head.json's "tagging" object."""
    return {
        "scheme": scheme,
        "default_tag": default_tag,
        "tag_column": tag_column,
        "segment_id": segment_id,
        "span_rule": span_rule,
        "truncation": truncation,
    }


def finetuned_head(
    model,
    task,
    max_seq_length: int,
    *,
    squad: Optional[dict] = None,
    tagging: Optional[dict] = None,
    extra: Optional[Mapping] = None,
) -> dict:
    """head.json for ``model`` fine-tuned on ``task`` (before the vocabulary fields, which
    ``save_finetuned`` adds with its copy).

    Args:
      model: the FinetuningModel (its head, num_labels, answerable, target_scale, span_head and
        beam_size are recorded).
      task: the finetuning_tasks task (name, is_pair, is_squad, is_regression, label_names).
      max_seq_length: the fine-tuning sequence length.
      squad: span heads: the SquadSettings fields and "null_threshold".
      tagging: tagging heads: ``tagging_settings(...)``.
      extra: further fields, merged last (token_classification.head_info's {"tagging": ...}).
    Returns:
      The head dict (validated).
    """
    head = {
        "task": task.name,
        "head": model.head,
        "num_labels": model.num_labels,
        "pair": bool(getattr(task, "is_pair", False)),
        "answerable": model.answerable,
        "target_scale": model.target_scale,
        "max_seq_length": max_seq_length,
        "label_names": None if task.is_squad or task.is_regression else list(task.label_names),
    }
    if model.head == "span":
        head.update(span_head=model.span_head, beam_size=model.beam_size, squad_version=task.version)
    if squad is not None:
        head["squad"] = squad
    if tagging is not None:
        head["tagging"] = tagging
    head.update(extra or {})
    return validate_head(head, "the head.json being written")


def save_finetuned(
    model, config, directory: str, head: Mapping, vocab_file: Optional[str] = None, replace: bool = False
) -> None:
    """Writes a finetuned/ folder under a temporary name and moves it into place with head.json
    (what readers look for) last, so a kill never leaves a finetuned/ that looks complete.

    Args:
      model: the trained FinetuningModel.
      config: its ElectraConfig.
      directory: the finetuned/ folder to create (it must not exist unless ``replace``).
      head: ``finetuned_head(...)``.
      vocab_file: the vocabulary it was trained with, copied in and recorded in head.json.
      replace: an existing ``directory`` is replaced, and deleted only once the new folder is
        complete (``fileio.move_tree(..., replace=True)``); the caller owns ``directory``, so
        temporary folders that killed saves of it left are deleted too.
    """
    # TensorFlow-heavy: only saving a fine-tuned model needs the vocabulary's hash.
    from electra_tf import tokenization

    if replace:
        fileio.remove_temporaries(directory)
    final, staging = directory, fileio.temporary_name(directory)
    try:
        fileio.makedirs(staging)
        # Keras writes a compiled model's optimizer slots too (3x the size); an uncompiled
        # copy keeps the file to the weights that prediction and export need.
        clean = build_finetuned_model(config, head, dropout_rate=config.hidden_dropout_prob)
        clean.set_weights(model.get_weights())
        clean.save_weights(os.path.join(staging, MODEL_WEIGHTS_FILE), overwrite=True)
        config.to_model_json_file(os.path.join(staging, CONFIG_FILE))
        head = dict(head)
        # Export rebuilds the tokenizer from these. The vocabulary travels inside finetuned/
        # (as in pretrained/), so moving or deleting the pretrained folder or the original
        # vocabulary breaks nothing; its sha256 and origin are kept for the record.
        if vocab_file:
            data = fileio.read_bytes(vocab_file)
            with fileio.open(os.path.join(staging, VOCAB_FILE), "wb") as handle:
                handle.write(data)
            head.update(
                vocab_file=VOCAB_FILE,
                vocab_source=fileio.abspath(vocab_file),
                vocab_sha256=tokenization.vocab_sha256(vocab_file),
                do_lower_case=config.do_lower_case,
            )
        with fileio.open(os.path.join(staging, HEAD_FILE), "w") as handle:
            json.dump(head, handle, indent=2)
        fileio.move_tree(staging, final, commit_files=[HEAD_FILE], replace=replace)
    finally:
        if fileio.exists(staging):
            fileio.rmtree(staging)
