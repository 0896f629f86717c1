"""What long jobs print: `log` (one line, flushed) and ProgressReporter (counts, rates, an ETA)."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO


def log(message: str, *, prefix: str = "", stderr: bool = False) -> None:
    """Writes `message` as one line and flushes it, so it shows at once in a redirected log.

    Args:
      message: the text (without the newline).
      prefix: put in front of the message, e.g. "[compare_objectives] ".
      stderr: write to sys.stderr instead of sys.stdout (looked up at each call, so that a
        redirection made after import is honoured).
    """
    stream = sys.stderr if stderr else sys.stdout
    stream.write(f"{prefix}{message}\n")
    stream.flush()


def format_duration(seconds: float) -> str:
    """``seconds`` as H:MM:SS (rounded to whole seconds); "?" for NaN or infinity."""
    if seconds != seconds or seconds == float("inf"):  # NaN or unknown
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_count(value: float) -> str:
    """``value`` with thousands separators: one decimal for a fractional float, none otherwise."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


class ProgressReporter:
    """Prints cumulative counts, their rates since start, and an ETA against a known total.

    Example:
        progress = ProgressReporter(total=total_bytes, total_key="bytes", name="build")
        progress.update(bytes=n, documents=d, examples=e)   # increments
        progress.finish()

    `bytes` is shown as MB and MB/s. The ETA uses the rate of `total_key` since start.
    """

    def __init__(
        self,
        name: str,
        total: Optional[float] = None,
        total_key: str = "bytes",
        interval_seconds: float = 5.0,
        stream: Optional[TextIO] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.total = total
        self.total_key = total_key
        self.interval_seconds = interval_seconds
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.counts: dict[str, float] = {}
        self.start_time = clock()
        self._last_report = self.start_time

    def update(self, **increments: float) -> None:
        """Adds ``increments`` to the named counts; writes a progress line if ``interval_seconds`` have passed since the
        last."""
        for key, value in increments.items():
            self.counts[key] = self.counts.get(key, 0) + value
        now = self.clock()
        if now - self._last_report >= self.interval_seconds:
            self._last_report = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: Optional[float] = None) -> str:
        """The progress line at ``now`` (default: the clock): each count and its rate, percent done and ETA when a total
        is known, elapsed time."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.start_time, 1e-9)
        parts = []
        for key, value in self.counts.items():
            if key == "bytes":
                parts.append(f"{value / 1e6:,.1f} MB ({value / 1e6 / elapsed:,.2f} MB/s)")
            else:
                parts.append(f"{key} {format_count(value)} ({value / elapsed:,.1f}/s)")
        if self.total:
            done = self.counts.get(self.total_key, 0)
            rate = done / elapsed
            remaining = (self.total - done) / rate if rate > 0 else float("inf")
            parts.append(f"{100.0 * done / self.total:.1f}%")
            parts.append(f"ETA {format_duration(max(remaining, 0.0))}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        return f"[{self.name}] " + " | ".join(parts)

    def finish(self) -> str:
        """Writes the final progress line and returns it."""
        line = self.line()
        self.stream.write(line + "\n")
        self.stream.flush()
        return line
