"""A simulated disk for raftnode's real storage: files in memory, and crashes that lose what a
real disk may lose.

:class:`SimFS` implements the :class:`raftnode.fs.FileSystem` protocol, so ``raftnode/storage.py`` runs on
it unchanged. What a crash keeps is the one durability model shared with lazyfs, the
filesystem that does the same on real fleets (``tester/lazyfs/durable.py``): per file, the
bytes made durable by ``sync`` and, of the changes after it, none, all or a prefix cut at any
byte (a torn last record), drawn from the seed; per directory, the entries made durable by
``sync_dir`` (creations, renames and removals after it are undone).
"""

from __future__ import annotations

import random

from raftnode.fs import File
from tester.lazyfs.durable import Dir, Tree
from tester.lazyfs.durable import File as Inode


class _Bytes:
    """A file's bytes in memory, as the durability model's Content."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    def size(self) -> int:
        return len(self.data)

    def pread(self, offset: int, n: int) -> bytes:
        return bytes(self.data[offset:offset + n])

    def pwrite(self, offset: int, data: bytes) -> None:
        if offset > len(self.data):
            self.data.extend(bytes(offset - len(self.data)))
        self.data[offset:offset + len(data)] = data

    def truncate(self, size: int) -> None:
        if size < len(self.data):
            del self.data[size:]
        else:
            self.data.extend(bytes(size - len(self.data)))


class SimFile:
    def __init__(self, inode: Inode, content: _Bytes):
        self._inode = inode
        self._content = content
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed file")
        self._inode.journal.write(self._content, self._content.size(), data)

    def sync(self) -> None:
        self._inode.journal.sync()

    def close(self) -> None:
        self._closed = True


class SimFS:
    """One node's files: a directory tree in memory."""

    def __init__(self, seed: str):
        self.rng = random.Random(f"disk:{seed}")
        self.tree = Tree()
        self.contents: dict[int, _Bytes] = {}  # file ident -> its bytes

    def crash(self) -> None:
        """The machine stops: keep what is durable and some of what is not (from the seed)."""
        self.tree.crash(self.rng, lambda f: self.contents.get(f.ident))
        live = self.tree.files()
        self.contents = {i: c for i, c in self.contents.items() if i in live}

    def _file(self, path: str) -> Inode:
        node = self.tree.lookup(path)
        if not isinstance(node, Inode):
            raise FileNotFoundError(path)
        return node

    def _new(self, path: str) -> File:
        self.makedirs(Tree.split(path)[0])
        inode = self.tree.new_file()
        self.contents[inode.ident] = _Bytes()
        self.tree.link(path, inode)
        return SimFile(inode, self.contents[inode.ident])

    def raw(self, path: str) -> bytearray:
        """A file's bytes themselves, for a test that damages them."""
        return self.contents[self._file(path).ident].data

    # ---- FileSystem ------------------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        """Directories exist at once and for good (storage never creates one mid-run)."""
        here = ""
        for part in path.strip("/").split("/"):
            here += f"/{part}"
            if not isinstance(self.tree.lookup(here), Dir):
                self.tree.link(here, self.tree.new_dir(), durable=True)

    def listdir(self, path: str) -> list[str]:
        node = self.tree.lookup(path)
        return sorted(node.now) if isinstance(node, Dir) else []

    def exists(self, path: str) -> bool:
        return self.tree.lookup(path) is not None

    def read(self, path: str) -> bytes:
        return bytes(self.contents[self._file(path).ident].data)

    def open_append(self, path: str) -> File:
        node = self.tree.lookup(path)
        if isinstance(node, Inode):
            return SimFile(node, self.contents[node.ident])
        return self._new(path)

    def create(self, path: str) -> File:
        return self._new(path)

    def truncate(self, path: str, size: int) -> None:
        inode = self._file(path)
        inode.journal.truncate(self.contents[inode.ident], size)
        inode.journal.sync()  # durable at once (the interface's truncate fsyncs)

    def replace(self, src: str, dst: str) -> None:
        self.tree.rename(src, dst)

    def unlink(self, path: str) -> None:
        self.tree.unlink(path)

    def sync_dir(self, path: str) -> None:
        node = self.tree.lookup(path)
        if isinstance(node, Dir):
            node.sync()
