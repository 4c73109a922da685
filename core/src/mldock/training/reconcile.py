"""Runs whose ``mldock train`` process died without finishing them (``kill -9``, a crash, a reboot).

A run records who owns it when it starts (:func:`owner_tags`): the owning process id, its start
time (so a reused pid is not mistaken for the owner), the host, and for a local container run the
container's name. Commands that show runs call :func:`reconcile` first: a ``running`` run of this
host whose owner is gone is

* left ``running`` while its training container still runs (the job is real; ``logs -f`` waits
  for it), and
* finished once the container has exited (``killed`` for 137/143, ``failed`` otherwise, with its
  exit code in the reason; the container is removed as ``mldock train`` would have) or is gone,
  or at once for a ``--no-container`` run, whose training died with its owner's pipe.

Runs of another host, or without owner tags (older mldock, cloud trackers), are never touched:
their truth cannot be known from here.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from mldock.interfaces import RunStatus

TAG_PID = "mldock.owner.pid"
TAG_START = "mldock.owner.start"
TAG_HOST = "mldock.owner.host"
TAG_CONTAINER = "mldock.container"
KILLED_CODES = {137, 143}


def _proc_start(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of ``pid`` from /proc, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def owner_tags(container: str | None = None) -> dict[str, str]:
    """The tags a run records when this process starts it."""
    tags = {TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname()}
    started = _proc_start(os.getpid())
    if started:
        tags[TAG_START] = started[1]
    if container:
        tags[TAG_CONTAINER] = container
    return tags


def owner_alive(tags: dict[str, str]) -> bool | None:
    """Whether the process that owns a run still lives; None when it cannot be told from here."""
    if TAG_PID not in tags or tags.get(TAG_HOST) != socket.gethostname():
        return None
    pid = int(tags[TAG_PID])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    proc = _proc_start(pid)
    if proc is None:
        return not os.path.isdir("/proc/self")  # no /proc (macOS): kill(0) is all we know
    state, started = proc
    return state != "Z" and (TAG_START not in tags or started == tags[TAG_START])


def _container_verdict(name: str, pid: str) -> tuple[RunStatus, str] | None:
    """The outcome of a run whose owner died, from its training container (None: still running,
    or no engine to ask)."""
    from mldock.errors import MldockError

    try:
        from docker.errors import NotFound

        from mldock.local.engine import docker_client

        client = docker_client(timeout=10)
    except (ImportError, MldockError):
        return None
    try:
        container = client.containers.get(name)
    except NotFound:
        return RunStatus.KILLED, (f"the mldock process (pid {pid}) that ran it ended without"
                                  f" recording the outcome, and its container {name} is gone")
    if container.status in ("created", "running", "restarting", "paused"):
        return None
    code = int(container.attrs.get("State", {}).get("ExitCode", -1))
    with contextlib.suppress(Exception):  # as 'mldock train' would have
        container.remove(force=True)
    why = f"the mldock process (pid {pid}) that ran it ended without recording the outcome;"
    if code in KILLED_CODES:
        return RunStatus.KILLED, f"{why} its container was stopped (exit code {code})"
    if code == 0:
        return RunStatus.FAILED, (f"{why} training ended in its container (exit code 0) but the"
                                  " model was never stored: retrain")
    return RunStatus.FAILED, f"{why} its container exited with code {code}"


def verdict(run: Any) -> tuple[RunStatus, str] | None:
    """How a ``running`` run really ended, or None if it is still going (or cannot be told)."""
    if run.status is not RunStatus.RUNNING or owner_alive(run.tags) is not False:
        return None
    pid = run.tags[TAG_PID]
    container = run.tags.get(TAG_CONTAINER)
    if container:
        return _container_verdict(container, pid)
    return RunStatus.KILLED, (f"the mldock process (pid {pid}) that ran it ended without"
                              " recording the outcome (killed?)")


def orphaned_container(run: Any) -> str | None:
    """The container of a run whose owner is gone but which still trains (for a note)."""
    if run.status is RunStatus.RUNNING and owner_alive(run.tags) is False:
        return run.tags.get(TAG_CONTAINER)
    return None


def reconcile(session: Any, run_id: str | None = None) -> list[str]:
    """Record the truth for this project's ``running`` runs whose owner is gone (or just
    ``run_id``); returns the ids finished here."""
    tracker = session.tracker
    if run_id is not None:
        runs = [tracker.get_run(run_id)]
    else:
        runs = [r for r in tracker.list_runs(session.project, limit=200)
                if r.status is RunStatus.RUNNING]
    finished = []
    for run in runs:
        outcome = verdict(run)
        if outcome is not None:
            tracker.finish_run(run.id, outcome[0], error=outcome[1])
            finished.append(run.id)
    if finished:
        tracker.flush()
    return finished
