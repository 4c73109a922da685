"""Messages on the wire: proto-plus types to the JSON the service answers, timestamps, ids.

Answers omit default values and spell enums by name, as the service does, unless the client
asked for numbers (``$alt=json;enum-encoding=int``, what the GAPIC REST transport sends).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import threading
from typing import Any

_counter = itertools.count(1)
_lock = threading.Lock()


def to_wire(message: Any, int_enums: bool = False) -> dict[str, Any]:
    """A proto-plus message (or a raw protobuf one, like ``Empty``) as the service's JSON
    object (camelCase, int64 as strings)."""
    if not hasattr(type(message), "pb"):
        from google.protobuf import json_format

        raw: dict[str, Any] = json_format.MessageToDict(message,
                                                        use_integers_for_enums=int_enums)
        return raw
    text = type(message).to_json(message, use_integers_for_enums=int_enums,
                                 always_print_fields_with_no_presence=False, indent=None)
    data: dict[str, Any] = json.loads(text)
    return data


def type_url(message: Any) -> str:
    """The ``@type`` of ``message`` inside a ``google.protobuf.Any``."""
    descriptor = (type(message).pb(message) if hasattr(type(message), "pb") else message).DESCRIPTOR
    return "type.googleapis.com/" + descriptor.full_name


def packed(message: Any, int_enums: bool = False) -> dict[str, Any]:
    """``message`` as the JSON of a ``google.protobuf.Any`` (an operation's metadata/response);
    a dict (an API whose types are not installed) is taken as that JSON already."""
    if isinstance(message, dict):
        return message
    return {"@type": type_url(message), **to_wire(message, int_enums)}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(moment: dt.datetime | None = None) -> str:
    """``2026-11-30T11:04:02.123456Z``: Google's timestamp form."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    """A numeric resource id like Vertex AI's (19 digits, never repeated in one process)."""
    with _lock:
        serial = next(_counter)
    return str(random.randint(1, 9) * 10**18 + random.randint(0, 10**12) * 10**6  # noqa: S311
               + serial % 10**6)
