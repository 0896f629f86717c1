"""Fine-tuning metrics exactly as GLUE and SQuAD define them (plain Python and numpy).

GLUE: accuracy, binary F1 (positive class 1), Matthews correlation (CoLA), Pearson and Spearman
correlation (STS-B, Spearman with average ranks for ties), and the GLUE average. SQuAD: exact match
and F1 after the official answer normalisation (lower-case, drop punctuation, drop the articles
a/an/the, collapse white space), maximised over the gold answers; SQuAD 2.0 scores an empty
prediction against an unanswerable question as correct and tunes the no-answer threshold on dev
as the official evaluation script's "best" scores do.
"""

from __future__ import annotations

import collections
import math
import re
import statistics
import string
from typing import Iterable, Mapping, Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# GLUE


def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """The fraction of ``predictions`` equal to ``labels`` (0.0 for no examples)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.size == 0:
        return 0.0
    return float(np.mean(labels == predictions))


def binary_f1(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """F1 of the positive class (label 1), as GLUE reports for MRPC and QQP."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    true_positive = float(np.sum((labels == 1) & (predictions == 1)))
    false_positive = float(np.sum((labels != 1) & (predictions == 1)))
    false_negative = float(np.sum((labels == 1) & (predictions != 1)))
    if true_positive == 0:
        return 0.0
    precision = true_positive / (true_positive + false_positive)
    recall = true_positive / (true_positive + false_negative)
    return 2 * precision * recall / (precision + recall)


def matthews_corrcoef(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); 0 when a margin is empty."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    tp = float(np.sum((labels == 1) & (predictions == 1)))
    tn = float(np.sum((labels != 1) & (predictions != 1)))
    fp = float(np.sum((labels != 1) & (predictions == 1)))
    fn = float(np.sum((labels == 1) & (predictions != 1)))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation of ``x`` and ``y`` (equal-length sequences); 0.0 when either is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.sum(x * x)) * float(np.sum(y * y)))
    return 0.0 if denominator == 0 else float(np.sum(x * y)) / denominator


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span (as scipy.stats.rankdata)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's on average ranks, so ties share their mean rank."""
    return pearson(average_ranks(x), average_ranks(y))


def glue_average(task_scores: Mapping[str, float]) -> float:
    """The GLUE score: the mean of the per-task scores (each already the task's own average)."""
    if not task_scores:
        raise ValueError("no task scores to average")
    return float(statistics.mean(task_scores.values()))


# ---------------------------------------------------------------------------------------------
# SQuAD (the official evaluate-v1.1 / evaluate-v2.0 definitions)

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop a/an/the, collapse white space."""
    text = text.lower()
    text = "".join(char for char in text if char not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact(prediction: str, gold: str) -> float:
    """1.0 if ``prediction`` and ``gold`` are equal after normalize_answer, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """Token-level F1 of ``prediction`` against one ``gold`` answer after normalize_answer (empty
    only matches empty)."""
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    # v2.0: an empty answer only matches an empty answer.
    if not prediction_tokens or not gold_tokens:
        return float(prediction_tokens == gold_tokens)
    common = collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(gold_answers: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    """exact_match and f1 in percent, averaged over every question in ``gold_answers``.

    gold_answers: question id -> gold answer texts (empty list: unanswerable, gold is "").
    A question without a prediction scores 0 (the official script warns and does the same).
    """
    exact_total = f1_total = 0.0
    for question_id, golds in gold_answers.items():
        golds = [gold for gold in golds if normalize_answer(gold)] or [""]
        if question_id not in predictions:
            continue
        prediction = predictions[question_id]
        exact_total += max(squad_exact(prediction, gold) for gold in golds)
        f1_total += max(squad_f1(prediction, gold) for gold in golds)
    count = max(len(gold_answers), 1)
    return {"exact_match": 100.0 * exact_total / count, "f1": 100.0 * f1_total / count}


def best_null_threshold(
    gold_answers: Mapping[str, Sequence[str]], span_predictions: Mapping[str, str], null_scores: Mapping[str, float]
) -> dict[str, float]:
    """SQuAD 2.0: the no-answer threshold that maximises F1 on this set (official "best_f1").

    A question gets the empty answer when null_scores[id] > threshold, else its span prediction.
    Returns best_exact, best_exact_threshold, best_f1, best_f1_threshold (scores in percent).
    """
    ids = list(gold_answers)
    has_answer = {qid: any(normalize_answer(g) for g in gold_answers[qid]) for qid in ids}
    exact = {}
    f1 = {}
    for qid in ids:
        golds = [g for g in gold_answers[qid] if normalize_answer(g)] or [""]
        prediction = span_predictions.get(qid, "")
        exact[qid] = max(squad_exact(prediction, gold) for gold in golds)
        f1[qid] = max(squad_f1(prediction, gold) for gold in golds)
    result = {}
    for name, scores in (("exact", exact), ("f1", f1)):
        # Start from "answer nothing": every unanswerable question is right.
        current = best = float(sum(not has_answer[qid] for qid in ids))
        best_threshold = min(null_scores.values(), default=0.0) - 1.0
        for qid in sorted(ids, key=lambda q: null_scores.get(q, 0.0)):
            # Lowering the threshold below this score makes this question answered.
            if has_answer[qid]:
                current += scores[qid]
            elif normalize_answer(span_predictions.get(qid, "")):
                current -= 1.0
            if current > best:
                best = current
                best_threshold = null_scores.get(qid, 0.0)
        result[f"best_{name}"] = 100.0 * best / max(len(ids), 1)
        # apply_null_threshold answers every question whose null score is <= the threshold.
        result[f"best_{name}_threshold"] = best_threshold
    return result


def apply_null_threshold(
    span_predictions: Mapping[str, str], null_scores: Mapping[str, float], threshold: float
) -> dict[str, str]:
    """SQuAD 2.0's final answers: the empty answer where the null score exceeds ``threshold``.

    Args:
      span_predictions: question id -> best span text.
      null_scores: question id -> no-answer score (a missing id counts as 0.0).
      threshold: e.g. best_null_threshold's best_f1_threshold, tuned on dev.

    Returns:
      question id -> answer text ("" for predicted unanswerable).
    """
    return {qid: ("" if null_scores.get(qid, 0.0) > threshold else text) for qid, text in span_predictions.items()}


def median(values: Iterable[float]) -> float:
    """The median of ``values`` as a float (the mean of the middle two for an even count)."""
    return float(statistics.median(list(values)))
