"""What a secret looks like, refusing it where it does not belong, and redacting it on the way out.

A secret reaches mldock one way only: the config names an environment variable (``"env:NAME"`` or
``{env = "NAME"}``) and the backend reads it when it needs it. Everything else that looks like a
secret — a secret-looking key holding a literal, a URI with ``user:password@`` — is refused when the
config is loaded or a ``-p`` override is parsed, and every line mldock prints or stores passes
through :func:`redact_text` / :func:`redact_data` so that a secret that slipped in anyway (from an
environment variable, a plugin's message) is never echoed.

This module is standard library only: the CLI's error path imports it without pulling in pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "env:"
MASK = "***"
ENV_HINT = 'put the value in an environment variable and write its name: "env:NAME"'

# Substrings that mark a key as secret wherever they occur (``db_password``, ``clientSecret``).
_SECRET_PARTS = ("password", "passwd", "passphrase", "secret", "credential", "apikey")
# Words that are secret on their own (``sas``), and pairs (``access_key``, ``connectionString``).
_SECRET_WORDS = frozenset({"sas", "pat", "token"})
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"),
                           ("account", "key"), ("connection", "string"), ("auth", "key")})
# ``token`` is a secret after one of these (``api_token``, ``hfToken``) but not in ``max_tokens``
# or ``pad_token``, which are ordinary model hyperparameters.
_TOKEN_QUALIFIERS = frozenset({
    "api", "access", "auth", "bearer", "refresh", "session", "id", "oauth", "hf", "huggingface",
    "github", "gh", "gitlab", "personal", "security", "sas", "slack", "bot", "registry", "pypi",
    "npm", "ecr", "wandb", "user", "service", "client", "private", "write", "read"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_URI_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)([^\s/?#@]+)(@)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(key)]


def is_secret_key(key: str) -> bool:
    """Whether a config key or hyperparameter name says its value is a secret."""
    lowered = key.lower()
    if any(part in lowered for part in _SECRET_PARTS):
        return True
    words = _words(key)
    if words in (["token"], ["pat"], ["sas"]):
        return True
    for before, word in zip(["", *words], words, strict=False):
        if word in ("sas",) or (before, word) in _SECRET_PAIRS:
            return True
        if word in ("token", "tokens") and before in _TOKEN_QUALIFIERS:
            return True
    return False


def is_env_ref(value: Any) -> bool:
    """``"env:NAME"`` or ``{env = "NAME"}``: a secret given by indirection, never the value."""
    if isinstance(value, str):
        return value.startswith(ENV_PREFIX)
    return isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str)


def uri_has_password(value: str) -> bool:
    """Whether ``value`` is a URI carrying ``user:password@``."""
    if "://" not in value or "@" not in value:
        return False
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:  # a malformed netloc (bad IPv6 brackets): fall back to the pattern
        return bool(_URI_PASSWORD.search(value))


def redact_text(text: str) -> str:
    """``text`` with the password of every URI in it replaced by ``***``."""
    return _URI_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)


def printable(text: str) -> str:
    """``text`` on one line: newlines, terminal escape codes and other controls written as
    ``\\n``, ``\\x1b`` (as ``repr`` would), so a hostile key cannot forge lines or colours."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def safe_line(text: str) -> str:
    """What every error and log line goes through: secrets redacted, controls escaped."""
    return printable(redact_text(text))


def redact_data(node: Any, _secret: bool = False) -> Any:
    """A copy of a config tree with literal secrets masked: values of secret-looking keys that are
    not ``env:`` references, and passwords in URIs. What ``config show`` prints and runs store."""
    if isinstance(node, dict):
        if _secret and is_env_ref(node):
            return dict(node)
        return {k: redact_data(v, is_secret_key(str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [redact_data(v, _secret) for v in node]
    if isinstance(node, str):
        return node if node.startswith(ENV_PREFIX) else (MASK if _secret else redact_text(node))
    if _secret and not isinstance(node, bool) and node is not None:
        return MASK
    return node


def find_secret(node: Any, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str] | None:
    """The first literal secret in a config tree: (key path, problem), or ``None``.

    A secret-looking key may hold an ``env:`` reference, a boolean (``use_auth_token = true``),
    a list of those, or a table of further keys; anything else is a secret written into the file.
    Any string anywhere that is a URI with a password is one too.
    """
    for here, value, secret in _walk(node, path, False):
        if secret and not (is_env_ref(value) or isinstance(value, (bool, dict))):
            return here, "looks like a secret written into the file"
        if isinstance(value, str) and uri_has_password(value):
            return here, "a URI with a password is a secret written into the file"
    return None


def _walk(node: Any, path: tuple[str, ...], secret: bool
          ) -> Iterator[tuple[tuple[str, ...], Any, bool]]:
    """Every value of the tree with its key path and whether its key (or its list's) is secret."""
    if isinstance(node, dict) and not (secret and is_env_ref(node)):
        for key, value in node.items():
            here, key_secret = (*path, str(key)), is_secret_key(str(key))
            if not isinstance(value, (dict, list)) or is_env_ref(value):
                yield here, value, key_secret
            yield from _walk(value, here, key_secret)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            here = (*path, str(index))
            if not isinstance(value, (dict, list)):
                yield here, value, secret
            yield from _walk(value, here, secret)


def override_problem(key: str, value: Any) -> str | None:
    """Why a ``-p key=value`` override must be refused as a secret, or ``None``."""
    found = find_secret({key: value})
    return None if found is None else found[1].replace("written into the file",
                                                       "given on the command line")
