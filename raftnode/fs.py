"""The file operations raftnode's storage makes, behind one small interface.

:class:`Storage <raftnode.storage.Storage>` touches the disk only through a
:class:`FileSystem`: the real one here (``os`` calls, what ``raftnode serve`` uses) or the
simulator's (``tester/sim/disk.py``), which keeps files in memory and decides on a crash what
of the unsynced writes survives. So the simulator runs the very storage code the zipapp ships:
its fsync order, its replay and its torn-tail recovery.

Paths are plain strings joined with ``/``; only what the storage needs is here.
"""

from __future__ import annotations

import contextlib
import os
from typing import Protocol


class File(Protocol):
    """An open file: appends, and ``sync`` (fdatasync) to make them durable."""

    def write(self, data: bytes) -> None:
        ...

    def sync(self) -> None:
        ...

    def close(self) -> None:
        ...


class FileSystem(Protocol):
    """What storage may do to a directory of files (the real implementation: :class:`RealFS`)."""

    def makedirs(self, path: str) -> None:
        ...

    def listdir(self, path: str) -> list[str]:
        """The names in ``path``, sorted (so replay never depends on directory order)."""
        ...

    def exists(self, path: str) -> bool:
        ...

    def read(self, path: str) -> bytes:
        ...

    def open_append(self, path: str) -> File:
        """Open ``path`` for appending, creating it empty if missing."""
        ...

    def create(self, path: str) -> File:
        """Open ``path`` empty for writing (truncating what was there)."""
        ...

    def truncate(self, path: str, size: int) -> None:
        """Cut ``path`` to ``size`` bytes and make that durable."""
        ...

    def replace(self, src: str, dst: str) -> None:
        """Rename atomically (durable once the directory is synced)."""
        ...

    def unlink(self, path: str) -> None:
        """Remove ``path`` if it exists."""
        ...

    def sync_dir(self, path: str) -> None:
        """Make the directory's entries (creations, renames, removals) durable."""
        ...


# fdatasync also flushes the file size an append changed, and skips timestamps (~20% faster
# here); the directory entry of a new file is made durable by sync_dir.
_sync = getattr(os, "fdatasync", os.fsync)


class RealFile:
    def __init__(self, path: str, mode: str):
        self._f = open(path, mode, buffering=0)  # noqa: SIM115 - closed by close()

    def write(self, data: bytes) -> None:
        self._f.write(data)

    def sync(self) -> None:
        _sync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


class RealFS:
    """The operating system's files."""

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def open_append(self, path: str) -> File:
        return RealFile(path, "ab")

    def create(self, path: str) -> File:
        return RealFile(path, "wb")

    def truncate(self, path: str, size: int) -> None:
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
