"""Times full ELECTRA pretraining steps (generator + discriminator + AdamW) on this machine.

The step is the one ``fit`` runs (Keras' compiled train function, driven by ``fit`` over a
repeated batch); the first steps (tracing/compilation) are not timed. In the same run it
measures a matmul peak (a large float32 and a bfloat16 matmul) and reports model FLOPs
utilisation (MFU) against it, for each precision policy asked for.

Model FLOPs per step are counted from the config by electra_tf.flops.training_step_flops (the
same counter the objective-comparison experiment budgets with): the matmuls of the embedding
projection, every encoder layer, the attention products, the discriminator head, the generator
and its MLM head at the masked positions only, x3 for forward + backward. Embedding gathers,
softmax, LayerNorm, dropout and the optimizer are not counted (work, but not model FLOPs).

    .venv/bin/python bench/bench_pretraining_step.py                  # Small, batch 32, seq 128
    .venv/bin/python bench/bench_pretraining_step.py --policies float32 --repeats 3
    .venv/bin/python bench/bench_pretraining_step.py --hparams '{"paired_dropout_draws": false}'
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from matmul_peak import matmul_peak  # noqa: E402 (bench/, the script's folder)

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "electra_small", "Preset name or JSON config file.")
flags.DEFINE_string(
    "hparams",
    None,
    "JSON object overriding config keys, as run_pretraining's "
    "(e.g. '{\"paired_dropout_draws\": false}' for an A/B of one change).",
)
flags.DEFINE_integer("batch_size", 32, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("steps", 8, "Timed steps per measurement.")
flags.DEFINE_integer("warmup_steps", 3, "Untimed steps first (tracing, compilation).")
flags.DEFINE_integer("repeats", 2, "Measurements per setting (the others share the CPUs).")
flags.DEFINE_list("policies", ["float32", "mixed_bfloat16"], "Keras dtype policies to time.")
flags.DEFINE_list(
    "jit_compile",
    ["false"],
    "XLA settings to time: true and/or false. Off by default: on CPU, XLA's "
    "random-number generation (dropout) makes a step over 10x slower.",
)
flags.DEFINE_bool(
    "compare_huggingface",
    True,
    "Also time the same step built from Hugging Face transformers' PyTorch ELECTRA "
    "classes in this run (needs torch and transformers, the test extra), for a ratio.",
)
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matmul used to measure the peak.")


def time_steps(config, policy: str, jit_compile: bool, batch: int, seq: int) -> list[float]:
    """Per-step seconds for FLAGS.steps steps after warm-up, FLAGS.repeats times."""
    import keras
    import tensorflow as tf

    from electra_tf.optimization import create_optimizer
    from electra_tf.pretraining_objective import ElectraPretrainer

    keras.config.set_dtype_policy(policy)
    try:
        model = ElectraPretrainer(config, seed=0)
        model.compile(optimizer=create_optimizer(config, 100000), jit_compile=jit_compile)
    finally:
        keras.config.set_dtype_policy("float32")

    rng = np.random.default_rng(0)
    input_ids = rng.integers(999, config.vocab_size, size=(batch, seq), dtype=np.int32)
    input_ids[:, 0] = config.cls_token_id
    input_ids[:, seq // 2] = config.sep_token_id
    input_ids[:, -1] = config.sep_token_id
    segment_ids = np.zeros((batch, seq), np.int32)
    segment_ids[:, seq // 2 + 1 :] = 1
    features = {"input_ids": input_ids, "input_mask": np.ones((batch, seq), np.int32), "segment_ids": segment_ids}
    dataset = tf.data.Dataset.from_tensors(features).repeat()

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch_index, logs=None):
            self.ends.append(time.perf_counter())

    results = []
    for _ in range(FLAGS.repeats):
        clock = StepClock()
        model.fit(dataset, steps_per_epoch=FLAGS.warmup_steps + FLAGS.steps, epochs=1, verbose=0, callbacks=[clock])
        timed = np.diff(clock.ends[FLAGS.warmup_steps - 1 :])
        results.append(float(np.median(timed)))
    return results


def time_huggingface_steps(config, batch: int, seq: int) -> list[float]:
    """Per-step seconds of the ELECTRA step built from transformers' PyTorch classes, float32.

    The way a user would write it with those classes: ElectraForMaskedLM as generator (its head
    over the whole sequence), ElectraForPreTraining as discriminator, one shared embedding
    module, 15% of the tokens masked, a sampled replacement, loss MLM + 50 x disc, torch AdamW.
    """
    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    common = dict(
        vocab_size=config.vocab_size,
        embedding_size=config.embedding_size,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
    )
    discriminator = transformers.ElectraForPreTraining(
        transformers.ElectraConfig(
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            **common,
        )
    )
    generator = transformers.ElectraForMaskedLM(
        transformers.ElectraConfig(
            hidden_size=config.generator_hidden,
            num_hidden_layers=config.generator_num_hidden_layers,
            num_attention_heads=config.generator_num_attention_heads,
            intermediate_size=config.generator_intermediate_size,
            **common,
        )
    )
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
    parameters = {id(p): p for p in [*discriminator.parameters(), *generator.parameters()]}
    optimizer = torch.optim.AdamW(list(parameters.values()), lr=1e-4, eps=1e-6, weight_decay=0.01)
    generator_rng = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, config.vocab_size, (batch, seq), generator=generator_rng)
    attention_mask = torch.ones_like(input_ids)

    def step():
        chosen = torch.rand(batch, seq, generator=generator_rng) < config.mask_prob
        masked_ids = torch.where(chosen, torch.full_like(input_ids, config.mask_token_id), input_ids)
        logits = generator(input_ids=masked_ids, attention_mask=attention_mask).logits
        mlm_loss = torch.nn.functional.cross_entropy(logits[chosen], input_ids[chosen])
        with torch.no_grad():
            sampled = torch.distributions.Categorical(logits=logits[chosen]).sample()
        corrupted = input_ids.clone()
        corrupted[chosen] = sampled
        labels = (corrupted != input_ids).float()
        disc_logits = discriminator(input_ids=corrupted, attention_mask=attention_mask).logits
        disc_loss = torch.nn.functional.binary_cross_entropy_with_logits(disc_logits, labels)
        loss = mlm_loss + 50.0 * disc_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(parameters.values()), 1.0)
        optimizer.step()

    for _ in range(FLAGS.warmup_steps):
        step()
    runs = []
    for _ in range(FLAGS.repeats):
        started = time.perf_counter()
        for _ in range(FLAGS.steps):
            step()
        runs.append((time.perf_counter() - started) / FLAGS.steps)
    return runs


def main(argv):
    del argv
    import json

    from electra_tf.config import load_config
    from electra_tf.flops import training_step_flops

    overrides = json.loads(FLAGS.hparams) if FLAGS.hparams else {}
    config = load_config(FLAGS.config, {**overrides, "max_seq_length": FLAGS.seq_length})
    batch, seq = FLAGS.batch_size, FLAGS.seq_length
    flops = training_step_flops(config, batch, seq)
    print(
        f"config {FLAGS.config} {overrides or ''}: H={config.hidden_size} L={config.num_hidden_layers} "
        f"E={config.embedding_size} V={config.vocab_size} generator H={config.generator_hidden}"
        f", batch {batch} x seq {seq}, {FLAGS.steps} timed steps x {FLAGS.repeats} repeats"
    )
    print("model GFLOP per step: " + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in flops.items()))
    peaks = {
        "float32": matmul_peak(FLAGS.matmul_size, "float32"),
        "bfloat16": matmul_peak(FLAGS.matmul_size, "bfloat16"),
    }
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work slows every figure below)")
    print(
        f"matmul peak ({FLAGS.matmul_size}^3): float32 {peaks['float32'] / 1e9:.0f} GFLOP/s, "
        f"bfloat16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s"
    )
    fp32_best = None  # seconds per step of our float32 step without XLA, for the HF ratio
    for policy in FLAGS.policies:
        for jit in FLAGS.jit_compile:
            jit_compile = jit.lower() in ("1", "true", "yes")
            seconds = time_steps(config, policy, jit_compile, batch, seq)
            # The CPUs are shared: measure the peak again right after, next to these steps.
            peak_dtype = "bfloat16" if "bfloat16" in policy else "float32"
            peaks[peak_dtype] = max(peaks[peak_dtype], matmul_peak(FLAGS.matmul_size, peak_dtype))
            peak = peaks[peak_dtype]
            print(
                f"load average {os.getloadavg()[0]:.1f}; best {peak_dtype} matmul peak so far {peak / 1e9:.0f} GFLOP/s"
            )
            for index, step_seconds in enumerate(seconds):
                achieved = flops["total"] / step_seconds
                print(
                    f"{policy:15s} jit_compile={jit_compile!s:5s} run {index + 1}: "
                    f"{step_seconds * 1000:7.1f} ms/step  {batch / step_seconds:6.2f} seq/s  "
                    f"{achieved / 1e9:6.1f} GFLOP/s  MFU {achieved / peak:5.1%} of the "
                    f"{'bf16' if 'bfloat16' in policy else 'fp32'} matmul peak"
                    f" ({achieved / peaks['float32']:5.1%} of fp32)"
                )
            if policy == "float32" and not jit_compile:
                fp32_best = min(seconds)
    if FLAGS.compare_huggingface:
        try:
            hf_seconds = time_huggingface_steps(config, batch, seq)
        except ImportError as error:
            print(f"Hugging Face comparison skipped: {error} (pip install -e '.[test]')")
        else:
            print(f"load average {os.getloadavg()[0]:.1f}")
            for index, step_seconds in enumerate(hf_seconds):
                print(
                    f"{'HF PyTorch fp32':15s} run {index + 1}: {step_seconds * 1000:7.1f} ms/step  "
                    f"{batch / step_seconds:6.2f} seq/s"
                )
            if fp32_best is not None:
                print(
                    f"float32 speed-up over the Hugging Face PyTorch step (best runs, same "
                    f"process): {min(hf_seconds) / fp32_best:.2f}x"
                )
    print(
        "reference points on these machines (keras3-tf-distribute.md): Hugging Face PyTorch "
        "ELECTRA step 5.9 seq/s fp32; plain Keras 3 step 9.4 seq/s fp32, 20 seq/s bf16"
    )


if __name__ == "__main__":
    app.run(main)
