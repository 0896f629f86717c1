"""Runs a SavedModel from ``python -m electra_tf.export`` on lines of text, without a server.

    python -m electra_tf.predict --export_dir=exports/sst2 --input=sentences.txt
    printf 'Who wrote it?\tIt was written by Ann.\n' | python -m electra_tf.predict \\
        --export_dir=exports/squad

Each input line is one example; a signature with two inputs takes them tab-separated, in the
order text_a/text, then text_b (GLUE pairs, encoder pairs), or question then context (SQuAD).
Each output line is a JSON object of the signature's outputs for that example, with token-level
outputs cut to the example's token_count (word_count for taggers). Only TensorFlow and tensorflow-text are needed
(the SavedModel is loaded with tf.saved_model.load; neither Keras nor the model code is used).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from typing import Iterable, Iterator, Optional

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)
from absl import flags

from electra_tf import cli, fileio
from electra_tf.errors import UserError
from electra_tf.progress import ProgressReporter

DEFAULT_SIGNATURE = "serving_default"
# The order of tab-separated fields on a line.
INPUT_ORDER = ("text_a", "text", "question", "text_b", "context")


def resolve_export_dir(path: str) -> str:
    """A version folder (holding saved_model.pb) as given, or a TF Serving base folder's
    highest version."""
    if fileio.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not fileio.isdir(path):
        raise UserError(
            f"--export_dir {path}: not a directory; give the folder written by "
            "python -m electra_tf.export (or one of its version folders)"
        )
    versions = sorted(
        (
            int(name)
            for name in fileio.listdir(path)
            if re.fullmatch(r"[0-9]+", name)
            and int(name) > 0
            and fileio.isfile(os.path.join(path, name, "saved_model.pb"))
        )
    )
    if not versions:
        raise UserError(f"--export_dir {path}: no saved_model.pb in it or in a numbered version folder inside it")
    return os.path.join(path, str(versions[-1]))


class ExportedModel:
    """One signature of an exported SavedModel, called on batches of text."""

    def __init__(self, export_dir: str, signature: str = DEFAULT_SIGNATURE):
        self.export_dir = resolve_export_dir(export_dir)
        self.saved_model = tf.saved_model.load(self.export_dir)
        if signature not in self.saved_model.signatures:
            raise UserError(
                f"--signature={signature}: {self.export_dir} has the signatures "
                f"{', '.join(sorted(self.saved_model.signatures))}"
            )
        self.signature_name = signature
        self.function = self.saved_model.signatures[signature]
        _, keyword_specs = self.function.structured_input_signature
        unknown = set(keyword_specs) - set(INPUT_ORDER)
        if unknown:
            raise UserError(
                f"{self.export_dir}: signature {signature} takes {sorted(unknown)}, "
                "which is not an export of electra_tf.export"
            )
        self.input_names = [name for name in INPUT_ORDER if name in keyword_specs]

    def __call__(self, columns: dict) -> dict:
        """{input name: list of str} -> {output name: numpy array with the batch first}."""
        tensors = {name: tf.constant(list(columns[name]), dtype=tf.string) for name in self.input_names}
        return {name: value.numpy() for name, value in self.function(**tensors).items()}


def _json_value(value):
    if isinstance(value, np.ndarray):
        return [_json_value(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def rows_of(outputs: dict) -> Iterator[dict]:
    """One JSON-ready dict per example; token-level outputs cut to its token_count (taggers:
    word_count)."""
    names = sorted(outputs)
    count = len(next(iter(outputs.values()))) if outputs else 0
    for index in range(count):
        row = {}
        # Taggers count words, the other token-level kinds WordPieces.
        count_name = next((n for n in ("token_count", "word_count") if n in outputs), None)
        tokens = int(outputs[count_name][index]) if count_name else None
        for name in names:
            value = outputs[name][index]
            if tokens is not None and name != count_name and np.ndim(value) >= 1 and name != "cls_vector":
                value = value[:tokens]
            row[name] = _json_value(value)
        yield row


def _split(line: str, names: list, where: str) -> list:
    fields = line.split("\t")
    if len(fields) != len(names):
        raise UserError(
            f"{where}: expected {len(names)} tab-separated field(s) ({', '.join(names)}), got {len(fields)}"
        )
    return fields


def predict_lines(
    model: ExportedModel,
    lines: Iterable[str],
    source: str,
    batch_size: int = 32,
    out=None,
    progress: Optional[ProgressReporter] = None,
) -> int:
    """Writes one JSON line per input line to ``out``; returns the number of examples."""
    out = out if out is not None else sys.stdout
    batch, written = [], 0

    def flush():
        nonlocal written
        columns = {name: [fields[i] for fields in batch] for i, name in enumerate(model.input_names)}
        for row in rows_of(model(columns)):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        written += len(batch)
        if progress is not None:
            progress.update(examples=len(batch))
        batch.clear()

    for number, line in enumerate(lines, start=1):
        batch.append(_split(line.rstrip("\r\n"), model.input_names, f"{source}:{number}"))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return written


@dataclasses.dataclass
class PredictOptions:
    """What predict runs; the fields mirror the command-line flags."""

    export_dir: str
    signature: str = DEFAULT_SIGNATURE
    input: str = "-"
    batch_size: int = 32


def run_predict(options: PredictOptions, out=None) -> int:
    """Answers every line of options.input (a file, or - for stdin) with one JSON line on ``out``.

    Returns the number of examples. Raises UserError for missing or bad options and input.
    """
    if not options.export_dir:
        raise UserError("--export_dir is required: the folder written by python -m electra_tf.export")
    if options.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {options.batch_size}")
    model = ExportedModel(options.export_dir, options.signature)
    progress = ProgressReporter("predict", total_key="examples")
    source = "<stdin>" if options.input in (None, "-") else options.input
    if source != "<stdin>" and not fileio.isfile(source):
        raise UserError(f"--input {source}: file not found")
    try:
        if source == "<stdin>":
            count = predict_lines(model, sys.stdin, source, options.batch_size, out=out, progress=progress)
        else:
            with fileio.open(source, "r") as handle:
                count = predict_lines(model, handle, source, options.batch_size, out=out, progress=progress)
    except UnicodeDecodeError as error:
        raise UserError(
            f"{source}: not UTF-8 text ({error.reason} at byte {error.start} of a read block); save the input as UTF-8"
        ) from None
    if count >= 1000:
        progress.finish()
    return count


def main(argv) -> None:
    """Runs an exported model on text lines: flags -> PredictOptions -> run_predict."""
    if len(argv) > 1:
        raise UserError(f"unexpected argument {argv[1]!r}; all options are --flags")
    values = flags.FLAGS
    run_predict(
        PredictOptions(
            export_dir=values.export_dir, signature=values.signature, input=values.input, batch_size=values.batch_size
        )
    )


def define_flags() -> None:
    """Defines the predict command's flags (--export_dir, --signature, --input, --batch_size) on absl's FLAGS."""
    flags.DEFINE_string(
        "export_dir",
        None,
        "The --export_base of python -m electra_tf.export (its highest version is used) or one version folder.",
    )
    flags.DEFINE_string("signature", DEFAULT_SIGNATURE, "Signature to run (e.g. single, pair).")
    flags.DEFINE_string(
        "input", "-", "Text file, one example per line (tab-separated fields for two inputs); - for stdin."
    )
    flags.DEFINE_integer("batch_size", 32, "Examples per call of the model.")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
