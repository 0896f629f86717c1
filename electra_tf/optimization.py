"""AdamW with the reference's learning-rate schedule, weight-decay exclusions and clipping.

ElectraAdamW is keras.optimizers.AdamW with two Keras 3 behaviours changed so that an update equals
the reference's AdamWeightDecayOptimizer on the summed, global batch gradient:
  - gradients of gathered embeddings (tf.IndexedSlices under TensorFlow) are densified, summing
    duplicate rows, before clipping and the Adam update;
  - global-norm clipping sees the gradient after the cross-replica sum (see the comment on
    ElectraAdamW._all_reduce_sum_gradients).
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


# Keras 3 on TensorFlow (keras/src/backend/tensorflow/optimizer.py) defines this hook; JAX and
# torch optimizers have none and receive gradients that are already summed over devices.
_KERAS_SUMS_ACROSS_REPLICAS = hasattr(keras.optimizers.Optimizer, "_all_reduce_sum_gradients")


class ClipsAfterCrossReplicaSum:
    """Mixin for a keras.optimizers.Optimizer subclass (list it first): clipping (clipnorm,
    global_clipnorm, clipvalue) applies to the gradient summed over replicas."""

    # Keras 3 workaround (tf.distribute): BaseOptimizer._backend_apply_gradients calls
    # _clip_gradients on each replica's gradient (already scaled by 1/num_replicas) and only then
    # TFOptimizer._backend_update_step sums the replicas with _all_reduce_sum_gradients. With R
    # replicas global_clipnorm therefore allows a summed norm of up to R * clip_norm. We skip
    # the per-replica clip and clip the summed gradient instead, so R replicas update exactly as
    # one device does on the same global batch. tests/test_distribution.py checks that Keras
    # still calls these functions in this order and that plain AdamW still clips R times too
    # loosely; when that canary fails, re-check Keras and drop this mixin.
    def _clip_gradients(self, grads):
        if _KERAS_SUMS_ACROSS_REPLICAS:
            return grads  # clipped after the sum, below
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        summed = list(super()._all_reduce_sum_gradients(grads_and_vars))
        clipped = super()._clip_gradients([gradient for gradient, _ in summed])
        return [(gradient, variable) for gradient, (_, variable) in zip(clipped, summed)]


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraAdamW(ClipsAfterCrossReplicaSum, keras.optimizers.AdamW):
    """keras.optimizers.AdamW (same arguments, config and variables) that densifies gathered
    gradients and clips the cross-replica-summed gradient."""

    def __init__(self, *args, name=None, **kwargs):
        # The name keras.optimizers.AdamW would get (adam_w, adam_w_1, ...), so optimizer variable
        # paths (adam_w/<variable>_momentum) stay as they were before this subclass.
        from keras.src.utils.naming import auto_name

        super().__init__(*args, name=name or auto_name("AdamW"), **kwargs)

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
