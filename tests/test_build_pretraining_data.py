"""build_pretraining_data end to end: output equal to packing the same lines in-process, manifest
statistics, worker parts, and every kind of bad input (library and command line)."""

import io
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import corpus, example_packing, pretraining_data, pretraining_dataset, pretraining_manifest
from electra_tf.errors import UserError
from electra_tf.example_encoding import ExampleEncoder
from electra_tf.example_packing import ExampleBuilder
from electra_tf.pretraining_data import BuildOptions
from electra_tf.tokenization import Tokenizer, vocab_sha256

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_records(path):
    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]


def build(tmp_path, corpus_dir, vocab_file, name="out", **overrides):
    options = BuildOptions(
        corpus_dir=str(corpus_dir), vocab_file=str(vocab_file), output_dir=str(tmp_path / name), **overrides
    )
    stream = io.StringIO()
    manifest = pretraining_data.build_pretraining_data(options, progress_stream=stream)
    return manifest, stream.getvalue()


@pytest.fixture(scope="module")
def wiki_corpus(tmp_path_factory, wikipedia_dir):
    """Three real Wikipedia files, about 3 MB."""
    directory = tmp_path_factory.mktemp("wiki")
    for name in ("wiki_00", "wiki_01", "wiki_02"):
        shutil.copy(wikipedia_dir / name, directory / name)
    return directory


@pytest.fixture(scope="module")
def tokenizer(bert_vocab_file):
    return Tokenizer(str(bert_vocab_file))


def expected_records(files, tokenizer, max_seq_length, seed, process_index):
    """The examples of one packing process, made in-process from the reader and tokenizer."""
    builder = ExampleBuilder(max_seq_length, random.Random(example_packing.partition_seed(seed, 0, process_index)))
    encoder = ExampleEncoder(max_seq_length, tokenizer.cls_id, tokenizer.sep_id)
    examples = []
    for path in files:
        lines = list(corpus.read_lines(path))
        token_ids = tokenizer.encode([line for line in lines if line])
        position = 0
        for line in lines:
            if line:
                sentence = token_ids[position]
                position += 1
                example = builder.add_sentence(sentence) if sentence else None
            else:
                example = builder.end_document()
            if example is not None:
                examples.append(example)
    return encoder.encode(examples)


def test_build_equals_in_process_packing_and_manifest_adds_up(tmp_path, wiki_corpus, bert_vocab_file, tokenizer):
    manifest, log = build(
        tmp_path, wiki_corpus, bert_vocab_file, max_seq_length=64, num_processes=2, num_shards=5, seed=7
    )
    output = tmp_path / "out"
    files = sorted(str(path) for path in wiki_corpus.iterdir())
    names = [pretraining_manifest.shard_file_name(index, 5) for index in range(5)]
    assert manifest["shards"] == names
    assert sorted(os.listdir(output)) == sorted(names + ["manifest.json"])

    all_records = []
    for process_index in range(2):
        expected = expected_records(files[process_index::2], tokenizer, 64, 7, process_index)
        process_shards = names[process_index::2]  # shard s belongs to process s % 2
        # Examples go round-robin over the process's shards.
        for position, name in enumerate(process_shards):
            assert read_records(output / name) == expected[position :: len(process_shards)]
        all_records += expected
    assert manifest["shard_examples"] == [len(read_records(output / name)) for name in names]

    parsed = [tf.train.Example.FromString(record).features.feature for record in all_records]
    input_ids = np.array([feature["input_ids"].int64_list.value for feature in parsed])
    input_mask = np.array([feature["input_mask"].int64_list.value for feature in parsed])
    segment_ids = np.array([feature["segment_ids"].int64_list.value for feature in parsed])
    assert input_ids.shape == (manifest["num_examples"], 64)
    assert (input_ids[:, 0] == tokenizer.cls_id).all()
    lengths = input_mask.sum(axis=1)
    assert (input_ids[np.arange(len(lengths)), lengths - 1] == tokenizer.sep_id).all()
    assert (input_ids * (1 - input_mask) == 0).all() and (segment_ids <= input_mask).all()
    two_segments = segment_ids.max(axis=1) == 1
    assert manifest["num_single_segment_examples"] == int((~two_segments).sum())
    # Wikipedia paragraphs are often longer than a whole example, which then has one segment.
    assert 0.1 < (~two_segments).mean() < 0.9
    assert manifest["num_tokens"] == int(input_mask.sum())
    assert manifest["padding_fraction"] == pytest.approx(1 - input_mask.sum() / input_mask.size)

    text = "".join(open(path, encoding="utf-8").read() for path in files)
    assert manifest["num_documents"] == text.count("<doc ")
    assert manifest["input_bytes"] == sum(os.path.getsize(path) for path in files)
    assert manifest["num_input_files"] == 3
    assert manifest["vocab_size"] == 30522 and manifest["vocab_sha256"] == vocab_sha256(bert_vocab_file)
    assert manifest["max_seq_length"] == 64 and manifest["do_lower_case"] is True
    assert manifest["special_token_ids"] == {
        "pad_token_id": 0,
        "unk_token_id": 100,
        "cls_token_id": 101,
        "sep_token_id": 102,
        "mask_token_id": 103,
    }
    assert manifest["seed"] == 7 and manifest["num_processes"] == 2
    assert manifest["non_utf8_replacements"] == 0
    kept = manifest["num_tokens"] - 2 * manifest["num_examples"] - int(two_segments.sum())
    assert manifest["num_truncated_tokens"] == manifest["num_text_tokens"] - kept
    assert json.loads((output / "manifest.json").read_text())["num_examples"] == manifest["num_examples"]
    summary = log.strip().split("\n")[-1]
    assert summary.startswith(f"wrote {manifest['num_examples']:,} examples") and "documents" in summary

    # The reader API takes the directory.
    files_read, manifest_read = pretraining_dataset.resolve_pretraining_data(str(output))
    assert files_read == [str(output / name) for name in names]
    pretraining_manifest.check_manifest_compatible(
        manifest_read, vocab_size=30522, do_lower_case=True, max_seq_length=64, source=str(output)
    )
    batch = next(iter(pretraining_dataset.make_pretraining_dataset(files_read, 16, 64, seed=1)))
    assert batch["input_ids"].shape == (16, 64) and batch["input_ids"].dtype == tf.int32


def test_workers_write_parts_that_combine(tmp_path, bert_vocab_file):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    for index in range(3):
        (corpus_dir / f"part{index}.txt").write_text(
            "".join(
                f"Document {index} sentence {n} about topic {n * index}.\n" + ("\n" if n % 4 == 3 else "")
                for n in range(40)
            )
        )
    manifests = [
        build(
            tmp_path, corpus_dir, bert_vocab_file, max_seq_length=32, num_shards=2, worker_index=worker, num_workers=2
        )[0]
        for worker in range(2)
    ]
    output = tmp_path / "out"
    assert manifests[0]["num_input_files"] == 2 and manifests[1]["num_input_files"] == 1
    assert sorted(os.listdir(output)) == sorted(
        ["manifest-00000-of-00002.json", "manifest-00001-of-00002.json"]
        + [pretraining_manifest.shard_file_name(shard, 2, worker, 2) for worker in range(2) for shard in range(2)]
    )
    files, combined = pretraining_dataset.resolve_pretraining_data(str(output))
    assert len(files) == 4 and combined["num_examples"] == sum(m["num_examples"] for m in manifests)
    assert sum(len(read_records(path)) for path in files) == combined["num_examples"]
    assert combined["num_documents"] == 30
    written = pretraining_manifest.combine_manifest_parts(str(output))
    assert json.loads((output / "manifest.json").read_text())["num_examples"] == written["num_examples"]
    with pytest.raises(UserError, match="manifest.json: already exists"):
        pretraining_manifest.combine_manifest_parts(str(output))
    os.remove(output / "manifest.json")
    os.remove(output / "manifest-00001-of-00002.json")
    with pytest.raises(UserError, match=r"worker\(s\) 1 of 2 are missing"):
        pretraining_dataset.resolve_pretraining_data(str(output))
    # Re-running one worker is refused unless --overwrite; its files alone are in the way.
    with pytest.raises(UserError, match="not empty"):
        build(tmp_path, corpus_dir, bert_vocab_file, max_seq_length=32, num_shards=2, worker_index=0, num_workers=2)


def test_bad_utf8_is_counted_and_warned(tmp_path, bert_vocab_file):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "a.txt").write_bytes(b"Caf\xe9 au lait is good.\nAnother \xff\xfe line here.\n")
    manifest, log = build(tmp_path, corpus_dir, bert_vocab_file, max_seq_length=16, num_shards=1)
    assert manifest["non_utf8_replacements"] == 3 and manifest["num_examples"] >= 1
    warning = [line for line in log.split("\n") if line.startswith("warning:")]
    assert len(warning) == 1 and "3 invalid UTF-8" in warning[0] and "a.txt" in warning[0]
    assert "3 non-UTF-8 replacements" in log.strip().split("\n")[-1]


def test_single_line_of_20_megabytes_completes(tmp_path, bert_vocab_file):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    sentence = "the quick brown fox jumps over the lazy dog and keeps running. "  # 63 characters
    with open(corpus_dir / "huge.txt", "w") as handle:
        for _ in range(20):
            handle.write(sentence * 16_000)
    manifest, _ = build(tmp_path, corpus_dir, bert_vocab_file, max_seq_length=128, num_shards=1)
    assert manifest["input_text_bytes"] == 20 * 16_000 * 63
    assert manifest["overlong_line_cuts"] >= 20 * 16_000 * 63 // corpus.MAX_LINE_CHARS
    # Each piece is over a full example long, so each makes exactly one example.
    assert manifest["num_examples"] == manifest["overlong_line_cuts"] + 1
    assert manifest["num_documents"] == 1 and manifest["num_lines"] == manifest["num_examples"]


def test_output_dir_is_refused_unless_overwrite_which_keeps_other_files(tmp_path, bert_vocab_file):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "a.txt").write_text("One sentence here.\nAnother one.\n")
    first, _ = build(tmp_path, corpus_dir, bert_vocab_file, max_seq_length=16, num_shards=3)
    output = tmp_path / "out"
    (output / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"out: --output_dir is not empty .* pass --overwrite"):
        build(tmp_path, corpus_dir, bert_vocab_file, max_seq_length=16, num_shards=2)
    second, _ = build(tmp_path, corpus_dir, bert_vocab_file, max_seq_length=16, num_shards=2, overwrite=True)
    assert sorted(os.listdir(output)) == sorted(second["shards"] + ["manifest.json", "notes.txt"])


def test_empty_corpus_and_bad_vocab_are_user_errors(tmp_path, bert_vocab_file):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "blank.txt").write_text("\n  \n\t\n")
    with pytest.raises(UserError, match="the corpus holds no text"):
        build(tmp_path, corpus_dir, bert_vocab_file, num_shards=1)
    assert not os.path.exists(tmp_path / "out" / "manifest.json")
    assert os.listdir(tmp_path / "out") == []
    (corpus_dir / "blank.txt").write_text("Some text.\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "some", "text", "."]) + "\n")
    with pytest.raises(UserError, match=r"vocab.txt: missing special token\(s\) \[MASK\]"):
        build(tmp_path, corpus_dir, vocab, name="out2", num_shards=1)
    with pytest.raises(UserError, match="--num_shards=1 must be at least --num_processes=2"):
        build(tmp_path, corpus_dir, bert_vocab_file, name="out3", num_shards=1, num_processes=2)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "electra_tf.build_pretraining_data", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_errors_are_one_line(tmp_path, bert_vocab_file):
    missing = run_cli(
        f"--corpus_dir={tmp_path}/missing.txt", f"--vocab_file={bert_vocab_file}", f"--output_dir={tmp_path}/out"
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith(
        f"error: {tmp_path}/missing.txt: no such file or directory (from --corpus_dir)"
    )
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().split("\n")) == 1

    (tmp_path / "a.txt").write_text("text\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    busy = run_cli(f"--corpus_dir={tmp_path}/a.txt", f"--vocab_file={bert_vocab_file}", f"--output_dir={tmp_path}/out")
    assert busy.returncode == 2 and "Traceback" not in busy.stderr
    assert busy.stderr.strip().split("\n")[-1].endswith("pass --overwrite to replace earlier pretraining data there")


def test_cli_builds(tmp_path, bert_vocab_file):
    (tmp_path / "a.txt").write_text("The first document has two lines.\nThis is the second.\n\nA second document.\n")
    result = run_cli(
        f"--corpus_dir={tmp_path}/a.txt",
        f"--vocab_file={bert_vocab_file}",
        f"--output_dir={tmp_path}/out",
        "--max_seq_length=16",
        "--num_shards=2",
        "--num_processes=2",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote " in result.stderr.strip().split("\n")[-1]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["num_documents"] == 2 and manifest["num_examples"] >= 2


def test_unreadable_input_is_refused_before_any_work(tmp_path, bert_vocab_file, monkeypatch):
    # Tests may run as root, which can read anything, so the permission check is simulated.
    (tmp_path / "locked.txt").write_text("secret\n")
    real_access = os.access
    monkeypatch.setattr(
        pretraining_data.os,
        "access",
        lambda path, mode: False if path.endswith("locked.txt") else real_access(path, mode),
    )
    with pytest.raises(UserError, match=r"locked.txt: cannot read \(permission denied\)"):
        build(tmp_path, tmp_path / "locked.txt", bert_vocab_file, num_shards=1)
    assert not os.path.exists(tmp_path / "out")
