"""Subprocess for tests/test_distribution.py: MirroredStrategy on 2 logical CPUs vs one device.

Logical devices must be configured before TensorFlow initialises, hence a separate process.

Usage: mirrored_equivalence_worker.py DATA_GLOB WORK_DIR
Prints one line "RESULT <json>" with both runs' final losses and their checkpoints' largest
absolute difference per variable.
"""

import glob
import json
import os
import sys

from electra_tf import distribution

distribution.split_cpu_devices(2)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import checkpointing, config as config_lib, pretraining, pretraining_data  # noqa: E402

PER_REPLICA_BATCH = 4
STEPS = 1


def input_fn(files, max_seq_length, *, copies_per_batch):
    """The same batches in file order; each repeated `copies_per_batch` times in a row.

    distribute_datasets_from_function hands consecutive batches of the one input pipeline to
    the replicas in turn, so with 2 copies both replicas of a step get the same examples.
    """

    def make(context):
        dataset = pretraining_data.make_pretraining_dataset(
            files, PER_REPLICA_BATCH, max_seq_length, is_training=False
        ).repeat()
        if copies_per_batch > 1:
            dataset = dataset.flat_map(
                lambda batch: tf.data.Dataset.from_tensors(batch).repeat(copies_per_batch)
            )
        return dataset

    return make


def main():
    data_glob, work_dir = sys.argv[1:3]
    files = sorted(glob.glob(data_glob))
    base = config_lib.load_config(
        "electra_tiny",
        {
            "hidden_size": 64, "embedding_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 1, "num_attention_heads": 1,
            "num_train_steps": STEPS, "num_warmup_steps": 1, "save_checkpoints_steps": STEPS,
            # Keras 3 clips each replica's gradient before the cross-replica sum, so with
            # clipping active 2 replicas get twice the clipped norm; compare everything else.
            "clip_norm": 0.0,
        },
    )
    results = {}
    for name, strategy in (
        ("one_device", distribution.create_strategy("one_device")),
        ("mirrored", distribution.create_strategy("mirrored")),
    ):
        replicas = strategy.num_replicas_in_sync
        config = base.replace({"train_batch_size": PER_REPLICA_BATCH * replicas})
        model_dir = os.path.join(work_dir, name)
        outcome = pretraining.train(
            config,
            strategy,
            model_dir=model_dir,
            train_input_fn=input_fn(files, config.max_seq_length, copies_per_batch=replicas),
            seed=7,
            log_every_steps=1,
            save_pretrained_model=False,
        )
        checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, checkpointing.CHECKPOINT_SUBDIR))
        variables = {
            key: tf.train.load_variable(checkpoint, key)
            for key, _ in tf.train.list_variables(checkpoint)
            if key != "_CHECKPOINTABLE_OBJECT_GRAPH"
        }
        results[name] = dict(replicas=replicas, loss=outcome.train_metrics["loss"],
                             final_step=outcome.final_step, variables=variables)

    single, mirrored = results["one_device"], results["mirrored"]
    missing = sorted(set(single["variables"]) ^ set(mirrored["variables"]))
    differences, ratios = {}, {}
    for key, value in single["variables"].items():
        if key not in mirrored["variables"] or not np.size(value):
            continue
        a = np.asarray(value, np.float64)
        b = np.asarray(mirrored["variables"][key], np.float64)
        # Relative to the variable's own scale: Adam's second moments are ~1e-8, weights ~1e-2.
        differences[key] = float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-30))
        nonzero = np.abs(a) > 1e-30
        if differences[key] > 1e-5 and nonzero.any():
            ratios[key] = [float(r) for r in np.percentile(b[nonzero] / a[nonzero], [0, 100])]
    largest_slot = float(max(
        np.max(np.abs(np.asarray(value, np.float64))) for key, value in single["variables"].items()
        if key.startswith("optimizer/_variables")
    ))
    worst = sorted(differences, key=differences.get, reverse=True)[:5]
    print("RESULT " + json.dumps({
        "replicas": [single["replicas"], mirrored["replicas"]],
        "losses": [single["loss"], mirrored["loss"]],
        "final_steps": [single["final_step"], mirrored["final_step"]],
        "unmatched_variables": missing,
        "max_relative_difference": max(differences.values()),
        "mismatch_ratio_ranges": ratios,
        "worst_variables": {key: differences[key] for key in worst},
        "shapes": {key: list(np.shape(single["variables"][key])) for key in worst},
        "num_variables": len(differences),
        "largest_optimizer_slot": largest_slot,
    }), flush=True)


if __name__ == "__main__":
    main()
