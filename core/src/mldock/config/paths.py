"""Checks of the files and folders the config names, done when the config is loaded.

``build`` needs the source folder and the requirements file inside the project (the project folder
is the build context), and reads ``[build] dockerfile`` and ``extra_ca_bundle``. Checking them here
means ``mldock config validate`` — and every command, since each loads the config — reports a wrong
path before a build starts, as one line naming the key.
"""

from __future__ import annotations

from pathlib import Path

from mldock.config.model import MldockConfig

UNCOPYABLE = "\n\"'\\$ "
"""Characters a Dockerfile ``COPY`` line cannot carry safely."""


def path_problem(model: MldockConfig, project_dir: Path) -> tuple[tuple[str, ...], str, str | None]:
    """The first path the config names that ``build`` would refuse: (key path, problem, hint)."""
    project, build = model.project, model.build
    inside: list[tuple[tuple[str, ...], str, bool]] = [
        (("project", "source"), project.source, False)]
    if project.requirements:
        inside.append((("project", "requirements"), project.requirements, True))
    for loc, value, must_exist in inside:
        found = _inside_problem(project_dir, value, must_exist=must_exist, want_dir=not must_exist)
        if found:
            return loc, found[0], found[1]
    for loc, named in ((("build", "dockerfile"), build.dockerfile),
                       (("build", "extra_ca_bundle"), build.extra_ca_bundle)):
        if named and not _resolve(project_dir, named).is_file():
            return loc, f"file not found: {named!r}", "fix the path (relative to the config file)"
    return (), "", None


def _resolve(project_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else project_dir / path


def _inside_problem(project_dir: Path, value: str, *, must_exist: bool,
                    want_dir: bool) -> tuple[str, str | None] | None:
    try:
        root = project_dir.resolve()
        path = _resolve(project_dir, value).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        return f"cannot resolve {value!r}: {exc}", None
    try:
        relative = path.relative_to(root)
    except ValueError:
        return (f"{value!r} is outside the project folder",
                "the project folder is the build context: move it inside")
    if any(ch in relative.as_posix() for ch in UNCOPYABLE):
        return (f"{value!r} contains characters a Dockerfile cannot copy",
                "rename it using letters, digits, '.', '_', '-' and '/'")
    kind = "folder" if want_dir else "file"
    exists = path.is_dir() if want_dir else path.is_file()
    if not exists and (must_exist or path.exists()):
        return f"{kind} not found: {value!r}", None
    return None
