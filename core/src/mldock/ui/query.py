"""The runs table's query string, parsed and checked: a malformed one is a 400, never a traceback.

Grammar (all optional)::

    status=finished,failed          statuses to keep
    where=param:lr>=0.01            a condition on a param or a metric (repeatable, all must hold);
    where=metric:accuracy>0.9       operators = != < <= > >=; numbers compare as numbers
    q=text                          in the id, the image, the platform or a tag
    sort=started|ended|duration|status|id|param:NAME|metric:NAME
    order=asc|desc                  (default: newest first)
    page=1&per_page=50              per_page at most 500
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mldock.interfaces.tracking import RunStatus

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
PLAIN_SORTS = ("started", "ended", "duration", "status", "id")
CONDITION = re.compile(r"^(param|metric):([^=!<>]{1,200})(==|=|!=|<=|>=|<|>)(.{0,500})$", re.S)


class QueryError(ValueError):
    """A query string the page cannot answer; its text names the parameter and what is allowed."""


@dataclass(frozen=True)
class Condition:
    """``param:lr >= 0.01``: ``kind`` is ``param`` or ``metric``."""

    kind: str
    key: str
    op: str
    value: str

    def holds(self, found: Any) -> bool:
        """Whether the run's ``found`` value satisfies it (a missing value never does)."""
        if found is None:
            return False
        left, right = _comparable(found), _comparable(self.value)
        if isinstance(left, float) != isinstance(right, float):
            left, right = str(found), self.value
        if self.op in ("=", "=="):
            return bool(left == right)
        if self.op == "!=":
            return bool(left != right)
        try:
            return bool({"<": left < right, "<=": left <= right, ">": left > right,
                         ">=": left >= right}[self.op])
        except TypeError:
            return False


@dataclass(frozen=True)
class RunsQuery:
    """What the runs table asks for."""

    statuses: frozenset[str] = frozenset()
    conditions: tuple[Condition, ...] = ()
    text: str = ""
    sort: str = "started"
    descending: bool = True
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    extra: Mapping[str, str] = field(default_factory=dict)


def parse_runs_query(params: Mapping[str, Sequence[str]]) -> RunsQuery:
    """The :class:`RunsQuery` of a parsed query string (``urllib.parse.parse_qs`` output)."""
    known = {"status", "where", "q", "sort", "order", "page", "per_page"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise QueryError(f"unknown query parameter {unknown[0]!r}; known:"
                         f" {', '.join(sorted(known))}")
    statuses = frozenset(s for v in params.get("status", []) for s in v.split(",") if s)
    allowed = {s.value for s in RunStatus}
    if statuses - allowed:
        raise QueryError(f"status {sorted(statuses - allowed)[0]!r} is not one of"
                         f" {', '.join(sorted(allowed))}")
    sort = _one(params, "sort", "started")
    if sort not in PLAIN_SORTS and not re.match(r"^(param|metric):.{1,200}$", sort):
        raise QueryError(f"sort {sort!r}: use one of {', '.join(PLAIN_SORTS)}, param:NAME or"
                         " metric:NAME")
    order = _one(params, "order", "desc")
    if order not in ("asc", "desc"):
        raise QueryError(f"order {order!r}: use asc or desc")
    return RunsQuery(statuses=statuses, conditions=tuple(parse_condition(v)
                                                         for v in params.get("where", [])),
                     text=_one(params, "q", "").strip().lower()[:200], sort=sort,
                     descending=order == "desc", page=_integer(params, "page", 1, 1, 10**6),
                     per_page=_integer(params, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE))


def parse_condition(text: str) -> Condition:
    """``param:lr>=0.01`` → Condition; anything else is a :class:`QueryError`."""
    match = CONDITION.match(text.strip())
    if not match:
        raise QueryError(f"where {text[:80]!r}: write param:NAME<op>VALUE or metric:NAME<op>VALUE"
                         " with <op> one of = != < <= > >=")
    kind, key, op, value = match.groups()
    return Condition(kind, key.strip(), "=" if op == "==" else op, value.strip())


def _one(params: Mapping[str, Sequence[str]], name: str, default: str) -> str:
    values = params.get(name, [])
    if len(values) > 1:
        raise QueryError(f"{name} is given {len(values)} times; give it once")
    return values[0] if values else default


def _integer(params: Mapping[str, Sequence[str]], name: str, default: int, low: int,
             high: int) -> int:
    raw = _one(params, name, str(default))
    if not re.fullmatch(r"\d{1,9}", raw) or not low <= int(raw) <= high:
        raise QueryError(f"{name} {raw[:20]!r}: a whole number from {low} to {high}")
    return int(raw)


def _comparable(value: Any) -> Any:
    """Numbers (and numeric strings) as floats, so ``10 > 9``; other values as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return str(value)
