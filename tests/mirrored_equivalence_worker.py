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

from electra_tf import checkpointing, optimization, pretraining, pretraining_dataset  # noqa: E402
from electra_tf import config as config_lib  # noqa: E402

PER_REPLICA_BATCH = 4
STEPS = 2
CLIP_NORM = 0.05


def clipped_first_moment_norms(strategy):
    """Norm of Adam's first moment / (1 - beta_1) after one step in which every replica has the
    gradient [3, 4] (summed norm 5 * replicas), clipped to CLIP_NORM: plain keras AdamW vs
    ElectraAdamW. Clipping the summed gradient gives CLIP_NORM for any number of replicas."""
    import keras

    norms = {}
    for name, optimizer_class in (
        ("keras_adamw", keras.optimizers.AdamW),
        ("electra_adamw", optimization.ElectraAdamW),
    ):
        with strategy.scope():
            variable = keras.Variable(np.zeros(2, np.float32))
            optimizer = optimizer_class(learning_rate=0.1, global_clipnorm=CLIP_NORM)
            optimizer.build([variable])

        @tf.function
        def step():
            strategy.run(lambda: optimizer.apply_gradients([(tf.constant([3.0, 4.0]), variable)]))

        step()
        momentum = optimizer._momentums[0]
        norms[name] = float(np.linalg.norm(np.asarray(momentum.value)) / (1 - optimizer.beta_1))
    return norms


def load_checkpoint_variables(path):
    return {
        key: tf.train.load_variable(path, key)
        for key, _ in tf.train.list_variables(path)
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }


def first_step_update_norm(variables, beta_1):
    """The global norm of the (clipped) gradient that the first step applied: Adam's first
    moment after one step is (1 - beta_1) * gradient. Keras orders the optimizer's variables
    iterations (saved under its own key), then (momentum, velocity) per trained variable; with a
    schedule there is no learning-rate variable, so the momenta are the odd indices."""
    slots = {
        int(key.split("/")[2]): value for key, value in variables.items() if key.startswith("optimizer/_variables/")
    }
    assert sorted(slots) == list(range(1, len(slots) + 1)) and len(slots) % 2 == 0, sorted(slots)
    assert all(np.min(slots[index]) >= 0 for index in range(2, len(slots) + 1, 2)), "velocities?"
    squares = sum(float(np.sum(np.square(slots[index], dtype=np.float64))) for index in range(1, len(slots) + 1, 2))
    return float(np.sqrt(squares) / (1 - beta_1))


def zero_gradient_variables(first_step):
    """Trained variables whose first-step gradient is float32 noise (below 1e-11 of the largest;
    measured: key biases 1e-15 and 5e-14, the next smallest, attention kernels, 1e-9),
    as checkpoint indices into optimizer/_trainable_variables. The attention key bias is one:
    softmax is shift-invariant, so its gradient is exactly 0 in exact arithmetic and only
    rounding noise in float32. Adam normalises that noise into a full-size step whose sign
    depends on summation order, so one device and two replicas legitimately disagree there."""
    momenta = {
        int(key.split("/")[2]): np.max(np.abs(value))
        for key, value in first_step.items()
        if key.startswith("optimizer/_variables/") and int(key.split("/")[2]) % 2 == 1
    }
    largest = max(momenta.values())
    return sorted((index - 1) // 2 for index, size in momenta.items() if size < 1e-11 * largest)


def keys_of_trained_variables(indices):
    keys = []
    for index in indices:
        keys.append(f"optimizer/_trainable_variables/{index}/.ATTRIBUTES/VARIABLE_VALUE")
        keys.extend(f"optimizer/_variables/{2 * index + offset}/.ATTRIBUTES/VARIABLE_VALUE" for offset in (1, 2))
    return keys


def input_fn(files, max_seq_length, *, copies_per_batch):
    """The same batches in file order; each repeated `copies_per_batch` times in a row.

    distribute_datasets_from_function hands consecutive batches of the one input pipeline to
    the replicas in turn, so with 2 copies both replicas of a step get the same examples.
    """

    def make(context):
        dataset = pretraining_dataset.make_pretraining_dataset(
            files, PER_REPLICA_BATCH, max_seq_length, is_training=False
        ).repeat()
        if copies_per_batch > 1:
            dataset = dataset.flat_map(lambda batch: tf.data.Dataset.from_tensors(batch).repeat(copies_per_batch))
        return dataset

    return make


def main():
    data_glob, work_dir = sys.argv[1:3]
    files = sorted(glob.glob(data_glob))
    base = config_lib.load_config(
        "electra_tiny",
        {
            "hidden_size": 64,
            "embedding_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 1,
            # No warm-up, so the first step already moves the weights.
            "num_train_steps": STEPS,
            "num_warmup_steps": 0,
            "save_checkpoints_steps": 1,
            # Far below the first step's gradient norm, so clipping decides every update.
            "clip_norm": CLIP_NORM,
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
        checkpoint_dir = os.path.join(model_dir, checkpointing.CHECKPOINT_SUBDIR)
        variables = load_checkpoint_variables(tf.train.latest_checkpoint(checkpoint_dir))
        first_step = load_checkpoint_variables(os.path.join(checkpoint_dir, "ckpt-1"))
        results[name] = dict(
            replicas=replicas,
            loss=outcome.train_metrics["loss"],
            final_step=outcome.final_step,
            variables=variables,
            clipped_norms=clipped_first_moment_norms(strategy),
            first_update_norm=first_step_update_norm(first_step, config.adam_beta1),
            zero_gradient=zero_gradient_variables(first_step),
        )

    single, mirrored = results["one_device"], results["mirrored"]
    missing = sorted(set(single["variables"]) ^ set(mirrored["variables"]))
    zero_gradient = sorted(set(single["zero_gradient"]) | set(mirrored["zero_gradient"]))
    noise_keys = set(keys_of_trained_variables(zero_gradient))
    differences, ratios = {}, {}
    for key, value in single["variables"].items():
        if key not in mirrored["variables"] or not np.size(value) or key in noise_keys:
            continue
        a = np.asarray(value, np.float64)
        b = np.asarray(mirrored["variables"][key], np.float64)
        # Relative to the variable's own scale: Adam's second moments are ~1e-8, weights ~1e-2.
        differences[key] = float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-30))
        nonzero = np.abs(a) > 1e-30
        if differences[key] > 1e-5 and nonzero.any():
            ratios[key] = [float(r) for r in np.percentile(b[nonzero] / a[nonzero], [0, 100])]
    largest_slot = float(
        max(
            np.max(np.abs(np.asarray(value, np.float64)))
            for key, value in single["variables"].items()
            if key.startswith("optimizer/_variables")
        )
    )
    worst = sorted(differences, key=differences.get, reverse=True)[:5]
    print(
        "RESULT "
        + json.dumps(
            {
                "replicas": [single["replicas"], mirrored["replicas"]],
                "losses": [single["loss"], mirrored["loss"]],
                "final_steps": [single["final_step"], mirrored["final_step"]],
                "unmatched_variables": missing,
                "max_relative_difference": max(differences.values()),
                "mismatch_ratio_ranges": ratios,
                "worst_variables": {key: differences[key] for key in worst},
                "shapes": {key: list(np.shape(single["variables"][key])) for key in worst},
                "num_variables": len(differences),
                "zero_gradient_variables": {
                    str(index): list(np.shape(single["variables"][keys_of_trained_variables([index])[0]]))
                    for index in zero_gradient
                },
                "clip_norm": CLIP_NORM,
                "first_step_update_norms": [single["first_update_norm"], mirrored["first_update_norm"]],
                "clipped_first_moment_norms": [single["clipped_norms"], mirrored["clipped_norms"]],
                "largest_optimizer_slot": largest_slot,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
