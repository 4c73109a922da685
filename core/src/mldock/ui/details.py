"""One run in full for its page: what the tracker holds, plus what a reader needs next to it —
the command that runs it again, its training log, and the files of its model."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mldock.interfaces.tracking import RunRecord
from mldock.ui.runs import duration

LOG_TAIL_BYTES = 256 * 1024  # the page shows the end of a long log, and says so


def run_details(run: RunRecord, *, log_path: Path | None,
                model_files: Callable[[RunRecord], list[dict[str, Any]] | None]) -> dict[str, Any]:
    """The run's JSON for its page."""
    data = run.to_dict()
    data["duration"] = duration(run)
    data["metrics"] = {k: (v if v == v and abs(v) != float("inf") else None)
                       for k, v in run.metrics.items()}
    data["reproduce"] = reproduce_command(run)
    data["has_log"] = bool(log_path and log_path.is_file())
    try:
        data["model_files"] = model_files(run)
    except Exception as exc:  # noqa: BLE001 - a store that cannot be read leaves the rest useful
        data["model_files"] = None
        data["model_files_error"] = str(getattr(exc, "message", exc)).splitlines()[0][:300]
    return data


def reproduce_command(run: RunRecord) -> str:
    """Shell lines that train this run again: the same commit, environment and params."""
    lines = []
    if run.lineage.git_commit:
        lines.append(f"git checkout {shlex.quote(run.lineage.git_commit)}")
        if run.lineage.git_dirty:
            lines.append("# the work tree had uncommitted changes when this run started")
    words = ["mldock"]
    env = run.tags.get("mldock.env")
    if env:
        words += ["--env", shlex.quote(env)]
    words.append("train")
    if run.tags.get("mldock.instances"):
        words += ["--instances", shlex.quote(run.tags["mldock.instances"])]
    if run.lineage.image is None and (run.lineage.platform or "local") == "local":
        words.append("--no-container")
    for key, value in sorted(run.params.items()):
        text = value if isinstance(value, str) else json.dumps(value)
        words += ["-p", shlex.quote(f"{key}={text}")]
    lines.append(" ".join(words))
    return "\n".join(lines)


def read_log(path: Path, offset: int = 0) -> dict[str, Any]:
    """The log from byte ``offset`` (the page follows a live run by asking for what is new);
    a first read of a long log starts at its last :data:`LOG_TAIL_BYTES`."""
    size = path.stat().st_size
    start = offset if offset > 0 else max(0, size - LOG_TAIL_BYTES)
    start = min(start, size)
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(max(0, size - start))
    return {"text": data.decode("utf-8", errors="replace"), "offset": start + len(data),
            "truncated": offset <= 0 and start > 0}
