"""Learns a WordPiece vocabulary from a text corpus with tensorflow-text's learner.

Words are produced by the same in-graph normalisation and splitting the Tokenizer uses
(`tokenization.basic_tokenize`), counted, and handed to
`tensorflow_text.tools.wordpiece_vocab.wordpiece_tokenizer_learner_lib.learn`.

Layout of the written vocabulary (one token per line, id = line number - 1) is BERT's own, so
every preset (whose special ids are BERT's) works with a learned vocabulary unchanged:
  0 [PAD], 1-99 [unused0]..[unused98], 100 [UNK], 101 [CLS], 102 [SEP], 103 [MASK],
  then single characters and their `##` continuations (sorted), then learned pieces by
  frequency, then more `[unusedN]` fillers when the learner stops short of --vocab_size, so the
  file always has exactly vocab_size lines.

The corpus is read by electra_tf.corpus, with the same flags as build_pretraining_data
(--corpus_dir, --input_format, --json_text_field, ...), so both tools see the same text: the
WikiExtractor tags and titles and the JSON syntax of JSON Lines never reach the vocabulary.

    python -m electra_tf.build_vocab --corpus_dir=/data/wiki --vocab_size=8000 --output_file=vocab.txt
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import time
from typing import Iterable, Iterator, Optional, Sequence

from absl import flags

from electra_tf import cli, corpus, fileio
from electra_tf.errors import UserError
from electra_tf.progress import ProgressReporter

# TensorFlow is imported where it is used, so that flag and file mistakes are reported at once
# instead of after the multi-second TensorFlow import.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # = tokenization.SPECIAL_TOKENS

# BERT keeps ids 1-99 for [unused0]..[unused98] and puts [UNK] [CLS] [SEP] [MASK] at 100-103.
BERT_UNUSED_SLOTS = 99
MIN_VOCAB_SIZE = 200
_COUNT_BATCH_LINES = 1000


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def count_words(
    texts: Iterable[str], do_lower_case: bool, progress: Optional[ProgressReporter] = None
) -> collections.Counter:
    """Counts BERT words (as the Tokenizer splits them) over texts; keys are str."""
    import tensorflow as tf

    from electra_tf.tokenization import basic_tokenize

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def unique_words(batch):
        words, _, counts = tf.unique_with_counts(basic_tokenize(batch, do_lower_case).flat_values)
        return words, counts

    counts: collections.Counter = collections.Counter()
    for batch in _batches(texts, _COUNT_BATCH_LINES):
        words, word_counts = unique_words(tf.constant(batch))
        counts.update(dict(zip(words.numpy().tolist(), word_counts.numpy().tolist())))
        if progress is not None:
            # Bytes are the reader's to report: only it knows the size on disk of compressed files.
            progress.update(lines=len(batch))
    return collections.Counter({word.decode("utf-8"): count for word, count in counts.items()})


def learn_vocab(
    texts: Iterable[str], vocab_size: int, do_lower_case: bool = True, progress: Optional[ProgressReporter] = None
) -> list[str]:
    """A WordPiece vocabulary of exactly vocab_size tokens learned from texts (see module doc)."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise UserError(f"--vocab_size={vocab_size} is too small; use at least {MIN_VOCAB_SIZE}")
    word_counts = count_words(texts, do_lower_case, progress)
    if not word_counts:
        raise UserError("the corpus has no words; pass text files with one paragraph per line")
    # The learner lays out SPECIAL_TOKENS then its pieces; BERT's unused slots come on top.
    budget = vocab_size - BERT_UNUSED_SLOTS
    # Every kept character costs two entries (c and ##c), so the alphabet must stay well below
    # the budget or rare scripts would crowd out the learned pieces.
    max_unique_chars = max(32, min(1000, budget // 8))
    tokens = _learn_with_threshold_search(word_counts, budget, max_unique_chars, progress)
    tokens = _trim_to_size(tokens, budget)
    if len(tokens) > budget:  # cannot happen while max_unique_chars <= (budget - 5) / 2
        raise UserError(
            f"--vocab_size={vocab_size} cannot hold the corpus alphabet "
            f"({len(tokens) + BERT_UNUSED_SLOTS} tokens needed)"
        )
    return bert_layout(tokens[len(SPECIAL_TOKENS) :], vocab_size)


def bert_layout(learned: Sequence[str], vocab_size: int) -> list[str]:
    """[PAD], [unused0..98], [UNK] [CLS] [SEP] [MASK], the learned pieces, then fillers to vocab_size."""
    pad, unknown, cls, sep, mask = SPECIAL_TOKENS
    tokens = [pad, *(f"[unused{index}]" for index in range(BERT_UNUSED_SLOTS)), unknown, cls, sep, mask]
    tokens.extend(learned)
    taken = set(tokens)
    filler_index = BERT_UNUSED_SLOTS
    while len(tokens) < vocab_size:
        filler = f"[unused{filler_index}]"
        filler_index += 1
        if filler not in taken:
            tokens.append(filler)
    return tokens


def _learn_with_threshold_search(
    word_counts: collections.Counter,
    vocab_size: int,
    max_unique_chars: int,
    progress: Optional[ProgressReporter],
    slack_ratio: float = 0.02,
) -> list[str]:
    """The learner's own steps (`learner_lib.learn`), with a faster search for the threshold.

    `learn` bisects the count threshold over [1, max count], about 15 full learning passes for a
    few MB of text. The vocabulary size falls smoothly with the threshold, so this starts at the
    count of the vocab_size-th most frequent word and interpolates in log space between the
    closest thresholds on either side; it usually needs 4-6 passes to land within slack_ratio
    below vocab_size.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner_lib

    params = learner_lib.Params(
        upper_thresh=None,
        lower_thresh=1,
        num_iterations=4,
        max_input_tokens=int(5e6),
        max_token_length=50,
        max_unique_chars=max_unique_chars,
        vocab_size=vocab_size,
        slack_ratio=slack_ratio,
        include_joiner_token=True,
        joiner="##",
        reserved_tokens=list(SPECIAL_TOKENS),
    )
    all_counts = learner_lib.get_input_words(list(word_counts.items()), params.reserved_tokens, params.max_token_length)
    allowed_chars = learner_lib.get_allowed_chars(all_counts, params.max_unique_chars)
    inputs = learner_lib.filter_input_words(all_counts, allowed_chars, params.max_input_tokens)
    ranked_counts = sorted(word_counts.values(), reverse=True)
    max_count = ranked_counts[0]
    threshold = max(1, ranked_counts[min(vocab_size, len(ranked_counts)) - 1])
    too_big: Optional[tuple[int, int, list[str]]] = None  # smallest overshooting threshold
    fits: Optional[tuple[int, int, list[str]]] = None  # largest-size vocabulary within budget
    while True:
        vocab = learner_lib.learn_with_thresh(inputs, threshold, params)
        size = len(vocab)
        if progress is not None:
            progress.stream.write(f"[build_vocab] threshold {threshold}: {size:,} tokens\n")
        if size > vocab_size:
            too_big = (threshold, size, vocab) if too_big is None or threshold > too_big[0] else too_big
        elif fits is None or threshold < fits[0]:
            fits = (threshold, size, vocab)
        if fits is not None and vocab_size - fits[1] <= slack_ratio * vocab_size:
            return fits[2]
        if fits is None:
            if threshold >= max_count:
                return vocab  # even the highest threshold overshoots; the caller trims it
            threshold = min(max_count, threshold * 2)
        elif too_big is None:
            if fits[0] <= 1:
                return fits[2]  # every word piece is in already: the corpus is too small
            threshold = max(1, fits[0] // 2)
        else:
            low, high = too_big[0], fits[0]  # thresholds: low overshoots, high fits
            if high - low <= 1:
                # Small corpora jump in size between adjacent thresholds; the overshooting
                # vocabulary, trimmed of its rarest pieces, beats padding with fillers.
                return too_big[2]
            # Interpolate log(threshold) linearly in log(size) towards the budget.
            position = (math.log(too_big[1]) - math.log(vocab_size * (1 - slack_ratio / 2))) / (
                math.log(too_big[1]) - math.log(max(fits[1], 1))
            )
            position = min(max(position, 0.1), 0.9)
            guess = round(math.exp(math.log(low) + position * (math.log(high) - math.log(low))))
            threshold = min(max(guess, low + 1), high - 1)


def _trim_to_size(tokens: list[str], vocab_size: int) -> list[str]:
    """Drops the last (rarest) learned pieces until vocab_size tokens remain.

    Special tokens and single characters with their `##` forms are kept: without them some words
    could no longer be split at all. The learner lists the learned pieces by falling count.
    """
    excess = len(tokens) - vocab_size
    if excess <= 0:
        return tokens
    protected = set(SPECIAL_TOKENS)
    protected.update(t for t in tokens if len(t) == 1 or (t.startswith("##") and len(t) == 3))
    dropped = set()
    for token in reversed(tokens):
        if len(dropped) == excess:
            break
        if token not in protected:
            dropped.add(token)
    return [t for t in tokens if t not in dropped]


def write_vocab(tokens: Sequence[str], path: str, overwrite: bool = False) -> None:
    """Writes one token per line (UTF-8); refuses an existing file unless overwrite."""
    path = os.fspath(path)
    if fileio.exists(path) and not overwrite:
        raise UserError(f"{path}: already exists; choose another --output_file or pass --overwrite")
    bad = next((t for t in tokens if not t or t != t.strip() or "\n" in t), None)
    if bad is not None:
        raise ValueError(f"token {bad!r} cannot be stored one per line")
    fileio.makedirs(os.path.dirname(fileio.abspath(path)))
    fileio.write_text_atomic(path, "".join(token + "\n" for token in tokens))


@dataclasses.dataclass
class VocabOptions:
    """What build_vocab makes; the fields mirror the command-line flags.

    corpus_dir, input_format, blanks_separate_docs and json_text_field name and read the corpus
    exactly as for build_pretraining_data (electra_tf.corpus).
    """

    corpus_dir: str
    vocab_size: int
    output_file: str
    do_lower_case: bool = True
    max_lines: Optional[int] = None
    overwrite: bool = False
    input_format: str = "auto"
    blanks_separate_docs: bool = True
    json_text_field: str = "text"


def build_vocab(options: VocabOptions, *, progress_interval_seconds: float = 5.0) -> dict:
    """What ``python -m electra_tf.build_vocab`` does: learns a vocabulary and writes it.

    Args:
      options: the corpus, the vocabulary's size and casing, and where to write it.
      progress_interval_seconds: how often the progress line (MB read, lines, ETA) is printed.

    Returns:
      {"tokens": the vocabulary (vocab_size strings), "files": input files read, "lines": lines
      learned from, "replaced_bytes": invalid UTF-8 sequences replaced with U+FFFD}.

    Raises UserError for bad options, an unreadable corpus or an existing output_file.
    """
    if options.vocab_size is None or not options.output_file or not options.corpus_dir:
        raise UserError("--corpus_dir, --vocab_size and --output_file are required")
    if fileio.exists(options.output_file) and not options.overwrite:
        raise UserError(f"{options.output_file}: already exists; choose another --output_file or pass --overwrite")
    if options.max_lines is not None and options.max_lines <= 0:
        raise UserError(f"--max_lines={options.max_lines} must be positive")
    if options.input_format not in corpus.INPUT_FORMATS:
        raise UserError(f"--input_format={options.input_format} is not one of {', '.join(corpus.INPUT_FORMATS)}")
    paths = corpus.list_corpus_files(options.corpus_dir)
    total_bytes = sum(fileio.getsize(path) for path in paths)
    started = time.monotonic()
    progress = ProgressReporter(
        name="build_vocab", total=None if options.max_lines else total_bytes, interval_seconds=progress_interval_seconds
    )
    stats = corpus.ReadStats()

    def lines() -> Iterator[str]:
        bytes_reported = 0
        for block in corpus.read_text_blocks(
            paths,
            stats,
            max_lines=options.max_lines,
            input_format=options.input_format,
            blanks_separate_docs=options.blanks_separate_docs,
            json_text_field=options.json_text_field,
        ):
            progress.update(bytes=stats.bytes_read - bytes_reported)
            bytes_reported = stats.bytes_read
            yield from block

    tokens = learn_vocab(lines(), options.vocab_size, options.do_lower_case, progress)
    progress.finish()
    write_vocab(tokens, options.output_file, overwrite=options.overwrite)
    learned = sum(1 for t in tokens if t not in SPECIAL_TOKENS and not t.startswith("[unused"))
    fillers = len(tokens) - len(SPECIAL_TOKENS) - learned
    replaced = f", {stats.replaced_bytes:,} invalid UTF-8 sequences replaced" if stats.replaced_bytes else ""
    print(
        f"wrote {options.output_file}: {len(tokens):,} tokens "
        f"({len(SPECIAL_TOKENS)} special at BERT's ids 0 and 100-103, "
        f"{learned:,} characters and learned pieces, {fillers:,} [unusedN] fillers), "
        f"{'uncased' if options.do_lower_case else 'cased'}; "
        f"read {stats.lines:,} lines from {len(paths)} files{replaced} in {time.monotonic() - started:.1f} s"
    )
    return {"tokens": tokens, "files": len(paths), "lines": stats.lines, "replaced_bytes": stats.replaced_bytes}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the command line's flags on flag_values (only when run as a program: the demo has its own)."""
    corpus.define_flags(flag_values)
    flags.DEFINE_multi_string(
        "corpus",
        None,
        "Older spelling of --corpus_dir that may be repeated; its values are added to --corpus_dir's.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "vocab_size", None, "Exact number of tokens in the output vocabulary.", flag_values=flag_values
    )
    flags.DEFINE_string(
        "output_file", None, "Where to write vocab.txt (refused if it exists).", flag_values=flag_values
    )
    flags.DEFINE_bool(
        "do_lower_case", True, "Uncased: lower-case and strip accents, as the Tokenizer does.", flag_values=flag_values
    )
    flags.DEFINE_integer("max_lines", None, "Read at most this many lines (bounds the time).", flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output_file.", flag_values=flag_values)


def options_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> VocabOptions:
    """The VocabOptions that parsed flags (from define_flags) ask for."""
    corpus_dir = ",".join(spec for spec in [flag_values.corpus_dir, *(flag_values.corpus or [])] if spec)
    return VocabOptions(
        corpus_dir=corpus_dir,
        vocab_size=flag_values.vocab_size,
        output_file=flag_values.output_file,
        do_lower_case=flag_values.do_lower_case,
        max_lines=flag_values.max_lines,
        overwrite=flag_values.overwrite,
        input_format=flag_values.input_format,
        blanks_separate_docs=flag_values.blanks_separate_docs,
        json_text_field=flag_values.json_text_field,
    )


def main(argv: list[str]) -> None:
    """Learns a WordPiece vocabulary: flags -> options_from_flags -> build_vocab."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; pass the corpus with --corpus_dir")
    build_vocab(options_from_flags(flags.FLAGS))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
