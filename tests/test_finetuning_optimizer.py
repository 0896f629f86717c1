"""Layer-wise learning rates: each variable's effective rate equals the reference formula."""

import re

import keras
import numpy as np
import pytest

from electra_tf import config as config_lib
from electra_tf import finetuning_models, layerwise_optimizer, modeling, optimization

LAYERS = 3
DECAY = 0.5
LR = 0.01


def _expected_multiplier(path: str, formula: str = "paper") -> float:
    """Written from the formulas. Paper: task lr, layer i (1-based of n) lr*d^(n-i+1),
    embeddings lr*d^(n+1). Reference (_get_layer_lrs: depth 0 embeddings, i for layer i,
    n+2 the head; lr*d^(n+2-depth)): layer i lr*d^(n+2-i), embeddings lr*d^(n+2)."""
    if path.startswith("task_specific/"):
        return 1.0
    depth = 0 if "/embeddings" in path else int(re.search(r"/layer_(\d+)/", path).group(1)) + 1
    return DECAY ** (LAYERS + (2 if formula == "reference" else 1) - depth)


@pytest.fixture(scope="module")
def model():
    config = config_lib.load_config(
        "electra_tiny", {"num_hidden_layers": LAYERS, "embedding_size": 64, "vocab_size": 200}
    )
    return finetuning_models.FinetuningModel(modeling.ElectraBackbone(config), "classification", num_labels=3)


@pytest.mark.parametrize("formula", ["reference", "paper"])
def test_multipliers_follow_the_reference_or_the_paper_formula(model, formula):
    multipliers = layerwise_optimizer.layerwise_learning_rate_multipliers(model.backbone, DECAY, formula)
    paths = [v.path for v in model.trainable_variables]
    assert any("embeddings_project" in p for p in paths)
    for path in paths:
        assert multipliers.get(path, 1.0) == pytest.approx(_expected_multiplier(path, formula)), path
    top = [p for p in paths if f"/layer_{LAYERS - 1}/" in p]
    expected_top = DECAY**2 if formula == "reference" else DECAY
    assert top and all(multipliers[p] == pytest.approx(expected_top) for p in top)
    # The default is the reference's, with which its published numbers were made.
    assert layerwise_optimizer.layerwise_learning_rate_multipliers(
        model.backbone, DECAY
    ) == layerwise_optimizer.layerwise_learning_rate_multipliers(model.backbone, DECAY, "reference")


def test_effective_learning_rate_of_every_variable(model):
    multipliers = layerwise_optimizer.layerwise_learning_rate_multipliers(model.backbone, DECAY, "reference")
    optimizer = optimization.ElectraAdamW(
        learning_rate=LR, learning_rate_multipliers=multipliers, weight_decay_rate=0.0
    )
    variables = model.trainable_variables
    rng = np.random.default_rng(0)
    gradients = [rng.normal(size=v.shape).astype("float32") for v in variables]
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in gradients], variables))
    for variable, gradient, old in zip(variables, gradients, before):
        step = old - keras.ops.convert_to_numpy(variable)
        # First reference AdamW step: m = 0.1 g, v = 0.001 g^2, update = m / (sqrt(v) + eps).
        direction = 0.1 * gradient / (np.sqrt(0.001 * gradient**2) + 1e-6)
        mask = np.abs(direction) > 1e-3
        effective = step[mask] / direction[mask]
        np.testing.assert_allclose(
            effective, LR * _expected_multiplier(variable.path, "reference"), rtol=2e-3, err_msg=variable.path
        )


def test_weight_decay_scales_with_the_layer_rate_and_skips_norms_and_biases(model):
    multipliers = layerwise_optimizer.layerwise_learning_rate_multipliers(model.backbone, DECAY, "reference")
    optimizer = optimization.ElectraAdamW(
        learning_rate=LR, learning_rate_multipliers=multipliers, weight_decay_rate=0.1
    )
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    optimizer.apply_gradients([(keras.ops.zeros(v.shape), v) for v in variables])
    for variable, old in zip(variables, before):
        step = old - keras.ops.convert_to_numpy(variable)
        excluded = any(p in variable.path for p in ("bias", "gamma", "beta", "LayerNorm"))
        expected = 0.0 if excluded else LR * _expected_multiplier(variable.path, "reference") * 0.1
        np.testing.assert_allclose(
            step,
            expected * old,
            rtol=1e-3,
            atol=5e-9,  # float32 ulp
            err_msg=variable.path,
        )


def test_schedule_warms_up_over_ten_percent_then_decays(model):
    optimizer = layerwise_optimizer.create_finetuning_optimizer(
        model.backbone, learning_rate=1e-3, layerwise_decay=0.8, num_train_steps=100
    )
    schedule = optimizer._learning_rate
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    np.testing.assert_allclose(values, [0.0, 1e-3 * 0.95 * 0.5, 1e-3 * 0.9, 1e-3 * 0.45, 0.0], rtol=1e-5)
    assert optimizer.global_clipnorm == 1.0


def test_repeated_token_gradients_are_summed_before_adam_squares_them(model):
    """A token used twice gets one gradient row (the sum), as Adam on the batch gradient; the
    IndexedSlices TensorFlow produces would otherwise be squared row by row."""
    import tensorflow as tf

    features = {
        "input_ids": np.array([[101, 7, 7, 7, 102]], np.int32),
        "input_mask": np.ones((1, 5), np.int32),
        "segment_ids": np.zeros((1, 5), np.int32),
    }
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = model.task_loss({"label": np.array([2])}, model(features, training=False))
    gradients = tape.gradient(loss, variables)
    assert isinstance(gradients[0], tf.IndexedSlices)  # the word embeddings
    dense = tf.convert_to_tensor(gradients[0]).numpy()
    optimizer = optimization.ElectraAdamW(learning_rate=0.0)
    optimizer.apply_gradients(zip(gradients, variables))
    np.testing.assert_allclose(np.asarray(optimizer._velocities[0]), 0.001 * dense**2, rtol=1e-5, atol=1e-20)
