"""The fine-tuning task registry: GLUE readers (official TSVs or TFDS), labels, metrics, recipe.

Each GLUE task is a ``GlueTask``: where its TSVs live, which 0-based columns hold the texts and the
label in the train/dev files and in the test file, whether the files have a header line, its
label strings (GLUE's own, also written into the leaderboard TSVs), its metrics and its epochs.
Rows are read as raw tab-separated lines (no quote handling, as GLUE's own loaders), and every
problem is a one-line UserError naming file and line. QQP rows that are too short are skipped and
counted, as the reference does for that file.

SQuAD tasks are registered here too (``squad-v1.1``, ``squad-v2.0``); their reading and
windowing live in electra_tf/squad.py.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Optional, Sequence

from electra_tf import fileio
from electra_tf import finetuning_metrics as metrics
from electra_tf.errors import UserError
from electra_tf.token_classification import TAGGING_TASKS


@dataclasses.dataclass(frozen=True)
class Example:
    """One sentence (pair). label: class index (int), score (float, STS-B) or None (test)."""

    guid: str
    text_a: str
    text_b: Optional[str]
    label: object
    source: str = ""  # "file:line", for messages


@dataclasses.dataclass(frozen=True)
class GlueTask:
    name: str
    directory: str
    text_columns: tuple[int, ...]
    label_column: Optional[int]  # -1: the last column; None: regression score column below
    test_text_columns: tuple[int, ...]
    label_names: Optional[tuple[str, ...]]  # None: regression
    headline_metric: str
    dev_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    submission_files: tuple[str, ...] = ()
    has_header: bool = True
    test_id_column: int = 0
    num_epochs: int = 3
    tfds_name: str = ""
    tfds_text_keys: tuple[str, ...] = ()
    skip_short_rows: bool = False
    # Official column count of train/dev rows where there is no header to read it from.
    expected_columns: Optional[int] = None
    # Regression: the model learns targets / target_scale, as the reference divides STS-B's
    # 0-5 scores by 5; its predictions are scaled back.
    target_scale: float = 1.0
    # Train on both sentence orders by default (the reference's double_unordered).
    symmetric_pairs: bool = False

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def is_squad(self) -> bool:
        return False

    def compute_metrics(self, labels: Sequence, predictions: Sequence) -> dict[str, float]:
        """All of the task's metrics in percent, plus ``score``: the task's GLUE score."""
        if self.name == "cola":
            result = {"mcc": metrics.matthews_corrcoef(labels, predictions)}
        elif self.name == "sts-b":
            result = {"pearson": metrics.pearson(labels, predictions),
                      "spearman": metrics.spearman(labels, predictions)}
        elif self.name in ("mrpc", "qqp"):
            result = {"accuracy": metrics.accuracy(labels, predictions),
                      "f1": metrics.binary_f1(labels, predictions)}
        else:
            result = {"accuracy": metrics.accuracy(labels, predictions)}
        result = {key: 100.0 * value for key, value in result.items()}
        result["score"] = sum(result.values()) / len(result)
        return result


@dataclasses.dataclass(frozen=True)
class SquadTask:
    name: str
    version: str  # "1.1" or "2.0"
    train_file: str
    dev_file: str
    num_epochs: int = 2
    headline_metric: str = "exact_match"
    tfds_name: str = ""

    @property
    def is_squad(self) -> bool:
        return True

    @property
    def is_regression(self) -> bool:
        return False

    @property
    def answerable_head(self) -> bool:
        return self.version == "2.0"


_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask("cola", "CoLA", (3,), 1, (1,), _BINARY, "mcc", has_header=False,
                 expected_columns=4, submission_files=("CoLA.tsv",), tfds_name="glue/cola",
                 tfds_text_keys=("sentence",)),
        GlueTask("sst-2", "SST-2", (0,), 1, (1,), _BINARY, "accuracy",
                 submission_files=("SST-2.tsv",), tfds_name="glue/sst2",
                 tfds_text_keys=("sentence",)),
        GlueTask("mrpc", "MRPC", (3, 4), 0, (3, 4), _BINARY, "accuracy",
                 submission_files=("MRPC.tsv",), tfds_name="glue/mrpc",
                 tfds_text_keys=("sentence1", "sentence2"), symmetric_pairs=True),
        GlueTask("sts-b", "STS-B", (7, 8), -1, (7, 8), None, "spearman", num_epochs=10,
                 submission_files=("STS-B.tsv",), tfds_name="glue/stsb",
                 tfds_text_keys=("sentence1", "sentence2"), target_scale=5.0,
                 symmetric_pairs=True),
        GlueTask("qqp", "QQP", (3, 4), 5, (1, 2), _BINARY, "accuracy",
                 submission_files=("QQP.tsv",), tfds_name="glue/qqp",
                 tfds_text_keys=("question1", "question2"), skip_short_rows=True),
        GlueTask("mnli", "MNLI", (8, 9), -1, (8, 9), ("contradiction", "entailment", "neutral"),
                 "accuracy", dev_splits=("dev_matched", "dev_mismatched"),
                 test_splits=("test_matched", "test_mismatched"),
                 submission_files=("MNLI-m.tsv", "MNLI-mm.tsv"), tfds_name="glue/mnli",
                 tfds_text_keys=("premise", "hypothesis")),
        GlueTask("qnli", "QNLI", (1, 2), 3, (1, 2), _ENTAILMENT, "accuracy",
                 submission_files=("QNLI.tsv",), tfds_name="glue/qnli",
                 tfds_text_keys=("question", "sentence")),
        GlueTask("rte", "RTE", (1, 2), 3, (1, 2), _ENTAILMENT, "accuracy", num_epochs=10,
                 submission_files=("RTE.tsv",), tfds_name="glue/rte",
                 tfds_text_keys=("sentence1", "sentence2")),
        GlueTask("wnli", "WNLI", (1, 2), 3, (1, 2), _BINARY, "accuracy",
                 submission_files=("WNLI.tsv",), tfds_name="glue/wnli",
                 tfds_text_keys=("sentence1", "sentence2")),
    )
}

SQUAD_TASKS: dict[str, SquadTask] = {
    "squad-v1.1": SquadTask("squad-v1.1", "1.1", "train-v1.1.json", "dev-v1.1.json",
                            tfds_name="squad/v1.1"),
    "squad-v2.0": SquadTask("squad-v2.0", "2.0", "train-v2.0.json", "dev-v2.0.json",
                            tfds_name="squad/v2.0"),
}

TASK_NAMES = tuple(GLUE_TASKS) + tuple(SQUAD_TASKS) + tuple(TAGGING_TASKS)
_ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "squad": "squad-v1.1", "squad1.1": "squad-v1.1",
            "squad2.0": "squad-v2.0", "squad-v1": "squad-v1.1", "squad-v2": "squad-v2.0"}


def get_task(name: str):
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in GLUE_TASKS:
        return GLUE_TASKS[key]
    if key in SQUAD_TASKS:
        return SQUAD_TASKS[key]
    if key in TAGGING_TASKS:
        return TAGGING_TASKS[key]
    raise UserError(f"--task: unknown task '{name}'; use one of {', '.join(TASK_NAMES)}")


def parse_task_list(text: str) -> list:
    names = [part for part in (text or "").split(",") if part.strip()]
    if not names:
        raise UserError(f"--task is required: one or more of {', '.join(TASK_NAMES)}, "
                        "comma-separated")
    return [get_task(name) for name in names]


# ---------------------------------------------------------------------------------------------
# Official TSVs


def task_file(data_dir: str, task: GlueTask, split: str) -> str:
    """<data_dir>/<TASK>/<split>.tsv; <data_dir> may also be the task folder itself."""
    nested = os.path.join(data_dir, task.directory, f"{split}.tsv")
    if fileio.exists(nested) or not fileio.exists(os.path.join(data_dir, f"{split}.tsv")):
        return nested
    return os.path.join(data_dir, f"{split}.tsv")


def _read_lines(path: str) -> list[str]:
    if not fileio.isfile(path):
        raise UserError(f"{path}: file not found; --data_dir must hold the GLUE folders "
                        "(CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI) with "
                        "train/dev/test .tsv files")
    try:
        text = fileio.read_text(path).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not any(line.strip() for line in lines):
        raise UserError(f"{path}: file is empty; expected a GLUE TSV")
    return lines


def read_glue_split(data_dir: str, task: GlueTask, split: str) -> tuple[list[Example], dict]:
    """Examples of one split of an official GLUE TSV, and reading statistics.

    Test splits have label None and guid = the file's index column. Returns (examples,
    {"file", "examples", "skipped_rows"}).
    """
    path = task_file(data_dir, task, split)
    lines = _read_lines(path)
    is_test = split.startswith("test")
    header_line = 1 if (task.has_header or is_test) else 0
    expected = None
    if header_line:
        expected = len(lines[0].split("\t"))
    elif task.expected_columns:
        expected = task.expected_columns
    text_columns = task.test_text_columns if is_test else task.text_columns
    examples: list[Example] = []
    skipped = 0
    for number, line in enumerate(lines[header_line:], start=header_line + 1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        row = line.split("\t")
        if expected is not None and len(row) != expected:
            if task.skip_short_rows and len(row) < expected:
                skipped += 1
                continue
            raise UserError(f"{where}: expected {expected} tab-separated columns as in the "
                            f"official {task.directory} {split}.tsv, found {len(row)}")
        texts = [row[column] for column in text_columns]
        if is_test:
            guid = row[task.test_id_column]
            label = None
        else:
            guid = f"{split}-{number}"
            raw_label = row[task.label_column].strip()
            if task.is_regression:
                try:
                    label = float(raw_label)
                except ValueError:
                    raise UserError(f"{where}: similarity score {raw_label!r} is not a number"
                                    ) from None
            else:
                if raw_label not in task.label_names:
                    raise UserError(f"{where}: unknown {task.directory} label {raw_label!r}; "
                                    f"expected one of {', '.join(task.label_names)}")
                label = task.label_names.index(raw_label)
        examples.append(Example(guid, texts[0], texts[1] if len(texts) > 1 else None, label,
                                where))
    if not examples:
        raise UserError(f"{path}: no examples after the header; expected a GLUE "
                        f"{task.directory} TSV")
    return examples, {"file": path, "examples": len(examples), "skipped_rows": skipped}


# ---------------------------------------------------------------------------------------------
# TFDS


def _tfds_split(split: str) -> str:
    return split.replace("dev", "validation")


def read_tfds_split(task: GlueTask, split: str, data_dir: Optional[str] = None
                    ) -> tuple[list[Example], dict]:
    """The same examples from TFDS ``glue/<task>`` (downloads on first use)."""
    import tensorflow_datasets as tfds

    tfds_split = _tfds_split(split)
    try:
        builder = tfds.builder(task.tfds_name, data_dir=data_dir)
        builder.download_and_prepare()
        dataset = builder.as_dataset(split=tfds_split)
    except Exception as error:  # network or catalogue problems are the user's to fix
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"--use_tfds: cannot load {task.tfds_name} split {tfds_split} "
                        f"({first_line}); check the network or use --data_dir") from None
    tfds_label_names = None
    if not task.is_regression:
        tfds_label_names = list(builder.info.features["label"].names)
    return examples_from_tfds_records(task, split, tfds.as_numpy(dataset), tfds_label_names), {
        "tfds": f"{task.tfds_name}:{tfds_split}"}


def examples_from_tfds_records(task: GlueTask, split: str, records: Iterable[dict],
                               tfds_label_names: Optional[Sequence[str]]) -> list[Example]:
    """TFDS feature dicts -> Examples with this registry's label indices."""
    def text(value) -> str:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    is_test = split.startswith("test")
    examples = []
    for record in records:
        texts = [text(record[key]) for key in task.tfds_text_keys]
        label = None
        if not is_test:
            raw = record["label"]
            if task.is_regression:
                label = float(raw)
            else:
                label = task.label_names.index(tfds_label_names[int(raw)])
        guid = str(int(record["idx"])) if is_test else f"{split}-{int(record['idx'])}"
        examples.append(Example(guid, texts[0], texts[1] if len(texts) > 1 else None, label,
                                f"{task.tfds_name}:{split}"))
    return examples


def read_split(task: GlueTask, split: str, *, data_dir: Optional[str], use_tfds: bool,
               tfds_data_dir: Optional[str] = None) -> tuple[list[Example], dict]:
    if use_tfds:
        return read_tfds_split(task, split, tfds_data_dir)
    if not data_dir:
        raise UserError("--data_dir is required (the GLUE folders), or pass --use_tfds")
    return read_glue_split(data_dir, task, split)


def swap_sentence_order(examples: Sequence[Example]) -> list[Example]:
    """The examples followed by copies with text_a and text_b swapped (MRPC/STS-B augmentation)."""
    swapped = [dataclasses.replace(example, guid=example.guid + "-swapped",
                                   text_a=example.text_b, text_b=example.text_a)
               for example in examples if example.text_b is not None]
    return list(examples) + swapped


def submission_label(task: GlueTask, prediction) -> str:
    """A prediction as GLUE's leaderboard expects it: the label string, or the score."""
    if task.is_regression:
        return f"{min(max(float(prediction), 0.0), 5.0):.3f}"
    return task.label_names[int(prediction)]
