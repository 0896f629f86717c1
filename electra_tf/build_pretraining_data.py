"""Builds ELECTRA pretraining data: text corpus -> TFRecord shards + manifest.json.

    python -m electra_tf.build_pretraining_data --corpus_dir=corpus/ \\
        --vocab_file=vocab.txt --output_dir=pretrain_data/ --max_seq_length=128 --num_processes=4

To split a very large corpus across machines, run worker i of n on each with --worker_index=i
--num_workers=n and the same other flags and --output_dir (a shared file system, or copy the
outputs together afterwards). Each worker writes its own shards and manifest part; then

    python -m electra_tf.build_pretraining_data --output_dir=pretrain_data/ --combine_manifests

checks that every part is there and consistent and writes manifest.json. (Readers also accept a
directory holding all the parts and no manifest.json.)
"""

from __future__ import annotations

from absl import flags

from electra_tf import cli, corpus, pretraining_manifest
from electra_tf.errors import UserError

corpus.define_flags()  # --corpus_dir, --input_format, ...: the same as build_vocab's
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary (one token per line).")
flags.DEFINE_string(
    "output_dir", None, "Where the TFRecord shards and manifest.json go (must be empty unless --overwrite)."
)
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example, [CLS] and [SEP]s included.")
flags.DEFINE_integer(
    "num_processes",
    1,
    "Packing processes; each has its own random stream and shards, so the output depends on this number.",
)
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (for uncased vocabularies).")
flags.DEFINE_integer("seed", 1314, "Random seed for example construction.")
flags.DEFINE_integer("num_shards", 100, "TFRecord files to write (per worker).")
flags.DEFINE_bool(
    "overwrite", False, "Replace earlier pretraining data in --output_dir (only our shards and manifests are removed)."
)
flags.DEFINE_integer("worker_index", 0, "This machine's index when splitting the corpus across --num_workers machines.")
flags.DEFINE_integer("num_workers", 1, "Machines sharing the corpus; worker i takes input files i, i+n, i+2n, ...")
flags.DEFINE_bool(
    "combine_manifests", False, "Only combine the workers' manifest parts in --output_dir into manifest.json."
)

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    """Builds pretraining TFRecords: flags -> BuildOptions -> pretraining_data.build_pretraining_data (or, with
    --combine_manifests, pretraining_manifest.combine_manifest_parts)."""
    # NumPy and the builder load when a command runs, so --help stays fast.
    from electra_tf import pretraining_data

    if len(argv) > 1:
        raise UserError(f"unexpected argument {argv[1]!r}; all options are --flags")
    if FLAGS.combine_manifests:
        if not FLAGS.output_dir:
            raise UserError("--output_dir is required with --combine_manifests")
        manifest = pretraining_manifest.combine_manifest_parts(FLAGS.output_dir, overwrite=FLAGS.overwrite)
        print(pretraining_manifest.summary_line(manifest, FLAGS.output_dir))
        return
    for name in ("corpus_dir", "vocab_file", "output_dir"):
        if not FLAGS[name].value:
            raise UserError(f"--{name} is required")
    options = pretraining_data.BuildOptions(
        corpus_dir=FLAGS.corpus_dir,
        vocab_file=FLAGS.vocab_file,
        output_dir=FLAGS.output_dir,
        max_seq_length=FLAGS.max_seq_length,
        num_processes=FLAGS.num_processes,
        do_lower_case=FLAGS.do_lower_case,
        blanks_separate_docs=FLAGS.blanks_separate_docs,
        input_format=FLAGS.input_format,
        json_text_field=FLAGS.json_text_field,
        seed=FLAGS.seed,
        num_shards=FLAGS.num_shards,
        overwrite=FLAGS.overwrite,
        worker_index=FLAGS.worker_index,
        num_workers=FLAGS.num_workers,
    )
    pretraining_data.build_pretraining_data(options)


if __name__ == "__main__":
    cli.run(main)
