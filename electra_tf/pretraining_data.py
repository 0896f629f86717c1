"""ELECTRA pretraining data: packing token ids into examples, the TFRecord format, and reading it.

The format is the reference's: TFRecord files of tf.train.Example with three int64 features of
length max_seq_length, `input_ids`, `input_mask` and `segment_ids` (masking happens later, in the
training graph). Data written by the reference builder and by ours can be read by either.

How the builder spends its time: tokenization (the in-graph Tokenizer, in big batches of lines on
a thread pool, so TensorFlow runs it outside the GIL) happens in the calling process; packing and
serialisation happen in `num_processes` worker processes. The workers are fresh interpreters (not
forks: forking a process that has TensorFlow loaded is unsafe) that import only numpy and this
module, which is why it does not import TensorFlow at import time; they are started before the
parent builds its tokenizer, so their start-up overlaps it. Examples are serialised by hand-encoding
the three packed int64 features (tested to parse identically to tf.train.Example), in batches.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import random
import re
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from electra_tf import fileio
from electra_tf.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
MANIFEST_FILE = "manifest.json"
SHARD_PREFIX = "pretrain_data"
MANIFEST_FORMAT = "electra_tf.pretraining_data/1"

# The reference's constants for example construction.
SINGLE_SEGMENT_PROBABILITY = 0.1
RANDOM_TARGET_LENGTH_PROBABILITY = 0.05
MIN_RANDOM_TARGET_LENGTH = 5
# "Infinite" first-segment target of a single-segment example (the reference uses 100000).
_UNBOUNDED_TARGET = sys.maxsize


class ExampleBuilder:
    """Packs sentences (lists of token ids) greedily into examples, exactly like ELECTRA's reference.

    add_sentence() appends a sentence and returns a finished example once the accumulated length
    reaches the current target length; end_document() returns the partial example, if any.
    An example is (first_segment, second_segment), each a list of ids without [CLS]/[SEP], already
    truncated so that [CLS] A [SEP] (B [SEP]) fits in max_seq_length.

    With join_segments=False an example is instead (first_parts, first_length, second_parts,
    second_length): the sentences (e.g. numpy slices) of each segment, already cut to the lengths,
    for ExampleEncoder.encode_parts, which never turns them into Python lists.

    `rng` needs random() and randint(a, b) (a random.Random). Its draws happen in the reference's
    order: the single-segment coin per example, then a 0.5 coin only when a sentence could go either
    way, then the 5% random-target coin (and randint when it hits).
    """

    def __init__(self, max_seq_length: int, rng: random.Random, *, join_segments: bool = True):
        if max_seq_length < MIN_RANDOM_TARGET_LENGTH:
            raise UserError(f"--max_seq_length={max_seq_length} is too small; it must be at least {MIN_RANDOM_TARGET_LENGTH}")
        self.max_seq_length = max_seq_length
        self.target_length = max_seq_length
        self._rng = rng
        self._join_segments = join_segments
        self._sentences: list[list[int]] = []
        self._length = 0

    def add_sentence(self, ids: list[int]) -> Optional[tuple[list[int], list[int]]]:
        self._sentences.append(ids)
        self._length += len(ids)
        if self._length >= self.target_length:
            return self._create_example()
        return None

    def end_document(self) -> Optional[tuple[list[int], list[int]]]:
        if self._length:
            return self._create_example()
        return None

    def _create_example(self) -> tuple[list[int], list[int]]:
        # The decisions depend only on lengths, so sentences are only joined (and, when they are
        # numpy slices, converted) up to the truncated lengths.
        rng = self._rng
        if rng.random() < SINGLE_SEGMENT_PROBABILITY:
            first_target = _UNBOUNDED_TARGET
        else:
            first_target = (self.target_length - 3) // 2
        first_parts = []
        second_parts = []
        first_length = 0
        second_length = 0
        for sentence in self._sentences:
            length = len(sentence)
            if (
                not first_length
                or first_length + length < first_target
                or (not second_length and first_length < first_target and rng.random() < 0.5)
            ):
                first_parts.append(sentence)
                first_length += length
            else:
                second_parts.append(sentence)
                second_length += length
        max_length = self.max_seq_length
        first_length = min(first_length, max_length - 2)
        second_length = max(0, min(second_length, max_length - first_length - 3))
        self._sentences = []
        self._length = 0
        if rng.random() < RANDOM_TARGET_LENGTH_PROBABILITY:
            self.target_length = rng.randint(MIN_RANDOM_TARGET_LENGTH, max_length)
        else:
            self.target_length = max_length
        first_parts = _prefix_parts(first_parts, first_length)
        second_parts = _prefix_parts(second_parts, second_length)
        if not self._join_segments:
            return first_parts, first_length, second_parts, second_length
        return _join(first_parts), _join(second_parts)


def _prefix_parts(parts: list, length: int) -> list:
    """The parts that hold the first `length` ids of their concatenation, the last one cut."""
    kept = []
    for part in parts:
        if length <= 0:
            break
        if len(part) > length:
            part = part[:length]
        kept.append(part)
        length -= len(part)
    return kept


def _join(parts: list) -> list[int]:
    joined: list[int] = []
    for part in parts:
        joined += part if isinstance(part, list) else part.tolist()
    return joined


def layout_examples(
    examples: Sequence[tuple[list[int], list[int]]], max_seq_length: int, cls_id: int, sep_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[CLS] A [SEP] (B [SEP]) with zero padding.

    Returns input_ids, input_mask, segment_ids: int64 [num_examples, max_seq_length]; segment id 0
    up to and including the first [SEP], 1 after it; mask 1 on real tokens.
    """
    count = len(examples)
    flat: list[int] = []
    first_ends = [0] * count
    totals = [0] * count
    for row, (first, second) in enumerate(examples):
        flat.append(cls_id)
        flat += first
        flat.append(sep_id)
        first_ends[row] = len(first) + 2
        if second:
            flat += second
            flat.append(sep_id)
            totals[row] = len(first) + len(second) + 3
        else:
            totals[row] = len(first) + 2
    positions = np.arange(max_seq_length, dtype=np.int64)
    totals_column = np.asarray(totals, dtype=np.int64)[:, None]
    real = positions < totals_column
    input_ids = np.zeros((count, max_seq_length), dtype=np.int64)
    input_ids[real] = flat  # row-major order: each example's tokens in turn
    input_mask = real.astype(np.int64)
    segment_ids = ((positions >= np.asarray(first_ends, dtype=np.int64)[:, None]) & real).astype(np.int64)
    return input_ids, input_mask, segment_ids


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_varint(value) for value in range(1 << 14)]


def _length_prefix(length: int) -> bytes:
    return _SMALL_VARINTS[length] if length < (1 << 14) else _varint(length)


def _feature_entry_prefix(name: str, packed_length: int) -> bytes:
    """Protobuf bytes of a Features map entry up to its packed values.

    The entry is MapEntry{key: name (field 1), value: Feature (field 2)}, Feature.int64_list is
    field 3, Int64List.value is field 1 (packed varints).
    """
    key = name.encode("utf-8")
    int64_list_length = 1 + len(_length_prefix(packed_length)) + packed_length
    feature_length = 1 + len(_length_prefix(int64_list_length)) + int64_list_length
    entry_length = 1 + len(_length_prefix(len(key))) + len(key) + 1 + len(_length_prefix(feature_length)) + feature_length
    return (
        b"\x0a" + _length_prefix(entry_length)
        + b"\x0a" + _length_prefix(len(key)) + key
        + b"\x12" + _length_prefix(feature_length)
        + b"\x1a" + _length_prefix(int64_list_length)
        + b"\x0a" + _length_prefix(packed_length)
    )


def _varint_bytes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varint encoding of non-negative ints, row by row.

    Args:
      values: int64 [rows, columns], each in [0, 2**35).
    Returns:
      (flat uint8 [total_bytes] of all rows' encodings back to back, int64 [rows] bytes per row).
    """
    largest = int(values.max()) if values.size else 0
    if largest >= (1 << 35) or (values.size and values.min() < 0):
        raise ValueError("token ids must be in [0, 2**35) to be encoded")
    max_width = max(1, (largest.bit_length() + 6) // 7)
    widths = np.ones(values.shape, dtype=np.uint8)
    for k in range(1, max_width):
        widths += values >= (1 << (7 * k))
    groups = np.empty(values.shape + (max_width,), dtype=np.uint8)
    for k in range(max_width):
        groups[..., k] = ((values >> (7 * k)) & 0x7F) | ((widths > k + 1).astype(np.uint8) << 7)
    used = np.arange(max_width, dtype=np.uint8) < widths[..., None]
    return groups[used], widths.sum(axis=1, dtype=np.int64)


class ExampleEncoder:
    """Serialises examples as tf.train.Example protobuf bytes without TensorFlow.

    The bytes parse to the same message as tf.train.Example with int64 features input_ids,
    input_mask and segment_ids, each of length max_seq_length (keys in sorted order, as
    deterministic serialisation writes them).
    """

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int):
        self.max_seq_length = max_seq_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        # input_mask and segment_ids are 0/1: one byte per value, so their entries have fixed size.
        self._mask_prefix = _feature_entry_prefix("input_mask", max_seq_length)
        self._segment_prefix = _feature_entry_prefix("segment_ids", max_seq_length)
        self._ids_prefixes: dict[int, bytes] = {}
        self._fixed_length = len(self._mask_prefix) + len(self._segment_prefix) + 2 * max_seq_length

    def encode(self, examples: Sequence[tuple[list[int], list[int]]]) -> list[bytes]:
        """Examples (first_segment, second_segment) -> serialised tf.train.Example, one per example."""
        if not examples:
            return []
        input_ids, input_mask, segment_ids = layout_examples(
            examples, self.max_seq_length, self.cls_id, self.sep_id
        )
        return self.encode_arrays(input_ids, input_mask, segment_ids)

    def encode_parts(self, examples: Sequence[tuple[list, int, list, int]]) -> list[bytes]:
        """Like encode(), for ExampleBuilder(join_segments=False) examples (parts: 1-D int arrays)."""
        if not examples:
            return []
        count = len(examples)
        cls = np.array([self.cls_id], dtype=np.int64)
        sep = np.array([self.sep_id], dtype=np.int64)
        pieces = []
        first_ends = np.empty(count, dtype=np.int64)
        totals = np.empty(count, dtype=np.int64)
        for row, (first_parts, first_length, second_parts, second_length) in enumerate(examples):
            pieces.append(cls)
            pieces += first_parts
            pieces.append(sep)
            first_ends[row] = first_length + 2
            if second_length:
                pieces += second_parts
                pieces.append(sep)
                totals[row] = first_length + second_length + 3
            else:
                totals[row] = first_length + 2
        positions = np.arange(self.max_seq_length, dtype=np.int64)
        real = positions < totals[:, None]
        input_ids = np.zeros((count, self.max_seq_length), dtype=np.int64)
        input_ids[real] = np.concatenate(pieces)  # row-major: each example's tokens in turn
        segment_ids = (positions >= first_ends[:, None]) & real
        return self.encode_arrays(input_ids, real, segment_ids)

    def encode_arrays(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> list[bytes]:
        """input_ids, input_mask, segment_ids: int [num_examples, max_seq_length]; mask/segment 0/1."""
        flat_ids, id_lengths = _varint_bytes(np.asarray(input_ids, dtype=np.int64))
        id_bytes = flat_ids.tobytes()
        mask_bytes = np.asarray(input_mask, dtype=np.uint8).tobytes()
        segment_bytes = np.asarray(segment_ids, dtype=np.uint8).tobytes()
        length = self.max_seq_length
        mask_prefix = self._mask_prefix
        segment_prefix = self._segment_prefix
        fixed_length = self._fixed_length
        ids_prefixes = self._ids_prefixes
        records = []
        start = 0
        offset = 0
        for id_length in id_lengths.tolist():
            ids_prefix = ids_prefixes.get(id_length)
            if ids_prefix is None:
                ids_prefix = ids_prefixes[id_length] = _feature_entry_prefix("input_ids", id_length)
            features_length = len(ids_prefix) + id_length + fixed_length
            records.append(
                b"".join((
                    b"\x0a", _length_prefix(features_length),
                    ids_prefix, id_bytes[start:start + id_length],
                    mask_prefix, mask_bytes[offset:offset + length],
                    segment_prefix, segment_bytes[offset:offset + length],
                ))
            )
            start += id_length
            offset += length
        return records


def pack_token_rows(
    builder: ExampleBuilder, flat_ids: np.ndarray, row_lengths: np.ndarray
) -> tuple[list[tuple[list[int], list[int]]], int]:
    """Feeds tokenized lines to the builder in order.

    Args:
      flat_ids: int [total_tokens], the ids of all lines back to back.
      row_lengths: int [lines]; a line's token count, or -1 for the end of a document.
    Returns:
      (the finished examples, the number of ids fed in).
    """
    # Lines are passed as numpy views; the builder converts only the ids that it keeps.
    flat = flat_ids
    examples = []
    add_sentence = builder.add_sentence
    start = 0
    for length in row_lengths.tolist():
        if length > 0:
            end = start + length
            example = add_sentence(flat[start:end])
            start = end
            if example is not None:
                examples.append(example)
        elif length < 0:
            example = builder.end_document()
            if example is not None:
                examples.append(example)
    return examples, start


def partition_seed(seed: int, worker_index: int, process_index: int) -> str:
    """The seed of one packing process's random.Random (str seeds are hashed stably by Python)."""
    return f"electra_tf.pretraining_data:{seed}:{worker_index}:{process_index}"


class PackingStats:
    """Counts over the examples one packing process made (summed over processes by the builder)."""

    FIELDS = ("examples", "tokens", "text_tokens", "kept_text_tokens", "single_segment_examples")

    def __init__(self, **counts: int):
        for field in self.FIELDS:
            setattr(self, field, counts.get(field, 0))

    def add_examples(self, examples: Sequence[tuple], text_tokens: int) -> None:
        """examples: (first, second) lists, or ExampleBuilder(join_segments=False) tuples."""
        kept = 0
        single = 0
        for example in examples:
            if len(example) == 4:
                first_length, second_length = example[1], example[3]
            else:
                first_length, second_length = len(example[0]), len(example[1])
            kept += first_length + second_length
            if not second_length:
                single += 1
        self.examples += len(examples)
        # [CLS] A [SEP], and B [SEP] when there is a B.
        self.tokens += kept + 3 * len(examples) - single
        self.kept_text_tokens += kept
        self.single_segment_examples += single
        self.text_tokens += text_tokens

    def merge(self, other: "PackingStats") -> None:
        for field in self.FIELDS:
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def as_dict(self) -> dict:
        return {field: getattr(self, field) for field in self.FIELDS}


def _run_packing_worker(read_fd: int, write_fd: int) -> None:
    """Body of a packing worker process: token rows in, serialised examples out (no TensorFlow).

    Protocol over two pipes: first a dict (max_seq_length, cls_id, sep_id, rng_seed), then any
    number of (flat_ids, row_lengths) answered by (records, examples_in_records, text_tokens),
    then None, answered by ("done", PackingStats dict).
    """
    from multiprocessing.connection import Connection

    inbox = Connection(read_fd, readable=True, writable=False)
    outbox = Connection(write_fd, readable=False, writable=True)
    try:
        config = inbox.recv()
        builder = ExampleBuilder(config["max_seq_length"], random.Random(config["rng_seed"]), join_segments=False)
        encoder = ExampleEncoder(config["max_seq_length"], config["cls_id"], config["sep_id"])
        stats = PackingStats()
        while True:
            message = inbox.recv()
            if message is None:
                break
            flat_ids, row_lengths = message
            examples, text_tokens = pack_token_rows(builder, flat_ids, row_lengths)
            stats.add_examples(examples, text_tokens)
            outbox.send(("records", encoder.encode_parts(examples)))
        tail = builder.end_document()
        if tail is not None:
            stats.add_examples([tail], 0)
            outbox.send(("records", encoder.encode_parts([tail])))
        outbox.send(("done", stats.as_dict()))
    except (EOFError, BrokenPipeError):
        return  # the parent stopped (an error or Ctrl-C there); it reports why
    except BaseException:  # report to the parent instead of dying silently
        import traceback

        try:
            outbox.send(("error", traceback.format_exc()))
        except OSError:
            pass
        raise
    finally:
        inbox.close()
        outbox.close()


# ---------------------------------------------------------------------------------------------
# Building: corpus -> tokenized lines (TensorFlow, main process) -> packing workers -> shards.
# ---------------------------------------------------------------------------------------------

_SHARD_PATTERN = re.compile(r"^pretrain_data(-\d+-of-\d+)?\.tfrecord-\d+-of-\d+$")
_MANIFEST_PATTERN = re.compile(r"^manifest(-\d+-of-\d+)?\.json$")
_MANIFEST_PART_PATTERN = re.compile(r"^manifest-(\d+)-of-(\d+)\.json$")
# Blocks of tokenized lines waiting for one packing worker; bounds memory when packing lags.
_QUEUED_BLOCKS_PER_PROCESS = 4


@dataclasses.dataclass
class BuildOptions:
    """What build_pretraining_data makes; the fields mirror the command-line flags."""

    corpus_dir: str
    vocab_file: str
    output_dir: str
    max_seq_length: int = 128
    num_processes: int = 1
    do_lower_case: bool = True
    blanks_separate_docs: bool = True
    input_format: str = "auto"
    json_text_field: str = "text"
    seed: int = 1314
    num_shards: int = 100
    overwrite: bool = False
    worker_index: int = 0
    num_workers: int = 1


def shard_file_name(shard_index: int, num_shards: int, worker_index: int = 0, num_workers: int = 1) -> str:
    """pretrain_data.tfrecord-00003-of-00100, or pretrain_data-00001-of-00004.tfrecord-... per worker."""
    worker = "" if num_workers == 1 else f"-{worker_index:05d}-of-{num_workers:05d}"
    return f"{SHARD_PREFIX}{worker}.tfrecord-{shard_index:05d}-of-{num_shards:05d}"


def manifest_file_name(worker_index: int = 0, num_workers: int = 1) -> str:
    """manifest.json, or manifest-00001-of-00004.json for one of several workers."""
    if num_workers == 1:
        return MANIFEST_FILE
    return f"manifest-{worker_index:05d}-of-{num_workers:05d}.json"


def _validate_options(options: BuildOptions) -> None:
    checks = [
        (options.max_seq_length >= MIN_RANDOM_TARGET_LENGTH, f"--max_seq_length={options.max_seq_length} must be at least {MIN_RANDOM_TARGET_LENGTH}"),
        (options.num_processes >= 1, f"--num_processes={options.num_processes} must be at least 1"),
        (options.num_workers >= 1, f"--num_workers={options.num_workers} must be at least 1"),
        (0 <= options.worker_index < options.num_workers, f"--worker_index={options.worker_index} must be in [0, --num_workers={options.num_workers})"),
        (options.num_shards >= options.num_processes, f"--num_shards={options.num_shards} must be at least --num_processes={options.num_processes} (each process writes its own shards)"),
        (bool(options.output_dir), "--output_dir is required"),
        (bool(options.vocab_file), "--vocab_file is required"),
        (bool(options.corpus_dir), "--corpus_dir is required"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    from electra_tf.corpus import INPUT_FORMATS

    if options.input_format not in INPUT_FORMATS:
        raise UserError(f"--input_format={options.input_format} is not one of {', '.join(INPUT_FORMATS)}")


def _earlier_output(options: BuildOptions) -> tuple[list[str], list[str]]:
    """(entries of output_dir in the way of this build, the earlier outputs of ours among them)."""
    output_dir = options.output_dir
    if fileio.exists(output_dir) and not fileio.isdir(output_dir):
        raise UserError(f"{output_dir}: --output_dir exists and is not a directory")
    if not fileio.isdir(output_dir):
        return [], []
    existing = sorted(fileio.listdir(output_dir))
    if options.num_workers == 1:
        ours = [name for name in existing if _SHARD_PATTERN.match(name) or _MANIFEST_PATTERN.match(name)]
        return existing, ours
    # Other workers write beside this one, so only this worker's own files (and a combined
    # manifest, which would go stale) are in the way.
    prefix = shard_file_name(0, 1, options.worker_index, options.num_workers).split(".tfrecord")[0] + ".tfrecord-"
    own_manifest = manifest_file_name(options.worker_index, options.num_workers)
    ours = [name for name in existing if name.startswith(prefix) or name in (own_manifest, MANIFEST_FILE)]
    return ours, ours


def _check_output_dir(options: BuildOptions) -> None:
    """Refuses to write over earlier output unless --overwrite."""
    conflicting, _ = _earlier_output(options)
    if conflicting and not options.overwrite:
        raise UserError(
            f"{options.output_dir}: --output_dir is not empty ({len(conflicting)} entries, e.g. {conflicting[0]}); "
            "choose an empty directory or pass --overwrite to replace earlier pretraining data there"
        )


def _prepare_output_dir(options: BuildOptions) -> None:
    """Creates output_dir; with --overwrite removes our own earlier shards and manifests only."""
    _check_output_dir(options)
    _, ours = _earlier_output(options)
    fileio.makedirs(options.output_dir)
    for name in ours:
        fileio.remove(os.path.join(options.output_dir, name))


class _PackingProcess:
    """A packing worker process and the threads that feed it and write what it returns."""

    def __init__(self, process_index: int):
        """Starts the process; it waits for start() (so it starts while TensorFlow is loading)."""
        self.process_index = process_index
        self.queue: "queue.Queue" = queue.Queue(maxsize=_QUEUED_BLOCKS_PER_PROCESS)
        self.error: Optional[str] = None
        self.stats: Optional[PackingStats] = None
        self.shard_examples: list[int] = []
        self._writers: list = []
        self._on_records = None
        self._written = 0
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        environment = dict(os.environ)
        environment["PYTHONPATH"] = package_root + os.pathsep + environment.get("PYTHONPATH", "")
        self.process = subprocess.Popen(
            [
                sys.executable, "-c",
                "import sys; from electra_tf.pretraining_data import _run_packing_worker; "
                "_run_packing_worker(int(sys.argv[1]), int(sys.argv[2]))",
                str(to_child_read), str(from_child_write),
            ],
            pass_fds=(to_child_read, from_child_write),
            env=environment,
            stdin=subprocess.DEVNULL,
        )
        os.close(to_child_read)
        os.close(from_child_write)
        self._outbox = Connection(to_child_write, readable=False, writable=True)
        self._inbox = Connection(from_child_read, readable=True, writable=False)

    def start(self, config: dict, writers: list, on_records) -> None:
        """Sends the packing config and starts feeding and writing; writers: the shards' writers."""
        self.shard_examples = [0] * len(writers)
        self._writers = writers
        self._on_records = on_records
        self._outbox.send(config)
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, daemon=True)
        self._sender.start()
        self._receiver.start()

    def _send_loop(self) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    self._outbox.send(None)
                    return
                self._outbox.send(item.result())
        except BaseException as error:  # noqa: BLE001 - reported by finish()
            if self.error is None:
                self.error = f"feeding packing process {self.process_index} failed: {error!r}"
            self.process.kill()

    def _receive_loop(self) -> None:
        try:
            while True:
                kind, payload = self._inbox.recv()
                if kind == "records":
                    writers = self._writers
                    count = len(writers)
                    for record in payload:
                        shard = self._written % count
                        writers[shard].write(record)
                        self.shard_examples[shard] += 1
                        self._written += 1
                    self._on_records(len(payload))
                elif kind == "done":
                    self.stats = PackingStats(**payload)
                    return
                else:
                    self.error = f"packing process {self.process_index} failed:\n{payload}"
                    return
        except EOFError:
            if self.error is None:
                self.error = f"packing process {self.process_index} exited unexpectedly (status {self.process.poll()})"
        except BaseException as error:  # noqa: BLE001 - reported by finish()
            if self.error is None:
                self.error = f"writing the examples of packing process {self.process_index} failed: {error!r}"
            self.process.kill()

    def put(self, item) -> None:
        """Queues a block (a future of tokenize output) or None for the end; waits while full."""
        while True:
            if self.error is not None:
                raise RuntimeError(self.error)
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self) -> PackingStats:
        self.put(None)
        self._sender.join()
        self._receiver.join()
        self.process.wait()
        self._outbox.close()
        self._inbox.close()
        if self.error is not None:
            raise RuntimeError(self.error)
        assert self.stats is not None
        return self.stats

    def abort(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for connection in (self._outbox, self._inbox):
            try:
                connection.close()
            except OSError:
                pass


def _partition_blocks(files, options, stats, replaced_files):
    """Reads one process's files in order, a block of lines at a time, adding up `stats`."""
    from electra_tf import corpus

    for path in files:
        replaced_before = stats.replaced_bytes
        yield from corpus.read_line_blocks(
            path,
            stats,
            input_format=options.input_format,
            blanks_separate_docs=options.blanks_separate_docs,
            json_text_field=options.json_text_field,
        )
        if stats.replaced_bytes > replaced_before:
            replaced_files.append(path)


def build_pretraining_data(
    options: BuildOptions,
    *,
    progress_stream=None,
    progress_interval_seconds: float = 5.0,
) -> dict:
    """Builds TFRecord shards and a manifest from a text corpus; returns the manifest.

    Files (sorted) are split among workers (file i to worker i % num_workers) and then among
    processes (the worker's j-th file to process j % num_processes). Each process packs its files
    in order with its own random.Random(partition_seed(seed, worker, process)) and writes the
    shards whose index s has s % num_processes == process (examples round-robin, like the
    reference), so the output depends only on the options, not on timing. Tokenization runs in
    this process, in TensorFlow, in large batches on a thread pool; packing and serialisation run
    in `num_processes` worker processes that do not import TensorFlow.

    Raises UserError for bad options, unreadable input, an empty corpus or a non-empty output_dir.
    """
    import time

    from electra_tf import corpus

    _validate_options(options)
    started = time.monotonic()
    all_files = corpus.list_corpus_files(options.corpus_dir)
    files = all_files[options.worker_index :: options.num_workers]
    if not files:
        raise UserError(
            f"{options.corpus_dir}: worker {options.worker_index} of {options.num_workers} has no input files "
            f"(the corpus has {len(all_files)}); use fewer workers"
        )
    for path in files:
        if not fileio.is_remote(path) and not os.access(path, os.R_OK):
            raise UserError(f"{path}: cannot read (permission denied); check its permissions")
    _check_output_dir(options)
    processes = [_PackingProcess(index) for index in range(options.num_processes)]
    try:
        return _build_with_processes(options, files, processes, started, progress_stream, progress_interval_seconds)
    except BaseException:
        for worker in processes:
            worker.abort()
        raise


def _build_with_processes(options, files, processes, started, progress_stream, progress_interval_seconds) -> dict:
    import concurrent.futures
    import time

    import tensorflow as tf

    from electra_tf import __version__, corpus
    from electra_tf.progress import ProgressReporter
    from electra_tf.tokenization import Tokenizer, vocab_sha256

    tokenizer = Tokenizer(options.vocab_file, do_lower_case=options.do_lower_case)
    _prepare_output_dir(options)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize_lines(lines):
        ids = tokenizer.tokenize(lines)
        return tf.cast(ids.flat_values, tf.int32), tf.cast(ids.row_lengths(), tf.int32)

    def tokenize_block(block: list[str]) -> tuple[np.ndarray, np.ndarray]:
        flat_ids, row_lengths = tokenize_lines(tf.constant(block, dtype=tf.string))
        row_lengths = row_lengths.numpy()
        document_ends = [index for index, line in enumerate(block) if not line]
        row_lengths[document_ends] = -1
        return flat_ids.numpy(), row_lengths

    total_bytes = sum(fileio.getsize(path) for path in files)
    progress = ProgressReporter(
        "build_pretraining_data", total=total_bytes, total_key="bytes",
        interval_seconds=progress_interval_seconds, stream=progress_stream,
    )
    progress_lock = threading.Lock()

    def report(**counts):
        with progress_lock:
            progress.update(**counts)

    num_processes = options.num_processes
    partitions = [files[index::num_processes] for index in range(num_processes)]
    shard_names = [
        shard_file_name(index, options.num_shards, options.worker_index, options.num_workers)
        for index in range(options.num_shards)
    ]
    read_stats = [corpus.ReadStats() for _ in range(num_processes)]
    replaced_files: list[str] = []
    writers_by_process = []
    tokenizer_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="tokenize")
    try:
        for process_index in range(num_processes):
            names = shard_names[process_index::num_processes]
            writers = []
            writers_by_process.append(writers)
            for name in names:
                try:
                    writers.append(tf.io.TFRecordWriter(os.path.join(options.output_dir, name)))
                except (tf.errors.OpError, OSError) as error:
                    raise UserError(
                        f"{os.path.join(options.output_dir, name)}: cannot create shard ({getattr(error, 'message', error)}); "
                        "check --output_dir, or pass a smaller --num_shards if too many files are open"
                    ) from None
            config = {
                "max_seq_length": options.max_seq_length,
                "cls_id": tokenizer.cls_id,
                "sep_id": tokenizer.sep_id,
                "rng_seed": partition_seed(options.seed, options.worker_index, process_index),
            }
            processes[process_index].start(config, writers, lambda n: report(examples=n))
        readers = [
            _partition_blocks(partition, options, stats, replaced_files)
            for partition, stats in zip(partitions, read_stats)
        ]
        active = list(range(num_processes))
        bytes_seen = 0
        documents_seen = 0
        while active:
            for process_index in list(active):
                try:
                    block = next(readers[process_index])
                except StopIteration:
                    active.remove(process_index)
                    continue
                processes[process_index].put(tokenizer_pool.submit(tokenize_block, block))
                read_bytes = sum(stats.bytes_read for stats in read_stats)
                documents = sum(stats.documents for stats in read_stats)
                report(bytes=read_bytes - bytes_seen, documents=documents - documents_seen)
                bytes_seen, documents_seen = read_bytes, documents
        packing = PackingStats()
        for worker in processes:
            packing.merge(worker.finish())
    finally:
        tokenizer_pool.shutdown(wait=True, cancel_futures=True)
        for writers in writers_by_process:
            for writer in writers:
                writer.close()

    read_totals = corpus.ReadStats()
    for stats in read_stats:
        for field in dataclasses.fields(read_totals):
            setattr(read_totals, field.name, getattr(read_totals, field.name) + getattr(stats, field.name))
    if packing.examples == 0:
        for name in shard_names:
            fileio.remove(os.path.join(options.output_dir, name))
        raise UserError(
            f"{options.corpus_dir}: the corpus holds no text ({len(files)} file(s), {read_totals.text_bytes} bytes, "
            "no non-blank lines); point --corpus_dir at text files"
        )
    shard_examples = [0] * options.num_shards
    for process_index, worker in enumerate(processes):
        for position, count in enumerate(worker.shard_examples):
            shard_examples[process_index + position * num_processes] = count
    elapsed = time.monotonic() - started
    manifest = {
        "format": MANIFEST_FORMAT,
        "tool": "electra_tf.build_pretraining_data",
        "tool_version": __version__,
        "max_seq_length": options.max_seq_length,
        "do_lower_case": options.do_lower_case,
        "vocab_file": fileio.abspath(options.vocab_file),
        "vocab_size": tokenizer.vocab_size,
        "vocab_sha256": vocab_sha256(options.vocab_file),
        # The model masks with these ids, so training checks them against its config.
        "special_token_ids": {
            "pad_token_id": tokenizer.pad_id,
            "unk_token_id": tokenizer.unk_id,
            "cls_token_id": tokenizer.cls_id,
            "sep_token_id": tokenizer.sep_id,
            "mask_token_id": tokenizer.mask_id,
        },
        "seed": options.seed,
        "num_processes": num_processes,
        "worker_index": options.worker_index,
        "num_workers": options.num_workers,
        "corpus_dir": options.corpus_dir,
        "input_format": options.input_format,
        "blanks_separate_docs": options.blanks_separate_docs,
        "json_text_field": options.json_text_field,
        "num_input_files": len(files),
        "input_bytes": read_totals.bytes_read,
        "input_text_bytes": read_totals.text_bytes,
        "num_documents": read_totals.documents,
        "num_lines": read_totals.lines,
        "num_examples": packing.examples,
        "num_single_segment_examples": packing.single_segment_examples,
        "num_tokens": packing.tokens,
        "num_text_tokens": packing.text_tokens,
        "num_truncated_tokens": packing.text_tokens - packing.kept_text_tokens,
        "padding_fraction": 1.0 - packing.tokens / (packing.examples * options.max_seq_length),
        "non_utf8_replacements": read_totals.replaced_bytes,
        "overlong_line_cuts": read_totals.line_cuts,
        "shards": shard_names,
        "shard_examples": shard_examples,
        "build_seconds": round(elapsed, 3),
    }
    _write_json(os.path.join(options.output_dir, manifest_file_name(options.worker_index, options.num_workers)), manifest)
    stream = progress_stream if progress_stream is not None else sys.stderr
    progress.finish()
    if read_totals.replaced_bytes:
        stream.write(
            f"warning: {read_totals.replaced_bytes:,} invalid UTF-8 byte sequence(s) were replaced with U+FFFD "
            f"(in {len(replaced_files)} file(s), first {replaced_files[0]})\n"
        )
    stream.write(summary_line(manifest, options.output_dir) + "\n")
    stream.flush()
    return manifest


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


def _write_json(path: str, value: dict) -> None:
    temporary = path + ".tmp"
    with fileio.open(temporary, "w") as handle:
        json.dump(value, handle, indent=1)
        handle.write("\n")
    fileio.rename(temporary, path, overwrite=True)


# ---------------------------------------------------------------------------------------------
# Reading: manifests, resolving a data spec to shards, and the tf.data input pipeline.
# ---------------------------------------------------------------------------------------------

_REQUIRED_MANIFEST_FIELDS = ("max_seq_length", "do_lower_case", "vocab_size", "shards")


def read_manifest(path: str) -> dict:
    """Reads `path` (manifest.json, or a directory holding it) and checks its required fields.

    A directory with no manifest.json but every worker's manifest part is combined in memory.
    Raises UserError (naming the file) when it is missing, not JSON, or lacks a field.
    """
    path = os.fspath(path)
    if fileio.isdir(path):
        manifest_path = os.path.join(path, MANIFEST_FILE)
        if not fileio.exists(manifest_path) and _manifest_part_names(path):
            return _combine_parts(path)
    else:
        manifest_path = path
    if not fileio.exists(manifest_path):
        raise UserError(f"{manifest_path}: no manifest found; build the data with python -m electra_tf.build_pretraining_data")
    try:
        manifest = json.loads(fileio.read_text(manifest_path))
    except json.JSONDecodeError as error:
        raise UserError(f"{manifest_path}: not valid JSON ({error.msg} at line {error.lineno}); rebuild the data") from None
    except (UnicodeDecodeError, *fileio.errors()) as error:
        raise UserError(f"{manifest_path}: cannot read manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{manifest_path}: a manifest must be a JSON object; rebuild the data")
    missing = [field for field in _REQUIRED_MANIFEST_FIELDS if field not in manifest]
    if missing:
        raise UserError(f"{manifest_path}: manifest lacks {', '.join(missing)}; rebuild the data")
    manifest["manifest_path"] = manifest_path
    return manifest


def _manifest_part_names(directory: str) -> list[str]:
    return sorted(name for name in fileio.listdir(directory) if _MANIFEST_PART_PATTERN.match(name))


_SUMMED_FIELDS = (
    "num_input_files", "input_bytes", "input_text_bytes", "num_documents", "num_lines", "num_examples",
    "num_single_segment_examples", "num_tokens", "num_text_tokens", "num_truncated_tokens",
    "non_utf8_replacements", "overlong_line_cuts",
)
_SHARED_FIELDS = (
    "format", "max_seq_length", "do_lower_case", "vocab_size", "vocab_sha256", "special_token_ids", "seed", "num_processes",
    "num_workers", "input_format", "blanks_separate_docs", "json_text_field", "num_shards_per_worker",
)


def _combine_parts(directory: str) -> dict:
    """Merges every worker's manifest-<i>-of-<n>.json in `directory` into one manifest."""
    names = _manifest_part_names(directory)
    parts = []
    for name in names:
        with fileio.open(os.path.join(directory, name), "r") as handle:
            try:
                part = json.load(handle)
            except json.JSONDecodeError as error:
                raise UserError(f"{os.path.join(directory, name)}: not valid JSON ({error.msg}); rebuild that worker's part") from None
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
        combined["padding_fraction"] = 1.0 - combined["num_tokens"] / (combined["num_examples"] * combined["max_seq_length"])
    combined["manifest_path"] = os.path.join(directory, names[0])
    return combined


def combine_manifest_parts(output_dir: str, *, overwrite: bool = False) -> dict:
    """Writes <output_dir>/manifest.json from the workers' manifest parts; returns it."""
    if not fileio.isdir(output_dir):
        raise UserError(f"{output_dir}: --output_dir is not a directory")
    if not _manifest_part_names(output_dir):
        raise UserError(f"{output_dir}: no manifest-<i>-of-<n>.json parts to combine; run the workers first")
    target = os.path.join(output_dir, MANIFEST_FILE)
    if fileio.exists(target) and not overwrite:
        raise UserError(f"{target}: already exists; pass --overwrite to replace it")
    manifest = _combine_parts(output_dir)
    manifest.pop("manifest_path", None)
    _write_json(target, manifest)
    return manifest


def check_manifest_compatible(
    manifest: dict, *, vocab_size: int, do_lower_case: bool, max_seq_length: int, source: str,
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


def resolve_pretraining_data(spec: str) -> tuple[list[str], Optional[dict]]:
    """A data spec -> (TFRecord files, manifest or None).

    `spec` is a directory with manifest.json (or all its workers' manifest parts): its shards and
    manifest are returned; or a glob, or comma-separated globs/files: the sorted matches and None.
    Raises UserError naming the spec when nothing matches or a listed shard is missing.
    """
    spec = os.fspath(spec).strip()
    if not spec:
        raise UserError("the pretraining data spec is empty; pass a directory with manifest.json or a glob of TFRecord files")
    if fileio.isdir(spec):
        has_manifest = fileio.exists(os.path.join(spec, MANIFEST_FILE)) or _manifest_part_names(spec)
        if not has_manifest:
            raise UserError(
                f"{spec}: directory has no {MANIFEST_FILE}; build the data with python -m electra_tf.build_pretraining_data "
                f"or pass a glob such as '{os.path.join(spec, '*.tfrecord*')}'"
            )
        manifest = read_manifest(spec)
        files = [os.path.join(spec, name) for name in manifest["shards"]]
        missing = [path for path in files if not fileio.exists(path)]
        if missing:
            raise UserError(f"{missing[0]}: listed in {manifest['manifest_path']} but missing ({len(missing)} shard(s) missing); rebuild or copy the data again")
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
