"""SavedModel export: fresh-process parity with Keras, documented signatures, TF Serving REST
requests, SQuAD answers, version folders and one-line errors.

One module fixture fine-tunes three tiny one-layer models (MNLI fixture, STS-B, a SQuAD 2.0 set
built from dev articles), writes a random pretrained model, and exports all five kinds; one fresh
Python process (tensorflow + tensorflow_text only) runs every exported signature.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import serving_requests
import tensorflow as tf

from electra_tf import exporter, finetuning, finetuning_tasks, modeling, serving_modules, tokenization
from electra_tf.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
ONE_LAYER = {"num_hidden_layers": 1}
GLUE_MAX_SEQ = 32

LONG = " ".join(["The extraordinarily long-winded sentence keeps going"] * 12) + "."
NON_ASCII = "Ünïcode café — naïve 東京 ΟΔΟΣ ☃ 😀 señor"
# Short, longer than max_seq_length, empty and non-ASCII, in both positions of a pair.
TEXTS_A = ["Good.", LONG, "", NON_ASCII, LONG]
TEXTS_B = [NON_ASCII, "Fine!", "", "", LONG + " Again"]

# The fresh process has Keras and electra_tf made unimportable, so the SavedModel is shown to need
# neither. TensorFlow tolerates a missing Keras (it only tries to preload it), but
# tensorflow_text's Python package defines tf.keras layers when imported, so its kernels are
# registered from its op libraries directly, which is what TF Serving's C++ server does too.
# TF Serving restores variables through the MetaGraph's saver, as the TF1 loader does, so every
# case also runs that way (tf.saved_model.load would hide variables the saver leaves
# uninitialised). Only the op libraries the exports list in assets.extra/custom_ops.json are
# loaded, which shows that list is enough.
FRESH_PROCESS_SCRIPT = r"""
import importlib.util, json, os, sys
for blocked in ("keras", "tf_keras", "electra_tf"):
    sys.modules[blocked] = None  # "import keras" now raises ImportError
import tensorflow as tf
text_ops = os.path.join(os.path.dirname(importlib.util.find_spec("tensorflow_text").origin),
                        "python", "ops")
cases = json.load(open(sys.argv[1]))
libraries = set()
for export_dir, _, _ in cases.values():
    recorded = json.load(open(os.path.join(export_dir, "assets.extra", "custom_ops.json")))
    libraries.update(recorded["tensorflow-text"]["ops"].values())
for library in sorted(libraries):
    tf.load_op_library(os.path.join(text_ops, library))

def plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value

results = {}
loaded = {}
for case, (export_dir, signature, inputs) in cases.items():
    if export_dir not in loaded:
        loaded[export_dir] = tf.saved_model.load(export_dir)
    function = loaded[export_dir].signatures[signature]
    outputs = function(**{name: tf.constant(values, tf.string) for name, values in inputs.items()})
    results[case] = {name: plain(value.numpy().tolist()) for name, value in outputs.items()}

tf1 = {}
for export_dir in sorted({export_dir for export_dir, _, _ in cases.values()}):
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        for case, (case_dir, signature, inputs) in cases.items():
            if case_dir != export_dir:
                continue
            signature_def = meta_graph.signature_def[signature]
            feeds = {signature_def.inputs[name].name: values for name, values in inputs.items()}
            fetches = {name: info.name for name, info in signature_def.outputs.items()}
            tf1[case] = {name: plain(value.tolist())
                         for name, value in session.run(fetches, feeds).items()}
results["tf1_loader"] = tf1
results["libraries"] = sorted(libraries)
results["modules"] = sorted(name for name, module in sys.modules.items() if module is not None
                            and name.split(".")[0] in ("keras", "electra_tf", "tf_keras"))
json.dump(results, open(sys.argv[2], "w"))
"""


def _squad_data(shared_data, directory):
    """A SQuAD 2.0 training = dev set: 8 Warsaw paragraphs, 4 answerable questions each, and one
    question per paragraph asked of the next paragraph (unanswerable); and SQuAD 1.1 files of
    the answerable ones."""
    with open(shared_data / "squad" / "v1.1" / "dev-v1.1.json") as handle:
        paragraphs = json.load(handle)["data"][1]["paragraphs"][:8]
    out = []
    for index, paragraph in enumerate(paragraphs):
        out.append(
            {"context": paragraph["context"], "qas": [dict(qa, is_impossible=False) for qa in paragraph["qas"][:4]]}
        )
        following = paragraphs[(index + 1) % len(paragraphs)]
        out.append(
            {
                "context": following["context"],
                "qas": [
                    {"id": qa["id"] + "_unanswerable", "question": qa["question"], "answers": [], "is_impossible": True}
                    for qa in paragraph["qas"][4:5]
                ],
            }
        )
    directory.mkdir(parents=True)
    for name in ("train-v2.0.json", "dev-v2.0.json"):
        (directory / name).write_text(json.dumps({"version": "v2.0", "data": [{"title": "Warsaw", "paragraphs": out}]}))
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        (directory / name).write_text(
            json.dumps({"version": "1.1", "data": [{"title": "Warsaw", "paragraphs": out[::2]}]})
        )
    return directory


def _finetune(output_dir, vocab, **values):
    options = finetuning.FinetuningOptions(
        output_dir=str(output_dir),
        config="electra_tiny",
        hparams=ONE_LAYER,
        vocab_file=str(vocab),
        log_every_steps=1000,
        write_test_predictions=False,
        **values,
    )
    finetuning.run_finetuning(options)
    return output_dir


@pytest.fixture(scope="module")
def exported(tmp_path_factory, shared_data, bert_vocab_file):
    from electra_tf import config as config_lib
    from electra_tf import pretraining_objective

    root = tmp_path_factory.mktemp("export")
    out = _finetune(
        root / "glue",
        bert_vocab_file,
        tasks="mnli",
        data_dir=str(FIXTURES / "glue"),
        max_seq_length=GLUE_MAX_SEQ,
        num_train_steps=2,
        train_batch_size=4,
    )
    _finetune(
        root / "glue",
        bert_vocab_file,
        tasks="sts-b",
        data_dir=str(shared_data / "glue"),
        max_seq_length=GLUE_MAX_SEQ,
        num_train_steps=1,
        train_batch_size=8,
        max_train_examples=16,
        max_eval_examples=8,
    )
    # The reference's joint head learns the 40 questions in 100 steps (87% exact match
    # measured, threshold tuned on the same questions).
    squad_data = str(_squad_data(shared_data, root / "squad_data"))
    _finetune(
        root / "squad",
        bert_vocab_file,
        tasks="squad-v2.0",
        data_dir=squad_data,
        max_seq_length=128,
        doc_stride=64,
        max_query_length=32,
        num_train_steps=100,
        train_batch_size=16,
        learning_rate=3e-3,
    )
    # SQuAD 1.1 (no answerability head), briefly: the export must decode its beam the same.
    _finetune(
        root / "squad",
        bert_vocab_file,
        tasks="squad-v1.1",
        data_dir=squad_data,
        max_seq_length=128,
        doc_stride=64,
        max_query_length=32,
        num_train_steps=20,
        train_batch_size=16,
        learning_rate=3e-3,
    )
    config = config_lib.load_config("electra_tiny", dict(ONE_LAYER, max_seq_length=GLUE_MAX_SEQ))
    pretrainer = pretraining_objective.ElectraPretrainer(config, seed=3)
    pretraining_objective.save_pretrained(pretrainer, root / "pretraining" / "pretrained")
    paths = {
        # A task folder exports its median trial.
        "classifier": exporter.export(str(out / "mnli"), str(root / "serving" / "mnli"))[0],
        "regressor": exporter.export(str(out / "sts-b" / "trial_1"), str(root / "serving" / "stsb"))[0],
        "squad": exporter.export(
            str(root / "squad" / "squad-v2.0" / "trial_1" / "finetuned"), str(root / "serving" / "squad")
        )[0],
        "squad_v11": exporter.export(
            str(root / "squad" / "squad-v1.1" / "trial_1" / "finetuned"), str(root / "serving" / "squad_v11")
        )[0],
        "discriminator": exporter.export(
            str(root / "pretraining"),
            str(root / "serving" / "discriminator"),
            kind="discriminator",
            vocab_file=str(bert_vocab_file),
        )[0],
        "encoder": exporter.export(
            str(root / "pretraining"),
            str(root / "serving" / "encoder"),
            kind="encoder",
            vocab_file=str(bert_vocab_file),
        )[0],
    }
    return root, paths


def _squad_examples(root, version="2.0"):
    from electra_tf import squad

    examples, _ = squad.read_squad(
        str(root / "squad_data" / f"dev-v{version}.json"), is_training=False, version=version
    )
    return examples


def _cases(root, paths):
    squad_examples = _squad_examples(root)
    v11_examples = _squad_examples(root, "1.1")
    return {
        "classifier_single": (paths["classifier"], "single", {"text_a": TEXTS_A}),
        "classifier_pair": (paths["classifier"], "pair", {"text_a": TEXTS_A, "text_b": TEXTS_B}),
        "classifier_default": (paths["classifier"], "serving_default", {"text_a": TEXTS_A, "text_b": TEXTS_B}),
        "regressor_pair": (paths["regressor"], "pair", {"text_a": TEXTS_A, "text_b": TEXTS_B}),
        "regressor_single": (paths["regressor"], "single", {"text_a": TEXTS_A}),
        "discriminator": (paths["discriminator"], "serving_default", {"text": TEXTS_A}),
        "encoder": (paths["encoder"], "serving_default", {"text": TEXTS_A}),
        "encoder_pair": (paths["encoder"], "pair", {"text": TEXTS_A, "text_b": TEXTS_B}),
        "squad": (
            paths["squad"],
            "serving_default",
            {
                "question": [e.question for e in squad_examples] + ["Who?", ""],
                "context": [e.context for e in squad_examples] + ["", NON_ASCII],
            },
        ),
        "squad_v11": (
            paths["squad_v11"],
            "serving_default",
            {"question": [e.question for e in v11_examples], "context": [e.context for e in v11_examples]},
        ),
    }


@pytest.fixture(scope="module")
def fresh_outputs(exported, tmp_path_factory):
    root, paths = exported
    work = tmp_path_factory.mktemp("fresh")
    (work / "cases.json").write_text(json.dumps(_cases(root, paths)))
    (work / "run.py").write_text(FRESH_PROCESS_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, str(work / "run.py"), str(work / "cases.json"), str(work / "out.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((work / "out.json").read_text())


@pytest.fixture(scope="module")
def loaded(exported):
    """Every export loaded once in this process: kind -> tf.saved_model.load result."""
    _, paths = exported
    return {kind: tf.saved_model.load(path) for kind, path in paths.items()}


def _glue_features(tokenizer, texts_a, texts_b=None):
    """What fine-tuning feeds the Keras model: int32 [batch, GLUE_MAX_SEQ] arrays."""
    examples = [
        finetuning_tasks.Example(str(i), a, None if texts_b is None else texts_b[i], None)
        for i, a in enumerate(texts_a)
    ]
    return finetuning.encode_glue(examples, tokenizer, GLUE_MAX_SEQ)


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def test_fresh_process_without_keras_matches_the_keras_models(exported, fresh_outputs, bert_vocab_file):
    root, paths = exported
    assert fresh_outputs["modules"] == []  # neither keras nor electra_tf was imported
    tokenizer = tokenization.Tokenizer(str(bert_vocab_file))
    head, classifier = finetuning.load_finetuned(str(root / "glue" / "mnli" / "trial_1" / "finetuned"))
    for case, texts_b in (("classifier_single", None), ("classifier_pair", TEXTS_B), ("classifier_default", TEXTS_B)):
        features = _glue_features(tokenizer, TEXTS_A, texts_b)
        expected = _softmax(np.asarray(classifier(features, training=False)["logits"]))
        got = fresh_outputs[case]
        assert np.abs(np.array(got["probabilities"]) - expected).max() <= 1e-5, case
        assert got["label_id"] == expected.argmax(-1).tolist()
        assert got["label_name"] == [head["label_names"][i] for i in expected.argmax(-1)]
    _, regressor = finetuning.load_finetuned(str(root / "glue" / "sts-b" / "trial_1" / "finetuned"))
    features = _glue_features(tokenizer, TEXTS_A, TEXTS_B)
    expected = np.asarray(regressor(features, training=False)["predictions"])
    assert np.abs(np.array(fresh_outputs["regressor_pair"]["score"]) - expected).max() <= 1e-5

    pretrained = root / "pretraining" / "pretrained"
    _, discriminator = modeling.load_pretrained_discriminator(pretrained)
    features = _glue_features(tokenizer, TEXTS_A)
    probabilities = 1 / (1 + np.exp(-np.asarray(discriminator(features, training=False), np.float64)))
    got = fresh_outputs["discriminator"]
    lengths = features["input_mask"].sum(1) - 2
    assert got["token_count"] == lengths.tolist()
    assert lengths[1] == GLUE_MAX_SEQ - 2 and lengths[2] == 0  # truncated, empty
    for row, length in enumerate(lengths):
        ids = features["input_ids"][row, 1 : 1 + length]
        assert got["tokens"][row][:length] == tokenizer.convert_ids_to_tokens(ids)
        assert set(got["tokens"][row][length:]) <= {""}
        assert (
            np.abs(np.array(got["replaced_probability"][row][:length]) - probabilities[row, 1 : 1 + length]).max(
                initial=0
            )
            <= 1e-5
        )

    _, backbone = modeling.load_pretrained_backbone(pretrained)
    for case, texts_b in (("encoder", None), ("encoder_pair", TEXTS_B)):
        features = _glue_features(tokenizer, TEXTS_A, texts_b)
        sequence = np.asarray(backbone(features, training=False))
        got = fresh_outputs[case]
        lengths = features["input_mask"].sum(1)
        assert got["token_count"] == lengths.tolist()
        assert np.abs(np.array(got["cls_vector"]) - sequence[:, 0]).max() <= 1e-5
        vectors = np.array(got["token_vectors"])
        for row, length in enumerate(lengths):
            assert np.abs(vectors[row, :length] - sequence[row, :length]).max() <= 1e-5
            assert not vectors[row, length:].any()
            assert got["tokens"][row][:length] == tokenizer.convert_ids_to_tokens(features["input_ids"][row, :length])


def test_tf1_loader_as_tf_serving_uses_answers_the_same(exported, fresh_outputs):
    """Every case, loaded through the MetaGraph's saver (what TF Serving's C++ loader does), gives
    what tf.saved_model.load gives, with only the recorded tensorflow-text libraries loaded."""
    _, paths = exported
    tf1 = fresh_outputs["tf1_loader"]
    cases = [case for case in fresh_outputs if case not in ("tf1_loader", "modules", "libraries")]
    assert sorted(tf1) == sorted(cases)
    # The tagger's export runs through the TF1 loader in tests/test_token_classification.py.
    assert {case.split("_")[0] for case in cases} == set(serving_modules.KINDS) - {"tagger"}
    for case in cases:
        assert sorted(tf1[case]) == sorted(fresh_outputs[case]), case
        for name, value in fresh_outputs[case].items():
            if isinstance(value, list) and value and not isinstance(np.array(value, dtype=object).flat[0], str):
                np.testing.assert_allclose(
                    np.array(tf1[case][name], np.float64),
                    np.array(value, np.float64),
                    atol=1e-6,
                    err_msg=f"{case} {name}",
                )
            else:
                assert tf1[case][name] == value, (case, name)
    assert fresh_outputs["libraries"] == ["_fast_wordpiece_tokenizer.so", "_normalize_ops.so", "_regex_split_ops.so"]
    for kind, path in paths.items():
        recorded = json.loads((pathlib.Path(path) / exporter.CUSTOM_OPS_FILE).read_text())
        ops = recorded["tensorflow-text"]["ops"]
        assert {"NormalizeUTF8", "FastWordpieceTokenizeWithOffsets"} <= set(ops), kind
        assert exporter.export_info(path)["custom_ops"] == recorded


def test_saved_model_cli_runs_an_export_with_the_text_ops_loaded(exported):
    """The README's saved_model_cli command (which loads through the TF1 loader too)."""
    _, paths = exported
    command = [
        sys.executable,
        "-c",
        SAVED_MODEL_CLI,
        "run",
        "--dir",
        paths["discriminator"],
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--input_exprs",
        'text=["the chef ate the meal"]',
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Result for output key tokens:\n[[b'the' b'chef' b'ate' b'the' b'meal']]" in completed.stdout


# The README's way of running saved_model_cli with tensorflow-text's ops registered.
SAVED_MODEL_CLI = (
    "import sys, tensorflow_text; "
    "from tensorflow.python.tools.saved_model_cli import main; "
    "sys.argv[0] = 'saved_model_cli'; sys.exit(main())"
)


def test_squad_export_answers_like_fine_tuning(exported, fresh_outputs):
    """Every question gets the text, and the exact no-answer decision, that fine-tuning's own
    decoding wrote in dev_predictions.json (one window of 128 tokens holds at most ~90 context
    tokens, so the 500-1600 character contexts span several windows); on the questions the model
    gets right the export returns the gold answer."""
    root, _ = exported
    trial = root / "squad" / "squad-v2.0" / "trial_1"
    predictions = json.loads((trial / "dev_predictions.json").read_text())
    null_scores = json.loads((trial / "dev_null_scores.json").read_text())
    threshold = json.loads((trial / "finetuned" / "head.json").read_text())["squad"]["null_threshold"]
    examples = _squad_examples(root)
    got = fresh_outputs["squad"]
    gold_hits = borderline = unanswered = 0
    for index, example in enumerate(examples):
        text = got["answer_text"][index]
        start, end = got["answer_start"][index], got["answer_end"][index]
        assert got["no_answer_score"][index] == pytest.approx(null_scores[example.qid], abs=1e-3)
        if abs(null_scores[example.qid] - threshold) < 1e-4:
            # A 1e-6 logit difference may flip this one's no-answer decision; the answer it
            # gives otherwise must still be fine-tuning's.
            borderline += 1
            assert text in ("", predictions[example.qid]) or not predictions[example.qid], example.qid
            continue
        assert text == predictions[example.qid], example.qid
        if text:
            assert example.context[start:end] == text and got["has_answer"][index]
        else:
            assert (start, end) == (-1, -1) and not got["has_answer"][index]
            unanswered += 1
        if text and text in example.answer_texts:
            gold_hits += 1
    # The question whose score set the tuned threshold, and at most one more: this briefly
    # trained model hardly reads the question, so questions on one context can tie to 1e-6
    # (measured: -1.0796269 and -1.0796260).
    assert borderline <= 2
    assert gold_hits >= 10, gold_hits
    assert unanswered >= 1
    # An empty context has no span; an empty question still reads the context.
    assert got["answer_text"][-2:][0] == "" and got["has_answer"][-2] is False
    assert got["answer_start"][-2] == -1
    head = json.loads((trial / "finetuned" / "head.json").read_text())
    assert (head["span_head"], head["beam_size"]) == ("joint", 20)


def test_scoring_a_fine_tuned_squad_model_without_training_repeats_its_dev_metrics(exported, shared_data, tmp_path):
    root, _ = exported
    trained = json.loads((root / "squad" / "squad-v2.0" / "results.json").read_text())
    trained = trained["trials"][0]["metrics"]
    # No training file is needed to score, and the windows are the model's (head.json), not
    # the flags' defaults (512 / 128 / 64).
    data = tmp_path / "dev_only"
    data.mkdir()
    (data / "dev-v2.0.json").write_text((root / "squad_data" / "dev-v2.0.json").read_text())
    options = finetuning.FinetuningOptions(
        tasks="squad-v2.0",
        output_dir=str(tmp_path / "scored"),
        data_dir=str(data),
        do_train=False,
        finetuned_dir=str(root / "squad" / "squad-v2.0" / "trial_1" / "finetuned"),
        log_every_steps=1000,
    )
    metrics = finetuning.run_finetuning(options)["tasks"]["squad-v2.0"]
    for name in ("exact_match", "f1", "null_threshold"):
        assert metrics[name] == pytest.approx(trained[name], abs=1e-4), name
    scored = root / "squad" / "squad-v2.0" / "trial_1"
    assert json.loads(
        (tmp_path / "scored" / "squad-v2.0" / "scored" / "dev_predictions.json").read_text()
    ) == json.loads((scored / "dev_predictions.json").read_text())


def test_squad_v11_export_answers_like_fine_tuning(exported, fresh_outputs):
    """SQuAD 1.1's joint head (no answerability classifier, always an answer): the served
    answer of every question is the one fine-tuning's decoder wrote, with its offsets, and the
    TF1 loader agrees (test_tf1_loader_as_tf_serving_uses_answers_the_same)."""
    root, _ = exported
    trial = root / "squad" / "squad-v1.1" / "trial_1"
    predictions = json.loads((trial / "dev_predictions.json").read_text())
    nbest = json.loads((trial / "dev_nbest.json").read_text())
    got = fresh_outputs["squad_v11"]
    examples = _squad_examples(root, "1.1")
    assert len(examples) == 32
    for index, example in enumerate(examples):
        text = got["answer_text"][index]
        assert text == predictions[example.qid] != "", example.qid
        start, end = got["answer_start"][index], got["answer_end"][index]
        assert example.context[start:end] == text and got["has_answer"][index]
        assert got["score"][index] == pytest.approx(nbest[example.qid][0]["score"], abs=1e-5)
        assert got["no_answer_score"][index] == 0.0
    assert json.loads((trial / "finetuned" / "head.json").read_text())["span_head"] == "joint"


def test_signatures_are_the_documented_ones(exported, loaded):
    _, paths = exported
    from tensorflow.core.protobuf import saved_model_pb2

    for name_of_export, path in paths.items():
        kind = exporter.export_info(path)["kind"]
        # What saved_model_cli show --all and TF Serving read: the SignatureDefs in the .pb.
        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
        signature_defs = saved_model.meta_graphs[0].signature_def
        served = {name for name in signature_defs if not name.startswith("__")}
        assert served == set(serving_modules.SIGNATURES[kind]) | {serving_modules.DEFAULT_SIGNATURE}
        assert {signature_defs[name].method_name for name in served} == {"tensorflow/serving/predict"}
        documented = serving_modules.SIGNATURES[kind]
        assert serving_modules.DEFAULT_SIGNATURE in loaded[name_of_export].signatures
        assert set(loaded[name_of_export].signatures) == (set(documented) | {serving_modules.DEFAULT_SIGNATURE})
        for name, spec in documented.items():
            function = loaded[name_of_export].signatures[name]
            _, inputs = function.structured_input_signature
            assert {key: (value.dtype.name, value.shape.rank) for key, value in inputs.items()} == {
                key: (dtype, shape.count(",") + 1) for key, (dtype, shape) in spec["inputs"].items()
            }, (kind, name)
            outputs = function.structured_outputs
            assert {key: (value.dtype.name, value.shape.rank) for key, value in outputs.items()} == {
                key: (dtype, shape.count(",") + 1) for key, (dtype, shape) in spec["outputs"].items()
            }, (kind, name)
    # MNLI is a pair task: its serving_default is the pair signature.
    _, inputs = loaded["classifier"].signatures["serving_default"].structured_input_signature
    assert set(inputs) == {"text_a", "text_b"}
    assert (pathlib.Path(paths["squad"]) / "assets" / "vocab.txt").is_file()
    assert pathlib.Path(paths["squad"]).name == "1"
    table = serving_modules.signature_table_markdown()
    assert "| squad | `serving_default` | `question` string [B], `context` string [B] |" in table


def _run_request(loaded, request):
    """What TF Serving does with a REST predict request: JSON text -> tensors -> reply."""
    request = json.loads(json.dumps(request))
    function = loaded.signatures[request.get("signature_name", "serving_default")]
    _, specs = function.structured_input_signature
    name, inputs = serving_requests.request_to_inputs(request, list(specs))
    outputs = function(**{key: tf.constant(value, specs[key].dtype) for key, value in inputs.items()})
    reply = serving_requests.outputs_to_response(
        {key: value.numpy() for key, value in outputs.items()}, "instances" in request
    )
    return json.loads(json.dumps(reply))


def test_tf_serving_rest_requests_map_onto_the_signatures(exported, loaded, fresh_outputs):
    root, _ = exported
    classifier = loaded["classifier"]
    expected = fresh_outputs["classifier_pair"]
    rows = _run_request(
        classifier,
        {"signature_name": "pair", "instances": [{"text_a": a, "text_b": b} for a, b in zip(TEXTS_A, TEXTS_B)]},
    )
    assert [row["label_name"] for row in rows["predictions"]] == expected["label_name"]
    np.testing.assert_allclose(
        [row["probabilities"] for row in rows["predictions"]], expected["probabilities"], atol=1e-6
    )
    columns = _run_request(classifier, {"inputs": {"text_a": TEXTS_A, "text_b": TEXTS_B}})
    assert columns["outputs"]["label_id"] == expected["label_id"]
    single = _run_request(classifier, {"signature_name": "single", "instances": TEXTS_A})
    assert [row["label_id"] for row in single["predictions"]] == fresh_outputs["classifier_single"]["label_id"]
    bare = _run_request(loaded["encoder"], {"inputs": TEXTS_A})
    assert bare["outputs"]["token_count"] == fresh_outputs["encoder"]["token_count"]
    examples = _squad_examples(root)[:3]
    reply = _run_request(
        loaded["squad"], {"instances": [{"question": e.question, "context": e.context} for e in examples]}
    )
    assert [row["answer_text"] for row in reply["predictions"]] == fresh_outputs["squad"]["answer_text"][:3]
    assert set(reply["predictions"][0]) == set(serving_modules.SIGNATURES["squad"]["serving_default"]["outputs"])
    with pytest.raises(serving_requests.RequestError, match="takes"):
        serving_requests.request_to_inputs({"instances": [{"text_a": "x"}]}, ["text_a", "text_b"])
    with pytest.raises(serving_requests.RequestError, match="exactly one"):
        serving_requests.request_to_inputs({"inputs": ["x"], "instances": ["x"]}, ["text"])


def test_versions_are_never_overwritten_without_the_flag(exported, bert_vocab_file, tmp_path):
    root, paths = exported
    base = pathlib.Path(paths["encoder"]).parent
    source = str(root / "pretraining")
    second, _ = exporter.export(source, str(base), kind="encoder", vocab_file=str(bert_vocab_file))
    assert pathlib.Path(second).name == "2"
    assert exporter.existing_versions(str(base)) == [1, 2]
    before = (base / "1" / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(UserError, match=r"/1 already exists; pass --overwrite"):
        exporter.export(source, str(base), kind="encoder", vocab_file=str(bert_vocab_file), version=1)
    assert (base / "1" / "saved_model.pb").stat().st_mtime_ns == before
    exporter.export(
        source, str(base), kind="encoder", vocab_file=str(bert_vocab_file), version=1, overwrite=True, max_seq_length=16
    )
    assert (base / "1" / "saved_model.pb").stat().st_mtime_ns != before
    assert sorted(os.listdir(base)) == ["1", "2"]  # no staging folder left behind
    assert exporter.export_info(str(base / "1"))["max_seq_length"] == 16
    assert exporter.export_info(paths["squad"])["task"] == "squad-v2.0"
    with pytest.raises(UserError, match="holds a model of kind encoder, not discriminator"):
        exporter.export(source, str(base), kind="discriminator", vocab_file=str(bert_vocab_file))
    with pytest.raises(UserError, match="pass --kind=discriminator .* or --kind=encoder"):
        exporter.resolve_source(source)
    with pytest.raises(UserError, match="is required for a pretrained model"):
        exporter.resolve_source(source, kind="encoder")
    other_vocab = tmp_path / "vocab.txt"
    other_vocab.write_text("\n".join(tokenization.SPECIAL_TOKENS + ("a", "b")) + "\n")
    with pytest.raises(UserError, match="is not the vocabulary the model was trained with"):
        exporter.resolve_source(str(root / "glue" / "mnli"), vocab_file=str(other_vocab))
    with pytest.raises(UserError, match="holds a fine-tuned classifier"):
        exporter.resolve_source(str(root / "glue" / "mnli"), kind="squad")
    with pytest.raises(UserError, match="no fine-tuned model .* or pretrained model"):
        exporter.resolve_source(str(tmp_path))


def test_cli_errors_are_one_line_and_predict_runs_without_keras(exported, fresh_outputs, bert_vocab_file):
    root, paths = exported
    command = [
        sys.executable,
        "-m",
        "electra_tf.export",
        f"--input={root / 'pretraining'}",
        "--kind=encoder",
        f"--vocab_file={bert_vocab_file}",
        f"--export_base={pathlib.Path(paths['encoder']).parent}",
        "--version=1",
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "already exists; pass --overwrite" in errors[0]

    examples = _squad_examples(root)[:3]
    lines = "".join(f"{e.question}\t{e.context}\n" for e in examples) + "only one field\n"
    # predict loads the SavedModel alone: neither the model code nor the exporter is imported.
    probe = (
        "import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
        "'MODEL_CODE_IMPORTED=%s\\n' % sorted(set(sys.modules) & {'electra_tf.modeling', "
        "'electra_tf.export', 'electra_tf.exporter', 'electra_tf.serving_modules', "
        "'electra_tf.finetuning_models'}))); "
        f"sys.argv = ['predict', '--export_dir={pathlib.Path(paths['squad']).parent}', "
        "'--batch_size=2']; runpy.run_module('electra_tf.predict', run_name='__main__')"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, input=lines, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 2
    assert "MODEL_CODE_IMPORTED=[]" in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if ": error: " in line]
    assert errors == ["predict: error: <stdin>:4: expected 2 tab-separated field(s) (question, context), got 1"]
    rows = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [row["answer_text"] for row in rows] == fresh_outputs["squad"]["answer_text"][:2]


@pytest.mark.parametrize("span_head", ["joint", "independent"])
def test_in_graph_squad_decoding_equals_the_python_one(shared_data, bert_vocab_file, span_head):
    """A random SQuAD 1.1 model (no answerability head, no threshold) with short windows (64
    tokens, stride 16): the serving module (which windows through squad.windows, as
    fine-tuning does) picks decode_predictions' answer, span and no-answer score for every
    question, including odd characters, an empty context and an empty question."""
    from electra_tf import config as config_lib
    from electra_tf import finetuning_models, squad

    tokenizer = tokenization.Tokenizer(str(bert_vocab_file))
    config = config_lib.load_config("electra_tiny", ONE_LAYER)
    model = finetuning_models.FinetuningModel(modeling.ElectraBackbone(config), "span", span_head=span_head)
    examples, _ = squad.read_squad(str(shared_data / "squad" / "v1.1" / "dev-v1.1.json"), is_training=False)
    examples = [e for e in examples if e.article_index == 5][:24] + [
        squad.SquadExample("empty-context", "What?", "", []),
        squad.SquadExample("odd", "", "Ünïcode café—naïve 東京 text… " + "x" * 120 + " Ａ end.", []),
    ]
    if span_head == "independent":  # the earlier head, more briefly
        examples = examples[:6] + examples[-2:]
    settings = squad.SquadSettings(max_seq_length=64, doc_stride=16, max_query_length=16)
    features, pieces, _ = squad.featurize(examples, tokenizer, settings, is_training=False)
    inputs, _ = squad.feature_arrays(features)
    outputs = model.predict(inputs, verbose=0, batch_size=len(features))
    predictions, _, null_scores = squad.decode_predictions(examples, features, pieces, outputs, settings)
    module = serving_modules.SquadServingModule(model, tokenizer, settings)
    questions = tf.constant([e.question for e in examples])
    contexts = tf.constant([e.context for e in examples])
    assert len(features) > 2 * len(examples)  # several windows per question
    got = module.serve(questions, contexts)
    for index, example in enumerate(examples):
        text = got["answer_text"][index].numpy().decode("utf-8")
        assert text == predictions[example.qid], example.qid
        start, end = int(got["answer_start"][index]), int(got["answer_end"][index])
        assert example.context[start:end] == text if text else (start, end) == (-1, -1)
        assert float(got["no_answer_score"][index]) == pytest.approx(null_scores[example.qid], abs=1e-4)
    assert not got["has_answer"][-2] and got["has_answer"][-1]
    # A batch of windows shorter than the beam (12 tokens < 20): the joint head's beam shrinks
    # to the window in the graph and still picks the decoder's span and score.
    short = [squad.SquadExample("short", "Who won?", "Ada won it, then Bo.", [])]
    features, pieces, _ = squad.featurize(short, tokenizer, settings, is_training=False)
    outputs = model.predict(squad.feature_arrays(features)[0], verbose=0)
    predictions, nbest, _ = squad.decode_predictions(short, features, pieces, outputs, settings)
    got = module.serve(tf.constant(["Who won?"]), tf.constant(["Ada won it, then Bo."]))
    assert int(features[0].input_mask.sum()) < settings.n_best_size
    assert got["answer_text"][0].numpy().decode("utf-8") == predictions["short"] != ""
    assert float(got["score"][0]) == pytest.approx(nbest["short"][0]["score"], abs=1e-5)


def test_the_command_module_keeps_the_names_of_the_library_it_was_split_from():
    """``from electra_tf import export`` still gives every public name the single module had, as
    the objects of their owners (exporter, serving_modules); the command's options are checked
    before any model folder is read."""
    from electra_tf import export

    old_names = [
        "CUSTOM_OPS_FILE",
        "ClassifierServingModule",
        "DEFAULT_SIGNATURE",
        "DiscriminatorServingModule",
        "EXPORT_INFO_FILE",
        "EncoderServingModule",
        "ExportSource",
        "KINDS",
        "RegressorServingModule",
        "SIGNATURES",
        "SquadServingModule",
        "TaggerServingModule",
        "TextServingModule",
        "build_serving_module",
        "check_same_kind",
        "custom_ops",
        "existing_versions",
        "export",
        "export_info",
        "resolve_source",
        "save_serving_module",
        "signature_table_markdown",
        "tensorflow_text_ops",
    ]
    for name in old_names:
        owner = serving_modules if hasattr(serving_modules, name) else exporter
        assert getattr(export, name) is getattr(owner, name), name
    assert set(export.__all__) >= set(old_names)
    with pytest.raises(UserError, match="^--input is required"):
        exporter.run_export(exporter.ExportOptions(input=None, export_base="ram://serving"))
    with pytest.raises(UserError, match="^--export_base is required"):
        exporter.run_export(exporter.ExportOptions(input="ram://model", export_base=""))
