"""Training FLOPs of one pretraining step, counted from an ElectraConfig.

What is counted: the matrix multiplies of the model as this project computes it, each
multiply-add as 2 FLOPs, forward + backward = 3 x forward (the backward pass of a matmul is two
matmuls of the same size: one for the input gradient, one for the weight gradient). Per token
of a batch of sequences of length S:

  encoder layer      2 * (4 H^2 + 2 H I)      Q, K, V and attention output; FFN in and out
                     + 2 * 2 * S * H          attention scores (q.k) and context (p.v)
  embedding project  2 * E * H                only where E != H
  discriminator head 2 * H^2 + 2 * H          dense(H) and dense(1), on every token
                     (for discriminator_task "replace_mlm" an MLM head at the P slots
                     instead; "all_tokens_mlm" adds an MLM head on every token)

and per masked-LM slot (P = max_predictions_per_seq per sequence, every slot, used or not,
because the model computes all of them):

  MLM head           2 * H_g * E_g + 2 * E_g * V   dense(E) then the tied V x E output matrix

An ELECTRA step is the discriminator (encoder + head) plus the generator (encoder of the
generator's sizes + the MLM head at the P slots). A masked-LM step (electra_objective=false, the
BERT baseline) is the full-size encoder plus the MLM head at the P slots.

Not counted: embedding gathers, softmax, LayerNorm, GELU, dropout, biases, the loss and the
optimizer update. They are O(tokens x H) against the matmuls' O(tokens x H^2), a few percent.

How this compares with the paper's count (flops_computation.py in the reference repository, the
source of its "1.4e18 FLOPs" for ELECTRA-Small): it also counts 2 FLOPs per multiply-add and
the same matmuls, but takes backward = forward (2 x forward, not 3 x), charges the embedding
lookup as a dense one-hot matmul (2 E V per token), adds the element-wise operations, and
charges the MLM head at 15.6% (20/128) of the tokens. ``paper_training_step_flops`` reproduces
that convention so published numbers can be compared; the experiments use
``training_step_flops``, which counts what this implementation actually computes. Both count
generator and discriminator for ELECTRA, so equal-compute comparisons come out nearly the same
under either (the ratio ELECTRA / masked-LM per step differs by a few percent).
"""

from __future__ import annotations

from electra_tf.config import ElectraConfig

# Training = forward + backward, the backward pass costing two forward passes.
FORWARD_AND_BACKWARD = 3


def encoder_forward_flops_per_token(hidden: int, intermediate: int, layers: int, seq_length: int) -> float:
    """Forward matmul FLOPs per token of a BERT-style encoder (`layers` Transformer layers)."""
    projections = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * seq_length * hidden
    return float(layers * (projections + attention))


def training_step_flops(
    config: ElectraConfig, batch_size: int | None = None, seq_length: int | None = None
) -> dict[str, float]:
    """FLOPs of one training step by part, and their "total".

    batch_size / seq_length default to the config's train_batch_size / max_seq_length. Parts:
    "discriminator" (encoder + replaced-token head; ELECTRA only), "generator" (the generator
    encoder, or for the masked-LM objective the full-size encoder) and "mlm_head" (at the P
    masked-LM slots of each sequence).
    """
    batch = config.train_batch_size if batch_size is None else batch_size
    seq = config.max_seq_length if seq_length is None else seq_length
    tokens = batch * seq
    parts: dict[str, float] = {}
    if config.electra_objective:
        hidden, embedding = config.hidden_size, config.embedding_size
        discriminator = encoder_forward_flops_per_token(hidden, config.intermediate_size, config.num_hidden_layers, seq)
        if embedding != hidden:
            discriminator += 2 * embedding * hidden
        main_head = 2 * hidden * embedding + 2 * embedding * config.vocab_size
        if config.discriminator_task != "replace_mlm":  # the binary (or copy) head
            discriminator += 2 * hidden * hidden + 2 * hidden
        if config.discriminator_task == "all_tokens_mlm":  # the MLM head on every token
            discriminator += main_head
        parts["discriminator"] = FORWARD_AND_BACKWARD * discriminator * tokens
        if config.discriminator_task == "replace_mlm":  # the MLM head at the P slots
            parts["discriminator"] += FORWARD_AND_BACKWARD * main_head * batch * config.max_predictions_per_seq
    if not (config.electra_objective and config.uniform_generator):
        # config.generator_* are the full sizes when electra_objective is false.
        gen_hidden, gen_embedding = config.generator_hidden, config.generator_embedding_size
        generator = encoder_forward_flops_per_token(
            gen_hidden, config.generator_intermediate_size, config.generator_num_hidden_layers, seq
        )
        if gen_embedding != gen_hidden:
            generator += 2 * gen_embedding * gen_hidden
        parts["generator"] = FORWARD_AND_BACKWARD * generator * tokens
        slots = batch * config.max_predictions_per_seq
        head = 2 * gen_hidden * gen_embedding + 2 * gen_embedding * config.vocab_size
        parts["mlm_head"] = float(FORWARD_AND_BACKWARD * head * slots)
    parts["total"] = float(sum(parts.values()))
    return parts


# The paper script's costs of the element-wise operations, per element.
_PAPER_DROPOUT, _PAPER_LAYER_NORM, _PAPER_GELU, _PAPER_SOFTMAX = 4, 5, 8, 5
_PAPER_MLM_SHARE = 0.15625


def _paper_transformer_forward(hidden, layers, seq, vocab, embedding, intermediate, heads, head: str) -> float:
    """Forward FLOPs per sequence in the paper's convention; head is "binary" or "mlm"."""
    block = (
        2 * 3 * hidden * hidden
        + 3 * hidden  # Q, K, V + bias
        + 2 * hidden * seq
        + (_PAPER_SOFTMAX + _PAPER_DROPOUT + 1) * seq * heads
        + 2 * hidden * seq  # context
        + 2 * hidden * hidden
        + hidden
        + _PAPER_DROPOUT * hidden
        + hidden
        + _PAPER_LAYER_NORM  # as the script has it
        + 2 * hidden * intermediate
        + _PAPER_GELU * intermediate
        + intermediate
        + 2 * hidden * intermediate
        + hidden
        + _PAPER_DROPOUT * hidden
        + hidden
        + _PAPER_LAYER_NORM * hidden
    )
    inputs = (
        2 * embedding * vocab
        + 2 * embedding * (seq + 2)
        + 2 * embedding
        + _PAPER_LAYER_NORM * embedding
        + _PAPER_DROPOUT * embedding
    )
    if embedding != hidden:
        inputs += 2 * hidden * embedding + hidden
    binary = 2 * hidden * hidden + hidden + _PAPER_GELU * hidden + 2 * hidden
    mlm = (
        2 * embedding * vocab
        + 2 * hidden * embedding
        + embedding
        + _PAPER_GELU * embedding
        + _PAPER_LAYER_NORM * embedding
        + _PAPER_SOFTMAX * vocab
        + 2 * vocab
    )
    # "binary": replaced-token detection; "mlm": an MLM head at the masked share of the tokens;
    # "all_tokens_mlm": an MLM head and a copy (binary) head on every token.
    output = {"binary": binary, "mlm": _PAPER_MLM_SHARE * mlm, "all_tokens_mlm": binary + mlm}[head]
    return (layers * block + inputs + output) * seq


def paper_training_step_flops(config: ElectraConfig, batch_size: int | None = None) -> float:
    """One training step's FLOPs as the paper counts them (see the module docstring).

    Attention heads are taken as max(1, H // 64), as the paper's script does.
    """
    batch = config.train_batch_size if batch_size is None else batch_size
    seq, vocab = config.max_seq_length, config.vocab_size
    total = 0.0
    if config.electra_objective:
        total += _paper_transformer_forward(
            config.hidden_size,
            config.num_hidden_layers,
            seq,
            vocab,
            config.embedding_size,
            config.intermediate_size,
            max(1, config.hidden_size // 64),
            {"detection": "binary", "replace_mlm": "mlm"}.get(config.discriminator_task, "all_tokens_mlm"),
        )
    if not (config.electra_objective and config.uniform_generator):
        gen_hidden = config.generator_hidden
        total += _paper_transformer_forward(
            gen_hidden,
            config.generator_num_hidden_layers,
            seq,
            vocab,
            config.generator_embedding_size,
            config.generator_intermediate_size,
            max(1, gen_hidden // 64),
            "mlm",
        )
    return 2 * batch * total
