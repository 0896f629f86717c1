"""Layer-wise learning-rate decay for fine-tuning, on the reference's AdamW (ElectraAdamW).

For an encoder of n layers and decay d, the task head gets the base rate lr and, with the
formula the paper states ("paper"), encoder layer i (1-based) gets lr * d^(n - i + 1) and the
embeddings (with their E->H projection) lr * d^(n + 1). The reference's ``_get_layer_lrs``
("reference", the default: its published numbers were made with it) gives every backbone
variable one extra factor of d: layer i lr * d^(n - i + 2), embeddings lr * d^(n + 2); its
authors call that an off-by-one (google-research/electra issues #51, #64).

Adam divides the gradient by its own running scale, so multiplying the *gradients* of a layer by a
factor would leave its step unchanged; the factor has to multiply the step itself, which is what
ElectraAdamW's ``learning_rate_multipliers`` do.
"""

from __future__ import annotations

from electra_tf.optimization import ElectraAdamW, WarmupPolynomialDecay

LAYERWISE_DECAY_FORMULAS = ("reference", "paper")


def layerwise_learning_rate_multipliers(backbone, decay: float, formula: str = "reference") -> dict[str, float]:
    """Variable path -> learning-rate multiplier for every variable of ``backbone``.

    backbone: an ``ElectraBackbone`` (embeddings, optional embeddings_project, encoder_layers).
    formula: "reference" or "paper" (module docstring). Variables not listed (the task head)
    get multiplier 1.
    """
    if formula not in LAYERWISE_DECAY_FORMULAS:
        raise ValueError(f"formula must be one of {LAYERWISE_DECAY_FORMULAS}, got {formula!r}")
    layers = list(backbone.encoder_layers)
    # The reference counts one more level between the top layer and the head.
    depth = len(layers) + (1 if formula == "reference" else 0)
    multipliers = {}
    embedding_parts = [backbone.embeddings]
    if backbone.embeddings_project is not None:
        embedding_parts.append(backbone.embeddings_project)
    for part in embedding_parts:
        for variable in part.weights:
            multipliers[variable.path] = decay ** (depth + 1)
    for index, layer in enumerate(layers, start=1):
        for variable in layer.weights:
            multipliers[variable.path] = decay ** (depth - index + 1)
    return multipliers


def create_finetuning_optimizer(
    backbone,
    *,
    learning_rate: float,
    layerwise_decay: float,
    num_train_steps: int,
    warmup_proportion: float = 0.1,
    weight_decay_rate: float = 0.0,
    clip_norm: float = 1.0,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-6,
    layerwise_decay_formula: str = "reference",
) -> ElectraAdamW:
    """The fine-tuning optimizer: linear warm-up over ``warmup_proportion`` then linear decay,
    with the layer-wise rates of ``layerwise_learning_rate_multipliers``."""
    schedule = WarmupPolynomialDecay(
        learning_rate, max(num_train_steps, 1), int(round(warmup_proportion * num_train_steps)), 1.0
    )
    return ElectraAdamW(
        learning_rate=schedule,
        learning_rate_multipliers=layerwise_learning_rate_multipliers(
            backbone, layerwise_decay, layerwise_decay_formula
        ),
        weight_decay_rate=weight_decay_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=clip_norm if clip_norm and clip_norm > 0 else None,
    )
