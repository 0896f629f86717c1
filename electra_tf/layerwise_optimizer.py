"""AdamW with layer-wise learning-rate decay, as ELECTRA fine-tunes (with its off-by-one fixed).

For an encoder of n layers and decay d, the task head gets the base rate lr, encoder layer i
(1-based) gets lr * d^(n - i + 1) and the embeddings (with their E->H projection) lr * d^(n + 1).
The reference's ``_get_layer_lrs`` gives every backbone variable one extra factor of d.

Adam divides the gradient by its own running scale, so multiplying the *gradients* of a layer by a
factor would leave its step unchanged; the factor has to multiply the step itself. This optimizer
does that: each variable's update is ``lr(t) * multiplier * (m / (sqrt(v) + eps) + wd * w)``, the
reference ``AdamWeightDecayOptimizer`` (no bias correction, decoupled weight decay on everything
except biases and LayerNorm parameters), with global-norm clipping from keras.optimizers.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import keras
from keras import ops

from electra_tf.optimization import (NO_WEIGHT_DECAY_PATTERNS, ClipsAfterCrossReplicaSum,
                                     WarmupPolynomialDecay, densify_gradient)


def layerwise_learning_rate_multipliers(backbone, decay: float) -> dict[str, float]:
    """Variable path -> learning-rate multiplier for every variable of ``backbone``.

    backbone: an ``ElectraBackbone`` (embeddings, optional embeddings_project, encoder_layers).
    Variables not listed (the task head) get multiplier 1.
    """
    layers = list(backbone.encoder_layers)
    depth = len(layers)
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


@keras.saving.register_keras_serializable(package="electra_tf")
class LayerwiseAdamW(ClipsAfterCrossReplicaSum, keras.optimizers.Optimizer):
    """The reference AdamW with a per-variable learning-rate multiplier.

    Args:
      learning_rate: float or schedule (the rate of the task head).
      learning_rate_multipliers: variable path -> multiplier (missing paths get 1.0).
      weight_decay_rate: decoupled decay, scaled by the variable's own learning rate.
      exclude_from_weight_decay: substrings of variable paths that are never decayed.
    """

    def __init__(self, learning_rate=1e-4, learning_rate_multipliers: Mapping[str, float] = None,
                 weight_decay_rate: float = 0.0, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-6,
                 exclude_from_weight_decay: Sequence[str] = NO_WEIGHT_DECAY_PATTERNS,
                 name: str = "layerwise_adamw", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.learning_rate_multipliers = dict(learning_rate_multipliers or {})
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.exclude_from_weight_decay_patterns = tuple(exclude_from_weight_decay)
        self._no_decay_regex = re.compile(
            "|".join(re.escape(p) for p in self.exclude_from_weight_decay_patterns) or "$^")

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        # Indexed like the variables, because under TensorFlow update_step receives the backend
        # variable, which no longer carries the Keras path.
        self._multipliers = [float(self.learning_rate_multipliers.get(v.path, 1.0))
                             for v in var_list]
        self._decays = [0.0 if self._no_decay_regex.search(v.path) else self.weight_decay_rate
                        for v in var_list]

    def apply(self, grads, trainable_variables=None):
        # Under TensorFlow an embedding's gradient is IndexedSlices with one row per lookup;
        # squaring it row by row (v += g_i^2) before duplicate rows are summed is not Adam on
        # the batch gradient ((sum g_i)^2), so gradients are made dense before clipping.
        return super().apply([densify_gradient(g) for g in grads], trainable_variables)

    def multiplier_for(self, variable) -> float:
        return self._multipliers[self._get_variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype) * ops.cast(self._multipliers[index],
                                                                 variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        m = self._momentums[index]
        v = self._velocities[index]
        self.assign(m, ops.add(ops.multiply(m, self.beta_1),
                               ops.multiply(gradient, 1.0 - self.beta_1)))
        self.assign(v, ops.add(ops.multiply(v, self.beta_2),
                               ops.multiply(ops.square(gradient), 1.0 - self.beta_2)))
        update = ops.divide(m, ops.add(ops.sqrt(v), self.epsilon))
        decay = self._decays[index]
        if decay:
            update = ops.add(update, ops.multiply(variable, decay))
        self.assign_sub(variable, ops.multiply(update, lr))

    def get_config(self):
        config = super().get_config()
        config.update({
            "learning_rate_multipliers": self.learning_rate_multipliers,
            "weight_decay_rate": self.weight_decay_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "exclude_from_weight_decay": list(self.exclude_from_weight_decay_patterns),
        })
        return config


def create_finetuning_optimizer(backbone, *, learning_rate: float, layerwise_decay: float,
                                num_train_steps: int, warmup_proportion: float = 0.1,
                                weight_decay_rate: float = 0.0, clip_norm: float = 1.0,
                                beta_1: float = 0.9, beta_2: float = 0.999,
                                epsilon: float = 1e-6) -> LayerwiseAdamW:
    """The fine-tuning optimizer: linear warm-up over ``warmup_proportion`` then linear decay."""
    schedule = WarmupPolynomialDecay(learning_rate, max(num_train_steps, 1),
                                     int(round(warmup_proportion * num_train_steps)), 1.0)
    return LayerwiseAdamW(
        learning_rate=schedule,
        learning_rate_multipliers=layerwise_learning_rate_multipliers(backbone, layerwise_decay),
        weight_decay_rate=weight_decay_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
        global_clipnorm=clip_norm if clip_norm and clip_norm > 0 else None)
