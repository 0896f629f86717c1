"""Token classification: CoNLL reading, first-sub-word alignment, conlleval span metrics, a tiny
NER fine-tune that learns, and its SavedModel answering through the TF1 loader."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from electra_tf import exporter, fileio, finetuning, serving_modules, tokenization
from electra_tf import token_classification as tc
from electra_tf.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
CONLL = REPO / "tests" / "fixtures" / "conll"


def _write(tmp_path, text, name="train.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Reader


def test_reader_skips_docstart_and_blank_runs_and_reads_the_last_column(tmp_path):
    path = _write(
        tmp_path,
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
        "\n\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n\n",
    )
    sentences, stats = tc.read_conll(path)
    assert [s.words for s in sentences] == [("EU", "rejects"), ("Peter", "Blackburn")]
    assert [s.tags for s in sentences] == [("B-ORG", "O"), ("B-PER", "I-PER")]
    assert sentences[1].source == f"{path}:8"
    assert stats == {"file": path, "sentences": 2, "words": 4}
    chunks, _ = tc.read_conll(path, tag_column=2)
    assert [s.tags for s in chunks] == [("B-NP", "B-VP"), ("B-NP", "I-NP")]
    # No trailing newline and a DOCSTART in the middle end sentences too.
    path = _write(tmp_path, "a O\n-DOCSTART- O\nb B-X", "b.txt")
    assert [s.words for s in tc.read_conll(path)[0]] == [("a",), ("b",)]


def test_reader_errors_are_one_line_naming_file_and_line(tmp_path):
    path = _write(tmp_path, "EU B-ORG\nrejects\n")
    with pytest.raises(UserError, match=r"train\.txt:2: no tag after the token 'rejects'") as error:
        tc.read_conll(path)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=r"train\.txt:1: 2 column\(s\), so no tag in column 3"):
        tc.read_conll(path, tag_column=3)
    with pytest.raises(UserError, match=r"train\.txt:1: tag 'NNP' is not O or B-/I-/E-/S-"):
        tc.read_conll(_write(tmp_path, "EU NNP\n"))
    with pytest.raises(UserError, match=r"nothing\.txt: file not found"):
        tc.read_conll(str(tmp_path / "nothing.txt"))
    with pytest.raises(UserError, match="no sentences"):
        tc.read_conll(_write(tmp_path, "-DOCSTART- O\n\n\n"))
    # Test files may hold tokens alone.
    sentences, _ = tc.read_conll(_write(tmp_path, "EU\nrejects\n", "test.txt"), require_tags=False)
    assert sentences[0].words == ("EU", "rejects") and sentences[0].tags is None


def test_reader_reads_ram_paths():
    fileio.makedirs("ram://conll")
    with fileio.open("ram://conll/dev.txt", "w") as handle:
        handle.write("Rome B-LOC\n\n")
    assert tc.read_conll("ram://conll/dev.txt")[0][0].tags == ("B-LOC",)


# ---------------------------------------------------------------------------------------------
# Spans and metrics, worked by hand


@pytest.mark.parametrize(
    "tags, spans",
    [
        # IOB2
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
        # IOB1: I- opens a span after O or a span of another type; B- only splits equal types.
        (["I-PER", "I-PER", "I-LOC", "B-LOC", "O"], [("PER", 0, 1), ("LOC", 2, 2), ("LOC", 3, 3)]),
        # Ill-formed IOB2 is read as conlleval reads it.
        (["O", "I-MISC", "I-MISC", "B-PER", "I-LOC"], [("MISC", 1, 2), ("PER", 3, 3), ("LOC", 4, 4)]),
        # IOBES
        (["S-PER", "B-LOC", "I-LOC", "E-LOC", "E-LOC"], [("PER", 0, 0), ("LOC", 1, 3), ("LOC", 4, 4)]),
        (["O", "O"], []),
        (["B-A-B", "I-A-B"], [("A-B", 0, 1)]),
    ],
)
def test_spans_follow_conlleval(tags, spans):
    assert tc.extract_spans(tags) == spans


def test_span_metrics_on_a_hand_worked_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC", "I-PER"]]
    # Gold spans: PER 0-1, LOC 3, ORG 0, PER 2 (4). Predicted: PER 0-1, ORG 0, LOC 1, PER 2 (4):
    # I-PER after B-LOC opens a span, so PER 2-2 is right too: 3 correct.
    metrics = tc.span_metrics(gold, predicted)
    assert metrics["correct_spans"] == 3 and metrics["gold_spans"] == 4
    assert metrics["predicted_spans"] == 4
    assert metrics["precision"] == pytest.approx(75.0) and metrics["recall"] == pytest.approx(75.0)
    assert metrics["f1"] == pytest.approx(75.0)
    # Tokens: 3 of 4 and 1 of 3 (B-PER vs I-PER differs as a tag).
    assert metrics["accuracy"] == pytest.approx(100 * 4 / 7)
    # IOB1 gold against IOB2 predictions of the same spans: perfect.
    assert tc.span_metrics([["I-PER", "I-PER", "B-PER"]], [["B-PER", "I-PER", "B-PER"]])["f1"] == pytest.approx(100.0)
    none = tc.span_metrics([["O", "B-X"]], [["O", "O"]])
    assert (none["precision"], none["recall"], none["f1"]) == (0.0, 0.0, 0.0)


def test_bioes_round_trip_keeps_the_spans():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    bioes = tc.to_bioes(iob1)
    assert bioes == ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]
    assert tc.from_bioes(bioes) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert tc.extract_spans(tc.from_bioes(bioes)) == tc.extract_spans(iob1)


@pytest.mark.parametrize(
    "tags, conlleval, reference",
    [
        # An I- after another type's tag: conlleval opens a new span, the reference extends the
        # open one, which takes the new type.
        (["B-PER", "I-LOC", "O"], [("PER", 0, 0), ("LOC", 1, 1)], [("LOC", 0, 1)]),
        # IOB1 (CoNLL-2003's own files) writes adjacent entities of two types as I- I-.
        (["I-PER", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 1)], [("LOC", 0, 1)]),
        # After E- or S- an I-/E- continues the reference's span; conlleval starts another.
        (["S-PER", "I-PER", "E-PER"], [("PER", 0, 0), ("PER", 1, 2)], [("PER", 0, 2)]),
        (["B-LOC", "E-LOC", "E-LOC"], [("LOC", 0, 1), ("LOC", 2, 2)], [("LOC", 0, 2)]),
        # Where both agree: B-/S-/O end a span, an I- after O opens one.
        (
            ["O", "I-MISC", "B-PER", "O", "S-ORG", "S-ORG"],
            [("MISC", 1, 1), ("PER", 2, 2), ("ORG", 4, 4), ("ORG", 5, 5)],
            [("MISC", 1, 1), ("PER", 2, 2), ("ORG", 4, 4), ("ORG", 5, 5)],
        ),
        (["B-A-B", "I-A-B"], [("A-B", 0, 1)], [("A-B", 0, 1)]),
        (["O"], [], []),
    ],
)
def test_tagging_span_rules_conlleval_and_reference(tags, conlleval, reference):
    assert tc.extract_spans(tags) == tc.extract_spans(tags, "conlleval") == conlleval
    assert tc.extract_spans(tags, "reference") == reference


def test_reference_span_rule_scores_and_reads_bioes_like_iob2():
    """--tagging_span_rule=reference: a B-PER I-LOC prediction is one LOC span, so it matches a
    gold B-LOC I-LOC that conlleval scores as missed. Under that rule I-/E- and B-/S- act alike,
    so BIOES predictions scored as their IOB2 form (what the files hold) give the reference's
    spans of the BIOES tags themselves."""
    gold, predicted = [["B-LOC", "I-LOC", "O"]], [["B-PER", "I-LOC", "O"]]
    assert tc.span_metrics(gold, predicted)["f1"] == 0.0
    reference = tc.span_metrics(gold, predicted, "reference")
    assert (reference["correct_spans"], reference["f1"]) == (1, pytest.approx(100.0))
    rng = np.random.default_rng(0)
    tags = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]
    for _ in range(200):
        bioes = [tags[i] for i in rng.integers(0, len(tags), rng.integers(1, 8))]
        assert tc.extract_spans(tc.from_bioes(bioes), "reference") == tc.extract_spans(bioes, "reference")
    # --tagging_scheme=bioes re-encodes the training tags by the chosen rule.
    assert tc.to_bioes(["B-PER", "I-LOC"]) == ["S-PER", "S-LOC"]
    assert tc.to_bioes(["B-PER", "I-LOC"], "reference") == ["B-LOC", "E-LOC"]


# ---------------------------------------------------------------------------------------------
# Alignment


def test_first_sub_word_alignment_and_truncation(bert_vocab_file):
    tokenizer = tokenization.Tokenizer(str(bert_vocab_file), do_lower_case=True)
    words = ("Johanson", "visited", "U.S.", "\x00", "today")
    pieces = tokenizer.encode(list(words))
    assert len(pieces[0]) > 1 and len(pieces[2]) == 4 and pieces[3] == []
    sentence = tc.Sentence(words, ("B-PER", "O", "B-LOC", "O", "O"))
    tag_to_id = {"B-LOC": 0, "B-PER": 1, "O": 2}
    features, labels, positions, truncated = tc.align([sentence], tokenizer, 32, tag_to_id)
    flat = [p for word in pieces for p in word]
    assert features["input_ids"][0, : len(flat) + 2].tolist() == [tokenizer.cls_id] + flat + [tokenizer.sep_id]
    assert features["input_mask"][0].sum() == len(flat) + 2
    first = 1 + np.cumsum([0] + [len(p) for p in pieces])[:-1]
    assert positions == [[first[0], first[1], first[2], -1, first[4]]]
    weights = labels["tag_weights"][0]
    assert np.flatnonzero(weights).tolist() == [first[0], first[1], first[2], first[4]]
    assert labels["tag_ids"][0, [first[0], first[2], first[4]]].tolist() == [1, 0, 2]
    assert truncated == 0
    assert features["segment_ids"].sum() == 0
    reference, _, _, _ = tc.align([sentence], tokenizer, 32, tag_to_id, segment_id=1)
    assert (reference["segment_ids"] == reference["input_mask"]).all()
    # Room for [CLS] + 4 pieces + [SEP]: "U.S." is cut after its first piece, "today" dropped.
    short = 2 + len(pieces[0]) + len(pieces[1]) + 1
    features, labels, positions, truncated = tc.align([sentence], tokenizer, short, tag_to_id)
    assert positions == [[first[0], first[1], first[2], -1, -1]] and truncated == 1
    assert features["input_ids"][0, -1] == tokenizer.sep_id
    logits = np.zeros((1, short, 3))
    logits[..., 2] = 0.5
    logits[0, first[1], 1] = 1.0
    logits[0, first[2], 0] = 1.0
    # Only first pieces are read; words without one are O.
    logits[0, first[2] + 1 :, 0] = 9.0
    assert tc.decode(logits, positions, ["B-LOC", "B-PER", "O"]) == [["O", "B-PER", "B-LOC", "O", "O"]]
    assert tc.decode(logits, positions, ["S-LOC", "E-PER", "O"], scheme="bioes") == [["O", "I-PER", "B-LOC", "O", "O"]]


class _GoldLogits:
    """Stands in for a tagger in tc.evaluate: predicts every aligned word's gold tag."""

    def __init__(self, logits):
        self.logits = logits

    def predict(self, features, batch_size, verbose):
        return {"logits": self.logits}


def test_tagging_truncation_score_all_and_reference(tmp_path, bert_vocab_file):
    """--tagging_truncation: at length 12, a 6-word sentence fits whole under score_all (10
    pieces) but keeps 3 words under the reference's budget (6 + 2 words + pieces so far + 1
    <= 12); a 12-word one keeps 10 words (score_all) or none (8 + 14 > 12). score_all scores
    the cut words as O, so the cut B-LOC is missed (recall 75); the reference scores only the
    kept words, whose one span is found (100)."""
    tokenizer = tokenization.Tokenizer(str(bert_vocab_file), do_lower_case=True)
    words = "the cat sat on a mat and the big dog ran far".split()
    assert all(len(pieces) == 1 for pieces in tokenizer.encode(words))
    short = tc.Sentence(tuple(words[:6]), ("O", "B-PER", "O", "O", "B-LOC", "O"))
    long = tc.Sentence(tuple(words), ("B-PER",) + ("O",) * 10 + ("B-LOC",))
    tag_names = ("B-LOC", "B-PER", "O")
    tag_to_id = {tag: index for index, tag in enumerate(tag_names)}
    expected = {
        "score_all": ([list(range(1, 7)), list(range(1, 11)) + [-1, -1]], 1, [6, 10], (3, 4, 3)),
        "reference": ([[1, 2, 3], []], 2, [3, 0], (1, 1, 1)),
    }
    for truncation, (positions, cut, weights, spans) in expected.items():
        features, labels, got, truncated = tc.align([short, long], tokenizer, 12, tag_to_id, truncation=truncation)
        assert (got, truncated) == (positions, cut), truncation
        assert labels["tag_weights"].sum(axis=1).tolist() == weights
        assert features["input_ids"][0, len(positions[0]) + 1] == tokenizer.sep_id
        logits = np.zeros((2, 12, 3), np.float32)
        for row, (sentence, word_positions) in enumerate(zip((short, long), positions)):
            for position, tag in zip(word_positions, sentence.tags):
                if position >= 0:
                    logits[row, position, tag_to_id[tag]] = 1.0
        task = dataclasses.replace(tc.TAGGING_TASKS["ner"], tag_names=tag_names, truncation=truncation)
        data = finetuning.TaskData(
            {}, {}, {"dev": (features, None, [short, long], got)}, {"test": (features, ([short, long], got))}, {}
        )
        trial_dir = tmp_path / truncation
        trial_dir.mkdir()
        options = finetuning.FinetuningOptions(tasks="ner", output_dir=str(tmp_path))
        metrics = tc.evaluate(task, _GoldLogits(logits), data, options, str(trial_dir))
        assert (metrics["predicted_spans"], metrics["gold_spans"], metrics["correct_spans"]) == spans, truncation
        dev_rows = [row for row in _conll_rows(trial_dir / "dev_predictions.txt") if row]
        assert len(dev_rows) == sum(len(p) for p in positions)
        # Test files always hold every word (the cut ones O).
        test_rows = [row for row in _conll_rows(trial_dir / "test_predictions.txt") if row]
        assert [row[0] for row in test_rows] == list(short.words + long.words)
        assert test_rows[-1] == ["far", "O"]
    assert metrics["recall"] == 100.0
    with pytest.raises(ValueError, match="truncation"):
        tc.align([short], tokenizer, 12, truncation="head")


# ---------------------------------------------------------------------------------------------
# Fine-tuning and export

ONE_LAYER = {"num_hidden_layers": 1}
MAX_SEQ = 32


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, bert_vocab_file):
    out = tmp_path_factory.mktemp("tagging") / "out"
    options = finetuning.FinetuningOptions(
        tasks="ner",
        output_dir=str(out),
        data_dir=str(CONLL),
        config="electra_tiny",
        hparams=ONE_LAYER,
        vocab_file=str(bert_vocab_file),
        log_every_steps=1000,
        max_seq_length=MAX_SEQ,
        num_train_steps=20,
        train_batch_size=16,
        learning_rate=3e-3,
    )
    summary = finetuning.run_finetuning(options)
    return out, summary


def _conll_rows(path):
    return [line.split() for line in pathlib.Path(path).read_text().split("\n")]


def test_tiny_ner_fine_tune_learns_names_and_places(finetuned):
    """Names and cities (B-PER/I-PER/B-LOC) among filler words: a random-init one-layer model
    learns them from word identity in 20 steps. Measured: see the README; "all O" scores 0."""
    out, summary = finetuned
    results = json.loads((out / "ner" / "results.json").read_text())
    metrics = results["trials"][0]["metrics"]
    assert results["data"]["tag_names"] == ["B-LOC", "B-PER", "I-PER", "O"]
    assert summary["tasks"]["ner"]["median_score"] == metrics["f1"]
    assert metrics["f1"] >= 80.0, metrics
    dev = _conll_rows(out / "ner" / "trial_1" / "dev_predictions.txt")
    gold_rows = [row for row in _conll_rows(CONLL / "NER" / "dev.txt") if row and row[0] != "-DOCSTART-"]
    dev_rows = [row for row in dev if row]
    assert [row[:2] for row in dev_rows] == [[row[0], row[-1]] for row in gold_rows]
    # The metrics are those of the file written.
    sentences, current = [], []
    for row in dev + [[]]:
        if row:
            current.append(row)
        elif current:
            sentences.append(current)
            current = []
    recomputed = tc.span_metrics([[r[1] for r in s] for s in sentences], [[r[2] for r in s] for s in sentences])
    assert recomputed["f1"] == pytest.approx(metrics["f1"])
    # Test predictions: token<TAB>tag, a blank line between sentences, in input order.
    test_text = (out / "ner" / "test_predictions.txt").read_text()
    test_words = [
        line.split()[0]
        for line in (CONLL / "NER" / "test.txt").read_text().split("\n")
        if line.strip() and not line.startswith("-DOCSTART-")
    ]
    lines = test_text.split("\n")
    assert [line.split("\t")[0] for line in lines if line] == test_words
    assert all(len(line.split("\t")) == 2 for line in lines if line)
    assert test_text.count("\n\n") == 8
    head = json.loads((out / "ner" / "trial_1" / "finetuned" / "head.json").read_text())
    assert head["head"] == "tagging" and head["label_names"] == ["B-LOC", "B-PER", "I-PER", "O"]
    assert head["tagging"]["scheme"] == "file"


def test_scoring_the_fine_tuned_tagger_without_training_repeats_its_dev_metrics(finetuned, tmp_path):
    out, _ = finetuned
    trained = json.loads((out / "ner" / "results.json").read_text())["trials"][0]["metrics"]
    # Flags that disagree with the model's encoding are overridden by its head.json.
    options = finetuning.FinetuningOptions(
        tasks="ner",
        output_dir=str(tmp_path / "scored"),
        data_dir=str(CONLL),
        do_train=False,
        finetuned_dir=str(out / "ner"),
        tagging_scheme="bioes",
        log_every_steps=1000,
    )
    summary = finetuning.run_finetuning(options)
    scored_dir = tmp_path / "scored" / "ner" / "scored"
    scored = json.loads((scored_dir / "results.json").read_text())
    assert summary["tasks"]["ner"] == scored["metrics"]
    for name in ("precision", "recall", "f1"):
        assert scored["metrics"][name] == pytest.approx(trained[name]), name
    assert (scored_dir / "dev_predictions.txt").read_text() == (
        out / "ner" / "trial_1" / "dev_predictions.txt"
    ).read_text()
    assert (scored_dir / "test_predictions.txt").is_file()


LONG = " ".join(["Anna Taylor met officials in Berlin"] * 8)
TEXTS = ["Peter Smith visited Paris yesterday.", "", LONG, "Ünïcode café, 東京 and\tLaura!\x00 ok\x07ay"]


# As TF Serving runs it: Keras and electra_tf unimportable, only the op libraries the export
# lists in custom_ops.json loaded, variables restored by the MetaGraph's saver (the TF1 loader).
TF1_LOADER_SCRIPT = r"""
import importlib.util, json, os, sys
for blocked in ("keras", "tf_keras", "electra_tf"):
    sys.modules[blocked] = None
import tensorflow as tf
export_dir, texts, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
text_ops = os.path.join(os.path.dirname(importlib.util.find_spec("tensorflow_text").origin),
                        "python", "ops")
recorded = json.load(open(os.path.join(export_dir, "assets.extra", "custom_ops.json")))
for library in sorted(set(recorded["tensorflow-text"]["ops"].values())):
    tf.load_op_library(os.path.join(text_ops, library))
with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
    signature = meta_graph.signature_def["serving_default"]
    fetches = {name: info.name for name, info in signature.outputs.items()}
    values = session.run(fetches, {signature.inputs["text"].name: texts})
plain = {name: [[item.decode("utf-8") if isinstance(item, bytes) else item for item in row]
                if hasattr(row, "__len__") else row for row in value.tolist()]
         for name, value in values.items()}
modules = sorted(name for name, module in sys.modules.items() if module is not None
                 and name.split(".")[0] in ("keras", "electra_tf", "tf_keras"))
json.dump({"outputs": plain, "modules": modules}, open(out, "w"))
"""


@pytest.fixture(scope="module")
def tagger(finetuned, tmp_path_factory):
    """The median trial exported, and its signature run in a process that cannot import Keras
    or electra_tf, through tf.saved_model.load and through the TF1 loader (TF Serving's way)."""
    out, _ = finetuned
    work = tmp_path_factory.mktemp("tagger")
    path, source = exporter.export(str(out / "ner"), str(work / "serving"))
    (work / "run.py").write_text(TF1_LOADER_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, str(work / "run.py"), path, json.dumps(TEXTS), str(work / "out.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return path, source, json.loads((work / "out.json").read_text())


def test_tagger_export_answers_like_python_prediction_through_the_tf1_loader(finetuned, tagger):
    out, _ = finetuned
    path, source, fresh = tagger
    assert source.kind == "tagger" and fresh["modules"] == []
    outputs = fresh["outputs"]
    assert sorted(outputs) == sorted(serving_modules.SIGNATURES["tagger"]["serving_default"]["outputs"])
    counts = outputs["word_count"]
    words = [row[:count] for row, count in zip(outputs["words"], counts)]
    tags = [row[:count] for row, count in zip(outputs["tags"], counts)]
    assert all(set(row[count:]) <= {""} for row, count in zip(outputs["tags"], counts))
    # White space, then punctuation and CJK split off; case kept; control characters dropped.
    assert words[0] == ["Peter", "Smith", "visited", "Paris", "yesterday", "."]
    assert words[1] == [] and words[2] == LONG.split()
    assert words[3] == ["Ünïcode", "café", ",", "東", "京", "and", "Laura", "!", "okay"]
    assert tags[0] == ["B-PER", "I-PER", "O", "B-LOC", "O", "O"]
    # Python prediction on the same words gives the same tags, truncation included.
    head, model = finetuning.load_finetuned(str(out / "ner" / "trial_1" / "finetuned"))
    tokenizer = tokenization.Tokenizer(str(out / "ner" / "trial_1" / "finetuned" / "vocab.txt"))
    sentences = [tc.Sentence(tuple(row), None) for row in words]
    expected = tc.predict_tags(model, tokenizer, sentences, MAX_SEQ, head["label_names"])
    assert tags == expected
    _, _, positions, truncated = tc.align(sentences, tokenizer, MAX_SEQ)
    assert truncated == 1 and positions[2][-1] == -1 and tags[2][-1] == "O"
    assert "B-PER" in tags[2][:5]


def test_chunk_with_a_tag_column_and_the_reference_bioes_scheme(tmp_path, bert_vocab_file):
    """--task=chunk on the fixture's chunk column (2), trained on BIOES tags as the reference;
    the files and metrics are IOB2. Data_dir may be the folder holding the .txt files."""
    options = finetuning.FinetuningOptions(
        tasks="chunk",
        output_dir=str(tmp_path / "out"),
        data_dir=str(CONLL / "NER"),
        config="electra_tiny",
        hparams=ONE_LAYER,
        vocab_file=str(bert_vocab_file),
        log_every_steps=1000,
        max_seq_length=MAX_SEQ,
        num_train_steps=2,
        train_batch_size=8,
        tag_column=2,
        tagging_scheme="bioes",
        tagging_segment_id=1,
        write_test_predictions=False,
    )
    finetuning.run_finetuning(options)
    results = json.loads((tmp_path / "out" / "chunk" / "results.json").read_text())
    assert results["data"]["tag_names"] == ["B-NP", "E-NP", "O", "S-NP"]
    assert results["hyperparameters"]["tagging_scheme"] == "bioes"
    head = json.loads((tmp_path / "out" / "chunk" / "trial_1" / "finetuned" / "head.json").read_text())
    assert head["label_names"] == results["data"]["tag_names"]
    assert head["tagging"] == {
        "scheme": "bioes",
        "default_tag": "O",
        "tag_column": 2,
        "segment_id": 1,
        "span_rule": "conlleval",
        "truncation": "score_all",
    }
    rows = [row for row in _conll_rows(tmp_path / "out" / "chunk" / "trial_1" / "dev_predictions.txt") if row]
    assert {row[1] for row in rows} == {"B-NP", "I-NP", "O"}
    assert {row[2] for row in rows} <= {"B-NP", "I-NP", "O"}
    assert not (tmp_path / "out" / "chunk" / "test_predictions.txt").exists()
    # A missing dev file is refused before any training, naming the file.
    (tmp_path / "only_train").mkdir()
    (tmp_path / "only_train" / "train.txt").write_text("Rome B-LOC\n")
    with pytest.raises(UserError, match=r"only_train/NER/dev\.txt: file not found"):
        finetuning.run_finetuning(
            dataclasses.replace(
                options, tasks="ner", data_dir=str(tmp_path / "only_train"), output_dir=str(tmp_path / "out2")
            )
        )


def test_predict_cuts_tagger_rows_to_their_word_count():
    from electra_tf import predict

    rows = list(
        predict.rows_of(
            {
                "words": np.array([[b"Rome", b"is"], [b"", b""]]),
                "tags": np.array([[b"B-LOC", b"O"], [b"", b""]]),
                "word_count": np.array([2, 0]),
            }
        )
    )
    assert rows == [
        {"words": ["Rome", "is"], "tags": ["B-LOC", "O"], "word_count": 2},
        {"words": [], "tags": [], "word_count": 0},
    ]


def test_tag_set_from_all_splits_adds_dev_and_test_tags(tmp_path, bert_vocab_file):
    """--tag_set_from=all_splits: the reference's label set, the tags of train, dev and test
    (in the training encoding); a test file of tokens alone adds nothing. The default keeps the
    training file's tags."""
    tokenizer = tokenization.Tokenizer(str(bert_vocab_file), do_lower_case=True)
    folder = tmp_path / "NER"
    folder.mkdir()
    (folder / "train.txt").write_text("John B-PER\nsat O\n\nthe O\nRome B-LOC\n")
    (folder / "dev.txt").write_text("Acme B-ORG\nsat O\n")
    (folder / "test.txt").write_text("Paris B-LOC\nParis I-LOC\nvisited O\n\nx\n")
    options = finetuning.FinetuningOptions(tasks="ner", output_dir=str(tmp_path / "out"), data_dir=str(tmp_path))
    task = tc.TAGGING_TASKS["ner"]
    got = {}
    for tag_set_from, scheme in (("train", "file"), ("all_splits", "file"), ("all_splits", "bioes")):
        chosen = dataclasses.replace(options, tag_set_from=tag_set_from, tagging_scheme=scheme)
        prepared, data = tc.prepare_data(task, chosen, tokenizer, 16)
        got[tag_set_from, scheme] = prepared.tag_names
        assert data.info["tag_names"] == list(prepared.tag_names)
    assert got["train", "file"] == ("B-LOC", "B-PER", "O")
    assert got["all_splits", "file"] == ("B-LOC", "B-ORG", "B-PER", "I-LOC", "O")
    assert got["all_splits", "bioes"] == ("B-LOC", "E-LOC", "O", "S-LOC", "S-ORG", "S-PER")
    with pytest.raises(UserError, match="--tag_set_from=dev: use one of train, all_splits"):
        tc.prepare_data(task, dataclasses.replace(options, tag_set_from="dev"), tokenizer, 16)
