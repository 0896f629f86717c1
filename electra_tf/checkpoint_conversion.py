"""ELECTRA weights between three homes: Google's reference checkpoints, Hugging Face, electra_tf.

Every variable has one name in each format; ``variable_table(config)`` is the single table that
relates them (and the shapes the config implies). The in-memory form a conversion passes through
is :class:`ElectraWeights`: the config plus numpy arrays keyed by the Keras variable path of
``ElectraPretrainer`` (kernels [in, out]).

    electra_tf (Keras path)              official (TF1 checkpoint)
                                         Hugging Face
    electra/embeddings/word_embeddings   electra/embeddings/word_embeddings
                                         electra.embeddings.word_embeddings.weight
    electra/layer_{i}/query/kernel       electra/encoder/layer_{i}/attention/self/query/kernel
                                         electra.encoder.layer.{i}.attention.self.query.weight (transposed)
    discriminator_predictions/dense_1    discriminator_predictions/dense_1
                                         discriminator_predictions.dense_prediction
    generator/layer_{i}/...              generator/encoder/layer_{i}/...
                                         (generator model) electra.encoder.layer.{i}...
    generator_predictions/output_bias    generator_predictions/output_bias
                                         (generator model) generator_lm_head.bias

Variables fall in parts: ``embeddings`` (shared), ``discriminator`` (its projection and
layers), ``discriminator_head``, ``generator`` (its own embeddings when untied, projection,
layers) and ``generator_head``. A source may hold a subset (a fine-tuned reference checkpoint
has only the discriminator's encoder; a Hugging Face discriminator has no generator), but never
half a part: that is reported as the first missing variable.

Readers: :func:`read_official`, :func:`read_huggingface`, :func:`read_electra_tf`.
Writers: :func:`write_official`, :func:`write_huggingface`, :func:`write_electra_tf`.
Downloaded files are untrusted: safetensors is parsed by the safetensors package (no PyTorch,
no pickle) and ``pytorch_model.bin`` is only opened with PyTorch's weights-only unpickler.

Every path (inputs and --output_dir) goes through electra_tf.fileio, so gs:// or any other
TensorFlow file system works like a local folder. Writers build their files in a hidden sibling
folder and move them into place one by one, each folder's commit file (config.json, the
checkpoint's .index and 'checkpoint') last: a reader never finds a converted model half written.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
from typing import Callable, Iterable, Mapping, Optional

import numpy as np

from electra_tf import artifacts, fileio
from electra_tf.config import SIZE_KEYS, ElectraConfig
from electra_tf.errors import UserError
from electra_tf.progress import ProgressReporter

# TensorFlow, the Keras model code (pretraining_objective), safetensors and the optional torch are
# imported in the functions that use them: convert_checkpoint's flag checks and format probes stay
# fast, and a conversion loads only what its formats need.

PARTS = ("embeddings", "discriminator", "discriminator_head", "generator", "generator_head")

# Per encoder layer: Keras path suffix, reference suffix, Hugging Face suffix.
_LAYER_VARIABLES = (
    ("query/kernel", "attention/self/query/kernel", "attention.self.query.weight"),
    ("query/bias", "attention/self/query/bias", "attention.self.query.bias"),
    ("key/kernel", "attention/self/key/kernel", "attention.self.key.weight"),
    ("key/bias", "attention/self/key/bias", "attention.self.key.bias"),
    ("value/kernel", "attention/self/value/kernel", "attention.self.value.weight"),
    ("value/bias", "attention/self/value/bias", "attention.self.value.bias"),
    ("attention_output/kernel", "attention/output/dense/kernel", "attention.output.dense.weight"),
    ("attention_output/bias", "attention/output/dense/bias", "attention.output.dense.bias"),
    ("attention_LayerNorm/gamma", "attention/output/LayerNorm/gamma", "attention.output.LayerNorm.weight"),
    ("attention_LayerNorm/beta", "attention/output/LayerNorm/beta", "attention.output.LayerNorm.bias"),
    ("intermediate/kernel", "intermediate/dense/kernel", "intermediate.dense.weight"),
    ("intermediate/bias", "intermediate/dense/bias", "intermediate.dense.bias"),
    ("output/kernel", "output/dense/kernel", "output.dense.weight"),
    ("output/bias", "output/dense/bias", "output.dense.bias"),
    ("output_LayerNorm/gamma", "output/LayerNorm/gamma", "output.LayerNorm.weight"),
    ("output_LayerNorm/beta", "output/LayerNorm/beta", "output.LayerNorm.bias"),
)

# Buffers Hugging Face may store that are not weights.
_HF_BUFFERS = ("electra.embeddings.position_ids", "electra.embeddings.token_type_ids")
# Top-level modules of Hugging Face's fine-tuning heads: skipped and reported, like the
# reference's task_specific/ scope.
_HF_TASK_HEADS = ("classifier.", "qa_outputs.", "sequence_summary.")
HF_TIED_LM_HEAD = "generator_lm_head.weight"

HF_CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
OFFICIAL_CHECKPOINT_NAME = "model.ckpt"
# Written next to an exported reference checkpoint, so converting it back needs no --config.
OFFICIAL_CONFIG_FILE = "electra_tf_config.json"


@dataclasses.dataclass(frozen=True)
class VariableName:
    """One variable in every format. ``shape`` is the Keras/reference shape (kernels [in, out]);
    Hugging Face stores kernels transposed. ``huggingface`` lists (model, name) pairs: the
    shared embeddings appear in both the "discriminator" and the "generator" model."""

    keras: str
    official: str
    shape: tuple[int, ...]
    part: str
    huggingface: tuple[tuple[str, str], ...]

    @property
    def is_kernel(self) -> bool:
        """True for a dense kernel, the variables Hugging Face stores transposed."""
        return self.keras.endswith("/kernel")


def _has_discriminator(config: ElectraConfig) -> bool:
    return config.electra_objective


def _has_generator(config: ElectraConfig) -> bool:
    return not (config.electra_objective and config.uniform_generator)


def _untied_generator_embeddings(config: ElectraConfig) -> bool:
    return config.electra_objective and config.untied_generator_embeddings


def variable_table(config: ElectraConfig) -> list[VariableName]:
    """Every variable of ``ElectraPretrainer(config)`` with its names and shape."""
    if config.discriminator_task != "detection":
        raise UserError(
            f"discriminator_task {config.discriminator_task} is one of the paper's "
            "ablations, which have no released (official or Hugging Face) form; "
            "fine-tune or export its encoder instead"
        )
    table: list[VariableName] = []

    def add(keras_path, official, shape, part, hf_models, hf_name):
        table.append(
            VariableName(
                keras_path, official, tuple(int(d) for d in shape), part, tuple((model, hf_name) for model in hf_models)
            )
        )

    def embeddings(scope, width, part, hf_models):
        for keras_name, hf_name, rows in (
            ("word_embeddings", "word_embeddings.weight", config.vocab_size),
            ("position_embeddings", "position_embeddings.weight", config.max_position_embeddings),
            ("token_type_embeddings", "token_type_embeddings.weight", config.type_vocab_size),
        ):
            add(
                f"{scope}/embeddings/{keras_name}",
                f"{scope}/embeddings/{keras_name}",
                (rows, width),
                part,
                hf_models,
                f"electra.embeddings.{hf_name}",
            )
        for keras_name, hf_name in (("gamma", "weight"), ("beta", "bias")):
            add(
                f"{scope}/embeddings/LayerNorm/{keras_name}",
                f"{scope}/embeddings/LayerNorm/{keras_name}",
                (width,),
                part,
                hf_models,
                f"electra.embeddings.LayerNorm.{hf_name}",
            )

    def encoder(scope, width, hidden, intermediate, layers, part, hf_model):
        if width != hidden:
            add(
                f"{scope}/embeddings_project/kernel",
                f"{scope}/embeddings_project/kernel",
                (width, hidden),
                part,
                [hf_model],
                "electra.embeddings_project.weight",
            )
            add(
                f"{scope}/embeddings_project/bias",
                f"{scope}/embeddings_project/bias",
                (hidden,),
                part,
                [hf_model],
                "electra.embeddings_project.bias",
            )
        shapes = {
            "query": (hidden, hidden),
            "key": (hidden, hidden),
            "value": (hidden, hidden),
            "attention_output": (hidden, hidden),
            "attention_LayerNorm": (hidden,),
            "intermediate": (hidden, intermediate),
            "output": (intermediate, hidden),
            "output_LayerNorm": (hidden,),
        }
        for index in range(layers):
            for keras_suffix, official_suffix, hf_suffix in _LAYER_VARIABLES:
                layer, kind = keras_suffix.split("/")
                shape = shapes[layer] if kind in ("kernel", "gamma", "beta") else (shapes[layer][-1],)
                add(
                    f"{scope}/layer_{index}/{keras_suffix}",
                    f"{scope}/encoder/layer_{index}/{official_suffix}",
                    shape,
                    part,
                    [hf_model],
                    f"electra.encoder.layer.{index}.{hf_suffix}",
                )

    has_generator = _has_generator(config)
    untied = _untied_generator_embeddings(config)
    shared_users = (["discriminator"] if _has_discriminator(config) else []) + (
        ["generator"] if has_generator and not untied else []
    )
    embeddings("electra", config.embedding_size, "embeddings", shared_users)

    if _has_discriminator(config):
        hidden = config.hidden_size
        encoder(
            "electra",
            config.embedding_size,
            hidden,
            config.intermediate_size,
            config.num_hidden_layers,
            "discriminator",
            "discriminator",
        )
        for keras_name, hf_name, shape in (
            ("dense/kernel", "dense.weight", (hidden, hidden)),
            ("dense/bias", "dense.bias", (hidden,)),
            ("dense_1/kernel", "dense_prediction.weight", (hidden, 1)),
            ("dense_1/bias", "dense_prediction.bias", (1,)),
        ):
            name = f"discriminator_predictions/{keras_name}"
            add(name, name, shape, "discriminator_head", ["discriminator"], f"discriminator_predictions.{hf_name}")

    if has_generator:
        # Without the ELECTRA objective the masked LM is the full-size model, kept under the
        # discriminator's scope "electra" as in the reference.
        scope = "generator" if config.electra_objective else "electra"
        width = config.generator_embedding_size
        hidden = config.generator_hidden
        if untied:
            embeddings("generator", width, "generator", ["generator"])
        encoder(
            scope,
            width,
            hidden,
            config.generator_intermediate_size,
            config.generator_num_hidden_layers,
            "generator",
            "generator",
        )
        for keras_name, hf_name, shape in (
            ("dense/kernel", "generator_predictions.dense.weight", (hidden, width)),
            ("dense/bias", "generator_predictions.dense.bias", (width,)),
            ("LayerNorm/gamma", "generator_predictions.LayerNorm.weight", (width,)),
            ("LayerNorm/beta", "generator_predictions.LayerNorm.bias", (width,)),
            ("output_bias", "generator_lm_head.bias", (config.vocab_size,)),
        ):
            add(
                f"generator_predictions/{keras_name}",
                f"generator_predictions/{keras_name}",
                shape,
                "generator_head",
                ["generator"],
                hf_name,
            )
    return table


@dataclasses.dataclass
class ElectraWeights:
    """A model in transit: its config and arrays keyed by Keras path (Keras/reference layout).

    ``parts`` says which of PARTS are present; ``skipped`` counts what the reader left out
    (optimizer slots, global_step, task heads) by kind, for the report.
    """

    config: ElectraConfig
    arrays: dict[str, np.ndarray]
    parts: frozenset
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    source: str = ""
    # A fine-tuned model's task head, or None: head.json's facts ("head", "task", "num_labels",
    # "label_names", "target_scale", ...) plus its output dense "kernel" [H, outputs] and "bias"
    # (None for a span layout other than the independent one). See _hf_task_head.
    task_head: Optional[dict] = None

    def summary(self) -> str:
        """One line for the log: the variable count, the parts present, the source and what was skipped."""
        skipped = ", ".join(f"{count} {kind}" for kind, count in self.skipped.items() if count)
        parts = ", ".join(part for part in PARTS if part in self.parts)
        text = f"{len(self.arrays)} variables ({parts}) from {self.source}"
        return text + (f"; skipped {skipped}" if skipped else "")


# ---------------------------------------------------------------------------------------------
# Matching what a file holds against what the config implies.


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _config_hint(name: str) -> str:
    if name.startswith("generator"):
        return (
            "check the generator sizes in --config/--hparams (generator_hidden_size, "
            "generator_layers, untied_generator_embeddings)"
        )
    return (
        "check the model sizes in --config/--hparams (vocab_size, embedding_size, "
        "hidden_size, num_hidden_layers, intermediate_size)"
    )


def _map_found(
    found: Mapping[str, np.ndarray], expected: Mapping[str, VariableName], transposed: bool, source: str
) -> dict[str, np.ndarray]:
    """Checks every found tensor is expected, with the config's shape -> {keras path: array}."""
    arrays = {}
    for name in found:
        if name not in expected:
            raise UserError(
                f"{source}: unexpected variable {name} {_shape_text(np.shape(found[name]))} that "
                f"the config has no place for; {_config_hint(name)}"
            )
    for name, array in found.items():
        variable = expected[name]
        array = np.asarray(array)
        want = tuple(reversed(variable.shape)) if transposed and variable.is_kernel else (variable.shape)
        if tuple(array.shape) != want:
            raise UserError(
                f"{source}: variable {name} has shape {_shape_text(array.shape)} but the config "
                f"expects {_shape_text(want)}; {_config_hint(name)}"
            )
        if transposed and variable.is_kernel:
            array = array.T
        arrays[variable.keras] = np.ascontiguousarray(array, dtype=np.float32)
    return arrays


def _present_parts(
    config: ElectraConfig,
    arrays: Mapping[str, np.ndarray],
    source: str,
    display_name: Callable[[VariableName], str],
    transposed: bool = False,
) -> frozenset:
    """The parts present in full; a part present in part is a missing-variable error."""
    by_part: dict[str, list[VariableName]] = {}
    for variable in variable_table(config):
        by_part.setdefault(variable.part, []).append(variable)

    def missing(variable: VariableName, why: str) -> UserError:
        shape = tuple(reversed(variable.shape)) if transposed and variable.is_kernel else (variable.shape)
        return UserError(
            f"{source}: missing variable {display_name(variable)} (the config "
            f"expects shape {_shape_text(shape)}){why}; "
            f"{_config_hint(variable.keras)}"
        )

    present = set()
    for part, variables in by_part.items():
        have = [variable.keras in arrays for variable in variables]
        if all(have):
            present.add(part)
        elif any(have):
            raise missing(variables[have.index(False)], "")
    for part, needs in (
        ("discriminator_head", "discriminator"),
        ("generator_head", "generator"),
        ("generator", "generator_head"),
    ):
        if part in present and needs not in present:
            raise missing(by_part[needs][0], f", which {part} needs")
    if present and "embeddings" not in present:
        raise missing(by_part["embeddings"][0], "")
    if _has_discriminator(config) and "discriminator" not in present and present:
        raise missing(
            by_part["discriminator"][0],
            " (the ELECTRA objective keeps the discriminator; for a generator alone set electra_objective=false)",
        )
    if not present - {"embeddings"}:
        raise UserError(
            f"{source}: holds no ELECTRA encoder variables (looked for "
            f"{display_name(by_part['embeddings'][0])} and the encoder layers)"
        )
    return frozenset(present)


# ---------------------------------------------------------------------------------------------
# Google's reference checkpoints (TF1 name-based).


def _skip_kind(name: str) -> Optional[str]:
    """Why a reference checkpoint variable is not part of the model, or None."""
    if name.endswith(("/adam_m", "/adam_v")):
        return "optimizer slots"
    if name == "global_step":
        return "global_step"
    if name.startswith("task_specific/"):
        return "task_specific head variables"
    return None


def _official_size_hint(shapes: Mapping[str, list], config: ElectraConfig, name: str) -> str:
    """The config keys (as --hparams) that would fit the checkpoint's shapes, where they can be
    read off them; attention heads cannot, so a changed hidden size names the usual H/64."""

    def dimension(variable: str, axis: int) -> Optional[int]:
        shape = shapes.get(variable)
        return int(shape[axis]) if shape is not None and len(shape) > axis else None

    def depth(scope: str) -> int:
        prefix = f"{scope}/encoder/layer_"
        return len({n[len(prefix) :].split("/")[0] for n in shapes if n.startswith(prefix)})

    query = "{}/encoder/layer_0/attention/self/query/kernel"
    found = {
        "vocab_size": dimension("electra/embeddings/word_embeddings", 0),
        "embedding_size": dimension("electra/embeddings/word_embeddings", 1),
        "hidden_size": dimension(query.format("electra"), 1),
        "num_hidden_layers": depth("electra") or None,
        "intermediate_size": dimension("electra/encoder/layer_0/intermediate/dense/kernel", 1),
        "max_position_embeddings": dimension("electra/embeddings/position_embeddings", 0),
    }
    hidden = found["hidden_size"] or config.hidden_size
    generator_hidden = dimension(query.format("generator"), 1)
    if generator_hidden and config.electra_objective:
        found["generator_hidden_size"] = round(generator_hidden / hidden, 6)
        found["generator_layers"] = round(
            depth("generator") / (found["num_hidden_layers"] or config.num_hidden_layers), 6
        )
        if "generator/embeddings/word_embeddings" in shapes:
            found["untied_generator_embeddings"] = True
    changes = {}
    for key, value in found.items():
        current = getattr(config, key)
        if value is not None and value != current and not (isinstance(current, float) and abs(current - value) < 1e-5):
            changes[key] = value
    heads_note = ""
    if found["hidden_size"] and found["hidden_size"] != config.hidden_size:
        changes["num_attention_heads"] = max(1, found["hidden_size"] // 64)
        heads_note = " (the usual hidden/64 heads: the shapes do not tell, check it)"
    if not changes:
        return _config_hint(name)
    return f"the checkpoint's shapes fit --hparams='{json.dumps(changes)}' on top of this config{heads_note}"


def resolve_official_checkpoint(path: str | os.PathLike) -> str:
    """A checkpoint prefix from a prefix, a .index/.data file, or a directory holding one."""
    import tensorflow as tf

    text = fileio.fspath(path).rstrip("/")
    # The prefix first: ram:// calls "x/model.ckpt" a folder when "x/model.ckpt.index" exists.
    if fileio.isfile(text + ".index"):
        return text
    if fileio.isdir(text):
        latest = tf.train.latest_checkpoint(text)
        if latest:
            return latest
        indexes = fileio.glob(fileio.join(text, "*.index"))
        if len(indexes) == 1:
            return indexes[0][: -len(".index")]
        raise UserError(
            f"{text}: directory holds {len(indexes)} checkpoints (*.index) and no "
            "'checkpoint' file; pass --checkpoint=<dir>/<name> (the path without "
            ".index)"
        )
    if text.endswith(".index"):
        text = text[: -len(".index")]
    elif ".data-" in os.path.basename(text):
        text = text[: text.rindex(".data-")]
    if not fileio.isfile(text + ".index"):
        raise UserError(
            f"{path}: no TensorFlow checkpoint there ({text}.index not found); pass "
            "the checkpoint prefix, e.g. electra_small/electra_small or "
            "model.ckpt-1000000"
        )
    return text


def read_official(checkpoint: str | os.PathLike, config: ElectraConfig) -> ElectraWeights:
    """Reads a reference (TF1 name-based) checkpoint; Adam slots, global_step and task_specific
    heads are skipped and counted. Every other variable must be one the config implies."""
    import tensorflow as tf

    prefix = resolve_official_checkpoint(checkpoint)
    try:
        # Not tf.train.load_checkpoint, which takes a ram:// prefix for a folder (see above).
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{prefix}: not a readable TensorFlow checkpoint ({message})") from None
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes or any("/.ATTRIBUTES/" in n for n in shapes):
        raise UserError(
            f"{prefix}: this is a TF2 object-based checkpoint (e.g. a run_pretraining "
            "training checkpoint), not a reference name-based one; use the "
            "pretrained/ directory with --from electra_tf"
        )
    skipped: dict[str, int] = {}
    names = []
    for name in sorted(shapes):
        kind = _skip_kind(name)
        if kind:
            skipped[kind] = skipped.get(kind, 0) + 1
        else:
            names.append(name)
    table = variable_table(config)
    expected = {variable.official: variable for variable in table}
    for name in names:  # shapes first: cheaper than reading tensors, and the clearer error
        if name not in expected:
            raise UserError(
                f"{prefix}: unexpected variable {name} {_shape_text(shapes[name])} that the "
                f"config has no place for; {_official_size_hint(shapes, config, name)}"
            )
        if tuple(shapes[name]) != expected[name].shape:
            raise UserError(
                f"{prefix}: variable {name} has shape {_shape_text(shapes[name])} but the config "
                f"expects {_shape_text(expected[name].shape)}; "
                f"{_official_size_hint(shapes, config, name)}"
            )
    progress = ProgressReporter(name="read checkpoint", total=len(names), total_key="variables")
    found = {}
    for name in names:
        found[name] = reader.get_tensor(name)
        progress.update(variables=1)
    arrays = _map_found(found, expected, transposed=False, source=prefix)
    parts = _present_parts(config, arrays, prefix, lambda variable: variable.official)
    return ElectraWeights(config, arrays, parts, skipped, source=prefix)


def write_official(weights: ElectraWeights, output_dir: str | os.PathLike, overwrite: bool = False) -> str:
    """Writes a reference-style name-based checkpoint output_dir/model.ckpt (+ 'checkpoint').

    Kernels stay [in, out]; names are the reference's, so its init_from_checkpoint reads it.
    Returns the checkpoint prefix.
    """
    import tensorflow as tf

    output = fileio.fspath(output_dir).rstrip("/")
    prefix = fileio.join(output, OFFICIAL_CHECKPOINT_NAME)
    shard_pattern = prefix + ".data-*"
    existing_shards = fileio.glob(shard_pattern) if fileio.isdir(output) else []
    _refuse_existing(
        [prefix + ".index", fileio.join(output, "checkpoint"), fileio.join(output, OFFICIAL_CONFIG_FILE)]
        + existing_shards,
        overwrite,
    )
    by_keras = {variable.keras: variable for variable in variable_table(weights.config)}
    names, tensors = [], []
    for keras_path in sorted(weights.arrays, key=lambda path: by_keras[path].official):
        names.append(by_keras[keras_path].official)
        tensors.append(tf.constant(weights.arrays[keras_path], dtype=tf.float32))

    def write(directory: str) -> None:
        tf.raw_ops.SaveV2(
            prefix=fileio.join(directory, OFFICIAL_CHECKPOINT_NAME),
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=tensors,
        )
        fileio.write_text_atomic(
            fileio.join(directory, "checkpoint"),
            f'model_checkpoint_path: "{OFFICIAL_CHECKPOINT_NAME}"\n'
            f'all_model_checkpoint_paths: "{OFFICIAL_CHECKPOINT_NAME}"\n',
        )
        weights.config.to_json_file(fileio.join(directory, OFFICIAL_CONFIG_FILE))

    written = _publish(output, write, commit_files=[OFFICIAL_CHECKPOINT_NAME + ".index", "checkpoint"])
    # A data shard of another sharding, left by an earlier write, would confuse readers.
    for stale in existing_shards:
        if os.path.basename(stale) not in written:
            fileio.remove(stale)
    return prefix


def _publish(output_dir: str, write: Callable[[str], object], commit_files: Iterable[str] = ()) -> list[str]:
    """Runs ``write`` on a fresh hidden sibling of ``output_dir``, then moves each file it wrote
    into ``output_dir`` (replacing what is there: callers refuse existing files first unless
    --overwrite), ``commit_files`` (relative names) last. Returns the relative names moved."""
    output_dir = fileio.fspath(output_dir).rstrip("/")
    parent = os.path.dirname(output_dir)
    if parent:
        fileio.makedirs(parent)
    temporary = fileio.temporary_name(output_dir)
    try:
        fileio.makedirs(temporary)
        write(temporary)
        names = fileio.files_below(temporary)
        commit = [name for name in commit_files if name in names]
        ordered = [name for name in names if name not in commit] + commit
        for name in ordered:
            target = fileio.join(output_dir, name)
            fileio.makedirs(os.path.dirname(target))
            fileio.rename(fileio.join(temporary, name), target, overwrite=True)
        return ordered
    finally:
        if fileio.exists(temporary):
            fileio.rmtree(temporary)


# ---------------------------------------------------------------------------------------------
# safetensors, through the safetensors package (its Rust parser checks the header, the offsets
# and the sizes; no PyTorch needed).

# NumPy has no bfloat16: its bits are the top half of a float32's, so they widen exactly.
_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """name -> array (bfloat16 widened to float32). Raises UserError if it is not safetensors."""
    import safetensors

    path = fileio.fspath(path)

    def bad(why: str) -> UserError:
        return UserError(f"{path}: not a valid safetensors file ({why}); download it again")

    try:
        data = fileio.read_bytes(path)
    except fileio.errors() as error:
        raise UserError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})") from None
    try:
        # safetensors.numpy.load would do, but it knows no BF16 (NumPy has none).
        views = safetensors.deserialize(data)
    except Exception as error:  # SafetensorError, which the package does not export
        first = str(error).strip().splitlines()[0] if str(error).strip() else (type(error).__name__)
        raise bad(first[:200]) from None
    tensors = {}
    for name, view in views:
        if view["dtype"] not in _SAFETENSORS_DTYPES:
            raise bad(f"tensor {name} has dtype {view['dtype']}, which no ELECTRA weight uses")
        array = np.frombuffer(view["data"], dtype=_SAFETENSORS_DTYPES[view["dtype"]])
        if view["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array.reshape(view["shape"])
    return tensors


def write_safetensors(
    tensors: Mapping[str, np.ndarray], path: str | os.PathLike, metadata: Optional[Mapping[str, str]] = None
) -> None:
    """Writes float32 tensors as safetensors (transformers wants metadata format=pt)."""
    import safetensors.numpy

    data = safetensors.numpy.save(
        {name: np.ascontiguousarray(array, dtype="<f4") for name, array in tensors.items()},
        metadata=dict(metadata or {"format": "pt"}),
    )
    fileio.write_bytes_atomic(path, data)


def _read_pytorch_bin(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise UserError(
            f"{path}: reading pytorch_model.bin needs PyTorch (pip install torch), "
            "or get the model's model.safetensors, which needs nothing"
        ) from None
    try:
        # weights_only: the unpickler accepts tensors and plain containers, never code.
        state = torch.load(io.BytesIO(fileio.read_bytes(path)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(
            f"{path}: refused to load: it holds objects other than tensors, which "
            f"could run code ({first[:200]}); use model.safetensors"
        ) from None
    except Exception as error:  # torch raises RuntimeError/EOFError/... for foreign files
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(
            f"{path}: not a PyTorch weights file ({type(error).__name__}: "
            f"{first[:120]}); download it again or use model.safetensors"
        ) from None
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UserError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return {
        name: value.detach().to(torch.float32).numpy() if value.is_floating_point() else value.numpy()
        for name, value in state.items()
    }


def _read_hf_tensors(model_dir: str) -> tuple[dict[str, np.ndarray], str]:
    single = fileio.join(model_dir, SAFETENSORS_FILE)
    index = fileio.join(model_dir, SAFETENSORS_INDEX_FILE)
    if fileio.isfile(single):
        return read_safetensors(single), single
    if fileio.isfile(index):
        try:
            weight_map = fileio.read_json(index)["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise UserError(f"{index}: not a safetensors index (no weight_map)") from None
        tensors = {}
        for shard in shards:
            tensors.update(read_safetensors(fileio.join(model_dir, shard)))
        return tensors, index
    pytorch = fileio.join(model_dir, PYTORCH_FILE)
    if fileio.isfile(pytorch):
        return _read_pytorch_bin(pytorch), pytorch
    raise UserError(
        f"{model_dir}: no {SAFETENSORS_FILE}, {SAFETENSORS_INDEX_FILE} or "
        f"{PYTORCH_FILE}; point --model_dir at a downloaded Hugging Face model"
    )


# ---------------------------------------------------------------------------------------------
# Hugging Face.

# Hugging Face's ElectraConfig names the sizes as ours does.
_HF_SIZE_KEYS = SIZE_KEYS
_HF_OPTIONAL_KEYS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
)


def _read_hf_config(model_dir: str) -> dict:
    path = fileio.join(model_dir, HF_CONFIG_FILE)
    if not fileio.isfile(path):
        raise UserError(f"{path} not found; --model_dir must be a Hugging Face model directory")
    try:
        values = fileio.read_json(path)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a JSON object")
    if values.get("model_type", "electra") != "electra":
        raise UserError(f"{path}: model_type is {values.get('model_type')!r}, not 'electra'")
    missing = [key for key in _HF_SIZE_KEYS if key not in values and key != "embedding_size"]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)}; not an ELECTRA config")
    activation = values.get("hidden_act", "gelu")
    if activation != "gelu":
        raise UserError(
            f"{path}: hidden_act is {activation!r}; electra_tf's networks use the "
            "exact (erf) GELU, Hugging Face's 'gelu'"
        )
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(
            f"{path}: position_embedding_type {values['position_embedding_type']!r} is not supported (only absolute)"
        )
    values.setdefault("embedding_size", values["hidden_size"])
    return values


def _hf_model_kind(tensors: Mapping[str, np.ndarray]) -> str:
    if any(name.startswith(("generator_predictions.", "generator_lm_head.")) for name in tensors):
        return "generator"
    return "discriminator"  # ElectraForPreTraining, or ElectraModel (no head)


def _normalise_hf_names(tensors: dict[str, np.ndarray], skipped: dict[str, int]) -> dict[str, np.ndarray]:
    """Adds the 'electra.' prefix ElectraModel files lack; drops buffers and task heads."""
    result = {}
    for name, array in tensors.items():
        if name.startswith(("embeddings.", "encoder.", "embeddings_project.")):
            name = "electra." + name
        if name in _HF_BUFFERS:
            continue
        if name.startswith(_HF_TASK_HEADS):
            skipped["task head tensors"] = skipped.get("task head tensors", 0) + 1
            continue
        result[name] = array
    return result


def _hf_expected(config: ElectraConfig, model: str) -> dict[str, VariableName]:
    return {
        hf_name: variable
        for variable in variable_table(config)
        for hf_model, hf_name in variable.huggingface
        if hf_model == model
    }


def _config_with(base: ElectraConfig, values: Mapping, source: str) -> ElectraConfig:
    values = dict(values)
    if base.max_seq_length > values.get("max_position_embeddings", base.max_position_embeddings):
        values["max_seq_length"] = values["max_position_embeddings"]
    return base.replace(values, source=source)


def read_huggingface(
    model_dir: str | os.PathLike,
    generator_model_dir: str | os.PathLike | None = None,
    base_config: ElectraConfig | None = None,
) -> ElectraWeights:
    """Reads ElectraForPreTraining / ElectraModel (``model_dir``) and optionally the matching
    ElectraForMaskedLM (``generator_model_dir``), or an ElectraForMaskedLM alone.

    Sizes come from each config.json; ``base_config`` supplies everything else (training
    hyperparameters). A masked LM alone becomes an electra_objective=false model. The generator
    must share the discriminator's embeddings (as the reference's do) or have untied ones of
    its hidden size.
    """
    base = base_config or ElectraConfig()
    model_dir = fileio.fspath(model_dir).rstrip("/")
    hf_config = _read_hf_config(model_dir)
    skipped: dict[str, int] = {}
    tensors, weights_file = _read_hf_tensors(model_dir)
    tensors = _normalise_hf_names(tensors, skipped)
    kind = _hf_model_kind(tensors)
    sizes = {key: hf_config[key] for key in _HF_SIZE_KEYS}
    sizes.update({key: hf_config[key] for key in _HF_OPTIONAL_KEYS if key in hf_config})
    config_source = fileio.join(model_dir, HF_CONFIG_FILE)

    if kind == "generator":
        if generator_model_dir is not None:
            raise UserError(
                f"{weights_file}: --model_dir holds a generator (ElectraForMaskedLM); "
                "give the discriminator there and the generator with "
                "--generator_model_dir"
            )
        config = _config_with(base, dict(sizes, electra_objective=False), config_source)
        files = [("generator", tensors, weights_file)]
    else:
        config = _config_with(base, dict(sizes, electra_objective=True), config_source)
        files = [("discriminator", tensors, weights_file)]
        if generator_model_dir is not None:
            generator_dir = fileio.fspath(generator_model_dir).rstrip("/")
            generator_config = _read_hf_config(generator_dir)
            generator_tensors, generator_file = _read_hf_tensors(generator_dir)
            generator_tensors = _normalise_hf_names(generator_tensors, skipped)
            if _hf_model_kind(generator_tensors) != "generator":
                raise UserError(
                    f"{generator_file}: --generator_model_dir holds no "
                    "generator_predictions; it must be an ElectraForMaskedLM"
                )
            config = _generator_config(
                config, generator_config, tensors, generator_tensors, fileio.join(generator_dir, HF_CONFIG_FILE)
            )
            files.append(("generator", generator_tensors, generator_file))

    arrays: dict[str, np.ndarray] = {}
    for model, found, source in files:
        found = dict(found)
        tied_head = found.pop(HF_TIED_LM_HEAD, None)
        word_name = "electra.embeddings.word_embeddings.weight"
        if tied_head is not None and word_name in found and not np.array_equal(tied_head, found[word_name]):
            raise UserError(
                f"{source}: {HF_TIED_LM_HEAD} differs from {word_name}; electra_tf "
                "ties the generator's output layer to its word embeddings"
            )
        for keras_path, array in _map_found(found, _hf_expected(config, model), True, str(source)).items():
            # Shared embeddings come from both files; _generator_config checked they agree.
            arrays.setdefault(keras_path, array)
    sources = " + ".join(str(source) for _, _, source in files)
    hf_name = {variable.keras: dict(variable.huggingface) for variable in variable_table(config)}

    def display(variable: VariableName) -> str:
        return next(iter(hf_name[variable.keras].values()), variable.keras)

    parts = _present_parts(config, arrays, sources, display, transposed=True)
    return ElectraWeights(config, arrays, parts, skipped, source=sources)


def _generator_config(
    config: ElectraConfig,
    generator_hf: dict,
    discriminator_tensors: Mapping[str, np.ndarray],
    generator_tensors: Mapping[str, np.ndarray],
    source: str,
) -> ElectraConfig:
    """The discriminator's config with generator sizes expressed as electra_tf's fractions."""
    for key in ("vocab_size", "max_position_embeddings", "type_vocab_size"):
        if generator_hf[key] != getattr(config, key):
            raise UserError(
                f"{source}: {key} {generator_hf[key]} differs from the "
                f"discriminator's {getattr(config, key)}; these are not one model"
            )
    hidden, layers = generator_hf["hidden_size"], generator_hf["num_hidden_layers"]
    names = [
        f"electra.embeddings.{name}"
        for name in (
            "word_embeddings.weight",
            "position_embeddings.weight",
            "token_type_embeddings.weight",
            "LayerNorm.weight",
            "LayerNorm.bias",
        )
    ]
    shared = all(
        name in generator_tensors
        and name in discriminator_tensors
        and np.shape(generator_tensors[name]) == np.shape(discriminator_tensors[name])
        and np.array_equal(generator_tensors[name], discriminator_tensors[name])
        for name in names
    )
    if not shared and generator_hf["embedding_size"] != hidden:
        raise UserError(
            f"{source}: the generator's embeddings differ from the discriminator's "
            f"and its embedding_size {generator_hf['embedding_size']} is not its "
            f"hidden_size {hidden}; electra_tf can only share them (as the reference "
            "does) or untie them at the generator's hidden size"
        )
    values = {
        "generator_hidden_size": hidden / config.hidden_size,
        "generator_layers": layers / config.num_hidden_layers,
        "untied_generator_embeddings": not shared,
        "uniform_generator": False,
    }
    config = config.replace(values, source=source)
    derived = {
        "hidden_size": config.generator_hidden,
        "num_hidden_layers": config.generator_num_hidden_layers,
        "num_attention_heads": config.generator_num_attention_heads,
        "intermediate_size": config.generator_intermediate_size,
        "embedding_size": config.generator_embedding_size,
    }
    for key, value in derived.items():
        if generator_hf[key] != value:
            raise UserError(
                f"{source}: {key} is {generator_hf[key]} but electra_tf derives "
                f"{value} for this generator (heads = hidden/64, FFN = 4 x hidden); "
                "convert it alone (without --generator_model_dir) instead"
            )
    return config


def huggingface_config(config: ElectraConfig, model: str, architecture: str) -> dict:
    """config.json of the Hugging Face model ("discriminator" or "generator") of ``config``."""
    if model == "generator":
        sizes = {
            "embedding_size": config.generator_embedding_size,
            "hidden_size": config.generator_hidden,
            "num_hidden_layers": config.generator_num_hidden_layers,
            "num_attention_heads": config.generator_num_attention_heads,
            "intermediate_size": config.generator_intermediate_size,
        }
    else:
        sizes = {
            "embedding_size": config.embedding_size,
            "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "intermediate_size": config.intermediate_size,
        }
    return {
        "architectures": [architecture],
        "model_type": "electra",
        "vocab_size": config.vocab_size,
        **sizes,
        "hidden_act": "gelu",
        "hidden_dropout_prob": config.hidden_dropout_prob,
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": config.pad_token_id,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
    }


def sequence_classification_head(
    kernel: np.ndarray, bias: np.ndarray, hidden_size: int, scale: float = 1.0
) -> dict[str, np.ndarray]:
    """electra_tf's sentence head as ElectraForSequenceClassification's ``classifier`` tensors.

    Ours is one dense on [CLS]: y = scale * (h @ kernel + bias). Hugging Face's is
    out_proj(gelu(dense(h))), and GELU is odd-symmetric up to the identity:
    gelu(p) - gelu(-p) = p Phi(p) + p (1 - Phi(p)) = p for every p. So ``dense`` computes p =
    h @ kernel + bias in its first L rows and -p in the next L (the other H - 2L rows are zero),
    and ``out_proj`` takes scale * (first - second). The function is the same for every input,
    with no bound on h; in float32 the difference of the two GELUs adds about one rounding of
    |p|, the error the logits carry anyway (the README gives the measured figures).

    Args:
      kernel: [H, L] float32, the Keras dense kernel (L = num_labels, 1 for regression).
      bias: [L] float32.
      hidden_size: H; needs 2 L <= H.
      scale: multiplies the output (a regressor's target_scale, so Hugging Face's logits are in
        the labels' units, as electra_tf's "predictions" are).

    Returns:
      {"classifier.dense.weight" [H, H], "classifier.dense.bias" [H],
       "classifier.out_proj.weight" [L, H], "classifier.out_proj.bias" [L]}, Linear layout
      [out, in].
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    bias = np.asarray(bias, dtype=np.float32)
    outputs = kernel.shape[1]
    if kernel.shape != (hidden_size, outputs) or bias.shape != (outputs,) or (2 * outputs > hidden_size):
        raise ValueError(
            f"a head of kernel {kernel.shape} and bias {bias.shape} does not fit "
            f"hidden size {hidden_size} (needs 2 x outputs <= hidden)"
        )
    dense_weight = np.zeros((hidden_size, hidden_size), np.float32)
    dense_bias = np.zeros((hidden_size,), np.float32)
    dense_weight[:outputs] = kernel.T
    dense_weight[outputs : 2 * outputs] = -kernel.T
    dense_bias[:outputs] = bias
    dense_bias[outputs : 2 * outputs] = -bias
    out_weight = np.zeros((outputs, hidden_size), np.float32)
    rows = np.arange(outputs)
    out_weight[rows, rows] = scale
    out_weight[rows, outputs + rows] = -scale
    return {
        "classifier.dense.weight": dense_weight,
        "classifier.dense.bias": dense_bias,
        "classifier.out_proj.weight": out_weight,
        "classifier.out_proj.bias": np.zeros((outputs,), np.float32),
    }


def _hf_task_head(weights: ElectraWeights) -> Optional[tuple[str, dict, dict]]:
    """The fine-tuned head as (architecture, Hugging Face tensors, config.json additions), None
    for none. A head with no exact Hugging Face form is refused rather than approximated."""
    head = weights.task_head
    if head is None:
        return None
    config = weights.config
    if head["head"] in ("classification", "regression"):
        regression = head["head"] == "regression"
        if 2 * head["kernel"].shape[1] > config.hidden_size:
            raise UserError(
                f"{weights.source}: {head['kernel'].shape[1]} labels need a hidden size "
                f"of at least twice that for ElectraForSequenceClassification's exact "
                f"form, and this model's is {config.hidden_size}; convert --to "
                "official or electra_tf"
            )
        tensors = sequence_classification_head(
            head["kernel"], head["bias"], config.hidden_size, scale=head["target_scale"] if regression else 1.0
        )
        outputs = head["kernel"].shape[1]
        names = ["score"] if regression else list(head["label_names"] or [])
        if len(names) != outputs:
            names = [f"LABEL_{index}" for index in range(outputs)]
        values = {
            "num_labels": outputs,
            "id2label": {str(index): str(name) for index, name in enumerate(names)},
            "label2id": {str(name): index for index, name in enumerate(names)},
            "problem_type": "regression" if regression else "single_label_classification",
            "finetuning_task": head["task"],
        }
        return "ElectraForSequenceClassification", tensors, values
    if head["span_head"] != INDEPENDENT_SPAN_HEAD:
        raise UserError(
            f"{weights.source}: the {head['span_head']!r} SQuAD head (head.json's "
            "span_head) has no exact form in Hugging Face's "
            "ElectraForQuestionAnswering, whose start and end logits are independent; "
            "fine-tune with --squad_head=independent for it, or convert --to official "
            "or electra_tf (the encoder only)"
        )
    if head.get("answerable"):
        raise UserError(
            f"{weights.source}: the SQuAD answerable head (2.0's, or 1.1's with "
            "--squad_v1_answerable_head) has no place in Hugging Face's "
            "ElectraForQuestionAnswering (start/end logits only); convert --to "
            "official or electra_tf"
        )
    # qa_outputs is Linear(hidden, 2) on every token, start then end: our start_end dense.
    tensors = {"qa_outputs.weight": np.ascontiguousarray(head["kernel"].T), "qa_outputs.bias": np.asarray(head["bias"])}
    return "ElectraForQuestionAnswering", tensors, {"num_labels": 2, "finetuning_task": head["task"]}


HF_TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


def huggingface_tokenizer_config(weights: ElectraWeights) -> dict:
    """tokenizer_config.json for the vocab.txt copied beside the weights: without it
    transformers lower-cases (its default) even for a cased model."""
    head = weights.task_head or {}
    do_lower_case = head.get("do_lower_case", weights.config.do_lower_case)
    max_length = head.get("max_seq_length") or weights.config.max_position_embeddings
    return {
        "tokenizer_class": "ElectraTokenizer",
        "do_lower_case": bool(do_lower_case),
        "model_max_length": int(max_length),
    }


def write_huggingface(weights: ElectraWeights, output_dir: str | os.PathLike, overwrite: bool = False) -> list[str]:
    """Writes output_dir/discriminator (ElectraForPreTraining, ElectraModel without the head, or
    for a fine-tuned model ElectraForSequenceClassification / ElectraForQuestionAnswering) and
    output_dir/generator (ElectraForMaskedLM), each config.json + model.safetensors (Linear
    weights [out, in]) + tokenizer_config.json. Returns the directories written."""
    output = fileio.fspath(output_dir).rstrip("/")
    table = variable_table(weights.config)
    task = _hf_task_head(weights)
    plans = []
    if task is not None:
        plans.append(("discriminator", task[0]))
    elif "discriminator" in weights.parts:
        architecture = "ElectraForPreTraining" if "discriminator_head" in weights.parts else "ElectraModel"
        plans.append(("discriminator", architecture))
    if "generator" in weights.parts:
        plans.append(("generator", "ElectraForMaskedLM"))
    targets = [
        fileio.join(output, model, name)
        for model, _ in plans
        for name in (HF_CONFIG_FILE, SAFETENSORS_FILE, HF_TOKENIZER_CONFIG_FILE)
    ]
    _refuse_existing(targets, overwrite)

    def write(directory: str) -> None:
        for model, architecture in plans:
            tensors = {}
            for variable in table:
                for hf_model, hf_name in variable.huggingface:
                    if hf_model == model and variable.keras in weights.arrays:
                        array = weights.arrays[variable.keras]
                        tensors[hf_name] = array.T if variable.is_kernel else array
            values = huggingface_config(weights.config, model, architecture)
            if model == "discriminator" and task is not None:
                tensors.update(task[1])
                values.update(task[2])
            fileio.makedirs(fileio.join(directory, model))
            write_safetensors(tensors, fileio.join(directory, model, SAFETENSORS_FILE))
            fileio.write_json_atomic(
                fileio.join(directory, model, HF_TOKENIZER_CONFIG_FILE), huggingface_tokenizer_config(weights)
            )
            fileio.write_json_atomic(fileio.join(directory, model, HF_CONFIG_FILE), values)

    # transformers finds a model by its config.json: it arrives after the weights.
    _publish(output, write, commit_files=[f"{model}/{HF_CONFIG_FILE}" for model, _ in plans])
    return [fileio.join(output, model) for model, _ in plans]


# ---------------------------------------------------------------------------------------------
# electra_tf's own format (what save_pretrained writes).


def _refuse_existing(paths: Iterable[str], overwrite: bool) -> None:
    if overwrite:
        return
    for path in paths:
        if fileio.exists(path):
            raise UserError(f"{path} already exists; choose another --output_dir or pass --overwrite")


def build_pretrainer(weights: ElectraWeights):
    """An ElectraPretrainer of ``weights.config`` holding ``weights`` (parts that the weights
    lack keep their random initialisation)."""
    from electra_tf.pretraining_objective import ElectraPretrainer

    model = ElectraPretrainer(weights.config)
    assign_weights(model, weights)
    return model


def _check_table_matches(model, config: ElectraConfig) -> dict:
    """Keras path -> variable, after checking the table names every variable of the model.

    A mismatch means electra_tf.modeling renamed a layer: this module's table must follow.
    """
    variables = {variable.path: variable for variable in model.weights}
    table = {variable.keras: variable.shape for variable in variable_table(config)}
    model_shapes = {path: tuple(variable.shape) for path, variable in variables.items()}
    if model_shapes != table:
        only_model = sorted(set(model_shapes) - set(table))[:3]
        only_table = sorted(set(table) - set(model_shapes))[:3]
        raise RuntimeError(
            f"checkpoint_conversion.variable_table is out of date with "
            f"electra_tf.modeling: model-only {only_model}, table-only "
            f"{only_table}"
        )
    return variables


def assign_weights(model, weights: ElectraWeights) -> None:
    """Writes ``weights.arrays`` into an ElectraPretrainer built from a config of equal sizes."""
    variables = _check_table_matches(model, model.config)
    for path, array in weights.arrays.items():
        variable = variables.get(path)
        if variable is None or tuple(variable.shape) != array.shape:
            have = "absent" if variable is None else _shape_text(variable.shape)
            raise UserError(
                f"{weights.source}: variable {path} has shape "
                f"{_shape_text(array.shape)} but the model being initialised has "
                f"{have}; use the config the weights were converted with"
            )
        variable.assign(array)


def write_electra_tf(weights: ElectraWeights, output_dir: str | os.PathLike, overwrite: bool = False) -> list[str]:
    """Writes this project's format (save_pretrained's files) for the networks the weights
    cover in full; returns the file names written (config.json first)."""
    model = build_pretrainer(weights)
    output = fileio.fspath(output_dir).rstrip("/")
    networks = artifacts.pretrained_networks(model)
    complete = {
        name: network
        for name, network in networks.items()
        if all(variable.path in weights.arrays for variable in network.weights)
    }
    if not complete:
        raise UserError(f"{weights.source}: holds no complete network to write")
    _refuse_existing([fileio.join(output, name) for name in [artifacts.CONFIG_FILE, *networks]], overwrite)

    def write(directory: str) -> None:
        artifacts.write_pretrained_files(weights.config, complete, directory)
        for name in set(networks) - set(complete):  # an overwrite must not leave stale parts
            if fileio.exists(fileio.join(output, name)):
                fileio.remove(fileio.join(output, name))

    _publish(output, write, commit_files=[artifacts.CONFIG_FILE])
    return [artifacts.CONFIG_FILE] + list(complete)


def read_electra_tf(directory: str | os.PathLike) -> ElectraWeights:
    """Reads a save_pretrained directory (config.json + the *.weights.h5 files it holds)."""
    from electra_tf.pretraining_objective import ElectraPretrainer

    directory = fileio.fspath(directory).rstrip("/")
    config_path = fileio.join(directory, artifacts.CONFIG_FILE)
    if not fileio.isfile(config_path):
        raise UserError(
            f"{config_path} not found; --model_dir must be a directory written by "
            "save_pretrained (run_pretraining's pretrained/), by run_finetuning "
            "(a trial's finetuned/) or by this converter"
        )
    if artifacts.is_finetuned(directory):
        return _read_finetuned(directory)
    config = artifacts.read_config(directory)
    model = ElectraPretrainer(config)
    loads = []

    def has(name: str) -> bool:
        return fileio.isfile(fileio.join(directory, name))

    if has(artifacts.DISCRIMINATOR_WEIGHTS_FILE):
        loads.append((artifacts.DISCRIMINATOR_WEIGHTS_FILE, model.discriminator))
    elif has(artifacts.BACKBONE_WEIGHTS_FILE):
        loads.append((artifacts.BACKBONE_WEIGHTS_FILE, model.backbone))
    if has(artifacts.GENERATOR_WEIGHTS_FILE) and model.generator is not None:
        loads.append((artifacts.GENERATOR_WEIGHTS_FILE, model.generator))
    if not loads:
        raise UserError(
            f"{directory}: no {artifacts.BACKBONE_WEIGHTS_FILE}, {artifacts.DISCRIMINATOR_WEIGHTS_FILE} "
            f"or {artifacts.GENERATOR_WEIGHTS_FILE}"
        )
    arrays = {}
    for name, network in loads:
        try:
            network.load_weights(fileio.join(directory, name))
        except Exception as error:  # keras raises ValueError/OSError for a foreign file
            first = str(error).strip().splitlines()[0] if str(error).strip() else (type(error).__name__)
            raise UserError(
                f"{fileio.join(directory, name)}: does not fit the model of {config_path} ({first[:200]})"
            ) from None
        arrays.update({variable.path: np.asarray(variable.numpy(), dtype=np.float32) for variable in network.weights})
    _check_table_matches(model, config)
    parts = _present_parts(config, arrays, directory, lambda variable: variable.keras)
    return ElectraWeights(config, arrays, parts, {}, source=directory)


# head.json's "span_head" names the SQuAD head's layout ("joint": the reference's end logits
# conditioned on the start); absent means the two independent start/end logits that electra_tf
# wrote before the joint head existed (artifacts.read_head fills that in).
INDEPENDENT_SPAN_HEAD = artifacts.INDEPENDENT_SPAN_HEAD


def _span_head_kind(head: Mapping) -> str:
    return str(head.get("span_head") or INDEPENDENT_SPAN_HEAD)


def _read_finetuned(directory: str) -> ElectraWeights:
    """A trial's finetuned/: its encoder as the discriminator's, its head in ``task_head``."""
    from electra_tf.pretraining_objective import ElectraPretrainer

    try:
        head, finetuned = artifacts.load_finetuned(directory)
    except (KeyError, ValueError) as error:
        raise UserError(f"{directory}: not a readable finetuned/ folder ({error})") from None
    # The whole config (the generator's sizes too), not only the backbone's encoder.
    config = artifacts.read_config(directory)
    pretrainer = ElectraPretrainer(config)
    # The same ElectraBackbone class and config: its weights line up one to one.
    pretrainer.backbone.set_weights(finetuned.backbone.get_weights())
    arrays = {variable.path: np.asarray(variable.numpy(), dtype=np.float32) for variable in pretrainer.backbone.weights}
    parts = _present_parts(config, arrays, directory, lambda variable: variable.keras)
    span_head = _span_head_kind(head) if head["head"] == "span" else None
    task_head = {
        "head": head["head"],
        "task": head.get("task", head["head"]),
        "answerable": bool(head.get("answerable")),
        "span_head": span_head,
        "num_labels": int(head.get("num_labels", 1)),
        "label_names": head.get("label_names"),
        "target_scale": float(head.get("target_scale", 1.0)),
        "max_seq_length": head.get("max_seq_length"),
        "do_lower_case": bool(head.get("do_lower_case", config.do_lower_case)),
        "kernel": None,
        "bias": None,
    }
    # Another span layout may have no single start/end dense: only the independent one is read.
    if span_head in (None, INDEPENDENT_SPAN_HEAD):
        dense = finetuned.output_dense
        task_head.update(
            kernel=np.asarray(dense.kernel.numpy(), dtype=np.float32),
            bias=np.asarray(dense.bias.numpy(), dtype=np.float32),
        )
    count = len(finetuned.weights) - len(finetuned.backbone.weights)
    skipped = {f"{head['task']} head variables (only --to huggingface keeps a head)": count}
    return ElectraWeights(config, arrays, parts, skipped, source=directory, task_head=task_head)


VOCAB_FILE = artifacts.VOCAB_FILE


def copy_vocabulary(
    source_dir: str | os.PathLike, destinations: Iterable[str | os.PathLike], overwrite: bool = False
) -> list[str]:
    """Copies source_dir/vocab.txt (released checkpoints and Hugging Face models ship one) next
    to the converted weights, where run_finetuning looks for it. Returns the copies made (an
    existing vocabulary is the user's and kept unless ``overwrite``)."""
    copies = [artifacts.copy_vocab(source_dir, destination, overwrite) for destination in destinations]
    return [copy for copy in copies if copy is not None]


def load_pretrained_into(model, directory: str | os.PathLike) -> ElectraWeights:
    """Initialises a built ElectraPretrainer from a save_pretrained directory, for continued
    pretraining. The directory must hold every network the model trains (generator included)
    with the model's sizes."""
    weights = read_electra_tf(directory)
    model_paths = {variable.path for variable in model.weights}
    missing = sorted(model_paths - set(weights.arrays))
    if missing:
        raise UserError(
            f"{directory}: has no {missing[0]} (and {len(missing) - 1} more), which "
            "continued pretraining needs; convert a checkpoint that includes the "
            "generator (the reference's pretraining checkpoints do)"
        )
    assign_weights(model, weights)
    return weights
