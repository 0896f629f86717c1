"""[CLS] a [SEP] (b [SEP]): the one packer of fine-tuning's inputs and of the exports' signatures.

Fine-tuning (``finetuning.encode_glue``, GLUE and custom tasks) and serving
(``serving_modules.TextServingModule``) pack WordPiece ids with the same TensorFlow ops, as KerasHub's
preprocessors serve training and serving alike, so a served model sees exactly the inputs it was
trained on. The pretraining data's layout (``example_encoding.layout_examples``) is the same
layout for ids that the reference's sentence-pair sampling has already cut to length; it runs in
NumPy inside the data builder's worker processes, and a test holds the two to the same output.

Example:

    tokenizer = electra_tf.Tokenizer("vocab.txt")
    features = pack(tokenizer.tokenize(["a first text"]), tokenizer.tokenize(["a second"]),
                    cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id, max_seq_length=128)
    # features["input_ids"]: int32 [1, 9]; input_mask 1 on the 9 packed tokens;
    # segment_ids 0 up to the first [SEP], 1 after it.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf


def pair_lengths(length_a: tf.Tensor, length_b: tf.Tensor, budget: int):
    """Lengths after the reference's pair truncation: while a + b > budget, drop the last token of
    the longer text (of b on a tie). Closed form of that loop: the longer text shrinks to the
    shorter, then they shrink alternately (a keeps the odd token).

    Args:
      length_a, length_b: int64 [B], the texts' WordPiece counts.
      budget: the tokens left for both texts (max_seq_length - 3).

    Returns:
      (int64 [B], int64 [B]): the kept lengths.
    """
    budget = tf.constant(budget, tf.int64)
    half_up = (budget + 1) // 2
    cut_a = tf.minimum(length_a, tf.maximum(budget - length_b, half_up))
    fits = length_a + length_b <= budget
    new_a = tf.where(fits, length_a, cut_a)
    new_b = tf.where(fits, length_b, budget - cut_a)
    return new_a, new_b


def _truncate_rows(ragged: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
    """Keeps the first lengths[i] values of row i (ragged [B, (n)], lengths int64 [B])."""
    positions = tf.ragged.range(ragged.row_lengths())
    keep = positions.flat_values < tf.gather(lengths, positions.value_rowids())
    return tf.ragged.boolean_mask(ragged, positions.with_flat_values(keep))


def column(num_rows: tf.Tensor, value: int) -> tf.RaggedTensor:
    """[num_rows, 1] ragged int64 filled with ``value`` (a [CLS] or [SEP] beside ragged rows).

    Args:
      num_rows: int64 scalar.
      value: the id (or marker) to fill with.
    """
    return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([num_rows, 1]), tf.constant(value, tf.int64)))


def pack(
    ids_a: tf.RaggedTensor,
    ids_b: Optional[tf.RaggedTensor] = None,
    *,
    cls_id: int,
    sep_id: int,
    max_seq_length: int,
    pad_to_max_length: bool = False,
) -> dict:
    """[CLS] a [SEP] (b [SEP]) for a batch of WordPiece id rows, truncated to max_seq_length.

    A single text keeps its first max_seq_length - 2 ids; a pair is cut by ``pair_lengths``.

    Args:
      ids_a: int64 ragged [B, (n)] (Tokenizer.tokenize's output); ids_b: the same for the
        second texts, or None.
      cls_id, sep_id: the vocabulary's [CLS] and [SEP] ids.
      max_seq_length: the longest packed row.
      pad_to_max_length: pad every row to max_seq_length (fine-tuning's fixed-shape arrays);
        False pads to the batch's longest row (serving).

    Returns:
      {"input_ids", "input_mask", "segment_ids"}: int32 [B, T], T = max_seq_length or the
      longest packed row; padding is 0 in all three. The mask comes from the layout, not from
      ids != [PAD]: a vocabulary may use id 0 for a real token.
    """
    ids_a = tf.cast(ids_a, tf.int64)
    rows = ids_a.nrows(out_type=tf.int64)
    cls, sep = column(rows, cls_id), column(rows, sep_id)
    if ids_b is None:
        ids_a = ids_a[:, : max_seq_length - 2]
        parts = [cls, ids_a, sep]
        segments = [tf.zeros_like(cls), tf.zeros_like(ids_a), tf.zeros_like(sep)]
    else:
        ids_b = tf.cast(ids_b, tf.int64)
        length_a, length_b = pair_lengths(ids_a.row_lengths(), ids_b.row_lengths(), max_seq_length - 3)
        ids_a, ids_b = _truncate_rows(ids_a, length_a), _truncate_rows(ids_b, length_b)
        parts = [cls, ids_a, sep, ids_b, sep]
        segments = [
            tf.zeros_like(cls),
            tf.zeros_like(ids_a),
            tf.zeros_like(sep),
            tf.ones_like(ids_b),
            tf.ones_like(sep),
        ]
    ids = tf.concat(parts, axis=1)
    shape = [None, max_seq_length] if pad_to_max_length else None

    def dense(ragged):
        return tf.cast(ragged.to_tensor(default_value=0, shape=shape), tf.int32)

    return {
        "input_ids": dense(ids),
        "input_mask": dense(tf.ones_like(ids)),
        "segment_ids": dense(tf.concat(segments, axis=1)),
    }
