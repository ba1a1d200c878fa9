"""What a crash keeps: one model of durability for the simulator's disk and for lazyfs.

A real disk keeps, after a crash (kill -9 of the machine, power loss), what was made durable
and some of what was not. This module is that rule, written once and used by both places that
need it: ``tester/sim/disk.py`` (files in memory, for the simulator) and ``tester/lazyfs/fs.py``
(a FUSE filesystem over a real directory, for real fleets). Standard library only: it ships to
nodes inside the lazyfs zipapp.

* A file's changes (writes and size changes) since its last fsync/fdatasync are its
  :class:`Journal`. A crash keeps, per file, none of them, all of them, or a prefix of them cut
  at any byte (:func:`keep_after_crash`): a torn tail.
* A directory's entries (creations, renames, removals) are durable only once the directory
  itself is fsynced (:class:`Dir`); a crash puts every directory back to its entries as of its
  last fsync, recursively, so a file created or renamed and never followed by a directory fsync
  disappears (or reappears, for a removal).

The content a journal changes is reached through :class:`Content` (a bytearray in the
simulator, a file descriptor of the backing file in lazyfs), so the same undo and replay run
over both.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Protocol

#: the three things a crash may do to one file's unsynced changes, and their odds
P_LOSE_ALL = 0.4  # the page cache is gone
P_KEEP_ALL = 0.3  # written back before the crash; else torn (cut anywhere, even inside a record)
MODES = ("random", "lose", "torn", "keep")


def keep_after_crash(rng: random.Random, unsynced: int, mode: str = "random") -> int:
    """How many of ``unsynced`` bytes of changes a crash keeps.

    ``mode``: ``lose`` keeps none, ``keep`` all, ``torn`` a random strict prefix, ``random``
    draws one of the three (the simulator's disk, and lazyfs unless told otherwise).
    """
    if unsynced <= 0:
        return 0
    if mode == "random":
        r = rng.random()
        mode = "lose" if r < P_LOSE_ALL else "keep" if r < P_LOSE_ALL + P_KEEP_ALL else "torn"
    if mode == "lose":
        return 0
    if mode == "keep":
        return unsynced
    if mode == "torn":
        return rng.randrange(unsynced)
    raise ValueError(f"crash mode {mode!r}: expected one of {', '.join(MODES)}")


class Content(Protocol):
    """A file's bytes, as the journal changes and restores them."""

    def size(self) -> int: ...

    def pread(self, offset: int, n: int) -> bytes: ...

    def pwrite(self, offset: int, data: bytes) -> None: ...

    def truncate(self, size: int) -> None: ...


class Journal:
    """One file's changes since it was last made durable: what to undo and what to replay.

    Each change is applied to the content at once (reads see it, as from a page cache) and
    remembered twice: the bytes it replaced (to undo it) and the change itself (to replay a
    kept prefix of the changes after undoing them all).
    """

    __slots__ = ("changes", "undo", "unsynced")

    def __init__(self) -> None:
        self.changes: list[tuple[int, bytes | None]] = []  # (offset, data) or (size, None)
        self.undo: list[tuple[int, int, bytes]] = []  # (size before, offset, bytes replaced)
        self.unsynced = 0  # bytes written since the last sync; a size change counts as one

    def write(self, content: Content, offset: int, data: bytes) -> None:
        before = content.size()
        old = content.pread(offset, min(len(data), before - offset)) if offset < before else b""
        self.undo.append((before, offset, old))
        self.changes.append((offset, bytes(data)))
        self.unsynced += len(data)
        content.pwrite(offset, data)

    def truncate(self, content: Content, size: int) -> None:
        before = content.size()
        old = content.pread(size, before - size) if size < before else b""
        self.undo.append((before, size, old))
        self.changes.append((size, None))
        self.unsynced += 1
        content.truncate(size)

    def dirty(self) -> bool:
        return bool(self.changes)

    def sync(self) -> None:
        """Everything so far is durable."""
        self.changes.clear()
        self.undo.clear()
        self.unsynced = 0

    def crash(self, content: Content, keep: int) -> None:
        """Put ``content`` back to its durable state plus the first ``keep`` bytes of changes
        (every change when ``keep`` covers them all)."""
        for before, offset, old in reversed(self.undo):
            if old:
                content.pwrite(offset, old)
            content.truncate(before)
        every = keep >= self.unsynced
        left = keep
        for offset, data in self.changes:
            if data is None:
                if left <= 0 and not every:
                    break
                content.truncate(offset)
                left -= 1
                continue
            n = len(data) if every else min(len(data), left)
            if n <= 0:
                break
            content.pwrite(offset, data[:n])
            left -= n
        self.sync()


class Node:
    """A file or a directory: what a directory entry names."""

    __slots__ = ("ident",)

    def __init__(self, ident: int):
        self.ident = ident


class File(Node):
    __slots__ = ("journal",)

    def __init__(self, ident: int):
        super().__init__(ident)
        self.journal = Journal()


class Dir(Node):
    """A directory's entries now and as of its last fsync."""

    __slots__ = ("durable", "now")

    def __init__(self, ident: int):
        super().__init__(ident)
        self.now: dict[str, Node] = {}
        self.durable: dict[str, Node] = {}

    def sync(self) -> None:
        self.durable = dict(self.now)

    def crash(self) -> None:
        """Every directory below, this one included, back to its durable entries."""
        self.now = dict(self.durable)
        for child in self.now.values():
            if isinstance(child, Dir):
                child.crash()

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Node]]:
        """``(path, node)`` for everything below, parents before children, sorted by name."""
        for name in sorted(self.now):
            child = self.now[name]
            path = f"{prefix}/{name}"
            yield path, child
            if isinstance(child, Dir):
                yield from child.walk(path)


class Tree:
    """A directory tree of :class:`Dir` and :class:`File` nodes, addressed by ``/a/b`` paths
    relative to its root (which always survives)."""

    def __init__(self) -> None:
        self._next = 0
        self.root = Dir(self._ident())

    def _ident(self) -> int:
        self._next += 1
        return self._next

    def new_file(self) -> File:
        return File(self._ident())

    def new_dir(self) -> Dir:
        return Dir(self._ident())

    @staticmethod
    def split(path: str) -> tuple[str, str]:
        parent, _, name = path.rstrip("/").rpartition("/")
        return parent or "/", name

    def lookup(self, path: str) -> Node | None:
        node: Node = self.root
        for part in path.strip("/").split("/"):
            if not part:
                continue
            if not isinstance(node, Dir):
                return None
            nxt = node.now.get(part)
            if nxt is None:
                return None
            node = nxt
        return node

    def dir(self, path: str) -> Dir:
        node = self.lookup(path)
        if not isinstance(node, Dir):
            raise FileNotFoundError(path)
        return node

    def link(self, path: str, node: Node, durable: bool = False) -> None:
        """Name ``node`` at ``path`` (replacing what was there); ``durable``: as if the
        directory had been fsynced for this entry (what existed before the model did)."""
        parent, name = self.split(path)
        d = self.dir(parent)
        d.now[name] = node
        if durable:
            d.durable[name] = node

    def unlink(self, path: str) -> Node | None:
        parent, name = self.split(path)
        return self.dir(parent).now.pop(name, None)

    def rename(self, src: str, dst: str) -> None:
        node = self.unlink(src)
        if node is None:
            raise FileNotFoundError(src)
        self.link(dst, node)

    def files(self) -> dict[int, File]:
        """Every file reachable now or durably (a removed file may come back), by ident."""
        seen: dict[int, File] = {}
        stack: list[Dir] = [self.root]
        dirs: set[int] = set()
        while stack:
            d = stack.pop()
            if d.ident in dirs:
                continue
            dirs.add(d.ident)
            for child in (*d.now.values(), *d.durable.values()):
                if isinstance(child, Dir):
                    stack.append(child)
                elif isinstance(child, File):
                    seen[child.ident] = child
        return seen

    def crash(self, rng: random.Random, content_of: Callable[[File], Content | None],
              mode: str = "random") -> tuple[int, int]:
        """The machine stops: every file keeps its durable bytes and what
        :func:`keep_after_crash` draws of the rest, in ident order (so the outcome is a
        function of ``rng`` alone); then every directory goes back to its durable entries.
        ``content_of(file)`` gives the file's :class:`Content`, or None for one that is gone
        for good. Returns how many files lost changes, and how many bytes of writes."""
        files = lost = 0
        for _ident, f in sorted(self.files().items()):
            if not f.journal.dirty():
                continue
            keep = keep_after_crash(rng, f.journal.unsynced, mode)
            content = content_of(f)
            if content is None:
                f.journal.sync()
                continue
            if keep < f.journal.unsynced or keep == 0:
                files += 1
                lost += f.journal.unsynced - keep
            f.journal.crash(content, keep)
        self.root.crash()
        return files, lost
