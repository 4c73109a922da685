"""Finding and reading the config file, with each way a file can be wrong named precisely.

A folder, a link loop, a broken link, a file over 1 MiB, non-UTF-8 bytes, a TOML syntax error or
nesting deeper than 32 levels is each one :class:`~mldock.errors.ConfigError` naming the file —
never "no mldock.toml" and never a traceback.
"""

from __future__ import annotations

import errno
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from mldock.errors import ConfigError

CONFIG_FILE = "mldock.toml"
PYPROJECT = "pyproject.toml"
MAX_BYTES = 1024 * 1024
"""A config larger than this is not a config (a wrong file, or an attempt to exhaust memory)."""
MAX_DEPTH = 32
"""Tables and lists nested deeper than this are refused before anything walks them."""


def find_config_file(start: Path | None = None) -> Path | None:
    """The config file governing ``start`` (default: the current folder), or ``None``."""
    explicit = os.environ.get("MLDOCK_CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if os.path.lexists(candidate):  # a folder or a broken link is reported, not skipped
            return candidate
        pyproject = folder / PYPROJECT
        if pyproject.is_file() and _has_tool_section(pyproject):
            return pyproject
    return None


def _has_tool_section(pyproject: Path) -> bool:
    """Whether ``pyproject`` configures mldock; one that mentions ``tool.mldock`` but does not
    parse counts, so that its syntax error is reported instead of "no mldock.toml"."""
    try:
        text = pyproject.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        return "mldock" in tomllib.loads(text).get("tool", {})
    except (tomllib.TOMLDecodeError, RecursionError):
        return re.search(r"^\s*\[\s*tool\s*\.\s*mldock\b", text, re.MULTILINE) is not None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse the file; for ``pyproject.toml`` return its ``[tool.mldock]`` table."""
    name = display_name(path)
    text = _read_text(path, name)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, None, f"invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(name, None, f"invalid TOML: nested deeper than {MAX_DEPTH} levels"
                          ) from None
    _check_depth(name, doc)
    if path.name == PYPROJECT:
        tool = doc.get("tool", {}).get("mldock")
        if not isinstance(tool, dict):
            raise ConfigError(name, "tool.mldock", "missing table [tool.mldock]")
        return tool
    return doc


def broken_pyproject(where: Path) -> str | None:
    """Why the nearest ``pyproject.toml`` that could not be searched for ``[tool.mldock]`` was
    skipped, so that "no config" does not hide a syntax error in it."""
    for folder in (where, *where.parents):
        candidate = folder / PYPROJECT
        if not candidate.is_file():
            continue
        try:
            tomllib.loads(candidate.read_text("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            return f"{display_name(candidate)} could not be read ({exc})"
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            return f"{display_name(candidate)} is not valid TOML ({exc or 'nested too deeply'})"
    return None


def _read_text(path: Path, name: str) -> str:
    """The file's text; a folder, a link loop, a huge or non-UTF-8 file is one precise error."""
    try:
        if path.is_dir():
            raise ConfigError(name, None, "is a folder, not a config file",
                              hint=f"remove or rename it, or point --config at a {CONFIG_FILE}")
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        problem = (f"broken symbolic link (to {os.readlink(path)})" if os.path.islink(path)
                   else "file not found")
        raise ConfigError(name, None, problem,
                          hint="run 'mldock init' or point MLDOCK_CONFIG at a config") from None
    except OSError as exc:
        problem = ("symbolic link loop" if exc.errno == errno.ELOOP
                   else f"cannot read the file: {exc.strerror or exc}")
        raise ConfigError(name, None, problem) from None
    if len(data) > MAX_BYTES:
        raise ConfigError(name, None, f"larger than {MAX_BYTES // 1024} KiB: not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, None, f"cannot read the file: not UTF-8 ({exc.reason} at byte"
                          f" {exc.start})",
                          hint="TOML files are UTF-8") from None


def _check_depth(name: str, doc: Any) -> None:
    """Refuse deep nesting iteratively, before any recursive walk (copy, validation) meets it."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(doc, 0, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(name, ".".join(path[:3]) + ".…",
                              f"nested deeper than {MAX_DEPTH} levels")
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
        stack.extend((value, depth + 1, (*path, str(key))) for key, value in items)


def display_name(path: Path) -> str:
    """``path`` as the user knows it: relative to the current folder when below it; a link is
    named itself, not its target (which may not exist, or loop)."""
    try:
        shown = path.absolute() if path.is_symlink() else path.resolve()
        return str(shown.relative_to(Path.cwd().resolve()))
    except (OSError, RuntimeError):  # a link loop higher up
        return str(path)
    except ValueError:
        return str(path)
