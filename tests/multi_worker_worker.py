"""Subprocess for tests/test_distribution.py: one worker of a MultiWorkerMirroredStrategy run.

Usage (TF_CONFIG set by the caller): multi_worker_worker.py PRETRAIN_DATA MODEL_DIR HPARAMS_JSON
Before training it checks whether Keras still needs electra_tf.distribution's workaround, by
calling Keras's unpatched reduce_per_replica on a scalar the way fit does. Prints one line
"RESULT <json>".
"""

import json
import sys

import tensorflow as tf

from electra_tf import distribution, pretraining


def keras_scalar_reduction_error(strategy) -> str:
    """The error Keras's own reduce_per_replica raises for a scalar log value ('' if none)."""
    keras_reduce_per_replica = distribution._keras_trainer_module().reduce_per_replica
    keras_reduce_per_replica = getattr(keras_reduce_per_replica, "__wrapped__", keras_reduce_per_replica)

    @tf.function
    def step():
        per_replica = strategy.run(lambda: tf.constant(1.5))
        return keras_reduce_per_replica({"loss": per_replica}, strategy, "auto")

    try:
        step()
    except Exception as error:  # noqa: BLE001 - any failure means the workaround is needed
        return f"{type(error).__name__}: {' '.join(str(error).split())[-400:]}"
    return ""


def main():
    pretrain_data, model_dir, hparams = sys.argv[1:4]
    strategy = distribution.create_strategy("multi_worker")
    unpatched_error = keras_scalar_reduction_error(strategy)
    options = pretraining.PretrainingOptions(
        model_dir=model_dir,
        pretrain_data=pretrain_data,
        strategy="multi_worker",
        log_every_steps=1,
    )
    outcome = pretraining.run_pretraining(
        options, config="electra_tiny", hparams=json.loads(hparams), strategy=strategy
    )
    print(
        "RESULT "
        + json.dumps(
            {
                "chief": distribution.is_chief(strategy),
                "replicas": strategy.num_replicas_in_sync,
                "unpatched_keras_error": unpatched_error,
                "final_step": outcome.final_step,
                "train_metrics": outcome.train_metrics,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
