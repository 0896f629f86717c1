"""The pretraining-data folder: shard and manifest names, and the manifest's schema.

A folder written by build_pretraining_data holds `pretrain_data.tfrecord-SSSSS-of-NNNNN` shards
(`pretrain_data-WWWWW-of-KKKKK.tfrecord-...` per worker when several machines build it) and
manifest.json, which records how the data was built (vocabulary, casing, sequence length) and
what it holds; run_pretraining checks it against the model before training.
"""

from __future__ import annotations

import json
import os
import re
from typing import Optional

from electra_tf import fileio
from electra_tf.errors import UserError

MANIFEST_FILE = "manifest.json"
SHARD_PREFIX = "pretrain_data"
MANIFEST_FORMAT = "electra_tf.pretraining_data/1"

_SHARD_PATTERN = re.compile(r"^pretrain_data(-\d+-of-\d+)?\.tfrecord-\d+-of-\d+$")
_MANIFEST_PATTERN = re.compile(r"^manifest(-\d+-of-\d+)?\.json$")
_MANIFEST_PART_PATTERN = re.compile(r"^manifest-(\d+)-of-(\d+)\.json$")


def is_data_file(name: str) -> bool:
    """Whether `name` is a shard or a manifest (part) that a build writes."""
    return bool(_SHARD_PATTERN.match(name) or _MANIFEST_PATTERN.match(name))


def shard_file_name(shard_index: int, num_shards: int, worker_index: int = 0, num_workers: int = 1) -> str:
    """pretrain_data.tfrecord-00003-of-00100, or pretrain_data-00001-of-00004.tfrecord-... per worker."""
    worker = "" if num_workers == 1 else f"-{worker_index:05d}-of-{num_workers:05d}"
    return f"{SHARD_PREFIX}{worker}.tfrecord-{shard_index:05d}-of-{num_shards:05d}"


def manifest_file_name(worker_index: int = 0, num_workers: int = 1) -> str:
    """manifest.json, or manifest-00001-of-00004.json for one of several workers."""
    if num_workers == 1:
        return MANIFEST_FILE
    return f"manifest-{worker_index:05d}-of-{num_workers:05d}.json"


def summary_line(manifest: dict, output_dir: str) -> str:
    """One line of the manifest's statistics, printed at the end of a build."""
    return (
        f"wrote {manifest['num_examples']:,} examples ({manifest['num_tokens']:,} tokens, "
        f"{manifest['padding_fraction']:.1%} padding, max_seq_length {manifest['max_seq_length']}) "
        f"from {manifest['num_documents']:,} documents in {manifest['num_input_files']} file(s) "
        f"({manifest['input_text_bytes'] / 1e6:,.1f} MB, {manifest['num_truncated_tokens']:,} tokens truncated, "
        f"{manifest['non_utf8_replacements']:,} non-UTF-8 replacements) "
        f"to {len(manifest['shards'])} shards in {output_dir} in {manifest['build_seconds']:.1f}s"
    )


_REQUIRED_MANIFEST_FIELDS = ("max_seq_length", "do_lower_case", "vocab_size", "shards")


def read_manifest(path: str) -> dict:
    """Reads `path` (manifest.json, or a directory holding it) and checks its required fields.

    A directory with no manifest.json but every worker's manifest part is combined in memory.
    Raises UserError (naming the file) when it is missing, not JSON, or lacks a field.
    """
    path = os.fspath(path)
    if fileio.isdir(path):
        manifest_path = os.path.join(path, MANIFEST_FILE)
        if not fileio.exists(manifest_path) and manifest_part_names(path):
            return _combine_parts(path)
    else:
        manifest_path = path
    if not fileio.exists(manifest_path):
        raise UserError(
            f"{manifest_path}: no manifest found; build the data with python -m electra_tf.build_pretraining_data"
        )
    try:
        manifest = json.loads(fileio.read_text(manifest_path))
    except json.JSONDecodeError as error:
        raise UserError(
            f"{manifest_path}: not valid JSON ({error.msg} at line {error.lineno}); rebuild the data"
        ) from None
    except (UnicodeDecodeError, *fileio.errors()) as error:
        raise UserError(f"{manifest_path}: cannot read manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{manifest_path}: a manifest must be a JSON object; rebuild the data")
    missing = [field for field in _REQUIRED_MANIFEST_FIELDS if field not in manifest]
    if missing:
        raise UserError(f"{manifest_path}: manifest lacks {', '.join(missing)}; rebuild the data")
    manifest["manifest_path"] = manifest_path
    return manifest


def manifest_part_names(directory: str) -> list[str]:
    """The names of the per-worker manifest parts in `directory`, sorted."""
    return sorted(name for name in fileio.listdir(directory) if _MANIFEST_PART_PATTERN.match(name))


_SUMMED_FIELDS = (
    "num_input_files",
    "input_bytes",
    "input_text_bytes",
    "num_documents",
    "num_lines",
    "num_examples",
    "num_single_segment_examples",
    "num_tokens",
    "num_text_tokens",
    "num_truncated_tokens",
    "non_utf8_replacements",
    "overlong_line_cuts",
)
_SHARED_FIELDS = (
    "format",
    "max_seq_length",
    "do_lower_case",
    "vocab_size",
    "vocab_sha256",
    "special_token_ids",
    "seed",
    "num_processes",
    "num_workers",
    "input_format",
    "blanks_separate_docs",
    "json_text_field",
    "num_shards_per_worker",
)


def _combine_parts(directory: str) -> dict:
    """Merges every worker's manifest-<i>-of-<n>.json in `directory` into one manifest."""
    names = manifest_part_names(directory)
    parts = []
    for name in names:
        with fileio.open(os.path.join(directory, name), "r") as handle:
            try:
                part = json.load(handle)
            except json.JSONDecodeError as error:
                raise UserError(
                    f"{os.path.join(directory, name)}: not valid JSON ({error.msg}); rebuild that worker's part"
                ) from None
        part["num_shards_per_worker"] = len(part.get("shards", []))
        parts.append((name, part))
    num_workers = parts[0][1].get("num_workers")
    present = {part.get("worker_index") for _, part in parts}
    missing = sorted(set(range(num_workers or 0)) - present)
    if missing:
        raise UserError(
            f"{directory}: manifest parts of worker(s) {', '.join(map(str, missing))} of {num_workers} are missing; "
            "run those workers (--worker_index) before combining"
        )
    combined = dict(parts[0][1])
    for name, part in parts[1:]:
        for field in _SHARED_FIELDS:
            if part.get(field) != combined.get(field):
                raise UserError(
                    f"{os.path.join(directory, name)}: {field} is {part.get(field)!r} but {parts[0][0]} has "
                    f"{combined.get(field)!r}; all workers must be run with the same flags"
                )
        for field in _SUMMED_FIELDS:
            combined[field] = combined.get(field, 0) + part.get(field, 0)
        combined["shards"] = combined["shards"] + part["shards"]
        combined["shard_examples"] = combined.get("shard_examples", []) + part.get("shard_examples", [])
        combined["build_seconds"] = max(combined.get("build_seconds", 0), part.get("build_seconds", 0))
    del combined["worker_index"]
    combined["manifest_parts"] = names
    if combined.get("num_examples"):
        capacity = combined["num_examples"] * combined["max_seq_length"]
        combined["padding_fraction"] = 1.0 - combined["num_tokens"] / capacity
    combined["manifest_path"] = os.path.join(directory, names[0])
    return combined


def combine_manifest_parts(output_dir: str, *, overwrite: bool = False) -> dict:
    """Writes <output_dir>/manifest.json from the workers' manifest parts; returns it."""
    if not fileio.isdir(output_dir):
        raise UserError(f"{output_dir}: --output_dir is not a directory")
    if not manifest_part_names(output_dir):
        raise UserError(f"{output_dir}: no manifest-<i>-of-<n>.json parts to combine; run the workers first")
    target = os.path.join(output_dir, MANIFEST_FILE)
    if fileio.exists(target) and not overwrite:
        raise UserError(f"{target}: already exists; pass --overwrite to replace it")
    manifest = _combine_parts(output_dir)
    manifest.pop("manifest_path", None)
    fileio.write_json_atomic(target, manifest, indent=1)
    return manifest


def check_manifest_compatible(
    manifest: dict,
    *,
    vocab_size: int,
    do_lower_case: bool,
    max_seq_length: int,
    source: str,
    special_token_ids: Optional[dict] = None,
) -> None:
    """Raises a one-line UserError when the data was built for a different model.

    `source` names the manifest in the message (e.g. "data/manifest.json"). `special_token_ids`
    ({"cls_token_id": 101, ...}, the model's) is compared with the vocabulary's ids recorded in
    the manifest; manifests written before they were recorded, or by the reference builder, skip it.
    """
    built_length = manifest.get("max_seq_length")
    if built_length != max_seq_length:
        raise UserError(
            f"{source}: built with max_seq_length {built_length} but the model expects {max_seq_length}; "
            f"rebuild the data or pass --hparams '{{\"max_seq_length\": {built_length}}}'"
        )
    built_vocab = manifest.get("vocab_size")
    if built_vocab != vocab_size:
        raise UserError(
            f"{source}: built with a vocabulary of {built_vocab} tokens ({manifest.get('vocab_file', 'unknown file')}) "
            f"but the model's vocab_size is {vocab_size}; rebuild the data with the model's vocabulary or pass "
            f"--hparams '{{\"vocab_size\": {built_vocab}}}'"
        )
    built_case = manifest.get("do_lower_case")
    if built_case != do_lower_case:
        raise UserError(
            f"{source}: built with do_lower_case {str(built_case).lower()} but the model expects "
            f"{str(do_lower_case).lower()}; rebuild the data with --do_lower_case={str(do_lower_case).lower()} "
            f"or pass --hparams '{{\"do_lower_case\": {str(built_case).lower()}}}'"
        )
    built_special = manifest.get("special_token_ids") or {}
    for name, model_id in sorted((special_token_ids or {}).items()):
        built_id = built_special.get(name)
        if built_id is not None and built_id != model_id:
            raise UserError(
                f"{source}: the vocabulary ({manifest.get('vocab_file', 'unknown file')}) has {name} {built_id} "
                f"but the model uses {model_id}; pass --hparams '{{\"{name}\": {built_id}}}'"
            )
