"""Name grammars checked when the config loads, so ``config validate`` catches what ``build`` would.

The base image follows the Docker reference grammar (``distribution/reference``: optional registry
host and port, lowercase path components joined by ``.``, ``_``, ``__`` or dashes, optional tag,
optional digest); system packages follow Debian's package-name rules (policy §5.6.1, §5.6.12) with
an optional ``:arch`` and ``=version``. Anything else — a space, a ``;``, a quote — never reaches a
Dockerfile line.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
DOCKER_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
NAME_MAX = 255

DEBIAN_PACKAGE = re.compile(
    r"^[a-z0-9][a-z0-9.+-]+"            # name: two or more characters, starts alphanumeric
    r"(?::[a-z0-9][a-z0-9-]*)?"         # multiarch qualifier: libc6:amd64
    r"(?:=(?:[0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~-]*)?$")  # =[epoch:]version[-revision]


def image_reference_problem(value: str) -> str | None:
    """Why ``value`` is not a Docker image reference (``python:3.11-slim``,
    ``registry:5000/team/base@sha256:…``), or ``None``."""
    match = DOCKER_REFERENCE.fullmatch(value)
    if match is None:
        return "not a valid image reference"
    name = value.split("@", 1)[0]
    if match.group("tag"):
        name = name[: -len(match.group("tag")) - 1]
    if len(name) > NAME_MAX:
        return f"image name longer than {NAME_MAX} characters"
    return None


def package_problem(value: str) -> str | None:
    """Why ``value`` is not a Debian package name (``libgomp1``, ``curl=7.88.1-10``), or None."""
    if DEBIAN_PACKAGE.fullmatch(value):
        return None
    return f"not a Debian package name: {value!r}"


def index_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be pip's index URL: it must be http(s) with a host, no credentials."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return "must be an http(s) URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL"
    if parts.username or password:
        return ("must not contain credentials (they would be stored in the image history); give"
                " the index URL without 'user:password@'")
    return None
