"""Long runs as users run them: --continue_training to a raised --num_train_steps, scoring
checkpoints without training (--mode=eval / continuous_eval), --steps_per_execution, and the
throughput scalars."""

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpointing, optimization, pretraining
from electra_tf.errors import UserError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
HPARAMS = {
    "hidden_size": 32,
    "embedding_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "num_warmup_steps": 2,
    "train_batch_size": 4,
    "eval_batch_size": 4,
}


def _scalars(event_dir: pathlib.Path) -> dict:
    """{tag: {step: value}} from every TensorBoard event file in event_dir."""
    values: dict = {}
    for path in sorted(event_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                values.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return values


def _train(model_dir, data, num_train_steps, *, every=5, log_every=2, **options):
    return pretraining.run_pretraining(
        pretraining.PretrainingOptions(
            model_dir=str(model_dir), pretrain_data=str(data), log_every_steps=log_every, seed=4, **options
        ),
        config="electra_tiny",
        hparams=HPARAMS,
        num_train_steps=num_train_steps,
        save_checkpoints_steps=every,
    )


def test_continue_training_raises_num_train_steps_with_the_new_schedule(tmp_path, mechanics_data):
    model_dir = tmp_path / "model"
    data = mechanics_data["train_dir"]
    first = _train(model_dir, data, 10)
    assert first.final_step == 10 and (model_dir / "pretrained" / "config.json").is_file()
    backbone_at_10 = (model_dir / "pretrained" / "backbone.weights.h5").read_bytes()
    config_before = (model_dir / "config.json").read_text()

    with pytest.raises(UserError, match=r"num_train_steps: 10 -> 16.*--continue_training"):
        _train(model_dir, data, 16)
    assert (model_dir / "config.json").read_text() == config_before

    continued = _train(model_dir, data, 16, continue_training=True)
    assert (continued.start_step, continued.final_step) == (10, 16)
    assert int(continued.model.optimizer.iterations.numpy()) == 16
    assert checkpointing.latest_checkpoint_step(str(model_dir)) == 16

    recorded = json.loads((model_dir / "config.json").read_text())
    assert recorded["num_train_steps"] == 16
    [entry] = recorded["history"]
    assert (entry["step"], entry["old_num_train_steps"], entry["new_num_train_steps"]) == (10, 10, 16)
    assert entry["time"]
    config = checkpointing.load_run_config(str(model_dir))
    assert config.num_train_steps == 16

    # The old final model is kept beside the new one.
    assert (model_dir / "pretrained.step_10" / "backbone.weights.h5").read_bytes() == backbone_at_10
    assert (model_dir / "pretrained" / "backbone.weights.h5").read_bytes() != backbone_at_10

    # After the continue, the learning rate is the 16-step schedule's.
    scalars = _scalars(model_dir / "train")
    reference = optimization.create_optimizer(config, 16)
    for step in (12, 14, 16):
        reference.iterations.assign(step)
        assert scalars["learning_rate"][step] == pytest.approx(
            float(np.asarray(reference.learning_rate)), rel=1e-5, abs=1e-9
        ), step
    # Throughput and step time are TensorBoard scalars too, beside the metrics.
    for tag in ("sequences_per_second", "tokens_per_second", "step_time_seconds"):
        assert set(scalars[tag]) >= {2, 4, 12, 16}, tag
        assert all(value > 0 for value in scalars[tag].values()), tag
    steps_per_second = 1 / scalars["step_time_seconds"][16]
    assert scalars["sequences_per_second"][16] == pytest.approx(4 * steps_per_second, rel=0.2)
    assert scalars["tokens_per_second"][16] == pytest.approx(128 * scalars["sequences_per_second"][16], rel=1e-5)

    # --mode=eval of a named checkpoint, no training: eval_results.json and eval scalars at it.
    scored = pretraining.run_pretraining(
        pretraining.PretrainingOptions(
            model_dir=str(model_dir),
            pretrain_data=None,
            eval_data=str(data),
            eval_steps=2,
            mode="eval",
            checkpoint_step=15,
        ),
        config="unused",
    )
    assert scored.final_step == 15 and checkpointing.latest_checkpoint_step(str(model_dir)) == 16
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["step"] == 15 and results["loss"] == pytest.approx(scored.eval_metrics["loss"])
    eval_scalars = _scalars(model_dir / "eval")
    assert eval_scalars["loss"] == {15: pytest.approx(results["loss"])}
    assert set(eval_scalars["disc_auc"]) == {15}

    # Now recorded at 16: the same command does nothing; going below the trained step is refused.
    again = _train(model_dir, data, 16)
    assert again.start_step == again.final_step == 16
    with pytest.raises(UserError, match="below step 16"):
        _train(model_dir, data, 12, continue_training=True)
    with pytest.raises(UserError, match="--continue_training may change only"):
        pretraining.run_pretraining(
            pretraining.PretrainingOptions(
                model_dir=str(model_dir), pretrain_data=str(data), seed=4, continue_training=True
            ),
            config="electra_tiny",
            hparams=dict(HPARAMS, learning_rate=0.5),
            num_train_steps=20,
            save_checkpoints_steps=5,
        )


def test_steps_per_execution_keeps_checkpoint_steps_and_results(tmp_path, mechanics_data):
    data = mechanics_data["train_dir"]
    results = {}
    for per_call in (1, 2):
        model_dir = tmp_path / f"spe{per_call}"
        result = _train(model_dir, data, 8, every=4, log_every=4, steps_per_execution=per_call)
        assert result.final_step == 8
        results[per_call] = (result, pretraining._checkpoint_steps(str(model_dir)), _scalars(model_dir / "train"))
    (one, one_steps, one_scalars), (two, two_steps, two_scalars) = results[1], results[2]
    assert one_steps == two_steps == [4, 8]
    assert set(one_scalars["loss"]) == set(two_scalars["loss"]) == {4, 8}
    assert two.train_metrics["loss"] == pytest.approx(one.train_metrics["loss"], rel=1e-5)
    assert len(one.model.weights) == len(two.model.weights) > 0
    for a, b in zip(one.model.weights, two.model.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=a.path)

    with pytest.raises(
        UserError,
        match=r"--save_checkpoints_steps=3 is not a multiple of "
        r"--steps_per_execution=2",
    ):
        _train(tmp_path / "bad", data, 6, every=3, log_every=2, steps_per_execution=2)
    with pytest.raises(UserError, match=r"--log_every_steps=3"):
        _train(tmp_path / "bad", data, 8, every=4, log_every=3, steps_per_execution=2)
    assert not (tmp_path / "bad" / "config.json").exists()


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _wait_for_eval_of(model_dir, step, watcher, timeout=180):
    path = model_dir / "eval_results.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and watcher.poll() is None:
        if path.is_file() and json.loads(path.read_text()).get("step") == step:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"continuous_eval did not score step {step}:\n"
        + (watcher.communicate(timeout=30)[0] if watcher.poll() is not None else "")
    )


def test_continuous_eval_scores_each_checkpoint_then_eval_scores_a_named_one(tmp_path, mechanics_data):
    model_dir = tmp_path / "model"
    data = mechanics_data["train_dir"]
    # The watcher starts before any checkpoint exists, as on a second machine.
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "electra_tf.run_pretraining",
            "--mode=continuous_eval",
            f"--model_dir={model_dir}",
            f"--eval_data={data}",
            "--eval_steps=2",
            "--eval_poll_seconds=0.2",
            "--eval_timeout_seconds=240",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    try:
        for stop in (4, 8, None):  # pause after each checkpoint until the watcher has scored it
            result = _train(model_dir, data, 12, every=100, log_every=100, stop_at_step=stop)
            _wait_for_eval_of(model_dir, result.final_step, watcher)
        output = watcher.communicate(timeout=120)[0]
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, output[-4000:]
    assert "Scored the checkpoint of the final step 12; stopping" in output, output[-4000:]
    scalars = _scalars(model_dir / "eval")
    for tag in ("loss", "disc_auc", "masked_lm_accuracy"):
        assert set(scalars[tag]) == {4, 8, 12}, (tag, scalars.get(tag))
    assert scalars["loss"][12] != scalars["loss"][4]  # each checkpoint's own weights
    assert json.loads((model_dir / "eval_results.json").read_text())["step"] == 12

    # --mode=eval of an older checkpoint: the same masks, so the same scores as the watcher's;
    # the newest results in eval_results.json are not replaced.
    scored = pretraining.run_pretraining(
        pretraining.PretrainingOptions(
            model_dir=str(model_dir),
            pretrain_data=None,
            eval_data=str(data),
            eval_steps=2,
            mode="eval",
            checkpoint_step=4,
        ),
        config="unused",
    )
    assert scored.final_step == 4
    assert scored.eval_metrics["loss"] == pytest.approx(scalars["loss"][4], rel=1e-5)
    older = json.loads((model_dir / "eval_results.step_4.json").read_text())
    assert older["step"] == 4 and older["loss"] == pytest.approx(scored.eval_metrics["loss"])
    assert json.loads((model_dir / "eval_results.json").read_text())["step"] == 12

    with pytest.raises(UserError, match=r"--checkpoint_step=5: .* steps 4, 8, 12"):
        pretraining.run_pretraining(
            pretraining.PretrainingOptions(
                model_dir=str(model_dir), pretrain_data=None, eval_data=str(data), mode="eval", checkpoint_step=5
            ),
            config="unused",
        )
    with pytest.raises(UserError, match="--eval_data is required"):
        pretraining.run_pretraining(
            pretraining.PretrainingOptions(model_dir=str(model_dir), pretrain_data=None, mode="eval"), config="unused"
        )


def test_the_tpu_default_steps_per_execution_divides_every_interval():
    import tensorflow as tf

    assert pretraining.default_tpu_steps_per_execution(1000, 100, 1_000_000, 1_000_000, 0) == 100
    assert pretraining.default_tpu_steps_per_execution(250, 100, 10_000, 10_000, 5000) == 50
    assert pretraining.default_tpu_steps_per_execution(70, 35, 700, 700, 0) == 35
    assert pretraining.default_tpu_steps_per_execution(7, 100, 700, 700, 0) == 1
    off_tpu = pretraining.resolve_steps_per_execution(
        None,
        tf.distribute.get_strategy(),
        save_checkpoints_steps=1000,
        log_every_steps=100,
        final_step=10_000,
        stop_step=10_000,
        start_step=0,
        mixed_precision="none",
    )
    assert off_tpu == 1
    with pytest.raises(UserError, match="--mixed_precision=fp16"):
        pretraining.resolve_steps_per_execution(
            4,
            tf.distribute.get_strategy(),
            save_checkpoints_steps=8,
            log_every_steps=4,
            final_step=16,
            stop_step=16,
            start_step=0,
            mixed_precision="fp16",
        )
    with pytest.raises(UserError, match="newest checkpoint is at step 6"):
        pretraining.resolve_steps_per_execution(
            4,
            tf.distribute.get_strategy(),
            save_checkpoints_steps=8,
            log_every_steps=4,
            final_step=16,
            stop_step=16,
            start_step=6,
            mixed_precision="none",
        )
