"""SQuAD 1.1 / 2.0: reading the official JSON, windowing long contexts, decoding answers.

Answers are located by character offsets: every WordPiece of a context carries the [start, end)
character span it came from in the original context, so a predicted token span maps back to the
exact original text ``context[start_char:end_char]`` (no detokenisation heuristics). The offsets
come from splitting the context the way BERT's basic tokenizer does (white space, punctuation, CJK
characters, dropped control characters), WordPiece-tokenizing each of those words with the
project's Tokenizer, and giving each piece its share of the word's characters (the whole word when
normalisation changed the word's length, e.g. some accented capitals).

Windows follow the reference: [CLS] question [SEP] context-window [SEP], the question cut to
``max_query_length`` tokens, windows of the remaining length starting every ``doc_stride`` tokens.
A training window that does not contain the whole answer (or any window of an unanswerable 2.0
question) points at [CLS] (position 0). At prediction time a token is only used as an answer start
in the window where it has the most context on both sides (the reference's "max context" rule).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf import fileio, text_packing, tokenization
from electra_tf.errors import UserError


@dataclasses.dataclass
class SquadExample:
    """One question. answers: (text, start_char) pairs (empty for unanswerable 2.0 questions)."""

    qid: str
    question: str
    context: str
    answers: list
    is_impossible: bool = False
    title: str = ""
    article_index: int = 0

    @property
    def answer_texts(self) -> list[str]:
        """The gold answer texts, without their character offsets (empty for an unanswerable question)."""
        return [text for text, _ in self.answers]


@dataclasses.dataclass
class SquadFeature:
    """One window of one question. Arrays are [max_seq_length] (padded with 0)."""

    example_index: int
    window_index: int
    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    # Per position: index into the context's pieces (-1 outside the context window), and whether
    # this window gives that piece its maximum context.
    piece_index: np.ndarray
    max_context: np.ndarray
    start_position: int = 0
    end_position: int = 0
    is_impossible: bool = False


@dataclasses.dataclass
class ContextPieces:
    """A context as WordPieces: ids [n] and their [start, end) character spans in the context."""

    ids: list
    starts: list
    ends: list


# ---------------------------------------------------------------------------------------------
# Reading


def _line_of(text: str, needle: str) -> int:
    position = text.find(needle)
    return 1 if position < 0 else text.count("\n", 0, position) + 1


def read_squad(path: str, *, is_training: bool, version: str = "1.1") -> tuple[list[SquadExample], dict]:
    """Questions of an official SQuAD JSON file and reading statistics.

    For training, each answerable question needs an answer whose answer_start points at its text
    in the context; a mismatch is a UserError naming file, line and question id. Evaluation only
    needs the gold texts, so offsets are not checked there.
    """
    if not fileio.isfile(path):
        raise UserError(
            f"{path}: SQuAD file not found; give the official train/dev JSON "
            f"(e.g. {'train' if is_training else 'dev'}-v{version}.json)"
        )
    with fileio.open(path, "r") as handle:
        raw = handle.read()
    if not raw.strip():
        raise UserError(f"{path}: file is empty; expected the official SQuAD JSON")
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise UserError(f"{path}:1: not a SQuAD file: expected an object with a 'data' list of articles")
    examples = []
    for article_index, article in enumerate(document["data"]):
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise UserError(f"{path}: article {article_index} has a paragraph without a 'context' string")
            for qa in paragraph.get("qas", []):
                qid = str(qa.get("id"))
                where = lambda: f"{path}:{_line_of(raw, json.dumps(qid))}"  # noqa: E731
                if "question" not in qa:
                    raise UserError(f"{where()}: question {qid} has no 'question' text")
                impossible = bool(qa.get("is_impossible", False))
                answers = []
                for answer in qa.get("answers", []):
                    try:
                        answers.append((str(answer["text"]), int(answer["answer_start"])))
                    except (KeyError, TypeError, ValueError):
                        raise UserError(
                            f"{where()}: question {qid} has an answer without 'text' and integer 'answer_start'"
                        ) from None
                if is_training and not impossible:
                    if not answers:
                        raise UserError(
                            f"{where()}: training question {qid} has no answer and is not marked is_impossible"
                        )
                    text, start = answers[0]
                    if context[start : start + len(text)] != text:
                        found = context[start : start + len(text)]
                        raise UserError(
                            f"{where()}: question {qid}: answer {text!r} does not "
                            f"match its context at answer_start {start} (context "
                            f"there has {found!r}); fix answer_start"
                        )
                    answers = answers[:1]
                examples.append(
                    SquadExample(
                        qid, qa["question"], context, answers, impossible, article.get("title", ""), article_index
                    )
                )
    if not examples:
        raise UserError(f"{path}: no questions found")
    return examples, {"file": path, "questions": len(examples), "articles": len(document["data"])}


# ---------------------------------------------------------------------------------------------
# Character offsets of WordPieces, and windows: one in-graph implementation for fine-tuning and
# the SQuAD export, so a served model windows and locates answers exactly as it was trained and
# scored.

# Where BERT's basic tokenizer ends a word (white space, dropped control characters, punctuation,
# CJK) and which of those are words themselves, written as the regular expressions the Tokenizer
# already uses. A dropped character inside a word ends it here, where BERT keeps the word whole;
# they are rare (soft hyphens, zero-width joiners) and the pieces' spans stay exact either way.
CONTEXT_WORD_BREAK = tokenization._WORD_BREAK_CHAR + "|" + tokenization._DROPPED_CLASS
CONTEXT_KEPT_BREAK = tokenization._KEPT_WORD_BREAK_CHAR


@dataclasses.dataclass
class SquadSettings:
    """How SQuAD questions are cut into windows (sequence length, stride between window starts,
    question tokens kept) and how answers are decoded (longest answer, candidates kept); the
    export records them in head.json so serving decodes as fine-tuning did."""

    max_seq_length: int = 512
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20


@dataclasses.dataclass
class Windows:
    """What ``windows`` returns for B questions cut into W windows of at most T tokens.

    features: {"input_ids", "input_mask", "segment_ids"} int32 [W, T]; piece_index int64 [W, T]
    (the context piece at each position, -1 outside the window's context part); max_context
    bool [W, T]; window_example int64 [W] (the question of each window); pieces, starts, ends:
    int64 ragged [B, (pieces)], each context's WordPiece ids and [start, end) character spans.
    """

    features: dict
    piece_index: tf.Tensor
    max_context: tf.Tensor
    window_example: tf.Tensor
    pieces: tf.RaggedTensor
    starts: tf.RaggedTensor
    ends: tf.RaggedTensor


def context_piece_spans(context: tf.Tensor, tokenizer):
    """WordPieces of each context and their character spans (in-graph; one text: context_pieces).

    context: string [B]. Returns ids, starts, ends: int64 ragged [B, (pieces)]; a piece
    covers context[start:end] (code points); pieces of a word whose characters cannot be
    assigned one by one (an [UNK], or normalisation changed its length) span the word.
    """
    words, byte_begin, byte_end = tf_text.regex_split_with_offsets(
        context, CONTEXT_WORD_BREAK, keep_delim_regex_pattern=CONTEXT_KEPT_BREAK
    )
    # Byte offsets -> code point offsets: count the characters that start before the byte.
    _, char_bytes = tf.strings.unicode_decode_with_offsets(context, "UTF-8")
    beyond = tf.fill(tf.stack([tf.shape(context, out_type=tf.int64)[0], 1]), tf.constant(tf.int64.max, tf.int64))
    char_bytes = tf.concat([char_bytes.to_tensor(default_value=tf.int64.max), beyond], 1)

    def to_chars(byte_offsets: tf.RaggedTensor) -> tf.Tensor:
        dense = byte_offsets.to_tensor(default_value=0)
        chars = tf.searchsorted(char_bytes, dense, side="left", out_type=tf.int64)
        return tf.RaggedTensor.from_tensor(chars, lengths=byte_offsets.row_lengths()).flat_values

    word_start, word_end = to_chars(byte_begin), to_chars(byte_end)
    flat_words = words.flat_values
    pieces = tokenizer.tokenize(flat_words)  # [words, (pieces)]
    tokens = tokenizer.lookup_tokens(pieces.flat_values)
    piece_word = pieces.value_rowids()
    first_of_word = tf.ragged.range(pieces.row_lengths()).flat_values == 0
    continuation = tf.logical_and(tf.logical_not(first_of_word), tf.strings.regex_full_match(tokens, "##.*"))
    lengths = tf.strings.length(tokens, unit="UTF8_CHAR")
    lengths = tf.cast(tf.where(continuation, lengths - 2, lengths), tf.int64)
    num_words = tf.shape(flat_words, out_type=tf.int64)[0]
    word_length = word_end - word_start
    has_unknown = (
        tf.math.unsorted_segment_max(
            tf.cast(tf.equal(pieces.flat_values, tokenizer.unk_id), tf.int32), piece_word, num_words
        )
        > 0
    )
    normalized_length = tf.cast(
        tf.strings.length(tokenization.normalize_texts(flat_words, tokenizer.do_lower_case), unit="UTF8_CHAR"), tf.int64
    )
    exact = tf.logical_and(
        tf.logical_not(has_unknown),
        tf.logical_and(
            tf.math.unsorted_segment_sum(lengths, piece_word, num_words) == word_length,
            normalized_length == word_length,
        ),
    )
    running = tf.cumsum(lengths, exclusive=True)
    within_word = running - tf.gather(running, tf.gather(pieces.row_starts(), piece_word))
    piece_exact = tf.gather(exact, piece_word)
    starts = tf.where(piece_exact, tf.gather(word_start, piece_word) + within_word, tf.gather(word_start, piece_word))
    ends = tf.where(piece_exact, starts + lengths, tf.gather(word_end, piece_word))
    pieces_per_context = tf.math.unsorted_segment_sum(
        pieces.row_lengths(), words.value_rowids(), tf.shape(context, out_type=tf.int64)[0]
    )

    def by_context(values):
        return tf.RaggedTensor.from_row_lengths(values, pieces_per_context)

    return by_context(pieces.flat_values), by_context(starts), by_context(ends)


def windows(question: tf.Tensor, context: tf.Tensor, tokenizer, settings: SquadSettings) -> Windows:
    """Every window of every question: [CLS] question [SEP] window [SEP], in-graph. Fine-tuning
    (featurize) and the SQuAD export both window through this.

    The question is cut to settings.max_query_length pieces; windows of the remaining length
    (max_seq_length - question - 3) start every min(that length, doc_stride) pieces until one
    reaches the context's end; a piece is "max context" in the first of its windows with the
    highest min(pieces left of it, pieces right of it) + 0.01 * window size.

    Args:
      question, context: tf.string [B].
      tokenizer: the Tokenizer; settings: the window sizes.

    Returns:
      Windows: W windows in question order, each question's in context order; see its fields.
    """
    return windows_of_pieces(question, *context_piece_spans(context, tokenizer), tokenizer, settings)


def windows_of_pieces(
    question: tf.Tensor,
    pieces: tf.RaggedTensor,
    starts: tf.RaggedTensor,
    ends: tf.RaggedTensor,
    tokenizer,
    settings: SquadSettings,
) -> Windows:
    """``windows`` with each question's context already split (context_piece_spans' output,
    one row per question), so a context shared by several questions is split once."""
    question_ids = tokenizer.tokenize(question)[:, : settings.max_query_length]
    num_pieces = pieces.row_lengths()
    window_length = settings.max_seq_length - question_ids.row_lengths() - 3
    stride = tf.minimum(window_length, settings.doc_stride)
    overflow = num_pieces - window_length
    num_windows = tf.where(overflow <= 0, tf.ones_like(overflow), 1 + (overflow + stride - 1) // tf.maximum(stride, 1))
    window_rank = tf.ragged.range(num_windows)
    window_example = window_rank.value_rowids()
    window_rank = window_rank.flat_values
    example_stride = tf.gather(stride, window_example)
    example_window_length = tf.gather(window_length, window_example)
    example_pieces = tf.gather(num_pieces, window_example)
    window_start = window_rank * example_stride
    window_size = tf.minimum(example_window_length, example_pieces - window_start)
    piece_index = tf.ragged.range(window_start, window_start + window_size)
    position_window = piece_index.value_rowids()
    position_example = tf.gather(window_example, position_window)
    position_piece = piece_index.flat_values
    context_ids = piece_index.with_flat_values(
        tf.gather(pieces.flat_values, tf.gather(pieces.row_starts(), position_example) + position_piece)
    )

    # Max context: among the question's windows holding the piece, the first one with the
    # highest min(left, right) + 0.01 * window size (float64, as Python computes it).
    max_windows = tf.reduce_max(tf.concat([num_windows, [1]], 0))
    other = tf.range(max_windows, dtype=tf.int64)[tf.newaxis, :]
    other_start = other * tf.gather(example_stride, position_window)[:, tf.newaxis]
    other_size = tf.minimum(
        tf.gather(example_window_length, position_window)[:, tf.newaxis],
        tf.gather(example_pieces, position_window)[:, tf.newaxis] - other_start,
    )
    piece = position_piece[:, tf.newaxis]
    holds = tf.logical_and(
        other < tf.gather(num_windows, position_example)[:, tf.newaxis],
        tf.logical_and(other_start <= piece, piece < other_start + other_size),
    )
    score = tf.cast(tf.minimum(piece - other_start, other_start + other_size - 1 - piece), tf.float64) + 0.01 * tf.cast(
        other_size, tf.float64
    )
    score = tf.where(holds, score, tf.constant(-float("inf"), tf.float64))
    best = tf.argmax(score, axis=1, output_type=tf.int64)
    max_context = piece_index.with_flat_values(tf.equal(best, tf.gather(window_rank, position_window)))

    question_rows = tf.gather(question_ids, window_example)
    # One position per window, standing for [CLS] and for [SEP] in the per-position outputs.
    edge = text_packing.column(tf.shape(window_rank, out_type=tf.int64)[0], -1)
    # Each window fits beside its question by construction, so the packer cuts nothing.
    features = text_packing.pack(
        question_rows,
        context_ids,
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        max_seq_length=settings.max_seq_length,
    )
    outside = tf.concat([edge, -tf.ones_like(question_rows), edge], axis=1)
    positions = tf.concat([outside, piece_index, edge], axis=1)
    no = tf.zeros_like(outside, dtype=tf.bool)
    flags = tf.concat([no, max_context, tf.zeros_like(edge, dtype=tf.bool)], axis=1)
    return Windows(
        features,
        positions.to_tensor(default_value=-1),
        flags.to_tensor(default_value=False),
        window_example,
        pieces,
        starts,
        ends,
    )


def context_pieces(text: str, tokenizer) -> ContextPieces:
    """WordPiece ids of one ``text`` with each piece's character span in it (eager)."""
    ids, starts, ends = context_piece_spans(tf.constant([text]), tokenizer)
    return ContextPieces(ids[0].numpy().tolist(), starts[0].numpy().tolist(), ends[0].numpy().tolist())


def answer_piece_span(pieces: ContextPieces, start_char: int, end_char: int) -> Optional[tuple[int, int]]:
    """First and last piece overlapping [start_char, end_char), or None."""
    first = last = None
    for index, (start, end) in enumerate(zip(pieces.starts, pieces.ends)):
        if end > start_char and start < end_char:
            if first is None:
                first = index
            last = index
    return None if first is None else (first, last)


# Questions windowed per graph call: bounds the [pieces, windows] max-context matrix.
_FEATURIZE_CHUNK = 256


def featurize(
    examples: Sequence[SquadExample], tokenizer, settings: SquadSettings, *, is_training: bool, progress=None
) -> tuple[list[SquadFeature], list[ContextPieces], dict]:
    """Windows of every question (``windows``), as SquadFeatures padded to max_seq_length.

    Args:
      examples: the questions; tokenizer: the Tokenizer (its do_lower_case decides the
        character spans); settings: window sizes.
      is_training: label each window with the answer's token span ([CLS], position 0, where
        the window does not hold the whole answer); questions whose answer covers no piece are
        skipped and counted.
      progress: an optional progress line, updated per question.

    Returns:
      (features, pieces per example, counts): counts has "windows" and, when training,
      "answers_without_pieces" and "windows_without_answer".
    """
    seq = settings.max_seq_length
    if seq - settings.max_query_length - 3 < 1:
        longest = max((len(ids) for ids in tokenizer.encode([e.question for e in examples])), default=0)
        if seq - min(longest, settings.max_query_length) - 3 < 1:
            raise UserError(
                f"max_seq_length {seq} leaves no room for the context after a "
                f"{min(longest, settings.max_query_length)}-token question; raise "
                "max_seq_length or lower max_query_length"
            )
    all_pieces: list[ContextPieces] = []
    features: list[SquadFeature] = []
    counts = collections.Counter()
    for chunk_start in range(0, len(examples), _FEATURIZE_CHUNK):
        chunk = examples[chunk_start : chunk_start + _FEATURIZE_CHUNK]
        # SQuAD asks several questions about each paragraph: split each context once.
        contexts = list(dict.fromkeys(e.context for e in chunk))
        row_of = {context: row for row, context in enumerate(contexts)}
        rows = tf.constant([row_of[e.context] for e in chunk], tf.int64)
        spans = context_piece_spans(tf.constant(contexts), tokenizer)
        found = windows_of_pieces(
            tf.constant([e.question for e in chunk]), *(tf.gather(part, rows) for part in spans), tokenizer, settings
        )
        pieces = [
            ContextPieces(*lists) for lists in zip(found.pieces.to_list(), found.starts.to_list(), found.ends.to_list())
        ]
        all_pieces.extend(pieces)
        arrays = {name: value.numpy() for name, value in found.features.items()}
        piece_index, max_context = found.piece_index.numpy(), found.max_context.numpy()
        window_example = found.window_example.numpy()
        width = arrays["input_ids"].shape[1]
        first_window = np.searchsorted(window_example, np.arange(len(chunk)))
        answer_spans = {}
        for row, example_row in enumerate(window_example):
            example = chunk[example_row]
            if is_training and not example.is_impossible and example.answers:
                if example_row not in answer_spans:
                    text, start_char = example.answers[0]
                    answer_spans[example_row] = answer_piece_span(
                        pieces[example_row], start_char, start_char + len(text)
                    )
                    if answer_spans[example_row] is None:
                        counts["answers_without_pieces"] += 1
                if answer_spans[example_row] is None:
                    continue

            def padded(values, fill, dtype):
                out = np.full(seq, fill, dtype)
                out[:width] = values[row]
                return out

            feature = SquadFeature(
                chunk_start + int(example_row),
                int(row - first_window[example_row]),
                padded(arrays["input_ids"], 0, np.int32),
                padded(arrays["input_mask"], 0, np.int32),
                padded(arrays["segment_ids"], 0, np.int32),
                padded(piece_index, -1, np.int32),
                padded(max_context, False, bool),
                is_impossible=example.is_impossible,
            )
            span = answer_spans.get(example_row)
            if span is not None:
                positions = np.flatnonzero(feature.piece_index == span[0])
                ends = np.flatnonzero(feature.piece_index == span[1])
                if len(positions) and len(ends):
                    feature.start_position, feature.end_position = int(positions[0]), int(ends[0])
                else:
                    counts["windows_without_answer"] += 1
            features.append(feature)
        if progress is not None:
            progress.update(questions=len(chunk))
    counts["windows"] = len(features)
    return features, all_pieces, dict(counts)


def feature_arrays(features: Sequence[SquadFeature]) -> tuple[dict, dict]:
    """Stacked model inputs and labels: ({input_ids, input_mask, segment_ids}: int32 [n, seq],
    {start_position, end_position, is_impossible}: int32 [n])."""
    inputs = {
        name: np.stack([getattr(f, name) for f in features]) for name in ("input_ids", "input_mask", "segment_ids")
    }
    labels = {
        "start_position": np.array([f.start_position for f in features], np.int32),
        "end_position": np.array([f.end_position for f in features], np.int32),
        "is_impossible": np.array([int(f.is_impossible) for f in features], np.int32),
    }
    return inputs, labels


# ---------------------------------------------------------------------------------------------
# Decoding


def _top_indices(logits: np.ndarray, count: int) -> np.ndarray:
    return np.argsort(-logits, kind="stable", axis=-1)[..., :count]


def is_joint_output(outputs: Mapping) -> bool:
    """Whether ``outputs`` come from the joint span head (a beam) rather than the independent
    one (start_logits and end_logits)."""
    return "start_top_index" in outputs


def span_beams(outputs: Mapping, n_best_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every window's candidate spans as one beam, whichever head made ``outputs``.

    Args:
      outputs: the model's outputs over [n] windows: the joint head's start_top_index,
        start_top_log_probs [n, k] and end_top_index, end_top_log_probs [n, k, k], or the
        independent head's start_logits, end_logits [n, seq].
      n_best_size: the independent head's candidates per side (the joint head's beam is the
        model's own).
    Returns:
      start_index [n, k], start_score [n, k], end_index [n, k, k'], end_score [n, k, k']: the
      span (start_index[w, i], end_index[w, i, j]) scores start_score[w, i] + end_score[w, i, j]
      (float32). For the independent head every start shares the same top ends.
    """
    if is_joint_output(outputs):
        return (
            np.asarray(outputs["start_top_index"]),
            np.asarray(outputs["start_top_log_probs"], np.float32),
            np.asarray(outputs["end_top_index"]),
            np.asarray(outputs["end_top_log_probs"], np.float32),
        )
    starts = np.asarray(outputs["start_logits"], np.float32)
    ends = np.asarray(outputs["end_logits"], np.float32)
    start_index = _top_indices(starts, n_best_size)
    end_index = _top_indices(ends, n_best_size)
    start_score = np.take_along_axis(starts, start_index, axis=1)
    end_score = np.take_along_axis(ends, end_index, axis=1)
    shape = (len(starts), start_index.shape[1], end_index.shape[1])
    return (
        start_index,
        start_score,
        np.broadcast_to(end_index[:, None, :], shape),
        np.broadcast_to(end_score[:, None, :], shape),
    )


def decode_predictions(
    examples: Sequence[SquadExample],
    features: Sequence[SquadFeature],
    pieces: Sequence[ContextPieces],
    outputs: Mapping,
    settings: SquadSettings,
) -> tuple[dict[str, str], dict[str, list], dict[str, float]]:
    """Best answer text per question id, its n-best list, and its no-answer score.

    Args:
      examples, features, pieces: as ``featurize`` returns them (features are the windows the
        outputs were computed on, in the same order).
      outputs: the model's outputs over the windows (see ``span_beams``), with
        answerable_logits [num_features] for SQuAD 2.0.
      settings: n_best_size and max_answer_length are used.
    Returns:
      (predictions, nbest, null_scores) keyed by question id. A span is valid when its start and
      end are context tokens, the start has its maximum context in that window, end >= start
      and it has at most max_answer_length tokens; its score is start + end score (the joint
      head's log-probabilities, as the reference's beam). The no-answer score (higher = more
      likely unanswerable; the threshold on it is tuned on dev): joint head, as the reference's
      answerable classifier, minus the largest answerable logit over the question's windows
      (0 without the classifier); independent head, the best [CLS]-[CLS] span score minus the
      best real span score, minus the answerable logit of the best span's window.
    """
    joint = is_joint_output(outputs)
    start_index, start_score, end_index, end_score = span_beams(outputs, settings.n_best_size)
    answerable_logits = outputs.get("answerable_logits")
    if not joint:
        null_spans = (
            np.asarray(outputs["start_logits"], np.float32)[:, 0] + np.asarray(outputs["end_logits"], np.float32)[:, 0]
        )
    by_example = collections.defaultdict(list)
    for feature_index, feature in enumerate(features):
        by_example[feature.example_index].append(feature_index)
    predictions, nbest, null_scores = {}, {}, {}
    for example_index, example in enumerate(examples):
        context_pieces_ = pieces[example_index]
        candidates = []
        null_score = math.inf
        for feature_index in by_example.get(example_index, []):
            feature = features[feature_index]
            width = len(feature.piece_index)
            if joint:
                if answerable_logits is not None:
                    null_score = min(null_score, -float(answerable_logits[feature_index]))
            else:
                null_score = min(null_score, float(null_spans[feature_index]))
            for i, s in enumerate(start_index[feature_index]):
                if s >= width or feature.piece_index[s] < 0 or not feature.max_context[s]:
                    continue
                for j, e in enumerate(end_index[feature_index, i]):
                    if e >= width or feature.piece_index[e] < 0 or e < s:
                        continue
                    if e - s + 1 > settings.max_answer_length:
                        continue
                    first, last = feature.piece_index[s], feature.piece_index[e]
                    score = start_score[feature_index, i] + end_score[feature_index, i, j]
                    candidates.append(
                        (float(score), feature_index, context_pieces_.starts[first], context_pieces_.ends[last])
                    )
        # Stable: equal scores keep window, start-rank, end-rank order (the export's argmax).
        candidates.sort(key=lambda item: -item[0])
        seen, entries = set(), []
        for score, feature_index, start_char, end_char in candidates:
            text = example.context[start_char:end_char]
            if text in seen:
                continue
            seen.add(text)
            entries.append({"text": text, "score": score, "start_char": start_char, "feature": feature_index})
            if len(entries) >= settings.n_best_size:
                break
        if entries:
            scores = np.array([entry["score"] for entry in entries])
            probabilities = np.exp(scores - scores.max())
            probabilities /= probabilities.sum()
            for entry, probability in zip(entries, probabilities):
                entry["probability"] = float(probability)
        best = entries[0] if entries else None
        predictions[example.qid] = best["text"] if best else ""
        if math.isinf(null_score):
            null_score = 0.0
        if joint:
            score = null_score
        else:
            score = null_score - (best["score"] if best else null_score)
            if answerable_logits is not None and best is not None:
                score -= float(answerable_logits[best["feature"]])
        null_scores[example.qid] = float(score)
        nbest[example.qid] = [{k: v for k, v in entry.items() if k != "feature"} for entry in entries]
    return predictions, nbest, null_scores


def gold_answers(examples: Sequence[SquadExample]) -> dict[str, list[str]]:
    """Question id -> gold answer texts ([] for unanswerable questions), as
    finetuning_metrics.squad_scores takes them."""
    return {example.qid: ([] if example.is_impossible else example.answer_texts) for example in examples}


def split_by_article(
    examples: Sequence[SquadExample], num_eval_articles: int
) -> tuple[list[SquadExample], list[SquadExample]]:
    """(train, eval): the last ``num_eval_articles`` articles are held out for evaluation."""
    articles = sorted({example.article_index for example in examples})
    held_out = set(articles[len(articles) - num_eval_articles :])
    return (
        [e for e in examples if e.article_index not in held_out],
        [e for e in examples if e.article_index in held_out],
    )


def write_json(path: str, value: Mapping) -> None:
    """Writes ``value`` as indented UTF-8 JSON (non-ASCII kept as is) to ``path``, local or remote."""
    with fileio.open(path, "w") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
