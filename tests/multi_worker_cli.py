"""Subprocess for tests/test_distribution.py: one worker running the run_pretraining CLI.

Usage (TF_CONFIG set by the caller): multi_worker_cli.py --flag=value ... (run_pretraining's flags)
With ELECTRA_TF_TEST_DIE_AFTER_STEP=N this worker kills itself with SIGKILL (no clean-up, as a
lost machine) right after taking part in checkpoint N, once the chief's checkpoint N is complete
in --model_dir: then the other workers are mid-training, waiting on it in the next step.
"""

import os
import signal
import sys
import time

from electra_tf import checkpointing, cli, run_pretraining, training_callbacks

DIE_AFTER_STEP = int(os.environ.get("ELECTRA_TF_TEST_DIE_AFTER_STEP", "0"))


def install_death_after_checkpoint(step: int, model_dir: str) -> None:
    save_now = training_callbacks.RestoreAndCheckpoint.save_now

    def save_then_die(self):
        save_now(self)
        if self.counter.step != step:
            return
        while checkpointing.latest_checkpoint_step(model_dir) < step:
            time.sleep(0.05)
        from tensorflow.python.eager import context

        # What the strategy runs with: it keeps the coordination config it finds.
        heartbeat = context.context().coordination_service.heartbeat_timeout_in_ms
        print(f"DYING after checkpoint {step} (heartbeat_timeout_in_ms={heartbeat})", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    training_callbacks.RestoreAndCheckpoint.save_now = save_then_die


if __name__ == "__main__":
    if DIE_AFTER_STEP:
        model_dir = next(arg.split("=", 1)[1] for arg in sys.argv if arg.startswith("--model_dir="))
        install_death_after_checkpoint(DIE_AFTER_STEP, model_dir)
    sys.argv[0] = "run_pretraining"
    cli.run(run_pretraining.main)
