"""tf.distribute behaviour of pretraining: the Keras multi-worker canary, MirroredStrategy on 2
logical CPUs against one device, and two workers on 127.0.0.1 under MultiWorkerMirroredStrategy."""

import inspect
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from electra_tf import distribution
from electra_tf.errors import UserError

TESTS_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

# Small enough that a step is quick on 2 cores; the tiny preset's vocabulary and sequence length
# stay so the data's manifest matches.
MECHANICS_HPARAMS = {
    "hidden_size": 64,
    "embedding_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "num_warmup_steps": 2,
}


def _worker_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def _result_line(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, f"worker printed no RESULT line; output tail:\n{output[-4000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


# ---------------------------------------------------------------------------------------------
# The workaround for keras-team/keras#20585 and its canary.
# ---------------------------------------------------------------------------------------------


def _keras_originals():
    module = distribution._keras_trainer_module()
    build = module.TensorFlowTrainer._maybe_symbolic_build
    reduce = module.reduce_per_replica
    return getattr(build, "__wrapped__", build), getattr(reduce, "__wrapped__", reduce)


def test_keras_code_patched_for_multi_worker_is_unchanged():
    """Fails when a Keras upgrade rewrites the two functions the workaround wraps.

    Then re-check keras-team/keras#20585: if the multi-worker test below reports that Keras's
    own reduction works, delete patch_keras_fit_for_multi_worker; otherwise update the markers.
    """
    build, reduce = _keras_originals()
    assert list(inspect.signature(build).parameters) == ["self", "iterator", "data_batch"]
    assert list(inspect.signature(reduce).parameters) == ["values", "strategy", "reduction"]
    assert distribution.SYMBOLIC_BUILD_MARKER in inspect.getsource(build)
    assert distribution.REDUCE_PER_REPLICA_MARKER in inspect.getsource(reduce)


def test_patch_is_idempotent_and_keeps_single_worker_paths():
    import tensorflow as tf

    distribution.patch_keras_fit_for_multi_worker()
    distribution.patch_keras_fit_for_multi_worker()
    module = distribution._keras_trainer_module()
    patched = module.reduce_per_replica
    assert not hasattr(patched.__wrapped__, "__wrapped__"), "patched twice"
    # Outside multi-worker the patched function is Keras's own.
    value = tf.constant([1.0, 3.0])
    assert patched(value, tf.distribute.get_strategy(), "mean") is value


def test_jit_compile_is_refused_under_multiple_replicas_and_kept_on_one():
    import tensorflow as tf

    class TwoReplicas:
        num_replicas_in_sync = 2

    assert distribution.resolve_jit_compile(tf.distribute.get_strategy(), True) is True
    assert distribution.resolve_jit_compile(tf.distribute.get_strategy(), False) is False
    with pytest.raises(UserError, match="--jit_compile is not supported with 2 replicas"):
        distribution.resolve_jit_compile(TwoReplicas(), True)


def test_multi_worker_without_tf_config_is_a_user_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="TF_CONFIG"):
        distribution.create_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(UserError, match="TF_CONFIG is not valid"):
        distribution.create_strategy("multi_worker")


def test_cpu_bfloat16_support_is_read_from_cpuinfo(tmp_path):
    def cpuinfo(text):
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        return str(path)

    x86 = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu sse2 avx512f avx512_vnni{}\n"
    assert distribution.cpu_has_bfloat16(cpuinfo(x86.format(""))) is False
    assert distribution.cpu_has_bfloat16(cpuinfo(x86.format(" avx512_bf16"))) is True
    assert distribution.cpu_has_bfloat16(cpuinfo(x86.format(" amx_tile amx_bf16"))) is True
    assert distribution.cpu_has_bfloat16(cpuinfo("processor\t: 0\nFeatures\t: fp asimd sve bf16\n")) is True
    assert distribution.cpu_has_bfloat16(cpuinfo("processor\t: 0\nFeatures\t: fp asimd\n")) is False
    assert distribution.cpu_has_bfloat16(cpuinfo("processor\t: 0\n")) is None
    assert distribution.cpu_has_bfloat16(str(tmp_path / "absent")) is None


def test_bf16_on_a_cpu_without_bfloat16_units_warns(monkeypatch, capsys):
    import keras

    class OnDevices:
        def __init__(self, *devices):
            self.extended = type("Extended", (), {"worker_devices": devices})()

    cpus = OnDevices("/job:localhost/replica:0/task:0/device:CPU:0", "/job:localhost/replica:0/task:0/device:CPU:1")
    before = keras.mixed_precision.dtype_policy().name
    try:
        distribution.set_mixed_precision("bf16")
        for support, warned in ((False, True), (True, False), (None, False)):
            monkeypatch.setattr(distribution, "cpu_has_bfloat16", lambda support=support: support)
            distribution.warn_if_bfloat16_is_emulated(cpus)
            assert ("--mixed_precision=bf16 on a CPU without bfloat16" in capsys.readouterr().err) is warned
        # The accelerator does the matmuls, whatever its host CPU has.
        monkeypatch.setattr(distribution, "cpu_has_bfloat16", lambda: False)
        distribution.warn_if_bfloat16_is_emulated(OnDevices("/job:worker/replica:0/task:0/device:TPU:0"))
        distribution.warn_if_bfloat16_is_emulated(OnDevices("/job:localhost/replica:0/task:0/device:GPU:0"))
        distribution.set_mixed_precision("none")  # float32 never warns
        distribution.warn_if_bfloat16_is_emulated(cpus)
        assert capsys.readouterr().err == ""
    finally:
        keras.mixed_precision.set_dtype_policy(before)


def test_precision_and_batch_helpers_match_the_cli_flags():
    import keras
    from absl import flags

    from electra_tf import cli

    assert tuple(distribution.MIXED_PRECISION_POLICIES) == cli.MIXED_PRECISION_MODES
    assert distribution.STRATEGY_NAMES == cli.STRATEGY_NAMES
    values = flags.FlagValues()
    cli.define_runtime_flags(flag_values=values)
    values(["prog", "--strategy=mirrored", "--mixed_precision=bf16", "--num_cpu_devices=2"])
    assert (values.strategy, values.mixed_precision, values.num_cpu_devices) == ("mirrored", "bf16", 2)
    assert values.tpu is None and values.jit_compile is False
    only_precision = flags.FlagValues()
    cli.define_runtime_flags(strategy=False, mixed_precision_modes=("none", "bf16"), flag_values=only_precision)
    assert set(only_precision) == {"mixed_precision"}

    before = keras.mixed_precision.dtype_policy().name
    try:
        distribution.set_mixed_precision("bf16")
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_dtype_policy(before)
    with pytest.raises(UserError, match="--mixed_precision='fp8' is not known"):
        distribution.set_mixed_precision("fp8")

    class TwoReplicas:
        num_replicas_in_sync = 2

    assert distribution.per_replica_batch_size(64, TwoReplicas()) == 32
    with pytest.raises(UserError, match="not divisible by the 2 replicas"):
        distribution.per_replica_batch_size(63, TwoReplicas())


# ---------------------------------------------------------------------------------------------
# MirroredStrategy over 2 logical CPUs == one device.
# ---------------------------------------------------------------------------------------------


def test_mirrored_two_cpus_matches_one_device(tmp_path, mechanics_data):
    """Two steps on one device with batch B against two steps under MirroredStrategy where both
    replicas get B (global batch [B; B]), dropout on, same seed, global-norm clipping active.

    Both replicas draw exactly the single device's random numbers (same seed-generator state),
    so each computes the single device's loss and gradients; Keras halves each replica's loss
    and sums the gradients. Halving and summing are exact in binary floating point, so every
    variable - weights, Adam slots, iterations - must agree up to the all-reduce's and oneDNN's
    float32 rounding: a few ULPs, checked at 1e-5 relative to each variable's largest value.
    Variables whose gradient is exactly zero in exact arithmetic (attention key biases) are
    left out: Adam turns their float32 noise into full steps of arbitrary sign.

    This holds only because ElectraAdamW densifies gathered (IndexedSlices) gradients and clips
    the cross-replica sum; the clip norm is far below the gradient norm, so clipping decides
    each update (the first step's applied gradient norm is exactly the clip norm).
    """
    completed = subprocess.run(
        [
            sys.executable,
            str(TESTS_DIR / "mirrored_equivalence_worker.py"),
            str(mechanics_data["train_glob"]),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_worker_env(),
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    result = _result_line(completed.stdout)
    print("mirrored vs one device:", json.dumps(result))
    assert result["replicas"] == [1, 2]
    assert result["final_steps"] == [2, 2]
    assert result["unmatched_variables"] == []
    assert result["num_variables"] > 20
    assert result["largest_optimizer_slot"] > 0.0
    assert result["losses"][0] == pytest.approx(result["losses"][1], rel=1e-6)
    assert result["mismatch_ratio_ranges"] == {}, result["worst_variables"]
    # Only the generator's and the discriminator's attention key biases (hidden 16 and 64) have
    # a gradient that is mathematically zero, so only they are left out of the comparison.
    assert sorted(result["zero_gradient_variables"].values()) == [[16], [64]]
    assert result["max_relative_difference"] < 1e-5
    clip = result["clip_norm"]
    for norm in result["first_step_update_norms"]:
        assert norm == pytest.approx(clip, rel=1e-4)
    one_device, mirrored = result["clipped_first_moment_norms"]
    assert one_device == pytest.approx({"keras_adamw": clip, "electra_adamw": clip}, rel=1e-6)
    assert mirrored["electra_adamw"] == pytest.approx(clip, rel=1e-6)
    # Canary: plain Keras AdamW still clips each of the 2 replicas before the sum. When this
    # fails, Keras clips the sum itself: drop optimization.ClipsAfterCrossReplicaSum.
    assert mirrored["keras_adamw"] == pytest.approx(2 * clip, rel=1e-6)


def test_global_norm_clipping_sees_the_cross_replica_sum():
    """Canary for the clipping workaround, optimization.ClipsAfterCrossReplicaSum.

    Keras 3 clips in BaseOptimizer._backend_apply_gradients, before TFOptimizer's
    _backend_update_step sums the replicas in _all_reduce_sum_gradients. The mixin moves the
    clip into that sum. If this fails, Keras restructured the path: check whether plain AdamW
    still clips per replica (test_mirrored_two_cpus_matches_one_device's worker measures it, see
    clipped_first_moment_norms) and drop or adapt the mixin.
    """
    from keras.src.backend.tensorflow.optimizer import TFOptimizer
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    apply_source = inspect.getsource(BaseOptimizer._backend_apply_gradients)
    clip_at = apply_source.rindex("grads = self._clip_gradients(grads)")
    assert clip_at < apply_source.rindex("self._backend_update_step(")
    update_source = inspect.getsource(TFOptimizer._backend_update_step)
    assert "grads_and_vars = self._all_reduce_sum_gradients(grads_and_vars)" in update_source
    assert list(inspect.signature(TFOptimizer._all_reduce_sum_gradients).parameters) == ["self", "grads_and_vars"]


# ---------------------------------------------------------------------------------------------
# Two workers on 127.0.0.1.
# ---------------------------------------------------------------------------------------------


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for handle in sockets:
            handle.bind(("127.0.0.1", 0))
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def _start_workers(script, cluster, args_of, env_of=lambda index: {}):
    """One process per worker of `cluster`, output (stdout and stderr) collected as text."""
    workers = []
    for index in range(len(cluster["worker"])):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                [sys.executable, str(TESTS_DIR / script), *args_of(index)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=_worker_env(TF_CONFIG=tf_config, **env_of(index)),
            )
        )
    return workers


def _finish(workers, timeout=300):
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=timeout)[0])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    return outputs


TWO_WORKER_HPARAMS = dict(MECHANICS_HPARAMS, num_train_steps=6, save_checkpoints_steps=3, train_batch_size=8)


@pytest.fixture(scope="module")
def uninterrupted_two_workers(tmp_path_factory, mechanics_data):
    """Two workers on 127.0.0.1 training TWO_WORKER_HPARAMS to the end without trouble."""
    root = tmp_path_factory.mktemp("two_workers")
    model_dir = root / "model"
    worker_tmp = root / "worker_tmp"
    worker_tmp.mkdir()
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = _start_workers(
        "multi_worker_worker.py",
        cluster,
        lambda index: [str(mechanics_data["train_dir"]), str(model_dir), json.dumps(TWO_WORKER_HPARAMS)],
        lambda index: {"TMPDIR": str(worker_tmp)},
    )
    outputs = _finish(workers)
    return {
        "model_dir": model_dir,
        "worker_tmp": worker_tmp,
        "outputs": outputs,
        "returncodes": [worker.returncode for worker in workers],
    }


def test_two_workers_train_together_and_leave_one_checkpoint(uninterrupted_two_workers):
    model_dir = uninterrupted_two_workers["model_dir"]
    worker_tmp = uninterrupted_two_workers["worker_tmp"]
    outputs = uninterrupted_two_workers["outputs"]
    for returncode, output in zip(uninterrupted_two_workers["returncodes"], outputs):
        assert returncode == 0, output[-4000:]
    chief, other = (_result_line(output) for output in outputs)
    print("chief:", json.dumps(chief))
    print("worker 1:", json.dumps(other))

    assert chief["chief"] and not other["chief"]
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["final_step"] == other["final_step"] == 6
    # Keras's own reduction still fails on a scalar, so the workaround is still needed. When this
    # fails, Keras fixed keras-team/keras#20585: remove patch_keras_fit_for_multi_worker.
    assert "reduction dimension" in chief["unpatched_keras_error"].lower(), chief["unpatched_keras_error"]
    assert chief["train_metrics"]["loss"] == other["train_metrics"]["loss"]
    assert chief["train_metrics"] == other["train_metrics"]

    checkpoints = sorted(path.name for path in (model_dir / "checkpoints").iterdir())
    assert checkpoints == [
        "checkpoint",
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
        "ckpt-6.data-00000-of-00001",
        "ckpt-6.index",
    ]
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "pretrained").is_dir()
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "config.json", "pretrained", "train"]
    # The non-chief's scratch checkpoints were removed, and nothing else was left behind.
    assert list(worker_tmp.iterdir()) == []


HEARTBEAT_ERROR = (
    "{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:1/device:CPU:0}} "
    "Collective ops is aborted by: Error reported from /job:worker/task:0: The following tasks are "
    "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:2\nThe tasks have crashed. "
    "[Op:CollectiveReduceV2] name: "
)


def test_lost_tasks_are_read_from_the_heartbeat_error_or_found_by_probing_their_ports():
    """TF names the task only when its heartbeat check found it; a broken connection ("Connection
    reset by peer") names none, and then the peer whose port is closed is the lost one."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    try:
        (closed_port,) = _free_ports(1)
        cluster = {"worker": [f"127.0.0.1:{listening.getsockname()[1]}", "127.0.0.1:1", f"127.0.0.1:{closed_port}"]}
        me = ("worker", 1)
        # The task in "Error reported from" is the reporter, not the lost one.
        assert distribution.find_lost_tasks(HEARTBEAT_ERROR, cluster, me) == ["/job:worker/task:2"]
        reset = "Collective ops is aborted by: recvmsg:Connection reset by peer [Op:CollectiveReduceV2]"
        assert distribution.find_lost_tasks(reset, cluster, me) == ["/job:worker/task:2"]
        alive = {"chief": [f"127.0.0.1:{listening.getsockname()[1]}"], "worker": ["127.0.0.1:1"]}
        # Every peer still accepts connections (a frozen process does): all are suspects.
        assert distribution.find_lost_tasks("Deadline Exceeded", alive, ("worker", 0)) == ["/job:chief/task:0"]
    finally:
        listening.close()


def test_a_lost_worker_is_one_line_with_the_step_to_resume_from(monkeypatch, tmp_path):
    import tensorflow as tf

    from electra_tf import errors, pretraining

    monkeypatch.setattr(distribution, "task_identity", lambda strategy: ("worker", 1))
    monkeypatch.setattr(distribution, "lost_tasks", lambda error, strategy: ["/job:worker/task:0"])
    reset = tf.errors.UnavailableError(
        None,
        None,
        "{{function_node x}} Collective ops is aborted by: recvmsg:Connection reset by peer "
        "Additional GRPC error information from remote target /job:worker/replica:0/task:0 while "
        "calling /tensorflow.WorkerService/RecvBuf: :{created_time:...} [Op:CollectiveReduceV2] name: ",
    )
    error = pretraining.lost_worker_error(reset, None, str(tmp_path), 60.0)
    assert isinstance(error, errors.WorkerLostError) and error.exit_code == 3
    assert str(error) == (
        "worker 1: lost contact with /job:worker/task:0 (UnavailableError: recvmsg:Connection reset "
        "by peer); rerun every worker to start again (no checkpoint was written yet)"
    )

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "ckpt-3.index").write_bytes(b"")
    (checkpoints / "checkpoint").write_text('model_checkpoint_path: "ckpt-3"\n')
    heartbeat = tf.errors.UnavailableError(None, None, HEARTBEAT_ERROR)
    assert str(pretraining.lost_worker_error(heartbeat, None, str(tmp_path), 2.5)) == (
        "worker 1: lost contact with /job:worker/task:0 (no heartbeat for 2.5 s, "
        "--worker_timeout_seconds); rerun every worker to resume from the last checkpoint (step 3)"
    )


def test_worker_timeout_flag_and_the_tensorflow_hook_it_uses(monkeypatch):
    """The flag's default is the library's; and the private TF call that sets the heartbeat
    timeout (see distribution.configure_worker_heartbeat) still takes it. When this fails, a TF
    upgrade moved it: find where MultiWorkerMirroredStrategy configures the coordination service."""
    from tensorflow.python.distribute import collective_all_reduce_strategy, multi_worker_util
    from tensorflow.python.eager import context

    from electra_tf import pretraining, run_pretraining

    assert run_pretraining.FLAGS["worker_timeout_seconds"].default == pretraining.DEFAULT_WORKER_TIMEOUT_SECONDS
    parameters = inspect.signature(context.Context.configure_coordination_service).parameters
    assert {"service_type", "service_leader", "coordinated_jobs", "heartbeat_timeout_in_ms"} <= set(parameters)
    assert callable(multi_worker_util.coordination_leader)
    # The strategy configures the service only when nobody did, so ours is the one it runs with.
    source = inspect.getsource(collective_all_reduce_strategy.CollectiveAllReduceExtended)
    assert "if context.context().coordination_service is None:" in source

    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}})
    )
    for bad in (0, -5.0):
        with pytest.raises(UserError, match=f"--worker_timeout_seconds={bad} must be a positive"):
            distribution.configure_worker_heartbeat(bad)


def _checkpoint_values(path) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path))
    return {
        name: reader.get_tensor(name)
        for name, _ in tf.train.list_variables(str(path))
        if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")
    }


def test_a_dead_worker_stops_the_other_in_bounded_time_and_a_rerun_resumes(
    tmp_path, mechanics_data, uninterrupted_two_workers
):
    """Worker 1 is SIGKILLed right after checkpoint 3 (as a lost machine); worker 0, waiting on
    it in step 4's all-reduce, must exit within --worker_timeout_seconds plus its own shutdown,
    with one line naming the lost task and the step to resume from, and exit status 3. Rerunning
    both workers resumes at step 3 and finishes at --num_train_steps; checkpoint 3 is the
    uninterrupted run's, variable for variable."""
    import numpy as np

    timeout = 3
    model_dir = tmp_path / "model"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    flags = [
        "--strategy=multi_worker",
        "--config=electra_tiny",
        f"--hparams={json.dumps(TWO_WORKER_HPARAMS)}",
        f"--pretrain_data={mechanics_data['train_dir']}",
        f"--model_dir={model_dir}",
        "--log_every_steps=1",
        f"--worker_timeout_seconds={timeout}",
    ]
    workers = _start_workers(
        "multi_worker_cli.py",
        cluster,
        lambda index: flags,
        lambda index: {"ELECTRA_TF_TEST_DIE_AFTER_STEP": "3"} if index == 1 else {},
    )
    try:
        dead_output = workers[1].communicate(timeout=300)[0]
        died_at = time.monotonic()
        survivor_output = workers[0].communicate(timeout=timeout + 60)[0]
        survivor_seconds = time.monotonic() - died_at
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    print(f"worker 0 exited {survivor_seconds:.1f} s after worker 1 died")
    assert workers[1].returncode == -signal.SIGKILL, dead_output[-4000:]
    # The strategy runs with the flag's heartbeat timeout, not TensorFlow's default.
    assert f"DYING after checkpoint 3 (heartbeat_timeout_in_ms={timeout * 1000})" in dead_output
    assert workers[0].returncode == 3, survivor_output[-4000:]
    errors = [line for line in survivor_output.splitlines() if line.startswith("run_pretraining: error:")]
    assert errors == [
        f"run_pretraining: error: worker 0: lost contact with /job:worker/task:1 (no heartbeat for "
        f"{timeout} s, --worker_timeout_seconds); rerun every worker to resume from the last "
        "checkpoint (step 3)"
    ], survivor_output[-4000:]
    # Detection takes at most the timeout; the rest is the process's own shutdown (measured
    # 1-2 s on an idle machine), so the bound is loose.
    assert survivor_seconds < timeout + 20

    rerun = _start_workers("multi_worker_cli.py", cluster, lambda index: flags)
    outputs = _finish(rerun)
    for worker, output in zip(rerun, outputs):
        assert worker.returncode == 0, output[-4000:]
    assert "Resumed from checkpoint at step 3" in outputs[0]
    checkpoints = model_dir / "checkpoints"
    final = _checkpoint_values(checkpoints / "ckpt-6")
    assert final["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == 6
    assert (model_dir / "pretrained" / "config.json").is_file()
    assert not (model_dir / ".run_lock.json").exists()

    resumed_from = _checkpoint_values(checkpoints / "ckpt-3")
    reference = _checkpoint_values(uninterrupted_two_workers["model_dir"] / "checkpoints" / "ckpt-3")
    assert sorted(resumed_from) == sorted(reference) and len(reference) > 20
    differing = [name for name in reference if not np.array_equal(resumed_from[name], reference[name])]
    assert differing == []
