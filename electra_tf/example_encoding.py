"""The TFRecord wire format of pretraining examples, encoded by hand.

Each record is a tf.train.Example with three int64 features of length max_seq_length:
`input_ids`, `input_mask` and `segment_ids` (the reference's format; masking happens later, in
the training graph). Encoding the packed varints directly is several times faster than building
tf.train.Example protos and needs no TensorFlow; tests check that the bytes parse identically.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")


def layout_examples(
    examples: Sequence[tuple[list[int], list[int]]], max_seq_length: int, cls_id: int, sep_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[CLS] A [SEP] (B [SEP]) with zero padding.

    Returns input_ids, input_mask, segment_ids: int64 [num_examples, max_seq_length]; segment id 0
    up to and including the first [SEP], 1 after it; mask 1 on real tokens.
    """
    count = len(examples)
    flat: list[int] = []
    first_ends = [0] * count
    totals = [0] * count
    for row, (first, second) in enumerate(examples):
        flat.append(cls_id)
        flat += first
        flat.append(sep_id)
        first_ends[row] = len(first) + 2
        if second:
            flat += second
            flat.append(sep_id)
            totals[row] = len(first) + len(second) + 3
        else:
            totals[row] = len(first) + 2
    positions = np.arange(max_seq_length, dtype=np.int64)
    totals_column = np.asarray(totals, dtype=np.int64)[:, None]
    real = positions < totals_column
    input_ids = np.zeros((count, max_seq_length), dtype=np.int64)
    input_ids[real] = flat  # row-major order: each example's tokens in turn
    input_mask = real.astype(np.int64)
    segment_ids = ((positions >= np.asarray(first_ends, dtype=np.int64)[:, None]) & real).astype(np.int64)
    return input_ids, input_mask, segment_ids


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_varint(value) for value in range(1 << 14)]


def _length_prefix(length: int) -> bytes:
    return _SMALL_VARINTS[length] if length < (1 << 14) else _varint(length)


def _feature_entry_prefix(name: str, packed_length: int) -> bytes:
    """Protobuf bytes of a Features map entry up to its packed values.

    The entry is MapEntry{key: name (field 1), value: Feature (field 2)}, Feature.int64_list is
    field 3, Int64List.value is field 1 (packed varints).
    """
    key = name.encode("utf-8")
    int64_list_length = 1 + len(_length_prefix(packed_length)) + packed_length
    feature_length = 1 + len(_length_prefix(int64_list_length)) + int64_list_length
    key_part = 1 + len(_length_prefix(len(key))) + len(key)
    entry_length = key_part + 1 + len(_length_prefix(feature_length)) + feature_length
    return (
        b"\x0a"
        + _length_prefix(entry_length)
        + b"\x0a"
        + _length_prefix(len(key))
        + key
        + b"\x12"
        + _length_prefix(feature_length)
        + b"\x1a"
        + _length_prefix(int64_list_length)
        + b"\x0a"
        + _length_prefix(packed_length)
    )


def _varint_bytes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varint encoding of non-negative ints, row by row.

    Args:
      values: int64 [rows, columns], each in [0, 2**35).
    Returns:
      (flat uint8 [total_bytes] of all rows' encodings back to back, int64 [rows] bytes per row).
    """
    largest = int(values.max()) if values.size else 0
    if largest >= (1 << 35) or (values.size and values.min() < 0):
        raise ValueError("token ids must be in [0, 2**35) to be encoded")
    max_width = max(1, (largest.bit_length() + 6) // 7)
    widths = np.ones(values.shape, dtype=np.uint8)
    for k in range(1, max_width):
        widths += values >= (1 << (7 * k))
    groups = np.empty(values.shape + (max_width,), dtype=np.uint8)
    for k in range(max_width):
        groups[..., k] = ((values >> (7 * k)) & 0x7F) | ((widths > k + 1).astype(np.uint8) << 7)
    used = np.arange(max_width, dtype=np.uint8) < widths[..., None]
    return groups[used], widths.sum(axis=1, dtype=np.int64)


class ExampleEncoder:
    """Serialises examples as tf.train.Example protobuf bytes without TensorFlow.

    The bytes parse to the same message as tf.train.Example with int64 features input_ids,
    input_mask and segment_ids, each of length max_seq_length (keys in sorted order, as
    deterministic serialisation writes them).
    """

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int):
        self.max_seq_length = max_seq_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        # input_mask and segment_ids are 0/1: one byte per value, so their entries have fixed size.
        self._mask_prefix = _feature_entry_prefix("input_mask", max_seq_length)
        self._segment_prefix = _feature_entry_prefix("segment_ids", max_seq_length)
        self._ids_prefixes: dict[int, bytes] = {}
        self._fixed_length = len(self._mask_prefix) + len(self._segment_prefix) + 2 * max_seq_length

    def encode(self, examples: Sequence[tuple[list[int], list[int]]]) -> list[bytes]:
        """Examples (first_segment, second_segment) -> serialised tf.train.Example, one per example."""
        if not examples:
            return []
        input_ids, input_mask, segment_ids = layout_examples(examples, self.max_seq_length, self.cls_id, self.sep_id)
        return self.encode_arrays(input_ids, input_mask, segment_ids)

    def encode_parts(self, examples: Sequence[tuple[list, int, list, int]]) -> list[bytes]:
        """Like encode(), for ExampleBuilder(join_segments=False) examples (parts: 1-D int arrays)."""
        if not examples:
            return []
        count = len(examples)
        cls = np.array([self.cls_id], dtype=np.int64)
        sep = np.array([self.sep_id], dtype=np.int64)
        pieces = []
        first_ends = np.empty(count, dtype=np.int64)
        totals = np.empty(count, dtype=np.int64)
        for row, (first_parts, first_length, second_parts, second_length) in enumerate(examples):
            pieces.append(cls)
            pieces += first_parts
            pieces.append(sep)
            first_ends[row] = first_length + 2
            if second_length:
                pieces += second_parts
                pieces.append(sep)
                totals[row] = first_length + second_length + 3
            else:
                totals[row] = first_length + 2
        positions = np.arange(self.max_seq_length, dtype=np.int64)
        real = positions < totals[:, None]
        input_ids = np.zeros((count, self.max_seq_length), dtype=np.int64)
        input_ids[real] = np.concatenate(pieces)  # row-major: each example's tokens in turn
        segment_ids = (positions >= first_ends[:, None]) & real
        return self.encode_arrays(input_ids, real, segment_ids)

    def encode_arrays(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> list[bytes]:
        """input_ids, input_mask, segment_ids: int [num_examples, max_seq_length]; mask/segment 0/1."""
        flat_ids, id_lengths = _varint_bytes(np.asarray(input_ids, dtype=np.int64))
        id_bytes = flat_ids.tobytes()
        mask_bytes = np.asarray(input_mask, dtype=np.uint8).tobytes()
        segment_bytes = np.asarray(segment_ids, dtype=np.uint8).tobytes()
        length = self.max_seq_length
        mask_prefix = self._mask_prefix
        segment_prefix = self._segment_prefix
        fixed_length = self._fixed_length
        ids_prefixes = self._ids_prefixes
        records = []
        start = 0
        offset = 0
        for id_length in id_lengths.tolist():
            ids_prefix = ids_prefixes.get(id_length)
            if ids_prefix is None:
                ids_prefix = ids_prefixes[id_length] = _feature_entry_prefix("input_ids", id_length)
            features_length = len(ids_prefix) + id_length + fixed_length
            records.append(
                b"".join(
                    (
                        b"\x0a",
                        _length_prefix(features_length),
                        ids_prefix,
                        id_bytes[start : start + id_length],
                        mask_prefix,
                        mask_bytes[offset : offset + length],
                        segment_prefix,
                        segment_bytes[offset : offset + length],
                    )
                )
            )
            start += id_length
            offset += length
        return records
