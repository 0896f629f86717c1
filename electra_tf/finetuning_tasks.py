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

import csv
import dataclasses
import io
import os
import re
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


class SentenceTask:
    """What every sentence (pair) classification or regression task answers the same way: its
    ``label_names`` (a dataclass field of the subclass) are None exactly for regression."""

    @property
    def is_regression(self) -> bool:
        """True for a regression task (label_names is None), e.g. STS-B."""
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        """The classifier's output count: 1 for regression, else len(label_names)."""
        return 1 if self.is_regression else len(self.label_names)

    @property
    def is_squad(self) -> bool:
        """False: a sentence task, not span extraction."""
        return False


@dataclasses.dataclass(frozen=True)
class GlueTask(SentenceTask):
    """One GLUE task: where its TSV files are, which columns hold the texts and the label, its
    labels (None for regression), metrics and the submission file names of its test splits."""

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
    # Regression: the range that leaderboard predictions are clipped to (STS-B's 0-5).
    score_range: Optional[tuple[float, float]] = None

    @property
    def is_pair(self) -> bool:
        """True for sentence-pair tasks (two text columns)."""
        return len(self.text_columns) == 2

    def compute_metrics(self, labels: Sequence, predictions: Sequence) -> dict[str, float]:
        """All of the task's metrics in percent, plus ``score``: the task's GLUE score."""
        if self.name == "cola":
            result = {"mcc": metrics.matthews_corrcoef(labels, predictions)}
        elif self.name == "sts-b":
            result = {
                "pearson": metrics.pearson(labels, predictions),
                "spearman": metrics.spearman(labels, predictions),
            }
        elif self.name in ("mrpc", "qqp"):
            result = {"accuracy": metrics.accuracy(labels, predictions), "f1": metrics.binary_f1(labels, predictions)}
        else:
            result = {"accuracy": metrics.accuracy(labels, predictions)}
        result = {key: 100.0 * value for key, value in result.items()}
        result["score"] = sum(result.values()) / len(result)
        return result


@dataclasses.dataclass(frozen=True)
class SquadTask:
    """SQuAD 1.1 or 2.0: its train/dev JSON file names, TFDS name and training epochs; 2.0 adds
    the no-answer (answerability) head."""

    name: str
    version: str  # "1.1" or "2.0"
    train_file: str
    dev_file: str
    num_epochs: int = 2
    headline_metric: str = "exact_match"
    tfds_name: str = ""
    # SQuAD 1.1 with the answerability classifier trained on all-answerable labels, as the
    # reference builds it for every QA task (--squad_v1_answerable_head); decoding ignores it.
    v1_answerable_head: bool = False

    @property
    def is_squad(self) -> bool:
        """True: span extraction."""
        return True

    @property
    def is_regression(self) -> bool:
        """False: SQuAD has no regression head."""
        return False

    @property
    def answerable_head(self) -> bool:
        """True when the model gets the answerability classifier: SQuAD 2.0, or 1.1 with v1_answerable_head."""
        return self.version == "2.0" or self.v1_answerable_head


_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask(
            "cola",
            "CoLA",
            (3,),
            1,
            (1,),
            _BINARY,
            "mcc",
            has_header=False,
            expected_columns=4,
            submission_files=("CoLA.tsv",),
            tfds_name="glue/cola",
            tfds_text_keys=("sentence",),
        ),
        GlueTask(
            "sst-2",
            "SST-2",
            (0,),
            1,
            (1,),
            _BINARY,
            "accuracy",
            submission_files=("SST-2.tsv",),
            tfds_name="glue/sst2",
            tfds_text_keys=("sentence",),
        ),
        GlueTask(
            "mrpc",
            "MRPC",
            (3, 4),
            0,
            (3, 4),
            _BINARY,
            "accuracy",
            submission_files=("MRPC.tsv",),
            tfds_name="glue/mrpc",
            tfds_text_keys=("sentence1", "sentence2"),
            symmetric_pairs=True,
        ),
        GlueTask(
            "sts-b",
            "STS-B",
            (7, 8),
            -1,
            (7, 8),
            None,
            "spearman",
            num_epochs=10,
            submission_files=("STS-B.tsv",),
            tfds_name="glue/stsb",
            tfds_text_keys=("sentence1", "sentence2"),
            target_scale=5.0,
            symmetric_pairs=True,
            score_range=(0.0, 5.0),
        ),
        GlueTask(
            "qqp",
            "QQP",
            (3, 4),
            5,
            (1, 2),
            _BINARY,
            "accuracy",
            submission_files=("QQP.tsv",),
            tfds_name="glue/qqp",
            tfds_text_keys=("question1", "question2"),
            skip_short_rows=True,
        ),
        GlueTask(
            "mnli",
            "MNLI",
            (8, 9),
            -1,
            (8, 9),
            ("contradiction", "entailment", "neutral"),
            "accuracy",
            dev_splits=("dev_matched", "dev_mismatched"),
            test_splits=("test_matched", "test_mismatched"),
            submission_files=("MNLI-m.tsv", "MNLI-mm.tsv"),
            tfds_name="glue/mnli",
            tfds_text_keys=("premise", "hypothesis"),
        ),
        GlueTask(
            "qnli",
            "QNLI",
            (1, 2),
            3,
            (1, 2),
            _ENTAILMENT,
            "accuracy",
            submission_files=("QNLI.tsv",),
            tfds_name="glue/qnli",
            tfds_text_keys=("question", "sentence"),
        ),
        GlueTask(
            "rte",
            "RTE",
            (1, 2),
            3,
            (1, 2),
            _ENTAILMENT,
            "accuracy",
            num_epochs=10,
            submission_files=("RTE.tsv",),
            tfds_name="glue/rte",
            tfds_text_keys=("sentence1", "sentence2"),
        ),
        GlueTask(
            "wnli",
            "WNLI",
            (1, 2),
            3,
            (1, 2),
            _BINARY,
            "accuracy",
            submission_files=("WNLI.tsv",),
            tfds_name="glue/wnli",
            tfds_text_keys=("sentence1", "sentence2"),
        ),
    )
}

SQUAD_TASKS: dict[str, SquadTask] = {
    "squad-v1.1": SquadTask("squad-v1.1", "1.1", "train-v1.1.json", "dev-v1.1.json", tfds_name="squad/v1.1"),
    "squad-v2.0": SquadTask("squad-v2.0", "2.0", "train-v2.0.json", "dev-v2.0.json", tfds_name="squad/v2.0"),
}

TASK_NAMES = tuple(GLUE_TASKS) + tuple(SQUAD_TASKS) + tuple(TAGGING_TASKS)
_ALIASES = {
    "sst2": "sst-2",
    "stsb": "sts-b",
    "squad": "squad-v1.1",
    "squad1.1": "squad-v1.1",
    "squad2.0": "squad-v2.0",
    "squad-v1": "squad-v1.1",
    "squad-v2": "squad-v2.0",
}


def get_task(name: str):
    """The registered task named ``name`` (case-insensitive; aliases such as "sst2" or "squad").

    Args:
      name: a GLUE, SQuAD or tagging task name from TASK_NAMES.

    Returns:
      Its GlueTask, SquadTask or TaggingTask.

    Raises:
      UserError: the name is unknown (the message lists the valid ones).
    """
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
    """The tasks of a comma-separated --task value, in order.

    Args:
      text: e.g. "mnli,sst-2" (blank entries are ignored).

    Returns:
      A list of tasks, as get_task returns them.

    Raises:
      UserError: ``text`` names no task, or an unknown one.
    """
    names = [part for part in (text or "").split(",") if part.strip()]
    if not names:
        raise UserError(f"--task is required: one or more of {', '.join(TASK_NAMES)}, comma-separated")
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
        raise UserError(
            f"{path}: file not found; --data_dir must hold the GLUE folders "
            "(CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI) with "
            "train/dev/test .tsv files"
        )
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
    needed = [*text_columns, task.test_id_column] if is_test else [*text_columns, task.label_column]
    if expected is not None and any(column >= expected for column in needed):
        # A re-saved file (e.g. comma-separated from a spreadsheet) would otherwise fail as an
        # IndexError deep in the loop.
        sample = lines[0] if header_line else next(line for line in lines if line.strip())
        if "\t" in sample:
            found = f"it has {expected}"
        else:
            found = "it has no tabs" + (" (it looks comma-separated)" if "," in sample else "")
        raise UserError(
            f"{path}:1: the official {task.directory} {split}.tsv has at least "
            f"{max(needed) + 1} tab-separated columns but {found}; use the GLUE "
            "file as downloaded, or --task=custom for your own CSV/TSV"
        )
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
            raise UserError(
                f"{where}: expected {expected} tab-separated columns as in the "
                f"official {task.directory} {split}.tsv, found {len(row)}"
            )
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
                    raise UserError(f"{where}: similarity score {raw_label!r} is not a number") from None
            else:
                if raw_label not in task.label_names:
                    raise UserError(
                        f"{where}: unknown {task.directory} label {raw_label!r}; "
                        f"expected one of {', '.join(task.label_names)}"
                    )
                label = task.label_names.index(raw_label)
        examples.append(Example(guid, texts[0], texts[1] if len(texts) > 1 else None, label, where))
    if not examples:
        raise UserError(f"{path}: no examples after the header; expected a GLUE {task.directory} TSV")
    return examples, {"file": path, "examples": len(examples), "skipped_rows": skipped}


# ---------------------------------------------------------------------------------------------
# TFDS


def _tfds_split(split: str) -> str:
    return split.replace("dev", "validation")


def read_tfds_split(task: GlueTask, split: str, data_dir: Optional[str] = None) -> tuple[list[Example], dict]:
    """The same examples from TFDS ``glue/<task>`` (downloads on first use)."""
    # Slow to import (seconds) and needed by --use_tfds only; this module stays TensorFlow-free.
    import tensorflow_datasets as tfds

    tfds_split = _tfds_split(split)
    try:
        builder = tfds.builder(task.tfds_name, data_dir=data_dir)
        builder.download_and_prepare()
        dataset = builder.as_dataset(split=tfds_split)
    except Exception as error:  # network or catalogue problems are the user's to fix
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"--use_tfds: cannot load {task.tfds_name} split {tfds_split} "
            f"({first_line}); check the network or use --data_dir"
        ) from None
    tfds_label_names = None
    if not task.is_regression:
        tfds_label_names = list(builder.info.features["label"].names)
    return examples_from_tfds_records(task, split, tfds.as_numpy(dataset), tfds_label_names), {
        "tfds": f"{task.tfds_name}:{tfds_split}"
    }


def examples_from_tfds_records(
    task: GlueTask, split: str, records: Iterable[dict], tfds_label_names: Optional[Sequence[str]]
) -> list[Example]:
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
        examples.append(
            Example(guid, texts[0], texts[1] if len(texts) > 1 else None, label, f"{task.tfds_name}:{split}")
        )
    return examples


def read_split(
    task: GlueTask, split: str, *, data_dir: Optional[str], use_tfds: bool, tfds_data_dir: Optional[str] = None
) -> tuple[list[Example], dict]:
    """The examples of one split, from the GLUE TSVs, TFDS or a custom task's file.

    Args:
      task: a GlueTask, or a CustomTask (which always reads its own file).
      split: e.g. "train", "dev", "test" (MNLI: "dev_matched", ...).
      data_dir: the GLUE folder (with CoLA/, SST-2/, ...); required unless ``use_tfds``.
      use_tfds: read TFDS's glue/<task> instead of the TSV files.
      tfds_data_dir: TFDS's data_dir (None: its default).

    Returns:
      (examples, info): the Examples (label None on test splits) and a dict describing the
      source (e.g. {"file", "examples", ...} or {"tfds": "<name>:<split>"}).

    Raises:
      UserError: ``data_dir`` is missing without ``use_tfds``, or the file is absent or malformed.
    """
    if isinstance(task, CustomTask):
        return read_custom_split(task, split)
    if use_tfds:
        return read_tfds_split(task, split, tfds_data_dir)
    if not data_dir:
        raise UserError("--data_dir is required (the GLUE folders), or pass --use_tfds")
    return read_glue_split(data_dir, task, split)


def swap_sentence_order(examples: Sequence[Example]) -> list[Example]:
    """The examples followed by copies with text_a and text_b swapped (MRPC/STS-B augmentation)."""
    swapped = [
        dataclasses.replace(example, guid=example.guid + "-swapped", text_a=example.text_b, text_b=example.text_a)
        for example in examples
        if example.text_b is not None
    ]
    return list(examples) + swapped


def submission_label(task: GlueTask, prediction) -> str:
    """A prediction as GLUE's leaderboard expects it: the label string, or the score."""
    if task.is_regression:
        value = float(prediction)
        if task.score_range is not None:
            value = min(max(value, task.score_range[0]), task.score_range[1])
        return f"{value:.3f}" if task.score_range is not None else f"{value:.6g}"
    return task.label_names[int(prediction)]


# ---------------------------------------------------------------------------------------------
# A user's own CSV/TSV files (--task=custom)

TASK_TYPES = ("classification", "regression")
_DELIMITERS = {
    "tab": "\t",
    "\\t": "\t",
    "\t": "\t",
    "comma": ",",
    ",": ",",
    "semicolon": ";",
    ";": ";",
    "pipe": "|",
    "|": "|",
}
_EXTENSION_DELIMITERS = {".tsv": "\t", ".csv": ","}
CUSTOM_SPLIT_FLAGS = {"train": "--train_file", "dev": "--dev_file", "test": "--test_file"}


@dataclasses.dataclass(frozen=True)
class CustomTask(SentenceTask):
    """A sentence (pair) classification or regression task read from the user's CSV/TSV files.

    It offers what the fine-tuning loop and export read from a ``GlueTask`` (name, labels,
    metrics, splits), and names its columns by the files' header row.
    """

    name: str
    task_type: str  # "classification" or "regression"
    files: tuple[tuple[str, str], ...]  # (split, path) for the splits that have a file
    text_column: str
    text_b_column: Optional[str]
    label_column: str
    # None: regression (task_type "regression"; make_custom_task fills it for classification).
    label_names: Optional[tuple[str, ...]]
    delimiter: Optional[str] = None  # None: from each file's extension
    id_column: Optional[str] = None  # test predictions' index; None: the row number from 0
    num_epochs: int = 3
    dev_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    target_scale: float = 1.0
    symmetric_pairs: bool = False
    score_range: Optional[tuple[float, float]] = None
    tfds_name: str = ""

    @property
    def directory(self) -> str:
        """The task's output folder name: its name."""
        return self.name

    @property
    def submission_files(self) -> tuple[str, ...]:
        """The test-prediction file written for the task: test_predictions.tsv."""
        return ("test_predictions.tsv",)

    @property
    def headline_metric(self) -> str:
        """The metric reported and used to pick the median trial: spearman for regression, else accuracy."""
        if self.is_regression:
            return "spearman"
        return "accuracy"

    @property
    def is_pair(self) -> bool:
        """True when a second text column (text_b_column) is given."""
        return self.text_b_column is not None

    def file(self, split: str) -> Optional[str]:
        """The file path given for ``split`` ("train", "dev", "test"), or None if that split has none."""
        return dict(self.files).get(split)

    def compute_metrics(self, labels: Sequence, predictions: Sequence) -> dict[str, float]:
        """Accuracy (and binary F1 of label index 1 for two labels) or Pearson and Spearman, in
        percent, plus ``score``: their mean."""
        if self.is_regression:
            result = {
                "pearson": metrics.pearson(labels, predictions),
                "spearman": metrics.spearman(labels, predictions),
            }
        else:
            result = {"accuracy": metrics.accuracy(labels, predictions)}
            if self.num_labels == 2:
                result["f1"] = metrics.binary_f1(labels, predictions)
        result = {key: 100.0 * value for key, value in result.items()}
        result["score"] = sum(result.values()) / len(result)
        return result


def parse_delimiter(text: Optional[str]) -> Optional[str]:
    """--delimiter as a character: tab, comma, semicolon, pipe (or the character); None: infer."""
    if not text:
        return None
    if text in _DELIMITERS:
        return _DELIMITERS[text]
    if text.lower() in _DELIMITERS:
        return _DELIMITERS[text.lower()]
    if len(text) == 1:
        return text
    raise UserError(f"--delimiter={text!r}: use tab, comma, semicolon, pipe or a single character")


def file_delimiter(path: str, delimiter: Optional[str]) -> str:
    """The field delimiter of a custom task's file.

    Args:
      path: the CSV/TSV file.
      delimiter: the --delimiter value ("\t" or ","), or None to infer it.

    Returns:
      ``delimiter`` if given, else "\t" for .tsv and "," for .csv.

    Raises:
      UserError: no delimiter is given and the extension is neither .tsv nor .csv.
    """
    if delimiter:
        return delimiter
    extension = os.path.splitext(path)[1].lower()
    if extension not in _EXTENSION_DELIMITERS:
        raise UserError(
            f"{path}: cannot tell the delimiter from the extension {extension!r}; "
            "name the file .tsv or .csv, or pass --delimiter=tab|comma"
        )
    return _EXTENSION_DELIMITERS[extension]


def custom_split_file(data_dir: Optional[str], split: str, given: Optional[str]) -> Optional[str]:
    """The file of ``split``: the --<split>_file flag, else <data_dir>/<split>.tsv or .csv."""
    if given:
        if not fileio.isfile(given):
            raise UserError(f"{CUSTOM_SPLIT_FLAGS[split]}={given}: file not found")
        return given
    if not data_dir:
        return None
    found = [
        os.path.join(data_dir, f"{split}{extension}")
        for extension in (".tsv", ".csv")
        if fileio.isfile(os.path.join(data_dir, f"{split}{extension}"))
    ]
    if len(found) > 1:
        raise UserError(
            f"--data_dir {data_dir} has both {found[0]} and {found[1]}; pass {CUSTOM_SPLIT_FLAGS[split]} to choose one"
        )
    return found[0] if found else None


def _csv_rows(path: str, delimiter: str):
    """(line number where the row starts, fields) for every non-blank row, the header first."""
    if not fileio.isfile(path):
        raise UserError(f"{path}: file not found")
    try:
        text = fileio.read_text(path).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None
    if not text.strip():
        raise UserError(f"{path}: file is empty; expected a header row naming the columns, then one example per row")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise UserError(
                f"{path}:{start}: not valid {_delimiter_name(delimiter)}-separated "
                f"text ({error}); close the quote or escape it by doubling it"
            ) from None
        if any(field.strip() for field in row):
            yield start, row
        start = reader.line_num + 1


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delimiter, repr(delimiter))


def _column_index(path: str, header: list[str], name: str, flag: str) -> int:
    names = [column.strip() for column in header]
    if name in names:
        return names.index(name)
    if re.fullmatch(r"\d+", name) and int(name) < len(names):
        return int(name)  # a 0-based column number also works
    raise UserError(f"{path}:1: no column {name!r} in the header ({', '.join(names)}); pass {flag}=<one of them>")


def _read_custom_rows(task: CustomTask, path: str, *, with_labels: bool):
    """Yields (where, text_a, text_b, raw label or None, id or None) for each row of ``path``."""
    delimiter = file_delimiter(path, task.delimiter)
    rows = _csv_rows(path, delimiter)
    try:
        _, header = next(rows)
    except StopIteration:  # only blank lines
        raise UserError(f"{path}: file is empty; expected a header row naming the columns") from None
    columns = [_column_index(path, header, task.text_column, "--text_column")]
    if task.text_b_column:
        columns.append(_column_index(path, header, task.text_b_column, "--text_b_column"))
    label = _column_index(path, header, task.label_column, "--label_column") if with_labels else None
    ident = _column_index(path, header, task.id_column, "--id_column") if task.id_column and not with_labels else None
    count = 0
    for number, row in rows:
        where = f"{path}:{number}"
        if len(row) != len(header):
            hint = " (a field with the delimiter in it must be in double quotes)" if len(row) > len(header) else ""
            raise UserError(
                f"{where}: expected {len(header)} {_delimiter_name(delimiter)}-"
                f"separated fields as in the header, found {len(row)}{hint}; fix "
                "the row or pass --delimiter"
            )
        count += 1
        yield (
            where,
            row[columns[0]],
            row[columns[1]] if len(columns) > 1 else None,
            row[label].strip() if label is not None else None,
            row[ident].strip() if ident is not None else None,
        )
    if not count:
        raise UserError(f"{path}: no examples after the header row")


def infer_labels(task: CustomTask, path: str) -> tuple[str, ...]:
    """The sorted distinct labels of the training file ``path``."""
    labels = sorted({raw for _, _, _, raw, _ in _read_custom_rows(task, path, with_labels=True)})
    if len(labels) < 2:
        raise UserError(
            f"{path}: the {task.label_column!r} column has only "
            f"{len(labels)} distinct label(s) {labels}; classification needs at "
            "least two (or pass --task_type=regression for numeric targets)"
        )
    return tuple(labels)


def read_custom_split(task: CustomTask, split: str) -> tuple[list[Example], dict]:
    """Examples of one split of a custom task; test splits have label None and guid = the
    --id_column value or the row's index from 0. Returns (examples, {"file", "examples"})."""
    path = task.file(split)
    if path is None:
        raise UserError(
            f"--task=custom: no {split} file; pass {CUSTOM_SPLIT_FLAGS[split]} or put {split}.tsv/.csv into --data_dir"
        )
    is_test = split.startswith("test")
    examples = []
    for index, (where, text_a, text_b, raw, ident) in enumerate(_read_custom_rows(task, path, with_labels=not is_test)):
        label = None
        if not is_test:
            if task.is_regression:
                try:
                    label = float(raw)
                except ValueError:
                    label = float("nan")
                if label != label or label in (float("inf"), float("-inf")):
                    raise UserError(
                        f"{where}: --task_type=regression needs a number in column "
                        f"{task.label_column!r}, found {raw!r}; fix the row or use "
                        "--task_type=classification"
                    )
            else:
                if raw not in task.label_names:
                    raise UserError(
                        f"{where}: label {raw!r} is not one of the labels "
                        f"{','.join(task.label_names)}; fix the row or add it to "
                        "--labels"
                    )
                label = task.label_names.index(raw)
        guid = (ident if ident is not None else str(index)) if is_test else (f"{split}-{where.rsplit(':', 1)[1]}")
        examples.append(Example(guid, text_a, text_b, label, where))
    return examples, {"file": path, "examples": len(examples), "skipped_rows": 0}


def make_custom_task(
    *,
    name: str = "custom",
    task_type: str = "classification",
    data_dir: Optional[str] = None,
    train_file: Optional[str] = None,
    dev_file: Optional[str] = None,
    test_file: Optional[str] = None,
    text_column: str = "text",
    text_b_column: Optional[str] = None,
    label_column: str = "label",
    labels: Optional[Sequence[str]] = None,
    delimiter: Optional[str] = None,
    id_column: Optional[str] = None,
    need_train: bool = True,
) -> CustomTask:
    """The CustomTask of the --task=custom flags: files resolved, labels given or inferred.

    Args:
      name: --task_name, the task's folder under --output_dir and its name in head.json.
      task_type: "classification" or "regression".
      data_dir: a folder with train/dev/test .tsv or .csv (the --*_file flags win).
      labels: the label set in class-index order; None: the training file's, sorted.
      delimiter: --delimiter as given (tab, comma, ...); None: from each file's extension.
      need_train: False for --do_train=false (labels must then be given).
    Returns:
      the CustomTask; every problem is a one-line UserError.
    """
    if task_type not in TASK_TYPES:
        raise UserError(f"--task_type={task_type!r}: use classification or regression")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise UserError(f"--task_name={name!r}: use letters, digits, '.', '_' and '-' (it names the output folder)")
    if name.lower() in TASK_NAMES or name.lower() in _ALIASES:
        raise UserError(f"--task_name={name!r} is a built-in task; choose another name")
    files = {
        split: custom_split_file(data_dir, split, given)
        for split, given in (("train", train_file), ("dev", dev_file), ("test", test_file))
    }
    for split in ("train", "dev") if need_train else ("dev",):
        if files[split] is None:
            raise UserError(
                f"--task=custom needs a {split} file: pass {CUSTOM_SPLIT_FLAGS[split]}"
                f" or a --data_dir with {split}.tsv or {split}.csv"
            )
    task = CustomTask(
        name=name,
        task_type=task_type,
        files=tuple((k, v) for k, v in files.items() if v is not None),
        text_column=text_column,
        text_b_column=text_b_column or None,
        label_column=label_column,
        label_names=None,
        delimiter=parse_delimiter(delimiter),
        id_column=id_column or None,
    )
    if task_type == "regression":
        if labels:
            raise UserError("--labels applies to --task_type=classification, not regression")
        return task
    if labels:
        names = tuple(label.strip() for label in labels if label.strip())
        if len(set(names)) != len(names) or len(names) < 2:
            raise UserError(f"--labels={','.join(labels)}: give two or more distinct labels")
    elif files["train"] is not None:
        names = infer_labels(task, files["train"])
    else:
        raise UserError("--labels is required without a training file (the label set, in the model's class order)")
    return dataclasses.replace(task, label_names=names)
