"""electra_tf.experiments.pretraining_dynamics: the exact AUC, the collapse measure, and a
paused run scored at each step and resumed."""

import json

import numpy as np
import pytest

from electra_tf.errors import UserError
from electra_tf.experiments import pretraining_dynamics as dynamics


def test_exact_auc_matches_a_pairwise_count():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=200).astype(float)  # many ties
    labels = (rng.random(200) < 0.3).astype(float)
    pos, neg = scores[labels > 0.5], scores[labels < 0.5]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg)
    )
    assert dynamics.exact_auc(scores, labels) == pytest.approx(pairwise, abs=1e-12)
    assert np.isnan(dynamics.exact_auc(scores, np.zeros(200)))


def test_mean_pairwise_cosine_against_the_full_matrix():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 8)) + 0.5
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    matrix = unit @ unit.T
    expected = (matrix.sum() - np.trace(matrix)) / (50 * 49)
    assert dynamics.mean_pairwise_cosine(vectors) == pytest.approx(expected, abs=1e-12)
    same = np.tile(rng.normal(size=(1, 8)), (10, 1)) * rng.uniform(1, 3, size=(10, 1))
    assert dynamics.mean_pairwise_cosine(same) == pytest.approx(1.0, abs=1e-12)


def test_parse_steps_refuses_bad_lists():
    assert dynamics.parse_steps("10, 25,100", 100) == [10, 25, 100]
    for text in ("25,10", "0,5", "5,200", "5,5", "a,b", ""):
        with pytest.raises(UserError, match="--steps"):
            dynamics.parse_steps(text, 100)


def test_paused_run_is_scored_at_each_step_and_resumes(tmp_path, mechanics_data):
    hparams = json.dumps(
        {
            "hidden_size": 64,
            "embedding_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 1,
            "num_warmup_steps": 2,
            "train_batch_size": 8,
            "learning_rate": 3e-3,
        }
    )
    options = dynamics.DynamicsOptions(
        pretrain_data=str(mechanics_data["train_dir"]),
        eval_data=str(mechanics_data["train_dir"]),
        output_dir=str(tmp_path / "out"),
        config="electra_tiny",
        hparams=hparams,
        num_train_steps=6,
        steps=[3],
        eval_batches=2,
    )
    first = dynamics.run_dynamics(options)
    assert [row["step"] for row in first["points"]] == [3]
    options.steps = [3, 6]
    record = dynamics.run_dynamics(options)  # step 3 is kept, the run resumes to 6
    assert [row["step"] for row in record["points"]] == [3, 6]
    assert record["points"][0] == first["points"][0]
    for row in record["points"]:
        assert 0.0 <= row["disc_auc"] <= 1.0 and 0.0 <= row["mlm_accuracy"] <= 1.0
        assert -1.0 <= row["token_cosine"] <= 1.0 and row["tokens"] > 500
    written = json.loads((tmp_path / "out" / "dynamics.json").read_text())
    assert written == record
    last = record["points"][1]
    assert last["disc_loss"] > 0 and 0 < last["replaced_rate"] < 0.15
    assert (
        f"| 6 | {last['disc_auc']:.3f} | {last['disc_loss']:.3f} ({last['prior_loss']:.3f}) | "
        f"{last['mlm_accuracy']:.3f} |" in (tmp_path / "out" / "dynamics.md").read_text()
    )
    # A record written before the losses were measured still gets its table.
    old = dict(record, points=[{k: v for k, v in last.items() if k not in ("disc_loss", "prior_loss")}])
    assert f"| 6 | {last['disc_auc']:.3f} | - |" in dynamics._table(old)
    assert (tmp_path / "out" / "model" / "checkpoints").is_dir()
    options.seed = 12
    with pytest.raises(UserError, match="other settings \\(seed"):
        dynamics.run_dynamics(options)


TINY = {
    "hidden_size": 64,
    "embedding_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
}


def test_held_out_scores_of_a_masked_lm_model_use_its_encoder_and_have_no_auc(mechanics_data):
    import tensorflow as tf

    from electra_tf import pretraining_dataset
    from electra_tf.config import load_config
    from electra_tf.pretraining_objective import ElectraPretrainer

    files, _ = pretraining_dataset.resolve_pretraining_data(str(mechanics_data["train_dir"]))
    electra = ElectraPretrainer(load_config("electra_tiny", TINY), seed=0)
    electra_scores = dynamics.held_out_scores(electra, files, max_seq_length=128, num_batches=2)
    assert set(electra_scores) == {
        "disc_auc",
        "mlm_accuracy",
        "token_cosine",
        "cls_cosine",
        "tokens",
        "replaced_rate",
        "disc_loss",
        "prior_loss",
    }
    # Untrained, the generator replaces nearly every masked token: about 15% of the non-special ones.
    rate = electra_scores["replaced_rate"]
    assert 0.12 < rate < 0.15
    assert electra_scores["prior_loss"] == pytest.approx(-(rate * np.log(rate) + (1 - rate) * np.log(1 - rate)))
    # The output bias starts at 0, P(replaced) = 0.5 everywhere: a loss near log 2.
    assert electra_scores["disc_loss"] == pytest.approx(np.log(2), abs=0.05)

    masked_lm = ElectraPretrainer(load_config("electra_tiny", dict(TINY, electra_objective=False)), seed=0)
    scores = dynamics.held_out_scores(masked_lm, files, max_seq_length=128, num_batches=2)
    assert set(scores) == {"mlm_accuracy", "token_cosine", "cls_cosine", "tokens"}
    # The states are the generator's (the encoder fine-tuning starts from), on the first batch.
    first = next(iter(pretraining_dataset.make_pretraining_dataset(list(files), 32, 128, is_training=False)))
    hidden = np.asarray(masked_lm.generator.backbone(first, training=False), np.float32)
    real = np.asarray(first["input_mask"]) > 0
    assert scores["token_cosine"] == pytest.approx(dynamics.mean_pairwise_cosine(hidden[real]), abs=1e-5)
    assert scores["cls_cosine"] == pytest.approx(dynamics.mean_pairwise_cosine(hidden[:, 0]), abs=1e-5)
    assert scores["tokens"] == electra_scores["tokens"] > 2 * 32 * 64
    # Untrained: about one masked token in vocab_size is right.
    assert 0.0 <= scores["mlm_accuracy"] < 0.01
    tf.keras.backend.clear_session()

    ablation = ElectraPretrainer(load_config("electra_tiny", dict(TINY, discriminator_task="replace_mlm")), seed=0)
    with pytest.raises(UserError, match="discriminator_task is replace_mlm"):
        dynamics.held_out_scores(ablation, files, max_seq_length=128, num_batches=1)
