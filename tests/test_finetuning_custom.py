"""--task=custom (the user's CSV/TSV files), one-line errors for files of the wrong shape,
fine-tuning as a long job (TensorBoard scalars, checkpoints, exact resume after a kill) and
--do_train=false scoring of a fine-tuned model."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import exporter, finetuning, finetuning_tasks
from electra_tf.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
WORDS = ["good", "bad", "great", "awful", "fine", "poor"]


def _options(tmp_path, vocab, **overrides):
    values = dict(
        tasks="custom",
        output_dir=str(tmp_path / "out"),
        config="electra_tiny",
        hparams={"num_hidden_layers": 1},
        vocab_file=str(vocab),
        max_seq_length=32,
        num_train_steps=8,
        train_batch_size=4,
        log_every_steps=2,
        save_checkpoints_steps=3,
    )
    values.update(overrides)
    return finetuning.FinetuningOptions(**values)


def _classification_csv(directory):
    """24 training rows whose text is quoted and holds commas; labels pos/neg."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "train.csv", "w") as handle:
        handle.write("id,text,label\n")
        for i in range(24):
            handle.write(f'{i},"a {WORDS[i % 6]}, very {WORDS[i % 6]} film",{"pos" if i % 2 == 0 else "neg"}\n')
    with open(directory / "dev.csv", "w") as handle:
        handle.write("id,text,label\n")
        for i in range(10):
            handle.write(f'{i},"so {WORDS[i % 6]}, yes",{"pos" if i % 2 == 0 else "neg"}\n')
    with open(directory / "test.csv", "w") as handle:
        handle.write("id,text\n")
        for i in range(5):
            handle.write(f'q{i},"hello, {WORDS[i]}"\n')
    return directory


def _tsv(path):
    with open(path) as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


def _run_tf1_loader(export_dir, inputs, signature="serving_default"):
    """Runs a signature as TF Serving does (the TF1 loader and the MetaGraph's saver)."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        signature_def = meta_graph.signature_def[signature]
        feeds = {signature_def.inputs[name].name: values for name, values in inputs.items()}
        fetches = {name: info.name for name, info in signature_def.outputs.items()}
        return sorted(signature_def.inputs), session.run(fetches, feeds)


def test_custom_csv_classification_end_to_end_export_and_scoring_without_training(tmp_path, bert_vocab_file):
    data = _classification_csv(tmp_path / "data")
    options = _options(tmp_path, bert_vocab_file, data_dir=str(data), task_name="movies", id_column="id")
    summary = finetuning.run_finetuning(options)
    task_dir = tmp_path / "out" / "movies"
    results = json.loads((task_dir / "results.json").read_text())
    assert set(results["median"]) == {"accuracy", "f1", "score"}
    assert results["data"]["splits"]["train"]["used"] == 24
    assert "glue_average" not in summary
    dev = _tsv(task_dir / "trial_1" / "dev_predictions.tsv")
    assert dev[0] == ["guid", "label", "prediction"] and len(dev) == 11
    assert [row[1] for row in dev[1:3]] == ["pos", "neg"]  # the quoted commas did not split
    accuracy = 100.0 * np.mean([row[1] == row[2] for row in dev[1:]])
    assert results["median"]["accuracy"] == pytest.approx(accuracy)
    test = _tsv(task_dir / "test_predictions.tsv")
    assert [row[0] for row in test] == ["index", "q0", "q1", "q2", "q3", "q4"]
    assert {row[1] for row in test[1:]} <= {"neg", "pos"}
    head = json.loads((task_dir / "trial_1" / "finetuned" / "head.json").read_text())
    assert (head["task"], head["label_names"], head["pair"]) == ("movies", ["neg", "pos"], False)

    # --do_train=false on the output_dir's own model gives the trained run's dev numbers.
    scored = finetuning.run_finetuning(dataclasses.replace(options, do_train=False))
    assert scored["tasks"]["movies"] == pytest.approx(results["trials"][0]["metrics"])
    assert _tsv(task_dir / "scored" / "dev_predictions.tsv") == dev
    assert _tsv(task_dir / "scored" / "test_predictions.tsv") == test
    with pytest.raises(UserError, match="scored already exists; pass --overwrite"):
        finetuning.run_finetuning(dataclasses.replace(options, do_train=False))
    with pytest.raises(UserError, match="fine-tuned on movies, not films"):
        finetuning.run_finetuning(
            dataclasses.replace(
                options,
                do_train=False,
                task_name="films",
                output_dir=str(tmp_path / "other"),
                finetuned_dir=str(task_dir),
            )
        )

    # The export's default signature takes one text and answers with the task's labels.
    export_dir = exporter.export(str(task_dir), str(tmp_path / "serving"))[0]
    inputs, outputs = _run_tf1_loader(export_dir, {"text_a": ["hello, good", "so bad, yes"]})
    assert inputs == ["text_a"]
    assert [label.decode() for label in outputs["label_name"]] == [row[1] for row in test[1:2]] + [
        row[2] for row in dev[2:3]
    ]


def test_custom_tsv_pair_regression_end_to_end_and_export(tmp_path, bert_vocab_file):
    data = tmp_path / "data"
    data.mkdir()
    rows = [(f"the {WORDS[i % 6]} cat", f'he said "{WORDS[(i + 1) % 6]}", twice', i % 5 + 0.5) for i in range(16)]
    for name, part in (("train.tsv", rows), ("dev.tsv", rows[:8])):
        with open(data / name, "w") as handle:
            handle.write("first\tsecond\tscore\n")
            for a, b, score in part:
                # A quoted field in a TSV: quotes are part of the csv dialect both ways.
                b = '"' + b.replace('"', '""') + '"'
                handle.write(f"{a}\t{b}\t{score}\n")
    options = _options(
        tmp_path,
        bert_vocab_file,
        task_type="regression",
        data_dir=str(data),
        text_column="first",
        text_b_column="second",
        label_column="score",
        num_train_steps=4,
    )
    finetuning.run_finetuning(options)
    task_dir = tmp_path / "out" / "custom"
    results = json.loads((task_dir / "results.json").read_text())
    assert set(results["median"]) == {"pearson", "spearman", "score"}
    dev = _tsv(task_dir / "trial_1" / "dev_predictions.tsv")
    assert [float(row[1]) for row in dev[1:]] == [score for _, _, score in rows[:8]]
    head = json.loads((task_dir / "trial_1" / "finetuned" / "head.json").read_text())
    assert (head["head"], head["pair"], head["label_names"]) == ("regression", True, None)
    export_dir = exporter.export(str(task_dir), str(tmp_path / "serving"))[0]
    inputs, outputs = _run_tf1_loader(export_dir, {"text_a": [rows[0][0]], "text_b": [rows[0][1]]})
    assert inputs == ["text_a", "text_b"]
    assert float(outputs["score"][0]) == pytest.approx(float(dev[1][2]), abs=1e-3)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "name,text,kwargs,expected",
    [
        ("train.csv", "", {}, "{path}: file is empty; expected a header row"),
        ("train.csv", "text,label\n", {}, "{path}: no examples after the header row"),
        (
            "train.csv",
            "sentence,label\nhi,pos\n",
            {},
            "{path}:1: no column 'text' in the header (sentence, label); pass --text_column",
        ),
        (
            "train.csv",
            "text,label\nhi,pos\nhi, there,neg\n",
            {},
            "{path}:3: expected 2 comma-separated fields as in the header, found 3 (a field with the "
            "delimiter in it must be in double quotes)",
        ),
        (
            "train.csv",
            'text,label\n"a\nb",pos\nhi,maybe\n',
            {"labels": ["pos", "neg"]},
            "{path}:4: label 'maybe' is not one of the labels pos,neg",
        ),
        (
            "train.tsv",
            "text\tlabel\nhi\t0.5\nho\tlots\n",
            {"task_type": "regression"},
            "{path}:3: --task_type=regression needs a number in column 'label', found 'lots'",
        ),
        ("train.txt", "text,label\nhi,pos\n", {}, "{path}: cannot tell the delimiter from the extension '.txt'"),
    ],
)
def test_custom_files_of_the_wrong_shape_fail_in_one_line_naming_file_and_line(tmp_path, name, text, kwargs, expected):
    path = _write(tmp_path / name, text)
    _write(tmp_path / "dev.csv", "text,label\nhi,pos\nho,neg\n")
    with pytest.raises(UserError) as error:
        task = finetuning_tasks.make_custom_task(train_file=path, dev_file=str(tmp_path / "dev.csv"), **kwargs)
        finetuning_tasks.read_custom_split(task, "train")
    message = str(error.value)
    assert expected.format(path=path) in message and "\n" not in message


def test_comma_separated_glue_tsv_fails_in_one_line(tmp_path):
    path = _write(tmp_path / "SST-2" / "train.tsv", "sentence,label\nit is good,1\n")
    with pytest.raises(UserError) as error:
        finetuning_tasks.read_glue_split(str(tmp_path), finetuning_tasks.get_task("sst-2"), "train")
    assert str(error.value).startswith(
        f"{path}:1: the official SST-2 train.tsv has at least 2 tab-separated columns but it has "
        "no tabs (it looks comma-separated)"
    )


def _events(directory):
    values = {}
    for name in sorted(os.listdir(directory)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            for value in event.summary.value:
                values.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return values


class _Killed(Exception):
    pass


def test_killed_trial_resumes_to_the_uninterrupted_result_and_logs_scalars(tmp_path, bert_vocab_file, monkeypatch):
    data = _classification_csv(tmp_path / "data")
    reference = _options(tmp_path / "a", bert_vocab_file, data_dir=str(data))
    finetuning.run_finetuning(reference)
    trial_a = tmp_path / "a" / "out" / "custom" / "trial_1"
    assert not (trial_a / "checkpoints").exists()  # removed once finetuned/ is written
    train = _events(trial_a / "logs" / "train")
    assert sorted(train) == ["examples_per_second", "learning_rate", "loss"]
    assert sorted(train["loss"]) == [2, 4, 6, 8]
    assert train["learning_rate"][8] == 0.0 and train["learning_rate"][2] > 0.0
    dev_scalars = _events(trial_a / "logs" / "dev")
    # Dev after the first epoch (24 examples / batch 4 = step 6) and at the end.
    assert sorted(dev_scalars["accuracy"]) == [6, 8]
    result_a = json.loads((trial_a / "trial_result.json").read_text())
    assert dev_scalars["accuracy"][8] == pytest.approx(result_a["metrics"]["accuracy"])

    options = dataclasses.replace(reference, output_dir=str(tmp_path / "b" / "out"))
    trial_b = tmp_path / "b" / "out" / "custom" / "trial_1"
    original = finetuning.FinetuningProgress.on_train_batch_end

    def killed_at_step_5(self, batch, logs=None):
        original(self, batch, logs)
        if self.steps == 5:
            raise _Killed()

    monkeypatch.setattr(finetuning.FinetuningProgress, "on_train_batch_end", killed_at_step_5)
    with pytest.raises(_Killed):
        finetuning.run_finetuning(options)
    monkeypatch.undo()
    assert tf.train.latest_checkpoint(str(trial_b / "checkpoints")).endswith("ckpt-3")
    # Killed again after the final checkpoint, while scoring dev.
    original_evaluate = finetuning._evaluate_sentence_task

    def killed_in_evaluation(*args, **kwargs):
        raise _Killed()

    monkeypatch.setattr(finetuning, "_evaluate_sentence_task", killed_in_evaluation)
    with pytest.raises(_Killed):
        finetuning.run_finetuning(options)
    monkeypatch.setattr(finetuning, "_evaluate_sentence_task", original_evaluate)
    assert tf.train.latest_checkpoint(str(trial_b / "checkpoints")).endswith("ckpt-8")
    # And once more after finetuned/ is saved, before trial_result.json: the rerun replaces it.
    original_save = finetuning._save_finetuned

    def killed_after_saving(*args, **kwargs):
        original_save(*args, **kwargs)
        raise _Killed()

    monkeypatch.setattr(finetuning, "_save_finetuned", killed_after_saving)
    with pytest.raises(_Killed):
        finetuning.run_finetuning(options)
    monkeypatch.setattr(finetuning, "_save_finetuned", original_save)
    assert (trial_b / "finetuned" / "head.json").is_file() and not (trial_b / "trial_result.json").exists()
    (trial_b / ".finetuned.writing-1-0badc0de").mkdir()  # what a save killed mid-write leaves
    finetuning.run_finetuning(options)
    assert not any(".writing-" in name for name in os.listdir(trial_b))
    result_b = json.loads((trial_b / "trial_result.json").read_text())
    assert result_b["resumed_from_step"] == 8
    assert result_b["metrics"] == pytest.approx(result_a["metrics"])
    _, model_a = finetuning.load_finetuned(str(trial_a / "finetuned"))
    _, model_b = finetuning.load_finetuned(str(trial_b / "finetuned"))
    for weight_a, weight_b in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_allclose(weight_a, weight_b, rtol=1e-5, atol=1e-6)
    assert _tsv(trial_b / "dev_predictions.tsv") == _tsv(trial_a / "dev_predictions.tsv")

    # A finished run is not retrained: results.json guards it, and finished trials are reused.
    with pytest.raises(UserError, match="results.json already exists; pass --overwrite"):
        finetuning.run_finetuning(options)
    os.remove(tmp_path / "b" / "out" / "custom" / "results.json")
    finetuning.run_finetuning(options)
    assert json.loads((trial_b / "trial_result.json").read_text()) == result_b
    with pytest.raises(UserError, match="trial.json: this trial was started with other settings"):
        os.remove(tmp_path / "b" / "out" / "custom" / "results.json")
        finetuning.run_finetuning(dataclasses.replace(options, learning_rate=1e-3))


def test_cli_maps_the_custom_flags_and_reports_a_bad_label_in_one_line(tmp_path, bert_vocab_file):
    train = _write(tmp_path / "train.csv", "review,stars\nnice,5\nbad,1\n")
    dev = _write(tmp_path / "dev.csv", "review,stars\nok,3\n")
    command = [
        sys.executable,
        "-m",
        "electra_tf.run_finetuning",
        "--task=custom",
        f"--train_file={train}",
        f"--dev_file={dev}",
        "--text_column=review",
        "--label_column=stars",
        "--labels=1,5",
        "--config=electra_tiny",
        f"--vocab_file={bert_vocab_file}",
        f"--output_dir={tmp_path / 'out'}",
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in completed.stderr
    assert f"{dev}:2: label '3' is not one of the labels 1,5" in errors[0]
