"""The final model survives a kill during its save, and one --model_dir serves one live run."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from electra_tf import modeling, pretraining, run_lock
from electra_tf.errors import UserError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
HPARAMS = {
    "hidden_size": 32,
    "embedding_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "num_warmup_steps": 1,
    "train_batch_size": 4,
}

# run_pretraining whose save_pretrained finishes writing the weights (into the temporary folder)
# and then the process is SIGKILLed, before the folder is moved into place.
KILLED_DURING_SAVE = r"""
import os, signal, sys
from electra_tf import artifacts
original = artifacts.save_pretrained
def save_then_die(model, directory, overwrite=False):
    original(model, directory, overwrite)
    sys.stdout.write("KILLED_IN_SAVE %s\n" % directory)
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
artifacts.save_pretrained = save_then_die
from electra_tf import cli, run_pretraining
sys.argv = ["run_pretraining.py"] + sys.argv[1:]
cli.run(run_pretraining.main)
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _options(model_dir, data):
    return pretraining.PretrainingOptions(model_dir=str(model_dir), pretrain_data=str(data), log_every_steps=1)


def _run(model_dir, data):
    return pretraining.run_pretraining(
        _options(model_dir, data), config="electra_tiny", hparams=HPARAMS, num_train_steps=2, save_checkpoints_steps=2
    )


def test_a_kill_during_the_final_save_is_repaired_by_the_rerun(tmp_path, mechanics_data):
    model_dir = tmp_path / "run"
    data = mechanics_data["train_dir"]
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_DURING_SAVE,
            "--config=electra_tiny",
            f"--hparams={json.dumps(HPARAMS)}",
            f"--pretrain_data={data}",
            f"--model_dir={model_dir}",
            "--num_train_steps=2",
            "--save_checkpoints_steps=2",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert completed.returncode == -9, completed.stderr[-2000:]
    assert "KILLED_IN_SAVE" in completed.stdout
    # Killed with the weights written: pretrained/ is not there, only its temporary folder and
    # the dead run's lock.
    assert not (model_dir / "pretrained").exists()
    assert any(name.startswith(".pretrained.writing-") for name in os.listdir(model_dir))
    assert (model_dir / run_lock.LOCK_FILE).exists()

    result = _run(model_dir, data)  # the dead run's lock is stale: taken over
    assert result.start_step == 2 and result.pretrained_dir == str(model_dir / "pretrained")
    assert sorted(os.listdir(model_dir / "pretrained")) == [
        "backbone.weights.h5",
        "config.json",
        "discriminator.weights.h5",
        "generator.weights.h5",
        "vocab.txt",
    ]
    assert not any(".writing-" in name for name in os.listdir(model_dir))
    assert not (model_dir / run_lock.LOCK_FILE).exists()
    config, _ = modeling.load_pretrained_backbone(model_dir / "pretrained")
    assert config.hidden_size == 32

    # An incomplete pretrained/ (a weight file missing) is written again too; a complete one is
    # left alone ("nothing to do").
    (model_dir / "pretrained" / "generator.weights.h5").unlink()
    _run(model_dir, data)
    assert (model_dir / "pretrained" / "generator.weights.h5").exists()
    before = (model_dir / "pretrained" / "config.json").stat().st_mtime_ns
    again = _run(model_dir, data)
    assert again.model is None
    assert (model_dir / "pretrained" / "config.json").stat().st_mtime_ns == before


def test_a_second_run_on_a_model_dir_in_use_is_refused(tmp_path, mechanics_data):
    model_dir = tmp_path / "busy"
    holder = run_lock.RunLock(str(model_dir))  # this live process holds it
    holder.acquire()
    try:
        with pytest.raises(
            UserError,
            match=r"is in use by a running run_pretraining \(pid "
            f"{os.getpid()} .*use another --model_dir",
        ):
            _run(model_dir, mechanics_data["train_dir"])
        assert not (model_dir / "checkpoints").exists()
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "electra_tf.run_pretraining",
                "--config=electra_tiny",
                f"--pretrain_data={mechanics_data['train_dir']}",
                f"--model_dir={model_dir}",
            ],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert completed.returncode == 2
        errors = [line for line in completed.stderr.splitlines() if ": error: " in line]
        assert len(errors) == 1 and "is in use by a running run_pretraining" in errors[0]
        assert "Traceback" not in completed.stderr
    finally:
        holder.release()
    assert not (model_dir / run_lock.LOCK_FILE).exists()
