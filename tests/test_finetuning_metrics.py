"""GLUE and SQuAD metrics on hand-computed cases and on the SQuAD dev file's own answers."""

import json
import math

import pytest

from electra_tf import finetuning_metrics as metrics

LABELS = [1, 1, 1, 0, 0, 0, 1, 0]
PREDICTIONS = [1, 0, 1, 0, 1, 0, 1, 0]  # TP 3, FN 1, FP 1, TN 3


def test_accuracy_f1_and_matthews_by_hand():
    assert metrics.accuracy(LABELS, PREDICTIONS) == pytest.approx(6 / 8)
    assert metrics.binary_f1(LABELS, PREDICTIONS) == pytest.approx(0.75)  # P = R = 3/4
    # (3*3 - 1*1) / sqrt(4*4*4*4)
    assert metrics.matthews_corrcoef(LABELS, PREDICTIONS) == pytest.approx(0.5)
    assert metrics.matthews_corrcoef([1, 0, 1], [1, 1, 1]) == 0.0  # an empty margin
    assert metrics.binary_f1([0, 0], [0, 0]) == 0.0
    assert metrics.matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)


def test_pearson_and_spearman_with_ties_by_hand():
    # dx = (-1, 0, 1), dy = (-7/3, -1/3, 8/3): 5 / sqrt(2 * 114/9)
    assert metrics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9))
    # ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5)
    assert list(metrics.average_ranks([1, 2, 2, 3])) == [1, 2.5, 2.5, 4]
    assert metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert metrics.spearman([1, 2, 3], [10, 20, 300]) == pytest.approx(1.0)


def test_glue_average_and_median():
    assert metrics.glue_average({"cola": 50.0, "sst-2": 90.0, "rte": 70.0}) == pytest.approx(70.0)
    assert metrics.median([3.0, 1.0, 2.0, 10.0]) == 2.5
    with pytest.raises(ValueError):
        metrics.glue_average({})


def test_squad_normalisation_exact_and_f1_by_hand():
    assert metrics.normalize_answer("The  Cat's, sat!") == "cats sat"
    assert metrics.normalize_answer("An apple a day") == "apple day"
    assert metrics.squad_exact("the Cat sat.", "cat sat") == 1.0
    # "cat sat" vs "cat sat down": P = 1, R = 2/3
    assert metrics.squad_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert metrics.squad_f1("", "") == 1.0
    assert metrics.squad_f1("", "cat") == 0.0
    scores = metrics.squad_scores({"q1": ["Paris", "in Paris"], "q2": ["1876"]}, {"q1": "in paris", "q2": "1877"})
    assert scores == {"exact_match": 50.0, "f1": 50.0}


def test_squad_metric_on_dev_gold_answers(shared_data):
    with open(shared_data / "squad" / "v1.1" / "dev-v1.1.json") as handle:
        document = json.load(handle)
    gold = {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for article in document["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    assert len(gold) == 10570
    perfect = metrics.squad_scores(gold, {qid: answers[0] for qid, answers in gold.items()})
    assert perfect == {"exact_match": 100.0, "f1": 100.0}
    # Perturbed: every 4th question answered with an extra word (EM 0, F1 < 1 there), every 10th
    # missing.
    perturbed = {}
    for index, (qid, answers) in enumerate(gold.items()):
        if index % 10 == 9:
            continue
        perturbed[qid] = answers[0] + " banana" if index % 4 == 0 else answers[0]
    scores = metrics.squad_scores(gold, perturbed)
    assert scores["exact_match"] < scores["f1"] < 100.0
    expected_exact = 100.0 * sum(1 for i in range(len(gold)) if i % 10 != 9 and i % 4 != 0) / len(gold)
    assert scores["exact_match"] == pytest.approx(expected_exact)


def test_squad2_null_threshold_search():
    gold = {"a": ["x"], "b": [], "c": ["y"], "d": []}
    spans = {"a": "x", "b": "z", "c": "w", "d": "v"}
    null = {"a": -3.0, "b": 2.0, "c": 0.5, "d": 1.0}
    # Answering a only (threshold -3): a right, b, d right (empty), c wrong -> 3/4.
    best = metrics.best_null_threshold(gold, spans, null)
    assert best["best_exact"] == pytest.approx(75.0)
    assert best["best_exact_threshold"] == -3.0
    final = metrics.apply_null_threshold(spans, null, best["best_f1_threshold"])
    assert final == {"a": "x", "b": "", "c": "", "d": ""}
    assert metrics.squad_scores(gold, final)["exact_match"] == pytest.approx(75.0)
