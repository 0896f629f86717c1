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
import unicodedata
from typing import Mapping, Optional, Sequence

import numpy as np

from electra_tf import fileio
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


def read_squad(path: str, *, is_training: bool, version: str = "1.1"
               ) -> tuple[list[SquadExample], dict]:
    """Questions of an official SQuAD JSON file and reading statistics.

    For training, each answerable question needs an answer whose answer_start points at its text
    in the context; a mismatch is a UserError naming file, line and question id. Evaluation only
    needs the gold texts, so offsets are not checked there.
    """
    if not fileio.isfile(path):
        raise UserError(f"{path}: SQuAD file not found; give the official train/dev JSON "
                        f"(e.g. {'train' if is_training else 'dev'}-v{version}.json)")
    with fileio.open(path, "r") as handle:
        raw = handle.read()
    if not raw.strip():
        raise UserError(f"{path}: file is empty; expected the official SQuAD JSON")
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise UserError(f"{path}:1: not a SQuAD file: expected an object with a 'data' list of "
                        "articles")
    examples = []
    for article_index, article in enumerate(document["data"]):
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise UserError(f"{path}: article {article_index} has a paragraph without a "
                                "'context' string")
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
                        raise UserError(f"{where()}: question {qid} has an answer without "
                                        "'text' and integer 'answer_start'") from None
                if is_training and not impossible:
                    if not answers:
                        raise UserError(f"{where()}: training question {qid} has no answer and "
                                        "is not marked is_impossible")
                    text, start = answers[0]
                    if context[start:start + len(text)] != text:
                        found = context[start:start + len(text)]
                        raise UserError(f"{where()}: question {qid}: answer {text!r} does not "
                                        f"match its context at answer_start {start} (context "
                                        f"there has {found!r}); fix answer_start")
                    answers = answers[:1]
                examples.append(SquadExample(qid, qa["question"], context, answers, impossible,
                                             article.get("title", ""), article_index))
    if not examples:
        raise UserError(f"{path}: no questions found")
    return examples, {"file": path, "questions": len(examples),
                      "articles": len(document["data"])}


# ---------------------------------------------------------------------------------------------
# Character offsets of WordPieces


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def _is_dropped(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return ord(char) == 0 or ord(char) == 0xFFFD or unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F
            or 0x2B820 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF
            or 0x2F800 <= code <= 0x2FA1F)


def basic_words(text: str) -> list[tuple[str, int, int]]:
    """BERT's basic-tokenizer words with their [start, end) character spans in ``text``."""
    words = []
    start = None
    for position, char in enumerate(text):
        if _is_whitespace(char) or _is_dropped(char):
            # A dropped character inside a word does not split it for BERT, but it is rare
            # enough (soft hyphens, zero-width joiners) that ending the word is harmless.
            if start is not None:
                words.append((text[start:position], start, position))
                start = None
        elif _is_punctuation(char) or _is_cjk(char):
            if start is not None:
                words.append((text[start:position], start, position))
                start = None
            words.append((char, position, position + 1))
        elif start is None:
            start = position
    if start is not None:
        words.append((text[start:], start, len(text)))
    return words


def _normalized_length(word: str, do_lower_case: bool) -> int:
    if not do_lower_case:
        return len(word)
    decomposed = unicodedata.normalize("NFD", word.lower())
    return sum(1 for char in decomposed if unicodedata.category(char) != "Mn")


def context_pieces(text: str, tokenizer, do_lower_case: bool = True) -> ContextPieces:
    """WordPiece ids of ``text`` with each piece's character span in ``text``."""
    words = basic_words(text)
    pieces = ContextPieces([], [], [])
    if not words:
        return pieces
    word_ids = tokenizer.encode([word for word, _, _ in words])
    for (word, start, end), ids in zip(words, word_ids):
        tokens = tokenizer.convert_ids_to_tokens(ids)
        lengths = [len(token[2:]) if index and token.startswith("##") else len(token)
                   for index, token in enumerate(tokens)]
        exact = (tokenizer.unk_id not in ids and sum(lengths) == len(word)
                 and _normalized_length(word, do_lower_case) == len(word))
        offset = start
        for token_id, length in zip(ids, lengths):
            pieces.ids.append(int(token_id))
            if exact:
                pieces.starts.append(offset)
                pieces.ends.append(offset + length)
                offset += length
            else:
                pieces.starts.append(start)
                pieces.ends.append(end)
    return pieces


def answer_piece_span(pieces: ContextPieces, start_char: int, end_char: int
                      ) -> Optional[tuple[int, int]]:
    """First and last piece overlapping [start_char, end_char), or None."""
    first = last = None
    for index, (start, end) in enumerate(zip(pieces.starts, pieces.ends)):
        if end > start_char and start < end_char:
            if first is None:
                first = index
            last = index
    return None if first is None else (first, last)


# ---------------------------------------------------------------------------------------------
# Windows


@dataclasses.dataclass
class SquadSettings:
    max_seq_length: int = 512
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20


def window_starts(num_pieces: int, window_length: int, doc_stride: int) -> list[int]:
    starts = []
    start = 0
    while True:
        starts.append(start)
        if start + window_length >= num_pieces:
            return starts
        start += min(window_length, doc_stride)


def _max_context_flags(window_starts_list, window_length, num_pieces, window) -> np.ndarray:
    """For window ``window``: per covered piece, whether no other window gives it more context."""
    start = window_starts_list[window]
    length = min(window_length, num_pieces - start)
    flags = np.zeros(length, dtype=bool)
    for offset in range(length):
        piece = start + offset
        best_score, best_window = None, None
        for other, other_start in enumerate(window_starts_list):
            other_length = min(window_length, num_pieces - other_start)
            if not other_start <= piece < other_start + other_length:
                continue
            left, right = piece - other_start, other_start + other_length - 1 - piece
            score = min(left, right) + 0.01 * other_length
            if best_score is None or score > best_score:
                best_score, best_window = score, other
        flags[offset] = best_window == window
    return flags


def featurize(examples: Sequence[SquadExample], tokenizer, settings: SquadSettings, *,
              is_training: bool, do_lower_case: bool = True, progress=None
              ) -> tuple[list[SquadFeature], list[ContextPieces], dict]:
    """Windows of every question; also the context pieces (per example) and counts."""
    cls_id, sep_id = tokenizer.cls_id, tokenizer.sep_id
    seq = settings.max_seq_length
    questions = tokenizer.encode([example.question for example in examples]) if examples else []
    pieces_by_context: dict[str, ContextPieces] = {}
    all_pieces = []
    features = []
    counts = collections.Counter()
    for example_index, (example, question_ids) in enumerate(zip(examples, questions)):
        if example.context not in pieces_by_context:
            pieces_by_context[example.context] = context_pieces(example.context, tokenizer,
                                                                do_lower_case)
        pieces = pieces_by_context[example.context]
        all_pieces.append(pieces)
        question_ids = question_ids[:settings.max_query_length]
        window_length = seq - len(question_ids) - 3
        if window_length < 1:
            raise UserError(f"max_seq_length {seq} leaves no room for the context after a "
                            f"{len(question_ids)}-token question; raise max_seq_length or lower "
                            "max_query_length")
        answer_span = None
        if is_training and not example.is_impossible and example.answers:
            text, start_char = example.answers[0]
            answer_span = answer_piece_span(pieces, start_char, start_char + len(text))
            if answer_span is None:
                counts["answers_without_pieces"] += 1
                continue
        starts = window_starts(len(pieces.ids), window_length, settings.doc_stride)
        for window_index, start in enumerate(starts):
            length = min(window_length, len(pieces.ids) - start)
            ids = [cls_id] + question_ids + [sep_id] + pieces.ids[start:start + length] + [sep_id]
            context_offset = len(question_ids) + 2
            input_ids = np.zeros(seq, np.int32)
            input_ids[:len(ids)] = ids
            input_mask = np.zeros(seq, np.int32)
            input_mask[:len(ids)] = 1
            segment_ids = np.zeros(seq, np.int32)
            segment_ids[context_offset:len(ids)] = 1
            piece_index = np.full(seq, -1, np.int32)
            piece_index[context_offset:context_offset + length] = np.arange(start, start + length)
            max_context = np.zeros(seq, bool)
            max_context[context_offset:context_offset + length] = _max_context_flags(
                starts, window_length, len(pieces.ids), window_index)
            feature = SquadFeature(example_index, window_index, input_ids, input_mask,
                                   segment_ids, piece_index, max_context,
                                   is_impossible=example.is_impossible)
            if answer_span is not None:
                first, last = answer_span
                if start <= first and last < start + length:
                    feature.start_position = first - start + context_offset
                    feature.end_position = last - start + context_offset
                else:
                    counts["windows_without_answer"] += 1
            features.append(feature)
        if progress is not None:
            progress.update(questions=1)
    counts["windows"] = len(features)
    return features, all_pieces, dict(counts)


def feature_arrays(features: Sequence[SquadFeature]) -> tuple[dict, dict]:
    """Stacked model inputs and labels: ({input_ids, input_mask, segment_ids}: int32 [n, seq],
    {start_position, end_position, is_impossible}: int32 [n])."""
    inputs = {name: np.stack([getattr(f, name) for f in features])
              for name in ("input_ids", "input_mask", "segment_ids")}
    labels = {"start_position": np.array([f.start_position for f in features], np.int32),
              "end_position": np.array([f.end_position for f in features], np.int32),
              "is_impossible": np.array([int(f.is_impossible) for f in features], np.int32)}
    return inputs, labels


# ---------------------------------------------------------------------------------------------
# Decoding


def _top_indices(logits: np.ndarray, count: int) -> np.ndarray:
    return np.argsort(-logits, kind="stable", axis=-1)[..., :count]


def is_joint_output(outputs: Mapping) -> bool:
    """Whether ``outputs`` come from the joint span head (a beam) rather than the independent
    one (start_logits and end_logits)."""
    return "start_top_index" in outputs


def span_beams(outputs: Mapping, n_best_size: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
        return (np.asarray(outputs["start_top_index"]),
                np.asarray(outputs["start_top_log_probs"], np.float32),
                np.asarray(outputs["end_top_index"]),
                np.asarray(outputs["end_top_log_probs"], np.float32))
    starts = np.asarray(outputs["start_logits"], np.float32)
    ends = np.asarray(outputs["end_logits"], np.float32)
    start_index = _top_indices(starts, n_best_size)
    end_index = _top_indices(ends, n_best_size)
    start_score = np.take_along_axis(starts, start_index, axis=1)
    end_score = np.take_along_axis(ends, end_index, axis=1)
    shape = (len(starts), start_index.shape[1], end_index.shape[1])
    return (start_index, start_score, np.broadcast_to(end_index[:, None, :], shape),
            np.broadcast_to(end_score[:, None, :], shape))


def decode_predictions(examples: Sequence[SquadExample], features: Sequence[SquadFeature],
                       pieces: Sequence[ContextPieces], outputs: Mapping,
                       settings: SquadSettings
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
        null_spans = (np.asarray(outputs["start_logits"], np.float32)[:, 0]
                      + np.asarray(outputs["end_logits"], np.float32)[:, 0])
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
                    candidates.append((float(score), feature_index,
                                       context_pieces_.starts[first], context_pieces_.ends[last]))
        # Stable: equal scores keep window, start-rank, end-rank order (the export's argmax).
        candidates.sort(key=lambda item: -item[0])
        seen, entries = set(), []
        for score, feature_index, start_char, end_char in candidates:
            text = example.context[start_char:end_char]
            if text in seen:
                continue
            seen.add(text)
            entries.append({"text": text, "score": score, "start_char": start_char,
                            "feature": feature_index})
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
        nbest[example.qid] = [{k: v for k, v in entry.items() if k != "feature"}
                              for entry in entries]
    return predictions, nbest, null_scores


def gold_answers(examples: Sequence[SquadExample]) -> dict[str, list[str]]:
    return {example.qid: ([] if example.is_impossible else example.answer_texts)
            for example in examples}


def split_by_article(examples: Sequence[SquadExample], num_eval_articles: int
                     ) -> tuple[list[SquadExample], list[SquadExample]]:
    """(train, eval): the last ``num_eval_articles`` articles are held out for evaluation."""
    articles = sorted({example.article_index for example in examples})
    held_out = set(articles[len(articles) - num_eval_articles:])
    return ([e for e in examples if e.article_index not in held_out],
            [e for e in examples if e.article_index in held_out])


def write_json(path: str, value: Mapping) -> None:
    with fileio.open(path, "w") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
