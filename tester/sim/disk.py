"""A simulated disk for raftnode's real storage: files in memory, and crashes that lose what a
real disk may lose.

:class:`SimFS` implements the :class:`raftnode.fs.FileSystem` protocol, so ``raftnode/storage.py`` runs on
it unchanged. It remembers, per file, what was made durable by ``sync`` and, per directory
entry, what was made durable by ``sync_dir``. :meth:`SimFS.crash` (kill -9 or power loss)
then keeps the durable state and, per file, a part of the unsynced appends chosen from the
seed: none of them, all of them, or a prefix cut at any byte (a torn last record). Files are
only ever appended to between syncs (storage truncates with an fsync, and rewrites by creating
a new file). Creations, renames and removals not yet followed by ``sync_dir`` are undone.
"""

from __future__ import annotations

import random

from raftnode.fs import File


class _Inode:
    """A file's bytes, of which ``data[:synced]`` is durable."""

    def __init__(self, data: bytes = b""):
        self.data = bytearray(data)
        self.synced = len(data)

    def sync(self) -> None:
        self.synced = len(self.data)

    def after_crash(self, rng: random.Random) -> _Inode:
        """What a crash leaves of this file."""
        unsynced = len(self.data) - self.synced
        keep = 0
        if unsynced > 0:
            r = rng.random()
            if r < 0.4:
                keep = 0  # the page cache is gone
            elif r < 0.7:
                keep = unsynced  # written back before the crash
            else:
                keep = rng.randrange(unsynced)  # torn: cut anywhere, even inside a record
        return _Inode(bytes(self.data[: self.synced + keep]))


class SimFile:
    def __init__(self, inode: _Inode):
        self._inode = inode
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed file")
        self._inode.data += data

    def sync(self) -> None:
        self._inode.sync()

    def close(self) -> None:
        self._closed = True


class SimFS:
    """One node's files (a flat namespace of full paths)."""

    def __init__(self, seed: str):
        self.rng = random.Random(f"disk:{seed}")
        self.names: dict[str, _Inode] = {}
        self.durable: dict[str, _Inode] = {}  # the directory as of the last sync_dir

    def crash(self) -> None:
        """The machine stops: keep what is durable and some of what is not (from the seed)."""
        after: dict[str, _Inode] = {}
        for name in sorted(self.durable):
            inode = self.durable[name]
            after[name] = inode.after_crash(self.rng)
        self.names = after
        self.durable = dict(after)

    # ---- FileSystem ------------------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        return None

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(n[len(prefix):] for n in self.names if n.startswith(prefix))

    def exists(self, path: str) -> bool:
        return path in self.names

    def read(self, path: str) -> bytes:
        inode = self.names.get(path)
        if inode is None:
            raise FileNotFoundError(path)
        return bytes(inode.data)

    def open_append(self, path: str) -> File:
        inode = self.names.get(path)
        if inode is None:
            inode = self.names[path] = _Inode()
        return SimFile(inode)

    def create(self, path: str) -> File:
        inode = self.names[path] = _Inode()
        return SimFile(inode)

    def truncate(self, path: str, size: int) -> None:
        inode = self.names[path]
        del inode.data[size:]
        inode.sync()  # durable at once (the interface's truncate fsyncs)

    def replace(self, src: str, dst: str) -> None:
        self.names[dst] = self.names.pop(src)

    def unlink(self, path: str) -> None:
        self.names.pop(path, None)

    def sync_dir(self, path: str) -> None:
        self.durable = dict(self.names)
