"""Checkpoint conversion: name table vs the Keras models, equivalence with Hugging Face
transformers, round trips, a checkpoint in the reference's own layout, and bad input."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoint_conversion as conversion
from electra_tf.config import ElectraConfig
from electra_tf.errors import UserError
from electra_tf.modeling import load_pretrained_backbone, variable_paths
from electra_tf.pretraining_objective import ElectraPretrainer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# E != H (Small-like: a projection in the discriminator, none in the generator) and E == H
# (no discriminator projection, a generator projection 32 -> 16). vocab >= 104 for BERT's ids.
SMALL_LIKE = dict(
    vocab_size=128,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=24,
    max_seq_length=12,
    generator_hidden_size=0.5,
)
EQUAL_SIZES = dict(SMALL_LIKE, embedding_size=32)


def make_config(**overrides) -> ElectraConfig:
    return ElectraConfig(**{**SMALL_LIKE, **overrides})


def reference_names(config: ElectraConfig) -> dict[str, tuple[int, ...]]:
    """The reference checkpoint's variables and shapes, written out from its documentation
    (not from the converter's table), with kernels [in, out]."""
    names = {}

    def encoder(scope, width, hidden, intermediate, layers):
        if width != hidden:
            names[f"{scope}/embeddings_project/kernel"] = (width, hidden)
            names[f"{scope}/embeddings_project/bias"] = (hidden,)
        for i in range(layers):
            base = f"{scope}/encoder/layer_{i}"
            for sub in ("query", "key", "value"):
                names[f"{base}/attention/self/{sub}/kernel"] = (hidden, hidden)
                names[f"{base}/attention/self/{sub}/bias"] = (hidden,)
            names[f"{base}/attention/output/dense/kernel"] = (hidden, hidden)
            names[f"{base}/attention/output/dense/bias"] = (hidden,)
            names[f"{base}/attention/output/LayerNorm/gamma"] = (hidden,)
            names[f"{base}/attention/output/LayerNorm/beta"] = (hidden,)
            names[f"{base}/intermediate/dense/kernel"] = (hidden, intermediate)
            names[f"{base}/intermediate/dense/bias"] = (intermediate,)
            names[f"{base}/output/dense/kernel"] = (intermediate, hidden)
            names[f"{base}/output/dense/bias"] = (hidden,)
            names[f"{base}/output/LayerNorm/gamma"] = (hidden,)
            names[f"{base}/output/LayerNorm/beta"] = (hidden,)

    e, h, v = config.embedding_size, config.hidden_size, config.vocab_size
    names["electra/embeddings/word_embeddings"] = (v, e)
    names["electra/embeddings/position_embeddings"] = (config.max_position_embeddings, e)
    names["electra/embeddings/token_type_embeddings"] = (config.type_vocab_size, e)
    names["electra/embeddings/LayerNorm/gamma"] = (e,)
    names["electra/embeddings/LayerNorm/beta"] = (e,)
    encoder("electra", e, h, config.intermediate_size, config.num_hidden_layers)
    names["discriminator_predictions/dense/kernel"] = (h, h)
    names["discriminator_predictions/dense/bias"] = (h,)
    names["discriminator_predictions/dense_1/kernel"] = (h, 1)
    names["discriminator_predictions/dense_1/bias"] = (1,)
    g = config.generator_hidden
    encoder("generator", e, g, 4 * g, config.generator_num_hidden_layers)
    names["generator_predictions/dense/kernel"] = (g, e)
    names["generator_predictions/dense/bias"] = (e,)
    names["generator_predictions/LayerNorm/gamma"] = (e,)
    names["generator_predictions/LayerNorm/beta"] = (e,)
    names["generator_predictions/output_bias"] = (v,)
    return names


def write_reference_checkpoint(
    prefix: pathlib.Path, shapes: dict, seed: int = 0, with_training_state: bool = True
) -> dict[str, np.ndarray]:
    """A TF1 name-based checkpoint with random values, as the reference's Estimator saves it
    (Adam slots and global_step included). Returns the model tensors."""
    rng = np.random.default_rng(seed)
    # Roughly the scale of trained weights: LayerNorm gains near 1, the rest small.
    tensors = {
        name: (rng.normal(1.0 if name.endswith("gamma") else 0.0, 0.1, shape)).astype(np.float32)
        for name, shape in shapes.items()
    }
    stored = dict(tensors)
    if with_training_state:
        for name, array in tensors.items():
            stored[f"{name}/adam_m"] = np.zeros_like(array)
            stored[f"{name}/adam_v"] = np.ones_like(array)
        stored["global_step"] = np.array(1000000, dtype=np.int64)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(stored)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(stored[name]) for name in names],
    )
    return tensors


def test_name_table_covers_every_model_variable():
    """Fails loudly when electra_tf.modeling renames or adds a variable."""
    for overrides in (
        {},
        dict(embedding_size=32),
        dict(untied_generator_embeddings=True),
        dict(electra_objective=False),
        dict(uniform_generator=True),
        dict(generator_layers=0.5),
    ):
        config = make_config(**overrides)
        table = {variable.keras: variable.shape for variable in conversion.variable_table(config)}
        assert table == variable_paths(ElectraPretrainer(config)), overrides


@pytest.mark.parametrize("sizes", [SMALL_LIKE, EQUAL_SIZES], ids=["E!=H", "E==H"])
def test_official_names_match_the_reference_documentation(sizes):
    config = ElectraConfig(**sizes)
    table = {variable.official: variable.shape for variable in conversion.variable_table(config)}
    assert table == reference_names(config)


# ---------------------------------------------------------------------------------------------
# Equivalence with Hugging Face transformers on the same random weights.


def _import_torch_and_transformers():
    global torch, transformers
    torch = pytest.importorskip("torch", reason="the test extra installs torch (CPU)")
    transformers = pytest.importorskip("transformers", reason="the test extra installs transformers")


def _hf_pair(sizes: dict, directory: pathlib.Path, seed: int):
    """Random ElectraForPreTraining and ElectraForMaskedLM sharing their embeddings, saved as
    safetensors by transformers itself. LayerNorm and biases are randomised too, so a swapped
    gamma/beta or a missed bias shows."""
    torch.manual_seed(seed)
    common = dict(
        vocab_size=sizes["vocab_size"],
        embedding_size=sizes["embedding_size"],
        max_position_embeddings=sizes["max_position_embeddings"],
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    disc_config = transformers.ElectraConfig(
        hidden_size=sizes["hidden_size"],
        num_hidden_layers=sizes["num_hidden_layers"],
        num_attention_heads=sizes["num_attention_heads"],
        intermediate_size=sizes["intermediate_size"],
        **common,
    )
    generator_hidden = int(sizes["hidden_size"] * sizes["generator_hidden_size"])
    gen_config = transformers.ElectraConfig(
        hidden_size=generator_hidden,
        num_hidden_layers=sizes["num_hidden_layers"],
        num_attention_heads=max(1, generator_hidden // 64),
        intermediate_size=4 * generator_hidden,
        **common,
    )
    discriminator = transformers.ElectraForPreTraining(disc_config).eval()
    generator = transformers.ElectraForMaskedLM(gen_config).eval()
    with torch.no_grad():
        for model in (discriminator, generator):
            for parameter in model.parameters():
                parameter.copy_(torch.randn_like(parameter) * 0.3 + (1.0 if parameter.dim() == 1 else 0.0) * 0.5)
        generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
    assert generator.generator_lm_head.weight is generator.electra.embeddings.word_embeddings.weight
    discriminator.save_pretrained(directory / "discriminator", safe_serialization=True)
    generator.save_pretrained(directory / "generator", safe_serialization=True)
    return discriminator, generator


def _batch():
    """Two-segment with padding, single-segment with padding, and a full row (seq 12)."""
    ids = np.array(
        [
            [101, 7, 8, 9, 102, 20, 21, 22, 102, 0, 0, 0],
            [101, 30, 31, 32, 33, 102, 0, 0, 0, 0, 0, 0],
            [101, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 102],
        ],
        dtype=np.int32,
    )
    segments = np.array([[0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0], [0] * 12, [0] * 12], dtype=np.int32)
    mask = (ids != 0).astype(np.int32)
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}


@pytest.fixture(scope="module", params=[SMALL_LIKE, EQUAL_SIZES], ids=["E!=H", "E==H"])
def hf_models(request, tmp_path_factory):
    _import_torch_and_transformers()
    directory = tmp_path_factory.mktemp("hf")
    discriminator, generator = _hf_pair(
        request.param, directory, seed=len(request.param) + request.param["embedding_size"]
    )
    return directory, discriminator, generator


def test_keras_logits_match_transformers(hf_models):
    directory, hf_discriminator, hf_generator = hf_models
    weights = conversion.read_huggingface(directory / "discriminator", directory / "generator")
    assert weights.parts == frozenset(conversion.PARTS)
    assert not weights.config.untied_generator_embeddings
    model = conversion.build_pretrainer(weights)
    batch = _batch()
    real = batch["input_mask"].astype(bool)
    torch_inputs = dict(
        input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
        attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
        token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
    )
    with torch.no_grad():
        hf_disc_logits = hf_discriminator(**torch_inputs).logits.numpy()
        hf_mlm_logits = hf_generator(**torch_inputs).logits.numpy()
    disc_logits = keras.ops.convert_to_numpy(model.discriminator(batch, training=False))
    mlm_logits = keras.ops.convert_to_numpy(model.generator(batch, training=False))
    assert disc_logits.shape == hf_disc_logits.shape == (3, 12)
    assert mlm_logits.shape == hf_mlm_logits.shape == (3, 12, 128)
    assert np.abs(disc_logits - hf_disc_logits)[real].max() < 1e-4
    assert np.abs(mlm_logits - hf_mlm_logits)[real].max() < 1e-4
    # Not vacuous: the logits vary across positions and tokens.
    assert disc_logits[real].std() > 0.01 and mlm_logits[real].std() > 0.1


def test_huggingface_round_trip_is_identical(hf_models, tmp_path):
    directory, hf_discriminator, hf_generator = hf_models
    weights = conversion.read_huggingface(directory / "discriminator", directory / "generator")
    conversion.write_electra_tf(weights, tmp_path / "electra_tf")
    again = conversion.read_electra_tf(tmp_path / "electra_tf")
    written = conversion.write_huggingface(again, tmp_path / "hf")
    assert written == [str(tmp_path / "hf" / "discriminator"), str(tmp_path / "hf" / "generator")]
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    for name, original in (("discriminator", hf_discriminator), ("generator", hf_generator)):
        expected = {
            key: value.numpy() for key, value in original.state_dict().items() if key != conversion.HF_TIED_LM_HEAD
        }
        # Read with the safetensors package itself: the files are valid beyond our own parser.
        tensors = safetensors_numpy.load_file(str(tmp_path / "hf" / name / "model.safetensors"))
        assert sorted(tensors) == sorted(expected)
        for key, value in expected.items():
            assert np.array_equal(tensors[key], value), key
    # transformers loads what we wrote, with nothing missing or left over.
    reloaded, info = transformers.ElectraForMaskedLM.from_pretrained(
        tmp_path / "hf" / "generator", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert torch.equal(reloaded.generator_lm_head.weight, hf_generator.electra.embeddings.word_embeddings.weight)


def test_huggingface_single_models(hf_models, tmp_path):
    directory, hf_discriminator, _ = hf_models
    discriminator_only = conversion.read_huggingface(directory / "discriminator")
    assert discriminator_only.parts == {"embeddings", "discriminator", "discriminator_head"}
    assert conversion.write_electra_tf(discriminator_only, tmp_path / "disc") == [
        "config.json",
        "backbone.weights.h5",
        "discriminator.weights.h5",
    ]
    _, backbone = load_pretrained_backbone(tmp_path / "disc")
    batch = _batch()
    with torch.no_grad():
        expected = hf_discriminator.electra(
            input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
        ).last_hidden_state.numpy()
    hidden = keras.ops.convert_to_numpy(backbone(batch, training=False))
    real = batch["input_mask"].astype(bool)
    assert np.abs(hidden - expected)[real].max() < 1e-4

    # The same model as pytorch_model.bin (read with PyTorch's weights-only loader).
    pytorch_dir = tmp_path / "pytorch"
    pytorch_dir.mkdir()
    (pytorch_dir / "config.json").write_text((directory / "discriminator" / "config.json").read_text())
    torch.save(hf_discriminator.state_dict(), pytorch_dir / "pytorch_model.bin")
    from_pytorch = conversion.read_huggingface(pytorch_dir)
    assert sorted(from_pytorch.arrays) == sorted(discriminator_only.arrays)
    for path, array in discriminator_only.arrays.items():
        assert np.array_equal(from_pytorch.arrays[path], array), path

    masked_lm_only = conversion.read_huggingface(directory / "generator")
    assert not masked_lm_only.config.electra_objective
    assert masked_lm_only.parts == {"embeddings", "generator", "generator_head"}
    assert masked_lm_only.config.hidden_size == hf_models[2].config.hidden_size


# ---------------------------------------------------------------------------------------------
# A checkpoint in the reference's layout.


@pytest.fixture(scope="module")
def reference_checkpoint(tmp_path_factory):
    """A released-checkpoint look-alike: BERT's vocabulary size (run_finetuning tokenizes
    real text), tiny layers."""
    config = make_config(vocab_size=30522, max_position_embeddings=64)
    prefix = tmp_path_factory.mktemp("reference") / "electra_small" / "electra_small"
    tensors = write_reference_checkpoint(prefix, reference_names(config))
    return config, prefix, tensors


def test_official_round_trip_is_identical(reference_checkpoint, tmp_path):
    config, prefix, tensors = reference_checkpoint
    weights = conversion.read_official(prefix.parent, config)  # a directory works too
    assert weights.parts == frozenset(conversion.PARTS)
    assert weights.skipped == {"optimizer slots": 2 * len(tensors), "global_step": 1}
    conversion.write_electra_tf(weights, tmp_path / "electra_tf")
    again = conversion.read_electra_tf(tmp_path / "electra_tf")
    written_prefix = conversion.write_official(again, tmp_path / "official")
    reader = tf.train.load_checkpoint(written_prefix)
    shapes = reader.get_variable_to_shape_map()
    assert sorted(shapes) == sorted(tensors)
    for name, value in tensors.items():
        assert np.array_equal(reader.get_tensor(name), value), name
    # The written checkpoint's directory is found through its 'checkpoint' file.
    assert tf.train.latest_checkpoint(str(tmp_path / "official")) == written_prefix


def test_untied_generator_and_shallower_generator_round_trip(tmp_path):
    config = make_config(untied_generator_embeddings=True, generator_layers=0.5)
    shapes = {variable.official: variable.shape for variable in conversion.variable_table(config)}
    assert shapes["generator/embeddings/word_embeddings"] == (128, 16)
    assert "generator/encoder/layer_1/output/dense/bias" not in shapes
    tensors = write_reference_checkpoint(tmp_path / "in" / "model.ckpt", shapes)
    weights = conversion.read_official(tmp_path / "in" / "model.ckpt", config)
    conversion.write_electra_tf(weights, tmp_path / "electra_tf")
    hf_dirs = conversion.write_huggingface(conversion.read_electra_tf(tmp_path / "electra_tf"), tmp_path / "hf")
    again = conversion.read_huggingface(*hf_dirs, base_config=config)
    assert again.config.untied_generator_embeddings
    assert again.config.generator_num_hidden_layers == 1
    prefix = conversion.write_official(again, tmp_path / "out")
    reader = tf.train.load_checkpoint(prefix)
    assert sorted(reader.get_variable_to_shape_map()) == sorted(tensors)
    for name, value in tensors.items():
        assert np.array_equal(reader.get_tensor(name), value), name


def test_safetensors_reader_widens_bfloat16(tmp_path):
    _import_torch_and_transformers()
    safetensors_torch = pytest.importorskip("safetensors.torch")
    values = torch.randn(3, 5).to(torch.bfloat16)
    safetensors_torch.save_file({"x": values, "n": torch.arange(4)}, str(tmp_path / "t.safetensors"))
    tensors = conversion.read_safetensors(tmp_path / "t.safetensors")
    assert tensors["x"].dtype == np.float32
    assert np.array_equal(tensors["x"], values.float().numpy())
    assert np.array_equal(tensors["n"], np.arange(4))


def test_reference_checkpoint_matches_huggingface_layout(reference_checkpoint, tmp_path):
    """official -> Hugging Face puts each tensor under HF's name, Linear weights [out, in]."""
    config, prefix, tensors = reference_checkpoint
    weights = conversion.read_official(prefix, config)
    conversion.write_huggingface(weights, tmp_path)
    disc = conversion.read_safetensors(tmp_path / "discriminator" / "model.safetensors")
    gen = conversion.read_safetensors(tmp_path / "generator" / "model.safetensors")
    assert np.array_equal(
        disc["electra.encoder.layer.1.attention.self.query.weight"],
        tensors["electra/encoder/layer_1/attention/self/query/kernel"].T,
    )
    assert np.array_equal(
        disc["discriminator_predictions.dense_prediction.weight"], tensors["discriminator_predictions/dense_1/kernel"].T
    )
    assert np.array_equal(
        gen["electra.embeddings.word_embeddings.weight"], tensors["electra/embeddings/word_embeddings"]
    )
    assert np.array_equal(gen["generator_lm_head.bias"], tensors["generator_predictions/output_bias"])
    assert np.array_equal(
        gen["electra.encoder.layer.0.output.LayerNorm.bias"], tensors["generator/encoder/layer_0/output/LayerNorm/beta"]
    )


def test_reference_checkpoint_converts_then_fine_tunes(reference_checkpoint, tmp_path, shared_data, bert_vocab_file):
    """convert_checkpoint's CLI end to end, then run_finetuning a few RTE steps from it."""
    from electra_tf import finetuning

    config, prefix, tensors = reference_checkpoint
    release = tmp_path / "electra_small"  # a release directory: checkpoint + vocab.txt
    release.mkdir()
    for path in prefix.parent.glob(prefix.name + ".*"):
        (release / path.name).write_bytes(path.read_bytes())
    (release / "vocab.txt").write_bytes(pathlib.Path(bert_vocab_file).read_bytes())
    config_file = tmp_path / "sizes.json"
    config.to_json_file(config_file)
    output = tmp_path / "converted"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "electra_tf.convert_checkpoint",
            "--from=official",
            f"--checkpoint={release}",
            f"--config={config_file}",
            f"--output_dir={output}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "optimizer slots" in result.stdout and "1 global_step" in result.stdout
    assert sorted(p.name for p in output.iterdir()) == [
        "backbone.weights.h5",
        "config.json",
        "discriminator.weights.h5",
        "generator.weights.h5",
        "vocab.txt",
    ]

    options = finetuning.FinetuningOptions(
        tasks="rte",
        output_dir=str(tmp_path / "finetuned"),
        data_dir=str(shared_data / "glue"),
        init_checkpoint=str(output),
        max_seq_length=64,
        max_train_examples=32,
        max_eval_examples=32,
        num_train_steps=3,
        train_batch_size=8,
        learning_rate=1e-7,
        log_every_steps=1000,
        write_test_predictions=False,
    )
    summary = finetuning.run_finetuning(options)  # vocab.txt comes from beside the weights
    assert np.isfinite(summary["tasks"]["rte"]["median_score"])
    _, model = finetuning.load_finetuned(str(tmp_path / "finetuned" / "rte" / "trial_1" / "finetuned"))
    # The encoder started from the reference tensors (a 1e-7 rate barely moves it).
    np.testing.assert_allclose(
        np.asarray(model.backbone.embeddings.word_embeddings), tensors["electra/embeddings/word_embeddings"], atol=1e-5
    )
    query = next(v for v in model.backbone.weights if v.path.endswith("layer_1/query/kernel"))
    np.testing.assert_allclose(
        np.asarray(query), tensors["electra/encoder/layer_1/attention/self/query/kernel"], atol=1e-5
    )


def test_continued_pretraining_starts_from_converted_weights(reference_checkpoint, tmp_path):
    config, prefix, tensors = reference_checkpoint
    conversion.write_electra_tf(conversion.read_official(prefix, config), tmp_path)
    model = ElectraPretrainer(config, seed=3)
    conversion.load_pretrained_into(model, tmp_path)
    paths = {variable.path: variable for variable in model.weights}
    assert np.array_equal(
        paths["generator/layer_1/key/kernel"].numpy(), tensors["generator/encoder/layer_1/attention/self/key/kernel"]
    )
    assert np.array_equal(
        paths["electra/embeddings/word_embeddings"].numpy(), tensors["electra/embeddings/word_embeddings"]
    )
    outputs = model(_batch())
    assert np.isfinite(keras.ops.convert_to_numpy(model.loss_parts(outputs)["total"]))


# ---------------------------------------------------------------------------------------------
# Bad input: one clear line naming the variable or file.


def test_fine_tuned_reference_checkpoint_keeps_the_encoder(tmp_path):
    config = make_config()
    shapes = {name: shape for name, shape in reference_names(config).items() if name.startswith("electra/")}
    shapes["task_specific/classifier/kernel"] = (32, 3)
    write_reference_checkpoint(tmp_path / "model.ckpt", shapes)
    weights = conversion.read_official(tmp_path / "model.ckpt.index", config)
    assert weights.parts == {"embeddings", "discriminator"}
    assert weights.skipped["task_specific head variables"] == 1
    assert conversion.write_electra_tf(weights, tmp_path / "out") == ["config.json", "backbone.weights.h5"]


def _one_line_error(function, *args) -> str:
    with pytest.raises(UserError) as error:
        function(*args)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_unexpected_and_misshaped_variables(tmp_path):
    config = make_config()
    shapes = reference_names(config)
    missing = dict(shapes)
    del missing["electra/encoder/layer_1/intermediate/dense/bias"]
    write_reference_checkpoint(tmp_path / "missing" / "model.ckpt", missing, with_training_state=False)
    message = _one_line_error(conversion.read_official, tmp_path / "missing" / "model.ckpt", config)
    assert "missing variable electra/encoder/layer_1/intermediate/dense/bias" in message
    assert "[64]" in message

    # Three layers in the file, two in the config.
    deeper = reference_names(make_config(num_hidden_layers=3))
    write_reference_checkpoint(tmp_path / "deeper" / "model.ckpt", deeper, with_training_state=False)
    message = _one_line_error(conversion.read_official, tmp_path / "deeper" / "model.ckpt", config)
    assert "unexpected variable electra/encoder/layer_2/" in message

    # The released Small has a full-size generator: converting with the paper's 1/4 fails.
    message = _one_line_error(
        conversion.read_official, tmp_path / "missing" / "model.ckpt", make_config(generator_hidden_size=0.25)
    )
    assert "generator/encoder/layer_0/" in message and "the config expects [8" in message
    assert """--hparams='{"generator_hidden_size": 0.5}'""" in message

    wider = reference_names(make_config(hidden_size=48, num_attention_heads=3, generator_hidden_size=1 / 3))
    write_reference_checkpoint(tmp_path / "wider" / "model.ckpt", wider, with_training_state=False)
    message = _one_line_error(conversion.read_official, tmp_path / "wider" / "model.ckpt", config)
    assert "discriminator_predictions/dense/bias has shape [48] but the config expects [32]" in message


def test_files_that_are_not_what_their_name_says(tmp_path, hf_models):
    config = make_config()
    (tmp_path / "model.ckpt.index").write_bytes(b"this is not a checkpoint index" * 10)
    message = _one_line_error(conversion.read_official, tmp_path / "model.ckpt", config)
    assert "not a readable TensorFlow checkpoint" in message
    _one_line_error(conversion.read_official, tmp_path / "absent.ckpt", config)

    directory = hf_models[0]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((directory / "discriminator" / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    message = _one_line_error(conversion.read_huggingface, broken)
    assert "not a valid safetensors file" in message
    (broken / "model.safetensors").unlink()
    (broken / "pytorch_model.bin").write_bytes(b"PK\x03\x04 truncated zip")
    message = _one_line_error(conversion.read_huggingface, broken)
    assert "pytorch_model.bin" in message

    # config.json that does not describe the tensors: a mis-shape error with both shapes.
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    (mismatched / "model.safetensors").write_bytes((directory / "discriminator" / "model.safetensors").read_bytes())
    hf_config = (directory / "discriminator" / "config.json").read_text()
    (mismatched / "config.json").write_text(hf_config.replace('"vocab_size": 128', '"vocab_size": 130'))
    message = _one_line_error(conversion.read_huggingface, mismatched)
    assert "electra.embeddings.word_embeddings.weight has shape [128," in message
    assert "expects [130," in message


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {_RunsCode.marker}",))


def test_pickle_with_code_is_refused(tmp_path, hf_models):
    marker = tmp_path / "code_ran"
    _RunsCode.marker = marker
    model_dir = tmp_path / "malicious"
    model_dir.mkdir()
    (model_dir / "config.json").write_text((hf_models[0] / "discriminator" / "config.json").read_text())
    torch.save(
        {"electra.embeddings.word_embeddings.weight": torch.zeros(2), "payload": _RunsCode()},
        model_dir / "pytorch_model.bin",
    )
    message = _one_line_error(conversion.read_huggingface, model_dir)
    assert "refused to load" in message
    assert not marker.exists()


def test_existing_output_needs_overwrite(reference_checkpoint, tmp_path):
    config, prefix, _ = reference_checkpoint
    weights = conversion.read_official(prefix, config)
    conversion.write_official(weights, tmp_path)
    message = _one_line_error(conversion.write_official, weights, tmp_path)
    assert "already exists" in message and "--overwrite" in message
    conversion.write_official(weights, tmp_path, True)


def test_cli_reports_one_line_errors(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "electra_tf.convert_checkpoint",
            "--from=official",
            f"--checkpoint={tmp_path / 'none.ckpt'}",
            f"--output_dir={tmp_path / 'out'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "none.ckpt" in errors[0]


def _finetuned_dir(directory: pathlib.Path, task_name: str, seed: int, squad_head: str = "joint") -> tuple:
    """A fine-tuned model as run_finetuning writes it (finetuned/), with random weights."""
    from electra_tf import finetuning, finetuning_tasks

    keras.utils.set_random_seed(seed)
    config = make_config()
    task = finetuning_tasks.parse_task_list(task_name)[0]
    model = finetuning.build_model(config, task, None, squad_head=squad_head)
    # Random biases too, so a dropped or swapped bias shows.
    for variable in model.weights:
        variable.assign(np.random.default_rng(seed).normal(0, 0.2, variable.shape).astype(np.float32))
    finetuning._save_finetuned(model, config, task, str(directory), config.max_seq_length)
    return model


def test_fine_tuned_span_head_converts_to_electra_for_question_answering(tmp_path):
    """The independent span head is Hugging Face's; the joint (reference) head is refused."""
    _finetuned_dir(tmp_path / "joint", "squad-v1.1", seed=3)
    message = _one_line_error(
        conversion.write_huggingface, conversion.read_electra_tf(tmp_path / "joint"), tmp_path / "hf"
    )
    assert "--squad_head=independent" in message and not (tmp_path / "hf").exists()
    _import_torch_and_transformers()
    model = _finetuned_dir(tmp_path / "finetuned", "squad-v1.1", seed=3, squad_head="independent")
    weights = conversion.read_electra_tf(tmp_path / "finetuned")
    assert weights.task_head["head"] == "span"
    (directory,) = conversion.write_huggingface(weights, tmp_path / "hf")
    hf = transformers.ElectraForQuestionAnswering.from_pretrained(directory).eval()
    batch = _batch()
    real = batch["input_mask"].astype(bool)
    with torch.no_grad():
        output = hf(
            input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
        )
    ours = model(batch, training=False)
    for name, theirs in (("start_logits", output.start_logits), ("end_logits", output.end_logits)):
        mine = keras.ops.convert_to_numpy(ours[name])
        assert np.abs(mine - theirs.numpy())[real].max() < 1e-4, name
        assert mine[real].std() > 0.01


# Real text for the sentence heads: a model of BERT's vocabulary size, and GLUE dev pairs.
REAL_TEXT_SIZES = dict(vocab_size=30522, max_position_embeddings=128, max_seq_length=128)


def _real_finetuned_dir(directory: pathlib.Path, task_name: str, vocab_file, seed: int):
    """finetuned/ as run_finetuning writes it (vocab.txt included), random weights at roughly a
    trained model's scale (LayerNorm gains near 1), so the [CLS] states and logits spread."""
    from electra_tf import finetuning, finetuning_tasks

    keras.utils.set_random_seed(seed)
    config = make_config(**REAL_TEXT_SIZES)
    task = finetuning_tasks.get_task(task_name)
    model = finetuning.build_model(config, task, None)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        centre = 1.0 if variable.path.endswith("gamma") else 0.0
        variable.assign(rng.normal(centre, 0.3, variable.shape).astype(np.float32))
    finetuning._save_finetuned(model, config, task, str(directory), config.max_seq_length, vocab_file=str(vocab_file))
    return task, model


def _glue_dev_pairs(shared_data, task, count: int):
    from electra_tf import finetuning_tasks

    examples, _ = finetuning_tasks.read_glue_split(str(shared_data / "glue"), task, "dev")
    return examples[:count]


def _to_huggingface(finetuned: pathlib.Path, output: pathlib.Path) -> pathlib.Path:
    """What convert_checkpoint --from=electra_tf --to=huggingface does (library calls)."""
    weights = conversion.read_electra_tf(finetuned)
    (directory,) = conversion.write_huggingface(weights, output)
    assert conversion.copy_vocabulary(finetuned, [directory]) == [f"{directory}/vocab.txt"]
    return pathlib.Path(directory)


def _huggingface_inputs(directory: pathlib.Path, examples, ours: dict) -> dict:
    """Hugging Face's tokenizer of the converted folder on the same text; its ids must be ours."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    encoded = tokenizer(
        [e.text_a for e in examples],
        [e.text_b for e in examples],
        padding="max_length",
        truncation="longest_first",
        max_length=ours["input_ids"].shape[1],
        return_tensors="pt",
    )
    assert np.array_equal(encoded["input_ids"].numpy(), ours["input_ids"])
    assert np.array_equal(encoded["token_type_ids"].numpy(), ours["segment_ids"])
    assert np.array_equal(encoded["attention_mask"].numpy(), ours["input_mask"])
    return dict(encoded)


def test_sequence_classification_head_is_exact_in_float64():
    """The head mapping is exact arithmetic, not an approximation: in float64 Hugging Face's
    out_proj(gelu(dense(h))) equals h @ kernel + bias to rounding, for |h| far beyond any
    hidden state."""
    torch = pytest.importorskip("torch", reason="the test extra installs torch (CPU)")
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(0, 1, (32, 3)), rng.normal(0, 1, 3)
    tensors = conversion.sequence_classification_head(kernel, bias, 32, scale=2.5)
    h = rng.normal(0, 30, (64, 32))
    t = {name: torch.tensor(value, dtype=torch.float64) for name, value in tensors.items()}
    inner = torch.nn.functional.gelu(torch.tensor(h) @ t["classifier.dense.weight"].T + t["classifier.dense.bias"])
    theirs = (inner @ t["classifier.out_proj.weight"].T + t["classifier.out_proj.bias"]).numpy()
    expected = 2.5 * (h @ kernel.astype(np.float32) + bias.astype(np.float32))
    assert np.abs(theirs - expected).max() < 1e-9 * np.abs(expected).max()
    assert not tensors["classifier.dense.weight"][6:].any()  # only 2 x labels rows are used


def test_fine_tuned_classifier_converts_to_electra_for_sequence_classification(tmp_path, shared_data, bert_vocab_file):
    """MRPC (sentence pairs, 2 labels): Hugging Face's logits on real dev pairs, tokenized by
    Hugging Face's own tokenizer from the converted folder, equal electra_tf's."""
    _import_torch_and_transformers()
    from electra_tf import finetuning, tokenization

    task, model = _real_finetuned_dir(tmp_path / "finetuned", "mrpc", bert_vocab_file, seed=5)
    directory = _to_huggingface(tmp_path / "finetuned", tmp_path / "hf")
    assert sorted(os.listdir(directory)) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    hf, info = transformers.ElectraForSequenceClassification.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert hf.config.problem_type == "single_label_classification"
    assert hf.config.id2label == {0: "0", 1: "1"} and hf.config.label2id == {"0": 0, "1": 1}
    examples = _glue_dev_pairs(shared_data, task, 16)
    ours_inputs = finetuning.encode_glue(examples, tokenization.Tokenizer(bert_vocab_file), 128)
    inputs = _huggingface_inputs(directory, examples, ours_inputs)
    with torch.no_grad():
        theirs = hf.eval()(**inputs).logits.numpy()
    ours = keras.ops.convert_to_numpy(model(ours_inputs, training=False)["logits"])
    assert theirs.shape == ours.shape == (16, 2)
    assert np.abs(theirs - ours).max() < 1e-5
    assert ours.std(0).min() > 0.1  # not vacuous: the logits vary across the pairs


def test_fine_tuned_regressor_converts_with_its_target_scale(tmp_path, shared_data, bert_vocab_file):
    """STS-B: Hugging Face's single logit is electra_tf's prediction, in the labels' units (the
    target_scale 5 of head.json folded into out_proj), not the unscaled dense output."""
    _import_torch_and_transformers()
    from electra_tf import finetuning, tokenization

    task, model = _real_finetuned_dir(tmp_path / "finetuned", "sts-b", bert_vocab_file, seed=6)
    directory = _to_huggingface(tmp_path / "finetuned", tmp_path / "hf")
    hf = transformers.ElectraForSequenceClassification.from_pretrained(directory).eval()
    assert hf.config.problem_type == "regression" and hf.config.num_labels == 1
    examples = _glue_dev_pairs(shared_data, task, 16)
    ours_inputs = finetuning.encode_glue(examples, tokenization.Tokenizer(bert_vocab_file), 128)
    inputs = _huggingface_inputs(directory, examples, ours_inputs)
    with torch.no_grad():
        output = hf(**inputs, labels=torch.tensor([e.label for e in examples]))
    theirs = output.logits.numpy()[:, 0]
    ours = keras.ops.convert_to_numpy(model(ours_inputs, training=False)["predictions"])
    assert model.target_scale == 5.0
    assert np.abs(theirs - ours).max() < 1e-5 * max(1.0, np.abs(ours).max())
    assert ours.std() > 0.5
    # Hugging Face's regression loss is then the squared error on the raw 0-5 scores.
    labels = np.array([e.label for e in examples], np.float32)
    assert abs(output.loss.item() - np.mean((ours - labels) ** 2)) < 1e-4 * output.loss.item()


def _set_span_head(directory: pathlib.Path, kind: str) -> None:
    head_file = directory / "head.json"
    head_file.write_text(json.dumps(dict(json.loads(head_file.read_text()), span_head=kind)))


def test_unsupported_heads_are_refused_for_huggingface(tmp_path):
    _finetuned_dir(tmp_path / "squad2", "squad-v2.0", seed=4)
    weights = conversion.read_electra_tf(tmp_path / "squad2")
    message = _one_line_error(conversion.write_huggingface, weights, tmp_path / "hf")
    # The answerable head, or (where SQuAD defaults to the joint head) the joint span head.
    assert "ElectraForQuestionAnswering" in message
    assert "answerable head" in message or "'joint' SQuAD head" in message
    assert not (tmp_path / "hf").exists()
    # A SQuAD head whose end logits depend on the start (head.json names its kind).
    _finetuned_dir(tmp_path / "joint", "squad-v1.1", seed=4)
    _set_span_head(tmp_path / "joint", "joint")
    weights = conversion.read_electra_tf(tmp_path / "joint")
    message = _one_line_error(conversion.write_huggingface, weights, tmp_path / "hf")
    assert "'joint' SQuAD head" in message and "--squad_head=independent" in message
    assert not (tmp_path / "hf").exists()
    # Their encoders still convert to the reference's format (the head is reported, not kept).
    prefix = conversion.write_official(weights, tmp_path / "official")
    back = conversion.read_official(prefix, weights.config)
    assert set(back.arrays) == set(weights.arrays)
    assert "squad-v1.1 head variables (only --to huggingface keeps a head)" in weights.summary()
