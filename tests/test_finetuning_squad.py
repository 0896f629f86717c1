"""SQuAD reading, WordPiece character offsets, windowing and decoding on the real dev file."""

import json
import pathlib

import numpy as np
import pytest

from electra_tf import finetuning_metrics, squad, tokenization
from electra_tf.errors import UserError

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "squad_v2"


@pytest.fixture(scope="module")
def tokenizer(bert_vocab_file):
    return tokenization.Tokenizer(str(bert_vocab_file))


@pytest.fixture(scope="module")
def dev_examples(shared_data):
    examples, info = squad.read_squad(str(shared_data / "squad" / "v1.1" / "dev-v1.1.json"),
                                      is_training=False)
    assert info == {"file": str(shared_data / "squad" / "v1.1" / "dev-v1.1.json"),
                    "questions": 10570, "articles": 48}
    return examples


def test_basic_words_and_piece_offsets(tokenizer):
    text = "Denver's  Broncos (AFC) won 24–10 in Ünïted States."
    words = squad.basic_words(text)
    assert [w for w, _, _ in words][:6] == ["Denver", "'", "s", "Broncos", "(", "AFC"]
    assert all(text[s:e] == w for w, s, e in words)
    pieces = squad.context_pieces(text, tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(pieces.ids)
    assert tokens == tokenizer.convert_ids_to_tokens(tokenizer.encode(text))
    for token, start, end in zip(tokens, pieces.starts, pieces.ends):
        if token != "[UNK]":
            assert text[start:end].lower().replace("ü", "u").replace("ï", "i") == \
                token.replace("##", "")


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
                examples.append(squad.SquadExample(example.qid, example.question,
                                                   example.context, [answer]))
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
        found[feature.example_index].append(
            context[context_pieces.starts[first]:context_pieces.ends[last]])
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
    training_view = [squad.SquadExample(e.qid, e.question, e.context, e.answers[:1])
                     for e in examples]
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
        examples, features, pieces, start_logits, end_logits, settings)
    assert set(predictions) == {e.qid for e in examples}
    scores = finetuning_metrics.squad_scores(squad.gold_answers(examples), predictions)
    assert scores["exact_match"] >= 99.0
    assert all(len(nbest[qid]) <= settings.n_best_size for qid in nbest)
    assert all(abs(sum(e["probability"] for e in entries) - 1.0) < 1e-6
               for entries in nbest.values() if entries)


def test_squad_v2_fixture_reading_and_windows(tokenizer):
    train, _ = squad.read_squad(str(FIXTURES / "train-v2.0.json"), is_training=True,
                                version="2.0")
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
            assert example.context[p.starts[first]:p.ends[last]] == example.answers[0][0]
    assert any(f.start_position for f in features)
    inputs, labels = squad.feature_arrays(features)
    assert inputs["input_ids"].shape == (len(features), 64)
    assert labels["is_impossible"].sum() == sum(f.is_impossible for f in features)


def test_windows_cover_the_context_with_the_stride():
    assert squad.window_starts(10, 4, 3) == [0, 3, 6]
    assert squad.window_starts(3, 4, 2) == [0]
    assert squad.window_starts(9, 4, 8) == [0, 4, 8]  # the stride never skips tokens


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
