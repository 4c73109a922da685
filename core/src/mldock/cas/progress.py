"""Progress lines for long transfers: a few readable lines, never one per network chunk.

Backends call :meth:`TransferProgress.add` from their worker threads with every chunk; it adds them
up under a lock and passes a line to the user's :data:`~mldock.interfaces.ProgressSink` at most once
per ``interval`` seconds, and only for transfers big enough to be worth watching.
"""

from __future__ import annotations

import threading
import time

from mldock.interfaces import ProgressSink, null_progress

REPORT_FROM_BYTES = 32 << 20
"""Transfers smaller than this print no intermediate lines (they take well under a second)."""


def human(size: float) -> str:
    """``1.5 MiB`` style sizes."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


class TransferProgress:
    """Counts bytes of one operation (many files) and reports throttled percentage lines.

    Args:
        sink: where lines go.
        verb: ``"uploading"`` or ``"downloading"``.
        label: what is moved (an artifact key or a URI).
        total: bytes expected.
        interval: seconds between two lines.
    """

    def __init__(self, sink: ProgressSink, verb: str, label: str, total: int,
                 interval: float = 2.0):
        self.sink = sink if total >= REPORT_FROM_BYTES else null_progress
        self.verb, self.label, self.total, self.interval = verb, label, max(total, 1), interval
        self.done = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last = self._started

    def add(self, count: int) -> None:
        """Record ``count`` more bytes (negative on a retried chunk); may emit a line."""
        line = None
        with self._lock:
            self.done += count
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                rate = self.done / max(now - self._started, 1e-6)
                line = (f"{self.verb} {self.label}: {min(100, 100 * self.done // self.total)}%"
                        f" ({human(self.done)} of {human(self.total)}, {human(rate)}/s)")
        if line is not None:
            self.sink(line)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._started
