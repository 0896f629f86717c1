"""AdamW with the reference's learning-rate schedule, weight-decay exclusions and clipping.

ElectraAdamW is keras.optimizers.AdamW with a Keras 3 behaviour changed so that an update equals
the reference's AdamWeightDecayOptimizer on the summed, global batch gradient:
  - gradients of gathered embeddings (tf.IndexedSlices under TensorFlow) are densified, summing
    duplicate rows, before clipping and the Adam update.
"""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.config import ElectraConfig

# Variables whose name matches are not decayed: biases (incl. the MLM output_bias) and
# LayerNorm scales/offsets, as in BERT and ELECTRA.
NO_WEIGHT_DECAY_PATTERNS = ("bias", "gamma", "beta", "LayerNorm", "layer_norm")


@keras.saving.register_keras_serializable(package="electra_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The reference schedule, value at optimizer step t (0-based, the step being applied):

        lr(t) = peak * (1 - min(t, T) / T) ** power * min(1, t / W)

    T = num_train_steps, W = num_warmup_steps (W = 0: no warm-up). This is ELECTRA's
    ``optimization.create_optimizer``: polynomial decay to 0 over T, multiplied by the warm-up
    ramp (so at t = W the rate is peak * (1 - W/T) ** power, not the peak).
    """

    def __init__(self, learning_rate: float, num_train_steps: int, num_warmup_steps: int = 0,
                 power: float = 1.0):
        self.learning_rate = float(learning_rate)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)
        self.power = float(power)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        total = float(self.num_train_steps)
        # (T - t) / T rather than 1 - t / T: exact near the end of training in float32.
        remaining = (total - ops.minimum(step, total)) / total
        rate = self.learning_rate * ops.power(remaining, self.power)
        if self.num_warmup_steps > 0:
            rate = rate * ops.minimum(1.0, step / float(self.num_warmup_steps))
        return rate

    def get_config(self):
        return {"learning_rate": self.learning_rate, "num_train_steps": self.num_train_steps,
                "num_warmup_steps": self.num_warmup_steps, "power": self.power}


def densify_gradient(gradient):
    """The dense gradient of an IndexedSlices-like gradient (values [n, ...], indices [n],
    dense_shape), duplicate indices summed; any other gradient (or None) unchanged.

    Keras 3's Adam squares an IndexedSlices gradient slice by slice before duplicate rows are
    summed (v += sum(g_i^2) instead of (sum g_i)^2), which also makes the update depend on how a
    batch is split over replicas. The reference densifies first. Only the TensorFlow backend
    produces such gradients (embedding lookups by gather); ops.scatter sums duplicates.
    """
    if gradient is None or not (hasattr(gradient, "indices") and hasattr(gradient, "dense_shape")):
        return gradient
    indices = ops.expand_dims(ops.cast(gradient.indices, "int32"), -1)
    return ops.scatter(indices, gradient.values, ops.cast(gradient.dense_shape, "int32"))


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraAdamW(keras.optimizers.AdamW):
    """keras.optimizers.AdamW (same arguments, config and variables) that densifies gathered
    gradients."""

    def apply(self, grads, trainable_variables=None):
        return super().apply([densify_gradient(g) for g in grads], trainable_variables)


def create_optimizer(config: ElectraConfig,
                     num_train_steps: int | None = None) -> keras.optimizers.Optimizer:
    """ElectraAdamW (betas, epsilon, weight decay from the config) with global-norm clipping.

    ``num_train_steps`` (default ``config.num_train_steps``) sets where the rate reaches 0.
    """
    steps = config.num_train_steps if num_train_steps is None else int(num_train_steps)
    schedule = WarmupPolynomialDecay(config.learning_rate, steps, config.num_warmup_steps,
                                     config.lr_decay_power)
    optimizer = ElectraAdamW(
        learning_rate=schedule, weight_decay=config.weight_decay_rate,
        beta_1=config.adam_beta1, beta_2=config.adam_beta2, epsilon=config.adam_epsilon,
        global_clipnorm=config.clip_norm if config.clip_norm > 0 else None)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY_PATTERNS))
    return optimizer
