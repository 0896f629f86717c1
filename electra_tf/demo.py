"""The README's main job, offline, on text that ships with Python itself.

    python -m electra_tf.demo --output_dir=demo_output

Stages (each reuses its finished output on a rerun, so an interrupted demo picks up where it
stopped; --overwrite starts again):
  1. corpus/         English text from Python's help topics and standard-library docstrings
  2. vocab.txt       a WordPiece vocabulary learned from that corpus
  3. pretrain_data/  reference-format TFRecords (+ manifest.json) built with that vocabulary from
                     every corpus file but the last; held_out_data/ from the last one
  4. model/          the tiny ELECTRA preset pretrained on it for a few minutes (DEMO_HPARAMS)
  5. the discriminator scored on the held-out text (exact AUC of replaced-token detection,
     the generator's accuracy), then a sentence with a few words swapped and the
     discriminator's probability that each token was replaced
"""

from __future__ import annotations

import dataclasses
import os
import time

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) hides the demo's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from electra_tf import cli, fileio  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

flags.DEFINE_string("output_dir", "demo_output", "Where every stage writes its output.")
flags.DEFINE_integer("vocab_size", 8000, "Size of the WordPiece vocabulary learned from the corpus.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per pretraining example.")
flags.DEFINE_integer("num_processes", 2, "Packing processes for build_pretraining_data.")
flags.DEFINE_integer("pretrain_steps", 600, "Training steps of the tiny model (0 skips pretraining).")
flags.DEFINE_bool("overwrite", False, "Redo every stage, replacing the demo's earlier output.")

FLAGS = flags.FLAGS

# Each stage imports what it needs inside its function: TensorFlow takes seconds to import, and
# `--help` and the first stage (the corpus) do not need it.


@dataclasses.dataclass
class DemoOptions:
    """What the demo does; the fields mirror the command-line flags."""

    output_dir: str = "demo_output"
    vocab_size: int = 8000
    max_seq_length: int = 128
    num_processes: int = 2
    pretrain_steps: int = 600
    overwrite: bool = False


DEMO_SENTENCE = (
    "Return a new sorted list from the items in the iterable, and raise a TypeError if the items cannot be compared."
)
# The tiny preset's schedule for this demo: the clearest held-out replaced-token signal that a few
# minutes give with the reference's recipe. Measured on this corpus with
# electra_tf.experiments.measure_dynamics (held-out AUC at the end of the run): lr 3e-3 / 30
# warm-up / 300 steps 0.50, 5e-4 / 100 / 1,000 steps 0.52 at step 100 and 0.56 at 600, 2e-4 /
# 100 / 600 0.54, 1e-4 / 100 / 400 0.71, 5e-5 / 100 / 600 0.81. Faster schedules
# peak early (0.82-0.85 at steps 25-50) and collapse (README, "The early dynamics").
DEMO_HPARAMS = {"learning_rate": 5e-5, "num_warmup_steps": 100}

# Plausible words that do not fit where they are put: a discriminator that learned anything
# should find them.
DEMO_SWAPS = {"sorted": "broken", "items": "modules", "raise": "import"}


def _heading(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def build_corpus(directory: str, overwrite: bool) -> dict:
    """Stage 1: writes the standard-library corpus to ``directory`` (default_corpus), or reuses it.

    Args:
      directory: the corpus folder (local or remote); its statistics go to corpus_stats.json next to it.
      overwrite: rebuild even when an earlier run finished the corpus.

    Returns:
      write_default_corpus's statistics dict ("files", "paths", "documents", "lines", "bytes", "words").

    Raises:
      UserError: ``directory`` holds an unfinished corpus and ``overwrite`` is False.
    """
    from electra_tf import default_corpus

    stats_file = os.path.join(os.path.dirname(directory), "corpus_stats.json")
    if fileio.exists(stats_file) and not overwrite:
        print(f"reusing {directory} (from an earlier run)")
        return fileio.read_json(stats_file)
    if fileio.isdir(directory) and fileio.listdir(directory) and not overwrite:
        raise UserError(
            f"{directory}: holds an unfinished corpus from an interrupted demo; pass --overwrite to rebuild it"
        )
    stats = default_corpus.write_default_corpus(directory, overwrite=overwrite)
    fileio.write_json_atomic(stats_file, stats, indent=1)
    return stats


def learn_vocabulary(corpus_dir: str, vocab_file: str, vocab_size: int, overwrite: bool) -> list[str]:
    """Stage 2: learns a WordPiece vocabulary of ``vocab_size`` tokens from the corpus, or reuses it.

    Args:
      corpus_dir: the corpus written by build_corpus.
      vocab_file: where vocab.txt goes; an existing file is read back unless ``overwrite``.
      vocab_size: tokens in the vocabulary, special tokens included.
      overwrite: relearn even when ``vocab_file`` exists.

    Returns:
      The vocabulary's tokens in id order.
    """
    from electra_tf import build_vocab, tokenization

    if fileio.exists(vocab_file) and not overwrite:
        print(f"reusing {vocab_file} (from an earlier run)")
        return tokenization.load_vocab(vocab_file)
    options = build_vocab.VocabOptions(
        corpus_dir=corpus_dir, vocab_size=vocab_size, output_file=vocab_file, overwrite=overwrite
    )
    return build_vocab.build_vocab(options)["tokens"]


def build_data(
    corpus: str,
    vocab_file: str,
    data_dir: str,
    overwrite: bool,
    *,
    max_seq_length: int,
    num_processes: int,
    num_shards: int = 8,
) -> dict:
    """Reference-format TFRecords from ``corpus`` (files, comma-separated) in ``data_dir``."""
    from electra_tf import pretraining_data, pretraining_manifest

    manifest_file = os.path.join(data_dir, pretraining_manifest.MANIFEST_FILE)
    if fileio.exists(manifest_file) and not overwrite:
        print(f"reusing {data_dir} (from an earlier run)")
        manifest = pretraining_manifest.read_manifest(data_dir)
        print(pretraining_manifest.summary_line(manifest, data_dir))
        return manifest
    options = pretraining_data.BuildOptions(
        corpus_dir=corpus,
        vocab_file=vocab_file,
        output_dir=data_dir,
        max_seq_length=max_seq_length,
        num_processes=num_processes,
        num_shards=num_shards,
        overwrite=overwrite,
    )
    return pretraining_data.build_pretraining_data(options)


def split_corpus(stats: dict) -> tuple[str, str]:
    """(training files, held-out file) of the corpus: the last shard is held out."""
    paths = sorted(stats["paths"])
    if len(paths) < 2:
        raise UserError(f"the demo corpus has {len(paths)} file(s); it needs two or more to hold one out")
    return ",".join(paths[:-1]), paths[-1]


def describe_vocabulary(vocab_file: str, tokens: list[str]) -> None:
    """Prints the vocabulary's size, special-token ids and piece counts, and DEMO_SENTENCE tokenized with it."""
    from electra_tf import tokenization

    tokenizer = tokenization.Tokenizer(vocab_file, do_lower_case=True)
    special = ", ".join(f"{token}={tokenizer.token_to_id[token]}" for token in tokenization.SPECIAL_TOKENS)
    fillers = sum(token.startswith("[unused") for token in tokens)
    continuations = sum(token.startswith("##") for token in tokens)
    print(f"{vocab_file}: {len(tokens):,} tokens ({special}; {continuations:,} ## continuations, {fillers:,} unused)")
    pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode(DEMO_SENTENCE))
    print(f"tokenized: {' '.join(pieces)}")


def describe_data(manifest: dict, data_dir: str, vocab_file: str) -> None:
    """Prints the first example of the pretraining data in ``data_dir`` as WordPiece tokens, with its length and segment
    B size."""
    from electra_tf import pretraining_dataset, tokenization

    files, _ = pretraining_dataset.resolve_pretraining_data(data_dir)
    dataset = pretraining_dataset.make_pretraining_dataset(
        files, batch_size=1, max_seq_length=manifest["max_seq_length"], is_training=False
    )
    example = next(iter(dataset))
    length = int(example["input_mask"][0].numpy().sum())
    tokenizer = tokenization.Tokenizer(vocab_file)
    ids = example["input_ids"][0, :length].numpy().tolist()
    segments = example["segment_ids"][0, :length].numpy().tolist()
    text = " ".join(tokenizer.convert_ids_to_tokens(ids))
    shown = text[:400] + (" ..." if len(text) > 400 else "")
    print(f"first example ({length} tokens, {segments.count(1)} in segment B): {shown}")


def pretrain(data_dir: str, model_dir: str, steps: int) -> str:
    """Stage 4: pretrains the electra_tiny preset with DEMO_HPARAMS for ``steps`` steps.

    Args:
      data_dir: pretraining TFRecords (build_pretraining_data's output folder).
      model_dir: the run's checkpoints, TensorBoard logs and pretrained/ folder; a run there resumes.
      steps: num_train_steps.

    Returns:
      The path of the pretrained/ folder (artifacts.save_pretrained's layout).
    """
    import logging

    from absl import logging as absl_logging

    from electra_tf import pretraining

    # TensorFlow's INFO lines (saver sharding, some through absl directly) would interleave with
    # the progress lines.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    absl_logging.set_verbosity(absl_logging.WARNING)

    options = pretraining.PretrainingOptions(
        model_dir=model_dir,
        pretrain_data=data_dir,
        log_every_steps=50,
    )
    result = pretraining.run_pretraining(options, config="electra_tiny", hparams=DEMO_HPARAMS, num_train_steps=steps)
    return result.pretrained_dir


def show_held_out_scores(pretrained_dir: str, held_out_dir: str) -> None:
    """Scores the pretrained generator + discriminator on the held-out text."""
    from electra_tf import artifacts, checkpoint_conversion, pretraining_dataset, pretraining_objective
    from electra_tf.experiments import pretraining_dynamics

    config = artifacts.read_config(pretrained_dir)
    model = pretraining_objective.ElectraPretrainer(config, seed=0)
    checkpoint_conversion.load_pretrained_into(model, pretrained_dir)
    files, _ = pretraining_dataset.resolve_pretraining_data(held_out_dir)
    scores = pretraining_dynamics.held_out_scores(model, files, max_seq_length=config.max_seq_length)
    print(
        f"held-out text ({held_out_dir}, {scores['tokens']:,} tokens, the generator's own replacements at 15% of them):"
    )
    print(
        f"  replaced-token detection AUC {scores['disc_auc']:.3f} (0.5 = chance); generator "
        f"accuracy at the masked positions {scores['mlm_accuracy']:.3f}"
    )
    print(
        f"  mean cosine between the discriminator's token states {scores['token_cosine']:.2f} "
        "(near 1 = collapsed, see the README's experiment section)"
    )
    print(
        "  In a few minutes the generator is still near the unigram level, so what the "
        "discriminator has learnt is\n  what its young generator's samples look like: words "
        "that do not fit the text around them."
    )


def show_replaced_token_detection(pretrained_dir: str, vocab_file: str) -> None:
    """Swaps a few words of a sentence and prints the discriminator's P(replaced) per token."""
    import numpy as np

    from electra_tf import modeling, tokenization

    config, discriminator = modeling.load_pretrained_discriminator(pretrained_dir)
    tokenizer = tokenization.Tokenizer(vocab_file, do_lower_case=config.do_lower_case)
    words = DEMO_SENTENCE.split()
    corrupted = " ".join(DEMO_SWAPS.get(word, word) for word in words)
    ids = [tokenizer.cls_id, *tokenizer.encode(corrupted), tokenizer.sep_id]
    original = [tokenizer.cls_id, *tokenizer.encode(DEMO_SENTENCE), tokenizer.sep_id]
    batch = {
        "input_ids": np.array([ids], dtype=np.int32),
        "input_mask": np.ones((1, len(ids)), dtype=np.int32),
        "segment_ids": np.zeros((1, len(ids)), dtype=np.int32),
    }
    logits = np.asarray(discriminator(batch, training=False), dtype=np.float32).reshape(-1)
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    original_pieces = set(tokenizer.convert_ids_to_tokens(original))
    print(f"original:  {DEMO_SENTENCE}")
    print(f"corrupted: {corrupted}")
    print(f"{'token':>16}  P(replaced)")
    swapped, kept = [], []
    for token, probability in zip(tokenizer.convert_ids_to_tokens(ids), probabilities):
        is_swapped = token not in original_pieces
        if token not in ("[CLS]", "[SEP]"):  # never replaced in training, so never suspected
            (swapped if is_swapped else kept).append(probability)
        bar = "#" * int(round(probability * 30))
        print(f"{token:>16}  {probability:6.3f} {bar}{'   <- swapped in' if is_swapped else ''}")
    if swapped and kept:
        print(f"mean P(replaced): swapped-in tokens {np.mean(swapped):.3f}, original words {np.mean(kept):.3f}")


def run_demo(options: DemoOptions) -> None:
    """Runs every stage into options.output_dir, reusing finished stages unless options.overwrite."""
    started = time.monotonic()
    output_dir = options.output_dir
    fileio.makedirs(output_dir)
    corpus_dir = os.path.join(output_dir, "corpus")
    vocab_file = os.path.join(output_dir, "vocab.txt")
    data_dir = os.path.join(output_dir, "pretrain_data")
    held_out_dir = os.path.join(output_dir, "held_out_data")
    model_dir = os.path.join(output_dir, "model")

    _heading("1. Corpus: English text that ships with Python")
    stats = build_corpus(corpus_dir, options.overwrite)
    print(
        f"{corpus_dir}: {stats['files']} files, {stats['documents']:,} documents, {stats['lines']:,} paragraphs, "
        f"{stats['words']:,} words, {stats['bytes'] / 1e6:.1f} MB"
    )

    _heading("2. WordPiece vocabulary learned from it")
    tokens = learn_vocabulary(corpus_dir, vocab_file, options.vocab_size, options.overwrite)
    describe_vocabulary(vocab_file, tokens)

    _heading("3. Pretraining data (reference TFRecord format)")
    training_files, held_out_file = split_corpus(stats)
    manifest = build_data(
        training_files,
        vocab_file,
        data_dir,
        options.overwrite,
        max_seq_length=options.max_seq_length,
        num_processes=options.num_processes,
    )
    describe_data(manifest, data_dir, vocab_file)
    build_data(
        held_out_file,
        vocab_file,
        held_out_dir,
        options.overwrite,
        max_seq_length=options.max_seq_length,
        num_processes=1,
        num_shards=1,
    )

    if options.pretrain_steps > 0:
        _heading(f"4. Pretraining the tiny ELECTRA preset for {options.pretrain_steps} steps")
        if options.overwrite and fileio.isdir(model_dir) and fileio.listdir(model_dir):
            raise UserError(
                f"{model_dir}: holds an earlier model; --overwrite does not delete models, remove it yourself"
            )
        pretrained_dir = pretrain(data_dir, model_dir, options.pretrain_steps)

        _heading("5. Replaced-token detection on held-out text and on a sentence with swapped words")
        show_held_out_scores(pretrained_dir, held_out_dir)
        show_replaced_token_detection(pretrained_dir, vocab_file)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s; everything is in {output_dir}/")


def main(argv: list[str]) -> None:
    """Runs the offline demo: flags -> DemoOptions -> run_demo."""
    if len(argv) > 1:
        raise UserError(f"unexpected argument {argv[1]!r}; all options are --flags")
    run_demo(
        DemoOptions(
            output_dir=FLAGS.output_dir,
            vocab_size=FLAGS.vocab_size,
            max_seq_length=FLAGS.max_seq_length,
            num_processes=FLAGS.num_processes,
            pretrain_steps=FLAGS.pretrain_steps,
            overwrite=FLAGS.overwrite,
        )
    )


if __name__ == "__main__":
    cli.run(main)
