"""What is deployed where: every environment of the project asked through its own deployer.

The base config and each ``[env.NAME]`` may name a different deployer (local Docker, SageMaker,
Vertex, Azure ML). Each is asked in a thread of its own, with a time limit, so a cloud that is slow
or lacks credentials shows its one-line error in its row instead of holding up the page.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from mldock.errors import MldockError

ASK_TIMEOUT_S = 20.0
MAX_AGE_S = 10.0


def describe_environment(env: str | None, open_session: Callable[[str | None], Any]
                         ) -> dict[str, Any]:
    """One environment's row: its deployer and endpoints (with status), or why it cannot say."""
    row: dict[str, Any] = {"env": env, "deployer": None, "endpoints": [], "error": None}
    try:
        session = open_session(env)
        row["deployer"] = session.deployer_name
        deployments = session.deployer.list()
    except MldockError as exc:
        row["error"] = exc.message + (f" ({exc.hint})" if exc.hint else "")
        return row
    except Exception as exc:  # noqa: BLE001 - a plugin's bug shows in its row, not as a 500
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        return row
    row["endpoints"] = [{"name": d.name, "url": d.url, "status": d.status, "run_id": d.run_id,
                         "image": d.image, "healthy": _healthy(d.status)} for d in deployments]
    return row


def _healthy(status: str) -> bool:
    return status.lower() in {"inservice", "in service", "running", "healthy", "succeeded",
                              "ready", "deployed"}


class EndpointsView:
    """The endpoints table, cached for :data:`MAX_AGE_S` (clouds are slow to list)."""

    def __init__(self, environments: list[str | None],
                 open_session: Callable[[str | None], Any], *,
                 clock: Callable[[], float] = time.monotonic):
        self.environments = environments  # None is the base config
        self.open_session = open_session
        self.clock = clock
        self._rows: list[dict[str, Any]] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._rows is not None and self.clock() - self._at < MAX_AGE_S:
                return self._rows
            envs = self.environments
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(envs)))
            futures = [pool.submit(describe_environment, env, self.open_session)
                       for env in envs]
            rows = []
            for env, future in zip(envs, futures, strict=True):
                try:
                    rows.append(future.result(timeout=ASK_TIMEOUT_S))
                except concurrent.futures.TimeoutError:
                    rows.append({"env": env, "deployer": None, "endpoints": [],
                                 "error": f"no answer within {ASK_TIMEOUT_S:.0f} s"})
            pool.shutdown(wait=False, cancel_futures=True)
            self._rows, self._at = _merge_same(rows), self.clock()
            return self._rows


def _merge_same(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Environments that reach the same deployer and see the same endpoints (the base config and
    a ``dev`` overlay both deploying locally) are one row naming them all."""
    merged: list[dict[str, Any]] = []
    for row in rows:
        same = next((m for m in merged if not row["error"] and not m["error"]
                     and m["deployer"] == row["deployer"]
                     and m["endpoints"] == row["endpoints"]), None)
        if same is None:
            merged.append({**row, "envs": [row["env"]]})
        else:
            same["envs"].append(row["env"])
    return merged
