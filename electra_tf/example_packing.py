"""How pretraining examples are cut from documents: the reference's algorithm, and its worker process.

An example is `[CLS] A [SEP] B [SEP]` (or `[CLS] A [SEP]`, one time in ten) filled from
consecutive sentences of one document up to max_seq_length, as the reference's
ExampleBuilder does; a document's tail starts the next example. This module (with
example_encoding) is all a packing worker process imports: no TensorFlow, so a worker starts
in well under a second and never forks a process that has TensorFlow loaded.
"""

from __future__ import annotations

import random
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Optional, Sequence

import numpy as np

from electra_tf.errors import UserError
from electra_tf.example_encoding import ExampleEncoder

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
            raise UserError(
                f"--max_seq_length={max_seq_length} is too small; it must be at least {MIN_RANDOM_TARGET_LENGTH}"
            )
        self.max_seq_length = max_seq_length
        self.target_length = max_seq_length
        self._rng = rng
        self._join_segments = join_segments
        self._sentences: list[list[int]] = []
        self._length = 0

    def add_sentence(self, ids: list[int]) -> Optional[tuple[list[int], list[int]]]:
        """Appends one sentence; returns the finished example once the target length is reached.

        Args:
          ids: the sentence's token ids (a list, or a numpy slice with join_segments=False).

        Returns:
          None while the example is still filling; otherwise the example in the form described in the
          class docstring, after which the builder starts an empty one (with a new target length).
        """
        self._sentences.append(ids)
        self._length += len(ids)
        if self._length >= self.target_length:
            return self._create_example()
        return None

    def end_document(self) -> Optional[tuple[list[int], list[int]]]:
        """The partial example at a document boundary (same form as add_sentence's), or None if nothing is pending."""
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
        """Adds ``other``'s counts into this one (combining the counts of parallel workers)."""
        for field in self.FIELDS:
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def as_dict(self) -> dict:
        """The counts as {field: int}, for the manifest and the summary line."""
        return {field: getattr(self, field) for field in self.FIELDS}


def _run_packing_worker(read_fd: int, write_fd: int) -> None:
    """Body of a packing worker process: token rows in, serialised examples out (no TensorFlow).

    Protocol over two pipes: first a dict (max_seq_length, cls_id, sep_id, rng_seed), then any
    number of (flat_ids, row_lengths) answered by (records, examples_in_records, text_tokens),
    then None, answered by ("done", PackingStats dict).
    """
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
        try:
            outbox.send(("error", traceback.format_exc()))
        except OSError:
            pass
        raise
    finally:
        inbox.close()
        outbox.close()
