"""PretrainingOptions.stop_at_step: a run pauses part-way with the full run's learning-rate
schedule, and continues from there to the same end as an uninterrupted run would."""

import numpy as np
import pytest

from electra_tf import config as config_lib
from electra_tf import optimization, pretraining
from electra_tf.errors import UserError

HPARAMS = {
    "hidden_size": 32,
    "embedding_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "num_warmup_steps": 2,
    "train_batch_size": 4,
}


def test_stop_at_step_pauses_with_the_full_schedule_then_finishes(tmp_path, mechanics_data):
    model_dir = tmp_path / "model"

    def run(stop_at_step):
        options = pretraining.PretrainingOptions(
            model_dir=str(model_dir),
            pretrain_data=str(mechanics_data["train_dir"]),
            log_every_steps=100,
            stop_at_step=stop_at_step,
        )
        return pretraining.run_pretraining(
            options, config="electra_tiny", hparams=HPARAMS, num_train_steps=10, save_checkpoints_steps=100
        )

    paused = run(4)
    assert paused.final_step == 4 and paused.pretrained_dir is None
    assert not (model_dir / "pretrained").exists()
    assert (model_dir / "checkpoints" / "ckpt-4.index").is_file()
    # The schedule is the 10-step run's: at step 4 a 4-step schedule would already be at 0.
    config = config_lib.ElectraConfig.from_json_file(model_dir / "config.json")
    assert config.num_train_steps == 10
    reference = optimization.create_optimizer(config, 10)
    reference.iterations.assign(4)
    expected = float(np.asarray(reference.learning_rate))
    assert expected > 0
    actual = float(np.asarray(paused.model.optimizer.learning_rate))
    assert actual == pytest.approx(expected, rel=1e-6)

    again = run(4)  # nothing left to do up to step 4
    assert again.final_step == 4 and again.model is None

    finished = run(None)
    assert finished.start_step == 4 and finished.final_step == 10
    assert (model_dir / "pretrained" / "backbone.weights.h5").is_file()
    assert int(finished.model.optimizer.iterations.numpy()) == 10

    with pytest.raises(UserError, match="--stop_at_step=11"):
        run(11)
