"""The corpus built from Python's own documentation: size, layout, determinism, refusals."""

import os
import subprocess
import sys

import pytest

from electra_tf.default_corpus import paragraphs_from_text, write_default_corpus
from electra_tf.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_all(paths):
    return "".join(open(path, encoding="utf-8").read() for path in paths)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("corpus")
    return output_dir, write_default_corpus(str(output_dir))


def test_corpus_is_large_prose_and_well_formed(corpus):
    output_dir, stats = corpus
    assert stats["bytes"] > 1_500_000 and stats["documents"] > 1000 and stats["words"] > 250_000
    assert stats["files"] == len(stats["paths"]) == len(os.listdir(output_dir))
    text = read_all(stats["paths"])
    assert len(text.encode("utf-8")) == stats["bytes"]
    documents = [d for d in text.split("\n\n") if d]
    assert len(documents) == stats["documents"]
    lines = text.split("\n")
    paragraphs = [line for line in lines if line]
    assert len(paragraphs) == stats["lines"]
    assert sum(len(p.split()) for p in paragraphs) == stats["words"]
    assert not any(line.lstrip().startswith(">>>") for line in lines)
    assert not any(line != line.strip() for line in paragraphs)
    # Prose, not code: most characters are letters or spaces, and help topics are in.
    letters = sum(c.isalpha() or c == " " for c in text)
    assert letters > 0.85 * len(text)
    assert "Assert statements are a convenient way to insert debugging assertions into a program:" in text
    assert len(set(paragraphs)) == len(paragraphs)  # repeated paragraphs are dropped


def test_corpus_is_deterministic_and_respects_max_bytes(corpus, tmp_path):
    _, stats = corpus
    again = write_default_corpus(str(tmp_path / "again"))
    assert {k: v for k, v in again.items() if k != "paths"} == {k: v for k, v in stats.items() if k != "paths"}
    assert read_all(again["paths"]) == read_all(stats["paths"])
    small = write_default_corpus(str(tmp_path / "small"), max_bytes=200_000)
    assert 150_000 < small["bytes"] <= 200_000 and small["files"] == 1
    assert read_all(stats["paths"]).startswith(read_all(small["paths"]))


def test_refuses_non_empty_directory_unless_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me\n", encoding="utf-8")
    with pytest.raises(UserError, match="not empty"):
        write_default_corpus(str(tmp_path), max_bytes=10_000)
    first = write_default_corpus(str(tmp_path), max_bytes=10_000, overwrite=True)
    second = write_default_corpus(str(tmp_path), max_bytes=20_000, overwrite=True)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me\n"
    assert first["bytes"] < second["bytes"] == os.path.getsize(second["paths"][0])


def test_paragraph_extraction_joins_prose_and_drops_code():
    text = (
        "Title\n=====\n\nFirst line of a paragraph\nwrapped onto a second line.\n\n"
        ">>> print(1)\n1\n\n    indented = code(block)\n    more_code()\n\n"
        "+-----+-----+\n| a   | b   |\n+-----+-----+\n\nLast words are here.\n"
    )
    assert paragraphs_from_text(text) == [
        "First line of a paragraph wrapped onto a second line.",
        "Last words are here.",
    ]


def test_cli_writes_and_summarises_and_refuses_stray_arguments(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "electra_tf.default_corpus", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    written = run(f"--output_dir={tmp_path}/corpus", "--max_bytes=5000")
    assert written.returncode == 0, written.stderr[-2000:]
    files = sorted(os.listdir(tmp_path / "corpus"))
    size = os.path.getsize(tmp_path / "corpus" / files[0])
    assert files == ["python_docs_000.txt"] and 0 < size <= 5000
    assert written.stdout.startswith(f"wrote 1 files to {tmp_path}/corpus: ")
    assert written.stdout.rstrip().endswith(f"words, {size / 1e6:.2f} MB")
    stray = run(f"--output_dir={tmp_path}/other", "extra")
    assert stray.returncode == 2 and not (tmp_path / "other").exists()
    assert stray.stderr.strip() == "default_corpus.py: error: unexpected arguments extra; every option is a --flag"
