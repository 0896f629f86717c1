"""Convert ELECTRA weights between Google's reference checkpoints, Hugging Face and electra_tf.

  python -m electra_tf.convert_checkpoint --from=official --checkpoint=electra_small \\
      --config=electra_small --hparams='{"generator_hidden_size": 1.0}' --output_dir=electra_small_tf

--from official      Google's reference checkpoint (TF1 name-based); needs --config (and
                     --hparams) describing its sizes, unless it was written by --to official.
--from huggingface   a Hugging Face ELECTRA model directory (config.json + model.safetensors or
                     pytorch_model.bin); --generator_model_dir adds the matching generator.
--from electra_tf    a save_pretrained directory (run_pretraining's pretrained/) or a trial's
                     finetuned/ (--to huggingface: ElectraForSequenceClassification for a
                     classifier or regressor, ElectraForQuestionAnswering for SQuAD 1.1).
--to electra_tf (default), huggingface or official, written into --output_dir.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from electra_tf import cli, fileio
from electra_tf.config import ElectraConfig, load_config
from electra_tf.errors import UserError

FLAGS = flags.FLAGS

flags.DEFINE_enum("from", None, ["official", "huggingface", "electra_tf"], "Format of the weights to read.")
flags.DEFINE_enum("to", "electra_tf", ["electra_tf", "huggingface", "official"], "Format to write.")
flags.DEFINE_string(
    "checkpoint",
    None,
    "--from official: checkpoint prefix (e.g. electra_small/electra_small), its "
    ".index file, or the directory holding it.",
)
flags.DEFINE_string(
    "model_dir",
    None,
    "--from huggingface: the model directory (ElectraForPreTraining, ElectraModel "
    "or ElectraForMaskedLM); --from electra_tf: a save_pretrained directory or "
    "a fine-tuning trial's finetuned/.",
)
flags.DEFINE_string(
    "generator_model_dir", None, "--from huggingface: the matching generator (ElectraForMaskedLM) directory."
)
flags.DEFINE_string(
    "config",
    None,
    "Config preset or JSON file: the sizes of an official checkpoint; for "
    "Hugging Face only the training settings (sizes come from config.json).",
)
flags.DEFINE_string("hparams", None, "JSON object (or a path to one) overriding config keys.")
flags.DEFINE_string("output_dir", None, "Where to write the converted weights.")
flags.DEFINE_bool("overwrite", False, "Replace files that already exist in --output_dir.")


def _log(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _base_config(required_for: str | None):
    """--config with --hparams on top; None when neither is given and none is required."""
    if FLAGS.config:
        return load_config(FLAGS.config, FLAGS.hparams)
    if required_for:
        raise UserError(
            f"--config is required for {required_for}: a preset such as "
            "electra_small or a JSON file with the checkpoint's sizes (see README, "
            "'Starting from Google's released ELECTRA')"
        )
    if FLAGS.hparams:  # training settings on top of the default (Small) preset
        return load_config("electra_small", FLAGS.hparams)
    return None


def main(argv: list[str]) -> None:
    """Converts a model between formats: flags -> one checkpoint_conversion reader (read_official / read_huggingface /
    read_electra_tf) -> one writer (--to)."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag")
    source_format = FLAGS["from"].value
    if source_format is None:
        raise UserError("--from is required: official, huggingface or electra_tf")
    if not FLAGS.output_dir:
        raise UserError("--output_dir is required")
    # NumPy and the converter load after the flag checks, so --help and flag errors stay fast.
    from electra_tf import checkpoint_conversion as conversion

    if source_format == "official":
        if not FLAGS.checkpoint:
            raise UserError("--from official needs --checkpoint=<prefix>, e.g. electra_small/electra_small")
        config = _base_config(None) if FLAGS.config else None
        if config is None:
            prefix = conversion.resolve_official_checkpoint(FLAGS.checkpoint)
            written_config = os.path.join(os.path.dirname(prefix), conversion.OFFICIAL_CONFIG_FILE)
            if FLAGS.hparams or not fileio.isfile(written_config):
                _base_config("--from official")
            config = ElectraConfig.from_json_file(written_config)
            _log(f"Using the config {written_config} written with the checkpoint")
        weights = conversion.read_official(FLAGS.checkpoint, config)
    elif source_format == "huggingface":
        if not FLAGS.model_dir:
            raise UserError("--from huggingface needs --model_dir=<downloaded model directory>")
        weights = conversion.read_huggingface(FLAGS.model_dir, FLAGS.generator_model_dir, _base_config(None))
    else:
        if not FLAGS.model_dir:
            raise UserError("--from electra_tf needs --model_dir=<save_pretrained directory>")
        if FLAGS.config or FLAGS.hparams:
            raise UserError("--config/--hparams do not apply to --from electra_tf: its config.json describes the model")
        weights = conversion.read_electra_tf(FLAGS.model_dir)
    _log(f"Read {weights.summary()}")

    if FLAGS.to == "electra_tf":
        written = conversion.write_electra_tf(weights, FLAGS.output_dir, FLAGS.overwrite)
        destinations = [FLAGS.output_dir]
        _log(
            f"Wrote {', '.join(written)} to {FLAGS.output_dir}: fine-tune with "
            f"run_finetuning --init_checkpoint={FLAGS.output_dir}"
        )
    elif FLAGS.to == "huggingface":
        destinations = conversion.write_huggingface(weights, FLAGS.output_dir, FLAGS.overwrite)
        _log(f"Wrote Hugging Face models to {', '.join(destinations)}")
    else:
        prefix = conversion.write_official(weights, FLAGS.output_dir, FLAGS.overwrite)
        destinations = [FLAGS.output_dir]
        _log(f"Wrote the reference-format checkpoint {prefix}")
    source_dir = (
        os.path.dirname(conversion.resolve_official_checkpoint(FLAGS.checkpoint))
        if source_format == "official"
        else FLAGS.model_dir
    )
    for copy in conversion.copy_vocabulary(source_dir, destinations, FLAGS.overwrite):
        _log(f"Copied {fileio.join(source_dir, conversion.VOCAB_FILE)} to {copy}")


if __name__ == "__main__":
    cli.run(main)
