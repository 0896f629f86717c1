"""Reading pretraining data: a data spec -> TFRecord shards -> batches for training or evaluation."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from electra_tf import fileio
from electra_tf.errors import UserError
from electra_tf.example_encoding import FEATURE_NAMES
from electra_tf.pretraining_manifest import MANIFEST_FILE, manifest_part_names, read_manifest

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


def resolve_pretraining_data(spec: str) -> tuple[list[str], Optional[dict]]:
    """A data spec -> (TFRecord files, manifest or None).

    `spec` is a directory with manifest.json (or all its workers' manifest parts): its shards and
    manifest are returned; or a glob, or comma-separated globs/files: the sorted matches and None.
    Raises UserError naming the spec when nothing matches or a listed shard is missing.
    """
    spec = os.fspath(spec).strip()
    if not spec:
        raise UserError(
            "the pretraining data spec is empty; pass a directory with manifest.json or a glob of TFRecord files"
        )
    if fileio.isdir(spec):
        has_manifest = fileio.exists(os.path.join(spec, MANIFEST_FILE)) or manifest_part_names(spec)
        if not has_manifest:
            glob = os.path.join(spec, "*.tfrecord*")
            raise UserError(
                f"{spec}: directory has no {MANIFEST_FILE}; build the data with "
                f"python -m electra_tf.build_pretraining_data or pass a glob such as '{glob}'"
            )
        manifest = read_manifest(spec)
        files = [os.path.join(spec, name) for name in manifest["shards"]]
        missing = [path for path in files if not fileio.exists(path)]
        if missing:
            raise UserError(
                f"{missing[0]}: listed in {manifest['manifest_path']} but missing ({len(missing)} shard(s) missing); "
                "rebuild or copy the data again"
            )
        return files, manifest
    files: list[str] = []
    for pattern in (entry.strip() for entry in spec.split(",")):
        if not pattern:
            continue
        matches = sorted(path for path in fileio.glob(pattern) if fileio.isfile(path))
        if not matches:
            raise UserError(f"{pattern}: matches no files (pretraining data spec {spec!r})")
        files.extend(matches)
    if not files:
        raise UserError(f"{spec!r}: matches no files")
    return list(dict.fromkeys(files)), None


def make_pretraining_dataset(
    files: list[str],
    batch_size: int,
    max_seq_length: int,
    *,
    is_training: bool = True,
    input_context: "Optional[tf.distribute.InputContext]" = None,
    seed: Optional[int] = None,
    num_cpu_threads: int = 4,
) -> "tf.data.Dataset":
    """Batches of pretraining examples from TFRecord shards (ours or the reference's).

    Yields dicts {"input_ids", "input_mask", "segment_ids"}: int32 [batch_size, max_seq_length]
    (the per-replica batch size when input_context is given), fixed shapes (the last partial batch
    is dropped). Training shuffles files and records and repeats forever; evaluation reads once,
    in order. With an input_context, each input pipeline reads its own share of the files (or of
    the records, when there are fewer files than pipelines).
    """
    # TensorFlow-heavy: only building a dataset needs it; resolving a data spec stays cheap.
    import tensorflow as tf

    if not files:
        raise UserError("no pretraining data files given")
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    features = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, features)
        return {name: tf.cast(parsed[name], tf.int32) for name in FEATURE_NAMES}

    files = list(files)
    shard_records = False
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files, dtype=tf.string))
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            shard_records = True
    if is_training:
        # Sharding records needs every pipeline to see the same record order, hence a fixed seed.
        file_seed = seed if seed is not None or not shard_records else 0
        dataset = dataset.shuffle(len(files), seed=file_seed, reshuffle_each_iteration=True).repeat()
        dataset = dataset.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(num_cpu_threads, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=seed is not None or shard_records,
        )
        if shard_records:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        dataset = dataset.shuffle(buffer_size=max(batch_size * 10, 1000), seed=seed)
    else:
        dataset = tf.data.TFRecordDataset(dataset)
        if shard_records:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    # Parsing a batch at once is much cheaper than record by record.
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(parse, num_parallel_calls=num_cpu_threads)
    return dataset.prefetch(tf.data.AUTOTUNE)
