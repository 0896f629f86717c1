"""SavedModels for TF Serving that take raw text: tokenization, the network and decoding in-graph.

    python -m electra_tf.export --input=finetune_out/mnli --export_base=exports/mnli
    python -m electra_tf.export --input=models/small --kind=discriminator \\
        --export_base=exports/small_discriminator

writes ``<export_base>/<version>/saved_model.pb`` (TF Serving's layout; version a positive
integer, by default one above the highest there) from this project's output:

  fine-tuned classifier    (a trial's finetuned/, head "classification")   kind "classifier"
  fine-tuned STS-B model   (head "regression")                             kind "regressor"
  fine-tuned SQuAD model   (head "span", 1.1 or 2.0)                       kind "squad"
  fine-tuned NER / chunker (head "tagging")                                kind "tagger"
  pretrained discriminator (run_pretraining's model_dir or pretrained/)     kind "discriminator"
  pretrained encoder       (the same folders, or a model without discriminator) kind "encoder"

Every input of every signature is a batch of UTF-8 strings: the vocabulary travels in the
SavedModel and the WordPiece tokenizer runs in the graph, so a client sends nothing but text.
The signatures, the packing and SQuAD's in-graph windowing and decoding are described in
electra_tf.serving_modules; finding the model, the vocabulary and TF Serving's layout in
electra_tf.exporter. This module is the command line only.
"""

from __future__ import annotations

import tensorflow as tf
from absl import flags, logging

from electra_tf.errors import UserError
from electra_tf.exporter import (
    CUSTOM_OPS_FILE,
    EXPORT_INFO_FILE,
    ExportOptions,
    ExportSource,
    build_serving_module,
    check_same_kind,
    custom_ops,
    existing_versions,
    export,
    export_info,
    resolve_source,
    run_export,
    save_serving_module,
    tensorflow_text_ops,
)
from electra_tf.progress import log
from electra_tf.serving_modules import (
    DEFAULT_SIGNATURE,
    KINDS,
    SIGNATURES,
    ClassifierServingModule,
    DiscriminatorServingModule,
    EncoderServingModule,
    RegressorServingModule,
    SquadServingModule,
    TaggerServingModule,
    TextServingModule,
    signature_table_markdown,
)

# The library lives in electra_tf.exporter (sources, TF Serving's layout, export()) and
# electra_tf.serving_modules (the signatures); its names stay importable from here for code
# written against the single module this used to be.
__all__ = [
    "CUSTOM_OPS_FILE",
    "DEFAULT_SIGNATURE",
    "EXPORT_INFO_FILE",
    "KINDS",
    "SIGNATURES",
    "ClassifierServingModule",
    "DiscriminatorServingModule",
    "EncoderServingModule",
    "ExportOptions",
    "ExportSource",
    "RegressorServingModule",
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
    "run_export",
    "save_serving_module",
    "signature_table_markdown",
    "tensorflow_text_ops",
]


def main(argv) -> None:
    """Exports a SavedModel for TF Serving: flags -> ExportOptions -> exporter.run_export."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag")
    values = flags.FLAGS
    # SavedModel writing logs every step (with the staging folder's name) at INFO.
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    run_export(
        ExportOptions(
            input=values.input,
            export_base=values.export_base,
            kind=values.kind,
            vocab_file=values.vocab_file,
            max_seq_length=values.max_seq_length,
            version=values.version,
            overwrite=values.overwrite,
        ),
        log=log,
    )


def define_flags() -> None:
    """Defines the export command's flags (--input, --export_base, --version, --kind, ...) on absl's FLAGS."""
    flags.DEFINE_string(
        "input",
        None,
        "A fine-tuning trial's finetuned/ folder, its trial or "
        "task folder (task: the median trial), or a run_pretraining --model_dir "
        "(or its pretrained/ folder).",
    )
    flags.DEFINE_string(
        "export_base", None, "TF Serving's model base path; the SavedModel goes to <export_base>/<version>/."
    )
    flags.DEFINE_integer(
        "version", None, "Version number (default: one above the highest existing version, 1 for a new folder)."
    )
    flags.DEFINE_boolean("overwrite", False, "Replace an existing --version.")
    flags.DEFINE_enum(
        "kind",
        None,
        ["discriminator", "encoder", "classifier", "regressor", "squad", "tagger"],
        "Pretrained models: discriminator or encoder. Fine-tuned models: read "
        "from head.json (giving it only checks it).",
    )
    flags.DEFINE_string(
        "vocab_file",
        None,
        "WordPiece vocabulary. Fine-tuned models record "
        "theirs (a file given here must have the recorded sha256); pretrained "
        "models need it unless their folder has a vocab.txt.",
    )
    flags.DEFINE_integer(
        "max_seq_length",
        None,
        "Longest packed sequence (default: the fine-tuning max_seq_length, or the pretraining config's).",
    )


if __name__ == "__main__":
    from electra_tf import cli

    define_flags()
    cli.run(main)
