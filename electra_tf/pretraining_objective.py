"""Replaced-token detection: masking, generator sampling, the joint loss and its metrics.

``ElectraPretrainer`` is a keras.Model trained with ``compile(optimizer=...)`` and ``fit`` on a
dataset of feature dicts {"input_ids", "input_mask", "segment_ids"} (int [batch, seq], no
labels). One forward pass (``call``):

1. ``mask_inputs`` picks n = max(1, min(P, round(num_tokens * mask_prob))) positions per
   sequence WITHOUT replacement (``mask_with_replacement``: with, as the reference) among real
   tokens that are not [CLS]/[SEP]/[MASK]/padding
   (num_tokens counts every real token, [CLS]/[SEP] included, as the reference does); 85% of
   them become [MASK], 15% keep their token.
2. The generator predicts the original tokens at those positions only.
3. One token per position is sampled from its softmax at ``temperature`` with no gradient;
   the corrupted input has the samples at the masked positions.
4. The discriminator labels each token replaced (1) or original (0); a sample equal to the
   original counts as original.

``compute_loss`` returns gen_weight * MLM loss + disc_weight * discriminator loss and updates
the reference's metrics. With ``electra_objective=false`` (the BERT baseline) only the masked
LM is trained and only masked_lm_accuracy / masked_lm_loss are reported.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import ops

# Keras divides its own losses by the replica count under tf.distribute (it then sums replica
# gradients); there is no public name for this helper, so an upgrade that moves it fails loudly.
from keras.src.losses.loss import scale_loss_for_distribution

# save_pretrained lives with the folder format it writes; re-exported for older imports.
from electra_tf.artifacts import save_pretrained
from electra_tf.config import ElectraConfig
from electra_tf.errors import UserError
from electra_tf.modeling import (
    ElectraEmbeddings,
    build_discriminator,
    build_generator,
    load_pretrained_backbone,
    load_pretrained_discriminator,
)

__all__ = [
    "MaskedBatch",
    "mask_inputs",
    "ElectraPretrainer",
    "save_pretrained",
    "load_pretrained_backbone",
    "load_pretrained_discriminator",
]

# Share of the chosen positions that become [MASK]; the rest keep the original token.
MASK_TOKEN_SHARE = 0.85
# disc_auc's thresholds, evenly spaced in probability (steps of 1e-4).
AUC_NUM_THRESHOLDS = 10001


class MaskedBatch(NamedTuple):
    """The result of masking a batch (P = max_predictions_per_seq).

    input_ids: [batch, seq] int32, with [MASK] written at 85% of the chosen positions.
    masked_lm_positions: [batch, P] int32; slots past a sequence's n hold 0 (weight 0).
    masked_lm_ids: [batch, P] int32, the original token at each position (0 where weight 0).
    masked_lm_weights: [batch, P] float32, 1 for the n real predictions, then 0.
    """

    input_ids: object
    masked_lm_positions: object
    masked_lm_ids: object
    masked_lm_weights: object


def _static_length(tensor) -> int | None:
    length = tensor.shape[1]
    return None if length is None else int(length)


def _scatter_to_sequence(values, positions, weights, seq_length: int):
    """Writes values [batch, P] (where weights > 0) to positions [batch, P] -> [batch, seq].

    A position named by several slots (only with mask_with_replacement) gets the integer mean of
    their values, as the reference's scatter_update does (floordiv of the sum by the count).
    Returns the scattered values (int32) and the 0/1 mask of written positions (bool).
    """
    hits = ops.logical_and(
        ops.equal(ops.expand_dims(positions, -1), ops.arange(seq_length, dtype="int32")),
        ops.expand_dims(weights > 0, -1),
    )  # [batch, P, seq]
    hits_int = ops.cast(hits, "int32")
    count = ops.sum(hits_int, axis=1)
    total = ops.sum(hits_int * ops.expand_dims(ops.cast(values, "int32"), -1), axis=1)
    return ops.floor_divide(total, ops.maximum(count, 1)), count > 0


def mask_inputs(
    input_ids, input_mask, config: ElectraConfig, seed_generator, mask_prob: float | None = None
) -> MaskedBatch:
    """Chooses masked positions and writes [MASK] at 85% of them.

    input_ids, input_mask: int [batch, seq] (seq known statically). By default the positions are
    a uniformly random subset of size n of the candidates (uniform scores, top-k, the first n of
    each row: no duplicates). With ``config.mask_with_replacement`` they are n independent
    uniform draws from the candidates, as the reference samples them, so a position can be
    chosen twice (it then counts twice in the masked-LM loss, and gets [MASK] if either draw
    says so).
    """
    mask_prob = config.mask_prob if mask_prob is None else mask_prob
    input_ids = ops.cast(input_ids, "int32")
    real = ops.cast(input_mask, "int32") > 0
    seq_length = _static_length(input_ids)
    if seq_length is None:
        raise ValueError("mask_inputs needs a static sequence length (pad batches to max_seq_length)")
    num_slots = config.max_predictions_per_seq

    candidates = real
    for special in (config.cls_token_id, config.sep_token_id, config.mask_token_id, config.pad_token_id):
        candidates = ops.logical_and(candidates, ops.not_equal(input_ids, special))
    num_tokens = ops.sum(ops.cast(real, "float32"), axis=-1)
    num_to_predict = ops.maximum(1, ops.minimum(num_slots, ops.cast(ops.round(num_tokens * mask_prob), "int32")))

    if config.mask_with_replacement:
        # -1e9 rather than log(0): a row without candidates draws position 0 ([CLS]) instead of
        # NaN; its slots are then ignored like the reference's unused ones (scatters skip 0).
        logits = ops.where(candidates, 0.0, -1e9)
        positions = keras.random.categorical(logits, num_slots, seed=seed_generator, dtype="int32")
    else:
        num_to_predict = ops.minimum(num_to_predict, ops.sum(ops.cast(candidates, "int32"), axis=-1))
        scores = ops.where(candidates, keras.random.uniform(ops.shape(input_ids), seed=seed_generator), -1.0)
        top = min(num_slots, seq_length)
        _, positions = ops.top_k(scores, k=top, sorted=True)
        positions = ops.cast(positions, "int32")
        if top < num_slots:
            positions = ops.pad(positions, [[0, 0], [0, num_slots - top]])
    slot_in_use = ops.less(ops.arange(num_slots, dtype="int32"), ops.expand_dims(num_to_predict, -1))
    weights = ops.cast(slot_in_use, "float32")
    positions = positions * ops.cast(slot_in_use, "int32")
    masked_lm_ids = ops.take_along_axis(input_ids, positions, axis=1) * ops.cast(slot_in_use, "int32")

    use_mask_token = keras.random.uniform(ops.shape(weights), seed=seed_generator) < (MASK_TOKEN_SHARE)
    _, to_mask_token = _scatter_to_sequence(
        positions, positions, weights * ops.cast(use_mask_token, "float32"), seq_length
    )
    masked_ids = ops.where(to_mask_token, config.mask_token_id, input_ids)
    return MaskedBatch(masked_ids, positions, masked_lm_ids, weights)


def sample_from_logits(logits, seed_generator, temperature: float = 1.0, disallowed_ids=None):
    """One token per row of logits [..., V], drawn from softmax(logits / temperature).

    This is the distribution the reference's Gumbel-max trick samples from; drawing it with
    ``keras.random.categorical`` needs one uniform number per row instead of one per
    vocabulary entry (on the TensorFlow CPU backend that is 3x faster; on JAX it is Gumbel-max).
    ``disallowed_ids`` [...] (int) get their logit lowered by 1000, as the reference's
    disallow_correct does. Returns int32 ids [...]; no gradient flows through the result.
    """
    logits = ops.stop_gradient(ops.cast(logits, "float32"))
    vocab_size = logits.shape[-1]
    if disallowed_ids is not None:
        logits = logits - 1000.0 * ops.one_hot(disallowed_ids, vocab_size, dtype="float32")
    rows = ops.reshape(logits / temperature, (-1, vocab_size))
    samples = keras.random.categorical(rows, 1, seed=seed_generator, dtype="int32")
    return ops.reshape(samples, ops.shape(logits)[:-1])


def _softplus(x):
    # log(1 + exp(x)) without overflow.
    return ops.relu(x) + ops.log1p(ops.exp(-ops.abs(x)))


def _label_log_probs(logits, labels):
    """logits [..., V] and integer labels [...] -> log softmax(logits)[label] [...]."""
    # The fused cross-entropy (TensorFlow's SparseSoftmaxCrossEntropyWithLogits) rather than
    # log_softmax + take_along_axis, whose gradient scatters into a dense [..., V] tensor: that
    # scatter alone was ~4% of an ELECTRA-Small step on CPU.
    return -ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), logits, from_logits=True)


def _first_argmax(logits):
    """int32 [...]: the index of the first largest logit along the last axis, as argmax.

    ``ops.top_k(k=1)`` instead of ``ops.argmax``: Keras's TensorFlow argmax first rewrites every
    -0.0 (three more passes over [positions, vocabulary]; 33 ms against 8.5 on one thread for
    [320, 30522], an electra_tiny batch at sequence length 64). top_k puts the lower index first
    among equal values on both TensorFlow and JAX, so the result is argmax's.
    """
    return ops.cast(ops.top_k(ops.stop_gradient(logits), k=1)[1][..., 0], "int32")


def _weighted_mean(values, weights):
    return ops.sum(values * weights) / (ops.sum(weights) + 1e-6)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPretrainer(keras.Model):
    """Generator + discriminator sharing one embedding layer, trained jointly.

    ``call(features)`` returns a dict of float32 tensors and int32 ids:
    mlm_logits [batch, P, V], masked_lm_ids / masked_lm_positions / masked_lm_weights [batch, P],
    and with the ELECTRA objective sampled_ids [batch, P], corrupted_ids / disc_labels /
    masked_sequence_weights (1 at the masked positions) [batch, seq] and, by
    discriminator_task, disc_logits [batch, seq] (detection), main_mlm_logits [batch, P, V]
    (replace_mlm) or main_mlm_logits [batch, seq, V] + copy_logits [batch, seq] + original_ids
    (all_tokens_mlm). Metrics are ``keras.metrics`` objects kept as
    attributes, so fit/evaluate log them.

    Example:

        config = electra_tf.load_config("electra_tiny")
        model = ElectraPretrainer(config, seed=1)
        outputs = model({"input_ids": ids, "input_mask": mask, "segment_ids": types})  # int32 [batch, seq]
        model.loss_parts(outputs)["total"]  # float32 scalar, the weighted training loss
    """

    def __init__(self, config: ElectraConfig, seed: int | None = None, **kwargs):
        kwargs.setdefault("name", "electra_pretrainer")
        super().__init__(**kwargs)
        self.config = config
        self.seed_generator = keras.random.SeedGenerator(seed, name="masking_seed")
        with keras.name_scope("electra"):  # the reference keeps shared embeddings there
            self.embeddings = ElectraEmbeddings(config)
        self.generator = (
            None
            if (config.uniform_generator and config.electra_objective)
            else (build_generator(config, self.embeddings))
        )
        self.discriminator = build_discriminator(config, self.embeddings) if config.electra_objective else None

        self.masked_lm_accuracy = keras.metrics.Mean(name="masked_lm_accuracy")
        self.masked_lm_loss = keras.metrics.Mean(name="masked_lm_loss")
        self.task = config.discriminator_task if config.electra_objective else None
        if self.task in ("replace_mlm", "all_tokens_mlm"):
            self.sampled_masked_lm_accuracy = keras.metrics.Mean(name="sampled_masked_lm_accuracy")
            # The main network's loss and its accuracy at the replaced/masked positions.
            self.main_mlm_loss = keras.metrics.Mean(name="main_mlm_loss")
            self.main_mlm_accuracy = keras.metrics.Mean(name="main_mlm_accuracy")
        if self.task == "detection":
            self.sampled_masked_lm_accuracy = keras.metrics.Mean(name="sampled_masked_lm_accuracy")
            self.disc_loss = keras.metrics.Mean(name="disc_loss")
            self.disc_accuracy = keras.metrics.Mean(name="disc_accuracy")
            self.disc_precision = keras.metrics.Precision(thresholds=0.5, name="disc_precision")
            self.disc_recall = keras.metrics.Recall(thresholds=0.5, name="disc_recall")
            # The reference's 200 thresholds put an early discriminator's scores (all near the
            # replaced-token rate, ~0.13) into one or two buckets, so its AUC reads about 0.5
            # while the true AUC is well above. Evenly spaced thresholds are bucketed in one pass
            # (cost independent of their number), so 50x finer ones are nearly free.
            self.disc_auc = keras.metrics.AUC(num_thresholds=AUC_NUM_THRESHOLDS, name="disc_auc")
        self.built = True

    @property
    def backbone(self):
        """The encoder that fine-tuning starts from."""
        if self.discriminator is not None:
            return self.discriminator.backbone
        return self.generator.backbone

    def call(self, inputs, training=None):
        config = self.config
        input_mask = ops.cast(inputs["input_mask"], "int32")
        segment_ids = ops.cast(inputs["segment_ids"], "int32")
        original_ids = ops.cast(inputs["input_ids"], "int32")
        masked = mask_inputs(original_ids, input_mask, config, self.seed_generator)

        if self.generator is None:  # uniform_generator: every token equally likely
            mlm_logits = ops.zeros(ops.shape(masked.masked_lm_ids) + (config.vocab_size,), dtype="float32")
        else:
            mlm_logits = self.generator(
                {"input_ids": masked.input_ids, "input_mask": input_mask, "segment_ids": segment_ids},
                masked_positions=masked.masked_lm_positions,
                training=training,
            )
        outputs = {
            "mlm_logits": mlm_logits,
            "masked_lm_ids": masked.masked_lm_ids,
            "masked_lm_positions": masked.masked_lm_positions,
            "masked_lm_weights": masked.masked_lm_weights,
            "input_mask": ops.cast(input_mask, "float32"),
        }
        if self.discriminator is None:
            return outputs

        sampled_ids = sample_from_logits(
            mlm_logits,
            self.seed_generator,
            config.temperature,
            disallowed_ids=masked.masked_lm_ids if config.disallow_correct else None,
        )
        sampled_at_sequence, written = _scatter_to_sequence(
            sampled_ids, masked.masked_lm_positions, masked.masked_lm_weights, _static_length(original_ids)
        )
        corrupted_ids = ops.where(written, sampled_at_sequence, original_ids)
        disc_labels = ops.cast(ops.not_equal(corrupted_ids, original_ids), "float32")
        hidden = self.discriminator.backbone(
            {"input_ids": corrupted_ids, "input_mask": input_mask, "segment_ids": segment_ids}, training=training
        )
        outputs.update(
            sampled_ids=sampled_ids,
            corrupted_ids=corrupted_ids,
            disc_labels=disc_labels,
            masked_sequence_weights=ops.cast(written, "float32"),
        )
        if self.task == "detection":
            outputs["disc_logits"] = self.discriminator.detection_logits(hidden)
        elif self.task == "replace_mlm":
            outputs["main_mlm_logits"] = self.discriminator.mlm_logits(hidden, masked.masked_lm_positions)
        else:  # all_tokens_mlm
            outputs["main_mlm_logits"] = self.discriminator.mlm_logits(hidden)
            outputs["copy_logits"] = self.discriminator.detection_logits(hidden)
            outputs["original_ids"] = original_ids
        return outputs

    def loss_parts(self, outputs) -> dict:
        """Per-position/per-token losses and the two scalar objectives (float32).

        mlm_per_position [batch, P]; mlm_loss = mean over chosen positions;
        disc_per_token [batch, seq]; disc_loss = mean over real tokens; total.
        """
        weights = outputs["masked_lm_weights"]
        logits = outputs["mlm_logits"]
        mlm_per_position = -_label_log_probs(logits, outputs["masked_lm_ids"])
        parts = {"mlm_per_position": mlm_per_position, "mlm_loss": _weighted_mean(mlm_per_position, weights)}
        total = self.config.gen_weight * parts["mlm_loss"]
        if "disc_logits" in outputs:
            input_mask = outputs["input_mask"]
            disc_logits = outputs["disc_logits"]
            labels = outputs["disc_labels"]
            # Stable sigmoid cross-entropy: max(z, 0) - z * y + log(1 + exp(-|z|)).
            disc_per_token = ops.relu(disc_logits) - disc_logits * labels + ops.log1p(ops.exp(-ops.abs(disc_logits)))
            parts["disc_per_token"] = disc_per_token
            counted = input_mask
            if self.config.disc_loss_masked_only:
                counted = input_mask * outputs["masked_sequence_weights"]
            parts["disc_loss"] = _weighted_mean(disc_per_token, counted)
            total = total + self.config.disc_weight * parts["disc_loss"]
        elif "copy_logits" in outputs:  # all_tokens_mlm: every real token, with copying
            original_log_probs = _label_log_probs(outputs["main_mlm_logits"], outputs["original_ids"])
            copy_logits = outputs["copy_logits"]
            # log P = log(D + (1 - D) q) where the input is the original token, else
            # log((1 - D) q); log D = -softplus(-c), log(1 - D) = -softplus(c).
            not_copied = -_softplus(copy_logits) + original_log_probs
            copied = ops.logaddexp(-_softplus(-copy_logits), not_copied)
            is_original = 1.0 - outputs["disc_labels"]
            main_per_token = -(is_original * copied + (1.0 - is_original) * not_copied)
            parts["main_per_token"] = main_per_token
            parts["main_mlm_loss"] = _weighted_mean(main_per_token, outputs["input_mask"])
            total = total + parts["main_mlm_loss"]
        elif "main_mlm_logits" in outputs:  # replace_mlm: the masked positions, as BERT
            main_per_position = -_label_log_probs(outputs["main_mlm_logits"], outputs["masked_lm_ids"])
            parts["main_per_position"] = main_per_position
            parts["main_mlm_loss"] = _weighted_mean(main_per_position, weights)
            total = total + parts["main_mlm_loss"]
        parts["total"] = total
        return parts

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras's loss hook: updates the metrics from ``y_pred`` and returns loss_parts' scalar total, divided by the
        replica count."""
        del x, y, sample_weight, training
        parts = self.loss_parts(y_pred)
        self._update_metrics(y_pred, parts)
        # Keras sums replica gradients under tf.distribute; its own losses are pre-divided by
        # the replica count, so ours must be too (a no-op with one replica and on JAX).
        return scale_loss_for_distribution(parts["total"])

    def _update_metrics(self, outputs, parts) -> None:
        weights = outputs["masked_lm_weights"]
        masked_lm_ids = outputs["masked_lm_ids"]
        predictions = _first_argmax(outputs["mlm_logits"])
        self.masked_lm_accuracy.update_state(
            ops.cast(ops.equal(predictions, masked_lm_ids), "float32"), sample_weight=weights
        )
        self.masked_lm_loss.update_state(parts["mlm_per_position"], sample_weight=weights)
        if "sampled_ids" not in outputs:
            return
        self.sampled_masked_lm_accuracy.update_state(
            ops.cast(ops.equal(outputs["sampled_ids"], masked_lm_ids), "float32"), sample_weight=weights
        )
        if "main_mlm_loss" in parts:
            self._update_main_mlm_metrics(outputs, parts)
            return
        input_mask = outputs["input_mask"]
        per_example = ops.sum(parts["disc_per_token"] * input_mask, axis=-1) / (ops.sum(input_mask, axis=-1) + 1e-6)
        self.disc_loss.update_state(per_example)
        labels = outputs["disc_labels"]
        probabilities = ops.sigmoid(outputs["disc_logits"])
        predicted = ops.cast(outputs["disc_logits"] > 0, "float32")
        self.disc_accuracy.update_state(ops.cast(ops.equal(predicted, labels), "float32"), sample_weight=input_mask)
        self.disc_precision.update_state(labels, probabilities, sample_weight=input_mask)
        self.disc_recall.update_state(labels, probabilities, sample_weight=input_mask)
        self.disc_auc.update_state(labels, probabilities, sample_weight=input_mask)

    def _update_main_mlm_metrics(self, outputs, parts) -> None:
        weights = outputs["masked_lm_weights"]
        main_logits = outputs["main_mlm_logits"]
        if "copy_logits" in outputs:  # every position: read off the masked ones
            main_logits = ops.take_along_axis(main_logits, ops.expand_dims(outputs["masked_lm_positions"], -1), axis=1)
        predictions = _first_argmax(main_logits)
        self.main_mlm_accuracy.update_state(
            ops.cast(ops.equal(predictions, outputs["masked_lm_ids"]), "float32"), sample_weight=weights
        )
        self.main_mlm_loss.update_state(parts["main_mlm_loss"])

    def discriminator_replaced_probabilities(self, batch):
        """P(replaced) per token [batch, seq] from the discriminator for a features dict."""
        if self.discriminator is None:
            raise UserError("this model was trained with electra_objective=false and has no discriminator")
        if self.task != "detection":
            raise UserError(f"this model's discriminator_task is {self.task}, not replaced-token detection")
        return ops.sigmoid(self.discriminator(batch, training=False))

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
