"""The reference's optimizer: its AdamW update, learning-rate schedule, weight-decay exclusions
and clipping, for pretraining and fine-tuning alike.

ElectraAdamW applies the update of the reference's AdamWeightDecayOptimizer (model/optimization.py:
no bias correction, decoupled weight decay) to the summed, global batch gradient, which takes two
corrections to Keras 3's optimizer machinery:
  - gradients of gathered embeddings (tf.IndexedSlices under TensorFlow) are densified, summing
    duplicate rows, before clipping and the Adam update;
  - global-norm clipping sees the gradient after the cross-replica sum (see the comment on
    ClipsAfterCrossReplicaSum).
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import keras
from keras import ops
from keras.src.utils.naming import auto_name

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

    def __init__(self, learning_rate: float, num_train_steps: int, num_warmup_steps: int = 0, power: float = 1.0):
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
        return {
            "learning_rate": self.learning_rate,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
            "power": self.power,
        }


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
class ElectraAdamW(ClipsAfterCrossReplicaSum, keras.optimizers.Optimizer):
    """The reference's AdamWeightDecayOptimizer, with an optional learning-rate multiplier per
    variable. Pretraining and fine-tuning both use it.

    Each step, with g the (densified, cross-replica-summed, globally clipped) gradient:

        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g^2
        w -= lr(t) * multiplier(w) * (m / (sqrt(v) + eps) + wd(w) * w)

    There is no bias correction (Keras's and PyTorch's AdamW divide m by 1 - b1^t and v by
    1 - b2^t, which makes their first steps 0.2-0.3x the reference's). wd(w) is 0 for variables
    whose path contains one of ``exclude_from_weight_decay``.

    Args:
      learning_rate: float or schedule (the rate of variables with multiplier 1).
      weight_decay_rate: decoupled decay, scaled by the variable's own learning rate.
      beta_1, beta_2, epsilon: Adam's constants (epsilon is added to sqrt(v)).
      exclude_from_weight_decay: substrings of variable paths that are never decayed.
      learning_rate_multipliers: variable path -> multiplier (missing paths get 1.0); the
        fine-tuning's layer-wise decay.
      global_clipnorm (and Keras's other Optimizer arguments): as keras.optimizers.Optimizer.

    Example:

    >>> optimizer = ElectraAdamW(learning_rate=1e-3, weight_decay_rate=0.01, global_clipnorm=1.0)
    >>> w = keras.Variable([[1.0, 2.0]], name="kernel")
    >>> optimizer.apply([keras.ops.convert_to_tensor([[0.5, -0.5]])], [w])
    >>> [round(x, 4) for x in keras.ops.convert_to_numpy(w)[0]]  # w - lr * (3.162 sign(g) + wd w)
    [0.9968, 2.0031]
    """

    def __init__(
        self,
        learning_rate=1e-3,
        weight_decay_rate: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Sequence[str] = NO_WEIGHT_DECAY_PATTERNS,
        learning_rate_multipliers: Mapping[str, float] | None = None,
        name=None,
        **kwargs,
    ):
        # The name keras.optimizers.AdamW gets (adam_w, adam_w_1, ...), so optimizer variable
        # paths (adam_w/<variable>_momentum) and checkpoints written before this class existed
        # keep their names.
        super().__init__(learning_rate=learning_rate, name=name or auto_name("AdamW"), **kwargs)
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.exclude_from_weight_decay_patterns = tuple(exclude_from_weight_decay)
        self.learning_rate_multipliers = dict(learning_rate_multipliers or {})
        self._no_decay_regex = re.compile(
            "|".join(re.escape(p) for p in self.exclude_from_weight_decay_patterns) or "$^"
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        # Indexed like the variables, because under TensorFlow update_step receives the backend
        # variable, which no longer carries the Keras path.
        self._multipliers = [float(self.learning_rate_multipliers.get(v.path, 1.0)) for v in var_list]
        self._decays = [0.0 if self._no_decay_regex.search(v.path) else self.weight_decay_rate for v in var_list]

    def apply(self, grads, trainable_variables=None):
        """Applies one step of ``grads`` (densified first: see densify_gradient) to ``trainable_variables``."""
        # Under TensorFlow an embedding's gradient is IndexedSlices with one row per lookup;
        # squaring it row by row (v += g_i^2) before duplicate rows are summed is not Adam on
        # the batch gradient ((sum g_i)^2), so gradients are made dense before clipping.
        return super().apply([densify_gradient(g) for g in grads], trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        """Keras's per-variable hook: Adam without bias correction plus decoupled weight decay, at the variable's scaled
        learning rate."""
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        if self._multipliers[index] != 1.0:
            lr = lr * ops.cast(self._multipliers[index], variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        m = self._momentums[index]
        v = self._velocities[index]
        self.assign(m, ops.add(ops.multiply(m, self.beta_1), ops.multiply(gradient, 1.0 - self.beta_1)))
        self.assign(v, ops.add(ops.multiply(v, self.beta_2), ops.multiply(ops.square(gradient), 1.0 - self.beta_2)))
        update = ops.divide(m, ops.add(ops.sqrt(v), self.epsilon))
        decay = self._decays[index]
        if decay:
            update = ops.add(update, ops.multiply(variable, decay))
        self.assign_sub(variable, ops.multiply(update, lr))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "weight_decay_rate": self.weight_decay_rate,
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "exclude_from_weight_decay": list(self.exclude_from_weight_decay_patterns),
                "learning_rate_multipliers": self.learning_rate_multipliers,
            }
        )
        return config


def create_optimizer(config: ElectraConfig, num_train_steps: int | None = None) -> keras.optimizers.Optimizer:
    """The pretraining optimizer: ElectraAdamW with the config's betas, epsilon and weight decay,
    the reference's warm-up x polynomial-decay schedule and global-norm clipping.

    ``num_train_steps`` (default ``config.num_train_steps``) sets where the rate reaches 0.
    """
    steps = config.num_train_steps if num_train_steps is None else int(num_train_steps)
    schedule = WarmupPolynomialDecay(config.learning_rate, steps, config.num_warmup_steps, config.lr_decay_power)
    return ElectraAdamW(
        learning_rate=schedule,
        weight_decay_rate=config.weight_decay_rate,
        beta_1=config.adam_beta1,
        beta_2=config.adam_beta2,
        epsilon=config.adam_epsilon,
        global_clipnorm=config.clip_norm if config.clip_norm > 0 else None,
    )
