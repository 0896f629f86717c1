"""The matmul peak both step benches report their shares against (measured in the same run)."""

import time


def matmul_peak(size: int, dtype: str, repeats: int = 5) -> float:
    """Best FLOP/s of a size^3 matmul chain in one compiled function."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    b = tf.random.normal((size, size), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)
    chain = 4

    @tf.function
    def run(x, y):
        out = x
        for _ in range(chain):
            out = tf.matmul(out, y) * tf.cast(1e-2, dtype)
        return tf.reduce_sum(tf.cast(out[:1, :1], tf.float32))

    run(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return chain * 2 * size**3 / best
