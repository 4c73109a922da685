"""Resolve ``module:object`` references such as ``MLDOCK_TRAIN=iris.train:train``.

A reference that names a missing module or attribute is a configuration mistake (exit code 2,
one clear line); an exception raised while the user's module imports is a bug in user code and
propagates with its traceback.
"""

from __future__ import annotations

import importlib
from typing import Any


class BadReference(Exception):
    """The reference is malformed or names something that does not exist."""


def resolve(reference: str | None, what: str) -> Any:
    """The object ``reference`` names (``package.module:attr.sub``); ``what`` names the env var."""
    if not reference or not reference.strip():
        raise BadReference(f"{what} is not set: it must name the object as 'module:object'")
    module_name, sep, attr_path = reference.strip().partition(":")
    if not sep or not module_name or not attr_path:
        raise BadReference(f"{what}={reference!r} must have the form 'module:object'"
                           " (e.g. 'iris.train:train')")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise BadReference(
                f"{what}={reference!r}: module {missing!r} not found on"
                " PYTHONPATH (is the project's source folder in the image?)") from None
        raise
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BadReference(f"{what}={reference!r}: {module_name!r} has no attribute"
                               f" {attr_path!r}") from None
    return obj
