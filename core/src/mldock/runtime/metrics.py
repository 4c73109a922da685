"""Request counters and latency histograms in the Prometheus text format, no client library.

Routes are recorded by template (``/v2/models/{model}/infer``), never by raw path, so a scanner
hitting random URLs cannot blow up the number of series. With several pre-forked workers each
process keeps its own numbers and labels them ``worker="<n>"``: every series stays monotonic,
whichever worker answers the scrape.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
           60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters for one process. ``observe`` is called once per request, so it stays tiny."""

    def __init__(self, worker: int | None = None) -> None:
        self.worker = worker
        self.started = time.time()
        self.requests: dict[tuple[str, str, int], int] = {}
        # route -> [sum of seconds, count, per-bucket counts (non-cumulative, +Inf last)]
        self.latency: dict[str, list] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        entry = self.latency.get(route)
        if entry is None:
            entry = self.latency[route] = [0.0, 0, [0] * (len(BUCKETS) + 1)]
        entry[0] += seconds
        entry[1] += 1
        entry[2][bisect_left(BUCKETS, seconds)] += 1

    def _labels(self, **labels: object) -> str:
        if self.worker is not None:
            labels["worker"] = self.worker
        inner = ",".join(f'{k}="{v!s}"' for k, v in labels.items())
        return "{" + inner + "}" if inner else ""

    def render(self, *, model_loaded: bool, load_seconds: float | None = None) -> bytes:
        lines = [
            "# HELP mldock_requests_total HTTP requests answered, by route template and status.",
            "# TYPE mldock_requests_total counter",
        ]
        for (route, method, status), count in sorted(self.requests.items()):
            lines.append(f"mldock_requests_total"
                         f"{self._labels(route=route, method=method, status=status)} {count}")
        lines += [
            "# HELP mldock_request_duration_seconds Time spent answering requests, by route.",
            "# TYPE mldock_request_duration_seconds histogram",
        ]
        for route, (total, count, buckets) in sorted(self.latency.items()):
            cumulative = 0
            for bound, n in zip((*BUCKETS, float("inf")), buckets):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f"mldock_request_duration_seconds_bucket"
                             f"{self._labels(route=route, le=le)} {cumulative}")
            lines.append(f"mldock_request_duration_seconds_sum{self._labels(route=route)} {total}")
            lines.append(f"mldock_request_duration_seconds_count"
                         f"{self._labels(route=route)} {count}")
        lines += [
            "# HELP mldock_model_loaded 1 once the model is loaded and predictions can be served.",
            "# TYPE mldock_model_loaded gauge",
            f"mldock_model_loaded{self._labels()} {1 if model_loaded else 0}",
        ]
        if load_seconds is not None:
            lines += ["# HELP mldock_model_load_seconds Time taken to load the model.",
                      "# TYPE mldock_model_load_seconds gauge",
                      f"mldock_model_load_seconds{self._labels()} {load_seconds}"]
        lines += ["# HELP mldock_process_start_time_seconds Start time of this server process.",
                  "# TYPE mldock_process_start_time_seconds gauge",
                  (f"mldock_process_start_time_seconds{self._labels(pid=os.getpid())} "
                   f"{self.started}")]
        return ("\n".join(lines) + "\n").encode("utf-8")
