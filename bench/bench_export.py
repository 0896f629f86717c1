"""Latency and throughput of an exported text classifier on CPU (ELECTRA-Small shape, seq 128).

    .venv/bin/python bench/bench_export.py [--calls=200] [--batches=20] [--max_seq_length=128]

Builds an SST-2 classifier with ELECTRA-Small's config (random weights: speed does not depend on
their values), exports it with electra_tf.export, loads the SavedModel with tf.saved_model.load
and times its serving_default signature on Wikipedia text long enough to fill every row to
--max_seq_length tokens. Prints, side by side in one run:
  * batch 1: p50 / p95 latency of the SavedModel (raw text in, label out);
  * batch 64: examples/s of the SavedModel;
  * the same two for the Keras model alone on ready-made int32 [batch, 128] ids in a
    tf.function (no tokenization, no decoding), and the SavedModel / Keras time ratio, i.e.
    what in-graph tokenization and packing cost on top of the network.
The machine's other load shows in the figures; the CPU-seconds per call are printed as well.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SHARED_DATA = os.environ.get(
    "ELECTRA_TF_SHARED_DATA",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data"),
)


def long_texts(count: int, words: int = 200) -> list[str]:
    """``count`` Wikipedia passages of ``words`` words (well over 128 WordPieces each)."""
    directory = os.path.join(SHARED_DATA, "pretrain", "wikipedia_en")
    texts, current = [], []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            for line in handle:
                if not line.strip() or line.startswith("<doc") or line.startswith("</doc"):
                    continue
                current.extend(line.split())
                while len(current) >= words:
                    texts.append(" ".join(current[:words]))
                    current = current[words:]
                    if len(texts) == count:
                        return texts
    raise SystemExit(f"not enough text in {directory}")


def timed(function, repeats: int) -> tuple[np.ndarray, float]:
    """Per-call wall seconds (after one warm-up call) and CPU seconds per call."""
    function()
    walls = []
    cpu = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        walls.append(time.perf_counter() - start)
    return np.array(walls), (time.process_time() - cpu) / repeats


def export_small_classifier(directory: str, max_seq_length: int) -> str:
    from electra_tf import config as config_lib
    from electra_tf import exporter, finetuning, finetuning_tasks

    config = config_lib.load_config("electra_small")
    task = finetuning_tasks.GLUE_TASKS["sst-2"]
    model = finetuning.build_model(config, task, None)
    finetuned = os.path.join(directory, "finetuned")
    vocab = os.path.join(SHARED_DATA, "vocab", "bert-base-uncased", "vocab.txt")
    finetuning._save_finetuned(model, config, task, finetuned, max_seq_length, vocab_file=vocab)
    return exporter.export(finetuned, os.path.join(directory, "serving"))[0], model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="batch-1 calls timed")
    parser.add_argument("--batches", type=int, default=20, help="batch-64 calls timed")
    parser.add_argument("--max_seq_length", type=int, default=128)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        path, keras_model = export_small_classifier(directory, args.max_seq_length)
        print(f"exported ELECTRA-Small SST-2 classifier to {path} in {time.perf_counter() - started:.1f} s")
        serving = tf.saved_model.load(path).signatures["serving_default"]
        texts = long_texts(64)
        one = tf.constant(texts[:1])
        many = tf.constant(texts)
        check = serving(text_a=many)
        assert check["probabilities"].shape == (64, 2)

        # The network alone on the ids the SavedModel feeds it (every row is full).
        from electra_tf import tokenization

        tokenizer = tokenization.Tokenizer(os.path.join(SHARED_DATA, "vocab", "bert-base-uncased", "vocab.txt"))
        lengths = [len(ids) for ids in tokenizer.encode(texts)]
        assert min(lengths) >= args.max_seq_length - 2, min(lengths)
        ids = np.full((64, args.max_seq_length), 2003, np.int32)
        features = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}
        network = tf.function(lambda batch: keras_model(batch, training=False)["logits"])
        one_ids = {name: tf.constant(value[:1]) for name, value in features.items()}
        many_ids = {name: tf.constant(value) for name, value in features.items()}

        rows = []
        for name, call_one, call_many in (
            (
                "SavedModel, text in",
                lambda: serving(text_a=one)["label_id"].numpy(),
                lambda: serving(text_a=many)["label_id"].numpy(),
            ),
            ("Keras network, ids in", lambda: network(one_ids).numpy(), lambda: network(many_ids).numpy()),
        ):
            latencies, cpu_one = timed(call_one, args.calls)
            batch_times, cpu_many = timed(call_many, args.batches)
            rows.append(
                (
                    name,
                    np.percentile(latencies, 50) * 1e3,
                    np.percentile(latencies, 95) * 1e3,
                    cpu_one * 1e3,
                    64 / np.median(batch_times),
                    cpu_many,
                )
            )
    print(
        f"\nCPU, {os.cpu_count()} cores visible, tensorflow {tf.__version__}, seq "
        f"{args.max_seq_length}; batch 1: {args.calls} calls, batch 64: {args.batches} calls"
    )
    print(f"{'':24s} {'b1 p50 ms':>10s} {'b1 p95 ms':>10s} {'b1 CPU ms':>10s} {'b64 ex/s':>9s} {'b64 CPU s':>10s}")
    for name, p50, p95, cpu_one, rate, cpu_many in rows:
        print(f"{name:24s} {p50:10.2f} {p95:10.2f} {cpu_one:10.2f} {rate:9.1f} {cpu_many:10.3f}")
    saved, keras_row = rows
    print(
        f"\nSavedModel / Keras network: batch-1 p50 x{saved[1] / keras_row[1]:.2f}, "
        f"batch-64 throughput x{saved[4] / keras_row[4]:.2f}"
    )
    print(
        json.dumps(
            {
                "b1_p50_ms": round(saved[1], 2),
                "b1_p95_ms": round(saved[2], 2),
                "b64_examples_per_s": round(saved[4], 1),
                "keras_b1_p50_ms": round(keras_row[1], 2),
                "keras_b64_examples_per_s": round(keras_row[4], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
