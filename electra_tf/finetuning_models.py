"""Task heads on the ELECTRA encoder for fine-tuning (keras.layers / keras.ops only).

  classification  dropout(0.1) + dense(num_labels) on the [CLS] vector: logits [batch, num_labels]
  regression      dropout(0.1) + dense(1) on [CLS] (STS-B): predictions [batch] = target_scale *
                  dense output, squared error on (prediction - label) / target_scale
  span            dense(2) on every token: start_logits, end_logits [batch, seq] (SQuAD); with
                  ``answerable=True`` (SQuAD 2.0) also dropout + dense(1) on [CLS]:
                  answerable_logits [batch], trained with sigmoid cross-entropy
  tagging         dense(num_labels) on every token, no dropout (as the reference's tagging head):
                  logits [batch, seq, num_labels]; cross-entropy on the positions with
                  tag_weights 1 (each word's first sub-word), summed per example

The head's variables live under ``task_specific/`` (the reference's scope), so the layer-wise
optimizer gives them the full learning rate. Their kernels start glorot-uniform, as the
reference's tf.layers.dense calls without an initializer do. ``FinetuningModel.compute_loss`` returns the task
loss summed over the global batch, as the reference sums it; labels are a dict: {"label"} (class id or float score) or {"start_position",
"end_position", "is_impossible"} for spans, {"tag_ids", "tag_weights"} [batch, seq] for tagging.
"""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.modeling import glorot_uniform

HEAD_KINDS = ("classification", "regression", "span", "tagging")


class FinetuningModel(keras.Model):
    """ElectraBackbone + one task head.

    call(features) with features {"input_ids", "input_mask", "segment_ids"} (int [batch, seq])
    returns a dict of float32 outputs (see the module docstring).
    """

    def __init__(self, backbone, head: str, num_labels: int = 2, dropout_rate: float = 0.1,
                 answerable: bool = False, target_scale: float = 1.0, **kwargs):
        kwargs.setdefault("name", "finetuning_model")
        super().__init__(**kwargs)
        if head not in HEAD_KINDS:
            raise ValueError(f"head must be one of {HEAD_KINDS}, got {head!r}")
        self.backbone = backbone
        self.head = head
        self.num_labels = int(num_labels)
        self.answerable = bool(answerable)
        self.target_scale = float(target_scale)
        hidden = backbone.hidden_size
        self.dropout = keras.layers.Dropout(dropout_rate)
        with keras.name_scope("task_specific"):
            if head == "classification":
                self.output_dense = keras.layers.Dense(
                    self.num_labels, kernel_initializer=glorot_uniform(),
                    name="classifier")
            elif head == "regression":
                self.output_dense = keras.layers.Dense(
                    1, kernel_initializer=glorot_uniform(), name="regressor")
            elif head == "tagging":
                self.output_dense = keras.layers.Dense(
                    self.num_labels, kernel_initializer=glorot_uniform(), name="tagger")
            else:
                self.output_dense = keras.layers.Dense(
                    2, kernel_initializer=glorot_uniform(), name="start_end")
                if self.answerable:
                    self.answerable_dense = keras.layers.Dense(
                        1, kernel_initializer=glorot_uniform(), name="answerable")
                    self.answerable_dense.build((None, hidden))
            self.output_dense.build((None, None, hidden) if head in ("span", "tagging")
                                    else (None, hidden))
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
            return {"predictions": self.target_scale * ops.cast(ops.squeeze(value, -1),
                                                                "float32")}
        logits = ops.cast(self.output_dense(sequence), "float32")
        # Padding can never be a span boundary.
        pad = (1.0 - ops.cast(features["input_mask"], "float32")) * -10000.0
        outputs = {"start_logits": logits[..., 0] + pad, "end_logits": logits[..., 1] + pad}
        if self.answerable:
            answerable = self.answerable_dense(self.dropout(cls, training=training))
            outputs["answerable_logits"] = ops.cast(ops.squeeze(answerable, -1), "float32")
        return outputs

    def task_loss(self, labels, outputs):
        """Per-example losses [batch] (float32)."""
        if self.head == "classification":
            return keras.losses.sparse_categorical_crossentropy(
                ops.cast(labels["label"], "int32"), outputs["logits"], from_logits=True)
        if self.head == "regression":
            # The reference's (normalised prediction - label / scale)^2.
            return ops.square((outputs["predictions"] - ops.cast(labels["label"], "float32"))
                              / self.target_scale)
        if self.head == "tagging":
            per_token = keras.losses.sparse_categorical_crossentropy(
                ops.cast(labels["tag_ids"], "int32"), outputs["logits"], from_logits=True)
            return ops.sum(per_token * ops.cast(labels["tag_weights"], "float32"), axis=-1)
        start = keras.losses.sparse_categorical_crossentropy(
            ops.cast(labels["start_position"], "int32"), outputs["start_logits"], from_logits=True)
        end = keras.losses.sparse_categorical_crossentropy(
            ops.cast(labels["end_position"], "int32"), outputs["end_logits"], from_logits=True)
        loss = (start + end) / 2.0
        if self.answerable:
            answerable = 1.0 - ops.cast(labels["is_impossible"], "float32")
            loss = loss + keras.losses.binary_crossentropy(
                ops.expand_dims(answerable, -1), ops.expand_dims(outputs["answerable_logits"], -1),
                from_logits=True)
        return loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        del x, sample_weight, training
        # Summed, not averaged, over the batch, as the reference's fine-tuning loss. Keras sums
        # the replicas' gradients, so each replica contributes its own sum: the gradient of the
        # global batch's sum on any number of replicas (no division by the replica count).
        return ops.sum(self.task_loss(y, y_pred))

    def get_config(self):
        return {"head": self.head, "num_labels": self.num_labels, "answerable": self.answerable,
                "target_scale": self.target_scale, "name": self.name}
