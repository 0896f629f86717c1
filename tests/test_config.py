"""ElectraConfig presets, derived sizes, overrides and one-line errors."""

import json

import pytest

from electra_tf.config import CONFIGS_DIR, ElectraConfig, load_config, preset_names
from electra_tf.errors import UserError


def test_presets_match_the_reference_table():
    small = load_config("electra_small")
    assert (
        small.hidden_size,
        small.num_hidden_layers,
        small.embedding_size,
        small.num_attention_heads,
        small.intermediate_size,
    ) == (256, 12, 128, 4, 1024)
    assert (
        small.max_seq_length,
        small.train_batch_size,
        small.learning_rate,
        small.num_train_steps,
        small.num_warmup_steps,
        small.mask_prob,
    ) == (128, 128, 5e-4, 1_000_000, 10_000, 0.15)
    assert small.generator_hidden == 64 and small.generator_num_attention_heads == 1
    assert small.generator_intermediate_size == 256 and small.generator_num_hidden_layers == 12
    assert small.max_predictions_per_seq == 19

    base = load_config("electra_base")
    assert (
        base.hidden_size,
        base.embedding_size,
        base.num_attention_heads,
        base.intermediate_size,
        base.max_seq_length,
        base.train_batch_size,
        base.learning_rate,
        base.num_train_steps,
    ) == (768, 768, 12, 3072, 512, 256, 2e-4, 766_000)
    assert base.generator_hidden == 256 and base.generator_num_attention_heads == 4
    assert base.max_predictions_per_seq == 79

    large = load_config("electra_large")
    assert (
        large.hidden_size,
        large.num_hidden_layers,
        large.embedding_size,
        large.num_attention_heads,
        large.train_batch_size,
        large.num_train_steps,
        large.mask_prob,
    ) == (1024, 24, 1024, 16, 2048, 400_000, 0.25)
    assert large.generator_hidden == 256
    assert large.max_predictions_per_seq == int(0.255 * 512)

    bert = load_config("bert_small")
    assert not bert.electra_objective
    # The BERT baseline's masked LM is the full-size model.
    assert bert.generator_hidden == 256 and bert.generator_num_hidden_layers == 12

    for name in ("electra_small", "electra_base", "electra_large", "bert_small", "electra_tiny"):
        assert name in preset_names()
        config = load_config(name)
        assert (
            config.gen_weight,
            config.disc_weight,
            config.adam_epsilon,
            config.clip_norm,
            config.weight_decay_rate,
        ) == (1.0, 50.0, 1e-6, 1.0, 0.01)


def test_tiny_preset_is_small_and_overridable_vocab():
    tiny = load_config("electra_tiny", {"vocab_size": 8000, "cls_token_id": 2, "sep_token_id": 3, "mask_token_id": 4})
    assert tiny.vocab_size == 8000 and tiny.hidden_size <= 128
    assert tiny.num_warmup_steps < tiny.num_train_steps <= 1000


def test_json_round_trip(tmp_path):
    config = load_config("electra_small", {"generator_hidden_size": 1.0, "temperature": 0.5})
    path = tmp_path / "config.json"
    config.to_json_file(path)
    assert ElectraConfig.from_json_file(path) == config
    assert load_config(str(path)) == config


def test_hparams_as_json_string_file_and_dict(tmp_path):
    assert load_config("electra_small", '{"learning_rate": 1e-3}').learning_rate == 1e-3
    path = tmp_path / "hparams.json"
    path.write_text(json.dumps({"num_train_steps": 77, "mask_prob": 0.25}))
    config = load_config("electra_small", str(path))
    assert config.num_train_steps == 77 and config.max_predictions_per_seq == 32
    # An int where a float is expected is fine; 1.0 where an int is expected too.
    config = load_config("electra_small", {"learning_rate": 1, "num_train_steps": 10.0})
    assert config.learning_rate == 1.0 and config.num_train_steps == 10


def test_unknown_key_names_key_source_and_close_names(tmp_path):
    with pytest.raises(UserError) as error:
        load_config("electra_small", {"learning_rat": 1e-3})
    message = str(error.value)
    assert "learning_rat" in message and "hparams" in message and "learning_rate" in message
    assert "\n" not in message

    path = tmp_path / "hp.json"
    path.write_text('{"disc_wieght": 5}')
    with pytest.raises(UserError, match=r"hp.json: unknown config key 'disc_wieght'.*disc_weight"):
        load_config("electra_small", str(path))


def test_wrong_types_and_bad_values_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="'num_hidden_layers' must be int"):
        load_config("electra_small", {"num_hidden_layers": "12"})
    with pytest.raises(UserError, match="'electra_objective' must be bool"):
        load_config("electra_small", {"electra_objective": 1})
    with pytest.raises(UserError, match="not divisible"):
        load_config("electra_small", {"num_attention_heads": 3})
    with pytest.raises(UserError, match="mask_prob"):
        load_config("electra_small", {"mask_prob": 1.5})
    with pytest.raises(UserError, match=r"disc_bias_prior must be in \(0, 1\), got 1.0"):
        load_config("electra_small", {"disc_bias_prior": 1})
    with pytest.raises(UserError, match="invalid JSON"):
        load_config("electra_small", '{"learning_rate": }')
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "hidden_size": 256,\n  oops\n}')
    with pytest.raises(UserError, match=r"bad.json:3: invalid JSON"):
        load_config(str(bad))
    with pytest.raises(UserError, match="did you mean electra_small"):
        load_config("electra_smal")
    with pytest.raises(UserError, match="not found"):
        load_config(str(tmp_path / "missing.json"))


def test_special_token_ids_from_a_vocabulary():
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a"]
    config = load_config("electra_tiny").with_vocab(tokens)
    assert (config.vocab_size, config.pad_token_id, config.cls_token_id, config.sep_token_id, config.mask_token_id) == (
        7,
        0,
        2,
        3,
        4,
    )
    with pytest.raises(UserError, match=r"\[MASK\]"):
        load_config("electra_tiny").with_vocab(["[PAD]", "[CLS]", "[SEP]", "x"], source="vocab.txt")


def test_presets_on_disk_are_complete():
    # Every preset spells out every key, so a reader sees the whole run in one file.
    fields = set(ElectraConfig().to_dict())
    for path in CONFIGS_DIR.glob("*.json"):
        assert set(json.loads(path.read_text())) == fields, path.name
