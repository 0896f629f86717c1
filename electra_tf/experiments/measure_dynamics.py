"""python -m electra_tf.experiments.measure_dynamics: held-out discriminator AUC, generator
accuracy and representation collapse at chosen steps of one pretraining run.

See electra_tf.experiments.pretraining_dynamics for what is measured and written.
"""

from __future__ import annotations

from absl import flags

from electra_tf import cli
from electra_tf.experiments import pretraining_dynamics

FLAGS = flags.FLAGS

flags.DEFINE_string("pretrain_data", None, "Training TFRecords (a build_pretraining_data directory or a glob).")
flags.DEFINE_string("eval_data", None, "Held-out TFRecords, built like --pretrain_data.")
flags.DEFINE_string(
    "output_dir", None, "Where dynamics.json/.md and the model go; rerun with the same directory to resume."
)
flags.DEFINE_string("config", "electra_tiny", "A preset name or a JSON config file.")
flags.DEFINE_string("hparams", None, "JSON object (or a path to one) overriding config keys.")
flags.DEFINE_integer("num_train_steps", 1000, "Length of the learning-rate schedule.")
flags.DEFINE_string(
    "steps",
    "10,25,50,100,200,400,700,1000",
    "Comma-separated steps at which to score (increasing, at most --num_train_steps).",
)
flags.DEFINE_integer("seed", 11, "Seed of the run.")
flags.DEFINE_integer("eval_batches", 16, "Held-out batches of 32 scored at each step.")
cli.define_runtime_flags(strategy=False)  # --mixed_precision, as run_pretraining's
flags.DEFINE_integer("log_every_steps", 100, "Progress line every N steps.")


def main(argv):
    """Measures early pretraining dynamics: flags -> pretraining_dynamics.DynamicsOptions ->
    pretraining_dynamics.run_dynamics."""
    del argv
    for name in ("pretrain_data", "eval_data", "output_dir"):
        if not getattr(FLAGS, name):
            raise pretraining_dynamics.UserError(f"--{name} is required")
    pretraining_dynamics.run_dynamics(
        pretraining_dynamics.DynamicsOptions(
            pretrain_data=FLAGS.pretrain_data,
            eval_data=FLAGS.eval_data,
            output_dir=FLAGS.output_dir,
            config=FLAGS.config,
            hparams=FLAGS.hparams,
            num_train_steps=FLAGS.num_train_steps,
            steps=pretraining_dynamics.parse_steps(FLAGS.steps, FLAGS.num_train_steps),
            seed=FLAGS.seed,
            eval_batches=FLAGS.eval_batches,
            mixed_precision=FLAGS.mixed_precision,
            log_every_steps=FLAGS.log_every_steps,
        )
    )


if __name__ == "__main__":
    cli.run(main)
