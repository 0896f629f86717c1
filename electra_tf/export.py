"""SavedModels for TF Serving that take raw text: tokenization, the network and decoding in-graph.

``export(source, export_base)`` turns this project's output into
``<export_base>/<version>/saved_model.pb`` (TF Serving's layout; version a positive integer):

  fine-tuned classifier    (a trial's finetuned/, head "classification")   kind "classifier"
  fine-tuned STS-B model   (head "regression")                             kind "regressor"
  fine-tuned SQuAD model   (head "span", 1.1 or 2.0)                       kind "squad"
  fine-tuned NER / chunker (head "tagging")                                kind "tagger"
  pretrained discriminator (run_pretraining's model_dir or pretrained/)     kind "discriminator"
  pretrained encoder       (the same folders, or a model without discriminator) kind "encoder"

Every input is a batch of UTF-8 strings; the vocabulary is an asset of the SavedModel and the
WordPiece tokenizer (electra_tf.tokenization, tensorflow-text) runs in the graph, so a client sends
nothing but text. Sequences are packed like fine-tuning packs them ([CLS] a [SEP] (b [SEP]), the
longer text of a pair truncated first, to the model's max_seq_length) and padded to the longest
one in the batch, so mixed lengths and empty strings need nothing special.

TF Serving signatures have no optional inputs, so a model that takes one text or a pair has one
signature per arity: ``single`` (text_a) and ``pair`` (text_a, text_b) for GLUE models, with
``serving_default`` the one the task was trained on; ``serving_default`` (text) and ``pair``
(text, text_b) for the encoder. ``SIGNATURES`` is the documented table of every signature's inputs
and outputs (README and tests use it); ``signature_table_markdown()`` renders it.

SQuAD: the question (cut to max_query_length WordPieces) and the context are windowed exactly like
electra_tf.squad.featurize (windows every doc_stride tokens, the "max context" rule), every window
of the batch runs through the network at once, and the best span over all windows of a question is
chosen as electra_tf.squad.decode_predictions does (the joint head's beam of starts and ends per
start, or the independent head's top n_best starts x ends; at most max_answer_length tokens).
Offsets are in characters (Unicode code points) of the context, end exclusive, so
``context[answer_start:answer_end] == answer_text`` in Python. SQuAD 2.0 models answer "" when
the no-answer score exceeds the threshold tuned on dev during fine-tuning.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from typing import Callable, Optional

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf import artifacts, fileio, squad, text_packing, tokenization
from electra_tf.errors import UserError
from electra_tf.progress import log

KINDS = ("classifier", "regressor", "squad", "tagger", "discriminator", "encoder")
DEFAULT_SIGNATURE = "serving_default"

_STRINGS = "string"
# name -> (dtype, shape); shapes use B = batch, T = tokens (the longest in the batch),
# H = hidden size, L = number of labels.
_CLASSIFIER_OUTPUTS = {
    "label_id": ("int64", "[B]"),
    "label_name": (_STRINGS, "[B]"),
    "probabilities": ("float32", "[B, L]"),
}
_REGRESSOR_OUTPUTS = {"score": ("float32", "[B]")}
_SQUAD_OUTPUTS = {
    "answer_text": (_STRINGS, "[B]"),
    "answer_start": ("int64", "[B]"),
    "answer_end": ("int64", "[B]"),
    "score": ("float32", "[B]"),
    "has_answer": ("bool", "[B]"),
    "no_answer_score": ("float32", "[B]"),
}
_DISCRIMINATOR_OUTPUTS = {
    "tokens": (_STRINGS, "[B, T]"),
    "replaced_probability": ("float32", "[B, T]"),
    "token_count": ("int64", "[B]"),
}
_TAGGER_OUTPUTS = {
    "words": (_STRINGS, "[B, W]"),
    "tags": (_STRINGS, "[B, W]"),
    "word_count": ("int64", "[B]"),
}
_ENCODER_OUTPUTS = {
    "cls_vector": ("float32", "[B, H]"),
    "token_vectors": ("float32", "[B, T, H]"),
    "tokens": (_STRINGS, "[B, T]"),
    "token_count": ("int64", "[B]"),
}


def _text_inputs(*names):
    return {name: (_STRINGS, "[B]") for name in names}


# kind -> signature name -> {"inputs": {name: (dtype, shape)}, "outputs": {...}}.
# serving_default of a GLUE model is its "single" or "pair" signature (see module docstring).
SIGNATURES = {
    "classifier": {
        "single": {"inputs": _text_inputs("text_a"), "outputs": _CLASSIFIER_OUTPUTS},
        "pair": {"inputs": _text_inputs("text_a", "text_b"), "outputs": _CLASSIFIER_OUTPUTS},
    },
    "regressor": {
        "single": {"inputs": _text_inputs("text_a"), "outputs": _REGRESSOR_OUTPUTS},
        "pair": {"inputs": _text_inputs("text_a", "text_b"), "outputs": _REGRESSOR_OUTPUTS},
    },
    "squad": {
        DEFAULT_SIGNATURE: {"inputs": _text_inputs("question", "context"),
                            "outputs": _SQUAD_OUTPUTS},
    },
    "tagger": {
        DEFAULT_SIGNATURE: {"inputs": _text_inputs("text"), "outputs": _TAGGER_OUTPUTS},
    },
    "discriminator": {
        DEFAULT_SIGNATURE: {"inputs": _text_inputs("text"), "outputs": _DISCRIMINATOR_OUTPUTS},
    },
    "encoder": {
        DEFAULT_SIGNATURE: {"inputs": _text_inputs("text"), "outputs": _ENCODER_OUTPUTS},
        "pair": {"inputs": _text_inputs("text", "text_b"), "outputs": _ENCODER_OUTPUTS},
    },
}

def signature_table_markdown() -> str:
    """The SIGNATURES table as Markdown (for the README)."""
    lines = ["| kind | signature | inputs | outputs |", "|---|---|---|---|"]
    for kind, signatures in SIGNATURES.items():
        for name, spec in signatures.items():
            inputs = ", ".join(f"`{n}` {d} {s}" for n, (d, s) in spec["inputs"].items())
            outputs = ", ".join(f"`{n}` {d} {s}" for n, (d, s) in spec["outputs"].items())
            lines.append(f"| {kind} | `{name}` | {inputs} | {outputs} |")
    lines.append("")
    lines.append("Classifiers and regressors also have `serving_default`: their `pair` signature "
                 "for pair tasks (MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI), `single` for CoLA and "
                 "SST-2. B: batch, T: tokens of the longest row in the batch, W: words of the "
                 "longest row, H: hidden size, L: number of labels.")
    return "\n".join(lines)


def _backing_variables(model) -> list:
    """The tf.Variables that hold ``model``'s Keras variables, each once (shared embeddings)."""
    found, seen = [], set()
    for variable in model.variables:
        backing = getattr(variable, "value", variable)
        if not isinstance(backing, tf.Variable):
            raise TypeError(f"{variable.path}: not backed by a tf.Variable (Keras backend "
                            f"{type(variable).__module__}); export needs the TensorFlow backend")
        if id(backing) not in seen:
            seen.add(id(backing))
            found.append(backing)
    return found


class TextServingModule(tf.Module):
    """Tokenizer + Keras network; subclasses add the signatures of one kind."""

    kind = ""

    def __init__(self, model, tokenizer: tokenization.Tokenizer, max_seq_length: int):
        super().__init__(name=f"{self.kind}_serving")
        # Tracking the Keras model would save each Keras variable as a variable of its own
        # (keras-team/keras#20095): the MetaGraph's saver then restores those copies while the
        # signatures read the tf.Variables behind them, which TF Serving and the TF1 loader leave
        # uninitialised. So the model is hidden from tracking and those tf.Variables are tracked.
        self._setattr_tracking = False
        self.model = model
        self._setattr_tracking = True
        self.model_variables = _backing_variables(model)
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)

    def _row_of(self, batch: tf.Tensor, token_id: int) -> tf.RaggedTensor:
        return tf.RaggedTensor.from_tensor(
            tf.fill(tf.stack([tf.shape(batch, out_type=tf.int64)[0], 1]),
                    tf.constant(token_id, tf.int64)))

    def pack(self, texts_a: tf.Tensor, texts_b: Optional[tf.Tensor] = None):
        """[CLS] a [SEP] (b [SEP]) for string batches [B], by fine-tuning's packer
        (text_packing.pack).

        Returns ({"input_ids", "input_mask", "segment_ids"}: int32 [B, T], ids int64 [B, T]),
        T = the longest packed row (<= max_seq_length), rows padded with 0.
        """
        features = text_packing.pack(
            self.tokenizer.tokenize(texts_a),
            None if texts_b is None else self.tokenizer.tokenize(texts_b),
            cls_id=self.tokenizer.cls_id, sep_id=self.tokenizer.sep_id,
            max_seq_length=self.max_seq_length)
        return features, tf.cast(features["input_ids"], tf.int64)

    def signatures(self) -> dict:
        raise NotImplementedError


def _string_spec(name: str) -> tf.TensorSpec:
    return tf.TensorSpec([None], tf.string, name=name)


class ClassifierServingModule(TextServingModule):
    kind = "classifier"

    def __init__(self, model, tokenizer, max_seq_length, label_names, default_is_pair: bool):
        super().__init__(model, tokenizer, max_seq_length)
        self.label_names = list(label_names)
        self.default_is_pair = bool(default_is_pair)
        self.single = tf.function(self._single, input_signature=[_string_spec("text_a")])
        self.pair = tf.function(self._pair, input_signature=[_string_spec("text_a"),
                                                             _string_spec("text_b")])

    def _outputs(self, features):
        logits = self.model(features, training=False)["logits"]
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"label_id": label_id,
                "label_name": tf.gather(tf.constant(self.label_names), label_id),
                "probabilities": probabilities}

    def _single(self, text_a):
        return self._outputs(self.pack(text_a)[0])

    def _pair(self, text_a, text_b):
        return self._outputs(self.pack(text_a, text_b)[0])

    def signatures(self):
        single = self.single.get_concrete_function()
        pair = self.pair.get_concrete_function()
        return {"single": single, "pair": pair,
                DEFAULT_SIGNATURE: pair if self.default_is_pair else single}


class RegressorServingModule(ClassifierServingModule):
    kind = "regressor"

    def __init__(self, model, tokenizer, max_seq_length, default_is_pair: bool):
        super().__init__(model, tokenizer, max_seq_length, [], default_is_pair)

    def _outputs(self, features):
        return {"score": tf.cast(self.model(features, training=False)["predictions"],
                                 tf.float32)}


class DiscriminatorServingModule(TextServingModule):
    kind = "discriminator"

    def __init__(self, model, tokenizer, max_seq_length):
        super().__init__(model, tokenizer, max_seq_length)
        self.serve = tf.function(self._serve, input_signature=[_string_spec("text")])

    def _serve(self, text):
        features, ids = self.pack(text)
        probabilities = tf.sigmoid(tf.cast(self.model(features, training=False), tf.float32))
        # Without [CLS] and [SEP]: position j of the outputs is the text's j-th token.
        token_count = tf.reduce_sum(tf.cast(features["input_mask"], tf.int64), axis=1) - 2
        width = tf.shape(ids)[1] - 2
        real = tf.sequence_mask(token_count, width)
        tokens = self.tokenizer.lookup_tokens(ids[:, 1:1 + width])
        return {"tokens": tf.where(real, tokens, ""),
                "replaced_probability": tf.where(real, probabilities[:, 1:1 + width], 0.0),
                "token_count": token_count}

    def signatures(self):
        return {DEFAULT_SIGNATURE: self.serve.get_concrete_function()}


class EncoderServingModule(TextServingModule):
    kind = "encoder"

    def __init__(self, model, tokenizer, max_seq_length):
        super().__init__(model, tokenizer, max_seq_length)
        self.single = tf.function(self._single, input_signature=[_string_spec("text")])
        self.pair = tf.function(self._pair, input_signature=[_string_spec("text"),
                                                             _string_spec("text_b")])

    def _outputs(self, features, ids):
        sequence = tf.cast(self.model(features, training=False), tf.float32)
        mask = features["input_mask"] > 0
        return {"cls_vector": sequence[:, 0],
                "token_vectors": tf.where(mask[:, :, tf.newaxis], sequence, 0.0),
                "tokens": tf.where(mask, self.tokenizer.lookup_tokens(ids), ""),
                "token_count": tf.reduce_sum(tf.cast(mask, tf.int64), axis=1)}

    def _single(self, text):
        return self._outputs(*self.pack(text))

    def _pair(self, text, text_b):
        return self._outputs(*self.pack(text, text_b))

    def signatures(self):
        return {DEFAULT_SIGNATURE: self.single.get_concrete_function(),
                "pair": self.pair.get_concrete_function()}


# ---------------------------------------------------------------------------------------------
# SQuAD in-graph

class SquadServingModule(TextServingModule):
    kind = "squad"

    def __init__(self, model, tokenizer, settings: squad.SquadSettings,
                 null_threshold: Optional[float] = None):
        """``settings``: the windows and decoding fine-tuning used (its max_seq_length is the
        window length); ``null_threshold``: SQuAD 2.0's dev-tuned no-answer margin, None to
        always answer."""
        max_seq_length = settings.max_seq_length
        super().__init__(model, tokenizer, max_seq_length)
        if max_seq_length - settings.max_query_length - 3 < 1:
            raise UserError(f"max_seq_length {max_seq_length} leaves no room for the context "
                            f"after a {settings.max_query_length}-token question")
        self.settings = settings
        self.max_answer_length = int(settings.max_answer_length)
        self.n_best_size = int(settings.n_best_size)
        self.null_threshold = null_threshold
        self.serve = tf.function(self._serve, input_signature=[_string_spec("question"),
                                                               _string_spec("context")])

    def windows(self, question: tf.Tensor, context: tf.Tensor) -> squad.Windows:
        """Every window of every question, by fine-tuning's windowing (squad.windows)."""
        return squad.windows(question, context, self.tokenizer, self.settings)

    def _serve(self, question, context):
        found = self.windows(question, context)
        features, piece_index, max_context = found.features, found.piece_index, found.max_context
        window_example, starts, ends = found.window_example, found.starts, found.ends
        batch = tf.shape(question, out_type=tf.int64)[0]
        outputs = self.model(features, training=False)
        start_positions, start_values, end_positions, end_values = self._beam(outputs)
        num_windows = tf.shape(start_positions, out_type=tf.int64)[0]
        k_end = tf.shape(end_positions)[2]
        start_pieces = tf.gather(piece_index, start_positions, batch_dims=1)
        end_pieces = tf.reshape(
            tf.gather(piece_index, tf.reshape(end_positions, [num_windows, -1]), batch_dims=1),
            tf.shape(end_positions))
        start_ok = tf.logical_and(start_pieces >= 0,
                                  tf.gather(max_context, start_positions, batch_dims=1))
        starts_k = start_positions[:, :, tf.newaxis]
        valid = (start_ok[:, :, tf.newaxis] & (end_pieces >= 0)
                 & (end_positions >= starts_k)
                 & (end_positions - starts_k + 1 <= self.max_answer_length))
        # decode_predictions adds the float32 scores and compares the sums.
        span_scores = tf.where(valid, start_values[:, :, tf.newaxis] + end_values,
                               -float("inf"))
        span_scores = tf.reshape(span_scores, [num_windows, -1])
        # Python walks windows in order and each window's starts and ends by rank, and a stable
        # sort keeps the first of equal scores: argmax's first maximum in that same order.
        window_best = tf.reduce_max(span_scores, axis=1)
        window_choice = tf.argmax(span_scores, axis=1, output_type=tf.int32)
        # A question has an answer span when one of its windows has one (unsorted_segment_max
        # starts from float32's lowest value, not -inf, so it cannot tell by itself).
        found = tf.math.unsorted_segment_max(
            tf.cast(window_best > -float("inf"), tf.int32), window_example, batch) > 0
        best_score = tf.where(
            found, tf.math.unsorted_segment_max(window_best, window_example, batch), 0.0)
        is_best = tf.logical_and(tf.equal(window_best, tf.gather(best_score, window_example)),
                                 tf.gather(found, window_example))
        best_window = tf.math.unsorted_segment_min(
            tf.where(is_best, tf.range(num_windows), num_windows), window_example, batch)
        best_window = tf.cast(tf.minimum(best_window, num_windows - 1), tf.int32)
        choice = tf.gather(window_choice, best_window)
        start_rank, end_rank = choice // k_end, choice % k_end
        start_position = tf.gather_nd(start_positions, tf.stack([best_window, start_rank], 1))
        end_position = tf.gather_nd(end_positions, tf.stack([best_window, start_rank, end_rank],
                                                            1))
        best_window = tf.cast(best_window, tf.int64)
        first_piece = tf.gather_nd(piece_index, tf.stack(
            [best_window, tf.cast(start_position, tf.int64)], 1))
        last_piece = tf.gather_nd(piece_index, tf.stack(
            [best_window, tf.cast(end_position, tf.int64)], 1))
        char_start = self._piece_value(starts, first_piece, found)
        char_end = self._piece_value(ends, last_piece, found)

        no_answer_score = self._no_answer_score(outputs, found, best_score, best_window,
                                                window_example, batch)
        has_answer = found
        if self.null_threshold is not None:
            has_answer = tf.logical_and(found, no_answer_score <= self.null_threshold)
        length = char_end - char_start
        text = tf.strings.substr(context, tf.where(has_answer, char_start, 0),
                                 tf.where(has_answer, length, 0), unit="UTF8_CHAR")
        return {"answer_text": text,
                "answer_start": tf.where(has_answer, char_start, -1),
                "answer_end": tf.where(has_answer, char_end, -1),
                "score": best_score,
                "has_answer": has_answer,
                "no_answer_score": tf.cast(no_answer_score, tf.float32)}

    def _beam(self, outputs):
        """The candidate spans of every window, as squad.span_beams gives them: start positions
        int32 [W, k], their scores float32 [W, k], end positions int32 [W, k, k'] and scores
        [W, k, k'] (the joint head's beam, or the independent head's top starts x top ends)."""
        if "start_top_index" in outputs:
            return (tf.cast(outputs["start_top_index"], tf.int32),
                    tf.cast(outputs["start_top_log_probs"], tf.float32),
                    tf.cast(outputs["end_top_index"], tf.int32),
                    tf.cast(outputs["end_top_log_probs"], tf.float32))
        start_logits = tf.cast(outputs["start_logits"], tf.float32)
        end_logits = tf.cast(outputs["end_logits"], tf.float32)
        k = tf.minimum(self.n_best_size, tf.shape(start_logits)[1])
        start_values, start_positions = tf.math.top_k(start_logits, k)
        end_values, end_positions = tf.math.top_k(end_logits, k)
        shape = tf.stack([tf.shape(start_logits)[0], k, k])
        return (start_positions, start_values,
                tf.broadcast_to(end_positions[:, tf.newaxis, :], shape),
                tf.broadcast_to(end_values[:, tf.newaxis, :], shape))

    @staticmethod
    def _no_answer_score(outputs, found, best_score, best_window, window_example, batch):
        """float64 [B], as squad.decode_predictions: the joint head's minus the largest
        answerable logit of the question's windows (0 without one); the independent head's
        best [CLS]-[CLS] score minus the best span score, minus that window's answerable logit."""
        if "start_top_index" in outputs:
            if "answerable_logits" not in outputs:
                return tf.zeros([batch], tf.float64)
            return -tf.math.unsorted_segment_max(
                tf.cast(outputs["answerable_logits"], tf.float64), window_example, batch)
        start_logits = tf.cast(outputs["start_logits"], tf.float32)
        end_logits = tf.cast(outputs["end_logits"], tf.float32)
        null_scores = tf.math.unsorted_segment_min(
            tf.cast(start_logits[:, 0] + end_logits[:, 0], tf.float64), window_example, batch)
        best64 = tf.cast(best_score, tf.float64)
        no_answer_score = tf.where(found, null_scores - best64, 0.0)
        if "answerable_logits" in outputs:
            answerable = tf.cast(tf.gather(outputs["answerable_logits"], best_window), tf.float64)
            no_answer_score = tf.where(found, no_answer_score - answerable, no_answer_score)
        return no_answer_score

    @staticmethod
    def _piece_value(values: tf.RaggedTensor, piece: tf.Tensor, found: tf.Tensor) -> tf.Tensor:
        """values[i][piece[i]] where found[i], else 0 (values int64 ragged [B, (n)])."""
        flat = tf.concat([values.flat_values, [0]], 0)
        index = tf.where(found, values.row_starts() + piece,
                         tf.size(values.flat_values, out_type=tf.int64))
        return tf.gather(flat, index)

    def signatures(self):
        return {DEFAULT_SIGNATURE: self.serve.get_concrete_function()}


class TaggerServingModule(TextServingModule):
    """NER / chunking: text -> words (white space, then BERT's punctuation and CJK splitting,
    control characters dropped, case kept) and one tag per word, predicted at the word's first
    WordPiece as electra_tf.token_classification.align/decode do."""

    kind = "tagger"

    def __init__(self, model, tokenizer, max_seq_length, tag_names, scheme: str = "file",
                 default_tag: str = "O", segment_id: int = 0):
        super().__init__(model, tokenizer, max_seq_length)
        self.tag_names = list(tag_names)
        self.segment_id = int(segment_id)
        self.scheme = scheme
        self.default_tag = default_tag
        self.serve = tf.function(self._serve, input_signature=[_string_spec("text")])

    def _serve(self, text):
        # Dropped before splitting, as BERT's cleaning drops them ("a\x00b" is one word), and
        # because regex_split stops reading a string at a NUL.
        text = tf.strings.regex_replace(text, tokenization._DROPPED_CLASS, "")
        words = tf_text.regex_split(text, squad.CONTEXT_WORD_BREAK,
                                    keep_delim_regex_pattern=squad.CONTEXT_KEPT_BREAK)
        pieces = self.tokenizer.tokenize(words.flat_values)  # [all words, (pieces)]
        counts = pieces.row_lengths()
        batch = tf.shape(text, out_type=tf.int64)[0]
        per_sentence = tf.math.unsorted_segment_sum(counts, words.value_rowids(), batch)
        sentence_start = tf.cumsum(per_sentence, exclusive=True)
        offset = tf.cumsum(counts, exclusive=True) - tf.gather(sentence_start,
                                                               words.value_rowids())
        budget = self.max_seq_length - 2
        kept = tf.logical_and(counts > 0, offset < budget)
        ids = tf.RaggedTensor.from_row_lengths(pieces.flat_values, per_sentence)
        features = text_packing.pack(ids, cls_id=self.tokenizer.cls_id,
                                     sep_id=self.tokenizer.sep_id,
                                     max_seq_length=self.max_seq_length)
        features["segment_ids"] = features["input_mask"] * self.segment_id
        logits = tf.cast(self.model(features, training=False)["logits"], tf.float32)
        # Position 0 ([CLS]) stands in for words without a first piece; their tag is replaced.
        positions = words.with_flat_values(tf.where(kept, offset + 1, 0)).to_tensor(0)
        best = tf.argmax(tf.gather(logits, positions, batch_dims=1), axis=-1)
        tags = tf.gather(tf.constant(self.tag_names), best)
        if self.scheme == "bioes":
            tags = tf.strings.regex_replace(tf.strings.regex_replace(tags, "^S-", "B-"),
                                            "^E-", "I-")
        tags = tf.where(words.with_flat_values(kept).to_tensor(False), tags, self.default_tag)
        real = tf.sequence_mask(words.row_lengths(), tf.shape(positions, out_type=tf.int64)[1])
        return {"words": words.to_tensor(""), "tags": tf.where(real, tags, ""),
                "word_count": words.row_lengths()}

    def signatures(self):
        return {DEFAULT_SIGNATURE: self.serve.get_concrete_function()}


# ---------------------------------------------------------------------------------------------
# What to export


@dataclasses.dataclass
class ExportSource:
    """A model folder resolved: what it is and everything needed to serve it."""

    kind: str
    directory: str  # the finetuned/ or pretrained/ folder
    vocab_file: str
    do_lower_case: bool
    max_seq_length: int
    head: Optional[dict] = None  # fine-tuned models: head.json


_HEAD_TO_KIND = {"classification": "classifier", "regression": "regressor", "span": "squad",
                 "tagging": "tagger"}


def _check_vocab(vocab_file: str, recorded_sha: Optional[str], recorded_path: Optional[str],
                 vocab_size: int) -> str:
    if recorded_sha and tokenization.vocab_sha256(vocab_file) != recorded_sha:
        raise UserError(f"--vocab_file {vocab_file} is not the vocabulary the model was trained "
                        f"with ({recorded_path}, sha256 {recorded_sha[:12]}...); pass that file")
    size = len(tokenization.load_vocab(vocab_file))
    if size > vocab_size:
        raise UserError(f"--vocab_file {vocab_file} has {size} tokens but the model's vocab_size "
                        f"is {vocab_size}; pass the vocabulary the model was pretrained with")
    return vocab_file


def resolve_source(path: str, kind: Optional[str] = None, vocab_file: Optional[str] = None,
                   max_seq_length: Optional[int] = None) -> ExportSource:
    """What ``path`` holds: a fine-tuning trial (its finetuned/ folder, the trial folder, or a
    task folder, meaning its median trial), or pretraining output (run_pretraining's model_dir
    or its pretrained/ folder). Raises UserError naming the flag to fix."""
    if not path or not fileio.isdir(path):
        raise UserError(f"--input {path}: not a directory; give a fine-tuning trial's finetuned/ "
                        "folder (or its task folder) or a run_pretraining --model_dir")
    if kind is not None and kind not in KINDS:
        raise UserError(f"--kind={kind}: must be one of {', '.join(KINDS)}")
    finetuned = artifacts.find_finetuned(path, flag=f"--input {path}")
    if finetuned is not None:
        head = artifacts.check_finetuned(finetuned)
        config = artifacts.read_config(finetuned)
        found_kind = _HEAD_TO_KIND[head["head"]]
        if kind not in (None, found_kind):
            raise UserError(f"--kind={kind}: {finetuned} holds a fine-tuned {found_kind} "
                            f"({head['task']}); drop --kind or pass --kind={found_kind}")
        recorded = artifacts.finetuned_vocab(finetuned, head)
        if vocab_file is None:
            if recorded is None:
                raise UserError(f"{finetuned}/{artifacts.HEAD_FILE} does not record the "
                                "vocabulary; pass --vocab_file (the one it was fine-tuned with)")
            if not fileio.isfile(recorded):
                raise UserError(f"{recorded} (the vocabulary {finetuned} was fine-tuned with) "
                                "is missing; pass --vocab_file with a copy of it")
            vocab_file = recorded
        vocab_file = _check_vocab(vocab_file, head.get("vocab_sha256"), recorded,
                                  config.vocab_size)
        length = max_seq_length or head["max_seq_length"]
        source = ExportSource(found_kind, finetuned, vocab_file,
                              head.get("do_lower_case", config.do_lower_case), length, head)
    else:
        pretrained = artifacts.find_pretrained(path)
        if pretrained is None:
            raise UserError(f"--input {path}: no fine-tuned model (head.json) or pretrained "
                            f"model (config.json + backbone.weights.h5, or pretrained/ with "
                            "them) found there")
        config = artifacts.read_config(pretrained)
        # The paper's MLM ablations train a discriminator-sized masked LM: only its encoder has
        # a serving form here.
        has_discriminator = config.discriminator_task == "detection" and fileio.isfile(
            os.path.join(pretrained, artifacts.DISCRIMINATOR_WEIGHTS_FILE))
        if kind is None:
            if has_discriminator:
                raise UserError(f"--input {pretrained} is a pretrained model: pass "
                                "--kind=discriminator (replaced-token probabilities) or "
                                "--kind=encoder (vectors)")
            kind = "encoder"
        if kind not in ("discriminator", "encoder"):
            raise UserError(f"--kind={kind}: {pretrained} is a pretrained model, export it as "
                            "--kind=discriminator or --kind=encoder (fine-tune it first for "
                            f"{kind})")
        if kind == "discriminator" and not has_discriminator:
            raise UserError(f"--kind=discriminator: {pretrained} has no "
                            "replaced-token detector (trained without the ELECTRA objective or "
                            f"with discriminator_task {config.discriminator_task}); use "
                            "--kind=encoder")
        if vocab_file is None:
            # Converted released checkpoints carry their vocab.txt; run_pretraining's output
            # does not (its data's manifest.json names the vocabulary).
            beside = artifacts.pretrained_vocab(pretrained)
            if beside is None:
                raise UserError("--vocab_file is required for a pretrained model (the "
                                "vocabulary its pretraining data was built with, recorded in "
                                "that data's manifest.json)")
            vocab_file = beside
        vocab_file = _check_vocab(vocab_file, None, None, config.vocab_size)
        source = ExportSource(kind, pretrained, vocab_file, config.do_lower_case,
                              max_seq_length or config.max_seq_length)
    if source.max_seq_length < 3 or source.max_seq_length > config.max_position_embeddings:
        raise UserError(f"--max_seq_length={source.max_seq_length}: must be between 3 and the "
                        f"model's max_position_embeddings {config.max_position_embeddings}")
    return source


def build_serving_module(source: ExportSource) -> TextServingModule:
    """Loads the Keras network of ``source`` and wraps it with its tokenizer and signatures."""
    from electra_tf import modeling

    tokenizer = tokenization.Tokenizer(source.vocab_file, do_lower_case=source.do_lower_case)
    if source.kind == "encoder":
        _, backbone = modeling.load_pretrained_backbone(source.directory)
        return EncoderServingModule(backbone, tokenizer, source.max_seq_length)
    if source.kind == "discriminator":
        _, discriminator = modeling.load_pretrained_discriminator(source.directory)
        return DiscriminatorServingModule(discriminator, tokenizer, source.max_seq_length)
    head, model = artifacts.load_finetuned(source.directory)
    if source.kind == "squad":
        recorded = dict(head.get("squad") or {})
        null_threshold = recorded.pop("null_threshold", None)
        # A 1.1 model's answerability head (--squad_v1_answerable_head) is not used to decode.
        is_v2 = head.get("answerable") and head.get("squad_version", "2.0") == "2.0"
        if is_v2 and null_threshold is None:
            raise UserError(f"{source.directory}/{artifacts.HEAD_FILE}: a SQuAD 2.0 model without a "
                            "recorded null_threshold; re-run fine-tuning to record it")
        known = {field.name for field in dataclasses.fields(squad.SquadSettings)}
        # The window length is the export's (--max_seq_length may shorten it), not fine-tuning's.
        recorded["max_seq_length"] = source.max_seq_length
        settings = squad.SquadSettings(**{k: v for k, v in recorded.items() if k in known})
        return SquadServingModule(model, tokenizer, settings, null_threshold)
    if source.kind == "tagger":
        tagging = head.get("tagging") or {}
        return TaggerServingModule(model, tokenizer, source.max_seq_length, head["label_names"],
                                   tagging.get("scheme", "file"), tagging.get("default_tag", "O"),
                                   tagging.get("segment_id", 0))
    # read_head fills in a GLUE task's own for folders written before head.json recorded it.
    is_pair = head["pair"]
    if source.kind == "regressor":
        return RegressorServingModule(model, tokenizer, source.max_seq_length, is_pair)
    label_names = head.get("label_names") or [str(i) for i in range(head["num_labels"])]
    return ClassifierServingModule(model, tokenizer, source.max_seq_length, label_names,
                                   is_pair)


# ---------------------------------------------------------------------------------------------
# Writing TF Serving's layout

_VERSION_DIR = re.compile(r"^[0-9]+$")


def existing_versions(export_base: str) -> list[int]:
    if not fileio.isdir(export_base):
        return []
    return sorted(int(name) for name in fileio.listdir(export_base)
                  if _VERSION_DIR.match(name) and int(name) > 0)


# Written beside each SavedModel (TF Serving ignores assets.extra/ apart from warm-up files):
# what was exported from where, so a later export can refuse to change a base's kind.
EXPORT_INFO_FILE = os.path.join("assets.extra", "electra_tf_export.json")


def export_info(version_dir: str) -> Optional[dict]:
    path = os.path.join(version_dir, EXPORT_INFO_FILE)
    if not fileio.isfile(path):
        return None
    return fileio.read_json(path)


def check_same_kind(export_base: str, kind: str) -> None:
    """Refuses to add a ``kind`` version to a base whose newest version is another kind:
    TF Serving would switch every client to signatures they do not send."""
    versions = existing_versions(export_base)
    if not versions:
        return
    newest = os.path.join(export_base, str(versions[-1]))
    info = export_info(newest)
    if info is not None and info.get("kind") != kind:
        raise UserError(f"{newest} holds a model of kind {info.get('kind')}, not {kind}; TF "
                        "Serving serves the newest version, so use another --export_base")


# TF Serving and saved_model_cli have TensorFlow's own ops only unless built or started with
# these; the file names what a server must provide (see the README's TF Serving section).
CUSTOM_OPS_FILE = os.path.join("assets.extra", "custom_ops.json")
_TEXT_OPS: Optional[dict] = None


def tensorflow_text_ops() -> dict:
    """{op name: file name of the tensorflow-text op library that registers it}."""
    global _TEXT_OPS
    if _TEXT_OPS is None:
        import glob

        from tensorflow.core.framework import op_def_pb2
        from tensorflow.python.client import pywrap_tf_session

        found = {}
        library_dir = os.path.join(os.path.dirname(tf_text.__file__), "python", "ops")
        for library in sorted(glob.glob(os.path.join(library_dir, "_*.so"))):
            handle = pywrap_tf_session.TF_LoadLibrary(library)
            try:
                ops = op_def_pb2.OpList()
                ops.ParseFromString(bytes(pywrap_tf_session.TF_GetOpList(handle)))
            finally:
                pywrap_tf_session.TF_DeleteLibraryHandle(handle)
            found.update((op.name, os.path.basename(library)) for op in ops.op)
        _TEXT_OPS = found
    return _TEXT_OPS


def custom_ops(saved_model_dir: str) -> dict:
    """The ops of a SavedModel that core TensorFlow lacks: {"tensorflow-text": {"version",
    "ops": {op: library}}}, from its graph and every function in it."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(fileio.read_bytes(os.path.join(saved_model_dir,
                                                               "saved_model.pb")))
    used = set()
    for meta_graph in saved_model.meta_graphs:
        used.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            used.update(node.op for node in function.node_def)
    text_ops = tensorflow_text_ops()
    needed = {op: text_ops[op] for op in sorted(used) if op in text_ops}
    return {"tensorflow-text": {"version": tf_text.__version__, "ops": needed}} if needed else {}


def save_serving_module(module: TextServingModule, export_base: str,
                        version: Optional[int] = None, overwrite: bool = False,
                        info: Optional[dict] = None) -> str:
    """Writes ``module`` as <export_base>/<version>/ (default: one above the highest version),
    with ``info`` (JSON) in its EXPORT_INFO_FILE and the custom ops it needs in CUSTOM_OPS_FILE.

    The SavedModel is written beside it under a name TF Serving ignores and moved into place
    (fileio.move_tree: one rename locally; on gs:// saved_model.pb is the last object copied),
    so a server watching export_base never loads a half-written version. An existing version is
    only replaced with ``overwrite``. Returns the version directory.
    """
    if version is None:
        version = (existing_versions(export_base) or [0])[-1] + 1
    if version < 1:
        raise UserError(f"--version={version}: TF Serving versions are positive integers")
    target = os.path.join(export_base, str(version))
    if fileio.exists(target) and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite to replace it or omit "
                        "--version to write the next version")
    fileio.makedirs(export_base)
    staging = os.path.join(export_base,
                           f".writing-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        ops = custom_ops(staging)
        fileio.makedirs(os.path.join(staging, "assets.extra"))
        fileio.write_json_atomic(os.path.join(staging, CUSTOM_OPS_FILE), ops)
        fileio.write_json_atomic(os.path.join(staging, EXPORT_INFO_FILE),
                                 dict(info or {}, kind=module.kind, version=version,
                                      custom_ops=ops))
        if fileio.exists(target):
            fileio.rmtree(target)
        fileio.move_tree(staging, target, commit_files=["saved_model.pb"])
    finally:
        if fileio.exists(staging):
            fileio.rmtree(staging)
    return target


def export(input_path: str, export_base: str, *, kind: Optional[str] = None,
           vocab_file: Optional[str] = None, max_seq_length: Optional[int] = None,
           version: Optional[int] = None, overwrite: bool = False,
           log: Callable[[str], None] = lambda message: None) -> tuple[str, ExportSource]:
    """resolve_source + build_serving_module + save_serving_module; returns (version dir,
    source). A version that exists is refused before any model is loaded."""
    if version is not None and version < 1:
        raise UserError(f"--version={version}: TF Serving versions are positive integers")
    if version is not None and fileio.exists(os.path.join(export_base, str(version))) \
            and not overwrite:
        raise UserError(f"{os.path.join(export_base, str(version))} already exists; pass "
                        "--overwrite to replace it or omit --version to write the next version")
    source = resolve_source(input_path, kind, vocab_file, max_seq_length)
    check_same_kind(export_base, source.kind)
    log(f"Loading the {source.kind} in {source.directory} (vocabulary {source.vocab_file}, "
        f"max_seq_length {source.max_seq_length})")
    module = build_serving_module(source)
    log(f"Tracing its signatures and writing the SavedModel under {export_base}")
    info = {"source": fileio.abspath(source.directory),
            "task": (source.head or {}).get("task"),
            "vocab_sha256": tokenization.vocab_sha256(source.vocab_file),
            "do_lower_case": source.do_lower_case, "max_seq_length": source.max_seq_length,
            "signatures": sorted(set(SIGNATURES[source.kind]) | {DEFAULT_SIGNATURE})}
    return save_serving_module(module, export_base, version, overwrite, info), source


def main(argv) -> None:
    from absl import flags

    del argv
    values = flags.FLAGS
    if not values.input:
        raise UserError("--input is required: a fine-tuning trial's finetuned/ folder (or the "
                        "task folder) or a run_pretraining --model_dir")
    if not values.export_base:
        raise UserError("--export_base is required: the folder TF Serving serves (versions are "
                        "written inside it)")
    from absl import logging

    # SavedModel writing logs every step (with the staging folder's name) at INFO.
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")

    target, source = export(values.input, values.export_base, kind=values.kind,
                            vocab_file=values.vocab_file, max_seq_length=values.max_seq_length,
                            version=values.version, overwrite=values.overwrite, log=log)
    names = sorted(set(SIGNATURES[source.kind]) | {DEFAULT_SIGNATURE})
    log(f"Exported the {source.kind} to {target} (signatures: {', '.join(names)})")


def define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("input", None, "A fine-tuning trial's finetuned/ folder, its trial or "
                        "task folder (task: the median trial), or a run_pretraining --model_dir "
                        "(or its pretrained/ folder).")
    flags.DEFINE_string("export_base", None, "TF Serving's model base path; the SavedModel goes "
                        "to <export_base>/<version>/.")
    flags.DEFINE_integer("version", None, "Version number (default: one above the highest "
                         "existing version, 1 for a new folder).")
    flags.DEFINE_boolean("overwrite", False, "Replace an existing --version.")
    flags.DEFINE_enum("kind", None, ["discriminator", "encoder", "classifier", "regressor",
                                     "squad", "tagger"],
                      "Pretrained models: discriminator or encoder. Fine-tuned models: read "
                      "from head.json (giving it only checks it).")
    flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary. Fine-tuned models record "
                        "theirs (a file given here must have the recorded sha256); pretrained "
                        "models need it unless their folder has a vocab.txt.")
    flags.DEFINE_integer("max_seq_length", None, "Longest packed sequence (default: the "
                         "fine-tuning max_seq_length, or the pretraining config's).")


if __name__ == "__main__":
    from electra_tf import cli

    define_flags()
    cli.run(main)
