"""Shared plumbing for the `python -m electra_tf.<tool>` entry points.

Imports neither TensorFlow nor Keras, so that a CLI's --help and its flag errors come at once.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import app, flags

from electra_tf.errors import UserError

# The values of --strategy and --mixed_precision; electra_tf.distribution builds what they name
# (create_strategy, MIXED_PRECISION_POLICIES) and re-exports these.
STRATEGY_NAMES = ("one_device", "mirrored", "multi_worker", "tpu")
MIXED_PRECISION_MODES = ("none", "bf16", "fp16")

# Flags defined by the functions below belong to the CLI module that calls them (so that its
# --help lists them), not to this one.
flags.disclaim_key_flags()


def define_runtime_flags(
    *,
    strategy: bool = True,
    mixed_precision_modes: Sequence[str] = MIXED_PRECISION_MODES,
    mixed_precision_help: str = "Compute dtype: bf16 = Keras's mixed_bfloat16, fp16 = "
    "mixed_float16 with dynamic loss scaling.",
    flag_values: flags.FlagValues = flags.FLAGS,
) -> None:
    """Defines the flags that choose where and how a job runs, on `flag_values`.

    Args:
      strategy: also define --strategy, --tpu, --num_cpu_devices and --jit_compile (the values
        electra_tf.distribution reads); without it only --mixed_precision.
      mixed_precision_modes: the --mixed_precision choices a tool supports (a prefix of
        MIXED_PRECISION_MODES; default all).
      mixed_precision_help: its help text.
      flag_values: the FlagValues to define them on (absl's global FLAGS by default).
    """
    flags.DEFINE_enum(
        "mixed_precision", "none", list(mixed_precision_modes), mixed_precision_help, flag_values=flag_values
    )
    if not strategy:
        return
    flags.DEFINE_enum(
        "strategy",
        "one_device",
        list(STRATEGY_NAMES),
        "tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "tpu", None, "TPU name or grpc:// address for TPUClusterResolver ('' = local TPU VM).", flag_values=flag_values
    )
    flags.DEFINE_integer(
        "num_cpu_devices",
        1,
        "Split the CPU into this many logical devices (to try --strategy=mirrored without GPUs).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step (one replica only).", flag_values=flag_values)


def run(main: Callable[[list[str]], object]) -> None:
    """Runs an absl main; a UserError becomes one line on stderr and its exit_code (2, or 3 for
    errors.WorkerLostError)."""

    def guarded_main(argv: list[str]) -> object:
        try:
            return main(argv)
        except UserError as error:
            program = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "electra_tf"
            sys.stderr.write(f"{program}: error: {error}\n")
            sys.stderr.flush()
            sys.exit(getattr(error, "exit_code", 2))

    app.run(guarded_main)
