"""The options of every installed backend, written from its pydantic config model.

Each backend record may name a config model validating ``[<section>.<backend>]`` of
``mldock.toml``. This module reads every record the plugin host registers (so a plugin added to the
workspace appears on the next site build) and writes one table per model: field, type, default,
limits and the description from the model's ``Attributes:`` docstring section (or the field's own
``description``). Nothing is copied by hand, so the page cannot drift from the models.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any

# the concern of a backend -> the mldock.toml section holding its options table
SECTIONS = {"builder": "build", "storage": "storage", "tracker": "tracking", "deployer": "deploy"}

_ENTRY = re.compile(r"^    (?P<names>[a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*): (?P<text>.*)$")
_LIMITS = (("ge", "≥ {}"), ("gt", "> {}"), ("le", "≤ {}"), ("lt", "< {}"),
           ("min_length", "length ≥ {}"), ("max_length", "length ≤ {}"),
           ("pattern", "matches `{}`"))


def _rst_to_md(text: str) -> str:
    return text.replace("``", "`")


def attribute_docs(model: type) -> dict[str, str]:
    """Field name -> description, from the Google-style ``Attributes:`` section of the docstring.

    An entry may name several fields (``instance_type, instance_count: …``); each gets the text.
    """
    doc = inspect.getdoc(model) or ""
    found: dict[str, str] = {}
    current: list[str] = []
    inside = False
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):  # the next section
            break
        match = _ENTRY.match(line)
        if match:
            current = match["names"].split(", ")
            for name in current:
                found[name] = match["text"].strip()
        elif line.strip() and current:
            for name in current:
                found[name] += " " + line.strip()
    return {name: _rst_to_md(text) for name, text in found.items()}


def type_name(annotation: Any) -> str:
    """A readable type: ``int``, ``list[str]``, ``"env:NAME"`` for a secret, ``"a" | "b"``."""
    if annotation is type(None):
        return "none"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return " or ".join(f'"{a}"' for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if getattr(annotation, "__name__", "") == "SecretRef":
        return '"env:NAME" (a secret, by variable name)'
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if value in ([], {}):
        return "`[]`" if value == [] else "`{}`"
    return f"`{value}`"


def _limits(field: Any) -> str:
    found = []
    for item in field.metadata:
        for attr, form in _LIMITS:
            value = getattr(item, attr, None)
            if value is not None:
                found.append(form.format(value))
    return ", ".join(found)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def options_table(model: type) -> str:
    """The markdown table of one config model's fields."""
    docs = attribute_docs(model)
    rows = ["| option | type | default | limits | what it does |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        text = field.description or docs.get(name, "")
        rows.append(f"| `{name}` | {_cell(type_name(field.annotation))} | {_default(field)} |"
                    f" {_cell(_limits(field))} | {_cell(text) or '—'} |")
    return "\n".join(rows)


def backends() -> list[tuple[str, str, Any, str]]:
    """``(concern, name, record, distribution)`` of every registered backend, sorted."""
    from mldock.host import get_host

    host = get_host()
    distribution = {info.name: info.distribution
                    for info in host.sorted_plugins(include_builtin=True)}
    found = []
    for concern in SECTIONS:
        for name, registered in host.registry.records(concern).items():
            found.append((concern, name, registered.record,
                          distribution.get(registered.plugin, registered.plugin)))
    return sorted(found, key=lambda item: (item[3] != "mldock-core", item[3], item[0], item[1]))


def plugin_options() -> str:
    """One section per backend: its package, its table in ``mldock.toml``, options, example."""
    out = []
    for concern, name, record, dist in backends():
        section = f"[{SECTIONS[concern]}.{name}]"
        out += [f"### {concern} `{name}` ({dist})", "", _cell(record.summary), ""]
        model = record.load_config_model()
        if model is None:
            out += [f"No options: `{section}` is not accepted.", ""]
        else:
            doc = (inspect.getdoc(model) or "").split("\n\n")[0]
            where = (f"`{section}` in `mldock.toml`, validated by"
                     f" `{model.__module__}.{model.__name__}`")
            out += [f"{where}: {_rst_to_md(' '.join(doc.split()))}", "", options_table(model), ""]
        if record.example.strip():
            out += ["Example:", "", "```toml", record.example.strip(), "```", ""]
    return "\n".join(out)
