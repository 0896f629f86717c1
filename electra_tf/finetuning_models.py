"""Task heads on the ELECTRA encoder for fine-tuning (keras.layers / keras.ops only).

  classification  dropout(0.1) + dense(num_labels) on the [CLS] vector: logits [batch, num_labels]
  regression      dropout(0.1) + dense(1) on [CLS] (STS-B): predictions [batch] = target_scale *
                  dense output, squared error on (prediction - label) / target_scale
  span            SQuAD, two forms (``span_head``):
    "joint"       the reference's (finetune/qa/qa_tasks.py, joint_prediction=True). Start logits
                  dense(1) on every token; end logits conditioned on a start: dense(512, gelu) over
                  [start token's hidden; each token's hidden] -> dense(1). Both are restricted to
                  the reference's answer mask: context tokens (input_mask * segment_ids, so the
                  final [SEP] too) plus [CLS]. Training conditions the end on the gold start;
                  prediction keeps a beam of the top ``beam_size`` starts and, for each, the top
                  ``beam_size`` ends: start_top_index / start_top_log_probs [batch, k],
                  end_top_index / end_top_log_probs [batch, k, k] (log-softmax values, a span's
                  score is start + end log-probability), with start_logits [batch, seq].
                  ``answerable=True`` (SQuAD 2.0): dense(512, gelu) -> dense(1) on [CLS; the
                  start-probability-weighted sum of hidden states], loss weight 0.5.
    "independent" dense(2) on every token: start_logits, end_logits [batch, seq] (padding
                  masked); ``answerable=True``: dropout + dense(1) on [CLS], loss weight 1.
                  What this project used before the joint head; kept for older fine-tuned
                  folders and as an option (--squad_head=independent).
                  Both forms output answerable_logits [batch] (positive = answerable), trained
                  with sigmoid cross-entropy against 1 - is_impossible.
  tagging         dense(num_labels) on every token, no dropout (as the reference's tagging head):
                  logits [batch, seq, num_labels]; cross-entropy on the positions with
                  tag_weights 1 (each word's first sub-word), summed per example

The head's variables live under ``task_specific/`` (the reference's scope), so the layer-wise
optimizer gives them the full learning rate. Their kernels start glorot-uniform, as the
reference's tf.layers.dense calls without an initializer do. ``FinetuningModel.compute_loss``
returns the task loss summed over the global batch, as the reference sums it; labels are a dict:
{"label"} (class id or float score) or {"start_position", "end_position", "is_impossible"} for
spans, {"tag_ids", "tag_weights"} [batch, seq] for tagging.
"""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.modeling import gelu_erf, glorot_uniform

HEAD_KINDS = ("classification", "regression", "span", "tagging")
SPAN_HEADS = ("joint", "independent")
# The reference's width of the end-given-start and answerability hidden layers.
JOINT_HIDDEN = 512
# The reference pushes tokens outside its answer mask down by this much before the softmax.
_OUTSIDE_ANSWER = -1000.0


def answer_mask(features):
    """Where a span may start or end, float32 [batch, seq]: context tokens plus [CLS].

    As the reference: input_mask * segment_ids (the context and its closing [SEP]) + [CLS].
    """
    mask = ops.cast(features["input_mask"], "float32") * ops.cast(features["segment_ids"], "float32")
    first = ops.cast(ops.arange(ops.shape(mask)[1]) == 0, "float32")
    return ops.minimum(mask + first[None, :], 1.0)


class FinetuningModel(keras.Model):
    """ElectraBackbone + one task head.

    call(features) with features {"input_ids", "input_mask", "segment_ids"} (int [batch, seq])
    returns a dict of float32 outputs (see the module docstring). The joint span head returns
    its beam when ``training`` is false, and when training the start logits with the encoder
    output ("sequence_output" [batch, seq, H], "answer_mask" [batch, seq]) from which
    ``task_loss`` conditions the end logits on the gold start.
    """

    def __init__(
        self,
        backbone,
        head: str,
        num_labels: int = 2,
        dropout_rate: float = 0.1,
        answerable: bool = False,
        target_scale: float = 1.0,
        span_head: str = "joint",
        beam_size: int = 20,
        answerable_weight: float | None = None,
        **kwargs,
    ):
        kwargs.setdefault("name", "finetuning_model")
        super().__init__(**kwargs)
        if head not in HEAD_KINDS:
            raise ValueError(f"head must be one of {HEAD_KINDS}, got {head!r}")
        if span_head not in SPAN_HEADS:
            raise ValueError(f"span_head must be one of {SPAN_HEADS}, got {span_head!r}")
        self.backbone = backbone
        self.head = head
        self.num_labels = int(num_labels)
        self.answerable = bool(answerable)
        self.target_scale = float(target_scale)
        self.span_head = span_head
        self.joint = head == "span" and span_head == "joint"
        self.beam_size = int(beam_size)
        if answerable_weight is None:
            # The reference's answerable_weight for its head; the independent head kept 1.
            answerable_weight = 0.5 if self.joint else 1.0
        self.answerable_weight = float(answerable_weight)
        hidden = backbone.hidden_size
        self.dropout = keras.layers.Dropout(dropout_rate)

        def dense(units, name, inputs, activation=None):
            layer = keras.layers.Dense(units, activation=activation, name=name, kernel_initializer=glorot_uniform())
            layer.build((None, inputs))
            return layer

        with keras.name_scope("task_specific"):
            if head == "classification":
                self.output_dense = dense(self.num_labels, "classifier", hidden)
            elif head == "regression":
                self.output_dense = dense(1, "regressor", hidden)
            elif head == "tagging":
                self.output_dense = dense(self.num_labels, "tagger", hidden)
            elif self.joint:
                self.start_dense = dense(1, "start_logits", hidden)
                self.end_hidden = dense(JOINT_HIDDEN, "end_hidden", 2 * hidden, gelu_erf)
                self.end_dense = dense(1, "end_logits", JOINT_HIDDEN)
                if self.answerable:
                    self.answerable_hidden = dense(JOINT_HIDDEN, "answerable_hidden", 2 * hidden, gelu_erf)
                    self.answerable_dense = dense(1, "answerable", JOINT_HIDDEN)
            else:
                self.output_dense = dense(2, "start_end", hidden)
                if self.answerable:
                    self.answerable_dense = dense(1, "answerable", hidden)
        self.built = True

    def call(self, features, training=None):
        if self.head == "tagging":
            logits = self.output_dense(self.backbone(features, training=training))
            return {"logits": ops.cast(logits, "float32")}
        if self.head != "span":
            # Sentence-level heads read [CLS] only; the backbone skips the rest of its last layer.
            cls = self.backbone(features, training=training, cls_only=True)[:, 0]
        else:
            sequence = self.backbone(features, training=training)
            cls = sequence[:, 0]
        if self.head == "classification":
            logits = self.output_dense(self.dropout(cls, training=training))
            return {"logits": ops.cast(logits, "float32")}
        if self.head == "regression":
            value = self.output_dense(self.dropout(cls, training=training))
            return {"predictions": self.target_scale * ops.cast(ops.squeeze(value, -1), "float32")}
        if self.joint:
            return self._joint_outputs(features, sequence, training)
        logits = ops.cast(self.output_dense(sequence), "float32")
        # Padding can never be a span boundary.
        pad = (1.0 - ops.cast(features["input_mask"], "float32")) * -10000.0
        outputs = {"start_logits": logits[..., 0] + pad, "end_logits": logits[..., 1] + pad}
        if self.answerable:
            answerable = self.answerable_dense(self.dropout(cls, training=training))
            outputs["answerable_logits"] = ops.cast(ops.squeeze(answerable, -1), "float32")
        return outputs

    def _joint_outputs(self, features, sequence, training):
        mask = answer_mask(features)
        outside = _OUTSIDE_ANSWER * (1.0 - mask)
        start_logits = ops.cast(ops.squeeze(self.start_dense(sequence), -1), "float32") + outside
        outputs = {"start_logits": start_logits}
        if self.answerable:
            # [CLS] with the hidden states weighted by the start probabilities (the reference's
            # answerable_uses_start_logits). Its dense(1) gives the reference's logit, that of
            # "unanswerable"; negated here so that positive means answerable in both heads.
            start_p = ops.cast(ops.softmax(start_logits, axis=-1), sequence.dtype)
            weighted = ops.einsum("bt,bth->bh", start_p, sequence)
            representation = ops.concatenate([sequence[:, 0], weighted], axis=-1)
            unanswerable = self.answerable_dense(self.answerable_hidden(representation))
            outputs["answerable_logits"] = -ops.cast(ops.squeeze(unanswerable, -1), "float32")
        if training:
            outputs.update(sequence_output=sequence, answer_mask=mask)
            return outputs
        length = ops.shape(start_logits)[1]
        # A dynamic length (a traced graph with trimmed or ragged batches) is a tensor; top_k
        # takes one on TensorFlow, and JAX always has the static int.
        k = min(self.beam_size, length) if isinstance(length, int) else ops.minimum(self.beam_size, length)
        start_top_log_probs, start_top_index = ops.top_k(ops.log_softmax(start_logits, axis=-1), k)
        start_vectors = ops.take_along_axis(sequence, ops.expand_dims(start_top_index, -1), axis=1)
        end_logits = self.end_logits_given_start(sequence, start_vectors, mask)
        end_top_log_probs, end_top_index = ops.top_k(ops.log_softmax(end_logits, axis=-1), k)
        outputs.update(
            start_top_index=ops.cast(start_top_index, "int32"),
            start_top_log_probs=start_top_log_probs,
            end_top_index=ops.cast(end_top_index, "int32"),
            end_top_log_probs=end_top_log_probs,
        )
        return outputs

    def end_logits_given_start(self, sequence, start_vectors, mask):
        """Joint head: end logits for each of k start representations.

        Args:
          sequence: encoder output [batch, seq, H].
          start_vectors: the hidden vectors of the chosen starts [batch, k, H].
          mask: ``answer_mask`` [batch, seq] (1 where an end is allowed).
        Returns:
          float32 [batch, k, seq]: dense(1)(gelu(dense(512)([start; token]))) for every token,
          tokens outside the mask pushed down by 1000 as the reference does.
        """
        hidden = ops.shape(sequence)[-1]
        kernel = ops.cast(self.end_hidden.kernel, sequence.dtype)
        bias = ops.cast(self.end_hidden.bias, sequence.dtype)
        # dense([start; token]) = start @ W[:H] + token @ W[H:] + b: two small matmuls broadcast
        # over (start, token) pairs instead of one over a [batch, k, seq, 2H] concatenation.
        from_start = ops.matmul(start_vectors, kernel[:hidden])
        from_token = ops.matmul(sequence, kernel[hidden:]) + bias
        joint = gelu_erf(from_start[:, :, None, :] + from_token[:, None, :, :])
        logits = ops.cast(ops.squeeze(self.end_dense(joint), -1), "float32")
        return logits + _OUTSIDE_ANSWER * (1.0 - mask[:, None, :])

    def task_loss(self, labels, outputs):
        """Per-example losses [batch] (float32).

        Args:
          labels: {"label"} [batch], or for spans {"start_position", "end_position",
            "is_impossible"} int [batch].
          outputs: ``call``'s outputs (for the joint head, from ``training=True``).
        Returns:
          float32 [batch]; spans: (start + end cross-entropy) / 2 + answerable_weight * the
          answerability sigmoid cross-entropy (SQuAD 2.0).
        """
        if self.head == "classification":
            return keras.losses.sparse_categorical_crossentropy(
                ops.cast(labels["label"], "int32"), outputs["logits"], from_logits=True
            )
        if self.head == "regression":
            # The reference's (normalised prediction - label / scale)^2.
            return ops.square((outputs["predictions"] - ops.cast(labels["label"], "float32")) / self.target_scale)
        if self.head == "tagging":
            per_token = keras.losses.sparse_categorical_crossentropy(
                ops.cast(labels["tag_ids"], "int32"), outputs["logits"], from_logits=True
            )
            return ops.sum(per_token * ops.cast(labels["tag_weights"], "float32"), axis=-1)
        start_positions = ops.cast(labels["start_position"], "int32")
        if self.joint:
            if "sequence_output" not in outputs:
                raise ValueError(
                    "the joint span head's loss needs call(..., training=True) "
                    "outputs (the end logits are conditioned on the gold start)"
                )
            sequence = outputs["sequence_output"]
            gold_start = ops.take_along_axis(sequence, start_positions[:, None, None], axis=1)
            end_logits = self.end_logits_given_start(sequence, gold_start, outputs["answer_mask"])[:, 0]
        else:
            end_logits = outputs["end_logits"]
        start = keras.losses.sparse_categorical_crossentropy(start_positions, outputs["start_logits"], from_logits=True)
        end = keras.losses.sparse_categorical_crossentropy(
            ops.cast(labels["end_position"], "int32"), end_logits, from_logits=True
        )
        loss = (start + end) / 2.0
        if self.answerable:
            answerable = 1.0 - ops.cast(labels["is_impossible"], "float32")
            loss = loss + self.answerable_weight * keras.losses.binary_crossentropy(
                ops.expand_dims(answerable, -1), ops.expand_dims(outputs["answerable_logits"], -1), from_logits=True
            )
        return loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras's loss hook: the batch's summed per-example task_loss(y, y_pred), a float32 scalar (no division by the
        replica count)."""
        del x, sample_weight, training
        # Summed, not averaged, over the batch, as the reference's fine-tuning loss. Keras sums
        # the replicas' gradients, so each replica contributes its own sum: the gradient of the
        # global batch's sum on any number of replicas (no division by the replica count).
        return ops.sum(self.task_loss(y, y_pred))

    def get_config(self):
        return {
            "head": self.head,
            "num_labels": self.num_labels,
            "answerable": self.answerable,
            "target_scale": self.target_scale,
            "span_head": self.span_head,
            "beam_size": self.beam_size,
            "answerable_weight": self.answerable_weight,
            "name": self.name,
        }
