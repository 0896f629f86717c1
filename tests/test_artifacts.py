"""electra_tf.artifacts: the pretrained/ and finetuned/ folders written, found, checked and read
back, locally and on ram:// (the gs:// stand-in); head.json of every head kind, of older
writers, and malformed ones."""

import ast
import json
import os
import pathlib
import re
import types

import numpy as np
import pytest

from electra_tf import artifacts, fileio
from electra_tf.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = {
    "hidden_size": 16,
    "embedding_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "max_seq_length": 16,
}


def _config(**overrides):
    from electra_tf import config as config_lib

    return config_lib.load_config("electra_tiny", dict(TINY, **overrides))


def _write_head(directory, head) -> str:
    fileio.makedirs(directory)
    path = os.path.join(directory, artifacts.HEAD_FILE)
    with fileio.open(path, "w") as handle:
        handle.write(head if isinstance(head, str) else json.dumps(head))
    return path


def _vocab(tmp_path) -> str:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    return str(path)


@pytest.mark.parametrize("root", ["local", "ram"])
def test_pretrained_folder_round_trip(tmp_path, root):
    from electra_tf import modeling, pretraining_objective

    base = str(tmp_path) if root == "local" else f"ram://artifacts_test_{os.getpid()}"
    model_dir = os.path.join(base, "run")
    directory = os.path.join(model_dir, artifacts.PRETRAINED_DIR)
    config = _config()
    model = pretraining_objective.ElectraPretrainer(config, seed=1)
    vocab = _vocab(tmp_path)
    artifacts.write_pretrained(model, directory, {artifacts.VOCAB_FILE: vocab})

    assert fileio.listdir(directory) == sorted(artifacts.pretrained_files(config) + [artifacts.VOCAB_FILE])
    assert not any(".writing-" in name for name in fileio.listdir(model_dir))
    assert artifacts.find_pretrained(model_dir) == directory
    assert artifacts.find_pretrained(directory) == directory
    assert artifacts.find_pretrained(base) is None
    assert artifacts.pretrained_vocab(directory) == os.path.join(directory, "vocab.txt")
    # config.json holds the model, not the run's settings (config.model_dict).
    assert artifacts.read_config(directory).model_dict() == config.model_dict()
    _, backbone = modeling.load_pretrained_backbone(directory)
    for ours, theirs in zip(model.backbone.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(ours, theirs)

    with pytest.raises(UserError, match="already exists; use a new --model_dir"):
        artifacts.write_pretrained(model, directory)
    # An interrupted save's folder (a weights file missing) is written again.
    fileio.remove(os.path.join(directory, artifacts.GENERATOR_WEIGHTS_FILE))
    assert not artifacts.pretrained_is_complete(directory, config)
    artifacts.write_pretrained(model, directory)
    assert artifacts.pretrained_is_complete(directory, config)
    with pytest.raises(UserError, match=re.escape(f"{model_dir}/config.json not found; fix it")):
        artifacts.check_pretrained(model_dir, "fix it")
    if root == "ram":
        fileio.rmtree(base)


def _fake_task(name, *, pair=False, squad=False, regression=False, labels=None):
    return types.SimpleNamespace(
        name=name,
        is_pair=pair,
        is_squad=squad,
        is_regression=regression,
        label_names=labels,
        version="2.0" if squad else None,
    )


def _finetuned_model(config, head, **kwargs):
    from electra_tf import finetuning_models, modeling

    return finetuning_models.FinetuningModel(modeling.ElectraBackbone(config), head, dropout_rate=0.0, **kwargs)


# (head kind, task, model arguments, finetuned_head's keyword arguments)
KINDS = {
    "classification": ("classification", _fake_task("mnli", pair=True, labels=("a", "b", "c")), {"num_labels": 3}, {}),
    "regression": (
        "regression",
        _fake_task("scores", pair=True, regression=True),
        {"num_labels": 1, "target_scale": 5.0},
        {},
    ),
    "squad": (
        "span",
        _fake_task("squad-v2.0", squad=True),
        {"answerable": True, "span_head": "joint", "beam_size": 7},
        {"squad": {"max_seq_length": 16, "doc_stride": 8, "null_threshold": -2.5}},
    ),
    "tagging": (
        "tagging",
        _fake_task("ner", labels=("B-X", "I-X", "O")),
        {"num_labels": 3},
        {"extra": {"tagging": artifacts.tagging_settings(scheme="bioes", default_tag="O", tag_column=2, segment_id=1)}},
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_finetuned_folder_round_trip_for_every_head_kind(tmp_path, kind):
    head_kind, task, model_args, head_args = KINDS[kind]
    # The SQuAD folder goes to ram://, the gs:// stand-in.
    base = f"ram://artifacts_ft_{os.getpid()}" if kind == "squad" else str(tmp_path)
    directory = artifacts.trial_dir(os.path.join(base, task.name), 1) + "/finetuned"
    config = _config()
    model = _finetuned_model(config, head_kind, **model_args)
    head = artifacts.finetuned_head(model, task, 16, **head_args)
    vocab = _vocab(tmp_path)
    artifacts.save_finetuned(model, config, directory, head, vocab_file=vocab)

    assert fileio.listdir(directory) == ["config.json", "head.json", "model.weights.h5", "vocab.txt"]
    read, loaded = artifacts.load_finetuned(directory)
    assert read == artifacts.check_finetuned(directory)
    assert (read["task"], read["head"], read["max_seq_length"]) == (task.name, head_kind, 16)
    assert read["vocab_file"] == "vocab.txt" and read["do_lower_case"] is True
    assert artifacts.finetuned_vocab(directory, read) == os.path.join(directory, "vocab.txt")
    assert fileio.read_text(os.path.join(directory, "vocab.txt")) == pathlib.Path(vocab).read_text()
    if kind == "classification":
        assert (read["label_names"], read["pair"], read["num_labels"]) == (["a", "b", "c"], True, 3)
    elif kind == "regression":
        assert (read["label_names"], read["target_scale"], read["pair"]) == (None, 5.0, True)
    elif kind == "squad":
        assert (read["span_head"], read["beam_size"], read["answerable"]) == ("joint", 7, True)
        assert read["squad"]["null_threshold"] == -2.5 and read["label_names"] is None
        assert (loaded.span_head, loaded.beam_size) == ("joint", 7)
    else:
        assert read["tagging"] == {
            "scheme": "bioes",
            "default_tag": "O",
            "tag_column": 2,
            "segment_id": 1,
            "span_rule": "conlleval",
            "truncation": "score_all",
        }
        assert read["label_names"] == ["B-X", "I-X", "O"]
    weights, restored = model.get_weights(), loaded.get_weights()
    assert len(weights) == len(restored)
    for ours, theirs in zip(weights, restored):
        np.testing.assert_array_equal(ours, theirs)
    if base.startswith("ram://"):
        fileio.rmtree(base)


def test_head_json_of_older_writers_reads_with_their_defaults(tmp_path):
    """Before the joint head: no span_head/beam_size (the independent head); before custom
    tasks: no pair (the GLUE task's own); early folders: no target_scale/answerable, and an
    absolute vocab_file."""
    old_span = {
        "task": "squad-v1.1",
        "head": "span",
        "num_labels": 2,
        "max_seq_length": 384,
        "label_names": None,
        "vocab_file": "/data/vocab.txt",
    }
    _write_head(tmp_path / "span", old_span)
    head = artifacts.read_head(str(tmp_path / "span"))
    assert (head["span_head"], head["beam_size"], head["answerable"], head["pair"], head["target_scale"]) == (
        "independent",
        20,
        False,
        False,
        1.0,
    )
    assert artifacts.finetuned_vocab(str(tmp_path / "span"), head) == "/data/vocab.txt"
    for task, pair in (("mnli", True), ("sst-2", False), ("my_task", False)):
        _write_head(tmp_path / task, {"task": task, "head": "classification", "num_labels": 2, "max_seq_length": 128})
        assert artifacts.read_head(str(tmp_path / task))["pair"] is pair
    _write_head(
        tmp_path / "recorded",
        {"task": "mnli", "head": "classification", "num_labels": 2, "max_seq_length": 128, "pair": False},
    )
    assert artifacts.read_head(str(tmp_path / "recorded"))["pair"] is False


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"task": "mnli",', "not valid JSON"),
        ("[1, 2]", "expected a JSON object, found list"),
        ({"task": "mnli", "num_labels": 2, "max_seq_length": 128}, "no 'head'"),
        (
            {"task": "mnli", "head": "ranking", "num_labels": 2, "max_seq_length": 128},
            "'head' is 'ranking', expected one of classification, regression, span, tagging",
        ),
        (
            {"task": "mnli", "head": "classification", "num_labels": "2", "max_seq_length": 128},
            "'num_labels' is \"2\", expected an integer",
        ),
        (
            {"task": "mnli", "head": "classification", "num_labels": True, "max_seq_length": 128},
            "'num_labels' is true, expected an integer",
        ),
        (
            {
                "task": "mnli",
                "head": "classification",
                "num_labels": 3,
                "max_seq_length": 128,
                "label_names": ["a", "b"],
            },
            "2 label_names for num_labels 3",
        ),
    ],
)
def test_a_malformed_head_json_is_a_one_line_error_naming_the_file(tmp_path, content, problem):
    path = _write_head(tmp_path, content)
    with pytest.raises(UserError) as raised:
        artifacts.read_head(str(tmp_path))
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and problem in message
    assert "\n" not in message and "re-run fine-tuning" in message


def test_find_finetuned_and_the_median_trial(tmp_path):
    head = {"task": "sst-2", "head": "classification", "num_labels": 2, "max_seq_length": 8}
    task_dir = tmp_path / "sst-2"
    for trial in (1, 2, 3):
        _write_head(os.path.join(artifacts.trial_dir(str(task_dir), trial), "finetuned"), head)
    (task_dir / "results.json").write_text(json.dumps({"median_trial": 2}))
    median = str(task_dir / "trial_2" / "finetuned")
    assert artifacts.median_trial(str(task_dir)) == 2
    assert artifacts.find_finetuned(str(task_dir), flag="--input x") == median
    assert artifacts.find_finetuned(str(task_dir / "trial_3"), flag="--input x") == str(
        task_dir / "trial_3" / "finetuned"
    )
    assert artifacts.find_finetuned(median, flag="--input x") == median
    assert artifacts.find_finetuned(str(tmp_path), flag="--input x") is None

    fileio.rmtree(median)
    with pytest.raises(
        UserError,
        match=r"^--input x: the median trial's .*trial_2/finetuned "
        r"has no head\.json; fine-tune with weights saved",
    ):
        artifacts.find_finetuned(str(task_dir), flag="--input x")
    # A run that has not written results.json yet: its first trial, when asked for.
    (task_dir / "results.json").unlink()
    assert artifacts.find_finetuned(str(task_dir), flag="f") is None
    assert artifacts.find_finetuned(str(task_dir), flag="f", first_trial_if_unfinished=True) == str(
        task_dir / "trial_1" / "finetuned"
    )

    # A folder with head.json but no weights is found, and refused when checked.
    with pytest.raises(
        UserError,
        match=r"trial_1/finetuned/config\.json not found; .* is an "
        "incomplete finetuned/ folder",
    ):
        artifacts.check_finetuned(str(task_dir / "trial_1" / "finetuned"))


def _electra_imports(module: str, everywhere: bool) -> set[str]:
    """electra_tf modules ``module`` imports: at its top level, or ``everywhere`` (functions
    included)."""
    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    found = set()
    for node in ast.walk(tree) if everywhere else tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("electra_tf"):
            if node.module == "electra_tf":
                found.update(f"electra_tf.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("electra_tf."))
    return {name for name in found if (REPO / (name.replace(".", "/") + ".py")).exists()}


def _reached(roots: set[str]) -> set[str]:
    """Every import of ``roots`` (those inside functions too, which run when a model is
    exported), then the top-level imports of what they import."""
    reached, pending = set(), sorted(roots)
    while pending:
        module = pending.pop()
        if module not in reached:
            reached.add(module)
            pending.extend(_electra_imports(module, everywhere=module in roots))
    return reached


TRAINING_JOBS = {
    "electra_tf.finetuning",
    "electra_tf.pretraining",
    "electra_tf.run_finetuning",
    "electra_tf.run_pretraining",
}


def test_serving_depends_on_the_folder_format_not_on_the_training_jobs():
    """The export command, the exporter and the serving modules reach the folder format and the
    networks, never a training job; the serving modules wrap whatever Keras model they are given,
    so they reach neither the folder format nor the model code."""
    reached = _reached(
        {"electra_tf.export", "electra_tf.exporter", "electra_tf.serving_modules", "electra_tf.artifacts"}
    )
    assert "electra_tf.artifacts" in _electra_imports("electra_tf.exporter", everywhere=False)
    assert {"electra_tf.exporter", "electra_tf.serving_modules"} <= _electra_imports(
        "electra_tf.export", everywhere=False
    )
    assert not reached & TRAINING_JOBS
    assert {"electra_tf.finetuning_models", "electra_tf.modeling"} <= reached
    serving_modules = _reached({"electra_tf.serving_modules"})
    assert "electra_tf.squad" in serving_modules
    assert not serving_modules & (
        TRAINING_JOBS
        | {
            "electra_tf.artifacts",
            "electra_tf.modeling",
            "electra_tf.finetuning_models",
            "electra_tf.exporter",
            "electra_tf.export",
        }
    )


@pytest.mark.parametrize("where", ["local", "ram"])
def test_save_finetuned_replaces_a_folder_only_when_asked(tmp_path, where):
    """A rerun's trial saves its finetuned/ over the one a killed run left (replace=True): the
    new weights, none of the old folder's files; without replace the folder is refused."""
    _, task, model_args, head_args = KINDS["classification"]
    base = f"ram://artifacts_replace_{os.getpid()}" if where == "ram" else str(tmp_path)
    directory = os.path.join(base, "trial_1", artifacts.FINETUNED_DIR)
    config = _config()
    first = _finetuned_model(config, "classification", **model_args)
    head = artifacts.finetuned_head(first, task, 16, **head_args)
    artifacts.save_finetuned(first, config, directory, head, vocab_file=_vocab(tmp_path))
    fileio.write_text_atomic(os.path.join(directory, "stale.txt"), "from the killed run")
    second = _finetuned_model(config, "classification", **model_args)
    second.set_weights([weight + 1.0 for weight in first.get_weights()])

    with pytest.raises(FileExistsError):
        artifacts.save_finetuned(second, config, directory, head, vocab_file=_vocab(tmp_path))
    artifacts.save_finetuned(second, config, directory, head, vocab_file=_vocab(tmp_path), replace=True)

    assert fileio.listdir(directory) == ["config.json", "head.json", "model.weights.h5", "vocab.txt"]
    assert [name.rstrip("/") for name in fileio.listdir(os.path.dirname(directory))] == [artifacts.FINETUNED_DIR]
    _, loaded = artifacts.load_finetuned(directory)
    for ours, theirs in zip(second.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    if where == "ram":
        fileio.rmtree(base)
