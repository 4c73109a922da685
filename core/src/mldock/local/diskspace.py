"""Saying "the disk is full" when it is, whatever layer noticed it first.

A full disk shows up as ``OSError(ENOSPC)`` (or ``EDQUOT``, a quota) from a write, as SQLite's
``SQLITE_FULL`` ("database or disk is full"), or as a bare SQLite "disk I/O error" when it could
not even create its ``-wal``/``-shm`` files. Each caller maps what it caught with
:func:`is_no_space` and raises :func:`no_space_error`, so the user reads one line naming the folder
to clean up, never "not a network share" or a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil

from mldock.errors import MldockError

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL = 13
SQLITE_IOERR = 10
NEARLY_FULL_BYTES = 1 << 20
"""Below this much free space, an unexplained write error is taken for a full disk."""


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free space for unprivileged writers on ``path``'s file system (its nearest existing
    folder), or ``None`` when it cannot be told."""
    current = os.path.abspath(os.fspath(path))
    while not os.path.exists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    try:
        return shutil.disk_usage(current).free
    except OSError:
        return None


def is_no_space(exc: BaseException, path: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``exc`` means the disk (of ``path``, when given) is full."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return False
    if code & 0xFF == SQLITE_FULL:
        return True
    if code & 0xFF == SQLITE_IOERR and path is not None:
        free = free_bytes(path)
        return free is not None and free < NEARLY_FULL_BYTES
    return False


def no_space_error(path: str | os.PathLike[str], *, setting: str | None = None) -> MldockError:
    """The one-line error for a full disk under ``path``; ``setting`` names the config key that
    could point elsewhere (``"[storage] uri"``)."""
    hint = "delete files you no longer need on that disk"
    if setting:
        hint += f", or set {setting} to a folder on a bigger disk"
    return MldockError(f"no space left on {os.fspath(path)}: free some space and try again",
                       hint=hint)
