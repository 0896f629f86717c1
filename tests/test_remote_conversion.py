"""convert_checkpoint with every input and output on TensorFlow's in-memory ram:// file system
(which tf.io.gfile treats like gs://, and which pathlib, open or shutil would turn into a local
"ram:" folder).

ram:// lives in one process, so the chain runs in one child process: convert_checkpoint's flags
clash with run_pretraining's (both define --config) in the test process.
electra_tf -> huggingface -> official -> electra_tf, electra_tf -> official, and a fine-tuned
classifier -> huggingface, through the CLI's main(); the weights come back bit for bit, each
output has its vocab.txt, nothing is left under a temporary name and no "ram:" folder appears in
the working directory.
"""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys
import numpy as np
from absl import flags
from electra_tf import checkpoint_conversion as conversion, convert_checkpoint, fileio
from electra_tf.config import ElectraConfig
from electra_tf.pretraining_objective import ElectraPretrainer, save_pretrained

ROOT = "ram://electra_tf_convert"
config = ElectraConfig(vocab_size=128, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=24,
                       max_seq_length=12, generator_hidden_size=0.5)
model = ElectraPretrainer(config, seed=1)
save_pretrained(model, f"{ROOT}/pretrained")
fileio.write_text_atomic(f"{ROOT}/pretrained/vocab.txt", "[PAD]\n[UNK]\nram\n")
original = {variable.path: np.asarray(variable.numpy()) for variable in model.weights}


def convert(*args):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["convert_checkpoint", *args])
    convert_checkpoint.main(["convert_checkpoint"])


convert("--from=electra_tf", f"--model_dir={ROOT}/pretrained", "--to=huggingface",
        f"--output_dir={ROOT}/hf")
convert("--from=huggingface", f"--model_dir={ROOT}/hf/discriminator",
        f"--generator_model_dir={ROOT}/hf/generator", "--to=official",
        f"--output_dir={ROOT}/official")
convert("--from=official", f"--checkpoint={ROOT}/official", f"--output_dir={ROOT}/back")
convert("--from=electra_tf", f"--model_dir={ROOT}/pretrained", "--to=official",
        f"--output_dir={ROOT}/official_direct")
# A fine-tuned classifier (finetuned/ with its vocab.txt) on ram:// to Hugging Face.
from electra_tf import finetuning, finetuning_tasks

task = finetuning_tasks.get_task("rte")
classifier = finetuning.build_model(config, task, None)
finetuning._save_finetuned(classifier, config, task, f"{ROOT}/finetuned", 12,
                           vocab_file=f"{ROOT}/pretrained/vocab.txt")
convert("--from=electra_tf", f"--model_dir={ROOT}/finetuned", "--to=huggingface",
        f"--output_dir={ROOT}/hf_finetuned")
hf_config = fileio.read_json(f"{ROOT}/hf_finetuned/discriminator/config.json")
head = conversion.read_safetensors(f"{ROOT}/hf_finetuned/discriminator/model.safetensors")
kernel = np.asarray(classifier.output_dense.kernel.numpy())
finetuned_head = {"architectures": hf_config["architectures"],
                  "id2label": hf_config["id2label"],
                  "kernel_rows": bool(np.array_equal(head["classifier.dense.weight"][:2], kernel.T))}
back = conversion.read_electra_tf(f"{ROOT}/back").arrays
direct = conversion.read_official(f"{ROOT}/official_direct", config).arrays
mismatched = sorted(path for path in original
                    if not (np.array_equal(back.get(path), original[path])
                            and np.array_equal(direct.get(path), original[path])))
json.dump({"files": fileio.files_below(ROOT), "mismatched": mismatched,
           "compared": len(original), "vocab": fileio.read_text(f"{ROOT}/back/vocab.txt"),
           "cwd": sorted(os.listdir(".")), "finetuned_head": finetuned_head}, sys.stdout)
"""


def test_convert_checkpoint_reads_and_writes_ram_paths(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["compared"] > 40 and report["mismatched"] == []
    files = set(report["files"])
    expected = {
        "hf/discriminator/config.json",
        "hf/discriminator/model.safetensors",
        "hf/generator/config.json",
        "hf/generator/model.safetensors",
        "official/checkpoint",
        "official/model.ckpt.index",
        "official/model.ckpt.data-00000-of-00001",
        "official/electra_tf_config.json",
        "back/config.json",
        "back/backbone.weights.h5",
        "back/discriminator.weights.h5",
        "back/generator.weights.h5",
        "official_direct/model.ckpt.index",
        "official_direct/checkpoint",
    }
    assert expected <= files, sorted(expected - files)
    for output in (
        "hf/discriminator",
        "hf/generator",
        "official",
        "back",
        "official_direct",
        "hf_finetuned/discriminator",
    ):
        assert f"{output}/vocab.txt" in files
    assert {"hf_finetuned/discriminator/tokenizer_config.json", "hf_finetuned/discriminator/model.safetensors"} <= files
    assert report["finetuned_head"] == {
        "architectures": ["ElectraForSequenceClassification"],
        "id2label": {"0": "entailment", "1": "not_entailment"},
        "kernel_rows": True,
    }
    assert report["vocab"] == "[PAD]\n[UNK]\nram\n"
    assert not any(".writing-" in name for name in files)
    assert report["cwd"] == [] and not (REPO / "ram:").exists()
