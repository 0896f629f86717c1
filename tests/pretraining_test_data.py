"""Pretraining TFRecords built once per test session from a slice of the Wikipedia corpus with
the BERT vocabulary, through the project's own builder (electra_tf.pretraining_data)."""

import pathlib

import pytest

_BUILT: dict = {}


def build_once(name, root: pathlib.Path, wikipedia_dir, vocab_file, files, max_seq_length, num_shards):
    """Builds (or reuses, within this session) one data set; returns its directory."""
    if name not in _BUILT:
        output_dir = root / name
        # Imported here: conftest imports this module for every test, most of which need no TensorFlow.
        from electra_tf import pretraining_data

        pretraining_data.build_pretraining_data(
            pretraining_data.BuildOptions(
                corpus_dir=",".join(str(pathlib.Path(wikipedia_dir) / f) for f in files),
                vocab_file=str(vocab_file),
                output_dir=str(output_dir),
                max_seq_length=max_seq_length,
                num_shards=num_shards,
            ),
            progress_interval_seconds=60.0,
        )
        _BUILT[name] = output_dir
    return _BUILT[name]


@pytest.fixture(scope="session")
def mechanics_data(tmp_path_factory, wikipedia_dir, bert_vocab_file):
    """~2,200 examples of 128 tokens from wiki_00..01 in 4 shards, for runs that check mechanics."""
    root = tmp_path_factory.getbasetemp() / "pretraining_data"
    root.mkdir(exist_ok=True)
    train_dir = build_once("mechanics", root, wikipedia_dir, bert_vocab_file, ["wiki_00", "wiki_01"], 128, 4)
    return {"train_dir": train_dir, "train_glob": train_dir / "pretrain_data.tfrecord-*"}
