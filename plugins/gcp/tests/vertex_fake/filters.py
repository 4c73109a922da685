"""The filter language subset the fake understands (list calls and Cloud Logging).

``display_name="x" AND labels.mldock-project="iris"``, ``resource.labels.job_id="123"
timestamp>="2026-01-01T00:00:00Z" severity>=WARNING``: comparisons (``= != < <= > >= :``)
joined by ``AND`` or by line breaks / spaces (Cloud Logging's implicit AND). Field paths may
be snake_case (turned into the JSON's camelCase) and may quote a segment
(``labels."ml.googleapis.com/trial_id"``). ``OR``, ``NOT`` and parentheses are refused with a
400 naming the limit: a test that needs them extends this module.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from vertex_fake.errors import invalid

SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT",
              "EMERGENCY"]
_TOKEN = re.compile(r'\s*(?:(?P<path>(?:[A-Za-z_][\w-]*|"[^"]*")'
                    r'(?:\.(?:[A-Za-z_][\w./-]*|"[^"]*"))*)'
                    r'\s*(?P<op>!=|>=|<=|=|<|>|:)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s"()]+)'
                    r"|(?P<and>AND\b))")
Predicate = Callable[[dict[str, Any]], bool]


def parse(text: str) -> Predicate:
    """A predicate over a resource's JSON for ``text`` (empty: everything matches)."""
    checks: list[Predicate] = []
    position = 0
    text = text.strip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if not found or found.end() == position:
            raise invalid(f"Unsupported filter at {text[position:position + 40]!r}: the fake"
                          " understands comparisons joined by AND (no OR, NOT or parentheses).",
                          "filter")
        position = found.end()
        if found.group("and"):
            continue
        checks.append(_comparison(found.group("path"), found.group("op"), found.group("value")))
    return lambda item: all(check(item) for check in checks)


def _segments(path: str) -> list[str]:
    return [part.strip('"') for part in re.findall(r'"[^"]*"|[^.]+', path)]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def lookup(item: Any, path: str) -> Any:
    """The value at a dotted ``path`` (snake_case or camelCase), or None. Label keys are
    taken as written."""
    previous = ""
    for segment in _segments(path):
        if not isinstance(item, dict):
            return None
        if segment in item:
            item = item[segment]
        elif previous != "labels" and _camel(segment) in item:
            item = item[_camel(segment)]
        else:
            return None
        previous = segment
    return item


def _comparison(path: str, op: str, raw: str) -> Predicate:
    value = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw

    def check(item: dict[str, Any]) -> bool:
        found = lookup(item, path)
        if found is None:
            return op == "!="
        return _compare(str(found), op, value, path)

    return check


def _key(text: str, path: str) -> Any:
    if path.endswith("severity") and text.upper() in SEVERITIES:
        return SEVERITIES.index(text.upper())
    if re.match(r"\d{4}-\d\d-\d\dT", text):
        stamp = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
        try:
            return dt.datetime.fromisoformat(stamp)
        except ValueError:
            return text
    return text


def _compare(found: str, op: str, value: str, path: str) -> bool:
    if op == ":":
        return value in found
    left, right = _key(found, path), _key(value, path)
    if type(left) is not type(right):
        left, right = found, value
    return {"=": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[op]
