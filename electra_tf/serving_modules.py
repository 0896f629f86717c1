"""The serving modules: a Keras network and its WordPiece tokenizer as tf.Module signatures that
take raw text, and the documented table of those signatures.

One module per export kind (``KINDS``), each a ``TextServingModule`` whose ``signatures()`` gives
``tf.saved_model.save`` its concrete functions; electra_tf.exporter picks the module for a model
folder and writes it in TF Serving's layout.

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

from typing import Optional

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf import squad, text_packing, tokenization
from electra_tf.errors import UserError

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
        DEFAULT_SIGNATURE: {"inputs": _text_inputs("question", "context"), "outputs": _SQUAD_OUTPUTS},
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
    lines.append(
        "Classifiers and regressors also have `serving_default`: their `pair` signature "
        "for pair tasks (MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI), `single` for CoLA and "
        "SST-2. B: batch, T: tokens of the longest row in the batch, W: words of the "
        "longest row, H: hidden size, L: number of labels."
    )
    return "\n".join(lines)


def _backing_variables(model) -> list:
    """The tf.Variables that hold ``model``'s Keras variables, each once (shared embeddings)."""
    found, seen = [], set()
    for variable in model.variables:
        backing = getattr(variable, "value", variable)
        if not isinstance(backing, tf.Variable):
            raise TypeError(
                f"{variable.path}: not backed by a tf.Variable (Keras backend "
                f"{type(variable).__module__}); export needs the TensorFlow backend"
            )
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

    def pack(self, texts_a: tf.Tensor, texts_b: Optional[tf.Tensor] = None):
        """[CLS] a [SEP] (b [SEP]) for string batches [B], by fine-tuning's packer
        (text_packing.pack).

        Returns ({"input_ids", "input_mask", "segment_ids"}: int32 [B, T], ids int64 [B, T]),
        T = the longest packed row (<= max_seq_length), rows padded with 0.
        """
        features = text_packing.pack(
            self.tokenizer.tokenize(texts_a),
            None if texts_b is None else self.tokenizer.tokenize(texts_b),
            cls_id=self.tokenizer.cls_id,
            sep_id=self.tokenizer.sep_id,
            max_seq_length=self.max_seq_length,
        )
        return features, tf.cast(features["input_ids"], tf.int64)

    def signatures(self) -> dict:
        """{signature name: concrete function} for the SavedModel (serving_default included)."""
        raise NotImplementedError


def _string_spec(name: str) -> tf.TensorSpec:
    return tf.TensorSpec([None], tf.string, name=name)


class ClassifierServingModule(TextServingModule):
    """A fine-tuned classifier: "single" (text_a [B]) and "pair" (text_a, text_b [B]) give
    label_id int64 [B], label_name string [B] and probabilities float32 [B, L];
    serving_default is the arity the task was trained on."""

    kind = "classifier"

    def __init__(self, model, tokenizer, max_seq_length, label_names, default_is_pair: bool):
        super().__init__(model, tokenizer, max_seq_length)
        self.label_names = list(label_names)
        self.default_is_pair = bool(default_is_pair)
        self.single = tf.function(self._single, input_signature=[_string_spec("text_a")])
        self.pair = tf.function(self._pair, input_signature=[_string_spec("text_a"), _string_spec("text_b")])

    def _outputs(self, features):
        logits = self.model(features, training=False)["logits"]
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "label_id": label_id,
            "label_name": tf.gather(tf.constant(self.label_names), label_id),
            "probabilities": probabilities,
        }

    def _single(self, text_a):
        return self._outputs(self.pack(text_a)[0])

    def _pair(self, text_a, text_b):
        return self._outputs(self.pack(text_a, text_b)[0])

    def signatures(self):
        """The SavedModel signatures: "single" (text_a [batch] string), "pair" (text_a, text_b [batch] string) and
        serving_default (one of them)."""
        single = self.single.get_concrete_function()
        pair = self.pair.get_concrete_function()
        return {"single": single, "pair": pair, DEFAULT_SIGNATURE: pair if self.default_is_pair else single}


class RegressorServingModule(ClassifierServingModule):
    """A fine-tuned regressor (STS-B): the classifier's signatures, returning score float32 [B]
    on the task's scale."""

    kind = "regressor"

    def __init__(self, model, tokenizer, max_seq_length, default_is_pair: bool):
        super().__init__(model, tokenizer, max_seq_length, [], default_is_pair)

    def _outputs(self, features):
        return {"score": tf.cast(self.model(features, training=False)["predictions"], tf.float32)}


class DiscriminatorServingModule(TextServingModule):
    """The pretrained discriminator: text [B] -> tokens string [B, T], replaced_probability
    float32 [B, T] (the text's own tokens, without [CLS]/[SEP]) and token_count int64 [B]."""

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
        tokens = self.tokenizer.lookup_tokens(ids[:, 1 : 1 + width])
        return {
            "tokens": tf.where(real, tokens, ""),
            "replaced_probability": tf.where(real, probabilities[:, 1 : 1 + width], 0.0),
            "token_count": token_count,
        }

    def signatures(self):
        """The SavedModel signatures: serving_default only (text [batch] string)."""
        return {DEFAULT_SIGNATURE: self.serve.get_concrete_function()}


class EncoderServingModule(TextServingModule):
    """The pretrained encoder: text [B] (and text_b with "pair") -> cls_vector float32 [B, H],
    token_vectors [B, T, H] (zero on padding), tokens string [B, T], token_count int64 [B]."""

    kind = "encoder"

    def __init__(self, model, tokenizer, max_seq_length):
        super().__init__(model, tokenizer, max_seq_length)
        self.single = tf.function(self._single, input_signature=[_string_spec("text")])
        self.pair = tf.function(self._pair, input_signature=[_string_spec("text"), _string_spec("text_b")])

    def _outputs(self, features, ids):
        sequence = tf.cast(self.model(features, training=False), tf.float32)
        mask = features["input_mask"] > 0
        return {
            "cls_vector": sequence[:, 0],
            "token_vectors": tf.where(mask[:, :, tf.newaxis], sequence, 0.0),
            "tokens": tf.where(mask, self.tokenizer.lookup_tokens(ids), ""),
            "token_count": tf.reduce_sum(tf.cast(mask, tf.int64), axis=1),
        }

    def _single(self, text):
        return self._outputs(*self.pack(text))

    def _pair(self, text, text_b):
        return self._outputs(*self.pack(text, text_b))

    def signatures(self):
        """The SavedModel signatures: serving_default (text [batch] string) and "pair" (text, text_b [batch] string)."""
        return {DEFAULT_SIGNATURE: self.single.get_concrete_function(), "pair": self.pair.get_concrete_function()}


# ---------------------------------------------------------------------------------------------
# SQuAD in-graph


class SquadServingModule(TextServingModule):
    """A fine-tuned SQuAD model: question, context [B] -> answer_text string [B], answer_start /
    answer_end int64 [B] (code points of the context, end exclusive; -1 without an answer),
    score float32 [B], has_answer bool [B] and no_answer_score float32 [B] (a SQuAD 2.0 model
    answers "" above its tuned threshold; 1.1 models always answer). Windows and decoding are
    fine-tuning's (squad.windows, decode_predictions' rules)."""

    kind = "squad"

    def __init__(self, model, tokenizer, settings: squad.SquadSettings, null_threshold: Optional[float] = None):
        """``settings``: the windows and decoding fine-tuning used (its max_seq_length is the
        window length); ``null_threshold``: SQuAD 2.0's dev-tuned no-answer margin, None to
        always answer."""
        max_seq_length = settings.max_seq_length
        super().__init__(model, tokenizer, max_seq_length)
        if max_seq_length - settings.max_query_length - 3 < 1:
            raise UserError(
                f"max_seq_length {max_seq_length} leaves no room for the context "
                f"after a {settings.max_query_length}-token question"
            )
        self.settings = settings
        self.max_answer_length = int(settings.max_answer_length)
        self.n_best_size = int(settings.n_best_size)
        self.null_threshold = null_threshold
        self.serve = tf.function(self._serve, input_signature=[_string_spec("question"), _string_spec("context")])

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
            tf.gather(piece_index, tf.reshape(end_positions, [num_windows, -1]), batch_dims=1), tf.shape(end_positions)
        )
        start_ok = tf.logical_and(start_pieces >= 0, tf.gather(max_context, start_positions, batch_dims=1))
        starts_k = start_positions[:, :, tf.newaxis]
        valid = (
            start_ok[:, :, tf.newaxis]
            & (end_pieces >= 0)
            & (end_positions >= starts_k)
            & (end_positions - starts_k + 1 <= self.max_answer_length)
        )
        # decode_predictions adds the float32 scores and compares the sums.
        span_scores = tf.where(valid, start_values[:, :, tf.newaxis] + end_values, -float("inf"))
        span_scores = tf.reshape(span_scores, [num_windows, -1])
        # Python walks windows in order and each window's starts and ends by rank, and a stable
        # sort keeps the first of equal scores: argmax's first maximum in that same order.
        window_best = tf.reduce_max(span_scores, axis=1)
        window_choice = tf.argmax(span_scores, axis=1, output_type=tf.int32)
        # A question has an answer span when one of its windows has one (unsorted_segment_max
        # starts from float32's lowest value, not -inf, so it cannot tell by itself).
        found = tf.math.unsorted_segment_max(tf.cast(window_best > -float("inf"), tf.int32), window_example, batch) > 0
        best_score = tf.where(found, tf.math.unsorted_segment_max(window_best, window_example, batch), 0.0)
        is_best = tf.logical_and(
            tf.equal(window_best, tf.gather(best_score, window_example)), tf.gather(found, window_example)
        )
        best_window = tf.math.unsorted_segment_min(
            tf.where(is_best, tf.range(num_windows), num_windows), window_example, batch
        )
        best_window = tf.cast(tf.minimum(best_window, num_windows - 1), tf.int32)
        choice = tf.gather(window_choice, best_window)
        start_rank, end_rank = choice // k_end, choice % k_end
        start_position = tf.gather_nd(start_positions, tf.stack([best_window, start_rank], 1))
        end_position = tf.gather_nd(end_positions, tf.stack([best_window, start_rank, end_rank], 1))
        best_window = tf.cast(best_window, tf.int64)
        first_piece = tf.gather_nd(piece_index, tf.stack([best_window, tf.cast(start_position, tf.int64)], 1))
        last_piece = tf.gather_nd(piece_index, tf.stack([best_window, tf.cast(end_position, tf.int64)], 1))
        char_start = self._piece_value(starts, first_piece, found)
        char_end = self._piece_value(ends, last_piece, found)

        no_answer_score = self._no_answer_score(outputs, found, best_score, best_window, window_example, batch)
        has_answer = found
        if self.null_threshold is not None:
            has_answer = tf.logical_and(found, no_answer_score <= self.null_threshold)
        length = char_end - char_start
        text = tf.strings.substr(
            context, tf.where(has_answer, char_start, 0), tf.where(has_answer, length, 0), unit="UTF8_CHAR"
        )
        return {
            "answer_text": text,
            "answer_start": tf.where(has_answer, char_start, -1),
            "answer_end": tf.where(has_answer, char_end, -1),
            "score": best_score,
            "has_answer": has_answer,
            "no_answer_score": tf.cast(no_answer_score, tf.float32),
        }

    def _beam(self, outputs):
        """The candidate spans of every window, as squad.span_beams gives them: start positions
        int32 [W, k], their scores float32 [W, k], end positions int32 [W, k, k'] and scores
        [W, k, k'] (the joint head's beam, or the independent head's top starts x top ends)."""
        if "start_top_index" in outputs:
            return (
                tf.cast(outputs["start_top_index"], tf.int32),
                tf.cast(outputs["start_top_log_probs"], tf.float32),
                tf.cast(outputs["end_top_index"], tf.int32),
                tf.cast(outputs["end_top_log_probs"], tf.float32),
            )
        start_logits = tf.cast(outputs["start_logits"], tf.float32)
        end_logits = tf.cast(outputs["end_logits"], tf.float32)
        k = tf.minimum(self.n_best_size, tf.shape(start_logits)[1])
        start_values, start_positions = tf.math.top_k(start_logits, k)
        end_values, end_positions = tf.math.top_k(end_logits, k)
        shape = tf.stack([tf.shape(start_logits)[0], k, k])
        return (
            start_positions,
            start_values,
            tf.broadcast_to(end_positions[:, tf.newaxis, :], shape),
            tf.broadcast_to(end_values[:, tf.newaxis, :], shape),
        )

    @staticmethod
    def _no_answer_score(outputs, found, best_score, best_window, window_example, batch):
        """float64 [B], as squad.decode_predictions: the joint head's minus the largest
        answerable logit of the question's windows (0 without one); the independent head's
        best [CLS]-[CLS] score minus the best span score, minus that window's answerable logit."""
        if "start_top_index" in outputs:
            if "answerable_logits" not in outputs:
                return tf.zeros([batch], tf.float64)
            return -tf.math.unsorted_segment_max(
                tf.cast(outputs["answerable_logits"], tf.float64), window_example, batch
            )
        start_logits = tf.cast(outputs["start_logits"], tf.float32)
        end_logits = tf.cast(outputs["end_logits"], tf.float32)
        null_scores = tf.math.unsorted_segment_min(
            tf.cast(start_logits[:, 0] + end_logits[:, 0], tf.float64), window_example, batch
        )
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
        index = tf.where(found, values.row_starts() + piece, tf.size(values.flat_values, out_type=tf.int64))
        return tf.gather(flat, index)

    def signatures(self):
        """The SavedModel signatures: serving_default only (question, context [batch] string)."""
        return {DEFAULT_SIGNATURE: self.serve.get_concrete_function()}


class TaggerServingModule(TextServingModule):
    """NER / chunking: text -> words (white space, then BERT's punctuation and CJK splitting,
    control characters dropped, case kept) and one tag per word, predicted at the word's first
    WordPiece as electra_tf.token_classification.align/decode do."""

    kind = "tagger"

    def __init__(
        self,
        model,
        tokenizer,
        max_seq_length,
        tag_names,
        scheme: str = "file",
        default_tag: str = "O",
        segment_id: int = 0,
    ):
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
        words = tf_text.regex_split(text, squad.CONTEXT_WORD_BREAK, keep_delim_regex_pattern=squad.CONTEXT_KEPT_BREAK)
        pieces = self.tokenizer.tokenize(words.flat_values)  # [all words, (pieces)]
        counts = pieces.row_lengths()
        batch = tf.shape(text, out_type=tf.int64)[0]
        per_sentence = tf.math.unsorted_segment_sum(counts, words.value_rowids(), batch)
        sentence_start = tf.cumsum(per_sentence, exclusive=True)
        offset = tf.cumsum(counts, exclusive=True) - tf.gather(sentence_start, words.value_rowids())
        budget = self.max_seq_length - 2
        kept = tf.logical_and(counts > 0, offset < budget)
        ids = tf.RaggedTensor.from_row_lengths(pieces.flat_values, per_sentence)
        features = text_packing.pack(
            ids, cls_id=self.tokenizer.cls_id, sep_id=self.tokenizer.sep_id, max_seq_length=self.max_seq_length
        )
        features["segment_ids"] = features["input_mask"] * self.segment_id
        logits = tf.cast(self.model(features, training=False)["logits"], tf.float32)
        # Position 0 ([CLS]) stands in for words without a first piece; their tag is replaced.
        positions = words.with_flat_values(tf.where(kept, offset + 1, 0)).to_tensor(0)
        best = tf.argmax(tf.gather(logits, positions, batch_dims=1), axis=-1)
        tags = tf.gather(tf.constant(self.tag_names), best)
        if self.scheme == "bioes":
            tags = tf.strings.regex_replace(tf.strings.regex_replace(tags, "^S-", "B-"), "^E-", "I-")
        tags = tf.where(words.with_flat_values(kept).to_tensor(False), tags, self.default_tag)
        real = tf.sequence_mask(words.row_lengths(), tf.shape(positions, out_type=tf.int64)[1])
        return {"words": words.to_tensor(""), "tags": tf.where(real, tags, ""), "word_count": words.row_lengths()}

    def signatures(self):
        """The SavedModel signatures: serving_default only (text [batch] string)."""
        return {DEFAULT_SIGNATURE: self.serve.get_concrete_function()}
