"""Metric curves for the charts: every point when there are few, a faithful reduction when many.

A run may log 100,000 points of one metric; a chart 1,000 pixels wide shows at most a few thousand.
Each of ``buckets`` equal step ranges keeps its lowest and highest point (min/max decimation), so
spikes and drops stay visible, unlike taking every n-th point or averaging. Zooming asks again
for the visible step range only, which then comes back at full resolution once it is small enough.
Histories of finished runs never change, so they are cached.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from mldock.interfaces.tracking import Metric, Tracker

DEFAULT_POINTS = 2000
MAX_POINTS = 20_000
CACHE_SERIES = 64  # finished runs' histories kept in memory (about 2.4 MB per 100,000 points)


def decimate(points: Sequence[Metric], max_points: int) -> list[Metric]:
    """At most ``max_points`` (≥ 4) of ``points`` (in step order): first, last, and the lowest
    and highest point of each step bucket, in step order."""
    if len(points) <= max_points:
        return list(points)
    buckets = max(1, (max_points - 2) // 2)
    first, last = points[0].step, points[-1].step
    width = (last - first) / buckets or 1.0
    keep: dict[int, None] = {0: None, len(points) - 1: None}
    low: dict[int, int] = {}
    high: dict[int, int] = {}
    for index, point in enumerate(points):
        if not math.isfinite(point.value):
            continue
        bucket = min(buckets - 1, int((point.step - first) / width))
        if bucket not in low or point.value < points[low[bucket]].value:
            low[bucket] = index
        if bucket not in high or point.value > points[high[bucket]].value:
            high[bucket] = index
    for index in (*low.values(), *high.values()):
        keep[index] = None
    return [points[i] for i in sorted(keep)]


class CurveReader:
    """Reads metric histories through the tracker, caching those of finished runs."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker
        self._cache: OrderedDict[tuple[str, str], list[Metric]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, run_id: str, key: str, *, finished: bool) -> list[Metric]:
        if not finished:
            return self.tracker.metric_history(run_id, key)
        with self._lock:
            found = self._cache.get((run_id, key))
            if found is not None:
                self._cache.move_to_end((run_id, key))
                return found
        found = self.tracker.metric_history(run_id, key)
        with self._lock:
            self._cache[(run_id, key)] = found
            while len(self._cache) > CACHE_SERIES:
                self._cache.popitem(last=False)
        return found

    def series(self, run_id: str, keys: Sequence[str], *, finished: bool,
               low: float | None = None, high: float | None = None,
               max_points: int = DEFAULT_POINTS) -> dict[str, Any]:
        """``{key: {"steps": […], "values": […], "total": n, "shown": m}}`` for the chart."""
        out: dict[str, Any] = {}
        for key in keys:
            points = self.history(run_id, key, finished=finished)
            if low is not None or high is not None:
                lo = -math.inf if low is None else low
                hi = math.inf if high is None else high
                points = [p for p in points if lo <= p.step <= hi]
            shown = decimate(points, max_points)
            out[key] = {"steps": [p.step for p in shown],
                        "values": [p.value if math.isfinite(p.value) else None for p in shown],
                        "total": len(points), "shown": len(shown)}
        return out
