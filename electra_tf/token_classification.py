"""Token classification (NER, chunking): CoNLL files, first-sub-word alignment, span metrics.

Data: one CoNLL file per split, ``<data_dir>/<DIR>/{train,dev,test}.txt`` (``NER/`` for
``--task=ner``, ``CHUNK/`` for ``--task=chunk``; ``<data_dir>`` may also be that folder itself).
A line is ``token ... tag``, columns separated by white space; the tag is the last column unless
``tag_column`` (0-based) says otherwise; a blank line ends a sentence and ``-DOCSTART-`` lines
are skipped. Test lines may hold the token alone (their tags, if any, are not used).

Tags are ``O`` or ``<prefix>-<type>`` with prefix B, I, E or S (IOB1, IOB2/BIO and IOBES all
read). The tag set is the sorted set of the training file's tags (``tag_set_from="all_splits"``:
of the train, dev and test files' tags, the reference's), or of their BIOES re-encoding with
``scheme="bioes"`` (the reference's), recorded in head.json's ``label_names``.

Alignment: each word is WordPiece-tokenized on its own with the project's Tokenizer; the word's
tag sits on its first sub-word (loss weight 1), its other sub-words get weight 0 and are never
read at prediction. Long sentences are truncated (not split), by one of two rules
(``TRUNCATIONS``):
  "score_all"  at most max_seq_length - 2 WordPieces are kept; the words past the limit get no
               loss in training and are predicted ``O`` (``DEFAULT_TAG``) at evaluation, where
               they still count.
  "reference"  the reference's featurize: words are added while (the sentence's word count + 2)
               + the pieces so far + 1 stays within max_seq_length; the rest of the sentence is
               dropped and not scored (its gold spans count neither as found nor as missed).
Truncations are counted and logged once per split.

Metrics (``span_metrics``): entity-level precision, recall and F1, plus token accuracy, all in
percent. Spans follow one of two rules (``SPAN_RULES``):
  "conlleval"  a span starts at B- or S-, or at an I-/E- that follows O, E-, S- or a tag of
               another type; it ends before O, B-, S-, a tag of another type, or after E-/S-.
  "reference"  the reference's get_span_labels: a span starts at B- or S- or after O and ends
               only before B-, S- or O; an I-/E- (of any type, after any tag) extends the open
               span, which takes the type of its last tag. I- and E-, B- and S- act alike, so
               BIOES predictions read as their IOB2 form give the same spans.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional, Sequence

import numpy as np

from electra_tf import artifacts, fileio
from electra_tf.errors import UserError
from electra_tf.progress import log

DEFAULT_TAG = "O"
SPLIT_FILES = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt"}
SCHEMES = ("file", "bioes")
SPAN_RULES = ("conlleval", "reference")
TRUNCATIONS = ("score_all", "reference")
TAG_SETS = ("train", "all_splits")
_TAG_PATTERN = re.compile(r"^(O|[BIES]-\S+)$")


@dataclasses.dataclass(frozen=True)
class TaggingTask:
    """A CoNLL tagging task. ``tag_names`` is empty in the registry and filled from the
    training file by ``prepare_data`` (the model's output classes, in this order)."""

    name: str
    directory: str
    headline_metric: str = "f1"
    num_epochs: int = 3
    max_seq_length: int = 128
    tag_names: tuple[str, ...] = ()
    tag_column: int = -1
    scheme: str = "file"
    segment_id: int = 0
    span_rule: str = "conlleval"
    truncation: str = "score_all"
    dev_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    submission_files: tuple[str, ...] = ()
    symmetric_pairs: bool = False

    is_squad = False
    is_regression = False
    is_tagging = True

    @property
    def label_names(self) -> tuple[str, ...]:
        """The tag names in label-id order (the tag_names field, under the name sentence tasks use)."""
        return self.tag_names

    @property
    def num_labels(self) -> int:
        """The tagger's output count: the number of tags."""
        return len(self.tag_names)


# The reference's chunk task scores entity-level F1 as NER does (its EntityLevelF1Scorer) and
# packs 256 tokens (configure_finetuning.py).
TAGGING_TASKS = {
    task.name: task for task in (TaggingTask("ner", "NER"), TaggingTask("chunk", "CHUNK", max_seq_length=256))
}


def is_tagging(task) -> bool:
    """True for a TaggingTask (other task classes need not define ``is_tagging``)."""
    return bool(getattr(task, "is_tagging", False))


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One CoNLL sentence: its words, their tags (None for an untagged test file), and
    "file:line" of its first word."""

    words: tuple[str, ...]
    tags: Optional[tuple[str, ...]]
    source: str = ""


# ---------------------------------------------------------------------------------------------
# Reading CoNLL files


def split_file(data_dir: str, task: TaggingTask, split: str) -> str:
    """<data_dir>/<DIR>/<split>.txt, or <data_dir>/<split>.txt when data_dir is the task folder."""
    nested = os.path.join(data_dir, task.directory, SPLIT_FILES[split])
    flat = os.path.join(data_dir, SPLIT_FILES[split])
    if fileio.exists(nested) or not fileio.exists(flat):
        return nested
    return flat


def read_conll(path: str, tag_column: int = -1, require_tags: bool = True) -> tuple[list[Sentence], dict]:
    """Sentences of a CoNLL file.

    Args:
      path: the file (any fileio path).
      tag_column: 0-based column of the tag; -1: the last column. Column 0 is the token.
      require_tags: False for test files, whose lines may hold the token alone.
    Returns:
      (sentences, {"file", "sentences", "words"}).
    Raises:
      UserError naming file and line: missing file, a line without a tag, a malformed tag.
    """
    if not fileio.isfile(path):
        raise UserError(
            f"{path}: file not found; --data_dir must hold the task folder with "
            "train.txt, dev.txt (and optionally test.txt) in CoNLL format"
        )
    if tag_column == 0:
        raise UserError("--tag_column=0 is the token column; give the tag's 0-based column or -1 for the last")
    try:
        lines = fileio.read_text(path).removeprefix("\ufeff").split("\n")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[Optional[str]] = []
    first_line = 0

    def close() -> None:
        if words:
            has_tags = all(tag is not None for tag in tags)
            sentences.append(Sentence(tuple(words), tuple(tags) if has_tags else None, f"{path}:{first_line}"))
            words.clear()
            tags.clear()

    needed = 2 if tag_column < 0 else tag_column + 1
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if not words:
            first_line = number
        if len(fields) < needed:
            if require_tags and tag_column < 0:
                raise UserError(
                    f"{path}:{number}: no tag after the token {fields[0]!r}; CoNLL "
                    "lines are 'token ... tag', white-space separated, the tag last "
                    "(or in --tag_column)"
                )
            if require_tags:
                raise UserError(
                    f"{path}:{number}: {len(fields)} column(s), so no tag in column "
                    f"{tag_column} (--tag_column, 0-based); fix the line or the flag"
                )
            words.append(fields[0])
            tags.append(None)
            continue
        tag = fields[tag_column]
        if require_tags and not _TAG_PATTERN.match(tag):
            raise UserError(
                f"{path}:{number}: tag {tag!r} is not O or B-/I-/E-/S-<type>; "
                "check --tag_column (the last column by default)"
            )
        words.append(fields[0])
        tags.append(tag)
    close()
    if not sentences:
        raise UserError(
            f"{path}: no sentences; expected CoNLL lines 'token ... tag' with a blank line between sentences"
        )
    return sentences, {
        "file": path,
        "sentences": len(sentences),
        "words": sum(len(sentence.words) for sentence in sentences),
    }


# ---------------------------------------------------------------------------------------------
# Spans and tag schemes


def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, kind = tag.split("-", 1)
    return prefix, kind


def _span_ends(prefix: str, kind: str, prev_prefix: str, prev_kind: str) -> bool:
    if prev_prefix == "O":
        return False
    if prev_prefix in ("E", "S") or prev_kind != kind:
        return True
    return prefix in ("B", "S", "O")


def _span_starts(prefix: str, kind: str, prev_prefix: str, prev_kind: str) -> bool:
    if prefix == "O":
        return False
    if prefix in ("B", "S"):
        return True
    return prev_prefix in ("O", "E", "S") or prev_kind != kind


def extract_spans(tags: Sequence[str], rule: str = "conlleval") -> list[tuple[str, int, int]]:
    """Spans of one sentence's tags (module docstring).

    Args:
      tags: one tag per word (IOB1, IOB2 or IOBES; mixing is allowed, as in conlleval).
      rule: "conlleval" or "reference" (the reference's get_span_labels).
    Returns:
      [(type, first word, last word)], inclusive, in order.
    """
    if rule == "reference":
        return _reference_spans(tags)
    if rule != "conlleval":
        raise ValueError(f"rule must be one of {SPAN_RULES}, got {rule!r}")
    spans = []
    start = None
    prev_prefix, prev_kind = "O", ""
    for index, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = _split_tag(tag)
        if start is not None and _span_ends(prefix, kind, prev_prefix, prev_kind):
            spans.append((prev_kind, start, index - 1))
            start = None
        if _span_starts(prefix, kind, prev_prefix, prev_kind):
            start = index
        prev_prefix, prev_kind = prefix, kind
    return spans


def _reference_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    spans = []
    start = 0
    last = "O"
    for index, tag in enumerate(tags):
        prefix, _ = _split_tag(tag)
        if prefix in ("B", "S", "O") and last != "O":
            spans.append((_split_tag(last)[1], start, index - 1))
        if prefix in ("B", "S") or last == "O":
            start = index
        last = tag
    if last != "O":
        spans.append((_split_tag(last)[1], start, len(tags) - 1))
    return spans


def to_bioes(tags: Sequence[str], rule: str = "conlleval") -> list[str]:
    """The same spans in BIOES (the reference's training encoding): S- single words, B-/I-/E-.
    ``rule``: how ``tags`` are read into spans (``extract_spans``)."""
    out = ["O"] * len(tags)
    for kind, start, end in extract_spans(tags, rule):
        if start == end:
            out[start] = f"S-{kind}"
            continue
        out[start] = f"B-{kind}"
        for index in range(start + 1, end):
            out[index] = f"I-{kind}"
        out[end] = f"E-{kind}"
    return out


def from_bioes(tags: Sequence[str]) -> list[str]:
    """BIOES predictions as IOB2 (S- -> B-, E- -> I-): what prediction files and metrics use."""
    return [
        ("B-" + tag[2:]) if tag.startswith("S-") else ("I-" + tag[2:]) if tag.startswith("E-") else tag for tag in tags
    ]


def span_metrics(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], rule: str = "conlleval"
) -> dict[str, float]:
    """Entity-level precision/recall/F1 and token accuracy, in percent.

    Args:
      gold, predicted: per sentence, one tag per word (same lengths).
      rule: the span rule of ``extract_spans``, "conlleval" or "reference".
    Returns:
      {"precision", "recall", "f1", "accuracy", "gold_spans", "predicted_spans",
      "correct_spans"}; precision (recall) is 0 without predicted (gold) spans.
    """
    correct = found = expected = right = words = 0
    for gold_tags, predicted_tags in zip(gold, predicted):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"{len(gold_tags)} gold tags but {len(predicted_tags)} predicted")
        gold_spans = set(extract_spans(gold_tags, rule))
        predicted_spans = set(extract_spans(predicted_tags, rule))
        correct += len(gold_spans & predicted_spans)
        expected += len(gold_spans)
        found += len(predicted_spans)
        right += sum(a == b for a, b in zip(gold_tags, predicted_tags))
        words += len(gold_tags)
    precision = 100.0 * correct / found if found else 0.0
    recall = 100.0 * correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": 100.0 * right / words if words else 0.0,
        "gold_spans": expected,
        "predicted_spans": found,
        "correct_spans": correct,
    }


# ---------------------------------------------------------------------------------------------
# First-sub-word alignment


def align(
    sentences: Sequence[Sentence],
    tokenizer,
    max_seq_length: int,
    tag_to_id: Optional[dict] = None,
    segment_id: int = 0,
    truncation: str = "score_all",
):
    """[CLS] pieces of every word [SEP], and where each word's first piece is.

    Args:
      sentences: the sentences (their tags are used when ``tag_to_id`` is given).
      tokenizer: electra_tf.tokenization.Tokenizer.
      max_seq_length: the packed length; at most max_seq_length - 2 pieces are kept.
      tag_to_id: tag -> class id, for training labels; None for prediction.
      segment_id: the token type of every real position (the reference's tagging uses 1).
      truncation: "score_all" or "reference" (module docstring). With "reference" a sentence's
        positions stop at its last kept word; a kept word whose pieces would not fit (where
        the reference fails an assertion) keeps its first pieces, as with "score_all".
    Returns:
      (features {"input_ids", "input_mask", "segment_ids"}: int32 [n, max_seq_length],
       labels {"tag_ids": int32, "tag_weights": float32 [n, max_seq_length]} or None,
       positions: per sentence, per word the position of its first piece or -1 (no piece, or
       truncated); "reference": only the kept words, truncated: how many sentences lost words).
    """
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
    flat = [word for sentence in sentences for word in sentence.words]
    pieces = tokenizer.encode(flat) if flat else []
    count = len(sentences)
    input_ids = np.zeros((count, max_seq_length), np.int32)
    input_mask = np.zeros((count, max_seq_length), np.int32)
    tag_ids = np.zeros((count, max_seq_length), np.int32)
    tag_weights = np.zeros((count, max_seq_length), np.float32)
    budget = max_seq_length - 2
    positions = []
    truncated = 0
    cursor = 0
    for row, sentence in enumerate(sentences):
        ids = [tokenizer.cls_id]
        word_positions = []
        lost = False
        # The reference's budget counts every word of the sentence, plus [CLS] and [SEP], once
        # more on top of the pieces (its len(words_to_tokens)).
        items = len(sentence.words) + 2
        for index in range(len(sentence.words)):
            word_pieces = pieces[cursor + index]
            if truncation == "reference" and items + len(ids) + 1 > max_seq_length:
                lost = True
                break
            room = budget - (len(ids) - 1)
            lost = lost or len(word_pieces) > room
            if not word_pieces or room <= 0:
                word_positions.append(-1)
                continue
            word_positions.append(len(ids))
            if tag_to_id is not None:
                tag_ids[row, len(ids)] = tag_to_id[sentence.tags[index]]
                tag_weights[row, len(ids)] = 1.0
            # A word cut in the middle keeps its first pieces: its tag is on the first one.
            ids.extend(word_pieces[:room])
        cursor += len(sentence.words)
        ids.append(tokenizer.sep_id)
        truncated += lost
        input_ids[row, : len(ids)] = ids
        input_mask[row, : len(ids)] = 1
        positions.append(word_positions)
    features = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": input_mask * np.int32(segment_id)}
    labels = {"tag_ids": tag_ids, "tag_weights": tag_weights} if tag_to_id is not None else None
    return features, labels, positions, truncated


def decode(
    logits: np.ndarray, positions: Sequence[Sequence[int]], tag_names: Sequence[str], scheme: str = "file"
) -> list[list[str]]:
    """One tag per word: the argmax at its first piece, DEFAULT_TAG where it has none.

    logits: float [n, T, num_tags]; positions: from ``align`` (a sentence truncated with
    "reference" gets tags for its kept words only). BIOES models' tags come back as IOB2
    (``from_bioes``).
    """
    best = np.argmax(logits, axis=-1)
    out = []
    for row, word_positions in enumerate(positions):
        tags = [tag_names[best[row, p]] if p >= 0 else DEFAULT_TAG for p in word_positions]
        out.append(from_bioes(tags) if scheme == "bioes" else tags)
    return out


def predict_tags(
    model,
    tokenizer,
    sentences: Sequence[Sentence],
    max_seq_length: int,
    tag_names: Sequence[str],
    scheme: str = "file",
    batch_size: int = 64,
    segment_id: int = 0,
) -> list[list[str]]:
    """Python prediction: a FinetuningModel with the tagging head -> one tag per word."""
    features, _, positions, _ = align(sentences, tokenizer, max_seq_length, segment_id=segment_id)
    logits = np.asarray(model.predict(features, batch_size=batch_size, verbose=0)["logits"])
    return decode(logits, positions, tag_names, scheme)


# ---------------------------------------------------------------------------------------------
# Fine-tuning hooks (called by electra_tf.finetuning)


def check_data_files(task: TaggingTask, data_dir: str) -> None:
    """Raises UserError naming the first missing train/dev file, before any training."""
    for split in ("train",) + task.dev_splits:
        path = split_file(data_dir, task, split)
        if not fileio.isfile(path):
            raise UserError(
                f"{path}: file not found; --data_dir must hold {task.directory}/"
                f"{SPLIT_FILES[split]} (CoNLL format) for --task={task.name}"
            )


def _log_truncation(task, split: str, truncated: int, total: int, max_seq_length: int) -> None:
    if truncated:
        fate = "lose their last words" if split == "train" else "get O for their last words"
        log(
            f"[{task.name}] WARNING: {truncated} of {total} {split} sentences are longer than "
            f"--max_seq_length={max_seq_length} WordPieces and {fate}"
        )


def prepare_data(task: TaggingTask, options, tokenizer, max_seq_length: int, tag_names: Optional[tuple] = None):
    """Reads, tags and aligns every split for fine-tuning.

    Args:
      task: a registry TaggingTask (no tag set yet).
      options: finetuning.FinetuningOptions (data_dir, tag_column, tagging_scheme, limits).
      tokenizer: the Tokenizer; max_seq_length: the packed length.
      tag_names: a fine-tuned model's tag set; then no training file is read (scoring only).
    Returns:
      (the task with tag_column, scheme and tag_names set, finetuning.TaskData): training
      arrays [n, max_seq_length] from ``align``; eval_sets["dev"] = (features, None,
      sentences, positions) and test_sets["test"] = (features, (sentences, positions)).
    """
    # Cycle: finetuning imports this module.
    from electra_tf import finetuning

    if options.use_tfds:
        raise UserError(f"--use_tfds: {task.name} reads CoNLL files; pass --data_dir")
    if options.tagging_scheme not in SCHEMES:
        raise UserError(f"--tagging_scheme={options.tagging_scheme}: use one of {', '.join(SCHEMES)}")
    if options.tagging_segment_id not in (0, 1):
        raise UserError(f"--tagging_segment_id={options.tagging_segment_id}: use 0 or 1")
    for flag, value, allowed in (
        ("tagging_span_rule", options.tagging_span_rule, SPAN_RULES),
        ("tagging_truncation", options.tagging_truncation, TRUNCATIONS),
        ("tag_set_from", options.tag_set_from, TAG_SETS),
    ):
        if value not in allowed:
            raise UserError(f"--{flag}={value}: use one of {', '.join(allowed)}")
    task = dataclasses.replace(
        task,
        tag_column=options.tag_column,
        scheme=options.tagging_scheme,
        segment_id=options.tagging_segment_id,
        span_rule=options.tagging_span_rule,
        truncation=options.tagging_truncation,
    )
    info = {"splits": {}}
    if tag_names is not None:
        return _prepare_eval_only(task, options, tokenizer, max_seq_length, tuple(tag_names), info)
    train, stats = read_conll(split_file(options.data_dir, task, "train"), task.tag_column)
    if options.max_train_examples:
        order = np.random.RandomState(options.seed).permutation(len(train))
        train = [train[i] for i in sorted(order[: options.max_train_examples])]
    if task.scheme == "bioes":
        train = [dataclasses.replace(s, tags=tuple(to_bioes(s.tags, task.span_rule))) for s in train]
    # Sorted, so the class ids do not depend on the order of the file.
    tags = {tag for sentence in train for tag in sentence.tags}
    if options.tag_set_from == "all_splits":
        tags |= _other_split_tags(task, options)
    tag_names = tuple(sorted(tags))
    task = dataclasses.replace(task, tag_names=tag_names)
    tag_to_id = {tag: index for index, tag in enumerate(tag_names)}
    features, labels, _, truncated = align(
        train, tokenizer, max_seq_length, tag_to_id, task.segment_id, task.truncation
    )
    _log_truncation(task, "train", truncated, len(train), max_seq_length)
    info["splits"]["train"] = dict(stats, used=len(train), truncated=truncated)
    info["tag_names"] = list(tag_names)
    eval_sets, test_sets = _eval_and_test_sets(task, options, tokenizer, max_seq_length, info)
    return task, finetuning.TaskData(features, labels, eval_sets, test_sets, info)


def _other_split_tags(task, options) -> set:
    """The tags of the dev and test files (in the training encoding), as the reference adds them
    to its label set; a test file without tags adds none."""
    tags = set()
    for split in task.dev_splits + task.test_splits:
        path = split_file(options.data_dir, task, split)
        is_test = split in task.test_splits
        if is_test and not fileio.isfile(path):
            continue
        for sentence in read_conll(path, task.tag_column, require_tags=not is_test)[0]:
            # A test file may hold tokens alone, or other columns where the tag would be.
            if sentence.tags is None or not all(_TAG_PATTERN.match(t) for t in sentence.tags):
                continue
            tags.update(to_bioes(sentence.tags, task.span_rule) if task.scheme == "bioes" else sentence.tags)
    return tags


def _prepare_eval_only(task, options, tokenizer, max_seq_length, tag_names, info):
    """prepare_data for scoring a fine-tuned model: its tag set, no training file."""
    # Cycle: finetuning imports this module.
    from electra_tf import finetuning

    task = dataclasses.replace(task, tag_names=tag_names)
    info["tag_names"] = list(tag_names)
    eval_sets, test_sets = _eval_and_test_sets(task, options, tokenizer, max_seq_length, info)
    return task, finetuning.TaskData({}, {}, eval_sets, test_sets, info)


def _eval_and_test_sets(task, options, tokenizer, max_seq_length, info):
    """(eval_sets, test_sets) of prepare_data for ``task`` (its tag_names set); fills info."""
    tag_names = task.tag_names
    eval_sets = {}
    for split in task.dev_splits:
        sentences, stats = read_conll(split_file(options.data_dir, task, split), task.tag_column)
        sentences = sentences[: options.max_eval_examples] if options.max_eval_examples else sentences
        dev_features, _, positions, truncated = align(
            sentences, tokenizer, max_seq_length, segment_id=task.segment_id, truncation=task.truncation
        )
        _log_truncation(task, split, truncated, len(sentences), max_seq_length)
        unseen = sorted(
            {kind for s in sentences for kind, _, _ in extract_spans(s.tags, task.span_rule)}
            - {_split_tag(tag)[1] for tag in tag_names}
        )
        if unseen:
            log(
                f"[{task.name}] WARNING: {split} has entity types never seen in training (so "
                f"never predicted): {', '.join(unseen)}"
            )
        info["splits"][split] = dict(stats, used=len(sentences), truncated=truncated)
        eval_sets[split] = (dev_features, None, sentences, positions)
    test_sets = {}
    if options.write_test_predictions:
        for split in task.test_splits:
            path = split_file(options.data_dir, task, split)
            if not fileio.isfile(path):
                log(f"[{task.name}] no {path}; skipping test predictions")
                continue
            sentences, stats = read_conll(path, task.tag_column, require_tags=False)
            test_features, _, positions, truncated = align(
                sentences, tokenizer, max_seq_length, segment_id=task.segment_id, truncation=task.truncation
            )
            _log_truncation(task, split, truncated, len(sentences), max_seq_length)
            info["splits"][split] = dict(stats, used=len(sentences), truncated=truncated)
            test_sets[split] = (test_features, (sentences, positions))
    return eval_sets, test_sets


def _write_tagged(path: str, rows_per_sentence) -> None:
    """Lines of space- or tab-joined columns, a blank line after each sentence, written under a
    temporary name and moved into place."""
    parts = []
    for rows in rows_per_sentence:
        parts.extend(line + "\n" for line in rows)
        parts.append("\n")
    fileio.write_text_atomic(path, "".join(parts))


TEST_PREDICTIONS_FILE = "test_predictions.txt"


def evaluate(task: TaggingTask, model, data, options, trial_dir: str) -> dict:
    """Predicts dev and test and writes their files into ``trial_dir``.

    Args:
      task: the task from ``prepare_data``; model: the fine-tuned FinetuningModel; data: its
      TaskData; options: FinetuningOptions (eval_batch_size).
    Returns:
      The dev metrics of ``span_metrics`` (with ``task.span_rule``) plus score (= f1). Writes
      dev_predictions.txt ("token gold predicted", conlleval's input: the scored words, so
      with the "reference" truncation a cut sentence's kept words only) and test_predictions.txt
      ("token<TAB>tag", every word, cut ones O), a blank line after each sentence, in input
      order.
    """
    metrics = {}
    for split, (features, _, sentences, positions) in data.eval_sets.items():
        logits = np.asarray(model.predict(features, batch_size=options.eval_batch_size, verbose=0)["logits"])
        predicted = decode(logits, positions, task.tag_names, task.scheme)
        # "reference" truncation: only the kept words have predictions, and only they count.
        gold = [s.tags[: len(tags)] for s, tags in zip(sentences, predicted)]
        metrics = span_metrics(gold, predicted, task.span_rule)
        _write_tagged(
            os.path.join(trial_dir, f"{split}_predictions.txt"),
            (
                [f"{w} {g} {p}" for w, g, p in zip(s.words, gold_tags, tags)]
                for s, gold_tags, tags in zip(sentences, gold, predicted)
            ),
        )
    metrics["score"] = metrics["f1"]
    for split, (features, (sentences, positions)) in data.test_sets.items():
        logits = np.asarray(model.predict(features, batch_size=options.eval_batch_size, verbose=0)["logits"])
        predicted = [
            tags + [DEFAULT_TAG] * (len(s.words) - len(tags))
            for s, tags in zip(sentences, decode(logits, positions, task.tag_names, task.scheme))
        ]
        name = TEST_PREDICTIONS_FILE if split == "test" else f"{split}_predictions.txt"
        _write_tagged(
            os.path.join(trial_dir, name),
            ([f"{w}\t{p}" for w, p in zip(s.words, tags)] for s, tags in zip(sentences, predicted)),
        )
    return metrics


def head_info(task: TaggingTask) -> dict:
    """What head.json records for export: {"tagging": {...}} (artifacts.tagging_settings)."""
    return {
        "tagging": artifacts.tagging_settings(
            scheme=task.scheme,
            default_tag=DEFAULT_TAG,
            tag_column=task.tag_column,
            segment_id=task.segment_id,
            span_rule=task.span_rule,
            truncation=task.truncation,
        )
    }


def copy_median_outputs(task_dir: str, median_trial_dir: str) -> None:
    """<task>/test_predictions.txt: the median trial's, when it wrote one."""
    source = os.path.join(median_trial_dir, TEST_PREDICTIONS_FILE)
    if fileio.isfile(source):
        fileio.copy(source, os.path.join(task_dir, TEST_PREDICTIONS_FILE), overwrite=True)
