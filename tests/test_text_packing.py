"""The one packer of fine-tuning and serving inputs: truncation rules and layout."""

import numpy as np
import tensorflow as tf

from electra_tf import example_encoding, text_packing

CLS, SEP = 101, 102


def _loop_truncation(length_a, length_b, budget):
    a, b = list(range(length_a)), list(range(length_b))
    while len(a) + len(b) > budget:
        (a if len(a) > len(b) else b).pop()
    return len(a), len(b)


def test_pair_lengths_is_the_closed_form_of_dropping_the_longer_texts_last_token():
    for length_a in range(0, 12):
        for length_b in range(0, 12):
            got = text_packing.pair_lengths(tf.constant([length_a], tf.int64), tf.constant([length_b], tf.int64), 7)
            assert (int(got[0][0]), int(got[1][0])) == _loop_truncation(length_a, length_b, 7)


def _ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int64, ragged_rank=1) if rows else None


def test_pack_truncates_and_lays_out_like_the_pretraining_data():
    rng = np.random.default_rng(3)
    max_seq_length = 12
    firsts = [list(rng.integers(1000, 2000, size=n)) for n in (0, 1, 5, 9, 14, 3)]
    seconds = [list(rng.integers(2000, 3000, size=n)) for n in (4, 1, 5, 2, 11, 20)]
    for pairs in (False, True):
        features = text_packing.pack(
            _ragged(firsts),
            _ragged(seconds) if pairs else None,
            cls_id=CLS,
            sep_id=SEP,
            max_seq_length=max_seq_length,
            pad_to_max_length=True,
        )
        assert all(value.shape == (6, max_seq_length) and value.dtype == tf.int32 for value in features.values())
        # The same rows cut by the plain-Python rule, laid out by the pretraining data's packer.
        cut = []
        for first, second in zip(firsts, seconds):
            if pairs:
                keep_a, keep_b = _loop_truncation(len(first), len(second), max_seq_length - 3)
                cut.append((first[:keep_a], second[:keep_b]))
            else:
                cut.append((first[: max_seq_length - 2], []))
        expected = example_encoding.layout_examples(cut, max_seq_length, CLS, SEP)
        for name, want in zip(("input_ids", "input_mask", "segment_ids"), expected):
            np.testing.assert_array_equal(features[name].numpy(), want, err_msg=name)
    # An empty second text still gets its [SEP] (the pretraining data's layout reads an empty B
    # as "no second segment" instead; fine-tuning never had that case).
    empty_b = text_packing.pack(_ragged([[5]]), _ragged([[]]), cls_id=CLS, sep_id=SEP, max_seq_length=12)
    np.testing.assert_array_equal(empty_b["input_ids"].numpy(), [[CLS, 5, SEP, SEP]])
    np.testing.assert_array_equal(empty_b["segment_ids"].numpy(), [[0, 0, 0, 1]])
    # Serving pads only to the batch's longest row; the rows are the same.
    short = text_packing.pack(_ragged([[5, 6], [7]]), cls_id=CLS, sep_id=SEP, max_seq_length=12)
    np.testing.assert_array_equal(short["input_ids"].numpy(), [[CLS, 5, 6, SEP], [CLS, 7, SEP, 0]])
    np.testing.assert_array_equal(short["input_mask"].numpy(), [[1, 1, 1, 1], [1, 1, 1, 0]])
    # Id 0 as a real token still counts as a token (the mask comes from the layout).
    zero = text_packing.pack(_ragged([[0, 0]]), cls_id=CLS, sep_id=SEP, max_seq_length=12)
    np.testing.assert_array_equal(zero["input_mask"].numpy(), [[1, 1, 1, 1]])
