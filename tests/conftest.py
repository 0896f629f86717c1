"""Shared fixtures: the real data in ../shared/data, skipped with a reason only when absent."""

import os
import pathlib

import pytest
from pretraining_test_data import mechanics_data  # noqa: F401 (registers the fixture for every module)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("ELECTRA_TF_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def _require(path: pathlib.Path) -> pathlib.Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set ELECTRA_TF_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def bert_vocab_file() -> pathlib.Path:
    return _require(SHARED_DATA / "vocab" / "bert-base-uncased" / "vocab.txt")


@pytest.fixture(scope="session")
def wikipedia_dir() -> pathlib.Path:
    return _require(SHARED_DATA / "pretrain" / "wikipedia_en")


# make test spreads whole files over pytest-xdist workers (--dist loadfile --no-loadscope-reorder),
# handing them out in collection order. Left in alphabetical order, or in xdist's default order
# (most tests first), a long file that starts late runs alone at the end while the other workers
# idle. These files took 135-450 s each in a quiet run on 2 cores (2026-12-07, `--durations=0`),
# 72% of the suite's 2,810 worker-seconds, so they start first; the rest keep their order.
SLOWEST_FILES_FIRST = (
    "test_export.py",
    "test_run_pretraining.py",
    "test_pretraining_objective.py",
    "test_finetuning_training.py",
    "test_pretraining_long_runs.py",
    "test_distribution.py",
    "test_finetuning_custom.py",
    "test_compare_objectives.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(SLOWEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole
