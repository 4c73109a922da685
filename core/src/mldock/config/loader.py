"""Finding, reading, overlaying and validating the project config.

Order: find the file (``--config``, ``MLDOCK_CONFIG``, else ``mldock.toml`` or a ``pyproject.toml``
with ``[tool.mldock]`` in the current folder or a parent) → parse TOML (size and nesting bounded) →
refuse literal secrets → validate the base → overlay ``[env.<name>]`` (``--env`` or ``MLDOCK_ENV``)
→ read ``env:NAME`` URIs → validate the result and the paths it names → validate every backend
section with its plugin's model. The first problem becomes one
:class:`~mldock.errors.ConfigError` line: file, key path, what is wrong.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mldock.concerns import SECTION_CONCERN, selection
from mldock.config.files import (
    CONFIG_FILE,
    PYPROJECT,
    broken_pyproject,
    display_name,
    find_config_file,
    read_config_file,
)
from mldock.config.model import ENV_NAME, TOP_LEVEL_KEYS, MldockConfig
from mldock.config.paths import path_problem
from mldock.config.secrets import ENV_HINT, ENV_PREFIX, find_secret, is_secret_key, redact_data
from mldock.errors import ConfigError, MldockError, PluginError

if TYPE_CHECKING:  # pragma: no cover
    from mldock.host.registry import Registry

URI_KEYS = (("storage", "uri"), ("tracking", "uri"))
"""Keys whose value may be ``"env:NAME"``: a URI that carries credentials comes from the
environment, never from the file."""


@dataclass(frozen=True)
class ResolvedConfig:
    """A validated config, with the environment overlay applied.

    Attributes:
        path: the file it came from.
        project_dir: the folder holding that file; relative paths in the config are from here.
        env: the active environment, or ``None``.
        environments: every environment the file defines.
        data: the merged config as plain data (what ``mldock config show`` prints).
        model: the validated core model.
        backend_options: (concern, backend name) -> validated options of that backend.
    """

    path: Path
    project_dir: Path
    env: str | None
    environments: tuple[str, ...]
    data: Mapping[str, Any]
    model: MldockConfig
    backend_options: Mapping[tuple[str, str], Any] = field(default_factory=dict)

    def options(self, concern: str, name: str) -> Any:
        """The validated options of backend ``name`` of ``concern``, or ``None``."""
        return self.backend_options.get((concern, name))

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.project_dir / path)

    @property
    def storage_uri(self) -> str:
        """``[storage] uri`` with a plain or relative path made absolute (``file://…``)."""
        uri = self.model.storage.uri
        if "://" not in uri:
            return self.resolve_path(uri).resolve().as_uri()
        return uri

    @property
    def tracking_uri(self) -> str:
        """``[tracking] uri`` with a relative SQLite path made absolute."""
        uri = self.model.tracking.uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + str(self.resolve_path(uri[len("sqlite:///"):]).resolve())
        return uri


def load_config(start: Path | None = None, *, env: str | None = None, path: Path | None = None,
                registry: Registry | None = None) -> ResolvedConfig:
    """Find and validate the project config. ``registry`` validates backend sections."""
    path = path or find_config_file(start)
    if path is None:
        where = (start or Path.cwd()).resolve()
        broken = broken_pyproject(where)
        raise MldockError(f"no {CONFIG_FILE} (or [tool.mldock] in {PYPROJECT}) in {where} or its"
                          " parents" + (f"; {broken}" if broken else ""),
                          hint="run 'mldock init NAME' to create a project", exit_code=2)
    project_dir = _project_dir(path)
    name = display_name(path)
    prefix = "tool.mldock." if path.name == PYPROJECT else ""
    raw = read_config_file(path)
    _check_secrets(name, raw, prefix)
    envs = raw.get("env", {})
    if not isinstance(envs, dict):
        raise ConfigError(name, f"{prefix}env", "must be a table of environments ([env.NAME])")
    for env_name, overlay in envs.items():
        if not re.fullmatch(ENV_NAME, env_name):
            raise ConfigError(name, f"{prefix}env.{env_name}", "invalid environment name: use"
                              " lowercase letters, digits, '-' and '_'")
        if not isinstance(overlay, dict):
            raise ConfigError(name, f"{prefix}env.{env_name}", "must be a table")
        if "env" in overlay:
            raise ConfigError(name, f"{prefix}env.{env_name}.env", "environments cannot be nested")
    base = {k: v for k, v in raw.items() if k != "env"}
    _validate_core(name, base, prefix, overlay=None)

    # None: take MLDOCK_ENV; "": the base config explicitly
    env = (os.environ.get("MLDOCK_ENV") or None) if env is None else (env or None)
    merged = base
    if env is not None:
        if env not in envs:
            defined = ", ".join(sorted(envs)) or "none"
            raise ConfigError(name, f"{prefix}env", f"no environment {env!r} (defined: {defined})",
                              hint=f"add an [env.{env}] table or pick one of the defined")
        merged = deep_merge(base, envs[env])
    overlay = (env, envs.get(env)) if env else None
    model = _validate_core(name, _expand_uris(name, merged, prefix, overlay), prefix, overlay)
    _check_paths(name, model, project_dir, prefix, overlay)
    options = _validate_backends(name, model, merged, prefix, env, envs.get(env) if env else None,
                                 registry) if registry is not None else {}
    if registry is not None and model.tune is not None:  # the deployers' tuners: mldock.tuning
        from mldock.tuning.validate import tune_problem

        found = tune_problem(model, registry)
        if found:
            loc, problem, hint = found
            raise ConfigError(name, _key_path(prefix, ("tune", *loc), overlay), problem,
                              hint=hint or None)
    return ResolvedConfig(path=project_dir / path.name, project_dir=project_dir, env=env,
                          environments=tuple(sorted(envs)), data=redact_data(merged), model=model,
                          backend_options=options)


def _project_dir(path: Path) -> Path:
    try:
        return path.resolve().parent
    except (OSError, RuntimeError):  # a link loop: reading the file reports it precisely
        return path.absolute().parent


def _expand_uris(file: str, data: dict[str, Any], prefix: str,
                 overlay: tuple[str, Any] | None) -> dict[str, Any]:
    """``data`` with each ``uri = "env:NAME"`` replaced by the variable's value. The stored and
    shown config keeps the reference, so a URI with a password never leaves the environment."""
    out = data
    for section, key in URI_KEYS:
        table = data.get(section)
        value = table.get(key) if isinstance(table, dict) else None
        if not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
            continue
        variable = value[len(ENV_PREFIX):]
        where = _key_path(prefix, (section, key), overlay)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
            raise ConfigError(file, where, f"invalid environment variable name {variable!r}",
                              hint='write "env:NAME" with letters, digits and _')
        found = os.environ.get(variable)
        if found is None:
            raise ConfigError(file, where, f"environment variable {variable!r} is not set",
                              hint="export it before running mldock; the config only names it")
        out = deep_merge(out, {section: {key: found}})
    return out


def _check_paths(file: str, model: MldockConfig, project_dir: Path, prefix: str,
                 overlay: tuple[str, Any] | None) -> None:
    loc, problem, hint = path_problem(model, project_dir)
    if loc:
        raise ConfigError(file, _key_path(prefix, loc, overlay), problem, hint=hint)


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` on top of ``base``: tables merge key by key, everything else is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- validation helpers -----------------------------------------------------------------------


def _key_path(prefix: str, loc: tuple[Any, ...], overlay: tuple[str, Any] | None) -> str:
    parts = [str(p) for p in loc]
    if overlay is not None:
        env_name, table = overlay
        node: Any = table
        found = 0
        for part in parts:
            if isinstance(node, dict) and part in node:
                node, found = node[part], found + 1
            else:
                break
        # the whole path is in the overlay, or a table the overlay defines lacks a key
        if found == len(parts) or (found and found == len(parts) - 1 and isinstance(node, dict)):
            return f"{prefix}env.{env_name}." + ".".join(parts)
    return prefix + ".".join(parts)


def _check_secrets(file: str, node: Any, prefix: str) -> None:
    """Refuse the first literal secret anywhere in the file (overlays and lists included)."""
    found = find_secret(node)
    if found is not None:
        path, problem = found
        hint = ENV_HINT
        if "URI" in problem:
            hint = ('put the whole URI in an environment variable and write uri = "env:NAME"'
                    " ([storage] and [tracking]), or drop 'user:password@' and use the backend's"
                    ' "env:NAME" credential options')
        raise ConfigError(file, prefix + ".".join(path), problem, hint=hint)


def describe_validation_error(exc: ValidationError) -> tuple[tuple[Any, ...], str]:
    """(location, one-line problem) of the first error, plus a count of the others."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    value = first.get("input")
    if kind == "extra_forbidden":
        problem = "unknown key"
    elif kind == "missing":
        problem = "required key is missing"
    else:
        problem = first["msg"]
        if not isinstance(value, (dict, list)) and value is not None and not (
                loc and is_secret_key(str(loc[-1]))):
            problem += f" (got {value!r})"
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return loc, problem


def _validate_core(file: str, data: dict[str, Any], prefix: str,
                   overlay: tuple[str, Any] | None) -> MldockConfig:
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(key, sorted(TOP_LEVEL_KEYS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            raise ConfigError(file, _key_path(prefix, (key,), overlay), "unknown section",
                              hint=hint)
    try:
        model = MldockConfig.model_validate(data)
    except ValidationError as exc:
        loc, problem = describe_validation_error(exc)
        hint = None
        if problem.startswith("unknown key") and len(loc) >= 2:
            section = getattr(MldockConfig.model_fields.get(str(loc[0])), "annotation", None)
            fields = sorted(getattr(section, "model_fields", {}) or {})
            close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
        raise ConfigError(file, _key_path(prefix, loc, overlay), problem, hint=hint) from None
    for section in SECTION_CONCERN:
        sect = getattr(model, section)
        for key, value in sect.backend_sections().items():
            if not isinstance(value, dict):
                fields = sorted(type(sect).model_fields)
                close = difflib.get_close_matches(key, fields, n=1)
                raise ConfigError(file, _key_path(prefix, (section, key), overlay), "unknown key",
                                  hint=f"did you mean {close[0]!r}?" if close else
                                  f"backend options go in a table: [{section}.<backend>]")
    return model


def _validate_backends(file: str, model: MldockConfig, data: dict[str, Any], prefix: str,
                       env: str | None, overlay_table: Any, registry: Registry) -> dict:
    from mldock.errors import BackendConflictError, UnknownBackendError

    overlay = (env, overlay_table) if env else None
    options: dict[tuple[str, str], Any] = {}
    selected = _selected_backends(file, model, prefix, overlay, registry)
    for section, concern in SECTION_CONCERN.items():
        tables = dict(getattr(model, section).backend_sections())
        if selected[section] is not None:
            tables.setdefault(selected[section], {})
        for name, table in tables.items():
            key = _key_path(prefix, (section, name), overlay)
            try:
                record = registry.backend(concern, name)
                config_model: type[BaseModel] | None = record.load_config_model()
            except BackendConflictError:
                continue  # two plugins claim this name: only a command that uses it fails
            except UnknownBackendError as exc:
                raise ConfigError(file, key, exc.message, hint=exc.hint) from None
            except PluginError as exc:
                raise ConfigError(file, key, exc.message, hint=exc.hint) from None
            if config_model is None:
                if table:
                    raise ConfigError(file, key, f"{concern} {name!r} takes no options")
                continue
            try:
                options[(concern, name)] = config_model.model_validate(table)
            except ValidationError as exc:
                loc, problem = describe_validation_error(exc)
                raise ConfigError(file, _key_path(prefix, (section, name, *loc), overlay),
                                  problem) from None
    return options


def _selected_backends(file: str, model: MldockConfig, prefix: str, overlay: tuple[str, Any] | None,
                       registry: Registry) -> dict[str, str | None]:
    """Resolve which backend each section selects; unknown names and schemes are config errors."""
    from mldock.errors import BackendConflictError, UnknownBackendError

    selected: dict[str, str | None] = {}
    for section, concern in SECTION_CONCERN.items():
        chosen = selection(concern, model)
        try:
            selected[section] = registry.select(chosen).name
        except BackendConflictError:
            selected[section] = None  # reported by the command that builds this backend
        except (UnknownBackendError, PluginError) as exc:
            raise ConfigError(file, _key_path(prefix, chosen.key, overlay), exc.message,
                              hint=exc.hint) from None
    return selected
