"""SQuAD reading, WordPiece character offsets, windowing and decoding on the real dev file; the
joint (reference) span head: masking, end logits conditioned on the start, its beam against a
brute-force search, the 0.5-weighted answerability loss, and head.json recording the head."""

import json
import math
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import finetuning_metrics, squad, tokenization
from electra_tf.errors import UserError

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "squad_v2"


@pytest.fixture(scope="module")
def tokenizer(bert_vocab_file):
    return tokenization.Tokenizer(str(bert_vocab_file))


@pytest.fixture(scope="module")
def dev_examples(shared_data):
    examples, info = squad.read_squad(str(shared_data / "squad" / "v1.1" / "dev-v1.1.json"), is_training=False)
    assert info == {"file": str(shared_data / "squad" / "v1.1" / "dev-v1.1.json"), "questions": 10570, "articles": 48}
    return examples


def test_piece_offsets(tokenizer):
    text = "Denver's  Broncos (AFC) won 24–10 in Ünïted States."
    pieces = squad.context_pieces(text, tokenizer)
    assert [text[s:e] for s, e in zip(pieces.starts, pieces.ends)][:6] == ["Denver", "'", "s", "Broncos", "(", "AFC"]
    tokens = tokenizer.convert_ids_to_tokens(pieces.ids)
    assert tokens == tokenizer.convert_ids_to_tokens(tokenizer.encode(text))
    for token, start, end in zip(tokens, pieces.starts, pieces.ends):
        if token != "[UNK]":
            assert text[start:end].lower().replace("ü", "u").replace("ï", "i") == token.replace("##", "")


def test_every_gold_answer_round_trips_through_windows(dev_examples, tokenizer):
    """Windows of 128 tokens with stride 32 over 6 articles: every answer that lies in a window
    is recovered from its token span as exactly the gold text, unless one of its ends falls
    inside a single WordPiece (e.g. "gold" inside "golden"), which no token span can express."""
    articles = {0, 7, 15, 23, 31, 47}
    examples = []
    for example in dev_examples:
        if example.article_index in articles:
            # One training example per gold answer.
            for answer in example.answers:
                examples.append(squad.SquadExample(example.qid, example.question, example.context, [answer]))
    settings = squad.SquadSettings(max_seq_length=128, doc_stride=32)
    features, pieces, counts = squad.featurize(examples, tokenizer, settings, is_training=True)
    assert counts.get("answers_without_pieces", 0) == 0
    windows_per_example = np.bincount([f.example_index for f in features])
    assert windows_per_example.max() > 3  # long contexts really are split
    found = {index: [] for index in range(len(examples))}
    for feature in features:
        if feature.start_position == 0:
            continue
        first = feature.piece_index[feature.start_position]
        last = feature.piece_index[feature.end_position]
        context_pieces = pieces[feature.example_index]
        context = examples[feature.example_index].context
        found[feature.example_index].append(context[context_pieces.starts[first] : context_pieces.ends[last]])
        # Labels point into the context part of the window.
        assert feature.segment_ids[feature.start_position] == 1
    exact = inside_a_piece = 0
    for index, example in enumerate(examples):
        text, start = example.answers[0]
        assert found[index], f"answer {text!r} of {example.qid} is in no window"
        assert len(set(found[index])) == 1  # every window agrees
        recovered = found[index][0]
        if recovered == text:
            exact += 1
        else:
            # The recovered span is the smallest token span covering the answer.
            assert text in recovered, (text, recovered)
            inside_a_piece += 1
    assert len(examples) > 3000
    assert inside_a_piece <= 0.005 * len(examples), inside_a_piece
    assert exact + inside_a_piece == len(examples)


def test_oracle_logits_decode_to_the_gold_answers(dev_examples, tokenizer):
    """Logits peaked at each question's first gold span decode to that exact text (EM 100 except
    answers that end inside a WordPiece), through windows, max-context and n-best."""
    examples = [e for e in dev_examples if e.article_index == 3][:150]
    training_view = [squad.SquadExample(e.qid, e.question, e.context, e.answers[:1]) for e in examples]
    settings = squad.SquadSettings(max_seq_length=128, doc_stride=48)
    labelled, _, _ = squad.featurize(training_view, tokenizer, settings, is_training=True)
    features, pieces, _ = squad.featurize(examples, tokenizer, settings, is_training=False)
    assert len(labelled) == len(features)
    start_logits = np.full((len(features), 128), -5.0, np.float32)
    end_logits = np.full((len(features), 128), -5.0, np.float32)
    for row, feature in enumerate(labelled):
        if feature.start_position:
            start_logits[row, feature.start_position] = 8.0
            end_logits[row, feature.end_position] = 8.0
    predictions, nbest, null_scores = squad.decode_predictions(
        examples, features, pieces, {"start_logits": start_logits, "end_logits": end_logits}, settings
    )
    assert set(predictions) == {e.qid for e in examples}
    scores = finetuning_metrics.squad_scores(squad.gold_answers(examples), predictions)
    assert scores["exact_match"] >= 99.0
    assert all(len(nbest[qid]) <= settings.n_best_size for qid in nbest)
    assert all(abs(sum(e["probability"] for e in entries) - 1.0) < 1e-6 for entries in nbest.values() if entries)


def test_squad_v2_fixture_reading_and_windows(tokenizer):
    train, _ = squad.read_squad(str(FIXTURES / "train-v2.0.json"), is_training=True, version="2.0")
    dev, _ = squad.read_squad(str(FIXTURES / "dev-v2.0.json"), is_training=False, version="2.0")
    assert [e.is_impossible for e in train] == [False, False, True, False, True]
    assert dev[0].answer_texts == ["France", "France", "a region in France"]
    assert squad.gold_answers(dev)["5ad39d53604f3c001a3fe8d1"] == []
    settings = squad.SquadSettings(max_seq_length=64, doc_stride=16, max_query_length=16)
    features, pieces, _ = squad.featurize(train, tokenizer, settings, is_training=True)
    for feature in features:
        example = train[feature.example_index]
        if example.is_impossible:
            assert (feature.start_position, feature.end_position) == (0, 0)
            assert feature.is_impossible
        elif feature.start_position:
            first = feature.piece_index[feature.start_position]
            last = feature.piece_index[feature.end_position]
            p = pieces[feature.example_index]
            assert example.context[p.starts[first] : p.ends[last]] == example.answers[0][0]
    assert any(f.start_position for f in features)
    inputs, labels = squad.feature_arrays(features)
    assert inputs["input_ids"].shape == (len(features), 64)
    assert labels["is_impossible"].sum() == sum(f.is_impossible for f in features)


def _reference_windows(num_pieces, window_length, doc_stride):
    """The reference's loop: (start, length) of each window and each covered piece's max-context
    flag (the first window with the highest min(left, right) + 0.01 * length)."""
    starts, start = [], 0
    while True:
        starts.append(start)
        if start + window_length >= num_pieces:
            break
        start += min(window_length, doc_stride)
    sizes = [min(window_length, num_pieces - start) for start in starts]
    flags = []
    for window, (start, size) in enumerate(zip(starts, sizes)):
        row = []
        for piece in range(start, start + size):
            scores = [
                (min(piece - s, s + n - 1 - piece) + 0.01 * n, -other)
                for other, (s, n) in enumerate(zip(starts, sizes))
                if s <= piece < s + n
            ]
            row.append(-max(scores)[1] == window)
        flags.append(row)
    return list(zip(starts, sizes)), flags


def test_windows_follow_the_reference_loop(tokenizer):
    """squad.windows (the one windowing of fine-tuning and export) against the reference's
    Python loop: window starts every min(length, stride) pieces, the stride never skipping a
    piece, and the max-context flags; the question is cut to max_query_length."""
    word = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho"
    words = word.split()
    contexts = [" ".join(words[:n]) for n in (0, 1, 3, 9, 10, 16)] + [" ".join(words * 3)]
    question = "who is it and what and where and when"
    for max_seq_length, stride, query in ((16, 3, 5), (16, 8, 4), (20, 40, 64)):
        settings = squad.SquadSettings(max_seq_length=max_seq_length, doc_stride=stride, max_query_length=query)
        found = squad.windows(tf.constant([question] * len(contexts)), tf.constant(contexts), tokenizer, settings)
        question_length = min(query, len(tokenizer.encode(question)))
        window_example = found.window_example.numpy()
        for example, context in enumerate(contexts):
            num_pieces = len(tokenizer.encode(context)) if context else 0
            assert int(found.pieces[example].shape[0]) == num_pieces
            expected, flags = _reference_windows(num_pieces, max_seq_length - question_length - 3, stride)
            rows = np.flatnonzero(window_example == example)
            assert len(rows) == len(expected), (context, settings)
            for row, (start, size), want in zip(rows, expected, flags):
                index = found.piece_index[row].numpy()
                context_part = index[index >= 0]
                assert context_part.tolist() == list(range(start, start + size))
                assert found.max_context[row].numpy()[index >= 0].tolist() == want
                segments = found.features["segment_ids"][row].numpy()
                mask = found.features["input_mask"][row].numpy()
                # [CLS] question [SEP] | window [SEP]
                assert segments.tolist()[: mask.sum()] == [0] * (question_length + 2) + [1] * (size + 1)


def test_bad_squad_files(tmp_path):
    good = json.loads((FIXTURES / "train-v2.0.json").read_text())
    good["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 3
    path = tmp_path / "train.json"
    path.write_text(json.dumps(good, indent=1))
    with pytest.raises(UserError) as error:
        squad.read_squad(str(path), is_training=True, version="2.0")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:") and "56ddde6b9a695914005b9628" in message
    assert "does not match its context" in message
    # Evaluation does not need offsets.
    squad.read_squad(str(path), is_training=False, version="2.0")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(UserError, match="file is empty"):
        squad.read_squad(str(tmp_path / "empty.json"), is_training=False)
    (tmp_path / "broken.json").write_text('{"data": [\n  {"title": }\n]}')
    with pytest.raises(UserError, match=r"broken.json:2: invalid JSON"):
        squad.read_squad(str(tmp_path / "broken.json"), is_training=False)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(UserError, match="not a SQuAD file"):
        squad.read_squad(str(tmp_path / "list.json"), is_training=False)


# ---------------------------------------------------------------------------------------------
# The joint span head


def _tiny_span_model(span_head="joint", answerable=True, seed=0):
    import keras

    from electra_tf import config as config_lib
    from electra_tf import finetuning_models, modeling

    keras.utils.set_random_seed(seed)
    # No dropout, so training=True outputs are deterministic and comparable with NumPy.
    config = config_lib.load_config(
        "electra_tiny", {"num_hidden_layers": 1, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    )
    return config, finetuning_models.FinetuningModel(
        modeling.ElectraBackbone(config), "span", answerable=answerable, span_head=span_head, dropout_rate=0.0
    )


def _window_batch(seq=16, context_from=6, lengths=(16, 12, 14)):
    """[CLS] question [SEP] context [SEP] windows: segment 1 from ``context_from``, padding after
    each row's length."""
    rng = np.random.default_rng(1)
    batch = len(lengths)
    features = {
        "input_ids": rng.integers(1000, 5000, (batch, seq)).astype(np.int32),
        "input_mask": np.zeros((batch, seq), np.int32),
        "segment_ids": np.zeros((batch, seq), np.int32),
    }
    for row, length in enumerate(lengths):
        features["input_ids"][row, 0] = 101
        features["input_ids"][row, context_from - 1] = features["input_ids"][row, length - 1] = 102
        features["input_ids"][row, length:] = 0
        features["input_mask"][row, :length] = 1
        features["segment_ids"][row, context_from:length] = 1
    return features


def test_joint_head_masks_everything_but_the_context_and_cls():
    from electra_tf import finetuning_models

    _, model = _tiny_span_model()
    features = _window_batch()
    mask = np.asarray(finetuning_models.answer_mask(features))
    # [CLS], the context and its closing [SEP] (segment 1, as the reference's answer_mask).
    expected = np.zeros_like(mask)
    expected[:, 0] = 1
    expected[features["segment_ids"] == 1] = 1
    np.testing.assert_array_equal(mask, expected)
    assert mask[1, 11] == 1 and mask[1, 12] == 0 and mask[0, 5] == 0
    outputs = model(features, training=False)
    raw = np.asarray(model.start_dense(model.backbone(features, training=False)))[..., 0]
    start = np.asarray(outputs["start_logits"])
    np.testing.assert_allclose(start - raw, np.where(mask > 0, 0.0, -1000.0), atol=1e-3)
    # Beam entries at masked positions carry the -1000 (only where fewer positions are allowed
    # than the beam holds), the allowed ones a real log-probability.
    start_allowed = np.take_along_axis(mask, np.asarray(outputs["start_top_index"]), axis=1)
    end_allowed = np.take_along_axis(
        np.broadcast_to(mask[:, None, :], (3, 16, 16)), np.asarray(outputs["end_top_index"]), axis=2
    )
    for allowed, log_probs in (
        (start_allowed, outputs["start_top_log_probs"]),
        (end_allowed, outputs["end_top_log_probs"]),
    ):
        log_probs = np.asarray(log_probs)
        assert np.all(log_probs[allowed == 0] < -500) and np.all(log_probs[allowed == 1] > -100)
        # The beam ranks every allowed position above every masked one.
        assert np.all(np.diff(allowed, axis=-1) <= 0)


def test_joint_end_logits_depend_on_the_start_and_the_beam_is_the_reference_s():
    import keras

    _, model = _tiny_span_model(answerable=False)
    features = _window_batch()
    sequence = model.backbone(features, training=False)
    from electra_tf import finetuning_models

    mask = finetuning_models.answer_mask(features)
    at = lambda positions: keras.ops.take_along_axis(  # noqa: E731
        sequence, np.array(positions, np.int32)[:, :, None], axis=1
    )
    first = np.asarray(model.end_logits_given_start(sequence, at([[7]] * 3), mask))[:, 0]
    second = np.asarray(model.end_logits_given_start(sequence, at([[9]] * 3), mask))[:, 0]
    allowed = np.asarray(mask) > 0
    assert np.abs(first - second)[allowed].min() > 1e-4
    # Training conditions the end on the gold start: only the end loss moves with it.
    outputs = model(features, training=True)
    labels = {"end_position": np.array([8, 8, 8]), "is_impossible": np.zeros(3, np.int32)}
    loss_7 = np.asarray(model.task_loss(dict(labels, start_position=np.array([7, 7, 7])), outputs))
    loss_9 = np.asarray(model.task_loss(dict(labels, start_position=np.array([9, 9, 9])), outputs))

    def start_ce(position):
        return -np.asarray(keras.ops.log_softmax(outputs["start_logits"]))[:, position]

    def end_ce(logits):
        return -np.asarray(keras.ops.log_softmax(logits))[:, 8]

    np.testing.assert_allclose(loss_7, (start_ce(7) + end_ce(first)) / 2, rtol=1e-5)
    np.testing.assert_allclose(loss_9, (start_ce(9) + end_ce(second)) / 2, rtol=1e-5)
    # The beam: the top starts by log-probability and, for each, its own top ends.
    beam = model(features, training=False)
    start_lp = np.asarray(keras.ops.log_softmax(beam["start_logits"]))
    np.testing.assert_allclose(np.sort(start_lp, axis=1)[:, ::-1], beam["start_top_log_probs"], atol=1e-5)
    chosen = np.asarray(beam["start_top_index"])
    ends = np.asarray(keras.ops.log_softmax(model.end_logits_given_start(sequence, at(chosen), mask)))
    np.testing.assert_allclose(np.sort(ends, axis=2)[:, :, ::-1], beam["end_top_log_probs"], atol=1e-5)
    np.testing.assert_array_equal(
        np.take_along_axis(ends, np.asarray(beam["end_top_index"]), 2), beam["end_top_log_probs"]
    )


def _feature(seq, context_from, context_length, max_context=None, example_index=0):
    piece_index = np.full(seq, -1, np.int32)
    piece_index[context_from : context_from + context_length] = np.arange(context_length)
    flags = np.zeros(seq, bool)
    flags[context_from : context_from + context_length] = True if max_context is None else max_context
    zeros = np.zeros(seq, np.int32)
    return squad.SquadFeature(example_index, 0, zeros, zeros, zeros, piece_index, flags)


def _brute_force(feature, start_lp, end_lp, max_answer_length):
    """The best valid (start, end) over every pair and its score (start + end log-prob)."""
    best = (-math.inf, None)
    for s in range(len(start_lp)):
        if feature.piece_index[s] < 0 or not feature.max_context[s]:
            continue
        for e in range(s, min(len(start_lp), s + max_answer_length)):
            if feature.piece_index[e] >= 0:
                score = float(np.float32(start_lp[s]) + np.float32(end_lp[s, e]))
                if score > best[0]:
                    best = (score, (s, e))
    return best


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_joint_beam_decoding_matches_a_brute_force_search_on_random_logits():
    """Random start and end-given-start log-probabilities over 40 tokens, beam 20: whenever the
    brute-force best span's start is in the top 20 starts and its end in that start's top 20
    ends, decode_predictions returns exactly it with the same score; otherwise it returns a span
    no better. With the beam as wide as the window it always finds it."""
    rng = np.random.default_rng(0)
    settings = squad.SquadSettings(max_seq_length=40, n_best_size=20, max_answer_length=6)
    seq, context_from, context_length = 40, 9, 29
    in_beam = 0
    for trial in range(30):
        beam = 40 if trial % 3 == 0 else 20
        max_context = rng.random(context_length) < 0.8
        feature = _feature(seq, context_from, context_length, max_context)
        # Distinct characters per piece: a span's text identifies it.
        context = "".join(chr(0x4E00 + i) for i in range(context_length))
        pieces = squad.ContextPieces(
            list(range(context_length)), list(range(context_length)), list(range(1, context_length + 1))
        )
        start_lp = _log_softmax(rng.normal(0, 2, seq)).astype(np.float32)
        end_lp = _log_softmax(rng.normal(0, 2, (seq, seq))).astype(np.float32)
        top_starts = np.argsort(-start_lp, kind="stable")[:beam]
        top_ends = np.argsort(-end_lp[top_starts], axis=1, kind="stable")[:, :beam]
        outputs = {
            "start_top_index": top_starts[None],
            "start_top_log_probs": start_lp[top_starts][None],
            "end_top_index": top_ends[None],
            "end_top_log_probs": np.take_along_axis(end_lp[top_starts], top_ends, 1)[None],
        }
        example = squad.SquadExample("q", "?", context, [])
        predictions, nbest, _ = squad.decode_predictions([example], [feature], [pieces], outputs, settings)
        score, (s, e) = _brute_force(feature, start_lp, end_lp, settings.max_answer_length)
        got = nbest["q"][0]
        if s in top_starts and e in top_ends[list(top_starts).index(s)]:
            in_beam += 1
            assert predictions["q"] == context[s - context_from : e - context_from + 1]
            assert got["score"] == pytest.approx(score, abs=1e-6)
        else:
            assert beam < seq and got["score"] <= score + 1e-6
    assert in_beam >= 20, in_beam


def test_joint_model_and_decoder_find_the_brute_force_best_span():
    """The tiny model's own beam (20 >= the 16-token window, so complete) decodes to the span
    that a search over every start, with the end logits recomputed for that start, finds."""
    import keras

    from electra_tf import finetuning_models

    _, model = _tiny_span_model(answerable=False)
    features = _window_batch()
    outputs = {k: np.asarray(v) for k, v in model(features, training=False).items()}
    sequence = model.backbone(features, training=False)
    mask = finetuning_models.answer_mask(features)
    every_start = np.broadcast_to(np.arange(16, dtype=np.int32), (3, 16))
    end_lp = np.asarray(
        keras.ops.log_softmax(
            model.end_logits_given_start(
                sequence, keras.ops.take_along_axis(sequence, every_start[:, :, None], axis=1), mask
            )
        )
    )
    start_lp = np.asarray(keras.ops.log_softmax(outputs["start_logits"]))
    settings = squad.SquadSettings(max_seq_length=16, max_answer_length=5)
    for row, length in enumerate((16, 12, 14)):
        feature = _feature(16, 6, length - 7, example_index=0)
        context = "".join(chr(0x4E00 + i) for i in range(length - 7))
        pieces = squad.ContextPieces([0] * len(context), list(range(len(context))), list(range(1, len(context) + 1)))
        one = {k: v[row : row + 1] for k, v in outputs.items()}
        _, nbest, null_scores = squad.decode_predictions(
            [squad.SquadExample("q", "?", context, [])], [feature], [pieces], one, settings
        )
        score, (s, e) = _brute_force(feature, start_lp[row], end_lp[row], 5)
        assert nbest["q"][0]["text"] == context[s - 6 : e - 6 + 1]
        assert nbest["q"][0]["score"] == pytest.approx(score, abs=1e-5)
        assert null_scores["q"] == 0.0  # no answerability head: SQuAD 1.1


def _gelu(x):
    return x * 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def test_joint_answerability_loss_is_the_reference_s_at_weight_half():
    """SQuAD 2.0 loss = (start CE + end CE | gold start) / 2 + 0.5 * sigmoid CE of the
    answerability classifier on [CLS; start-probability-weighted hidden], recomputed in NumPy;
    the decoder's no-answer score is minus the largest answerable logit over the windows."""
    _, model = _tiny_span_model()
    features = _window_batch()
    labels = {
        "start_position": np.array([0, 7, 9]),
        "end_position": np.array([0, 10, 9]),
        "is_impossible": np.array([1, 0, 0]),
    }
    outputs = model(features, training=True)
    loss = np.asarray(model.task_loss(labels, outputs))
    sequence = np.asarray(outputs["sequence_output"], np.float64)
    start_logits = np.asarray(outputs["start_logits"], np.float64)
    start_p = np.exp(_log_softmax(start_logits))
    representation = np.concatenate([sequence[:, 0], np.einsum("bt,bth->bh", start_p, sequence)], axis=-1)
    weights = {v.path: np.asarray(v, np.float64) for v in model.weights}
    hidden = _gelu(
        representation @ weights["task_specific/answerable_hidden/kernel"]
        + weights["task_specific/answerable_hidden/bias"]
    )
    # The reference's logit is that of "unanswerable"; is_impossible is its label.
    unanswerable = (hidden @ weights["task_specific/answerable/kernel"] + weights["task_specific/answerable/bias"])[
        :, 0
    ]
    np.testing.assert_allclose(-np.asarray(outputs["answerable_logits"]), unanswerable, rtol=1e-4, atol=1e-5)
    z, y = unanswerable, labels["is_impossible"]
    answerable_loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    rows = np.arange(3)
    gold_start = np.asarray(outputs["sequence_output"])[rows, labels["start_position"]][:, None]
    end = np.asarray(
        model.end_logits_given_start(outputs["sequence_output"], gold_start, outputs["answer_mask"]), np.float64
    )[:, 0]
    span = (
        -_log_softmax(start_logits)[rows, labels["start_position"]] - _log_softmax(end)[rows, labels["end_position"]]
    ) / 2
    np.testing.assert_allclose(loss, span + 0.5 * answerable_loss, rtol=1e-4)
    assert model.answerable_weight == 0.5
    # Decoding: two windows of one question; the no-answer score is -max(answerable).
    beam = {k: np.asarray(v) for k, v in model(features, training=False).items()}
    windows = [
        _feature(16, 6, 5, example_index=0),
        _feature(16, 6, 5, example_index=0),
        _feature(16, 6, 5, example_index=1),
    ]
    examples = [squad.SquadExample("a", "?", "abcde", []), squad.SquadExample("b", "?", "abcde", [])]
    pieces = [squad.ContextPieces([0] * 5, list(range(5)), list(range(1, 6)))] * 2
    _, _, null_scores = squad.decode_predictions(
        examples, windows, pieces, beam, squad.SquadSettings(max_seq_length=16)
    )
    assert null_scores["a"] == pytest.approx(-float(beam["answerable_logits"][:2].max()))
    assert null_scores["b"] == pytest.approx(-float(beam["answerable_logits"][2]))


def test_head_json_records_the_span_head_and_old_folders_load_as_independent(tmp_path):
    from electra_tf import finetuning, finetuning_tasks

    task = finetuning_tasks.parse_task_list("squad-v2.0")[0]
    features = _window_batch()
    for span_head in ("joint", "independent"):
        config, model = _tiny_span_model(span_head)
        directory = tmp_path / span_head
        finetuning._save_finetuned(model, config, task, str(directory), 16)
        head = json.loads((directory / "head.json").read_text())
        assert (head["span_head"], head["beam_size"]) == (span_head, 20)
        _, loaded = finetuning.load_finetuned(str(directory))
        assert loaded.span_head == span_head
        ours, theirs = model(features, training=False), loaded(features, training=False)
        assert set(ours) == set(theirs)
        for name in ours:
            np.testing.assert_allclose(np.asarray(ours[name]), np.asarray(theirs[name]), atol=1e-5)
    # A folder written before the joint head existed has no "span_head": its weights are the
    # independent head's.
    del head["span_head"], head["beam_size"]
    (directory / "head.json").write_text(json.dumps(head))
    _, loaded = finetuning.load_finetuned(str(directory))
    assert loaded.span_head == "independent" and "end_logits" in loaded(features)


class _FixedOutputs:
    """Stands in for a fine-tuned model in _evaluate_squad: predict returns given beams."""

    def __init__(self, outputs):
        self.outputs = outputs

    def predict(self, features, batch_size, verbose):
        return self.outputs


def test_squad_null_threshold_fixes_the_no_answer_threshold(tmp_path):
    """--squad_null_threshold=-2.75 (the reference's) answers a question whose no-answer score
    (minus its largest answerable logit) is at most -2.75 and no other; by default the threshold
    is the best-F1 one."""
    from electra_tf import finetuning, finetuning_tasks

    task = finetuning_tasks.parse_task_list("squad-v2.0")[0]
    examples = [squad.SquadExample("a", "?", "abcde", [("bc", 1)]), squad.SquadExample("b", "?", "abcde", [("bc", 1)])]
    windows = [_feature(16, 6, 5, example_index=0), _feature(16, 6, 5, example_index=1)]
    pieces = [squad.ContextPieces([0] * 5, list(range(5)), list(range(1, 6)))] * 2
    beam = {
        "start_top_index": np.array([[7, 0]] * 2),
        "start_top_log_probs": np.array([[-0.1, -3.0]] * 2, np.float32),
        "end_top_index": np.array([[[8, 0], [8, 0]]] * 2),
        "end_top_log_probs": np.array([[[-0.2, -2.0], [-0.2, -2.0]]] * 2, np.float32),
        "answerable_logits": np.array([3.0, 2.0], np.float32),
    }
    data = finetuning.TaskData({}, {}, {"dev": ({}, None, examples, (windows, pieces))}, {}, {})
    for fixed, expected in ((-2.75, {"a": "bc", "b": ""}), (None, {"a": "bc", "b": "bc"})):
        options = finetuning.FinetuningOptions(tasks="squad-v2.0", output_dir=str(tmp_path), squad_null_threshold=fixed)
        trial_dir = tmp_path / str(fixed)
        trial_dir.mkdir()
        metrics = finetuning._evaluate_squad(task, _FixedOutputs(beam), data, options, str(trial_dir))
        assert json.loads((trial_dir / "dev_predictions.json").read_text()) == expected
        assert json.loads((trial_dir / "dev_null_scores.json").read_text()) == {"a": -3.0, "b": -2.0}
        assert metrics["null_threshold"] == (-2.75 if fixed else metrics["best_f1_threshold"])
        assert metrics["exact_match"] == (50.0 if fixed else 100.0)


def test_squad_v1_answerable_head_adds_half_the_classifier_loss_and_reloads(tmp_path, bert_vocab_file):
    """--squad_v1_answerable_head (the reference's answerable classifier on SQuAD 1.1): the
    model gets the 2.0 head, and its loss on an all-answerable batch is the head-less loss plus
    0.5 x the classifier's sigmoid cross-entropy (label "not impossible"), recomputed in NumPy.
    End to end, head.json records it, the folder reloads with the same outputs, and the export
    answers every 1.1 question as fine-tuning's decoder did (the head is not read)."""
    import dataclasses

    import tensorflow as tf

    from electra_tf import exporter, finetuning, finetuning_models, finetuning_tasks, modeling

    plain = finetuning_tasks.SQUAD_TASKS["squad-v1.1"]
    with_head = dataclasses.replace(plain, v1_answerable_head=True)
    config, _ = _tiny_span_model()
    model = finetuning.build_model(config, with_head, None)
    assert model.answerable and not finetuning.build_model(config, plain, None).answerable
    without = finetuning_models.FinetuningModel(modeling.ElectraBackbone(config), "span", dropout_rate=0.0)
    values = {v.path: np.asarray(v) for v in model.weights}
    for variable in without.weights:
        variable.assign(values[variable.path])
    features = _window_batch()
    labels = {
        "start_position": np.array([7, 7, 9]),
        "end_position": np.array([8, 10, 9]),
        "is_impossible": np.zeros(3, np.int32),
    }
    outputs = model(features, training=True)
    extra = np.asarray(model.task_loss(labels, outputs)) - np.asarray(
        without.task_loss(labels, without(features, training=True))
    )
    sequence = np.asarray(outputs["sequence_output"], np.float64)
    start_p = np.exp(_log_softmax(np.asarray(outputs["start_logits"], np.float64)))
    weights = {path: value.astype(np.float64) for path, value in values.items()}
    hidden = _gelu(
        np.concatenate([sequence[:, 0], np.einsum("bt,bth->bh", start_p, sequence)], -1)
        @ weights["task_specific/answerable_hidden/kernel"]
        + weights["task_specific/answerable_hidden/bias"]
    )
    z = (hidden @ weights["task_specific/answerable/kernel"] + weights["task_specific/answerable/bias"])[:, 0]
    # Sigmoid cross-entropy of the "unanswerable" logit z against label 0.
    np.testing.assert_allclose(extra, 0.5 * (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))), rtol=1e-4, atol=1e-6)
    assert np.all(extra > 0)

    data_dir = tmp_path / "squad"
    data_dir.mkdir()
    for split in ("train", "dev"):
        document = json.loads((FIXTURES / f"{split}-v2.0.json").read_text())
        for article in document["data"]:
            for paragraph in article["paragraphs"]:
                paragraph["qas"] = [qa for qa in paragraph["qas"] if not qa["is_impossible"]]
                for qa in paragraph["qas"]:
                    del qa["is_impossible"]
        (data_dir / f"{split}-v1.1.json").write_text(json.dumps(document))
    options = finetuning.FinetuningOptions(
        tasks="squad-v1.1",
        output_dir=str(tmp_path / "out"),
        config="electra_tiny",
        hparams={"num_hidden_layers": 1},
        vocab_file=str(bert_vocab_file),
        log_every_steps=1000,
        data_dir=str(data_dir),
        max_seq_length=64,
        doc_stride=16,
        max_query_length=16,
        num_train_steps=2,
        train_batch_size=2,
        squad_v1_answerable_head=True,
    )
    finetuning.run_finetuning(options)
    out = tmp_path / "out" / "squad-v1.1"
    results = json.loads((out / "results.json").read_text())
    assert results["hyperparameters"]["squad_v1_answerable_head"] is True
    assert "null_threshold" not in results["trials"][0]["metrics"]
    finetuned = out / "trial_1" / "finetuned"
    head = json.loads((finetuned / "head.json").read_text())
    assert (head["answerable"], head["squad_version"], head["squad"]["null_threshold"]) == (True, "1.1", None)
    _, loaded = finetuning.load_finetuned(str(finetuned))
    assert "answerable_logits" in loaded(features, training=False)
    predictions = json.loads((out / "trial_1" / "dev_predictions.json").read_text())
    examples, _ = squad.read_squad(str(data_dir / "dev-v1.1.json"), is_training=False)
    assert len(examples) == len(predictions) == 3
    module = exporter.build_serving_module(exporter.resolve_source(str(finetuned)))
    served = module.serve(
        question=tf.constant([e.question for e in examples]), context=tf.constant([e.context for e in examples])
    )
    assert [t.decode() for t in served["answer_text"].numpy()] == [predictions[e.qid] for e in examples]
    assert served["has_answer"].numpy().all()
