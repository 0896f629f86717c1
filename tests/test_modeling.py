"""The networks: shared/tied weights, sizes, the BERT layer math, masking of padding."""

import dataclasses
import math

import keras
import numpy as np
import pytest

from electra_tf.config import load_config
from electra_tf.errors import UserError
from electra_tf.modeling import (
    ElectraBackbone,
    ElectraDropout,
    TransformerLayer,
    attention_bias_from_mask,
    build_discriminator,
    build_generator,
    gelu_erf,
    variable_paths,
)
from electra_tf.pretraining_objective import ElectraPretrainer


def _expected_encoder_params(hidden, intermediate, layers):
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden
    feed_forward = hidden * intermediate + intermediate + intermediate * hidden + hidden
    return layers * (attention + feed_forward + 2 * hidden)


def test_small_sizes_and_parameter_counts():
    config = load_config("electra_small")
    model = ElectraPretrainer(config, seed=0)
    V, E, H = 30522, 128, 256
    embeddings = (V + 512 + 2) * E + 2 * E
    discriminator = embeddings + E * H + H + _expected_encoder_params(H, 1024, 12) + H * H + H + H + 1
    assert model.discriminator.count_params() == discriminator
    # The paper's table says 14M for ELECTRA-Small.
    assert 13.0e6 < discriminator < 14.5e6
    generator_own = E * 64 + 64 + _expected_encoder_params(64, 256, 12) + 64 * E + E + 2 * E + V
    assert model.generator.count_params() == embeddings + generator_own
    # Shared variables are counted once in the pretrainer.
    assert model.count_params() == discriminator + generator_own

    layer = model.discriminator.backbone.encoder_layers[0]
    assert (layer.num_attention_heads, layer.head_size) == (4, 64)
    assert tuple(layer.intermediate.kernel.shape) == (256, 1024)
    generator_layer = model.generator.backbone.encoder_layers[0]
    assert (generator_layer.num_attention_heads, generator_layer.head_size) == (1, 64)
    assert len(model.generator.backbone.encoder_layers) == 12
    assert layer.attention_layer_norm.epsilon == 1e-12


def test_embeddings_are_one_set_of_variables_and_the_output_layer_is_tied():
    config = load_config("electra_tiny")
    model = ElectraPretrainer(config, seed=0)
    shared = model.embeddings
    assert model.generator.backbone.embeddings is shared
    assert model.discriminator.backbone.embeddings is shared
    assert model.generator.lm_head.embeddings.word_embeddings is shared.word_embeddings
    # No second [V, E] matrix exists anywhere: only the output bias is the head's own.
    vocab_sized = [v for v in model.weights if v.shape[0] == config.vocab_size]
    assert sorted(v.path for v in vocab_sized) == [
        "electra/embeddings/word_embeddings",
        "generator_predictions/output_bias",
    ]
    paths = [v.path for v in model.weights]
    assert len(paths) == len(set(paths))
    # Generator and discriminator each have their own E -> H projection only where E != H.
    assert model.generator.backbone.embeddings_project is not None  # 128 -> 32
    assert model.discriminator.backbone.embeddings_project is None  # 128 == 128


def test_variable_paths_mirror_the_reference_scopes():
    paths = variable_paths(ElectraPretrainer(load_config("electra_small"), seed=0))
    for expected, shape in {
        "electra/embeddings/word_embeddings": (30522, 128),
        "electra/embeddings/position_embeddings": (512, 128),
        "electra/embeddings/token_type_embeddings": (2, 128),
        "electra/embeddings/LayerNorm/gamma": (128,),
        "electra/embeddings_project/kernel": (128, 256),
        "electra/layer_11/query/kernel": (256, 256),
        "electra/layer_0/attention_LayerNorm/beta": (256,),
        "electra/layer_0/intermediate/kernel": (256, 1024),
        "electra/layer_0/output/kernel": (1024, 256),
        "generator/embeddings_project/kernel": (128, 64),
        "generator/layer_11/output_LayerNorm/gamma": (64,),
        "generator_predictions/dense/kernel": (64, 128),
        "generator_predictions/LayerNorm/beta": (128,),
        "generator_predictions/output_bias": (30522,),
        "discriminator_predictions/dense/kernel": (256, 256),
        "discriminator_predictions/dense_1/kernel": (256, 1),
    }.items():
        assert paths[expected] == shape, expected


def test_gelu_is_the_exact_erf_form():
    x = np.linspace(-4, 4, 33).astype(np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(np.asarray(gelu_erf(x)), exact, atol=1e-6)
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert np.abs(exact - tanh_form).max() > 1e-4  # the two forms are distinguishable here


def test_initialisation_is_truncated_normal_0_02():
    backbone = ElectraBackbone(load_config("electra_small"))
    kernel = np.asarray(backbone.encoder_layers[0].intermediate.kernel)
    # A normal truncated at 2 sigma has standard deviation 0.88 sigma.
    assert kernel.std() == pytest.approx(0.02 * 0.8796, rel=0.02)
    assert np.abs(kernel).max() <= 0.04 + 1e-6
    assert not np.any(np.asarray(backbone.encoder_layers[0].intermediate.bias))


def _assert_glorot_uniform(kernel, name):
    fan_in, fan_out = kernel.shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(kernel).max() <= limit + 1e-7, name
    # Uniform on [-limit, limit]: std limit / sqrt(3), most values beyond the 2-sigma truncation
    # (0.04) of the truncated-normal layers.
    assert kernel.std() == pytest.approx(limit / math.sqrt(3.0), rel=0.15), name
    assert np.abs(kernel).max() > 0.9 * limit, name


def test_layers_the_reference_builds_without_an_initializer_start_glorot_uniform():
    """TF1's tf.layers.dense default: discriminator_predictions/dense_1, embeddings_project of
    both networks and the fine-tuning heads (classification, regression, both span heads with
    their answerability layers)."""
    from electra_tf.finetuning_models import FinetuningModel

    config = load_config("electra_small", {"num_hidden_layers": 1})  # E 128, H 256, generator 64
    pretrainer = ElectraPretrainer(config, seed=0)
    kernels = {v.path: np.asarray(v) for v in pretrainer.trainable_variables}
    glorot = [
        "discriminator_predictions/dense_1/kernel",
        "electra/embeddings_project/kernel",
        "generator/embeddings_project/kernel",
    ]
    for path in glorot:
        _assert_glorot_uniform(kernels[path], path)
    for head, labels, span_head, count in (
        ("classification", 3, "joint", 1),
        ("regression", 1, "joint", 1),
        ("span", 2, "independent", 2),
        ("span", 2, "joint", 5),
    ):
        model = FinetuningModel(
            ElectraBackbone(config), head, num_labels=labels, answerable=head == "span", span_head=span_head
        )
        heads = [
            v for v in model.trainable_variables if v.path.startswith("task_specific/") and v.path.endswith("kernel")
        ]
        assert len(heads) == count
        for variable in heads:
            _assert_glorot_uniform(np.asarray(variable), variable.path)
    # Everything else that the reference gives create_initializer stays truncated-normal 0.02.
    for path in (
        "discriminator_predictions/dense/kernel",
        "generator_predictions/dense/kernel",
        "electra/layer_0/query/kernel",
        "electra/embeddings/word_embeddings",
    ):
        assert np.abs(kernels[path]).max() <= 0.04 + 1e-6, path
        assert kernels[path].std() == pytest.approx(0.02 * 0.8796, rel=0.05), path


def test_discriminator_output_bias_starts_at_the_configured_prior():
    features = {
        "input_ids": np.random.default_rng(0).integers(5, 1000, (4, 32)),
        "input_mask": np.ones((4, 32), "int32"),
        "segment_ids": np.zeros((4, 32), "int32"),
    }
    tiny = {
        "vocab_size": 1000,
        "num_hidden_layers": 1,
        "hidden_size": 64,
        "embedding_size": 64,
        "num_attention_heads": 1,
        "intermediate_size": 128,
    }
    reference = build_discriminator(load_config("electra_small", tiny))
    assert float(np.asarray(reference.head_logit.bias)[0]) == 0.0  # as the reference: zeros
    prior = build_discriminator(load_config("electra_small", dict(tiny, disc_bias_prior=0.15)))
    assert float(np.asarray(prior.head_logit.bias)[0]) == pytest.approx(math.log(0.15 / 0.85))
    # The untrained discriminator predicts about the prior everywhere.
    probabilities = 1 / (1 + np.exp(-np.asarray(prior(features, training=False))))
    assert probabilities.mean() == pytest.approx(0.15, abs=0.02)


def _numpy_layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + layer.epsilon) * np.asarray(layer.gamma) + np.asarray(layer.beta)


def test_transformer_layer_is_bert_post_layer_norm():
    config = load_config("electra_tiny")
    layer = TransformerLayer(config, hidden_size=64, num_attention_heads=2, intermediate_size=256)
    rng = np.random.default_rng(0)
    for variable in layer.weights:  # non-trivial LayerNorm and bias values
        variable.assign(
            rng.normal(0, 0.1, variable.shape).astype(np.float32) + (1.0 if variable.path.endswith("gamma") else 0.0)
        )
    hidden = rng.normal(size=(2, 5, 64)).astype(np.float32)
    input_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    actual = np.asarray(layer(hidden, attention_bias_from_mask(input_mask), training=False))

    def dense(x, d):
        return x @ np.asarray(d.kernel) + np.asarray(d.bias)

    def heads(x):
        return x.reshape(2, 5, 2, 32).transpose(0, 2, 1, 3)

    q, k, v = (heads(dense(hidden, d)) for d in (layer.query, layer.key, layer.value))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(32)
    scores = scores + ((1 - input_mask) * -10000.0)[:, None, None, :]
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(2, 5, 64)
    attended = _numpy_layer_norm(hidden + dense(context, layer.attention_output), layer.attention_layer_norm)
    intermediate = dense(attended, layer.intermediate)
    erf = np.vectorize(math.erf)
    intermediate = 0.5 * intermediate * (1 + erf(intermediate / math.sqrt(2)))
    expected = _numpy_layer_norm(attended + dense(intermediate, layer.output_dense), layer.output_layer_norm)
    np.testing.assert_allclose(actual, expected, atol=2e-4)


def test_padding_does_not_change_real_token_outputs():
    config = load_config("electra_tiny", {"vocab_size": 500})
    backbone = ElectraBackbone(config)
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 500, size=(2, 16)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[:, 10:] = 0
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}
    first = np.asarray(backbone(features))
    ids_other_padding = ids.copy()
    ids_other_padding[:, 10:] = rng.integers(5, 500, size=(2, 6))
    second = np.asarray(backbone({**features, "input_ids": ids_other_padding}))
    assert first.shape == (2, 16, config.hidden_size)
    np.testing.assert_allclose(first[:, :10], second[:, :10], atol=1e-5)


def test_cls_only_output_equals_position_zero_of_the_full_output():
    config = load_config("electra_tiny", {"vocab_size": 500, "num_hidden_layers": 3})
    backbone = ElectraBackbone(config)
    rng = np.random.default_rng(2)
    ids = rng.integers(5, 500, size=(3, 16)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    features = {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": np.concatenate([np.zeros((3, 8), np.int32), np.ones((3, 8), np.int32)], 1),
    }
    full = np.asarray(backbone(features))
    cls = np.asarray(backbone(features, cls_only=True))
    assert cls.shape == (3, 1, config.hidden_size)
    np.testing.assert_allclose(cls, full[:, :1], atol=1e-5)
    # The gradient reaching the weights through [CLS] is the same along both paths.
    import tensorflow as tf

    def cls_gradients(cls_only):
        with tf.GradientTape() as tape:
            out = backbone(features, cls_only=cls_only)[:, 0]
            loss = tf.reduce_sum(out * np.linspace(-1, 1, config.hidden_size, dtype=np.float32))
        return tape.gradient(loss, backbone.trainable_variables)

    for fast, slow in zip(cls_gradients(True), cls_gradients(False)):
        # Gradients of the embeddings reach ~100 here, so the tolerance is relative too.
        np.testing.assert_allclose(tf.convert_to_tensor(fast), tf.convert_to_tensor(slow), rtol=1e-5, atol=1e-5)


def test_dropout_is_active_only_in_training():
    config = load_config("electra_tiny", {"vocab_size": 500})
    backbone = ElectraBackbone(config)
    ids = np.arange(5, 37, dtype=np.int32).reshape(2, 16)
    features = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}
    np.testing.assert_array_equal(np.asarray(backbone(features)), np.asarray(backbone(features)))
    assert not np.allclose(np.asarray(backbone(features, training=True)), np.asarray(backbone(features, training=True)))


def test_dropout_draws_half_the_random_numbers_with_the_configured_rate_and_scale():
    import tensorflow as tf

    layer = ElectraDropout(0.1, seed=7)
    inputs = np.random.default_rng(0).normal(size=(8, 64, 256)).astype(np.float32)
    outputs = np.asarray(layer(inputs, training=True))
    dropped = outputs == 0
    # 131,072 Bernoulli(0.1) draws: 5 standard deviations is 0.0042.
    assert abs(dropped.mean() - 0.1) < 0.0042
    np.testing.assert_allclose(outputs[~dropped], inputs[~dropped] / 0.9, rtol=1e-6)
    # The two halves of the last axis come from the low and high bits of the same draws; they
    # must still be independent.
    assert abs(np.corrcoef(dropped[..., :128].ravel(), dropped[..., 128:].ravel())[0, 1]) < 0.02
    assert not np.array_equal(dropped, np.asarray(layer(inputs, training=True)) == 0)
    np.testing.assert_array_equal(np.asarray(layer(inputs, training=False)), inputs)
    # The gradient is the mask times the scale, as Keras's dropout's.
    x = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    gradient = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(gradient, np.where(y.numpy() == 0, 0.0, 1 / 0.9), rtol=1e-6)
    # Same seed, same masks; an odd last dimension falls back to Keras's dropout.
    again = ElectraDropout(0.1, seed=7)
    np.testing.assert_array_equal(np.asarray(again(inputs, training=True)) == 0, dropped)
    odd = np.asarray(ElectraDropout(0.5, seed=1)(np.ones((4, 1001), np.float32), training=True))
    assert 0.45 < (odd == 0).mean() < 0.55
    # The same variables as keras.layers.Dropout, so checkpoints written before are unchanged.
    keras_dropout = keras.layers.Dropout(0.1, seed=7)
    assert [v.name for v in layer.variables] == [v.name for v in keras_dropout.variables]
    # "paired_dropout_draws": false gives Keras's dropout back everywhere in the backbone.
    for paired in (True, False):
        backbone = ElectraBackbone(load_config("electra_tiny", {"vocab_size": 500, "paired_dropout_draws": paired}))
        ids = np.arange(5, 21, dtype=np.int32).reshape(1, 16)
        backbone({"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)})
        kinds = {type(sub) for sub in backbone._flatten_layers() if isinstance(sub, keras.layers.Dropout)}
        assert kinds == ({ElectraDropout} if paired else {keras.layers.Dropout})


def test_generator_logits_only_at_the_requested_positions():
    config = load_config("electra_tiny", {"vocab_size": 500})
    discriminator = build_discriminator(config)
    generator = build_generator(config, discriminator.backbone.embeddings)
    ids = np.arange(5, 37, dtype=np.int32).reshape(2, 16)
    features = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}
    everywhere = np.asarray(generator(features))
    positions = np.array([[3, 7], [0, 15]], np.int32)
    at_positions = np.asarray(generator(features, masked_positions=positions))
    assert everywhere.shape == (2, 16, 500) and at_positions.shape == (2, 2, 500)
    np.testing.assert_allclose(at_positions, np.take_along_axis(everywhere, positions[..., None], axis=1), atol=1e-5)
    assert np.asarray(discriminator(features)).shape == (2, 16)


def test_backbone_weights_round_trip(tmp_path):
    config = load_config("electra_tiny", {"vocab_size": 500})
    source, target = ElectraBackbone(config), ElectraBackbone(config)
    path = str(tmp_path / "backbone.weights.h5")
    source.save_weights(path)
    target.load_weights(path)
    for a, b in zip(source.weights, target.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(source)).count_params()
        == source.count_params()
    )


def test_every_model_class_round_trips_through_keras_serialisation():
    from electra_tf import modeling

    config = load_config("electra_tiny", {"num_hidden_layers": 1, "disc_bias_prior": 0.2})
    for model in (
        modeling.ElectraEmbeddings(config),
        modeling.ElectraBackbone(config),
        modeling.build_discriminator(config),
        modeling.build_generator(config),
    ):
        rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
        assert type(rebuilt) is type(model) and rebuilt.get_config() == model.get_config()
        assert rebuilt.count_params() == model.count_params()
    assert modeling.build_generator(config).encoder == config.generator_encoder
    assert modeling.build_discriminator(config).bias_prior == 0.2
    pretrainer = ElectraPretrainer(config)
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(pretrainer))
    assert type(rebuilt) is ElectraPretrainer and rebuilt.config == config


def test_layers_are_built_from_encoder_sizes_and_never_see_the_run_settings():
    from electra_tf import modeling
    from electra_tf.config import RUN_SETTING_KEYS, SIZE_KEYS, ElectraConfig, EncoderConfig

    config = load_config("electra_tiny", {"num_hidden_layers": 1, "learning_rate": 0.25})
    encoder_keys = {field.name for field in dataclasses.fields(EncoderConfig)}
    config_keys = {field.name for field in dataclasses.fields(ElectraConfig)}
    # Every named key is a real config key; sizes are encoder keys; run settings are not.
    assert set(SIZE_KEYS) <= encoder_keys <= config_keys and set(RUN_SETTING_KEYS) <= config_keys
    assert not encoder_keys & set(RUN_SETTING_KEYS)
    generator = config.generator_encoder
    assert (generator.hidden_size, generator.num_attention_heads, generator.intermediate_size) == (
        config.generator_hidden,
        config.generator_num_attention_heads,
        config.generator_intermediate_size,
    )
    # An explicit EncoderConfig and the ElectraConfig it comes from build the same variables.
    explicit = EncoderConfig.from_dict(config.encoder.to_dict())
    assert modeling.variable_paths(modeling.ElectraBackbone(explicit)) == modeling.variable_paths(
        modeling.ElectraBackbone(config)
    )
    assert "learning_rate" not in modeling.ElectraBackbone(config).get_config()["encoder"]
    # A generator built straight from an ElectraConfig would get the discriminator's sizes.
    with pytest.raises(TypeError, match="build_generator"):
        modeling.ElectraGenerator(config)
    with pytest.raises(UserError, match="unknown encoder config key 'learning_rate'"):
        EncoderConfig.from_dict({**config.encoder.to_dict(), "learning_rate": 0.25})
    model_keys = set(config.model_dict())
    assert model_keys == config_keys - set(RUN_SETTING_KEYS)
