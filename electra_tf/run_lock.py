"""One training run per --model_dir at a time.

Two runs writing the same checkpoints, summaries and final model would corrupt each other
silently. The lock is a file, ``<model_dir>/.run_lock.json`` (tf.io.gfile, so it works on gs://
too), naming the holder's host and process and refreshed every HEARTBEAT_SECONDS by a daemon
thread. A second run is refused while the holder is alive: on the same host, while its process
(same pid and start time) exists; from another host, while the heartbeat is fresher than
STALE_SECONDS. A lock left by a killed run is taken over. Object stores have no atomic
create-if-absent through tf.io.gfile, so two runs started within the same second on different
machines can both pass the check; the write-then-read-back below narrows that window.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Optional

from electra_tf import fileio
from electra_tf.errors import UserError

LOCK_FILE = ".run_lock.json"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0


def _process_start(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:  # the OS's file, not a user path
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return None


def _alive_here(pid: int, start: Optional[str]) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start is None or _process_start(pid) in (None, start)


class RunLock:
    """The lock of one --model_dir (see the module docstring): ``acquire`` takes it or raises
    UserError naming the live holder, a heartbeat thread keeps it fresh, ``release`` drops it."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _record(self) -> dict:
        pid = os.getpid()
        return {
            "host": socket.gethostname(),
            "pid": pid,
            "process_start": _process_start(pid),
            "token": self.token,
            "heartbeat": time.time(),
        }

    def _read(self) -> Optional[dict]:
        try:
            return json.loads(fileio.read_text(self.path))
        except (ValueError, *fileio.errors()):
            return None

    def _holder_alive(self, holder: dict) -> bool:
        if holder.get("host") == socket.gethostname():
            return _alive_here(int(holder.get("pid", -1)), holder.get("process_start"))
        return time.time() - float(holder.get("heartbeat", 0)) < STALE_SECONDS

    def acquire(self) -> None:
        """Takes the lock (writing this process's record to the lock file) and starts its heartbeat.

        A lock left by a dead process (same host, pid gone) or not refreshed for STALE_SECONDS (other
        hosts) is taken over.

        Raises:
          UserError: a live run holds the lock, or another run claimed it at the same moment.
        """
        holder = self._read()
        if holder is not None and holder.get("token") != self.token and self._holder_alive(holder):
            raise UserError(
                f"{self.model_dir} is in use by a running run_pretraining (pid {holder.get('pid')} "
                f"on {holder.get('host')}, lock {self.path}); wait for it to finish or use "
                "another --model_dir"
            )
        fileio.makedirs(self.model_dir)
        fileio.write_json_atomic(self.path, self._record())
        holder = self._read()
        if holder is None or holder.get("token") != self.token:
            raise UserError(
                f"{self.model_dir} was claimed by another run at the same moment "
                f"(lock {self.path}); use another --model_dir"
            )
        self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="electra_tf-run-lock")
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                fileio.write_json_atomic(self.path, self._record())
            except fileio.errors():
                pass  # a missed heartbeat only makes the lock look stale sooner

    def release(self) -> None:
        """Stops the heartbeat and deletes the lock file if this lock still holds it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self._read()
        if holder is not None and holder.get("token") == self.token:
            fileio.remove(self.path)
