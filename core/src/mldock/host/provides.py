"""What each installed plugin provides, remembered between runs so start-up need not import it.

A plugin is imported only when a command needs something it provides (a backend name, a URI
scheme, a command group). To know which plugin that is without importing every one, the host keeps
a small JSON file per Python environment: for each entry point, a fingerprint (distribution,
version, entry-point target, and the size and modification time of the entry-point module's file)
and the names it registered. A plugin whose fingerprint changed, or that was never seen, is simply
imported, and its entry refreshed.

The cache is a hint, never the truth: a lookup that finds nothing among the plugins it suggests
loads every remaining plugin before saying a name is unknown, so a stale file can cost time but
never give a wrong answer. ``MLDOCK_PLUGIN_CACHE=0`` turns it off; ``MLDOCK_CACHE_DIR`` moves it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from importlib.util import find_spec
from pathlib import Path
from typing import Any

CACHE_FORMAT = 1


@dataclass(frozen=True)
class Provided:
    """The names one plugin registered, by concern.

    Attributes:
        names: concern -> record names (``{"deployer": ["sagemaker"]}``).
        schemes: concern -> URI schemes its storage and tracker records serve.
        commands: command name -> the one-line summary ``mldock --help`` shows.
    """

    names: dict[str, list[str]] = field(default_factory=dict)
    schemes: dict[str, list[str]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)

    def offers(self, concern: str, *, name: str | None = None, scheme: str | None = None) -> bool:
        """Whether this plugin registered ``name`` (or serves ``scheme``) for ``concern``."""
        if name is not None and name in self.names.get(concern, ()):
            return True
        return scheme is not None and scheme in self.schemes.get(concern, ())

    def to_json(self) -> dict[str, Any]:
        return {"names": self.names, "schemes": self.schemes, "commands": self.commands}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provided:
        return cls(names={k: list(v) for k, v in data.get("names", {}).items()},
                   schemes={k: list(v) for k, v in data.get("schemes", {}).items()},
                   commands=dict(data.get("commands", {})))


def _module_file(target: str) -> Path | None:
    """The source file of an entry point's module, found without importing anything."""
    module = target.partition(":")[0].strip()
    top, _, rest = module.partition(".")
    try:
        spec = find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin else None
    for location in spec.submodule_search_locations or ():
        base = Path(location, *rest.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def fingerprint(ep: EntryPoint) -> str:
    """Changes whenever the plugin may register something else: a new version, a new target, or
    an edited entry-point module (editable installs keep their version while the code changes)."""
    dist = getattr(ep, "dist", None)
    parts = [ep.value, dist.name if dist else "", dist.version if dist else ""]
    source = _module_file(ep.value)
    if source is not None:
        try:
            status = source.stat()
            parts += [str(source), str(status.st_size), str(status.st_mtime_ns)]
        except OSError:
            parts.append("unreadable")
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _enabled() -> bool:
    return os.environ.get("MLDOCK_PLUGIN_CACHE", "1").strip().lower() not in {"0", "false", "no",
                                                                               "off"}


def cache_path() -> Path:
    """One file per Python environment (keyed by ``sys.prefix``) under the user's cache folder."""
    root = os.environ.get("MLDOCK_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) / ("" if os.environ.get("MLDOCK_CACHE_DIR") else "mldock") if root \
        else Path.home() / ".cache" / "mldock"
    key = hashlib.sha256(sys.prefix.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return base / f"plugins-{key}.json"


class ProvidesCache:
    """Read once, written back only when something new was learnt (atomic replace)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        if path is not None:
            self._entries = self._read(path)

    @classmethod
    def default(cls) -> ProvidesCache:
        return cls(cache_path() if _enabled() else None)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            return {}
        entries = data.get("plugins")
        return entries if isinstance(entries, dict) else {}

    def lookup(self, name: str, print_: str) -> Provided | None:
        """What plugin ``name`` provided when its fingerprint was ``print_``, if known."""
        entry = self._entries.get(name)
        if not isinstance(entry, dict) or entry.get("fingerprint") != print_:
            return None
        try:
            return Provided.from_json(entry["provides"])
        except (KeyError, TypeError, AttributeError):
            return None

    def remember(self, name: str, print_: str, provided: Provided) -> None:
        entry = {"fingerprint": print_, "provides": provided.to_json()}
        if self._entries.get(name) != entry:
            self._entries[name] = entry
            self._dirty = True

    def save(self) -> None:
        """Write the file if it changed; a read-only home only costs the next run some time."""
        if self.path is None or not self._dirty:
            return
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".plugins-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"format": CACHE_FORMAT, "plugins": self._entries}, handle, indent=1,
                          sort_keys=True)
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
