"""Follow the metrics file a training job appends to, and forward new values while it runs.

The runtime writes one JSON object per line (``{"key", "value", "step", "timestamp"}``) and flushes
each line, so a reader polling the file sees whole lines or a partial last line, which is kept
until its newline arrives. This is how metrics logged inside a container reach the host's tracker
live, whatever the tracker is.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mldock.interfaces import Metric

MetricsSink = Callable[[Sequence[Metric]], None]


def parse_metric_line(line: str) -> Metric | None:
    """One metric from a JSON line, or ``None`` for a line that is not a metric."""
    try:
        data = json.loads(line)
        return Metric(key=str(data["key"]), value=float(data["value"]),
                      step=int(data.get("step") or 0),
                      timestamp=float(data.get("timestamp") or time.time()))
    except (ValueError, KeyError, TypeError):
        return None


class MetricsTail:
    """A background thread that forwards new metric lines of ``path`` to ``sink``.

    Use as a context manager; leaving it reads the file to its end once more, so no metric written
    before the job ended is lost.
    """

    def __init__(self, path: Path, sink: MetricsSink, *, interval: float = 0.25):
        self.path = path
        self.sink = sink
        self.interval = interval
        self.forwarded = 0
        self._offset = 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mldock-metrics-tail", daemon=True)

    def __enter__(self) -> MetricsTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> int:
        """Read what was appended since the last call; forward the complete lines."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return 0
        if not chunk:
            return 0
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        metrics = [m for m in (parse_metric_line(x.decode("utf-8", "replace")) for x in lines if x)
                   if m is not None]
        if metrics:
            self.sink(metrics)
            self.forwarded += len(metrics)
        return len(metrics)
