"""GLUE readers on the real files (fixtures in the official layout for MNLI, QNLI, QQP)."""

import pathlib

import pytest

from electra_tf import finetuning_tasks as tasks
from electra_tf.errors import UserError

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "glue"

# (train, dev, test) counts from the data README.
REAL_COUNTS = {
    "cola": (8551, 1043, 1063),
    "sst-2": (67349, 872, 1821),
    "mrpc": (3668, 408, 1725),
    "rte": (2490, 277, 3000),
    "sts-b": (5749, 1500, 1379),
    "wnli": (635, 71, 146),
}


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_reader_on_real_glue_files(shared_data, name):
    task = tasks.get_task(name)
    counts = [
        len(tasks.read_glue_split(str(shared_data / "glue"), task, split)[0]) for split in ("train", "dev", "test")
    ]
    assert tuple(counts) == REAL_COUNTS[name]
    train, _ = tasks.read_glue_split(str(shared_data / "glue"), task, "train")
    test, _ = tasks.read_glue_split(str(shared_data / "glue"), task, "test")
    assert test[0].label is None and test[0].guid == "0" and test[-1].guid == str(len(test) - 1)
    assert all(example.text_a for example in train)
    if task.is_regression:
        assert {type(e.label) for e in train} == {float}
        assert min(e.label for e in train) >= 0.0 and max(e.label for e in train) <= 5.0
    else:
        assert {e.label for e in train} == set(range(task.num_labels))
    pairs = name not in ("cola", "sst-2")
    assert all((e.text_b is not None) == pairs for e in train + test)


def test_real_rows_land_in_the_right_fields(shared_data):
    glue = str(shared_data / "glue")
    cola, _ = tasks.read_glue_split(glue, tasks.get_task("cola"), "train")
    assert cola[0].text_a.startswith("Our friends won't buy this analysis")
    assert cola[0].label == 1 and cola[0].source.endswith("CoLA/train.tsv:1")
    rte, _ = tasks.read_glue_split(glue, tasks.get_task("rte"), "train")
    assert rte[0].text_b == "Weapons of Mass Destruction Found in Iraq."
    assert tasks.get_task("rte").label_names[rte[0].label] == "not_entailment"
    mrpc, _ = tasks.read_glue_split(glue, tasks.get_task("mrpc"), "test")
    assert mrpc[0].text_a.startswith("PCCW's chief operating officer")
    stsb, _ = tasks.read_glue_split(glue, tasks.get_task("sts-b"), "dev")
    assert (stsb[1].text_a, stsb[1].label) == ("A young child is riding a horse.", 4.75)


def test_mnli_fixture_matched_and_mismatched():
    task = tasks.get_task("mnli")
    train, _ = tasks.read_glue_split(str(FIXTURES), task, "train")
    assert len(train) == 6
    assert train[1].text_a == "The children are sleeping in the tent."
    assert task.label_names[train[1].label] == "contradiction"
    matched, _ = tasks.read_glue_split(str(FIXTURES), task, "dev_matched")
    mismatched, _ = tasks.read_glue_split(str(FIXTURES), task, "dev_mismatched")
    assert [task.label_names[e.label] for e in matched] == ["entailment", "contradiction", "neutral", "entailment"]
    assert len(mismatched) == 3 and mismatched[0].text_b == "The mayor received mail."
    test_m, _ = tasks.read_glue_split(str(FIXTURES), task, "test_matched")
    assert test_m[0].guid == "0" and test_m[0].text_a.startswith("She bought three apples")
    assert task.submission_files == ("MNLI-m.tsv", "MNLI-mm.tsv")


def test_qnli_and_qqp_fixtures():
    qnli = tasks.get_task("qnli")
    train, _ = tasks.read_glue_split(str(FIXTURES), qnli, "train")
    assert train[0].text_a == "What year did the bridge open?"
    assert [qnli.label_names[e.label] for e in train[:2]] == ["entailment", "not_entailment"]
    test, _ = tasks.read_glue_split(str(FIXTURES), qnli, "test")
    assert test[0].text_a == "How tall is the tower?"
    qqp = tasks.get_task("qqp")
    train, info = tasks.read_glue_split(str(FIXTURES), qqp, "train")
    # The short row is skipped and counted, as the reference does for QQP.
    assert len(train) == 5 and info["skipped_rows"] == 1
    assert (train[0].text_b, train[0].label) == ("What is the best way to cook rice?", 1)
    test, _ = tasks.read_glue_split(str(FIXTURES), qqp, "test")
    assert (test[0].guid, test[0].text_a) == ("0", "Why is the sky blue?")


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bad_rows_are_one_line_errors_naming_file_and_line(tmp_path):
    rte = tasks.get_task("rte")
    _write(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\n")
    with pytest.raises(UserError, match=r"RTE/train.tsv:3: expected 4 tab-separated columns"):
        tasks.read_glue_split(str(tmp_path), rte, "train")
    _write(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailed\n")
    with pytest.raises(UserError, match=r"RTE/train.tsv:2: unknown RTE label 'entailed'"):
        tasks.read_glue_split(str(tmp_path), rte, "train")
    _write(tmp_path / "RTE" / "dev.tsv", "")
    with pytest.raises(UserError, match=r"RTE/dev.tsv: file is empty"):
        tasks.read_glue_split(str(tmp_path), rte, "dev")
    _write(tmp_path / "RTE" / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n")
    with pytest.raises(UserError, match=r"no examples after the header"):
        tasks.read_glue_split(str(tmp_path), rte, "dev")
    with pytest.raises(UserError, match=r"RTE/test.tsv: file not found"):
        tasks.read_glue_split(str(tmp_path), rte, "test")
    _write(tmp_path / "STS-B" / "train.tsv", "\t".join(["h"] * 10) + "\n" + "\t".join(["x"] * 9 + ["five"]) + "\n")
    with pytest.raises(UserError, match=r"STS-B/train.tsv:2: similarity score 'five'"):
        tasks.read_glue_split(str(tmp_path), tasks.get_task("sts-b"), "train")
    _write(tmp_path / "CoLA" / "train.tsv", "gj04\t1\t\tfine.\ngj04\t1\tonly three\n")
    with pytest.raises(UserError, match=r"CoLA/train.tsv:2: expected 4"):
        tasks.read_glue_split(str(tmp_path), tasks.get_task("cola"), "train")


def test_task_names_swap_and_submission_labels():
    assert tasks.get_task("SST2").name == "sst-2"
    assert [t.name for t in tasks.parse_task_list("cola, squad")] == ["cola", "squad-v1.1"]
    with pytest.raises(UserError, match="unknown task 'glue'"):
        tasks.get_task("glue")
    mrpc = tasks.get_task("mrpc")
    examples = [tasks.Example("1", "a", "b", 1), tasks.Example("2", "c", "d", 0)]
    swapped = tasks.swap_sentence_order(examples)
    assert [(e.text_a, e.text_b, e.label) for e in swapped] == [
        ("a", "b", 1),
        ("c", "d", 0),
        ("b", "a", 1),
        ("d", "c", 0),
    ]
    assert tasks.submission_label(mrpc, 1) == "1"
    assert tasks.submission_label(tasks.get_task("qnli"), 1) == "not_entailment"
    assert tasks.submission_label(tasks.get_task("mnli"), 2) == "neutral"
    assert tasks.submission_label(tasks.get_task("sts-b"), 5.7) == "5.000"


def test_tfds_records_map_through_label_names():
    mnli = tasks.get_task("mnli")
    # TFDS glue/mnli orders its labels entailment, neutral, contradiction.
    records = [{"premise": b"p", "hypothesis": b"h", "label": 2, "idx": 7}]
    examples = tasks.examples_from_tfds_records(
        mnli, "dev_matched", records, ["entailment", "neutral", "contradiction"]
    )
    assert mnli.label_names[examples[0].label] == "contradiction"
    assert (examples[0].text_a, examples[0].text_b) == ("p", "h")
    test = tasks.examples_from_tfds_records(
        tasks.get_task("sst-2"), "test", [{"sentence": b"s", "label": -1, "idx": 3}], ["0", "1"]
    )
    assert (test[0].guid, test[0].label) == ("3", None)
