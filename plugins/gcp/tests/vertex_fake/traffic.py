"""An endpoint's ``trafficSplit``: checked like Vertex AI checks it, and used to pick a model."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from vertex_fake.errors import invalid

NEW = "0"  # how a deployModel request names the model it deploys


def check(split: Mapping[str, int], known: Iterable[str], field: str) -> None:
    """Keys are deployed model ids of the endpoint; percentages sum to 100 (or the split is
    empty)."""
    known = set(known)
    for key, value in split.items():
        if key not in known:
            raise invalid(f"{field}: {key!r} is not a deployed model of this endpoint.", field)
        if value < 0:
            raise invalid(f"{field}: a percentage cannot be negative.", field)
    if split and sum(split.values()) != 100:
        raise invalid(f"{field} must sum to 100, got {sum(split.values())}.", field)


def pick(split: Mapping[str, int]) -> str | None:
    """A deployed model id drawn with the split's weights (None when nothing gets traffic)."""
    weighted = [(key, value) for key, value in split.items() if value > 0]
    if not weighted:
        return None
    keys, weights = zip(*weighted, strict=True)
    return random.choices(keys, weights)[0]  # noqa: S311 - load balancing, not security
