"""Tokenizer: BERT's reference algorithm, checked against `tokenizers` and a pure-python reference."""

import os
import shutil
import unicodedata

import pytest
import tensorflow as tf

from electra_tf.errors import UserError
from electra_tf.tokenization import (
    SPECIAL_TOKENS,
    Tokenizer,
    basic_tokenize,
    load_vocab,
    normalize_texts,
    vocab_sha256,
)

WIKIPEDIA_LINES = 20_000


# --- A plain transcription of BERT's BasicTokenizer + WordpieceTokenizer, to arbitrate. ---------


def _reference_is_whitespace(char):
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _reference_is_control(char):
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _reference_is_punctuation(char):
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _reference_is_cjk(code):
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def reference_words(text, do_lower_case=True):
    cleaned = []
    for char in text:
        code = ord(char)
        if code == 0 or code == 0xFFFD or _reference_is_control(char):
            continue
        if _reference_is_whitespace(char):
            cleaned.append(" ")
        elif _reference_is_cjk(code):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    words = []
    for word in "".join(cleaned).split():
        if do_lower_case:
            word = unicodedata.normalize("NFD", word.lower())
            word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        current = []
        for char in word:
            if _reference_is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
    return words


def reference_wordpieces(words, vocab, max_chars=100):
    pieces = []
    for word in words:
        if len(word) > max_chars:
            pieces.append("[UNK]")
            continue
        start, word_pieces = 0, []
        while start < len(word):
            end, found = len(word), None
            while start < end:
                candidate = ("##" if start > 0 else "") + word[start:end]
                if candidate in vocab:
                    found = candidate
                    break
                end -= 1
            if found is None:
                word_pieces = ["[UNK]"]
                break
            word_pieces.append(found)
            start = end
        pieces.extend(word_pieces)
    return pieces


def reference_ids(tokenizer, text):
    vocab = tokenizer.token_to_id
    return [vocab[p] for p in reference_wordpieces(reference_words(text, tokenizer.do_lower_case), vocab)]


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uncased(bert_vocab_file):
    return Tokenizer(str(bert_vocab_file), do_lower_case=True)


@pytest.fixture(scope="module")
def wikipedia_lines(wikipedia_dir):
    """The first WIKIPEDIA_LINES non-empty, non-tag lines across wiki_00, wiki_01, ... in order."""
    lines = []
    for name in sorted(os.listdir(wikipedia_dir)):
        with open(wikipedia_dir / name, encoding="utf-8") as handle:
            for line in handle:
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("<doc") or line.startswith("</doc"):
                    continue
                lines.append(line)
                if len(lines) == WIKIPEDIA_LINES:
                    return lines
    return lines


def write_vocab_file(path, tokens):
    path.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")
    return str(path)


def tokens_of(tokenizer, text):
    return tokenizer.convert_ids_to_tokens(tokenizer.encode(text))


# --- Agreement with independent implementations on real text ----------------------------------


def test_matches_huggingface_tokenizers_and_the_reference_on_wikipedia(uncased, bert_vocab_file, wikipedia_lines):
    from tokenizers import BertWordPieceTokenizer

    assert len(wikipedia_lines) == WIKIPEDIA_LINES
    ours = []
    for start in range(0, len(wikipedia_lines), 1000):
        ours.extend(uncased.encode(wikipedia_lines[start : start + 1000]))
    huggingface = BertWordPieceTokenizer(
        str(bert_vocab_file), lowercase=True, strip_accents=True, clean_text=True, handle_chinese_chars=True
    )
    theirs = [encoding.ids for encoding in huggingface.encode_batch(wikipedia_lines, add_special_tokens=False)]
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    for i in differing:
        print(
            f"line {i}: ours {uncased.convert_ids_to_tokens(ours[i])[:40]}\n"
            f"       tokenizers {uncased.convert_ids_to_tokens(theirs[i])[:40]}"
        )
    assert len(differing) <= 0.001 * len(wikipedia_lines)
    assert sum(len(ids) for ids in ours) > 1_000_000
    # BERT's algorithm decides every line, differing or not (the python reference is ~4 s here).
    mismatched = [i for i, line in enumerate(wikipedia_lines) if ours[i] != reference_ids(uncased, line)]
    assert mismatched == [], [wikipedia_lines[i][:200] for i in mismatched[:5]]


def test_basic_tokenize_gives_the_reference_words(wikipedia_lines):
    lines = wikipedia_lines[:3000] + ["x " + "é" * 120 + " y", "ΟΔΟΣ, 東京! a\u200bb\u2028c"]
    for do_lower_case in (True, False):
        words = basic_tokenize(tf.constant(lines), do_lower_case).to_list()
        for line, row in zip(lines, words):
            assert [w.decode("utf-8") for w in row] == reference_words(line, do_lower_case), line[:200]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("ΟΔΟΣ ΣΑΣ", "final sigma: Python's str.lower() gives ς, tokenizers lower-cases per character (σ)"),
        ("a\ue000b", "private-use character: BERT keeps it (one [UNK] word), tokenizers drops it as control"),
    ],
)
def test_known_differences_from_tokenizers_follow_bert(uncased, bert_vocab_file, text, reason):
    from tokenizers import BertWordPieceTokenizer

    huggingface = BertWordPieceTokenizer(str(bert_vocab_file), lowercase=True)
    ours = uncased.encode(text)
    assert ours == reference_ids(uncased, text), reason
    assert ours != huggingface.encode(text, add_special_tokens=False).ids, reason


def test_every_code_point_is_handled_like_bert(tmp_path):
    """Each assigned code point c in "a{c}b": dropped, white space, split off, or part of the word.

    The tiny vocabulary makes those outcomes give different ids: [a, ##b], [a, b], [a, UNK, b]
    and [UNK] (or pieces when c normalises to a or b).
    """
    vocab = write_vocab_file(tmp_path / "vocab.txt", list(SPECIAL_TOKENS) + ["a", "b", "##a", "##b"])
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    assert len(chars) > 250_000
    for do_lower_case, sample in ((True, chars), (False, chars[::7])):
        tokenizer = Tokenizer(vocab, do_lower_case=do_lower_case)
        texts = ["a" + c + "b" for c in sample]
        ours = []
        for start in range(0, len(texts), 50_000):
            ours.extend(tokenizer.tokenize(tf.constant(texts[start : start + 50_000])).to_list())
        differing = [hex(ord(c)) for c, text, ids in zip(sample, texts, ours) if ids != reference_ids(tokenizer, text)]
        assert differing == []
    # Lower-casing and NFD agree with Python's string by string, except letters that are newer in
    # Python's Unicode tables than in TensorFlow's ICU (40 capitals from Unicode 14 with TF 2.21).
    normalized = normalize_texts(tf.constant(chars), True).numpy()
    kept = [(c, n.decode("utf-8")) for c, n in zip(chars, normalized) if unicodedata.category(c) not in ("Cc", "Cf")]
    reference = {
        c: "".join(x for x in unicodedata.normalize("NFD", c.lower()) if unicodedata.category(x) != "Mn")
        for c, _ in kept
    }
    differing = [(hex(ord(c)), unicodedata.name(c, "?")) for c, n in kept if n != reference[c] and c != "\ufffd"]
    print(differing)
    assert len(differing) <= 64 and all(unicodedata.category(chr(int(code, 16))) == "Lu" for code, _ in differing)


# --- Hand-checked cases ---------------------------------------------------------------------------


def test_punctuation_cjk_accents_and_continuations(uncased):
    assert tokens_of(uncased, "Hello, world!! (ok)") == ["hello", ",", "world", "!", "!", "(", "ok", ")"]
    assert tokens_of(uncased, "$5+3=8^2|~`x") == ["$", "5", "+", "3", "=", "8", "^", "2", "|", "~", "`", "x"]
    assert tokens_of(uncased, "naïve Café ÀÉÎ") == ["naive", "cafe", "ae", "##i"]
    assert tokens_of(uncased, "東京は日本") == ["東", "京", "は", "日", "本"]
    assert tokens_of(uncased, "unaffable") == ["una", "##ffa", "##ble"]  # greedy longest match first
    assert tokens_of(uncased, "ΟΔΟΣ") == ["ο", "##δ", "##ος"]  # final sigma, as Python lower()
    assert tokens_of(uncased, "İstanbul") == ["istanbul"]  # lower() adds U+0307, an Mn mark


def test_control_and_whitespace_characters(uncased):
    # NUL, U+FFFD, zero-width space (Cf) and soft hyphen (Cf) vanish without splitting the word.
    assert tokens_of(uncased, "hel\x00lo\ufffd wor\u200bld\u00ad") == ["hello", "world"]
    # Tab, newline, no-break space, ideographic space and line separator all split words.
    assert tokens_of(uncased, "a\tb\nc\u00a0d\u3000e\u2028f") == ["a", "b", "c", "d", "e", "f"]
    assert uncased.encode("") == []
    assert uncased.encode(["", "  \t "]) == [[], []]


def test_word_length_limit_counts_characters_not_bytes(tmp_path):
    vocab = write_vocab_file(tmp_path / "vocab.txt", list(SPECIAL_TOKENS) + ["a", "##a", "é", "##é", "x", ","])
    cased = Tokenizer(vocab, do_lower_case=False)
    assert cased.encode("a" * 100) == [cased.token_to_id["a"]] + [cased.token_to_id["##a"]] * 99
    assert cased.encode("x " + "a" * 101 + ", x") == [cased.token_to_id[t] for t in ["x", "[UNK]", ",", "x"]]
    # 60 characters are 120 UTF-8 bytes: still a word for BERT, whose limit counts characters.
    assert cased.encode("é" * 60) == [cased.token_to_id["é"]] + [cased.token_to_id["##é"]] * 59
    assert cased.encode("é" * 101) == [cased.unk_id]
    # A word with no full segmentation is a single [UNK].
    assert cased.encode("ab") == [cased.unk_id]


def test_cased_mode_keeps_case_and_accents(tmp_path):
    tokens = list(SPECIAL_TOKENS) + ["Café", "café", "cafe", "Cafe", "Ab", "##Ç", "ab", "##c"]
    vocab = write_vocab_file(tmp_path / "vocab.txt", tokens)
    cased = Tokenizer(vocab, do_lower_case=False)
    uncased = Tokenizer(vocab, do_lower_case=True)
    assert tokens_of(cased, "Café AbÇ") == ["Café", "Ab", "##Ç"]
    assert tokens_of(uncased, "Café AbÇ") == ["cafe", "ab", "##c"]
    for text in ["Café AbÇ", "CAFÉ", "ab Ab"]:
        assert cased.encode(text) == reference_ids(cased, text)


def test_bert_layout_and_compact_layout_both_work(bert_vocab_file, tmp_path):
    bert = Tokenizer(str(bert_vocab_file))
    assert (bert.pad_id, bert.unk_id, bert.cls_id, bert.sep_id, bert.mask_id) == (0, 100, 101, 102, 103)
    assert bert.vocab_size == 30522
    compact = Tokenizer(write_vocab_file(tmp_path / "vocab.txt", list(SPECIAL_TOKENS) + ["hello"]))
    assert (compact.pad_id, compact.unk_id, compact.cls_id, compact.sep_id, compact.mask_id) == (0, 1, 2, 3, 4)
    assert compact.encode("hello there") == [5, 1]
    assert compact.convert_ids_to_tokens([2, 5, 3]) == ["[CLS]", "hello", "[SEP]"]
    assert len(vocab_sha256(bert_vocab_file)) == 64


# --- Vocabulary errors ------------------------------------------------------------------------------


def _user_error(path):
    with pytest.raises(UserError) as caught:
        Tokenizer(str(path))
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_and_empty_vocab_files_are_one_line_errors(tmp_path):
    assert "not found" in _user_error(tmp_path / "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert "empty" in _user_error(empty)
    assert "directory" in _user_error(tmp_path)
    duplicated = tmp_path / "duplicated.txt"
    write_vocab_file(duplicated, list(SPECIAL_TOKENS) + ["a", "a"])
    assert "duplicate" in _user_error(duplicated)
    spaced = tmp_path / "spaced.txt"
    write_vocab_file(spaced, list(SPECIAL_TOKENS) + ["a", "## a"])
    assert "spaced.txt:7:" in _user_error(spaced)


@pytest.mark.parametrize("missing", SPECIAL_TOKENS)
def test_each_missing_special_token_is_named(tmp_path, missing):
    path = tmp_path / "vocab.txt"
    write_vocab_file(path, [t for t in SPECIAL_TOKENS if t != missing] + ["hello"])
    message = _user_error(path)
    assert f"missing special token(s) {missing};" in message
    with pytest.raises(UserError):
        load_vocab(str(path))


# --- Graph use: tf.data, tf.function, SavedModel ------------------------------------------------


def test_works_in_tf_function_and_tf_data(uncased):
    texts = ["Hello, world!", "", "The naïve café."]
    expected = uncased.encode(texts)
    traced = tf.function(uncased.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    assert traced(tf.constant(texts)).to_list() == expected
    per_line = tf.data.Dataset.from_tensor_slices(texts).map(uncased.tokenize)
    assert [ids.tolist() for ids in per_line.as_numpy_iterator()] == expected
    batched = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(uncased.tokenize)
    assert [row for batch in batched for row in batch.to_list()] == expected
    assert uncased.lookup_tokens(uncased.tokenize(["hello world"])).to_list() == [[b"hello", b"world"]]


def test_survives_saved_model_round_trip_with_vocab_as_asset(bert_vocab_file, tmp_path):
    vocab_copy = tmp_path / "source" / "vocab.txt"
    vocab_copy.parent.mkdir()
    shutil.copyfile(bert_vocab_file, vocab_copy)
    tokenizer = Tokenizer(str(vocab_copy))
    module = tf.Module()
    module.tokenizer = tokenizer
    module.tokenize = tf.function(tokenizer.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    texts = ["Anarchism is a political philosophy.", "ΟΔΟΣ naïve " + "z" * 120, ""]
    expected = tokenizer.encode(texts)
    export_dir = tmp_path / "saved"
    tf.saved_model.save(module, str(export_dir))
    shutil.rmtree(vocab_copy.parent)  # the SavedModel must not need the original file
    assert (export_dir / "assets" / "vocab.txt").exists()
    loaded = tf.saved_model.load(str(export_dir))
    assert loaded.tokenize(tf.constant(texts)).to_list() == expected
    assert loaded.tokenizer.vocab_asset.asset_path.numpy().decode().startswith(str(export_dir))
