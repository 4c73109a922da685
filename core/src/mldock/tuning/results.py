"""Runs as ``mldock runs list`` shows them: each tune followed by its trials, best first.

Trials are child runs (tag ``mldock.parent``); they are listed under their tune rather than
among the project's other runs, so twenty trials do not push everything else off the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from mldock.interfaces import RunRecord
from mldock.tuning.runs import (
    TAG_DIRECTION,
    TAG_OBJECTIVE,
    TAG_PARENT,
    TAG_PRUNED,
    is_tune,
    ranked,
)


def grouped(runs: Sequence[RunRecord], limit: int) -> list[tuple[RunRecord, list[RunRecord]]]:
    """The first ``limit`` runs that are no trial, newest first, each with its trials (a tune's:
    best first by its objective; other runs: none). Trials whose tune is not among ``runs``
    are listed on their own."""
    ids = {r.id for r in runs}
    children: dict[str, list[RunRecord]] = {}
    top: list[RunRecord] = []
    for run in runs:
        parent = run.tags.get(TAG_PARENT)
        if parent and parent in ids:
            children.setdefault(parent, []).append(run)
        else:
            top.append(run)
    out = []
    for run in top[:limit]:
        trials = children.get(run.id, [])
        if is_tune(run):
            trials = ranked(trials, run.tags.get(TAG_OBJECTIVE, ""),
                            run.tags.get(TAG_DIRECTION, "maximize"))
        out.append((run, trials))
    return out


def shown_status(run: RunRecord) -> str:
    """A run's status, ``pruned`` for a trial early stopping ended."""
    return "pruned" if run.tags.get(TAG_PRUNED) else run.status.value
