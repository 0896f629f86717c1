"""AdamW: the reference schedule per step, weight-decay exclusions, global-norm clipping."""

import re

import keras
import numpy as np
import pytest

from electra_tf.config import load_config
from electra_tf.optimization import ElectraAdamW, WarmupPolynomialDecay, create_optimizer
from electra_tf.pretraining_objective import ElectraPretrainer


def _reference_rate(step, peak, total, warmup, power):
    decayed = peak * (1 - min(step, total) / total) ** power
    return decayed * min(1.0, step / warmup) if warmup else decayed


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_schedule_values_match_the_reference_formula(power):
    schedule = WarmupPolynomialDecay(5e-4, num_train_steps=1_000_000, num_warmup_steps=10_000, power=power)
    for step in (0, 1, 5_000, 9_999, 10_000, 10_001, 500_000, 999_999, 1_000_000, 1_200_000):
        expected = _reference_rate(step, 5e-4, 1_000_000, 10_000, power)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5, abs=1e-12), step
    # Warm-up multiplies the decayed rate: at the end of warm-up it is just below the peak.
    assert float(schedule(10_000)) == pytest.approx(5e-4 * 0.99**power, rel=1e-5)
    no_warmup = WarmupPolynomialDecay(1e-3, num_train_steps=100)
    assert float(no_warmup(0)) == pytest.approx(1e-3)
    assert float(no_warmup(50)) == pytest.approx(5e-4)


def test_schedule_and_optimizer_serialise():
    config = load_config("electra_small")
    optimizer = create_optimizer(config, 1000)
    schedule = optimizer._learning_rate
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, WarmupPolynomialDecay)
    assert (
        restored.get_config()
        == schedule.get_config()
        == {"learning_rate": 5e-4, "num_train_steps": 1000, "num_warmup_steps": 10000, "power": 1.0}
    )
    clone = ElectraAdamW.from_config(optimizer.get_config())
    assert float(clone.learning_rate) == float(optimizer.learning_rate) == 0.0  # step 0
    assert (
        optimizer.beta_1,
        optimizer.beta_2,
        optimizer.epsilon,
        optimizer.weight_decay_rate,
        optimizer.global_clipnorm,
    ) == (0.9, 0.999, 1e-6, 0.01, 1.0)


def test_weight_decay_skips_layer_norm_and_biases():
    # With zero gradients Adam's step is zero, so only weight decay moves a variable.
    config = load_config("electra_tiny", {"vocab_size": 300, "num_warmup_steps": 0, "learning_rate": 0.1})
    model = ElectraPretrainer(config, seed=0)
    for variable in model.trainable_variables:
        variable.assign(np.ones(variable.shape, np.float32))
    optimizer = create_optimizer(config, 1000)
    variables = model.trainable_variables
    optimizer.apply_gradients([(np.zeros(v.shape, np.float32), v) for v in variables])
    decayed, kept = [], []
    for variable in variables:
        value = np.asarray(variable)
        if np.allclose(value, 1.0):
            kept.append(variable.path)
        else:
            np.testing.assert_allclose(value, 1.0 - 0.1 * 0.01, rtol=1e-6)
            decayed.append(variable.path)
    assert kept and decayed
    for path in kept:
        assert path.endswith(("bias", "gamma", "beta")), path
    for path in decayed:
        assert not path.endswith(("bias", "gamma", "beta")) and "LayerNorm" not in path, path
    assert "electra/embeddings/word_embeddings" in decayed
    assert "generator_predictions/output_bias" in kept
    assert "electra/embeddings/LayerNorm/gamma" in kept


def test_gradients_are_clipped_to_global_norm_one():
    config = load_config("electra_tiny", {"num_warmup_steps": 0, "weight_decay_rate": 0.0})
    optimizer = create_optimizer(config, 100)
    first = keras.Variable(np.zeros(3, np.float32))
    second = keras.Variable(np.zeros(4, np.float32))
    gradients = [np.array([3.0, 0.0, 4.0], np.float32), np.array([0, 0, 0, 5.0], np.float32)]
    norm = np.sqrt(sum((g**2).sum() for g in gradients))  # 7.07
    optimizer.apply_gradients(zip(gradients, [first, second]))
    # After one step Adam's first moment is (1 - beta1) * the (clipped) gradient.
    for variable, gradient in zip([first, second], gradients):
        momentum = np.asarray(optimizer._momentums[optimizer._get_variable_index(variable)])
        np.testing.assert_allclose(momentum, 0.1 * gradient / norm, rtol=1e-5)
    small = [np.array([0.3, 0.0, 0.4], np.float32), np.zeros(4, np.float32)]
    unclipped = create_optimizer(config, 100)
    a, b = keras.Variable(np.zeros(3, np.float32)), keras.Variable(np.zeros(4, np.float32))
    unclipped.apply_gradients(zip(small, [a, b]))
    np.testing.assert_allclose(
        np.asarray(unclipped._momentums[unclipped._get_variable_index(a)]), 0.1 * small[0], rtol=1e-5
    )


def _tiny_optimizer(**overrides):
    config = load_config("electra_tiny", dict({"num_warmup_steps": 0, "learning_rate": 0.1}, **overrides))
    return create_optimizer(config, 100)


def test_gathered_gradient_with_duplicate_rows_gives_the_dense_adam_update():
    import tensorflow as tf

    # Rows 1 and 3 are looked up twice and once, as a word embedding is within a batch.
    values = np.array([[1.0, -2.0], [3.0, 0.5], [-0.25, 4.0]], np.float32)
    indices = np.array([1, 1, 3], np.int32)
    dense = np.zeros((5, 2), np.float32)
    np.add.at(dense, indices, values)

    def step(optimizer, gradient):
        variable = keras.Variable(np.full((5, 2), 0.5, np.float32), name="word_embeddings")
        optimizer.apply_gradients([(gradient, variable)])
        index = optimizer._get_variable_index(variable)
        return [np.asarray(v) for v in (variable, optimizer._momentums[index], optimizer._velocities[index])]

    sparse = tf.IndexedSlices(tf.constant(values), tf.constant(indices), tf.constant([5, 2]))
    for clip_norm in (0.0, 1.0):  # 1.0 clips: the norm of the summed gradient is 6.5
        from_sparse = step(_tiny_optimizer(clip_norm=clip_norm), sparse)
        from_dense = step(_tiny_optimizer(clip_norm=clip_norm), tf.constant(dense))
        for got, expected in zip(from_sparse, from_dense):
            np.testing.assert_array_equal(got, expected)
    velocity = from_dense[2]
    np.testing.assert_allclose(velocity, 0.001 * (dense / np.linalg.norm(dense)) ** 2, rtol=1e-6)
    # Plain Keras AdamW squares the slices before summing them: row 1 gets 1 + 9, not 4^2.
    plain = keras.optimizers.AdamW(learning_rate=0.1)
    plain_velocity = step(plain, sparse)[2]
    np.testing.assert_allclose(plain_velocity[1], 0.001 * np.array([1 + 9, 4 + 0.25]), rtol=1e-6)


def test_electra_adamw_serialises_and_keeps_keras_adamw_variable_names():
    optimizer = _tiny_optimizer()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert type(restored).__name__ == "ElectraAdamW"
    assert restored.get_config() == optimizer.get_config()
    # Checkpoints written with keras.optimizers.AdamW (before the reference update) still load.
    plain = keras.optimizers.AdamW(learning_rate=WarmupPolynomialDecay(0.1, 100), name=optimizer.name)
    variables = [
        keras.Variable(np.zeros((2, 3), np.float32), name="kernel"),
        keras.Variable(np.zeros(3, np.float32), name="bias"),
    ]
    optimizer.build(variables)
    plain.build(variables)
    assert [v.path for v in optimizer.variables] == [v.path for v in plain.variables]
    # The name keras.optimizers.AdamW gets (adam_w, adam_w_1, ...), so paths are unchanged.
    assert optimizer.name.startswith("adam_w")
    assert f"{optimizer.name}/kernel_momentum" in [v.path for v in optimizer.variables]


def _reference_adamw_steps(params, names, gradient_steps, rates, *, weight_decay_rate):
    """NumPy transcription of the reference (google-research/electra model/optimization.py):
    tf.clip_by_global_norm(grads, 1.0), then AdamWeightDecayOptimizer._apply_gradients with
    exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"], in float64."""
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for grads, lr in zip(gradient_steps, rates):
        norm = np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in grads))
        grads = [g * 1.0 / max(norm, 1.0) for g in grads]
        for i, (g, name) in enumerate(zip(grads, names)):
            m[i] = 0.9 * m[i] + (1.0 - 0.9) * g
            v[i] = 0.999 * v[i] + (1.0 - 0.999) * np.square(g)
            update = m[i] / (np.sqrt(v[i]) + 1e-6)
            if not any(re.search(r, name) for r in ["LayerNorm", "layer_norm", "bias"]):
                update += weight_decay_rate * params[i]
            params[i] = params[i] - lr * update
    return params


def test_pretraining_optimizer_is_the_reference_update_step_by_step():
    """Six steps of create_optimizer on the tiny preset's real variables (generator and
    discriminator, word-embedding gradient as IndexedSlices with repeated rows) against the
    reference's update transcribed in NumPy: clipping active (norms 3-40), weight decay on, no
    bias correction, warm-up then decay."""
    import tensorflow as tf

    config = load_config("electra_tiny", {"learning_rate": 0.02, "num_warmup_steps": 3, "weight_decay_rate": 0.05})
    model = ElectraPretrainer(config, seed=0)
    variables = model.trainable_variables
    names = [v.path for v in variables]
    assert "generator_predictions/output_bias" in names
    assert sum("LayerNorm" in n for n in names) >= 8 and sum(n.endswith("bias") for n in names)
    start = [np.asarray(v).copy() for v in variables]
    total_steps, rng = 10, np.random.default_rng(3)
    embedding_index = names.index("electra/embeddings/word_embeddings")
    sparse_steps, dense_steps = [], []
    for step in range(6):
        scale = [0.5, 3.0, 10.0, 0.1, 1.0, 4.0][step]
        dense = [rng.normal(scale=scale * 0.05, size=v.shape).astype(np.float32) for v in variables]
        rows = rng.integers(0, config.vocab_size, size=200).astype(np.int32)
        rows[:50] = rows[0]  # one token looked up 50 times, like [CLS] in a batch
        values = rng.normal(scale=scale, size=(200, config.embedding_size)).astype(np.float32)
        summed = np.zeros(variables[embedding_index].shape, np.float32)
        np.add.at(summed, rows, values)
        dense[embedding_index] = summed
        sparse = list(dense)
        sparse[embedding_index] = tf.IndexedSlices(
            tf.constant(values), tf.constant(rows), tf.constant(variables[embedding_index].shape, tf.int64)
        )
        sparse_steps.append(sparse)
        dense_steps.append(dense)
    norms = [np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in d)) for d in dense_steps]
    assert min(norms) > 1.0  # clipping is active in every step
    rates = [0.02 * (1 - t / total_steps) * min(1.0, t / 3) for t in range(6)]
    assert rates[0] == 0.0 and rates[3] > rates[4]

    optimizer = create_optimizer(config, total_steps)
    for gradients in sparse_steps:
        optimizer.apply(gradients, variables)
    expected = _reference_adamw_steps(start, names, dense_steps, rates, weight_decay_rate=0.05)
    moved = 0
    for variable, want, before in zip(variables, expected, start):
        got = np.asarray(variable)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=variable.path)
        moved += np.abs(got - before).max() > 1e-3
    assert moved == len(variables)
    assert int(optimizer.iterations) == 6
