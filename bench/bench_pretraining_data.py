"""Speed of build_pretraining_data against the `tokenizers` package's WordPiece, side by side.

    .venv/bin/python bench/bench_pretraining_data.py [--corpus_dir=...] [--vocab_file=...] [--repeats=3]

(a) end to end: build_pretraining_data (--num_processes 2 by default) on the corpus into a fresh
    temporary directory, wall clock of the whole call (tokenizer construction, worker start-up,
    reading, tokenizing, packing, writing the shards and the manifest); MB are the corpus files'
    bytes. TensorFlow is imported once before timing, as in any process that has already imported
    it; the time a fresh `python -m electra_tf.build_pretraining_data` takes is printed too.
(b) tokenization only: tokenizers.BertWordPieceTokenizer(lowercase=True).encode_batch over every
    line of the same files (all in memory beforehand).
Each is repeated, alternating (other users share the machine), and the medians are compared.
"""

from __future__ import annotations

import glob
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
SHARED_DATA = os.environ.get("ELECTRA_TF_SHARED_DATA", os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))

from absl import app, flags  # noqa: E402

flags.DEFINE_string("corpus_dir", os.path.join(SHARED_DATA, "pretrain", "wikipedia_en"), "Corpus to build from.")
flags.DEFINE_string(
    "vocab_file", os.path.join(SHARED_DATA, "vocab", "bert-base-uncased", "vocab.txt"), "BERT vocabulary."
)
flags.DEFINE_integer("num_processes", 2, "build_pretraining_data --num_processes.")
flags.DEFINE_integer("repeats", 3, "Measurements of each rate.")
flags.DEFINE_bool("cli_run", True, "Also time one fresh `python -m electra_tf.build_pretraining_data` process.")
FLAGS = flags.FLAGS


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the packing workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv):
    del argv
    import_started = time.perf_counter()
    import tensorflow as tf  # noqa: F401  (imported before timing, see the docstring)

    tf_import_seconds = time.perf_counter() - import_started
    from tokenizers import BertWordPieceTokenizer

    from electra_tf import pretraining_data, pretraining_manifest

    files = [
        path
        for path in sorted(glob.glob(os.path.join(FLAGS.corpus_dir, "**", "*"), recursive=True))
        if os.path.isfile(path)
    ]
    corpus_bytes = sum(os.path.getsize(path) for path in files)
    megabytes = corpus_bytes / 1e6
    print(f"corpus: {FLAGS.corpus_dir}: {len(files)} files, {megabytes:.1f} MB; vocab {FLAGS.vocab_file}")
    print(
        f"tensorflow import (not timed below): {tf_import_seconds:.1f}s; cpus: {os.cpu_count()}; "
        f"load average at start: {', '.join(f'{load:.1f}' for load in os.getloadavg())}"
    )

    lines = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines.extend(handle.read().split("\n"))
    tokenizer = BertWordPieceTokenizer(FLAGS.vocab_file, lowercase=True)

    # (a) and (b) alternate, so that a change in the machine's load hits both alike.
    build_rates = []
    tokenizer_rates = []
    manifest = None
    for repeat in range(FLAGS.repeats):
        with tempfile.TemporaryDirectory(prefix="bench_pretraining_data_") as output_dir:
            options = pretraining_data.BuildOptions(
                corpus_dir=FLAGS.corpus_dir,
                vocab_file=FLAGS.vocab_file,
                output_dir=output_dir,
                num_processes=FLAGS.num_processes,
            )
            with open(os.devnull, "w") as quiet:
                cpu_started = cpu_seconds()
                started = time.perf_counter()
                manifest = pretraining_data.build_pretraining_data(options, progress_stream=quiet)
                seconds = time.perf_counter() - started
                cpu = cpu_seconds() - cpu_started
        build_rates.append(megabytes / seconds)
        print(
            f"(a) build_pretraining_data --num_processes {FLAGS.num_processes}, run {repeat + 1}: {seconds:.2f}s = "
            f"{build_rates[-1]:.1f} MB/s  (CPU {cpu:.2f}s in this process and its workers)"
        )

        cpu_started = cpu_seconds()
        started = time.perf_counter()
        tokenizer.encode_batch(lines, add_special_tokens=False)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
        tokenizer_rates.append(megabytes / seconds)
        print(
            f"(b) tokenizers BertWordPieceTokenizer.encode_batch, run {repeat + 1}: "
            f"{seconds:.2f}s = {tokenizer_rates[-1]:.1f} MB/s"
            f"  (CPU {cpu:.2f}s; ratio this pair {build_rates[-1] / tokenizer_rates[-1]:.2f}x)"
        )
    print(f"    {pretraining_manifest.summary_line(manifest, '<tmp>')}")

    if FLAGS.cli_run:
        with tempfile.TemporaryDirectory(prefix="bench_pretraining_data_cli_") as output_dir:
            command = [
                sys.executable,
                "-m",
                "electra_tf.build_pretraining_data",
                f"--corpus_dir={FLAGS.corpus_dir}",
                f"--vocab_file={FLAGS.vocab_file}",
                f"--output_dir={output_dir}",
                f"--num_processes={FLAGS.num_processes}",
            ]
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
        print(
            f"(a') fresh process `python -m electra_tf.build_pretraining_data` (TF import included): "
            f"{seconds:.2f}s = {megabytes / seconds:.1f} MB/s"
        )

    build = statistics.median(build_rates)
    tokenize = statistics.median(tokenizer_rates)
    print(
        f"median end-to-end build: {build:.1f} MB/s; median tokenizers tokenization only: {tokenize:.1f} MB/s; "
        f"ratio {build / tokenize:.2f}x (goal >= 3x); load average at end: {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    app.run(main)
