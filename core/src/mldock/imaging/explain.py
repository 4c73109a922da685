"""Why an image is (re)built: the inputs manifest of the last build, and what changed since.

After every successful ``mldock build`` (built or already up to date) the build's
:class:`~mldock.imaging.inputs.InputManifest` is written to ``.mldock/build/last-inputs.json`` in
the project. ``mldock build --explain`` compares the current inputs to it, and ``mldock train``
uses it to say *which* input differs when it refuses an image that was not built for the current
code.

Why a file under ``.mldock/`` and not an image label: the record stays on the machine that built
(paths and hashes of the user's files are not published with every pushed image); reading it costs
no engine call, so it works the same for every builder plugin; and it survives ``--env``
switches, since every environment shares the project's one image. The price: a fresh clone has no
record, and then the explanation says so instead of guessing.

The record holds hashes only, never file contents: a requirements line is stored as a short hash,
and an added line is shown from the file on disk with URL credentials masked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mldock.imaging.dockerfile import BUILD_DIR, CA_BUNDLE_PATH, RUNTIME_DIR
from mldock.imaging.inputs import InputManifest, line_hash

RECORD_PATH = Path(".mldock") / "build" / "last-inputs.json"
"""Where the last build's manifest is kept, relative to the project folder."""

MAX_LINES = 20

CONFIG_LABELS = {
    "base_image": "base image", "system_packages": "system packages",
    "project": "[project] name", "train": "[project] train", "predictor": "[project] predictor",
    "source": "[project] source", "requirements": "[project] requirements",
    "extra_ca_bundle": "[build] extra_ca_bundle", "pip_index_url": "[build] pip_index_url",
}
"""Labels of the ``config:`` items (the fields of :class:`.dockerfile.DockerfileSpec`)."""

_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


@dataclass(frozen=True)
class BuildRecord:
    """The last build of a project: its tag and inputs."""

    tag: str
    manifest: InputManifest


def read_record(project_dir: Path) -> BuildRecord | None:
    """The last build's record, or ``None`` when there is none (or it cannot be read)."""
    try:
        data = json.loads((Path(project_dir) / RECORD_PATH).read_text("utf-8"))
        return BuildRecord(tag=str(data["tag"]), manifest=InputManifest.from_json(data))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(project_dir: Path, tag: str, manifest: InputManifest) -> None:
    """Replace the record atomically (a concurrent reader sees the old or the new one)."""
    path = Path(project_dir) / RECORD_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"tag": tag, **manifest.to_json()}, indent=1) + "\n", "utf-8")
    os.replace(temporary, path)


def changes(old: InputManifest, new: InputManifest,
            read_text: Callable[[str], str | None] = lambda path: None) -> list[str]:
    """What differs from ``old`` to ``new``, one ``"<changed|added|removed>: <what>"`` per line.

    ``read_text(path)`` gives a current file's text, to show added requirements lines.
    """
    keys = sorted(set(old.items) | set(new.items))
    statuses = {key: _status(old.items.get(key), new.items.get(key)) for key in keys}
    diff = {key: status for key, status in statuses.items() if status}
    lines: list[str] = []
    config_changed = False
    for key, status in diff.items():
        if key.startswith(("config:", "arg:")) or key in ("mldock", "platform"):
            config_changed = True
            lines.append(_setting_line(key, status, old.items.get(key), new.items.get(key)))
    if "dockerfile" in diff and not config_changed:
        lines.append("changed: Dockerfile")
    runtime = [key for key in diff if key.split(":", 1)[-1].startswith(RUNTIME_DIR + "/")]
    if runtime and "mldock" not in diff:
        lines.append(f"changed: mldock runtime ({len(runtime)} files)")
    folders: list[str] = []
    for key, status in diff.items():
        kind, _, path = key.partition(":")
        if kind not in ("file", "dir", "link") or path.startswith(RUNTIME_DIR + "/"):
            continue
        if path == CA_BUNDLE_PATH:
            lines.append(f"{status}: extra CA bundle")
        elif kind == "dir":
            folders.append(f"{status}: {path}/")
        elif status == "changed" and path in old.lines and path in new.lines:
            lines.extend(_line_changes(path, old.lines[path], new.lines[path], read_text))
        elif not path.startswith(BUILD_DIR + "/"):
            lines.append(f"{status}: {path}")
    return lines or folders


def summary(lines: list[str], limit: int = MAX_LINES) -> list[str]:
    """``lines`` cut to ``limit``, with a last line saying how many more there are."""
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"… and {len(lines) - limit} more"]


def mask(text: str) -> str:
    """``text`` with URL credentials replaced by ``***`` (a requirement may carry a token)."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def _status(old: str | None, new: str | None) -> str | None:
    if old == new:
        return None
    return "added" if old is None else "removed" if new is None else "changed"


def _setting_line(key: str, status: str, old: str | None, new: str | None) -> str:
    kind, _, name = key.partition(":")
    if kind == "arg":
        return f"{status}: build arg {name}"
    label = {"mldock": "mldock version", "platform": "platform"}.get(key) \
        or CONFIG_LABELS.get(name, name)
    if status == "changed":
        return f"changed: {label} ({mask(old or '')!r} → {mask(new or '')!r})"
    return f"{status}: {label}"


def _line_changes(path: str, old: tuple[str, ...], new: tuple[str, ...],
                  read_text: Callable[[str], str | None]) -> list[str]:
    """Added lines by their (masked) text, removed ones by count; else "changed: <path>"."""
    text = read_text(path) or ""
    current: Mapping[str, str] = {line_hash(line): line.strip() for line in text.splitlines()
                                  if line.strip()}
    before, after = set(old), set(new)
    result = [f"added: {path} line {mask(current.get(digest, '?'))[:100]!r}"
              for digest in new if digest not in before]
    removed = sum(1 for digest in old if digest not in after)
    if removed:
        result.append(f"removed: {path} line{'s' if removed > 1 else ''} ({removed})")
    return result or [f"changed: {path}"]
