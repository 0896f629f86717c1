"""Vocabulary learning: layout, usefulness on held-out text, and the CLI's refusals."""

import bz2
import gzip
import json
import os
import subprocess
import sys

import pytest

from electra_tf import build_vocab, corpus, fileio, tokenization
from electra_tf.build_vocab import learn_vocab, write_vocab
from electra_tf.errors import UserError
from electra_tf.tokenization import SPECIAL_TOKENS, Tokenizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB_SIZE = 2000


def text_lines(paths, max_lines=None):
    blocks = corpus.read_text_blocks(paths, corpus.ReadStats(), max_lines=max_lines)
    return [line for block in blocks for line in block]


@pytest.fixture(scope="module")
def learned(wikipedia_dir, tmp_path_factory):
    paths = corpus.list_corpus_files(str(wikipedia_dir))
    training_lines = text_lines(paths[:40], max_lines=2000)
    tokens = learn_vocab(training_lines, VOCAB_SIZE, do_lower_case=True)
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    write_vocab(tokens, str(path))
    held_out = text_lines(paths[45:], max_lines=1000)
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
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (
        0,
        100,
        101,
        102,
        103,
    )
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


def test_refuses_a_tiny_vocab_size_and_bad_options(tmp_path):
    with pytest.raises(UserError, match="too small"):
        learn_vocab(["a b c"], 10)
    (tmp_path / "a.txt").write_text("Some words.\n", encoding="utf-8")
    options = build_vocab.VocabOptions(
        corpus_dir=str(tmp_path / "missing*"), vocab_size=300, output_file=str(tmp_path / "vocab.txt")
    )
    with pytest.raises(UserError, match=r"missing\*: matches no files"):
        build_vocab.build_vocab(options)
    options.corpus_dir = str(tmp_path)
    options.input_format = "csv"
    with pytest.raises(UserError, match="--input_format=csv is not one of"):
        build_vocab.build_vocab(options)
    assert not (tmp_path / "vocab.txt").exists()


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
        sys.executable,
        "-m",
        "electra_tf.build_vocab",
        f"--corpus={wikipedia_dir}/wiki_0*",
        "--vocab_size=300",
        f"--output_file={output}",
        "--max_lines=300",
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


# One reader for every tool: the same text in any input format must give the same vocabulary.
FORMAT_VOCAB_SIZE = 300
REMOTE_ROOT = "ram://test_build_vocab"


@pytest.fixture(scope="module")
def documents(wikipedia_dir):
    """About 150 real paragraphs in 12 documents, free of JSON syntax and of the word 'text'.

    So a '{', '"', ':' or 'text' in a vocabulary learned from them can only have come from JSON.
    """
    paragraphs = text_lines([str(wikipedia_dir / "wiki_01")], max_lines=600)
    clean = [p for p in paragraphs if not set(p) & set('{}":') and "text" not in p.lower()][:156]
    assert len(clean) == 156
    return [clean[start : start + 13] for start in range(0, len(clean), 13)]


@pytest.fixture(scope="module")
def reference_vocab(documents):
    return learn_vocab([p for document in documents for p in document], FORMAT_VOCAB_SIZE)


def _plain(documents):
    return "".join("\n".join(document) + "\n\n" for document in documents)


def _jsonl(documents, field):
    return "".join(
        json.dumps({"id": index, "title": f"Doc {index}", "text": "decoy words", field: "\n".join(document)}) + "\n"
        for index, document in enumerate(documents)
    )


def _wikiextractor(documents):
    # The title line after each tag is dropped by the reader, like the tags themselves.
    return "".join(
        f'<doc id="{index}" url="https://en.wikipedia.org/wiki?curid={index}" title="Zanzibarian{index}">\n'
        f"Zanzibarian{index}\n\n" + "\n".join(document) + "\n</doc>\n"
        for index, document in enumerate(documents)
    )


CORPUS_FORMATS = {
    # name: (file name, writer, build options beyond the defaults)
    "text": ("corpus.txt", lambda docs: _plain(docs).encode("utf-8"), {}),
    "gzip": ("corpus.txt.gz", lambda docs: gzip.compress(_plain(docs).encode("utf-8")), {}),
    "bzip2": ("corpus.txt.bz2", lambda docs: bz2.compress(_plain(docs).encode("utf-8")), {}),
    "jsonl": ("docs.jsonl", lambda docs: _jsonl(docs, "text").encode("utf-8"), {}),
    "jsonl_field_gz": (
        "docs.ndjson.gz",
        lambda docs: gzip.compress(_jsonl(docs, "body").encode("utf-8")),
        {"json_text_field": "body"},
    ),
    "wikiextractor": ("AA/wiki_00", lambda docs: _wikiextractor(docs).encode("utf-8"), {}),
}


@pytest.mark.parametrize("name", sorted(CORPUS_FORMATS))
def test_every_input_format_learns_the_vocab_of_its_plain_text(name, documents, reference_vocab, tmp_path):
    file_name, write, extra = CORPUS_FORMATS[name]
    path = tmp_path / "corpus" / file_name
    path.parent.mkdir(parents=True)
    path.write_bytes(write(documents))
    output = tmp_path / "vocab.txt"
    options = build_vocab.VocabOptions(
        corpus_dir=str(tmp_path / "corpus"), vocab_size=FORMAT_VOCAB_SIZE, output_file=str(output), **extra
    )
    result = build_vocab.build_vocab(options)
    assert result["lines"] == sum(map(len, documents)) and result["files"] == 1
    assert output.read_text(encoding="utf-8").splitlines() == result["tokens"] == reference_vocab
    assert not {"{", "}", '"', "\\", ":", "text", "decoy", "zanzibarian"} & set(reference_vocab)


def test_jsonl_read_as_text_learns_json_syntax(documents, reference_vocab, tmp_path):
    # What build_vocab did before it read through electra_tf.corpus: the control for the test above.
    (tmp_path / "docs.jsonl").write_text(_jsonl(documents, "text"), encoding="utf-8")
    options = build_vocab.VocabOptions(
        corpus_dir=str(tmp_path / "docs.jsonl"),
        vocab_size=FORMAT_VOCAB_SIZE,
        output_file=str(tmp_path / "vocab.txt"),
        input_format="text",
    )
    tokens = build_vocab.build_vocab(options)["tokens"]
    # Quotes and the backslashes of escaped newlines are frequent enough to be learned here.
    assert {'"', "\\"} <= set(tokens) and tokens != reference_vocab


def test_remote_compressed_corpus_and_output(documents, reference_vocab):
    if fileio.exists(REMOTE_ROOT):
        fileio.rmtree(REMOTE_ROOT)
    half = len(documents) // 2
    fileio.makedirs(f"{REMOTE_ROOT}/corpus/sub")
    fileio.write_bytes_atomic(f"{REMOTE_ROOT}/corpus/a.txt.gz", gzip.compress(_plain(documents[:half]).encode()))
    fileio.write_bytes_atomic(f"{REMOTE_ROOT}/corpus/sub/b.jsonl", _jsonl(documents[half:], "text").encode())
    options = build_vocab.VocabOptions(
        corpus_dir=f"{REMOTE_ROOT}/corpus", vocab_size=FORMAT_VOCAB_SIZE, output_file=f"{REMOTE_ROOT}/out/vocab.txt"
    )
    result = build_vocab.build_vocab(options)
    assert result["files"] == 2
    assert fileio.read_text(f"{REMOTE_ROOT}/out/vocab.txt").splitlines() == reference_vocab
    with pytest.raises(UserError, match="already exists"):
        build_vocab.build_vocab(options)
    fileio.rmtree(REMOTE_ROOT)


def test_flags_are_the_corpus_flags_of_build_pretraining_data():
    from absl import flags

    from electra_tf import pretraining_data

    values = flags.FlagValues()
    build_vocab.define_flags(values)
    values(
        [
            "build_vocab",
            "--corpus_dir=a/,b.txt",
            "--corpus=c/*.gz",
            "--corpus=d",
            "--input_format=jsonl",
            "--json_text_field=body",
            "--blanks_separate_docs=false",
            "--vocab_size=500",
            "--output_file=v.txt",
        ]
    )
    options = build_vocab.options_from_flags(values)
    assert options == build_vocab.VocabOptions(
        corpus_dir="a/,b.txt,c/*.gz,d",
        vocab_size=500,
        output_file="v.txt",
        input_format="jsonl",
        json_text_field="body",
        blanks_separate_docs=False,
    )
    # Same defaults as the data builder's options, so both tools read a corpus alike by default.
    shared = ("input_format", "blanks_separate_docs", "json_text_field")
    defaults = flags.FlagValues()
    build_vocab.define_flags(defaults)
    defaults(["build_vocab"])
    builder = pretraining_data.BuildOptions(corpus_dir="x", vocab_file="v", output_dir="o")
    assert {name: defaults[name].value for name in shared} == {name: getattr(builder, name) for name in shared}
