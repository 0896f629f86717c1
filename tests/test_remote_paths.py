"""Every CLI's inputs and outputs on a remote file system: TensorFlow's in-memory ram://, which
tf.io.gfile treats like gs:// (and which pathlib, open or os would turn into a local "ram:"
folder). ram:// lives in one process, so the library entry points behind the CLIs run here.

One chain, tiny sizes: corpus -> build_vocab and build_pretraining_data -> run_pretraining (with
a ram:// --config, killed-style rerun) -> run_finetuning from ram://.../pretrained -> export ->
predict, each reading only ram:// inputs and writing only ram:// outputs.
"""

import dataclasses
import io
import json
import os
import pathlib

import pytest

from electra_tf import (
    build_vocab,
    exporter,
    fileio,
    finetuning,
    predict,
    pretraining,
    pretraining_data,
    pretraining_manifest,
)
from electra_tf.config import CONFIGS_DIR
from electra_tf.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
ROOT = "ram://electra_tf_test"
TINY = {
    "hidden_size": 32,
    "embedding_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "num_warmup_steps": 1,
    "train_batch_size": 4,
    "max_seq_length": 32,
    "num_train_steps": 2,
    "save_checkpoints_steps": 2,
}


def _put(local: pathlib.Path, remote: str) -> None:
    fileio.makedirs(os.path.dirname(remote))
    with fileio.open(remote, "wb") as handle:
        handle.write(local.read_bytes())


def _tree(path: str) -> list[str]:
    return fileio.files_below(path)


def test_every_cli_reads_and_writes_ram_paths(tmp_path, monkeypatch, wikipedia_dir, bert_vocab_file):
    monkeypatch.chdir(tmp_path)  # a "ram:" folder would appear here
    if fileio.exists(ROOT):
        fileio.rmtree(ROOT)
    corpus_lines = (wikipedia_dir / "wiki_00").read_text(encoding="utf-8").splitlines()[:300]
    fileio.makedirs(f"{ROOT}/corpus/sub")
    with fileio.open(f"{ROOT}/corpus/sub/part.txt", "w") as handle:
        handle.write("\n".join(corpus_lines) + "\n")
    _put(bert_vocab_file, f"{ROOT}/vocab.txt")
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        _put(REPO / "tests" / "fixtures" / "glue" / "MNLI" / name, f"{ROOT}/glue/MNLI/{name}")
    with fileio.open(f"{ROOT}/tiny.json", "w") as handle:
        json.dump(dict(json.loads((CONFIGS_DIR / "electra_tiny.json").read_text()), **TINY), handle)

    # build_vocab: a remote corpus directory in, a remote vocab.txt out.
    build_vocab.build_vocab(
        build_vocab.VocabOptions(
            corpus_dir=f"{ROOT}/corpus", vocab_size=400, output_file=f"{ROOT}/learned/vocab.txt", max_lines=200
        )
    )
    learned = fileio.read_text(f"{ROOT}/learned/vocab.txt").splitlines()
    assert len(learned) == 400 and learned[100] == "[UNK]"

    # build_pretraining_data: shards and manifest.json both remote.
    pretraining_data.build_pretraining_data(
        pretraining_data.BuildOptions(
            corpus_dir=f"{ROOT}/corpus",
            vocab_file=f"{ROOT}/vocab.txt",
            output_dir=f"{ROOT}/data",
            max_seq_length=32,
            num_shards=2,
            num_processes=1,
        ),
        progress_interval_seconds=60.0,
    )
    assert _tree(f"{ROOT}/data") == [
        "manifest.json",
        "pretrain_data.tfrecord-00000-of-00002",
        "pretrain_data.tfrecord-00001-of-00002",
    ]
    manifest = pretraining_manifest.read_manifest(f"{ROOT}/data")
    assert manifest["vocab_file"] == f"{ROOT}/vocab.txt" and manifest["num_examples"] > 8

    # run_pretraining: a remote --config, data and --model_dir; pretrained/ lands there too.
    options = pretraining.PretrainingOptions(model_dir=f"{ROOT}/run", pretrain_data=f"{ROOT}/data", log_every_steps=1)
    result = pretraining.run_pretraining(options, config=f"{ROOT}/tiny.json")
    assert result.final_step == 2
    files = _tree(f"{ROOT}/run")
    for name in (
        "config.json",
        "checkpoints/checkpoint",
        "pretrained/config.json",
        "pretrained/backbone.weights.h5",
        "pretrained/discriminator.weights.h5",
        "pretrained/generator.weights.h5",
        "pretrained/vocab.txt",
    ):
        assert name in files, (name, files)
    assert any(name.startswith("checkpoints/ckpt-2") for name in files)
    assert any(name.startswith("train/") for name in files)
    assert not any(".writing-" in name or name == ".run_lock.json" for name in files)
    rerun = pretraining.run_pretraining(options, config=f"{ROOT}/tiny.json")
    assert rerun.start_step == 2 and rerun.pretrained_dir == f"{ROOT}/run/pretrained"

    # run_finetuning: remote --init_checkpoint, --data_dir, --vocab_file and --output_dir.
    finetune_options = finetuning.FinetuningOptions(
        output_dir=f"{ROOT}/finetune",
        tasks="mnli",
        data_dir=f"{ROOT}/glue",
        init_checkpoint=f"{ROOT}/run",
        vocab_file=f"{ROOT}/vocab.txt",
        max_seq_length=32,
        num_train_steps=2,
        train_batch_size=4,
        log_every_steps=1000,
        write_test_predictions=False,
    )
    # A vocabulary other than the one pretrained/ carries is refused before any training.
    with pytest.raises(UserError, match="is not the vocabulary the model was pretrained with"):
        finetuning.run_finetuning(dataclasses.replace(finetune_options, vocab_file=f"{ROOT}/learned/vocab.txt"))
    finetuning.run_finetuning(finetune_options)
    files = _tree(f"{ROOT}/finetune")
    for name in (
        "mnli/results.json",
        "mnli/trial_1/finetuned/head.json",
        "mnli/trial_1/finetuned/model.weights.h5",
        "mnli/trial_1/finetuned/config.json",
        "mnli/trial_1/finetuned/vocab.txt",
    ):
        assert name in files, (name, files)
    assert not any(".writing-" in name for name in files)
    assert fileio.read_bytes(f"{ROOT}/finetune/mnli/trial_1/finetuned/vocab.txt") == (bert_vocab_file.read_bytes())
    # finetuned/ stands on its own: export needs neither the pretrained folder nor the
    # vocabulary it was fine-tuned from.
    fileio.rmtree(f"{ROOT}/run")
    fileio.remove(f"{ROOT}/vocab.txt")

    # export: remote --input, --export_base; the version is complete and renamed into place.
    target, _ = exporter.export(f"{ROOT}/finetune/mnli", f"{ROOT}/serving")
    assert target == f"{ROOT}/serving/1"
    assert fileio.listdir(f"{ROOT}/serving") == ["1"]
    files = _tree(target)
    assert {
        "saved_model.pb",
        "assets/vocab.txt",
        "assets.extra/custom_ops.json",
        "assets.extra/electra_tf_export.json",
    } <= set(files)
    assert any(name.startswith("variables/variables.data") for name in files)

    # predict: a remote --export_dir and --input.
    with fileio.open(f"{ROOT}/pairs.tsv", "w") as handle:
        handle.write("A man plays.\tSomeone plays music.\nIt rains.\tThe sun shines.\n")
    model = predict.ExportedModel(f"{ROOT}/serving", "pair")
    out = io.StringIO()
    with fileio.open(f"{ROOT}/pairs.tsv", "r") as handle:
        assert predict.predict_lines(model, handle, "pairs.tsv", 2, out=out) == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 2 and {"label_id", "label_name", "probabilities"} <= set(rows[0])

    assert not any(name.startswith("ram") for name in os.listdir(tmp_path))
    assert not os.path.exists("ram:") and not pathlib.Path(REPO / "ram:").exists()
    fileio.rmtree(ROOT)
