"""Request bodies checked against the API's own types, the azure-ai-ml generated REST models.

azure-ai-ml 1.35 ships the ARM API as TypeSpec-generated models
(``azure.ai.ml._restclient.arm_ml_service.models``). Their ``_attr_to_rest_field`` tables give each
property's wire name and visibility, and their type hints give its type: a property typed without
``Optional`` and writable on create is required; ``Union[str, SomeEnum]`` is an enum (the service
compares enum values without case, so does the check); a discriminated base
(``JobBaseProperties``, ``JobInput``, ...) resolves to the subclass its discriminator names, and an
unknown discriminator value is rejected with the values that exist. Read-only properties are
ignored as ARM ignores them. What the models cannot express (name rules, cross-field rules) is
checked by the route modules themselves.
"""

from __future__ import annotations

import datetime
import enum
import functools
import typing
from typing import Any

from .routing import ArmError

MODELS = "azure.ai.ml._restclient.arm_ml_service.models"


def check(model: str, body: Any) -> None:
    """Raise a 400 ``ArmError`` naming the first property the service would reject."""
    from azure.ai.ml._restclient.arm_ml_service import models

    problem = _check(getattr(models, model), body, "")
    if problem:
        path, message = problem
        raise ArmError(400, "UserError", f"{path or 'body'}: {message}",
                       [{"code": "BadArgument", "message": message, "target": path}])


@functools.cache
def _fields(cls: type) -> list[tuple[str, Any, list[str] | None, bool]]:
    """``(wire name, type, visibility, is discriminator)`` of every property of ``cls``."""
    from azure.ai.ml._restclient.arm_ml_service import models
    from azure.ai.ml._restclient.arm_ml_service.models import _models

    cls({})  # the model base computes its field table on first use
    hints = typing.get_type_hints(cls, globalns={**vars(_models), "_models": models})
    return [(field._rest_name, hints.get(attr, Any), field._visibility, field._is_discriminator)
            for attr, field in cls._attr_to_rest_field.items()]


def _subclass(cls: type, data: dict[str, Any], path: str) -> tuple[type, tuple[str, str] | None]:
    mapping: dict[str, type] = getattr(cls, "__mapping__", None) or {}
    keys = [name for name, _, _, is_disc in _fields(cls) if is_disc]
    if not mapping or not keys:
        return cls, None
    key = keys[0]
    value = data.get(key)
    if value is None:
        return cls, (_join(path, key), f"is required (one of {sorted(mapping)})")
    for name, sub in mapping.items():
        if str(value).lower() == name.lower():
            return sub, None
    return cls, (_join(path, key), f"{value!r} is not one of {sorted(mapping)}")


def _check(cls: type, data: Any, path: str) -> tuple[str, str] | None:
    if not isinstance(data, dict):
        return path, f"expected an object, got {type(data).__name__}"
    cls, problem = _subclass(cls, data, path)
    if problem:
        return problem
    for name, kind, visibility, is_disc in _fields(cls):
        writable = visibility is None or "create" in visibility or "update" in visibility
        if not writable or is_disc:
            continue
        here = _join(path, name)
        if data.get(name) is None:
            if not _optional(kind):
                return here, "is required"
            continue
        problem = _value(kind, data[name], here)
        if problem:
            return problem
    return None


def _optional(kind: Any) -> bool:
    return kind is Any or type(None) in typing.get_args(kind)


def _value(kind: Any, value: Any, path: str) -> tuple[str, str] | None:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union:
        return _union([a for a in args if a is not type(None)], value, path)
    if origin is typing.Literal:
        return None if str(value).lower() in {str(getattr(a, "value", a)).lower() for a in args} \
            else (path, f"must be one of {[getattr(a, 'value', a) for a in args]}")
    if origin is dict:
        if not isinstance(value, dict):
            return path, "expected an object"
        return next((p for k, v in value.items() if (p := _value(args[1], v, f"{path}.{k}"))),
                    None)
    if origin is list:
        if not isinstance(value, list):
            return path, "expected an array"
        return next((p for i, v in enumerate(value) if (p := _value(args[0], v, f"{path}[{i}]"))),
                    None)
    return _scalar(kind, value, path)


def _union(kinds: list[Any], value: Any, path: str) -> tuple[str, str] | None:
    enums = [k for k in kinds if isinstance(k, type) and issubclass(k, enum.Enum)]
    if enums and isinstance(value, str):
        allowed = [str(member.value) for member in enums[0]]
        if value.lower() not in {a.lower() for a in allowed}:
            return path, f"{value!r} is not one of {allowed}"
        return None
    problems = [_value(k, value, path) for k in kinds]
    return None if any(p is None for p in problems) else problems[0]


def _scalar(kind: Any, value: Any, path: str) -> tuple[str, str] | None:
    if kind is Any:
        return None
    if kind is bool:
        return None if isinstance(value, bool) else (path, "expected a boolean")
    if kind in (int, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else (path, "expected a number")
    if kind in (str, datetime.datetime, datetime.timedelta, datetime.date, bytes):
        return None if isinstance(value, str) else (path, "expected a string")
    if isinstance(kind, type) and getattr(kind, "_is_model", False):
        return _check(kind, value, path)
    return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
