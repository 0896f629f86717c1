"""BERT WordPiece tokenization in the TensorFlow graph, matching BERT's reference tokenizer.

BERT's reference (google-research/bert tokenization.py) does, per line of text:
  1. clean: drop NUL, U+FFFD and control characters (categories Cc, Cf except tab/newline/CR);
     white space (space, tab, newline, CR, category Zs) becomes a space;
  2. put spaces around CJK ideographs, split on white space;
  3. uncased only: Python `str.lower()`, then canonical NFD and drop combining marks (Mn);
  4. split off punctuation (Unicode P* plus ASCII 33-47, 58-64, 91-96, 123-126);
  5. greedy longest-match-first WordPiece with `##` continuations; a word longer than 100
     characters, or one with no full segmentation, becomes a single [UNK].

tensorflow-text's tokenizers with their built-in lower-casing case-fold (Greek final sigma becomes
a plain sigma) and apply compatibility (NFKC-style) mappings, which the reference does not. So this
module does steps 1 and 3 itself with ops that behave like Python (`tf.strings.lower` is ICU's full
lower-case mapping, final sigma included; `normalize_utf8(NFD)`; RE2 `\\p{Mn}`), and hands the
normalised text to FastWordpieceTokenizer, whose end-to-end mode does steps 2, 4 and 5 with BERT's
own white space, punctuation and CJK definitions (checked code point by code point in the tests).
Its word limit counts bytes, not characters, so it is given a limit of 4 bytes x 100 characters
and words over 100 characters are replaced beforehand by a character that is not in the
vocabulary (so they become one [UNK], as in the reference).
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, Sequence, Union

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf import fileio
from electra_tf.errors import UserError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS_PER_WORD = 100
# UTF-8 needs at most 4 bytes per character, so this byte limit never rejects a word of
# <= MAX_CHARS_PER_WORD characters; longer words are handled before FastWordpieceTokenizer.
_MAX_BYTES_PER_WORD = 4 * MAX_CHARS_PER_WORD

# BERT's white space after cleaning: tab, newline, CR and Zs, plus U+2028/U+2029 (Zl/Zp), which
# survive the reference's cleaning and are then split on by Python's str.split(). These are exactly
# the characters FastWordpieceTokenizer splits on (checked over all code points), so they are left
# in place rather than rewritten to spaces, which saves a full pass over the text.
_WHITESPACE_CHARS = r"\t\n\r \x{00A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
# NUL, U+FFFD and control characters (Cc = U+0000-001F and U+007F-009F, Cf), except the
# tab/newline/CR that BERT treats as white space.
_DROPPED_CLASS = r"[\x{0000}-\x{0008}\x{000B}\x{000C}\x{000E}-\x{001F}\x{007F}-\x{009F}\x{FFFD}\p{Cf}]"
_COMBINING_MARK_CLASS = r"\p{Mn}"
# A character that ends a word for BERT: white space, BERT's punctuation, or a CJK ideograph
# (each of which is a word by itself).
_PUNCTUATION_AND_CJK_CHARS = (
    r"!-/:-@\[-`{-~\p{P}"
    r"\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}"
)
# Cheap line filter for over-long words: ASCII-only break characters keep the RE2 automaton small
# (the exact class with \\p{P} and CJK repeated 101 times exhausts RE2's DFA memory). Every line
# with a real over-long word matches; the few false alarms are handled exactly, word by word.
_MAYBE_OVERLONG_LINE = "(?s).*[^" + _WHITESPACE_CHARS + r"!-/:-@\[-`{-~]{" + str(MAX_CHARS_PER_WORD + 1) + "}.*"
_WORD_BREAK_CHAR = "[" + _WHITESPACE_CHARS + _PUNCTUATION_AND_CJK_CHARS + "]"
_KEPT_WORD_BREAK_CHAR = "[" + _PUNCTUATION_AND_CJK_CHARS + "]"
# Private-use characters: never punctuation, white space or CJK, and absent from any normal
# vocabulary, so a word made of one of them tokenizes to a single [UNK].
_UNKNOWN_WORD_CANDIDATES = tuple(chr(code) for code in range(0xE000, 0xE100))


def load_vocab(vocab_file: str) -> list[str]:
    """Reads a WordPiece vocabulary: one token per line, the line number is the id.

    Raises UserError (one line, naming the file) when the file is missing, unreadable, empty, has a
    blank or duplicate token or one with white space inside, or lacks one of SPECIAL_TOKENS.
    """
    name = os.fspath(vocab_file)
    if not fileio.exists(name):
        raise UserError(f"{name}: vocabulary file not found; pass an existing vocab.txt (one token per line)")
    if fileio.isdir(name):
        raise UserError(f"{name}: is a directory, expected a vocabulary file (one token per line)")
    try:
        lines = fileio.read_text(name).split("\n")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{name}: not UTF-8 text ({error.reason} at byte {error.start}); a vocabulary is UTF-8, one token per line"
        ) from None
    except fileio.errors() as error:
        raise UserError(f"{name}: cannot read vocabulary file ({_reason(error)})") from None
    # BERT's reader strips each line; a final newline leaves one empty string at the end.
    tokens = [line.strip() for line in lines]
    while tokens and not tokens[-1]:
        tokens.pop()
    if not tokens:
        raise UserError(
            f"{name}: vocabulary file is empty; it needs one token per line, including {' '.join(SPECIAL_TOKENS)}"
        )
    first_line_of: dict[str, int] = {}
    for line_number, token in enumerate(tokens, start=1):
        if not token:
            raise UserError(
                f"{name}:{line_number}: blank line in vocabulary; "
                "every line must hold one token (its id is the line number - 1)"
            )
        if any(char.isspace() for char in token):
            # BERT never produces a word with white space in it, and FastWordpieceTokenizer
            # mis-tokenizes neighbouring words when such a token is in its vocabulary.
            raise UserError(
                f"{name}:{line_number}: token {token!r} contains white space; a WordPiece token is one word"
            )
        if token in first_line_of:
            raise UserError(
                f"{name}:{line_number}: duplicate token {token!r} (first on line {first_line_of[token]}); "
                "each token must appear once"
            )
        first_line_of[token] = line_number
    missing = [token for token in SPECIAL_TOKENS if token not in first_line_of]
    if missing:
        raise UserError(
            f"{name}: missing special token(s) {', '.join(missing)}; a BERT-style vocabulary needs "
            f"{' '.join(SPECIAL_TOKENS)} (the reference crashes with KeyError here)"
        )
    return tokens


def _reason(error) -> str:
    return getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)


def vocab_sha256(vocab_file) -> str:
    """Hex sha256 of the vocabulary file's bytes, to record which vocabulary made a dataset."""
    digest = hashlib.sha256()
    try:
        with fileio.open(os.fspath(vocab_file), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except fileio.errors() as error:
        raise UserError(f"{os.fspath(vocab_file)}: cannot read vocabulary file ({_reason(error)})") from None
    return digest.hexdigest()


def normalize_texts(texts: tf.Tensor, do_lower_case: bool) -> tf.Tensor:
    """BERT's text cleaning (and, when uncased, lower-casing and accent stripping), in-graph.

    Args:
      texts: tf.string of any shape, UTF-8.
      do_lower_case: True for uncased vocabularies.
    Returns:
      tf.string of the same shape. White space is kept as it is and splitting on it, on
      punctuation and around CJK is left to WordPiece (or basic_tokenize).
    """
    texts = tf.strings.regex_replace(texts, _DROPPED_CLASS, "")
    if do_lower_case:
        texts = tf.strings.lower(texts, encoding="utf-8")
        texts = tf_text.normalize_utf8(texts, "NFD")
        texts = tf.strings.regex_replace(texts, _COMBINING_MARK_CLASS, "")
    return texts


def basic_tokenize(texts: tf.Tensor, do_lower_case: bool) -> tf.RaggedTensor:
    """BERT's BasicTokenizer in-graph: the words WordPiece sees (used to learn vocabularies).

    Args:
      texts: tf.string [batch], UTF-8.
    Returns:
      tf.string RaggedTensor [batch, (num_words)]: cleaned, (uncased: lower-cased and accent
      stripped), split on white space, punctuation and around CJK ideographs.
    """
    normalized = normalize_texts(tf.convert_to_tensor(texts, dtype=tf.string), do_lower_case)
    return tf_text.regex_split(normalized, _WORD_BREAK_CHAR, keep_delim_regex_pattern=_KEPT_WORD_BREAK_CHAR)


class Tokenizer(tf.Module):
    """Text -> WordPiece ids, in-graph, exactly like BERT's reference FullTokenizer.

    Works eagerly, inside tf.function and tf.data map, and inside a SavedModel: the vocabulary
    file is tracked as a tf.saved_model.Asset and the WordPiece model is a graph constant.

    Example:

        tokenizer = Tokenizer("../shared/data/vocab/bert-base-uncased/vocab.txt")
        tokenizer.encode("Hello, world!")             # [7592, 1010, 2088, 999]
        tokenizer.tokenize(tf.constant(["Hello, world!", "ELECTRA"]))
        # int64 RaggedTensor [2, (num_tokens)]: [[7592, 1010, 2088, 999], [11322, 2527]]
        tokenizer.convert_ids_to_tokens([11322, 2527])  # ["elect", "##ra"]
    """

    def __init__(self, vocab_file: str, do_lower_case: bool = True, name: str | None = None):
        super().__init__(name=name)
        self.vocab_file = os.fspath(vocab_file)
        self.do_lower_case = bool(do_lower_case)
        # tf.Module would wrap these 30k-entry containers for dependency tracking (a third of a
        # second per Tokenizer); they hold no variables, so tracking is switched off for them.
        self._setattr_tracking = False
        self.vocab = load_vocab(self.vocab_file)
        self.vocab_size = len(self.vocab)
        self.token_to_id = {token: index for index, token in enumerate(self.vocab)}
        self._setattr_tracking = True
        self.pad_id = self.token_to_id["[PAD]"]
        self.unk_id = self.token_to_id["[UNK]"]
        self.cls_id = self.token_to_id["[CLS]"]
        self.sep_id = self.token_to_id["[SEP]"]
        self.mask_id = self.token_to_id["[MASK]"]
        self.vocab_asset = tf.saved_model.Asset(self.vocab_file)
        self._unknown_word = next((char for char in _UNKNOWN_WORD_CANDIDATES if char not in self.token_to_id), None)
        if self._unknown_word is None:
            raise UserError(
                f"{self.vocab_file}: vocabulary contains every character U+E000..U+E0FF; cannot mark over-long words"
            )
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocab,
            suffix_indicator="##",
            max_bytes_per_word=_MAX_BYTES_PER_WORD,
            token_out_type=tf.int64,
            unknown_token="[UNK]",
            no_pretokenization=False,
            support_detokenization=False,
        )
        self._id_to_token_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.range(self.vocab_size, dtype=tf.int64), tf.constant(self.vocab, dtype=tf.string)
            ),
            default_value="[UNK]",
        )

    def tokenize(self, texts) -> tf.RaggedTensor:
        """WordPiece ids of each text.

        Args:
          texts: tf.string [batch] (or a python list of str). A scalar string is accepted too.
        Returns:
          int64 RaggedTensor [batch, (num_tokens)]; for a scalar input, an int64 Tensor
          [num_tokens]. No [CLS]/[SEP] are added.
        """
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        normalized = normalize_texts(texts, self.do_lower_case)
        normalized = self._mark_overlong_words(normalized)
        return self._wordpiece.tokenize(normalized)

    def _mark_overlong_words(self, normalized: tf.Tensor) -> tf.Tensor:
        """Replaces each word of more than MAX_CHARS_PER_WORD characters by one unknown character.

        normalized: tf.string of any shape, already cleaned. Same shape out.
        """
        flat = tf.reshape(normalized, [-1])
        suspect = tf.where(tf.strings.regex_full_match(flat, _MAYBE_OVERLONG_LINE))

        def rewrite_suspects() -> tf.Tensor:
            lines = tf.gather_nd(flat, suspect)
            # Spaces are dropped and punctuation/CJK kept as their own pieces, so re-joining the
            # pieces with spaces changes nothing for WordPiece except the replaced words.
            pieces = tf_text.regex_split(lines, _WORD_BREAK_CHAR, keep_delim_regex_pattern=_KEPT_WORD_BREAK_CHAR)
            too_long = tf.strings.length(pieces.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
            pieces = pieces.with_flat_values(tf.where(too_long, tf.constant(self._unknown_word), pieces.flat_values))
            rewritten = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
            return tf.tensor_scatter_nd_update(flat, suspect, rewritten)

        flat = tf.cond(tf.size(suspect) > 0, rewrite_suspects, lambda: flat)
        return tf.reshape(flat, tf.shape(normalized))

    def lookup_tokens(self, ids) -> tf.Tensor:
        """In-graph id -> token string; ids: int64 of any shape (or ragged), same shape out."""
        if isinstance(ids, tf.RaggedTensor):
            return ids.with_flat_values(self._id_to_token_table.lookup(tf.cast(ids.flat_values, tf.int64)))
        return self._id_to_token_table.lookup(tf.cast(ids, tf.int64))

    def encode(self, texts: Union[str, Sequence[str]]) -> list[list[int]]:
        """Eager convenience: a list of texts -> a list of id lists (one str -> one id list)."""
        if isinstance(texts, str):
            return self.encode([texts])[0]
        texts = list(texts)
        if not texts:
            return []
        return self.tokenize(tf.constant(texts, dtype=tf.string)).to_list()

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """The vocabulary tokens of ``ids`` (ints or numpy integers), in order.

        Raises:
          ValueError: an id is outside the vocabulary.
        """
        tokens = []
        for token_id in ids:
            token_id = int(token_id)
            if not 0 <= token_id < self.vocab_size:
                raise ValueError(
                    f"token id {token_id} is outside the vocabulary of {self.vocab_size} ({self.vocab_file})"
                )
            tokens.append(self.vocab[token_id])
        return tokens

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """The ids of ``tokens``; a token not in the vocabulary gets the [UNK] id."""
        return [self.token_to_id.get(token, self.unk_id) for token in tokens]
