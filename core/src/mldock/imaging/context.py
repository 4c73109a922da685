"""The build context: which project files go to the builder, and the files mldock adds.

Two cases, chosen by :attr:`~mldock.interfaces.BuildRequest.include`:

* **mldock's rendered Dockerfile** (``include`` set): only the paths the Dockerfile ``COPY``s are
  sent (the requirements file, the source folder, the runtime, the CA bundle; see
  :mod:`mldock.imaging.copies`), plus the Dockerfile. The README, notebooks, tests, data, logs
  and ``outputs/`` never leave the disk, and they cannot change the image tag.
* **a user's Dockerfile** (``include`` is ``None``): the whole project folder, as ``docker build``
  would see it.

In both cases the project's ``.dockerignore`` applies, followed by mandatory excludes. The
mandatory ones come *last*, so a user's ``!`` pattern cannot bring a secret back, even inside the
source folder: ``.git``, ``.env`` files, keys and certificates, cloud credential folders, mldock's
own state, virtualenvs and caches. Pattern matching is the docker SDK's own
(``docker.utils.build.exclude_paths``), so the result is what ``docker build`` itself would send.

The effective ignore list travels with the request as the extra file ``.dockerignore`` (it starts
with ``*`` and ``!<source>`` lines when ``include`` is set), so a builder that honours
``.dockerignore`` on its own applies the same filter; builders that take a tar call
:func:`write_context_tar`.

mldock adds the in-container runtime (``mldock/__init__.py`` and ``mldock/runtime/**.py`` copied
from the installed package) under ``.mldock-runtime/mldock/`` and the ``mldock-runtime``, ``train``
and ``serve`` shims under ``.mldock-runtime/bin/`` (mode 755).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mldock.errors import MldockError
from mldock.imaging.copies import WHOLE_CONTEXT, is_read
from mldock.imaging.dockerfile import BUILD_DIR, DOCKERFILE_PATH, RUNTIME_DIR

if TYPE_CHECKING:  # pragma: no cover
    from mldock.interfaces import BuildRequest

DOCKERIGNORE = ".dockerignore"

MANDATORY_EXCLUDES: tuple[str, ...] = (
    # version control and editor state
    ".git", "**/.git", ".hg", "**/.hg", ".svn", "**/.svn",
    # secrets: env files, keys, certificates, credential files and folders
    ".env", "**/.env", ".env.*", "**/.env.*", "*.env", "**/*.env",
    "*.pem", "**/*.pem", "*.key", "**/*.key", "*.p12", "**/*.p12", "*.pfx", "**/*.pfx",
    "id_rsa*", "**/id_rsa*", "id_ed25519*", "**/id_ed25519*",
    ".aws", "**/.aws", ".azure", "**/.azure", ".ssh", "**/.ssh", ".gcloud", "**/.gcloud",
    ".config/gcloud", ".kube", "**/.kube", ".docker", "**/.docker",
    "credentials", "**/credentials", "credentials.json", "**/credentials.json",
    "*credentials*.json", "**/*credentials*.json", "service-account*.json",
    "**/service-account*.json", ".netrc", "**/.netrc", ".pypirc", "**/.pypirc",
    ".npmrc", "**/.npmrc", ".git-credentials", "**/.git-credentials",
    # mldock state (runs database, local artifacts), environments, caches
    ".mldock", "**/.mldock", ".venv", "**/.venv", "venv", "__pycache__", "**/__pycache__",
    "*.pyc", "**/*.pyc", ".pytest_cache", "**/.pytest_cache", ".mypy_cache", "**/.mypy_cache",
    ".ruff_cache", "**/.ruff_cache", ".ipynb_checkpoints", "**/.ipynb_checkpoints",
    ".DS_Store", "**/.DS_Store", "mlruns", "wandb",
)
"""Always excluded, after the user's ``.dockerignore`` (so ``!`` cannot undo them)."""

SHIMS: dict[str, str] = {
    "mldock-runtime": 'exec python -m mldock.runtime "$@"',
    "train": 'exec python -m mldock.runtime train "$@"',
    "serve": 'exec python -m mldock.runtime serve "$@"',
}
"""Executables installed to ``/usr/local/bin`` (SageMaker runs ``docker run IMAGE train``)."""

EXECUTABLE_DIRS = (f"{RUNTIME_DIR}/bin/",)
"""Extra files under these context folders are written with mode 755."""


@dataclass(frozen=True)
class ContextEntry:
    """One path of the build context as the builder receives it.

    Attributes:
        path: POSIX path relative to the context root.
        kind: ``"file"``, ``"dir"`` or ``"symlink"``.
        mode: permission bits (``0o644``, ``0o755``).
        source: the file on disk, or ``None`` for an extra file mldock adds.
        data: the bytes of an extra file (``None`` for files on disk).
        target: a symlink's target.
    """

    path: str
    kind: str
    mode: int
    source: Path | None = None
    data: bytes | None = None
    target: str = ""


# --- ignore patterns ----------------------------------------------------------------------------


def read_dockerignore(context_dir: Path) -> list[str]:
    """The patterns of ``context_dir/.dockerignore`` (parsed as the docker SDK parses it)."""
    path = Path(context_dir) / DOCKERIGNORE
    if not path.is_file():
        return []
    lines = path.read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def ignore_patterns(project_dir: Path, sources: tuple[str, ...] | None) -> list[str]:
    """The effective ``.dockerignore`` of a build.

    ``sources`` are the context paths the Dockerfile reads (its ``COPY`` sources) or ``None`` for
    the whole context (a user's Dockerfile). With sources, everything else is excluded first
    (``*`` then ``!<source>``), so a builder that applies this file on its own sends what mldock
    sends. Then the project's patterns, then the mandatory excludes (last, so ``!`` cannot bring a
    secret back), then re-includes of mldock's own folders, which the builder must receive.
    """
    narrowing: list[str] = []
    if sources is not None and WHOLE_CONTEXT not in sources:
        narrowing = ["*", *(f"!{source}" for source in sources)]
    return [*narrowing, *read_dockerignore(project_dir), *MANDATORY_EXCLUDES,
            f"!{RUNTIME_DIR}", f"!{BUILD_DIR}"]


def dockerignore_text(patterns: Iterable[str]) -> str:
    """The ``.dockerignore`` file mldock hands to builders, with a header saying where it's from."""
    return ("# Written by mldock: what the Dockerfile copies, the project's .dockerignore, then"
            " mldock's mandatory excludes.\n" + "\n".join(patterns) + "\n")


def request_patterns(request: BuildRequest) -> list[str]:
    """The ignore patterns a request carries (its extra ``.dockerignore``, else the folder's)."""
    extra = request.extra_files.get(DOCKERIGNORE)
    if extra is None:
        return ignore_patterns(request.context_dir, request.include)
    lines = extra.decode("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


# --- files --------------------------------------------------------------------------------------


def context_paths(context_dir: Path, patterns: list[str]) -> list[str]:
    """Relative paths (files and folders) of ``context_dir`` that survive ``patterns``, sorted."""
    from docker.utils.build import exclude_paths

    root = Path(context_dir).resolve()
    if not root.is_dir():
        raise MldockError(f"build context {root} is not a folder")
    # exclude_paths appends '!<dockerfile>': name mldock's own Dockerfile, which is never on disk
    return sorted(exclude_paths(str(root), list(patterns), dockerfile=DOCKERFILE_PATH))


def context_entries(context_dir: Path, patterns: list[str], extra_files: Mapping[str, bytes],
                    include: tuple[str, ...] | None = None) -> list[ContextEntry]:
    """Every entry of the context, sorted by path; extra files replace same-named project files.

    With ``include`` (the Dockerfile's ``COPY`` sources), only entries those sources read are kept,
    whatever a ``!`` pattern in ``patterns`` re-included elsewhere.
    """
    root = Path(context_dir).resolve()
    entries: dict[str, ContextEntry] = {}
    for relative in context_paths(root, patterns):
        if include is not None and not is_read(relative, include):
            continue
        full = root / relative
        info = full.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            entries[relative] = ContextEntry(relative, "symlink", mode, source=full,
                                             target=os.readlink(full))
        elif stat.S_ISDIR(info.st_mode):
            entries[relative] = ContextEntry(relative, "dir", mode, source=full)
        elif stat.S_ISREG(info.st_mode):
            entries[relative] = ContextEntry(relative, "file", mode, source=full)
        # sockets, fifos and devices are skipped, as the docker SDK skips them
    for relative, data in extra_files.items():
        if include is None or is_read(relative, include):
            entries[relative] = ContextEntry(relative, "file", extra_file_mode(relative), data=data)
    return [entries[key] for key in sorted(entries)]


def request_entries(request: BuildRequest) -> list[ContextEntry]:
    """The entries a builder sends for ``request``, the Dockerfile (at ``DOCKERFILE_PATH``)
    included."""
    entries = context_entries(request.context_dir, request_patterns(request),
                              request.extra_files, request.include)
    dockerfile = ContextEntry(DOCKERFILE_PATH, "file", 0o644,
                              data=request.dockerfile.encode("utf-8"))
    kept = [entry for entry in entries if entry.path != DOCKERFILE_PATH]
    return sorted([*kept, dockerfile], key=lambda entry: entry.path)


def extra_file_mode(relative: str) -> int:
    """Mode of a file mldock adds: 755 for the shims, 644 for everything else."""
    return 0o755 if relative.startswith(EXECUTABLE_DIRS) else 0o644


def runtime_files() -> dict[str, bytes]:
    """The runtime and shims, keyed by their path in the context.

    Copies ``mldock/__init__.py`` and every ``.py`` file of ``mldock/runtime/`` from the installed
    package, so the image runs exactly the runtime of the mldock that built it.
    """
    import mldock

    package = Path(mldock.__file__).resolve().parent
    runtime = package / "runtime"
    if not (runtime / "__init__.py").is_file():
        raise MldockError(f"the mldock runtime is missing from the installed package ({runtime})",
                          hint="reinstall mldock-core")
    files = {f"{RUNTIME_DIR}/mldock/__init__.py": (package / "__init__.py").read_bytes()}
    for path in sorted(runtime.rglob("*.py")):
        relative = path.relative_to(package)
        if "__pycache__" in relative.parts:
            continue
        files[f"{RUNTIME_DIR}/mldock/{relative.as_posix()}"] = path.read_bytes()
    for name, command in SHIMS.items():
        files[f"{RUNTIME_DIR}/bin/{name}"] = f"#!/bin/sh\n{command}\n".encode()
    return files


# --- the tar a builder sends --------------------------------------------------------------------


def write_context_tar(request: BuildRequest, fileobj: IO[bytes] | None = None) -> IO[bytes]:
    """Write the request's context as an uncompressed tar (Dockerfile at ``DOCKERFILE_PATH``).

    Returns the file object rewound to the start. Owner is root and modification times are fixed
    for mldock's own files, so identical inputs give identical layer checksums.
    """
    import tempfile

    entries = request_entries(request)
    # the caller owns the returned file and closes it (builders use it as a context manager)
    out = fileobj if fileobj is not None else tempfile.TemporaryFile()  # noqa: SIM115
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = _tar_info(entry)
            if entry.data is not None:
                tar.addfile(info, io.BytesIO(entry.data))
            elif entry.kind == "file":
                with _source(entry).open("rb") as handle:  # streamed: large files stay on disk
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    out.seek(0)
    return out


def _source(entry: ContextEntry) -> Path:
    """The file an entry without inline data copies (an entry always has one or the other)."""
    if entry.source is None:
        raise ValueError(f"context entry {entry.path!r} has neither data nor a source file")
    return entry.source


def _tar_info(entry: ContextEntry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode = entry.mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if entry.data is not None:
        info.size = len(entry.data)
        info.mtime = 0
        return info
    status = _source(entry).lstat()
    info.mtime = int(status.st_mtime)
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.size = status.st_size
    return info
