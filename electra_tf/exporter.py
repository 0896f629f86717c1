"""The exporter: a model folder of this project -> a SavedModel version in TF Serving's layout.

``export(input_path, export_base)`` writes ``<export_base>/<version>/saved_model.pb`` (version a
positive integer, by default one above the highest there). ``resolve_source`` works out what a
folder holds (a fine-tuning trial or task folder via electra_tf.artifacts, or pretraining output)
and the vocabulary and sequence length to serve it with; ``build_serving_module`` loads its
network into the electra_tf.serving_modules module of its kind; ``save_serving_module`` writes
the version under a temporary name and moves it into place, with what was exported
(EXPORT_INFO_FILE) and the custom ops a server needs (CUSTOM_OPS_FILE) in its assets.extra/.
``run_export`` is ``python -m electra_tf.export``: its options, checked, then ``export``.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import uuid
from typing import Callable, Optional

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf import artifacts, fileio, squad, tokenization
from electra_tf.errors import UserError
from electra_tf.serving_modules import (
    DEFAULT_SIGNATURE,
    KINDS,
    SIGNATURES,
    ClassifierServingModule,
    DiscriminatorServingModule,
    EncoderServingModule,
    RegressorServingModule,
    SquadServingModule,
    TaggerServingModule,
    TextServingModule,
)

# ---------------------------------------------------------------------------------------------
# What to export


@dataclasses.dataclass
class ExportSource:
    """A model folder resolved: what it is and everything needed to serve it."""

    kind: str
    directory: str  # the finetuned/ or pretrained/ folder
    vocab_file: str
    do_lower_case: bool
    max_seq_length: int
    head: Optional[dict] = None  # fine-tuned models: head.json


_HEAD_TO_KIND = {"classification": "classifier", "regression": "regressor", "span": "squad", "tagging": "tagger"}


def _check_vocab(vocab_file: str, recorded_sha: Optional[str], recorded_path: Optional[str], vocab_size: int) -> str:
    if recorded_sha and tokenization.vocab_sha256(vocab_file) != recorded_sha:
        raise UserError(
            f"--vocab_file {vocab_file} is not the vocabulary the model was trained "
            f"with ({recorded_path}, sha256 {recorded_sha[:12]}...); pass that file"
        )
    size = len(tokenization.load_vocab(vocab_file))
    if size > vocab_size:
        raise UserError(
            f"--vocab_file {vocab_file} has {size} tokens but the model's vocab_size "
            f"is {vocab_size}; pass the vocabulary the model was pretrained with"
        )
    return vocab_file


def resolve_source(
    path: str, kind: Optional[str] = None, vocab_file: Optional[str] = None, max_seq_length: Optional[int] = None
) -> ExportSource:
    """What ``path`` holds: a fine-tuning trial (its finetuned/ folder, the trial folder, or a
    task folder, meaning its median trial), or pretraining output (run_pretraining's model_dir
    or its pretrained/ folder). Raises UserError naming the flag to fix."""
    if not path or not fileio.isdir(path):
        raise UserError(
            f"--input {path}: not a directory; give a fine-tuning trial's finetuned/ "
            "folder (or its task folder) or a run_pretraining --model_dir"
        )
    if kind is not None and kind not in KINDS:
        raise UserError(f"--kind={kind}: must be one of {', '.join(KINDS)}")
    finetuned = artifacts.find_finetuned(path, flag=f"--input {path}")
    if finetuned is not None:
        head = artifacts.check_finetuned(finetuned)
        config = artifacts.read_config(finetuned)
        found_kind = _HEAD_TO_KIND[head["head"]]
        if kind not in (None, found_kind):
            raise UserError(
                f"--kind={kind}: {finetuned} holds a fine-tuned {found_kind} "
                f"({head['task']}); drop --kind or pass --kind={found_kind}"
            )
        recorded = artifacts.finetuned_vocab(finetuned, head)
        if vocab_file is None:
            if recorded is None:
                raise UserError(
                    f"{finetuned}/{artifacts.HEAD_FILE} does not record the "
                    "vocabulary; pass --vocab_file (the one it was fine-tuned with)"
                )
            if not fileio.isfile(recorded):
                raise UserError(
                    f"{recorded} (the vocabulary {finetuned} was fine-tuned with) "
                    "is missing; pass --vocab_file with a copy of it"
                )
            vocab_file = recorded
        vocab_file = _check_vocab(vocab_file, head.get("vocab_sha256"), recorded, config.vocab_size)
        length = max_seq_length or head["max_seq_length"]
        source = ExportSource(
            found_kind, finetuned, vocab_file, head.get("do_lower_case", config.do_lower_case), length, head
        )
    else:
        pretrained = artifacts.find_pretrained(path)
        if pretrained is None:
            raise UserError(
                f"--input {path}: no fine-tuned model (head.json) or pretrained "
                f"model (config.json + backbone.weights.h5, or pretrained/ with "
                "them) found there"
            )
        config = artifacts.read_config(pretrained)
        # The paper's MLM ablations train a discriminator-sized masked LM: only its encoder has
        # a serving form here.
        has_discriminator = config.discriminator_task == "detection" and fileio.isfile(
            os.path.join(pretrained, artifacts.DISCRIMINATOR_WEIGHTS_FILE)
        )
        if kind is None:
            if has_discriminator:
                raise UserError(
                    f"--input {pretrained} is a pretrained model: pass "
                    "--kind=discriminator (replaced-token probabilities) or "
                    "--kind=encoder (vectors)"
                )
            kind = "encoder"
        if kind not in ("discriminator", "encoder"):
            raise UserError(
                f"--kind={kind}: {pretrained} is a pretrained model, export it as "
                "--kind=discriminator or --kind=encoder (fine-tune it first for "
                f"{kind})"
            )
        if kind == "discriminator" and not has_discriminator:
            raise UserError(
                f"--kind=discriminator: {pretrained} has no "
                "replaced-token detector (trained without the ELECTRA objective or "
                f"with discriminator_task {config.discriminator_task}); use "
                "--kind=encoder"
            )
        if vocab_file is None:
            # Converted released checkpoints carry their vocab.txt; run_pretraining's output
            # does not (its data's manifest.json names the vocabulary).
            beside = artifacts.pretrained_vocab(pretrained)
            if beside is None:
                raise UserError(
                    "--vocab_file is required for a pretrained model (the "
                    "vocabulary its pretraining data was built with, recorded in "
                    "that data's manifest.json)"
                )
            vocab_file = beside
        vocab_file = _check_vocab(vocab_file, None, None, config.vocab_size)
        source = ExportSource(
            kind, pretrained, vocab_file, config.do_lower_case, max_seq_length or config.max_seq_length
        )
    if source.max_seq_length < 3 or source.max_seq_length > config.max_position_embeddings:
        raise UserError(
            f"--max_seq_length={source.max_seq_length}: must be between 3 and the "
            f"model's max_position_embeddings {config.max_position_embeddings}"
        )
    return source


def build_serving_module(source: ExportSource) -> TextServingModule:
    """Loads the Keras network of ``source`` and wraps it with its tokenizer and signatures."""
    # Keras-heavy: resolving and checking a source (every flag error) needs no model code.
    from electra_tf import modeling

    tokenizer = tokenization.Tokenizer(source.vocab_file, do_lower_case=source.do_lower_case)
    if source.kind == "encoder":
        _, backbone = modeling.load_pretrained_backbone(source.directory)
        return EncoderServingModule(backbone, tokenizer, source.max_seq_length)
    if source.kind == "discriminator":
        _, discriminator = modeling.load_pretrained_discriminator(source.directory)
        return DiscriminatorServingModule(discriminator, tokenizer, source.max_seq_length)
    head, model = artifacts.load_finetuned(source.directory)
    if source.kind == "squad":
        recorded = dict(head.get("squad") or {})
        null_threshold = recorded.pop("null_threshold", None)
        # A 1.1 model's answerability head (--squad_v1_answerable_head) is not used to decode.
        is_v2 = head.get("answerable") and head.get("squad_version", "2.0") == "2.0"
        if is_v2 and null_threshold is None:
            raise UserError(
                f"{source.directory}/{artifacts.HEAD_FILE}: a SQuAD 2.0 model without a "
                "recorded null_threshold; re-run fine-tuning to record it"
            )
        known = {field.name for field in dataclasses.fields(squad.SquadSettings)}
        # The window length is the export's (--max_seq_length may shorten it), not fine-tuning's.
        recorded["max_seq_length"] = source.max_seq_length
        settings = squad.SquadSettings(**{k: v for k, v in recorded.items() if k in known})
        return SquadServingModule(model, tokenizer, settings, null_threshold)
    if source.kind == "tagger":
        tagging = head.get("tagging") or {}
        return TaggerServingModule(
            model,
            tokenizer,
            source.max_seq_length,
            head["label_names"],
            tagging.get("scheme", "file"),
            tagging.get("default_tag", "O"),
            tagging.get("segment_id", 0),
        )
    # read_head fills in a GLUE task's own for folders written before head.json recorded it.
    is_pair = head["pair"]
    if source.kind == "regressor":
        return RegressorServingModule(model, tokenizer, source.max_seq_length, is_pair)
    label_names = head.get("label_names") or [str(i) for i in range(head["num_labels"])]
    return ClassifierServingModule(model, tokenizer, source.max_seq_length, label_names, is_pair)


# ---------------------------------------------------------------------------------------------
# Writing TF Serving's layout

_VERSION_DIR = re.compile(r"^[0-9]+$")


def existing_versions(export_base: str) -> list[int]:
    """The TF Serving versions (positive integer folder names) in ``export_base``, ascending;
    [] for a missing folder."""
    if not fileio.isdir(export_base):
        return []
    return sorted(int(name) for name in fileio.listdir(export_base) if _VERSION_DIR.match(name) and int(name) > 0)


# Written beside each SavedModel (TF Serving ignores assets.extra/ apart from warm-up files):
# what was exported from where, so a later export can refuse to change a base's kind.
EXPORT_INFO_FILE = os.path.join("assets.extra", "electra_tf_export.json")


def export_info(version_dir: str) -> Optional[dict]:
    """The EXPORT_INFO_FILE of a version folder (kind, source, task, vocab_sha256, signatures,
    custom_ops, ...), or None for a SavedModel this exporter did not write."""
    path = os.path.join(version_dir, EXPORT_INFO_FILE)
    if not fileio.isfile(path):
        return None
    return fileio.read_json(path)


def check_same_kind(export_base: str, kind: str) -> None:
    """Refuses to add a ``kind`` version to a base whose newest version is another kind:
    TF Serving would switch every client to signatures they do not send."""
    versions = existing_versions(export_base)
    if not versions:
        return
    newest = os.path.join(export_base, str(versions[-1]))
    info = export_info(newest)
    if info is not None and info.get("kind") != kind:
        raise UserError(
            f"{newest} holds a model of kind {info.get('kind')}, not {kind}; TF "
            "Serving serves the newest version, so use another --export_base"
        )


# TF Serving and saved_model_cli have TensorFlow's own ops only unless built or started with
# these; the file names what a server must provide (see the README's TF Serving section).
CUSTOM_OPS_FILE = os.path.join("assets.extra", "custom_ops.json")
_TEXT_OPS: Optional[dict] = None


def tensorflow_text_ops() -> dict:
    """{op name: file name of the tensorflow-text op library that registers it}."""
    global _TEXT_OPS
    if _TEXT_OPS is None:
        # Private TensorFlow modules (their paths move between releases): imported only when
        # an export is written, so a moved path cannot break importing this module.
        from tensorflow.core.framework import op_def_pb2
        from tensorflow.python.client import pywrap_tf_session

        found = {}
        library_dir = os.path.join(os.path.dirname(tf_text.__file__), "python", "ops")
        for library in sorted(glob.glob(os.path.join(library_dir, "_*.so"))):
            handle = pywrap_tf_session.TF_LoadLibrary(library)
            try:
                ops = op_def_pb2.OpList()
                ops.ParseFromString(bytes(pywrap_tf_session.TF_GetOpList(handle)))
            finally:
                pywrap_tf_session.TF_DeleteLibraryHandle(handle)
            found.update((op.name, os.path.basename(library)) for op in ops.op)
        _TEXT_OPS = found
    return _TEXT_OPS


def custom_ops(saved_model_dir: str) -> dict:
    """The ops of a SavedModel that core TensorFlow lacks: {"tensorflow-text": {"version",
    "ops": {op: library}}}, from its graph and every function in it."""
    from tensorflow.core.protobuf import saved_model_pb2  # private path, as above

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(fileio.read_bytes(os.path.join(saved_model_dir, "saved_model.pb")))
    used = set()
    for meta_graph in saved_model.meta_graphs:
        used.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            used.update(node.op for node in function.node_def)
    text_ops = tensorflow_text_ops()
    needed = {op: text_ops[op] for op in sorted(used) if op in text_ops}
    return {"tensorflow-text": {"version": tf_text.__version__, "ops": needed}} if needed else {}


def save_serving_module(
    module: TextServingModule,
    export_base: str,
    version: Optional[int] = None,
    overwrite: bool = False,
    info: Optional[dict] = None,
) -> str:
    """Writes ``module`` as <export_base>/<version>/ (default: one above the highest version),
    with ``info`` (JSON) in its EXPORT_INFO_FILE and the custom ops it needs in CUSTOM_OPS_FILE.

    The SavedModel is written beside it under a name TF Serving ignores and moved into place
    (fileio.move_tree: one rename locally; on gs:// saved_model.pb is the last object copied),
    so a server watching export_base never loads a half-written version. An existing version is
    only replaced with ``overwrite``. Returns the version directory.
    """
    if version is None:
        version = (existing_versions(export_base) or [0])[-1] + 1
    if version < 1:
        raise UserError(f"--version={version}: TF Serving versions are positive integers")
    target = os.path.join(export_base, str(version))
    if fileio.exists(target) and not overwrite:
        raise UserError(
            f"{target} already exists; pass --overwrite to replace it or omit --version to write the next version"
        )
    fileio.makedirs(export_base)
    staging = os.path.join(export_base, f".writing-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        ops = custom_ops(staging)
        fileio.makedirs(os.path.join(staging, "assets.extra"))
        fileio.write_json_atomic(os.path.join(staging, CUSTOM_OPS_FILE), ops)
        fileio.write_json_atomic(
            os.path.join(staging, EXPORT_INFO_FILE), dict(info or {}, kind=module.kind, version=version, custom_ops=ops)
        )
        if fileio.exists(target):
            fileio.rmtree(target)
        fileio.move_tree(staging, target, commit_files=["saved_model.pb"])
    finally:
        if fileio.exists(staging):
            fileio.rmtree(staging)
    return target


def export(
    input_path: str,
    export_base: str,
    *,
    kind: Optional[str] = None,
    vocab_file: Optional[str] = None,
    max_seq_length: Optional[int] = None,
    version: Optional[int] = None,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[str, ExportSource]:
    """resolve_source + build_serving_module + save_serving_module; returns (version dir,
    source). A version that exists is refused before any model is loaded.

    Args:
      input_path: a trial's finetuned/ folder, its trial or task folder, or a run_pretraining
        model_dir (or its pretrained/ folder).
      export_base: TF Serving's model base path; the SavedModel goes to <export_base>/<version>/.
      kind: "discriminator" or "encoder" for pretrained models; fine-tuned ones read it from
        head.json (giving it only checks it).
      vocab_file: the WordPiece vocabulary, when the model folder does not record one.
      max_seq_length: the longest packed sequence (default: the model's).
      version: the version number (default: one above the highest existing, 1 for a new base).
      overwrite: replace an existing ``version``.
      log: called with each progress line.

    Returns:
      (the version directory written, the resolved ExportSource).

    Raises:
      UserError: a bad version, an existing version without ``overwrite``, a kind that differs
        from the base's other versions, or a model folder that cannot be resolved.

    Example:

        version_dir, source = export("finetune_out/rte", "serving/rte", log=print)
        # version_dir "serving/rte/1"; load it with tf.compat.v1.saved_model.loader.load or serve it
    """
    if version is not None and version < 1:
        raise UserError(f"--version={version}: TF Serving versions are positive integers")
    if version is not None and fileio.exists(os.path.join(export_base, str(version))) and not overwrite:
        raise UserError(
            f"{os.path.join(export_base, str(version))} already exists; pass "
            "--overwrite to replace it or omit --version to write the next version"
        )
    source = resolve_source(input_path, kind, vocab_file, max_seq_length)
    check_same_kind(export_base, source.kind)
    log(
        f"Loading the {source.kind} in {source.directory} (vocabulary {source.vocab_file}, "
        f"max_seq_length {source.max_seq_length})"
    )
    module = build_serving_module(source)
    log(f"Tracing its signatures and writing the SavedModel under {export_base}")
    info = {
        "source": fileio.abspath(source.directory),
        "task": (source.head or {}).get("task"),
        "vocab_sha256": tokenization.vocab_sha256(source.vocab_file),
        "do_lower_case": source.do_lower_case,
        "max_seq_length": source.max_seq_length,
        "signatures": sorted(set(SIGNATURES[source.kind]) | {DEFAULT_SIGNATURE}),
    }
    return save_serving_module(module, export_base, version, overwrite, info), source


@dataclasses.dataclass
class ExportOptions:
    """What ``python -m electra_tf.export`` exports; the fields mirror its flags (see export())."""

    input: Optional[str]
    export_base: Optional[str]
    kind: Optional[str] = None
    vocab_file: Optional[str] = None
    max_seq_length: Optional[int] = None
    version: Optional[int] = None
    overwrite: bool = False


def run_export(options: ExportOptions, log: Callable[[str], None] = lambda message: None) -> tuple[str, ExportSource]:
    """The command's work: checks the required options, exports, and logs what was written.

    Args:
      options: the model folder, the TF Serving base folder and the export's settings.
      log: called with each progress line (the command passes electra_tf.progress.log).

    Returns:
      (the version directory written, the resolved ExportSource).

    Raises UserError naming the flag to fix.
    """
    if not options.input:
        raise UserError(
            "--input is required: a fine-tuning trial's finetuned/ folder (or the "
            "task folder) or a run_pretraining --model_dir"
        )
    if not options.export_base:
        raise UserError("--export_base is required: the folder TF Serving serves (versions are written inside it)")
    target, source = export(
        options.input,
        options.export_base,
        kind=options.kind,
        vocab_file=options.vocab_file,
        max_seq_length=options.max_seq_length,
        version=options.version,
        overwrite=options.overwrite,
        log=log,
    )
    names = sorted(set(SIGNATURES[source.kind]) | {DEFAULT_SIGNATURE})
    log(f"Exported the {source.kind} to {target} (signatures: {', '.join(names)})")
    return target, source
