"""Walking a folder that another program wrote, without ever reading outside it.

A model folder is written by the user's ``train`` (often inside a container) and read on the host
by the artifact stores and the platform packers. A link in it is read by the *host* process: a
``train`` that leaves ``env -> /proc/self/environ`` would copy the host's environment (cloud keys
included) into the store and, after ``deploy``, into the serving container. So every store and
packer walks model folders with :func:`walk_contained`, and reads files with :func:`open_entry`:

* **regular files and folders** are listed, folders descended into (sorted, ``/``-separated paths);
* **a link that points inside the folder** is stored as a copy of what it points at: a file link
  gives the target's bytes under the link's name (the content-addressed stores keep them once), a
  folder link gives the target's files under the link's name. This is ``tar --dereference`` /
  ``docker cp -L`` limited to the folder: the manifests of the stores have no "link" entry, and
  loaders open the link's name (``latest -> checkpoint-9``, Hugging Face's ``blobs/`` layout);
* **a link that leaves the folder** (absolute, ``..``, a chain with any hop outside, a folder link
  outside) is an :class:`UnsafeTreeError` naming the link: nothing is stored;
* **a link loop** (a folder link to its own ancestor, ``a -> b -> a``) is an error, never a hang;
* **a dangling link inside the folder** has no content and is left out;
* **FIFOs, sockets and device files** are an error naming the file: they are never opened (a FIFO
  would block the reader; a device node made by ``mknod`` in a container is the host's device).

:func:`open_entry` opens the resolved file with ``O_NOFOLLOW | O_NONBLOCK`` and checks it is the
very file (device and inode) the walk saw, so swapping a file for a link or a FIFO after the walk
is an error too. Hard links cannot point out of a container's bind mount (they cannot cross file
systems) and are stored as the regular files they are. Standard library only.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO, NamedTuple

from mldock.errors import MldockError

MAX_LINK_HOPS = 40
"""Links followed in one chain before it counts as a loop (Linux's own limit)."""
MAX_ENTRIES = 1_000_000
"""Files and folders listed before a walk gives up (folder links can multiply a tree)."""

LEAVE_HINT = ("links are stored only when they point inside the folder; write the file itself"
              " into the folder instead")
SPECIAL_HINT = "only regular files, folders and links inside the folder are stored; remove it"


class UnsafeTreeError(MldockError):
    """The folder holds something that must not be read: a link out, a loop, a FIFO, a device."""


class TreeEntry(NamedTuple):
    """One regular file of a walked folder."""

    rel: str
    """Its ``/``-separated path inside the folder (a link's own name for a linked file)."""
    path: Path
    """The real file to read: links resolved, always inside the folder."""
    size: int
    mode: int
    """Permission bits (``0o644``, ``0o755``, …) of the real file."""
    identity: tuple[int, int]
    """``(st_dev, st_ino)`` seen by the walk; :func:`open_entry` insists on the same file."""


def _shown(text: str) -> str:
    """A name as it may be printed: control characters and escapes are quoted, never emitted."""
    return text if text.isprintable() else repr(text)[1:-1]


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"


class _Walk:
    """One walk of ``base`` (a real, absolute path): the state the recursive steps share."""

    def __init__(self, base: str, what: str):
        self.base, self.what = base, what
        self.entries: list[TreeEntry] = []
        self.count = 0

    def inside(self, path: str) -> bool:
        return path == self.base or path.startswith(self.base.rstrip(os.sep) + os.sep)

    def error(self, problem: str, rel: str, hint: str) -> UnsafeTreeError:
        return UnsafeTreeError(f"{self.what} contains {problem}: {_shown(rel)}", hint=hint)

    def follow(self, link: str, rel: str) -> str | None:
        """The real path ``link`` ends at, every hop checked; ``None`` when it dangles."""
        current, chain = link, [rel]
        for _ in range(MAX_LINK_HOPS):
            text = os.readlink(current)
            chain.append(text)
            joined = os.path.join(os.path.dirname(current), text)
            head, tail = os.path.split(joined)
            if tail in ("", ".", ".."):
                target = os.path.realpath(joined)
            else:  # resolve the folders on the way, keep the last name to see if it links on
                target = os.path.join(os.path.realpath(head), tail)
            if not self.inside(target):
                raise self.error("a link that leaves it", " -> ".join(chain), LEAVE_HINT)
            if not os.path.islink(target):
                return target if os.path.lexists(target) else None
            current = target
        raise self.error("a link loop", " -> ".join(chain[:3]) + " -> …",
                         "make the link point at a file or folder, not back at itself")

    def walk(self, folder: str, prefix: str, ancestors: frozenset[tuple[int, int]]) -> None:
        """List ``folder`` (a real path inside base) as ``prefix``… entries."""
        with os.scandir(folder) as scan:
            names = sorted(item.name for item in scan)
        for name in names:
            self.count += 1
            if self.count > MAX_ENTRIES:
                raise UnsafeTreeError(f"{self.what} has more than {MAX_ENTRIES:,} entries",
                                      hint="check for folder links that repeat the tree")
            rel, real = prefix + name, os.path.join(folder, name)
            info = os.lstat(real)
            if stat.S_ISLNK(info.st_mode):
                target = self.follow(real, rel)
                if target is None:
                    continue  # a dangling link inside the folder: no content
                real, info = target, os.lstat(target)
            identity = (info.st_dev, info.st_ino)
            if stat.S_ISDIR(info.st_mode):
                if identity in ancestors:
                    raise self.error("a link loop", rel,
                                     "a folder link must not point at a folder that holds it")
                self.walk(real, rel + "/", ancestors | {identity})
            elif stat.S_ISREG(info.st_mode):
                self.entries.append(TreeEntry(rel, Path(real), info.st_size,
                                              stat.S_IMODE(info.st_mode), identity))
            else:
                raise self.error(f"a {_kind(info.st_mode)}, which cannot be stored", rel,
                                 SPECIAL_HINT)


def walk_contained(root: str | os.PathLike[str], *, what: str = "model folder"
                   ) -> list[TreeEntry]:
    """Every regular file under ``root`` as :class:`TreeEntry`, sorted by ``rel``.

    Raises :class:`UnsafeTreeError` (naming the entry) for a link leaving ``root``, a link loop,
    a FIFO, socket or device file; ``what`` names the folder in that message. ``OSError`` from
    the file system (permissions, a folder vanishing) propagates for the caller to word.
    """
    base = os.path.realpath(os.fspath(root))
    if not os.path.isdir(base):
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", os.fspath(root))
    info = os.stat(base)
    walk = _Walk(base, what)
    walk.walk(base, "", frozenset({(info.st_dev, info.st_ino)}))
    walk.entries.sort(key=lambda entry: entry.rel)
    return walk.entries


def open_entry(entry: TreeEntry, *, what: str = "model folder") -> BinaryIO:
    """Open ``entry`` for reading, refusing anything but the regular file the walk saw.

    ``O_NOFOLLOW`` refuses a link put in its place, ``O_NONBLOCK`` keeps a FIFO put in its place
    from blocking the open; the device and inode must match the walk's.
    """
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_BINARY", 0))
    changed = UnsafeTreeError(f"{what} changed while it was being read: {_shown(entry.rel)}",
                              hint="store it again once nothing writes to it")
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOENT, errno.ENXIO):
            raise changed from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != entry.identity:
            raise changed
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
