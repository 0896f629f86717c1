"""The training-FLOPs counter against hand counts, and the paper convention against its script."""

import pytest

from electra_tf import config as config_lib
from electra_tf import flops

# vocab 100, E 8, H 16, 2 layers, I 32, seq 10, batch 3; P = int(0.155 * 10) = 1 slot per
# sequence; generator H 4 (0.25 x 16), I 16, 2 layers, sharing the E = 8 embeddings.
SMALL = {
    "vocab_size": 100,
    "embedding_size": 8,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_seq_length": 10,
    "train_batch_size": 3,
    "pad_token_id": 0,
    "cls_token_id": 1,
    "sep_token_id": 2,
    "mask_token_id": 3,
}


def test_electra_step_matches_a_hand_count():
    config = config_lib.load_config("electra_small", SMALL)
    assert config.max_predictions_per_seq == 1 and config.generator_hidden == 4
    # Discriminator, per token, forward: per layer Q,K,V,O 4*2*16*16 = 2048, FFN 2*2*16*32 = 2048,
    # scores + context 2*2*10*16 = 640 -> 4736, x2 layers = 9472; E->H projection 2*8*16 = 256;
    # head 2*16*16 + 2*16 = 544. 10272 x 30 tokens x 3 (forward + backward) = 924480.
    # Generator: per layer 4*2*4*4 = 128, FFN 2*2*4*16 = 256, attention 2*2*10*4 = 160 -> 544,
    # x2 = 1088; projection 2*8*4 = 64. 1152 x 30 x 3 = 103680.
    # MLM head: 3 slots x (2*4*8 + 2*8*100 = 1664) x 3 = 14976.
    parts = flops.training_step_flops(config)
    assert parts == {
        "discriminator": 924480.0,
        "generator": 103680.0,
        "mlm_head": 14976.0,
        "total": 924480.0 + 103680.0 + 14976.0,
    }


def test_masked_lm_step_is_the_full_size_encoder_and_its_head():
    config = config_lib.load_config("electra_small", dict(SMALL, electra_objective=False))
    # Encoder 9472 + projection 256 = 9728 per token x 30 x 3 = 875520; head 3 slots x
    # (2*16*8 + 2*8*100 = 1856) x 3 = 16704. No discriminator.
    assert flops.training_step_flops(config) == {"generator": 875520.0, "mlm_head": 16704.0, "total": 892224.0}


def test_batch_and_length_arguments_and_the_uniform_generator():
    config = config_lib.load_config("electra_small", SMALL)
    doubled = flops.training_step_flops(config, batch_size=6)
    assert doubled["total"] == pytest.approx(2 * flops.training_step_flops(config)["total"])
    uniform = flops.training_step_flops(config.replace({"uniform_generator": True}))
    assert uniform == {"discriminator": 924480.0, "total": 924480.0}


def test_mlm_ablations_count_their_main_network_heads():
    config = config_lib.load_config("electra_small", SMALL)
    # Replace MLM: the discriminator encoder without the binary head, 9472 + 256 = 9728 per
    # token x 30 x 3 = 875520, plus an MLM head of H 16 at 3 slots: 3 x (2*16*8 + 2*8*100 =
    # 1856) x 3 = 16704. The generator and its head are unchanged.
    replace = flops.training_step_flops(config.replace({"discriminator_task": "replace_mlm"}))
    assert replace == {
        "discriminator": 875520.0 + 16704.0,
        "generator": 103680.0,
        "mlm_head": 14976.0,
        "total": 892224.0 + 103680.0 + 14976.0,
    }
    # All-Tokens MLM: the binary (copy) head 544 and the MLM head 1856 on all 30 tokens:
    # (9728 + 544 + 1856) x 30 x 3 = 1091520.
    all_tokens = flops.training_step_flops(config.replace({"discriminator_task": "all_tokens_mlm"}))
    assert all_tokens["discriminator"] == 1091520.0
    assert all_tokens["total"] == 1091520.0 + 103680.0 + 14976.0
    # The paper convention charges the MLM head on every token for All-Tokens MLM as well.
    paper = {
        task: flops.paper_training_step_flops(config.replace({"discriminator_task": task}))
        for task in ("detection", "replace_mlm", "all_tokens_mlm")
    }
    assert paper["replace_mlm"] < paper["detection"] < paper["all_tokens_mlm"]


def test_paper_convention_reproduces_the_reference_scripts_budgets():
    """The reference's flops_computation.py gives 1.294e18 for ELECTRA-Small (1M steps, batch
    128) and 1.419e18 for BERT-Small (1.45M steps); the paper rounds both to 1.4e18."""
    electra = config_lib.load_config("electra_small")
    bert = config_lib.load_config("bert_small")
    assert flops.paper_training_step_flops(electra) * 1e6 == pytest.approx(1.293743798272e18, rel=1e-9)
    assert flops.paper_training_step_flops(bert) * 1.45e6 == pytest.approx(1.4187399146496e18, rel=1e-9)
    # The matmul count is within 20% of the paper's for Small (3x vs 2x backward roughly
    # offsets the dense embedding lookups the paper charges).
    ratio = flops.training_step_flops(electra)["total"] / flops.paper_training_step_flops(electra)
    assert 0.8 < ratio < 1.2, ratio
