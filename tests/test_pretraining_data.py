"""Example construction (each rule of the reference, hand-checked), the protobuf encoding, and the
reader API (manifests, specs, the tf.data pipeline, shards written like the reference does)."""

import collections
import json
import random

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import example_encoding, example_packing, pretraining_dataset, pretraining_manifest
from electra_tf.errors import UserError
from electra_tf.example_encoding import ExampleEncoder, layout_examples
from electra_tf.example_packing import ExampleBuilder, pack_token_rows

CLS, SEP = 101, 102


class ScriptedRng:
    """random() and randint() answer from scripts, so each branch can be forced; all must be used."""

    def __init__(self, randoms=(), randints=()):
        self.randoms = list(randoms)
        self.randints = list(randints)
        self.randint_calls = []

    def random(self):
        assert self.randoms, "an unexpected random() draw"
        return self.randoms.pop(0)

    def randint(self, low, high):
        self.randint_calls.append((low, high))
        assert self.randints, "an unexpected randint() draw"
        return self.randints.pop(0)

    def assert_used_up(self):
        assert not self.randoms and not self.randints


def ids(start, count):
    return list(range(start, start + count))


def test_single_segment_example_takes_every_sentence_and_truncates_to_max_minus_two():
    rng = ScriptedRng(randoms=[0.05, 0.9])  # single segment; then no random target length
    builder = ExampleBuilder(16, rng)
    assert builder.add_sentence(ids(1000, 3)) is None
    assert builder.add_sentence(ids(2000, 5)) is None
    first, second = builder.add_sentence(ids(3000, 8))  # 16 >= target 16
    assert first == (ids(1000, 3) + ids(2000, 5) + ids(3000, 8))[:14]
    assert second == []
    assert builder.target_length == 16
    rng.assert_used_up()  # no 0.5 coin is drawn when A's target is unbounded


def test_two_segments_coin_flip_puts_sentence_in_a():
    # not single (0.5 >= 0.1): A's target (16 - 3) // 2 = 6.
    # s1 (3) -> A (A empty). s2 (5): 3 + 5 < 6 no; B empty and 3 < 6 -> coin 0.3 < 0.5 -> A.
    # s3 (8): A has 8 >= 6, no coin -> B.
    rng = ScriptedRng(randoms=[0.5, 0.3, 0.9])
    builder = ExampleBuilder(16, rng)
    builder.add_sentence(ids(1000, 3))
    builder.add_sentence(ids(2000, 5))
    first, second = builder.add_sentence(ids(3000, 8))
    assert first == ids(1000, 3) + ids(2000, 5)
    assert second == ids(3000, 8)[: 16 - 8 - 3]
    rng.assert_used_up()


def test_two_segments_coin_flip_puts_sentence_in_b_and_then_no_more_coins():
    # s2's coin 0.7 >= 0.5 -> B; s3: B is no longer empty, so no coin is drawn -> B.
    rng = ScriptedRng(randoms=[0.5, 0.7, 0.9])
    builder = ExampleBuilder(16, rng)
    builder.add_sentence(ids(1000, 3))
    builder.add_sentence(ids(2000, 5))
    first, second = builder.add_sentence(ids(3000, 8))
    assert first == ids(1000, 3)
    assert second == (ids(2000, 5) + ids(3000, 8))[: 16 - 3 - 3]
    rng.assert_used_up()


def test_sentences_that_fit_go_to_a_without_a_coin():
    # Target 64: A's target (64 - 3) // 2 = 30. 10 + 10 < 30 -> A without a coin; then
    # 20 + 15 >= 30, B empty, 20 < 30 -> coin 0.9 -> B; the last sentence reaches 64.
    rng = ScriptedRng(randoms=[0.2, 0.9, 0.9])
    builder = ExampleBuilder(64, rng)
    builder.add_sentence(ids(100, 10))
    builder.add_sentence(ids(200, 10))
    first, second = builder.add_sentence(ids(300, 44))
    assert first == ids(100, 10) + ids(200, 10)
    assert second == ids(300, 44)[: 64 - 20 - 3]
    rng.assert_used_up()


def test_truncation_of_a_long_first_segment_leaves_no_room_for_b():
    rng = ScriptedRng(randoms=[0.5, 0.9])
    builder = ExampleBuilder(16, rng)
    first, second = builder.add_sentence(ids(1000, 40))
    assert first == ids(1000, 14)
    assert second == []
    rng.assert_used_up()


def test_random_target_length_after_an_example():
    # 0.01 < 0.05: the next target is randint(5, 16) = 9, so a 9-token document fills an example,
    # and A's target becomes (9 - 3) // 2 = 3.
    # In the second example s1 (2) -> A; s2 (7): 2 + 7 < 3 no; B empty and 2 < 3 -> coin 0.9 -> B.
    rng = ScriptedRng(randoms=[0.5, 0.01, 0.5, 0.9, 0.9], randints=[9])
    builder = ExampleBuilder(16, rng)
    builder.add_sentence(ids(1000, 20))
    assert rng.randint_calls == [(5, 16)]
    assert builder.target_length == 9
    assert builder.add_sentence(ids(2000, 2)) is None
    first, second = builder.add_sentence(ids(3000, 7))  # 2 + 7 >= 9
    assert first == ids(2000, 2)
    assert second == ids(3000, 7)
    assert builder.target_length == 16
    rng.assert_used_up()


def test_random_target_coin_draws_exactly_as_scripted():
    # As above, but s2's coin 0.49 < 0.5 puts it in A. The scripted draws run out exactly, which
    # checks the order of the draws.
    rng = ScriptedRng(randoms=[0.5, 0.01, 0.5, 0.49, 0.9], randints=[9])
    builder = ExampleBuilder(16, rng)
    builder.add_sentence(ids(1000, 20))
    builder.add_sentence(ids(2000, 2))
    first, second = builder.add_sentence(ids(3000, 7))
    assert first == ids(2000, 2) + ids(3000, 7)  # coin 0.49 < 0.5 -> A
    assert second == []
    rng.assert_used_up()


def test_document_end_flushes_a_partial_example_and_nothing_when_empty():
    rng = ScriptedRng(randoms=[0.5, 0.9])
    builder = ExampleBuilder(16, rng)
    assert builder.end_document() is None  # nothing accumulated: no example, no draws
    assert builder.add_sentence(ids(1000, 3)) is None
    assert builder.end_document() == (ids(1000, 3), [])
    assert builder.end_document() is None
    rng.assert_used_up()


def test_pack_token_rows_flushes_at_document_ends_and_skips_empty_lines():
    rng = ScriptedRng(randoms=[0.5, 0.9, 0.5, 0.9])
    builder = ExampleBuilder(16, rng)
    flat = np.array(ids(1000, 3) + ids(2000, 2) + ids(3000, 4), dtype=np.int32)
    # line of 3, an empty-token line, line of 2, end of document, line of 4, end of file.
    rows = np.array([3, 0, 2, -1, 4, -1], dtype=np.int32)
    examples, fed = pack_token_rows(builder, flat, rows)
    assert fed == 9
    # Document 1: s1 (3) -> A; s2 (2): 3 + 2 < 6 -> A.
    assert examples == [(ids(1000, 3) + ids(2000, 2), []), (ids(3000, 4), [])]
    rng.assert_used_up()


def test_layout_segment_ids_mask_and_zero_padding():
    input_ids, input_mask, segment_ids = layout_examples([([5, 6], [7]), ([8], [])], 8, CLS, SEP)
    np.testing.assert_array_equal(input_ids[0], [CLS, 5, 6, SEP, 7, SEP, 0, 0])
    np.testing.assert_array_equal(input_mask[0], [1, 1, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(segment_ids[0], [0, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(input_ids[1], [CLS, 8, SEP, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(input_mask[1], [1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(segment_ids[1], [0] * 8)


def test_full_length_example_has_no_padding():
    input_ids, input_mask, segment_ids = layout_examples([(ids(1, 3), ids(10, 2))], 8, CLS, SEP)
    np.testing.assert_array_equal(input_ids[0], [CLS, 1, 2, 3, SEP, 10, 11, SEP])
    assert input_mask.sum() == 8
    np.testing.assert_array_equal(segment_ids[0], [0, 0, 0, 0, 0, 1, 1, 1])


def reference_example(input_ids, input_mask, segment_ids):
    """A tf.train.Example made exactly as the reference builder makes it."""

    def create_int_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    features = collections.OrderedDict()
    features["input_ids"] = create_int_feature(input_ids)
    features["input_mask"] = create_int_feature(input_mask)
    features["segment_ids"] = create_int_feature(segment_ids)
    return tf.train.Example(features=tf.train.Features(feature=features))


def test_hand_encoded_examples_parse_identically_to_tf_train_example():
    # Ids of 1, 2, 3 and 5 varint bytes, and both example shapes.
    examples = [
        ([5, 127, 128, 16383, 16384, 30521], [2**21 - 1, 2**21, 2**28 + 7]),
        ([1], []),
        (ids(200, 20), ids(9000, 5)),
    ]
    for max_seq_length in (16, 40, 200):
        encoder = ExampleEncoder(max_seq_length, CLS, SEP)
        fitted = [
            (first[: max_seq_length - 2], second[: max(0, max_seq_length - len(first) - 3)])
            for first, second in examples
        ]
        records = encoder.encode(fitted)
        arrays = layout_examples(fitted, max_seq_length, CLS, SEP)
        for row, record in enumerate(records):
            expected = reference_example(*(array[row].tolist() for array in arrays))
            assert tf.train.Example.FromString(record) == expected
            assert record == expected.SerializeToString(deterministic=True)
            parsed = tf.io.parse_single_example(
                record,
                {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in example_encoding.FEATURE_NAMES},
            )
            for name, array in zip(example_encoding.FEATURE_NAMES, arrays):
                np.testing.assert_array_equal(parsed[name].numpy(), array[row])


def test_builder_is_deterministic_for_a_seed_and_differs_between_seeds():
    stream = [ids(i * 10, (i * 7) % 23 + 1) for i in range(400)]

    def build(seed):
        builder = ExampleBuilder(32, random.Random(example_packing.partition_seed(seed, 0, 0)))
        return [example for sentence in stream if (example := builder.add_sentence(sentence))]

    assert build(1) == build(1)
    assert build(1) != build(2)


# ---------------------------------------------------------------------------------------------
# Reader API
# ---------------------------------------------------------------------------------------------


def write_reference_shard(path, rows, max_seq_length):
    """Writes a TFRecord the way the reference builder does (tf.train.Example + TFRecordWriter)."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            input_ids = [CLS] + row + [SEP]
            segment_ids = [0] * len(input_ids)
            input_mask = [1] * len(input_ids)
            pad = [0] * (max_seq_length - len(input_ids))
            example = reference_example(input_ids + pad, input_mask + pad, segment_ids + pad)
            writer.write(example.SerializeToString())


def test_reads_shards_written_like_the_reference(tmp_path):
    rows = [ids(1000 + 10 * i, 1 + i % 5) for i in range(10)]
    write_reference_shard(tmp_path / "pretrain_data.tfrecord-0-of-2", rows[:6], 8)
    write_reference_shard(tmp_path / "pretrain_data.tfrecord-1-of-2", rows[6:], 8)
    files, manifest = pretraining_dataset.resolve_pretraining_data(str(tmp_path / "pretrain_data.tfrecord-*"))
    assert manifest is None and len(files) == 2
    dataset = pretraining_dataset.make_pretraining_dataset(files, batch_size=4, max_seq_length=8, is_training=False)
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 2  # 10 records, batches of 4, the last partial one dropped
    for batch in batches:
        assert set(batch) == {"input_ids", "input_mask", "segment_ids"}
        for value in batch.values():
            assert value.dtype == np.int32 and value.shape == (4, 8)
    np.testing.assert_array_equal(batches[0]["input_ids"][0], [CLS, 1000, SEP, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(batches[0]["input_mask"][1], [1, 1, 1, 1, 0, 0, 0, 0])
    assert dataset.element_spec["input_ids"].shape == (4, 8)


def test_training_dataset_repeats_shuffles_and_shards_by_input_context(tmp_path):
    rows = [[i] for i in range(40)]
    for shard in range(4):
        write_reference_shard(tmp_path / f"shard-{shard}", rows[shard::4], 4)
    files = sorted(str(path) for path in tmp_path.iterdir())
    dataset = pretraining_dataset.make_pretraining_dataset(files, batch_size=8, max_seq_length=4, seed=3)
    seen = np.concatenate([batch["input_ids"][:, 1] for batch in dataset.take(10).as_numpy_iterator()])
    assert len(seen) == 80  # more than the 40 records: it repeats
    assert set(seen.tolist()) <= set(range(40)) and len(set(seen.tolist())) > 20
    assert seen[:40].tolist() != list(range(40))

    def pipeline_ids(num_files, pipeline_id):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        data = pretraining_dataset.make_pretraining_dataset(
            files[:num_files], 8, 4, is_training=False, input_context=context
        )
        batches = list(data.as_numpy_iterator())
        assert all(batch["input_ids"].shape == (4, 4) for batch in batches)  # per-replica batch 8 / 2
        return set(np.concatenate([batch["input_ids"][:, 1] for batch in batches]).tolist())

    # Enough files: each pipeline reads different files. One file: pipelines split its records.
    for num_files in (4, 1):
        first, second = pipeline_ids(num_files, 0), pipeline_ids(num_files, 1)
        assert first and second and not first & second


def write_manifest(directory, **fields):
    manifest = {"max_seq_length": 128, "do_lower_case": True, "vocab_size": 30522, "shards": []}
    manifest.update(fields)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_resolve_directory_with_manifest_and_errors(tmp_path):
    write_reference_shard(tmp_path / "a.tfrecord", [[1]], 8)
    write_manifest(tmp_path, shards=["a.tfrecord"], max_seq_length=8)
    files, manifest = pretraining_dataset.resolve_pretraining_data(str(tmp_path))
    assert files == [str(tmp_path / "a.tfrecord")] and manifest["max_seq_length"] == 8
    assert pretraining_manifest.read_manifest(str(tmp_path / "manifest.json"))["shards"] == ["a.tfrecord"]

    files, manifest = pretraining_dataset.resolve_pretraining_data(f"{tmp_path}/a.*,{tmp_path}/a.tfrecord")
    assert files == [str(tmp_path / "a.tfrecord")] and manifest is None

    with pytest.raises(UserError, match=r"nothing-\*: matches no files"):
        pretraining_dataset.resolve_pretraining_data(str(tmp_path / "nothing-*"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="has no manifest.json"):
        pretraining_dataset.resolve_pretraining_data(str(empty))
    write_manifest(tmp_path, shards=["a.tfrecord", "gone.tfrecord"])
    with pytest.raises(UserError, match="gone.tfrecord: listed in .*manifest.json but missing"):
        pretraining_dataset.resolve_pretraining_data(str(tmp_path))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match=r"manifest.json: not valid JSON"):
        pretraining_manifest.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"shards": []}')
    with pytest.raises(UserError, match="manifest lacks max_seq_length, do_lower_case, vocab_size"):
        pretraining_manifest.read_manifest(str(tmp_path))


def test_check_manifest_compatible_names_the_field():
    manifest = {"max_seq_length": 128, "do_lower_case": True, "vocab_size": 30522, "vocab_file": "v.txt"}
    pretraining_manifest.check_manifest_compatible(
        manifest, vocab_size=30522, do_lower_case=True, max_seq_length=128, source="d"
    )
    with pytest.raises(UserError) as error:
        pretraining_manifest.check_manifest_compatible(
            manifest, vocab_size=30522, do_lower_case=True, max_seq_length=512, source="data/manifest.json"
        )
    assert str(error.value) == (
        "data/manifest.json: built with max_seq_length 128 but the model expects 512; rebuild the data or pass "
        "--hparams '{\"max_seq_length\": 128}'"
    )
    with pytest.raises(
        UserError, match="data/manifest.json: built with a vocabulary of 30522 tokens .* vocab_size is 100"
    ):
        pretraining_manifest.check_manifest_compatible(
            manifest, vocab_size=100, do_lower_case=True, max_seq_length=128, source="data/manifest.json"
        )
    with pytest.raises(UserError, match="built with do_lower_case true but the model expects false"):
        pretraining_manifest.check_manifest_compatible(
            manifest, vocab_size=30522, do_lower_case=False, max_seq_length=128, source="m"
        )


def test_check_manifest_compatible_compares_special_token_ids():
    manifest = {
        "max_seq_length": 128,
        "do_lower_case": True,
        "vocab_size": 8000,
        "vocab_file": "v.txt",
        "special_token_ids": {"pad_token_id": 0, "cls_token_id": 2, "sep_token_id": 3, "mask_token_id": 4},
    }
    shape = dict(vocab_size=8000, do_lower_case=True, max_seq_length=128, source="m")
    pretraining_manifest.check_manifest_compatible(
        manifest, **shape, special_token_ids={"cls_token_id": 2, "mask_token_id": 4}
    )
    with pytest.raises(UserError) as error:
        pretraining_manifest.check_manifest_compatible(
            manifest, **shape, special_token_ids={"cls_token_id": 2, "mask_token_id": 103}
        )
    assert str(error.value) == (
        "m: the vocabulary (v.txt) has mask_token_id 4 but the model uses 103; pass --hparams '{\"mask_token_id\": 4}'"
    )
    # Reference-built data records no ids: nothing to compare.
    del manifest["special_token_ids"]
    pretraining_manifest.check_manifest_compatible(manifest, **shape, special_token_ids={"mask_token_id": 103})


def test_parts_path_makes_the_same_examples_and_bytes_as_the_list_path():
    """The workers' path (numpy slices, never joined into lists) against the plain list path."""
    stream = [ids(i * 50, (i * 13) % 41 + 1) for i in range(300)]
    encoder = ExampleEncoder(32, CLS, SEP)
    lists = ExampleBuilder(32, random.Random(5))
    parts = ExampleBuilder(32, random.Random(5), join_segments=False)
    # Every 17th row is a document end instead of a sentence.
    rows = np.array([len(sentence) if i % 17 else -1 for i, sentence in enumerate(stream)], dtype=np.int32)
    kept = np.concatenate([np.array(sentence, dtype=np.int32) for sentence, row in zip(stream, rows) if row > 0])
    expected, fed_lists = pack_token_rows(lists, kept, rows)
    got, fed_parts = pack_token_rows(parts, kept, rows)
    assert fed_lists == fed_parts == len(kept)
    assert len(expected) == len(got) > 20
    assert [(len(a), len(b)) for a, b in expected] == [(example[1], example[3]) for example in got]
    assert encoder.encode(expected) == encoder.encode_parts(got)
    stats_lists, stats_parts = example_packing.PackingStats(), example_packing.PackingStats()
    stats_lists.add_examples(expected, fed_lists)
    stats_parts.add_examples(got, fed_parts)
    assert stats_lists.as_dict() == stats_parts.as_dict()
