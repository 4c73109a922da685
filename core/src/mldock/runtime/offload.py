"""A fixed set of threads that run predictions while the event loop keeps answering health checks.

Why not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined when the interpreter
exits, so one prediction stuck in user code would keep a SIGTERMed server alive past its
graceful timeout. These threads are daemons; the server decides how long to wait for them.
Work beyond the thread count waits in a queue (each connection has at most one request in
flight, so the queue is bounded by the number of connections): a burst of slow predictions
never spawns more threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

Done = Callable[[Any, "BaseException | None"], None]


class PredictPool:
    """Runs ``func(arg)`` on one of ``threads`` daemon threads; ``done(result, error)`` is then
    called on the event loop that submitted the work."""

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError("a prediction pool needs at least one thread")
        self.threads = threads
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._started: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, func: Callable[[Any], Any], arg: Any, done: Done) -> None:
        loop = asyncio.get_running_loop()
        if len(self._started) < self.threads:
            self._start_threads()
        self._queue.put((loop, func, arg, done))

    def _start_threads(self) -> None:
        with self._lock:
            while len(self._started) < self.threads:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"mldock-predict-{len(self._started)}")
                thread.start()
                self._started.append(thread)

    def _work(self) -> None:
        while True:
            loop, func, arg, done = self._queue.get()
            error: BaseException | None = None
            result = None
            try:
                result = func(arg)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which answers 500
                error = exc
            # RuntimeError: the loop has closed, the server is gone, nobody to answer
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(done, result, error)
            del result, error, arg
