"""The runtime a job runs on: tf.distribute strategies, mixed precision, and batch arithmetic.

Also the one place that patches Keras for multi-worker.

Strategy names are the values of `--strategy`:
  one_device    the first GPU if there is one, else the CPU (tf.distribute.OneDeviceStrategy)
  mirrored      every local GPU, or the logical CPU devices made by `split_cpu_devices`
  multi_worker  tf.distribute.MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG
  tpu           tf.distribute.TPUStrategy through TPUClusterResolver (Cloud TPU VM or TPU node)
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import socket
from typing import Optional

import keras
import tensorflow as tf

from electra_tf import progress

# The --strategy names live in cli (free of TensorFlow, so that --help starts fast).
from electra_tf.cli import STRATEGY_NAMES
from electra_tf.errors import UserError

# --mixed_precision value (cli.MIXED_PRECISION_MODES, in that order) -> Keras dtype policy.
MIXED_PRECISION_POLICIES = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def split_cpu_devices(count: int) -> None:
    """Makes the host CPU appear as `count` logical devices (for mirrored runs without GPUs).

    Must run before TensorFlow initialises its devices, i.e. before the first op or device query
    that touches the runtime; afterwards TF refuses the change.
    """
    if count <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as error:
        raise UserError(
            f"--num_cpu_devices={count}: TensorFlow was already initialised, so the CPU can no "
            f"longer be split ({error}); pass the flag in a fresh process"
        ) from None


def create_strategy(
    name: str, *, tpu: Optional[str] = None, worker_timeout_seconds: Optional[float] = None
) -> tf.distribute.Strategy:
    """Builds the strategy `name` (one of STRATEGY_NAMES).

    Args:
      name: a --strategy value.
      tpu: --tpu, for name "tpu".
      worker_timeout_seconds: for name "multi_worker", how long a worker may go silent before
        the others give up on it (see `configure_worker_heartbeat`); None keeps TensorFlow's
        default (about 10 s).

    Returns:
      The strategy; under multi-worker Keras's fit is patched for it (see below).

    Raises:
      UserError: an unknown name, a bad TF_CONFIG or a non-positive timeout.
    """
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        # Without GPUs MirroredStrategy() would use only CPU:0; name every logical CPU instead.
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multi_worker":
        _check_tf_config()
        if worker_timeout_seconds is not None:
            configure_worker_heartbeat(worker_timeout_seconds)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        if is_multi_worker(strategy):
            patch_keras_fit_for_multi_worker()
        return strategy
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise UserError(f"--strategy={name!r} is not known; use one of {', '.join(STRATEGY_NAMES)}")


def set_mixed_precision(mode: str) -> None:
    """Sets Keras's global dtype policy for `mode` ("none", "bf16" or "fp16").

    Args:
      mode: a key of MIXED_PRECISION_POLICIES (the values of --mixed_precision).

    Raises:
      UserError: `mode` is not known.
    """
    if mode not in MIXED_PRECISION_POLICIES:
        raise UserError(f"--mixed_precision={mode!r} is not known; use one of {', '.join(MIXED_PRECISION_POLICIES)}")
    keras.mixed_precision.set_dtype_policy(MIXED_PRECISION_POLICIES[mode])


def warn_if_bfloat16_is_emulated(strategy: tf.distribute.Strategy) -> None:
    """Prints a warning when bfloat16 matmuls would run on CPUs that have no bfloat16 units.

    bf16 pays only where the hardware multiplies bfloat16; a CPU without it converts every
    operand, and an electra_mini pretraining step took 1.9x as long as in float32 on such a
    machine. Checked against the strategy's devices, so that a TPU host's CPU does not count.
    """
    if keras.mixed_precision.dtype_policy().compute_dtype != "bfloat16":
        return
    on_cpus = all("CPU" in device.upper() for device in strategy.extended.worker_devices)
    if on_cpus and cpu_has_bfloat16() is False:
        progress.log(
            "warning: --mixed_precision=bf16 on a CPU without bfloat16 matrix units (no avx512_bf16 "
            "or amx_bf16 in /proc/cpuinfo) runs slower than float32; use --mixed_precision=none",
            stderr=True,
        )


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> Optional[bool]:
    """Whether the CPU multiplies bfloat16 natively: x86 avx512_bf16 or amx_bf16, Arm bf16.

    Returns None where `cpuinfo` cannot be read or names no flags (not Linux, say).
    """
    try:
        with open(cpuinfo) as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, Arm
            return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(value.split()))
    return None


def per_replica_batch_size(global_batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """The batch each replica of `strategy` gets from `global_batch_size`.

    Args:
      global_batch_size: examples per step over all replicas (--train_batch_size).
      strategy: the strategy whose num_replicas_in_sync divides it.

    Returns:
      global_batch_size // strategy.num_replicas_in_sync.

    Raises:
      UserError: the global batch does not split evenly over the replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise UserError(
            f"--train_batch_size={global_batch_size} is not divisible by the {replicas} replicas "
            f"of --strategy; use a multiple of {replicas}"
        )
    return global_batch_size // replicas


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UserError(
            "--strategy=multi_worker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        parsed = json.loads(raw)
        parsed["cluster"], parsed["task"]["type"], parsed["task"]["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"TF_CONFIG is not valid ({type(error).__name__}: {error}); it must be JSON with "
            '"cluster" and "task": {"type", "index"}'
        ) from None


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True when `strategy` spans more than one worker process."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = strategy.cluster_resolver
    if resolver is None:
        return False
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(job, [])) for job in ("chief", "worker")) > 1


def task_identity(strategy: tf.distribute.Strategy) -> tuple[Optional[str], int]:
    """(task type, task index) of this process; (None, 0) outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not is_multi_worker(strategy):
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, summaries and final outputs.

    The chief is the "chief" task if the cluster has one, else worker 0 (TF's convention).
    """
    task_type, task_id = task_identity(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief_job = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief_job


def resolve_jit_compile(strategy: tf.distribute.Strategy, requested: bool) -> bool:
    """What to pass to model.compile(jit_compile=...): XLA only where Keras 3 can honour it.

    On one device XLA is used as asked. Under a multi-replica strategy, explicit
    jit_compile=True fails inside Keras ("Trying to access resource ... located in device
    CPU:1") and "auto" silently turns XLA off, so asking for it there is an error rather than a
    quiet downgrade. TPUStrategy always compiles with XLA, so the flag does not apply.
    """
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False
    if requested and strategy.num_replicas_in_sync > 1:
        raise UserError(
            f"--jit_compile is not supported with {strategy.num_replicas_in_sync} replicas "
            f"({type(strategy).__name__}): Keras 3 cannot XLA-compile fit's step under a "
            "multi-replica strategy; drop --jit_compile or use --strategy=one_device"
        )
    return bool(requested)


# --------------------------------------------------------------------------------------------
# A dead worker under MultiWorkerMirroredStrategy.
#
# Measured with TF 2.21 and two workers on 127.0.0.1 (one killed with SIGKILL or frozen with
# SIGSTOP right after a checkpoint): the survivor's next collective is aborted by TF's
# coordination service once the lost task has sent no heartbeat for heartbeat_timeout_in_ms
# (UnavailableError "The following tasks are unhealthy (stopped sending heartbeats):
# /job:worker/replica:0/task:1"); when the lost task is the service's leader (worker 0), the
# survivor's collective fails on the broken connection instead (UnavailableError "Connection
# reset by peer", or DeadlineExceededError when the leader is frozen). Nothing waits forever,
# but the timeout can only be set through the coordination service's config, which has no
# public API (ParameterServerStrategy sets it internally). configure_worker_heartbeat sets it the way
# MultiWorkerMirroredStrategy itself would (same leader and jobs), adding the timeout; the
# strategy then finds the service configured and keeps it. tests/test_distribution.py fails
# when TF renames what this uses.
#
# CommunicationOptions(timeout_seconds=...) was not used: it times every collective, so a
# worker still tracing its first step or the chief writing a large checkpoint would count as
# lost, while the heartbeat (a C++ thread) only stops when the process dies or freezes.
# --------------------------------------------------------------------------------------------

# Where a task name appears in TF's error text: "/job:worker/replica:0/task:1" or
# "/job:worker/task:1".
_TASK_PATTERN = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")
_UNHEALTHY_MARKER = "unhealthy"


def configure_worker_heartbeat(timeout_seconds: float) -> None:
    """Makes every worker give up on a peer that sent no heartbeat for `timeout_seconds`.

    Must run before the strategy is created (it configures the runtime TF starts then).

    Args:
      timeout_seconds: > 0, --worker_timeout_seconds.

    Raises:
      UserError: the timeout is not positive, or TF_CONFIG names no chief or worker job.
    """
    if not timeout_seconds or timeout_seconds <= 0:
        raise UserError(f"--worker_timeout_seconds={timeout_seconds} must be a positive number of seconds")
    # Private TensorFlow modules, whose paths move between releases: only multi-worker runs import
    # them, so a moved path breaks those alone.
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
        for job in ("chief", "worker")
        if job in spec.jobs
    ]
    if not jobs:
        raise UserError(
            'TF_CONFIG\'s "cluster" has neither a "chief" nor a "worker" job; --strategy=multi_worker trains on those'
        )
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=max(1, int(round(timeout_seconds * 1000))),
    )


def _peer_tasks(cluster: dict, me: tuple) -> list[tuple[str, int, str]]:
    """(job, index, address) of every chief/worker task of `cluster` but `me`."""
    peers = []
    for job in ("chief", "worker"):
        addresses = cluster.get(job, [])
        if isinstance(addresses, dict):  # a sparse cluster spec: {index: address}
            items = sorted((int(index), address) for index, address in addresses.items())
        else:
            items = list(enumerate(addresses))
        peers.extend((job, index, address) for index, address in items if (job, index) != me)
    return peers


def _accepts_connections(address: str, timeout_seconds: float) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds):
            return True
    except (OSError, ValueError):
        return False


def find_lost_tasks(
    error_text: str, cluster: dict, me: tuple[str, int], probe_timeout_seconds: float = 2.0
) -> list[str]:
    """The peers a collective's error says this worker lost, as "/job:worker/task:1" names.

    TF names them when its heartbeat check found them; when the connection itself broke it
    names none, and then the peers whose address no longer accepts connections are the lost
    ones. If every peer still answers (a frozen process keeps its port open), every peer is a
    suspect and all are returned.

    Args:
      error_text: the message of the tf.errors.OpError the collective raised.
      cluster: the cluster spec as a dict ({"worker": ["host:port", ...], ...}).
      me: this task's (job, index).
      probe_timeout_seconds: how long to try each peer's address.

    Returns:
      Task names; empty only when the cluster has no other chief or worker task.
    """
    peers = _peer_tasks(cluster, me)
    known = {(job, index) for job, index, _ in peers}
    if _UNHEALTHY_MARKER in error_text:  # TF lists the unhealthy tasks after this word
        error_text = error_text[error_text.index(_UNHEALTHY_MARKER) :]
    named = []
    for job, index in _TASK_PATTERN.findall(error_text):
        if (job, int(index)) in known and (job, int(index)) not in named:
            named.append((job, int(index)))
    if not named:
        named = [
            (job, index) for job, index, address in peers if not _accepts_connections(address, probe_timeout_seconds)
        ]
    if not named:
        named = [(job, index) for job, index, _ in peers]
    return [f"/job:{job}/task:{index}" for job, index in named]


def lost_tasks(error: Exception, strategy: tf.distribute.Strategy) -> list[str]:
    """`find_lost_tasks` for a collective error raised under the multi-worker `strategy`."""
    text = str(getattr(error, "message", None) or error)
    return find_lost_tasks(text, strategy.cluster_resolver.cluster_spec().as_dict(), task_identity(strategy))


# --------------------------------------------------------------------------------------------
# Keras 3 fit under MultiWorkerMirroredStrategy (keras-team/keras#20585).
#
# keras/src/backend/tensorflow/trainer.py breaks multi-worker fit in two places:
#  1. TensorFlowTrainer._maybe_symbolic_build pulls one distributed batch and averages it with
#     strategy.reduce("MEAN", batch), which cannot convert the PerReplica batch under
#     MultiWorkerMirroredStrategy. The batch is only used for its shapes, so we hand Keras the
#     first local replica's batch instead.
#  2. reduce_per_replica averages every logged value with strategy.reduce("MEAN", v, axis=0);
#     the metrics are scalars, which have no axis 0. We average scalars with axis=None (a
#     plain cross-worker mean) and leave everything else to Keras.
# Both patches are installed only when a strategy spans several workers. The markers below are
# what tests/test_distribution.py checks, so that a Keras upgrade that touches this code fails
# a test instead of silently changing behaviour.
# --------------------------------------------------------------------------------------------

KERAS_TRAINER_MODULE = "keras.src.backend.tensorflow.trainer"
# Source fragments of the Keras code the workaround compensates for.
SYMBOLIC_BUILD_MARKER = 'self.distribute_strategy.reduce(\n                        "MEAN",'
REDUCE_PER_REPLICA_MARKER = 'return strategy.reduce("MEAN", v, axis=0)'

_PATCHED_ATTRIBUTE = "_electra_tf_multi_worker_patch"


def _keras_trainer_module():
    return importlib.import_module(KERAS_TRAINER_MODULE)


def patch_keras_fit_for_multi_worker() -> None:
    """Installs the two multi-worker fixes into Keras's TF trainer (idempotent)."""
    trainer_module = _keras_trainer_module()
    trainer_class = trainer_module.TensorFlowTrainer
    if getattr(trainer_class, _PATCHED_ATTRIBUTE, False):
        return

    keras_symbolic_build = trainer_class._maybe_symbolic_build

    @functools.wraps(keras_symbolic_build)
    def symbolic_build_from_local_batch(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or not is_multi_worker(strategy):
            return keras_symbolic_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            distributed_batch = next(batches)
            data_batch = tf.nest.map_structure(
                lambda value: (
                    strategy.experimental_local_results(value)[0]
                    if isinstance(value, tf.distribute.DistributedValues)
                    else value
                ),
                distributed_batch,
            )
            break
        return keras_symbolic_build(self, iterator=None, data_batch=data_batch)

    keras_reduce_per_replica = trainer_module.reduce_per_replica

    @functools.wraps(keras_reduce_per_replica)
    def reduce_scalars_without_axis(values, strategy, reduction):
        if not is_multi_worker(strategy) or reduction not in ("auto", "mean"):
            return keras_reduce_per_replica(values, strategy, reduction)

        def reduce_one(value):
            local = (
                strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues)
                else value
            )
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return keras_reduce_per_replica(value, strategy, reduction)

        return tf.nest.map_structure(reduce_one, values)

    trainer_class._maybe_symbolic_build = symbolic_build_from_local_batch
    trainer_module.reduce_per_replica = reduce_scalars_without_axis
    setattr(trainer_class, _PATCHED_ATTRIBUTE, True)
