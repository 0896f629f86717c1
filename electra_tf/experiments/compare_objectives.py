"""ELECTRA vs masked-LM (BERT) pretraining at equal compute, fine-tuned on GLUE, with a plot:

  python -m electra_tf.experiments.compare_objectives --pretrain_data=pretrain_data/ \\
      --glue_data_dir=glue/ --config=electra_mini --budget_electra_steps=2000 \\
      --fractions=0.25,0.5,1 --tasks=sst-2,mrpc,sts-b --num_seeds=3 --output_dir=exp/

Rerunning the same command resumes: finished pretraining segments and fine-tuning runs are
skipped. See electra_tf/experiments/objective_comparison.py for the outputs.
"""

from __future__ import annotations

from absl import flags

from electra_tf import cli
from electra_tf.errors import UserError

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "pretrain_data", None, "Pretraining TFRecords: a directory written by build_pretraining_data (with manifest.json)."
)
flags.DEFINE_string("glue_data_dir", None, "GLUE folders (SST-2/, MRPC/, ... with train/dev.tsv).")
flags.DEFINE_string("output_dir", None, "Where everything goes; rerun with the same directory to resume.")
flags.DEFINE_string(
    "config",
    "electra_mini",
    "Model size: a preset name or a JSON config file (the discriminator / encoder size every objective shares).",
)
flags.DEFINE_string(
    "hparams",
    None,
    "JSON object (or a path to one) overriding config keys for every objective, e.g. '{\"train_batch_size\": 64}'.",
)
flags.DEFINE_float("budget_flops", None, "Pretraining budget per objective in training FLOPs.")
flags.DEFINE_integer(
    "budget_electra_steps",
    None,
    "Pretraining budget as steps of the ELECTRA run (converted to FLOPs with ELECTRA's FLOPs per step).",
)
flags.DEFINE_enum(
    "flops_convention",
    "matmul",
    ["matmul", "paper"],
    "How training FLOPs are "
    "counted: matmul = 3 x forward matmul FLOPs of what this code computes; paper = "
    "the ELECTRA paper's script (2 x forward, dense embedding lookups, element-wise "
    "ops); see electra_tf/flops.py.",
)
flags.DEFINE_list(
    "fractions",
    ["0.125", "0.25", "0.5", "1"],
    "Fractions of the budget at which each objective's encoder is snapshotted and fine-tuned (must include 1).",
)
flags.DEFINE_list(
    "objectives",
    ["electra", "bert"],
    "Pretraining objectives: electra (replaced "
    "token detection), electra_gen_half (the same with a generator of 1/2 the "
    "width), bert (masked LM of the full-size encoder), and the paper's "
    "ablations electra_15 (discriminator loss on the masked positions only), "
    "replace_mlm (masked LM on generator-replaced input) and all_tokens_mlm (it, "
    "predicting every token with a copy mechanism).",
)
flags.DEFINE_list("tasks", ["sst-2", "mrpc", "cola", "sts-b", "rte"], "GLUE tasks to fine-tune on.")
flags.DEFINE_integer("num_seeds", 3, "Fine-tuning seeds per task and encoder; medians reported.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary (default: the one named in --pretrain_data's manifest).")
flags.DEFINE_bool("random_init_baseline", True, "Also fine-tune a randomly initialised encoder of the same size.")
flags.DEFINE_integer(
    "max_train_examples",
    None,
    "Fine-tune on a fixed random subset of at most "
    "this many training examples per task (keeps fine-tuning affordable).",
)
flags.DEFINE_integer("max_eval_examples", None, "Evaluate on the first N dev examples only.")
flags.DEFINE_float("finetune_epochs", None, "Fine-tuning epochs (default: the paper's, 3; 10 for RTE and STS-B).")
flags.DEFINE_integer("finetune_steps", None, "Fine-tune exactly this many steps per run (overrides --finetune_epochs).")
flags.DEFINE_float(
    "finetune_learning_rate",
    None,
    "Fine-tuning learning rate (default: the recipe for the model size, 3e-4 below Base).",
)
flags.DEFINE_integer("finetune_batch_size", 32, "Fine-tuning batch size.")
cli.define_runtime_flags(
    strategy=False,
    mixed_precision_modes=cli.MIXED_PRECISION_MODES[:2],
    mixed_precision_help="Precision of pretraining and fine-tuning, as run_pretraining's "
    "--mixed_precision (bf16: bfloat16 matmuls).",
)
flags.DEFINE_bool("overwrite", False, "Replace a different experiment's outputs in --output_dir.")
flags.DEFINE_integer("log_every_steps", 100, "Progress lines every this many training steps.")


def main(argv: list[str]) -> None:
    """Runs the equal-compute objective comparison: flags -> objective_comparison.ComparisonOptions ->
    objective_comparison.run_comparison."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag")
    # Imported after the flags are parsed, so --help and flag errors stay fast.
    from electra_tf.experiments import objective_comparison

    options = objective_comparison.ComparisonOptions(
        pretrain_data=FLAGS.pretrain_data,
        glue_data_dir=FLAGS.glue_data_dir,
        output_dir=FLAGS.output_dir,
        config=FLAGS.config,
        hparams=FLAGS.hparams,
        budget_flops=FLAGS.budget_flops,
        budget_electra_steps=FLAGS.budget_electra_steps,
        flops_convention=FLAGS.flops_convention,
        fractions=FLAGS.fractions,
        objectives=FLAGS.objectives,
        tasks=FLAGS.tasks,
        num_seeds=FLAGS.num_seeds,
        vocab_file=FLAGS.vocab_file,
        include_random_init=FLAGS.random_init_baseline,
        max_train_examples=FLAGS.max_train_examples,
        max_eval_examples=FLAGS.max_eval_examples,
        finetune_epochs=FLAGS.finetune_epochs,
        finetune_steps=FLAGS.finetune_steps,
        finetune_learning_rate=FLAGS.finetune_learning_rate,
        finetune_batch_size=FLAGS.finetune_batch_size,
        overwrite=FLAGS.overwrite,
        log_every_steps=FLAGS.log_every_steps,
        mixed_precision=FLAGS.mixed_precision,
    )
    objective_comparison.run_comparison(options)


if __name__ == "__main__":
    cli.run(main)
