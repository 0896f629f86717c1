"""Vocabulary learning: layout, usefulness on held-out text, and the CLI's refusals."""

import os
import subprocess
import sys

import pytest

from electra_tf import build_vocab, tokenization
from electra_tf.build_vocab import expand_corpus_paths, iter_corpus_lines, learn_vocab, write_vocab
from electra_tf.errors import UserError
from electra_tf.tokenization import SPECIAL_TOKENS, Tokenizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB_SIZE = 2000


@pytest.fixture(scope="module")
def learned(wikipedia_dir, tmp_path_factory):
    paths = expand_corpus_paths([str(wikipedia_dir)])
    training_lines = list(iter_corpus_lines(paths[:40], max_lines=2000))
    tokens = learn_vocab(training_lines, VOCAB_SIZE, do_lower_case=True)
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    write_vocab(tokens, str(path))
    held_out = list(iter_corpus_lines(paths[45:], max_lines=1000))
    return tokens, str(path), held_out


def test_layout_special_tokens_first_and_exact_size(learned):
    assert build_vocab.SPECIAL_TOKENS == tokenization.SPECIAL_TOKENS
    tokens, _, _ = learned
    assert len(tokens) == VOCAB_SIZE == len(set(tokens))
    # BERT's layout, so presets with BERT's special ids work on a learned vocabulary.
    assert tokens[0] == "[PAD]" and tokens[1:100] == [f"[unused{i}]" for i in range(99)]
    assert tokens[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "the" in tokens and "##s" in tokens and "e" in tokens and "##e" in tokens
    assert all(t == t.lower() for t in tokens[104:] if not t.startswith("[unused"))


def test_learned_vocab_tokenizes_held_out_text_with_few_unknowns(learned):
    tokens, path, held_out = learned
    tokenizer = Tokenizer(path)
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (0, 100, 101, 102, 103)
    ids = [i for row in tokenizer.encode(held_out) for i in row]
    words = sum(len(line.split()) for line in held_out)
    assert len(ids) > words  # WordPiece splits rarer words
    unknown_rate = ids.count(tokenizer.unk_id) / len(ids)
    assert unknown_rate < 0.01, unknown_rate
    # Learned pieces do the work, not single characters (about 6 per word here).
    characters = sum(len(line) for line in held_out)
    assert len(ids) < 3.0 * words < 0.6 * characters


def test_cased_learning_keeps_case():
    lines = ["The Quick Brown Fox jumps over The Lazy Dog in Paris."] * 50 + ["Über Café naïve."] * 20
    tokens = learn_vocab(lines, 250, do_lower_case=False)
    assert {"The", "Paris", "Über", "##Ü"} <= set(tokens) and "the" not in tokens
    uncased = learn_vocab(lines, 250, do_lower_case=True)
    assert {"the", "paris", "uber", "cafe", "naive"} <= set(uncased)
    assert not any(t != t.lower() or "é" in t for t in uncased[104:] if not t.startswith("[unused"))


def test_corpus_reading_drops_doc_tags_and_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_text('<doc id="1" url="u" title="T">\nT\n\nFirst para.\n</doc>\n', encoding="utf-8")
    (tmp_path / "b.txt").write_text("Second file.\n", encoding="utf-8")
    paths = expand_corpus_paths([str(tmp_path)])
    assert list(iter_corpus_lines(paths)) == ["T", "First para.", "Second file."]
    assert list(iter_corpus_lines(paths, max_lines=2)) == ["T", "First para."]
    assert expand_corpus_paths([str(tmp_path / "*.txt")]) == paths
    with pytest.raises(UserError, match="no such file"):
        expand_corpus_paths([str(tmp_path / "missing*")])
    with pytest.raises(UserError, match="too small"):
        learn_vocab(["a b c"], 10)


def test_write_vocab_refuses_existing_file(tmp_path):
    path = tmp_path / "vocab.txt"
    write_vocab(list(SPECIAL_TOKENS), str(path))
    with pytest.raises(UserError, match="already exists"):
        write_vocab(list(SPECIAL_TOKENS) + ["x"], str(path))
    write_vocab(list(SPECIAL_TOKENS) + ["x"], str(path), overwrite=True)
    assert path.read_text(encoding="utf-8").split("\n")[-2] == "x"


def test_cli_learns_then_refuses_to_overwrite(wikipedia_dir, tmp_path):
    output = tmp_path / "vocab.txt"
    command = [
        sys.executable, "-m", "electra_tf.build_vocab", f"--corpus={wikipedia_dir}/wiki_0*",
        "--vocab_size=300", f"--output_file={output}", "--max_lines=300",
    ]
    first = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "300 tokens" in first.stdout and "read 300 lines" in first.stdout
    assert len(output.read_text(encoding="utf-8").splitlines()) == 300
    second = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    error_lines = [line for line in second.stderr.splitlines() if line.startswith("build_vocab.py: error:")]
    assert len(error_lines) == 1 and "already exists" in error_lines[0] and str(output) in error_lines[0]
    assert "Traceback" not in second.stderr
