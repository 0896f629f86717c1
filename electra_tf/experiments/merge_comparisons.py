"""Puts several compare_objectives experiments of one budget into one table and plot:

  python -m electra_tf.experiments.merge_comparisons \\
      --inputs=exp_electra_bert/,exp_all_tokens_mlm/ --output_dir=exp_merged/

Each input is an --output_dir of compare_objectives (its results.json is read). They must share
the budget, model config, FLOPs convention, GLUE tasks, seeds, fine-tuning settings and corpus
size, and each objective may appear once; the no-pretraining baseline is taken from the first
input that has one. Writes results.json, results.md and plot.png to --output_dir.
"""

from __future__ import annotations

import json
import os

from absl import flags

from electra_tf import cli, fileio
from electra_tf.errors import UserError

FLAGS = flags.FLAGS

flags.DEFINE_list(
    "inputs", None, "compare_objectives output directories (or their results.json files) to merge, in table order."
)
flags.DEFINE_string("output_dir", None, "Where the merged results.json, results.md and plot.png go.")
flags.DEFINE_bool("overwrite", False, "Replace merged results already in --output_dir.")


def merge_directories(inputs: list[str], output_dir: str, overwrite: bool = False) -> list[str]:
    """Reads each input's results.json, merges them and writes the reports; their paths."""
    # NumPy-heavy: imported when merging runs, so --help stays fast.
    from electra_tf.experiments import comparison_report as report

    if len(inputs) < 2:
        raise UserError("--inputs needs at least two experiments to merge")
    results_list = []
    for source in inputs:
        path = source if source.endswith(".json") else os.path.join(source, report.RESULTS_JSON)
        try:
            results_list.append(fileio.read_json(path))
        except fileio.errors() as error:
            raise UserError(
                f"{path}: cannot read ({getattr(error, 'strerror', None) or error}); --inputs takes "
                "compare_objectives output directories"
            ) from None
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    merged = report.merge_results(results_list, list(inputs))
    names = (report.RESULTS_JSON, report.RESULTS_MARKDOWN, report.PLOT_PNG)
    existing = [name for name in names if fileio.exists(os.path.join(output_dir, name))]
    if existing and not overwrite:
        raise UserError(
            f"{os.path.join(output_dir, existing[0])} already exists; pass "
            "--overwrite to replace it or choose another --output_dir"
        )
    fileio.makedirs(output_dir)
    return report.write_reports(output_dir, merged)


def main(argv: list[str]) -> None:
    """Merges compare_objectives outputs: flags -> merge_directories, then prints the paths written."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag")
    if not FLAGS.inputs or not FLAGS.output_dir:
        raise UserError("--inputs and --output_dir are required")
    for path in merge_directories(FLAGS.inputs, FLAGS.output_dir, FLAGS.overwrite):
        print(path)


if __name__ == "__main__":
    cli.run(main)
