"""Fine-tuning end to end: SST-2 learns, STS-B/CoLA/MNLI/QNLI/QQP/SQuAD run and write their files."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from electra_tf import finetuning
from electra_tf.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def _options(tmp_path, vocab, **overrides):
    values = dict(
        tasks="sst-2",
        output_dir=str(tmp_path / "out"),
        config="electra_tiny",
        vocab_file=str(vocab),
        log_every_steps=1000,
        save_weights=False,
    )
    values.update(overrides)
    return finetuning.FinetuningOptions(**values)


def _results(output_dir, task):
    with open(os.path.join(output_dir, task, "results.json")) as handle:
        return json.load(handle)


def _tsv(path):
    with open(path) as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


def test_tiny_random_init_model_beats_majority_on_sst2(tmp_path, shared_data, bert_vocab_file):
    """Measured: 77.0% dev accuracy after 250 steps on 8,000 training sentences (random-init
    electra_tiny, the Small recipe's lr 3e-4); the majority class is 50.9%. The bar leaves room
    for other seeds and CPUs."""
    options = _options(
        tmp_path,
        bert_vocab_file,
        data_dir=str(shared_data / "glue"),
        max_train_examples=8000,
        num_train_steps=250,
        write_test_predictions=False,
    )
    summary = finetuning.run_finetuning(options)
    dev = _tsv(tmp_path / "out" / "sst-2" / "trial_1" / "dev_predictions.tsv")
    labels = [row[1] for row in dev[1:]]
    majority = max(labels.count("0"), labels.count("1")) / len(labels)
    assert len(labels) == 872 and majority == pytest.approx(444 / 872)
    accuracy = summary["tasks"]["sst-2"]["median_score"]
    predicted = [row[2] for row in dev[1:]]
    assert accuracy == pytest.approx(100.0 * np.mean([a == b for a, b in zip(labels, predicted)]))
    assert accuracy >= 100 * majority + 10.0, accuracy
    results = _results(tmp_path / "out", "sst-2")
    assert results["model"]["pretrained"] is False
    assert results["data"]["splits"]["train"]["used"] == 8000
    assert results["hyperparameters"]["layerwise_decay"] == 0.8
    assert results["hyperparameters"]["learning_rate"] == 3e-4


def test_stsb_regression_and_cola_mcc_end_to_end(tmp_path, shared_data, bert_vocab_file):
    options = _options(
        tmp_path,
        bert_vocab_file,
        tasks="sts-b,cola",
        data_dir=str(shared_data / "glue"),
        max_train_examples=128,
        max_eval_examples=200,
        num_train_steps=4,
    )
    summary = finetuning.run_finetuning(options)
    out = tmp_path / "out"
    stsb, cola = _results(out, "sts-b"), _results(out, "cola")
    assert set(stsb["median"]) == {"pearson", "spearman", "score"}
    assert set(cola["median"]) == {"mcc", "score"}
    assert -100.0 <= cola["median"]["mcc"] <= 100.0
    assert -100.0 <= stsb["median"]["pearson"] <= 100.0
    assert summary["glue_average"] == pytest.approx((stsb["median"]["score"] + cola["median"]["score"]) / 2)
    # Leaderboard files: every test row, GLUE's formats.
    stsb_test = _tsv(out / "glue_submission" / "STS-B.tsv")
    assert stsb_test[0] == ["index", "prediction"] and len(stsb_test) == 1379 + 1
    assert all(0.0 <= float(row[1]) <= 5.0 for row in stsb_test[1:])
    cola_test = _tsv(out / "glue_submission" / "CoLA.tsv")
    assert len(cola_test) == 1063 + 1 and {row[1] for row in cola_test[1:]} <= {"0", "1"}
    assert [row[0] for row in cola_test[1:4]] == ["0", "1", "2"]
    dev = _tsv(out / "sts-b" / "trial_1" / "dev_predictions.tsv")
    assert len(dev) == 201 and dev[0] == ["guid", "label", "prediction"]
    # STS-B trains on both sentence orders by default (the reference's double_unordered).
    assert stsb["data"]["splits"]["train"]["used"] == 256
    assert stsb["hyperparameters"]["swap_sentence_order"] is True
    assert cola["data"]["splits"]["train"]["used"] == 128
    assert stsb["hyperparameters"]["layerwise_decay_formula"] == "reference"


def test_sentence_order_swap_is_on_for_mrpc_and_sts_b_and_can_be_turned_off():
    from electra_tf import finetuning_tasks

    defaults = finetuning.FinetuningOptions(tasks="mrpc", output_dir="x")
    for name, expected in (("mrpc", True), ("sts-b", True), ("sst-2", False), ("rte", False)):
        assert finetuning.swap_sentence_order(finetuning_tasks.get_task(name), defaults) is expected
    off = dataclasses.replace(defaults, swap_sentence_order=False)
    assert finetuning.swap_sentence_order(finetuning_tasks.get_task("mrpc"), off) is False
    on = dataclasses.replace(defaults, swap_sentence_order=True)
    with pytest.raises(UserError, match="applies to mrpc and sts-b, not rte"):
        finetuning.swap_sentence_order(finetuning_tasks.get_task("rte"), on)


def test_regression_learns_scaled_targets_and_losses_are_summed_over_the_batch():
    """The reference divides STS-B scores by 5 and sums the squared errors (and every task's
    loss) over the batch; predictions come back in the task's units."""
    import keras

    from electra_tf import finetuning_models, modeling
    from electra_tf.config import load_config

    config = load_config("electra_tiny", {"vocab_size": 200, "num_hidden_layers": 1})
    features = {
        "input_ids": np.array([[101, 7, 8, 102], [101, 9, 102, 0]], np.int32),
        "input_mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.int32),
        "segment_ids": np.zeros((2, 4), np.int32),
    }
    model = finetuning_models.FinetuningModel(modeling.ElectraBackbone(config), "regression", target_scale=5.0)
    outputs = model(features, training=False)
    dense = keras.ops.convert_to_numpy(
        model.output_dense(model.backbone(features, training=False, cls_only=True)[:, 0])
    )[:, 0]
    predictions = keras.ops.convert_to_numpy(outputs["predictions"])
    np.testing.assert_allclose(predictions, 5.0 * dense, rtol=1e-6)
    labels = {"label": np.array([4.0, 1.5], np.float32)}
    loss = float(model.compute_loss(y=labels, y_pred=outputs))
    assert loss == pytest.approx(float(np.sum((dense - labels["label"] / 5.0) ** 2)), rel=1e-5)
    classifier = finetuning_models.FinetuningModel(modeling.ElectraBackbone(config), "classification", num_labels=3)
    class_out = classifier(features, training=False)
    per_example = keras.ops.convert_to_numpy(classifier.task_loss({"label": np.array([0, 2])}, class_out))
    assert per_example.shape == (2,)
    assert float(classifier.compute_loss(y={"label": np.array([0, 2])}, y_pred=class_out)) == (
        pytest.approx(per_example.sum(), rel=1e-6)
    )


def test_mnli_fixture_two_trials_matched_and_mismatched(tmp_path, bert_vocab_file):
    options = _options(
        tmp_path,
        bert_vocab_file,
        tasks="mnli",
        data_dir=str(FIXTURES / "glue"),
        num_train_steps=2,
        train_batch_size=4,
        num_trials=2,
    )
    summary = finetuning.run_finetuning(options)
    out = tmp_path / "out"
    mnli = _results(out, "mnli")
    assert {"dev_matched/accuracy", "dev_mismatched/accuracy"} <= set(mnli["median"])
    assert [t["seed"] for t in mnli["trials"]] == [12345, 12346]
    scores = [t["metrics"]["score"] for t in mnli["trials"]]
    assert mnli["median"]["score"] == pytest.approx(np.median(scores))
    assert mnli["median"]["score"] == pytest.approx(
        np.mean([t["metrics"]["dev_matched/accuracy"] for t in mnli["trials"]])
    )
    # The submission files are the lower-median trial's.
    middle = min(mnli["trials"], key=lambda t: t["metrics"]["score"])
    assert mnli["median_trial"] == middle["trial"] + 1
    for name, rows in (("MNLI-m.tsv", 4), ("MNLI-mm.tsv", 3)):
        table = _tsv(out / "glue_submission" / name)
        assert table == _tsv(out / "mnli" / f"trial_{middle['trial'] + 1}" / name)
        assert len(table) == rows + 1 and table[0] == ["index", "prediction"]
        assert {row[1] for row in table[1:]} <= {"entailment", "neutral", "contradiction"}
    assert summary["glue_average_over"] == ["mnli"]


def test_squad_v11_trained_and_evaluated_on_different_dev_articles(tmp_path, shared_data, bert_vocab_file):
    options = _options(
        tmp_path,
        bert_vocab_file,
        tasks="squad-v1.1",
        data_dir=str(shared_data / "squad" / "v1.1"),
        squad_holdout_articles=2,
        max_train_examples=192,
        max_eval_examples=60,
        max_seq_length=128,
        doc_stride=64,
        num_train_steps=4,
        train_batch_size=16,
    )
    finetuning.run_finetuning(options)
    out = tmp_path / "out" / "squad-v1.1"
    results = _results(tmp_path / "out", "squad-v1.1")
    assert results["data"]["splits"]["train"]["articles"] == 46
    assert results["data"]["splits"]["dev"]["used_questions"] == 60
    with open(shared_data / "squad" / "v1.1" / "dev-v1.1.json") as handle:
        document = json.load(handle)
    held_out = {
        qa["id"]: paragraph["context"]
        for article in document["data"][-2:]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    predictions = json.loads((out / "predictions.json").read_text())
    assert len(predictions) == 60 and set(predictions) <= set(held_out)
    assert all(text and text in held_out[qid] for qid, text in predictions.items())
    assert 0.0 <= results["median"]["exact_match"] <= results["median"]["f1"] <= 100.0
    nbest = json.loads((out / "trial_1" / "dev_nbest.json").read_text())
    assert all(len(entries) <= 20 for entries in nbest.values())


def test_squad_v2_fixture_tunes_the_null_threshold(tmp_path, bert_vocab_file):
    options = _options(
        tmp_path,
        bert_vocab_file,
        tasks="squad-v2.0",
        data_dir=str(FIXTURES / "squad_v2"),
        max_seq_length=64,
        doc_stride=16,
        max_query_length=16,
        num_train_steps=2,
        train_batch_size=4,
    )
    finetuning.run_finetuning(options)
    results = _results(tmp_path / "out", "squad-v2.0")
    metrics = results["trials"][0]["metrics"]
    assert {"best_f1", "best_f1_threshold", "null_threshold", "exact_match"} <= set(metrics)
    assert metrics["f1"] == pytest.approx(metrics["best_f1"])
    predictions = json.loads((tmp_path / "out" / "squad-v2.0" / "predictions.json").read_text())
    assert len(predictions) == 5


def test_init_checkpoint_outputs_reload_and_overwrite_guard(tmp_path, shared_data, bert_vocab_file):
    from electra_tf import config as config_lib
    from electra_tf import modeling

    config = config_lib.load_config("electra_tiny", {"num_hidden_layers": 1})
    backbone = modeling.ElectraBackbone(config)
    pretrained = tmp_path / "model_dir" / "pretrained"
    pretrained.mkdir(parents=True)
    config.to_json_file(pretrained / "config.json")
    # run_pretraining's --model_dir also has a config.json beside pretrained/.
    config.to_json_file(tmp_path / "model_dir" / "config.json")
    backbone.save_weights(str(pretrained / "backbone.weights.h5"))
    options = _options(
        tmp_path,
        bert_vocab_file,
        tasks="rte",
        data_dir=str(shared_data / "glue"),
        init_checkpoint=str(tmp_path / "model_dir"),
        config="no-such-preset",
        max_train_examples=32,
        max_eval_examples=40,
        num_train_steps=2,
        learning_rate=1e-7,
        save_weights=True,
        write_test_predictions=False,
    )
    finetuning.run_finetuning(options)
    results = _results(tmp_path / "out", "rte")
    assert results["model"]["pretrained"] is True
    assert results["model"]["config"]["num_hidden_layers"] == 1
    head, model = finetuning.load_finetuned(str(tmp_path / "out" / "rte" / "trial_1" / "finetuned"))
    assert head["label_names"] == ["entailment", "not_entailment"] and head["head"] == "classification"
    # The encoder started from the checkpoint (a 1e-7 rate barely moves it).
    np.testing.assert_allclose(
        np.asarray(model.backbone.embeddings.word_embeddings),
        np.asarray(backbone.embeddings.word_embeddings),
        atol=1e-5,
    )
    with pytest.raises(UserError, match="results.json already exists; pass --overwrite"):
        finetuning.run_finetuning(options)
    with pytest.raises(UserError, match="hidden_size cannot change with --init_checkpoint"):
        finetuning.run_finetuning(dataclasses.replace(options, hparams={"hidden_size": 64}, overwrite=True))
    with pytest.raises(UserError, match=r"MRPC/train.tsv: file not found"):
        finetuning.run_finetuning(
            _options(tmp_path / "missing", bert_vocab_file, tasks="qnli,mrpc", data_dir=str(FIXTURES / "glue"))
        )
    with pytest.raises(UserError, match="--init_checkpoint: .* not found"):
        finetuning.run_finetuning(
            _options(tmp_path, bert_vocab_file, tasks="rte", init_checkpoint=str(tmp_path), output_dir="x")
        )


def test_cli_reports_bad_input_in_one_line(tmp_path, bert_vocab_file):
    rte = tmp_path / "glue" / "RTE"
    rte.mkdir(parents=True)
    (rte / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tyes\n")
    (rte / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    command = [
        sys.executable,
        "-m",
        "electra_tf.run_finetuning",
        "--task=rte",
        f"--data_dir={tmp_path / 'glue'}",
        "--config=electra_tiny",
        f"--vocab_file={bert_vocab_file}",
        f"--output_dir={tmp_path / 'out'}",
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in completed.stderr
    assert f"{rte / 'train.tsv'}:2: unknown RTE label 'yes'" in errors[0]
