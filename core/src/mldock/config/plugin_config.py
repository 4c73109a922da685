"""Base class and field types for plugins' config models.

A plugin's options live in ``[<section>.<backend>]`` of ``mldock.toml``
(e.g. ``[deploy.sagemaker]``) and are validated by the model its record names. Subclass
:class:`PluginConfig` so that unknown keys are errors (a typo never passes silently), and use
:data:`EnvSecret` for anything secret: the file only ever holds the *name* of an environment
variable, never the value.
"""

from __future__ import annotations

import os
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer, PlainValidator

from mldock.errors import MldockError

ENV_PREFIX = "env:"


class PluginConfig(BaseModel):
    """Base for plugin config models: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(str):
    """The name of an environment variable holding a secret; :meth:`value` reads it when needed."""

    @property
    def variable(self) -> str:
        return str(self)

    def value(self, *, required: bool = True) -> str | None:
        found = os.environ.get(self.variable)
        if found is None and required:
            raise MldockError(
                f"environment variable {self.variable} is not set",
                hint="export it before running mldock; the config only names the variable")
        return found

    def __repr__(self) -> str:
        return f"SecretRef(env:{self.variable})"


def _parse_secret(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str):
        name = value["env"]
    elif isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
    else:
        raise ValueError('secrets must name an environment variable: "env:NAME" or {env = "NAME"},'
                         " never the value itself")
    if not name or not name.replace("_", "").isalnum() or name[0].isdigit():
        raise ValueError(f"invalid environment variable name {name!r}")
    return SecretRef(name)


EnvSecret = Annotated[
    SecretRef,
    PlainValidator(_parse_secret),
    PlainSerializer(lambda ref: f"{ENV_PREFIX}{ref.variable}", return_type=str),
]
"""A config field holding a secret by indirection: ``"env:AWS_SECRET_ACCESS_KEY"``."""


def _check_endpoint_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL such as 'http://127.0.0.1:9000'")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials; use the SDK's credential chain or"
                         ' "env:NAME" secrets')
    return value.strip().rstrip("/")


EndpointUrl = Annotated[str, AfterValidator(_check_endpoint_url)]
"""A service endpoint override (emulators, S3-compatible stores): http(s), no credentials in it."""
