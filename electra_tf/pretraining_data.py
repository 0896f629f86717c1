"""Building pretraining data: a text corpus -> WordPiece ids -> packed examples -> TFRecord shards.

How the builder spends its time: tokenization (the in-graph Tokenizer, in big batches of lines on
a thread pool, so TensorFlow runs it outside the GIL) happens in the calling process; packing and
serialisation happen in `num_processes` worker processes. The workers are fresh interpreters (not
forks: forking a process that has TensorFlow loaded is unsafe) that import only numpy,
example_packing and example_encoding; they are started before the parent builds its tokenizer,
so their start-up overlaps it. This module does not import TensorFlow at import time either, so
`--help` is instant.

Where the other parts live: the packing algorithm in example_packing, the record format in
example_encoding, the folder's names and manifest in pretraining_manifest, and reading the data
for training in pretraining_dataset.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import queue
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Optional

import numpy as np

from electra_tf import __version__, corpus, fileio
from electra_tf.errors import UserError
from electra_tf.example_packing import MIN_RANDOM_TARGET_LENGTH, PackingStats, partition_seed
from electra_tf.pretraining_manifest import (
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    is_data_file,
    manifest_file_name,
    shard_file_name,
    summary_line,
)
from electra_tf.progress import ProgressReporter

# ---------------------------------------------------------------------------------------------
# Building: corpus -> tokenized lines (TensorFlow, main process) -> packing workers -> shards.
# ---------------------------------------------------------------------------------------------

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


def _validate_options(options: BuildOptions) -> None:
    checks = [
        (
            options.max_seq_length >= MIN_RANDOM_TARGET_LENGTH,
            f"--max_seq_length={options.max_seq_length} must be at least {MIN_RANDOM_TARGET_LENGTH}",
        ),
        (options.num_processes >= 1, f"--num_processes={options.num_processes} must be at least 1"),
        (options.num_workers >= 1, f"--num_workers={options.num_workers} must be at least 1"),
        (
            0 <= options.worker_index < options.num_workers,
            f"--worker_index={options.worker_index} must be in [0, --num_workers={options.num_workers})",
        ),
        (
            options.num_shards >= options.num_processes,
            f"--num_shards={options.num_shards} must be at least --num_processes={options.num_processes} "
            "(each process writes its own shards)",
        ),
        (bool(options.output_dir), "--output_dir is required"),
        (bool(options.vocab_file), "--vocab_file is required"),
        (bool(options.corpus_dir), "--corpus_dir is required"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    if options.input_format not in corpus.INPUT_FORMATS:
        raise UserError(f"--input_format={options.input_format} is not one of {', '.join(corpus.INPUT_FORMATS)}")


def _earlier_output(options: BuildOptions) -> tuple[list[str], list[str]]:
    """(entries of output_dir in the way of this build, the earlier outputs of ours among them)."""
    output_dir = options.output_dir
    if fileio.exists(output_dir) and not fileio.isdir(output_dir):
        raise UserError(f"{output_dir}: --output_dir exists and is not a directory")
    if not fileio.isdir(output_dir):
        return [], []
    existing = sorted(fileio.listdir(output_dir))
    if options.num_workers == 1:
        ours = [name for name in existing if is_data_file(name)]
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
                sys.executable,
                "-c",
                "import sys; from electra_tf.example_packing import _run_packing_worker; "
                "_run_packing_worker(int(sys.argv[1]), int(sys.argv[2]))",
                str(to_child_read),
                str(from_child_write),
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
    # TensorFlow-heavy: imported once the workers are started (see the module docstring), so
    # --help and flag errors stay instant.
    import tensorflow as tf

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
        "build_pretraining_data",
        total=total_bytes,
        total_key="bytes",
        interval_seconds=progress_interval_seconds,
        stream=progress_stream,
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
                        f"{os.path.join(options.output_dir, name)}: cannot create shard "
                        f"({getattr(error, 'message', error)}); "
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
    fileio.write_json_atomic(
        os.path.join(options.output_dir, manifest_file_name(options.worker_index, options.num_workers)),
        manifest,
        indent=1,
    )
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
