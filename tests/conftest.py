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
