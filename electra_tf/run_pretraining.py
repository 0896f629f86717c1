"""Pretrain ELECTRA: `python -m electra_tf.run_pretraining --config=electra_small --pretrain_data=... --model_dir=...`

Restarting with the same --model_dir resumes from its newest checkpoint (--continue_training
to raise --num_train_steps). --mode=eval / continuous_eval score its checkpoints on --eval_data
without training. See electra_tf/pretraining.py for what is written into --model_dir.
"""

from __future__ import annotations

import logging

from absl import flags
from absl import logging as absl_logging

from electra_tf import cli
from electra_tf.errors import UserError

FLAGS = flags.FLAGS

flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "eval", "continuous_eval"],
    "train; eval: score the newest (or --checkpoint_step) checkpoint on --eval_data; "
    "continuous_eval: score each new checkpoint of --model_dir as it appears.",
)
flags.DEFINE_string("config", "electra_small", "Config preset name or path to a config JSON file.")
flags.DEFINE_string("hparams", None, "JSON object (or a path to one) overriding config keys.")
flags.DEFINE_string("pretrain_data", None, "Glob of TFRecord files, or a directory holding manifest.json.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and the final model go.")
flags.DEFINE_integer("num_train_steps", None, "Total optimizer steps (overrides the config).")
flags.DEFINE_integer("train_batch_size", None, "Global batch size over all replicas (overrides the config).")
flags.DEFINE_integer("save_checkpoints_steps", None, "Checkpoint every this many steps (overrides the config).")
flags.DEFINE_integer("keep_checkpoint_max", None, "Keep this many newest checkpoints (overrides the config).")
# --strategy, --tpu, --num_cpu_devices, --mixed_precision, --jit_compile:
cli.define_runtime_flags()
flags.DEFINE_string("eval_data", None, "Held-out TFRecords (glob or manifest directory) to evaluate on.")
flags.DEFINE_integer("eval_steps", None, "Batches per evaluation (default: the config's num_eval_steps).")
flags.DEFINE_bool("eval_at_checkpoints", True, "Also evaluate at every checkpoint, not only at the end.")
flags.DEFINE_integer(
    "seed", None, "Seed of model init, masking/dropout randomness and data order (default: the config's seed)."
)
flags.DEFINE_string(
    "init_checkpoint",
    None,
    "Start from this save_pretrained directory (e.g. a converted released checkpoint) "
    "instead of random weights: continued pretraining. Ignored when resuming.",
)
flags.DEFINE_integer("log_every_steps", 100, "Print progress and write train summaries this often.")
flags.DEFINE_bool(
    "continue_training",
    False,
    "Accept a --num_train_steps other than the one --model_dir was trained with: resume "
    "from its newest checkpoint with the schedule of the new total.",
)
flags.DEFINE_integer(
    "steps_per_execution",
    None,
    "Train steps per compiled call (Keras's steps_per_execution); checkpoint and "
    "log intervals must be multiples. Default: up to 100 under --strategy=tpu, else 1.",
)
flags.DEFINE_float(
    "worker_timeout_seconds",
    60.0,
    "--strategy=multi_worker: once a worker has sent no heartbeat for this long, the "
    "others stop with one line naming it (exit status 3); rerun every worker to resume "
    "from the last checkpoint.",
)
flags.DEFINE_integer("checkpoint_step", None, "--mode=eval: score this checkpoint instead of the newest.")
flags.DEFINE_float("eval_poll_seconds", 30.0, "--mode=continuous_eval: look for a new checkpoint this often.")
flags.DEFINE_float(
    "eval_timeout_seconds", 3600.0, "--mode=continuous_eval: stop after this long without a new checkpoint."
)


def main(argv: list[str]) -> None:
    """Pretrains (or evaluates checkpoints, per --mode): flags -> pretraining.PretrainingOptions ->
    pretraining.run_pretraining."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag")
    # TensorFlow-heavy: imported after the flags are parsed, so --help and flag errors stay fast.
    from electra_tf import distribution, pretraining

    # TensorFlow's INFO chatter (collective all-reduce set-up, saver sharding) drowns the
    # progress lines; warnings still show.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    # The checkpoint saver logs its sharding through absl directly.
    absl_logging.set_verbosity(absl_logging.WARNING)

    # Before anything initialises the TensorFlow runtime.
    distribution.split_cpu_devices(FLAGS.num_cpu_devices)
    options = pretraining.PretrainingOptions(
        model_dir=FLAGS.model_dir,
        pretrain_data=FLAGS.pretrain_data,
        strategy=FLAGS.strategy,
        tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        eval_data=FLAGS.eval_data,
        eval_steps=FLAGS.eval_steps,
        eval_at_checkpoints=FLAGS.eval_at_checkpoints,
        seed=FLAGS.seed,
        log_every_steps=FLAGS.log_every_steps,
        init_checkpoint=FLAGS.init_checkpoint,
        continue_training=FLAGS.continue_training,
        steps_per_execution=FLAGS.steps_per_execution,
        mode=FLAGS.mode,
        checkpoint_step=FLAGS.checkpoint_step,
        eval_poll_seconds=FLAGS.eval_poll_seconds,
        eval_timeout_seconds=FLAGS.eval_timeout_seconds,
        worker_timeout_seconds=FLAGS.worker_timeout_seconds,
    )
    pretraining.run_pretraining(
        options,
        config=FLAGS.config,
        hparams=FLAGS.hparams,
        num_train_steps=FLAGS.num_train_steps,
        train_batch_size=FLAGS.train_batch_size,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max,
    )


if __name__ == "__main__":
    cli.run(main)
