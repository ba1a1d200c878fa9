"""lazyfs: a FUSE filesystem over a real directory that loses unsynced writes on command.

A ``kill -9`` of a database process keeps the kernel's page cache, so on a real fleet nothing
unsynced is ever lost and storage bugs (a missing fsync, a rename not followed by a directory
fsync) pass. lazyfs is mounted over the database's data directory: it passes every operation
through to a backing directory and remembers, with the durability model the simulator's disk
uses (``tester/lazyfs/durable.py``), what has not been made durable yet: per file, the writes
and size changes since its last fsync/fdatasync; per directory, the entries created, renamed or
removed since its last fsync. ``crash`` (sent over a unix socket, by ``raftlab-lazyfs crash``
while the database is killed) then puts the backing directory back to what a crashed machine
would have: durable data plus, per file, none, all or a byte prefix of the rest.

Layout under the state directory ``S``: ``S/root`` the backing tree, ``S/stash`` files removed
(or replaced by a rename) whose removal is not durable yet, ``S/ctl.sock`` the control socket.
Needs libfuse 3 (Debian ``fuse3``) and ``/dev/fuse``; runs one request at a time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import threading
from typing import Any

from tester.lazyfs.durable import Dir, File, Tree

STAT_FIELDS = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime",
               "st_ctime", "st_ino", "st_blocks", "st_blksize")
#: fsync'd-or-not is for the kernel to forget at once: after a crash the files change under it
#: a file's unsynced writes beyond this are taken as written back by the kernel (durable), so a
#: database that never fsyncs cannot grow the daemon's memory without bound
WRITEBACK_BYTES = 64 << 20
MOUNT_OPTIONS = {"entry_timeout": 0, "attr_timeout": 0, "negative_timeout": 0,
                 "hard_remove": True}


class FdContent:
    """A backing file's bytes through a file descriptor (the model's Content)."""

    def __init__(self, fd: int):
        self.fd = fd

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def pread(self, offset: int, n: int) -> bytes:
        return os.pread(self.fd, n, offset) if n > 0 else b""

    def pwrite(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, offset)
            view, offset = view[n:], offset + n

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)


class Handle:
    __slots__ = ("append", "content", "file")

    def __init__(self, fd: int, file: File, append: bool):
        self.content = FdContent(fd)
        self.file = file
        self.append = append


class LazyFS:
    """The filesystem's state and operations (no FUSE here, so tests can drive it directly);
    :func:`mount` serves it through mfusepy."""

    use_ns = True

    def __init__(self, state: str):
        self.state = os.path.abspath(state)
        self.root = os.path.join(self.state, "root")
        self.stash = os.path.join(self.state, "stash")
        os.makedirs(self.root, exist_ok=True)
        shutil.rmtree(self.stash, ignore_errors=True)
        os.makedirs(self.stash)
        self.mutex = threading.RLock()
        self.tree = Tree()
        self.handles: dict[int, Handle] = {}
        self.crashes = 0
        self._import(self.root, "")

    def _import(self, real: str, path: str) -> None:
        """What the backing directory holds at start is durable."""
        for name in sorted(os.listdir(real)):
            full = os.path.join(real, name)
            if os.path.isdir(full) and not os.path.islink(full):
                self.tree.link(f"{path}/{name}", self.tree.new_dir(), durable=True)
                self._import(full, f"{path}/{name}")
            else:
                self.tree.link(f"{path}/{name}", self.tree.new_file(), durable=True)

    def real(self, path: str) -> str:
        return self.root + path if path != "/" else self.root

    def _file(self, path: str) -> File:
        node = self.tree.lookup(path)
        if isinstance(node, File):
            return node
        raise OSError(errno.EISDIR if node is not None else errno.ENOENT, path)

    def _stash(self, node: File) -> str:
        return os.path.join(self.stash, str(node.ident))

    # ---- metadata ------------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.fstat(fh) if fh is not None and fh in self.handles else os.lstat(self.real(path))
        attrs = {k: getattr(st, k) for k in STAT_FIELDS}
        for k in ("st_atime", "st_mtime", "st_ctime"):
            attrs[k] = getattr(st, k + "_ns")
        return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *sorted(os.listdir(self.real(path)))]

    def access(self, path: str, amode: int) -> int:
        if not os.access(self.real(path), amode):
            raise OSError(errno.EACCES, path)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self.real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.lchown(self.real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        os.utime(self.real(path), ns=times) if times else os.utime(self.real(path))
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self.root)
        return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize",
                                            "f_favail", "f_ffree", "f_files", "f_flag",
                                            "f_frsize", "f_namemax")}

    # ---- the namespace ---------------------------------------------------------------------
    def mkdir(self, path: str, mode: int) -> int:
        with self.mutex:
            os.mkdir(self.real(path), mode)
            self.tree.link(path, self.tree.new_dir())
        return 0

    def rmdir(self, path: str) -> int:
        with self.mutex:
            os.rmdir(self.real(path))
            self.tree.unlink(path)
        return 0

    def unlink(self, path: str) -> int:
        with self.mutex:
            node = self._file(path)
            os.rename(self.real(path), self._stash(node))  # it comes back if the crash undoes this
            self.tree.unlink(path)
        return 0

    def rename(self, old: str, new: str) -> int:
        with self.mutex:
            node = self.tree.lookup(old)
            if node is None:
                raise OSError(errno.ENOENT, old)
            target = self.tree.lookup(new)
            if isinstance(target, File):
                os.rename(self.real(new), self._stash(target))
            os.rename(self.real(old), self.real(new))
            self.tree.rename(old, new)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        with self.mutex:
            self.tree.dir(path).sync()
            fd = os.open(self.real(path), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._forget_stash()
        return 0

    def _forget_stash(self) -> None:
        """Drop stashed files no directory names any more, now or durably."""
        live = {str(i) for i in self.tree.files()}
        for name in os.listdir(self.stash):
            if name not in live:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.stash, name))

    # ---- files -----------------------------------------------------------------------------
    def _open(self, path: str, node: File, flags: int, mode: int = 0o644) -> int:
        fd = os.open(self.real(path), os.O_RDWR | (flags & os.O_CREAT), mode)
        h = Handle(fd, node, bool(flags & os.O_APPEND))
        self.handles[fd] = h
        if flags & os.O_TRUNC and h.content.size():
            node.journal.truncate(h.content, 0)
        return fd

    def create(self, path: str, mode: int, flags: int = os.O_RDWR) -> int:
        with self.mutex:
            node = self.tree.lookup(path)
            if isinstance(node, File):
                return self._open(path, node, flags | os.O_TRUNC)
            node = self.tree.new_file()
            fd = self._open(path, node, flags | os.O_CREAT, mode)
            self.tree.link(path, node)
            return fd

    def open(self, path: str, flags: int) -> int:
        with self.mutex:
            return self._open(path, self._file(path), flags)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self.mutex:
            h = self.handles[fh]
            if h.append:
                offset = h.content.size()
            h.file.journal.write(h.content, offset, data)
            if h.file.journal.unsynced > WRITEBACK_BYTES:
                h.file.journal.sync()
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self.mutex:
            if fh is not None and fh in self.handles:
                h = self.handles[fh]
                h.file.journal.truncate(h.content, length)
                return 0
            node = self._file(path)
            fd = os.open(self.real(path), os.O_RDWR)
            try:
                node.journal.truncate(FdContent(fd), length)
            finally:
                os.close(fd)
        return 0

    def fallocate(self, path: str, mode: int, offset: int, size: int, fh: int) -> int:
        """Mode 0 grows the file (a size change like any other); KEEP_SIZE (1) only reserves
        blocks, which changes nothing a crash could lose; others are not supported."""
        if mode == 1:
            return 0
        if mode != 0:
            raise OSError(errno.EOPNOTSUPP, path)
        with self.mutex:
            h = self.handles[fh]
            if offset + size > h.content.size():
                h.file.journal.truncate(h.content, offset + size)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self.mutex:
            h = self.handles[fh]
            (os.fdatasync if datasync else os.fsync)(fh)
            h.file.journal.sync()
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        with self.mutex:
            self.handles.pop(fh, None)
            os.close(fh)
        return 0

    # ---- the crash -------------------------------------------------------------------------
    def crash(self, seed: int | str, mode: str = "random") -> dict[str, Any]:
        """Put the backing tree back to what a crash would leave (see the module doc).

        The database must be stopped first: open files are forgotten. Returns what was lost:
        ``files`` whose unsynced changes were cut (``bytes`` of them dropped), and directory
        ``entries`` whose unsynced creation, rename or removal was undone.
        """
        with self.mutex:
            for fd in list(self.handles):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.handles.clear()
            before = {p for p, _ in self.tree.root.walk()}
            # every file aside into the stash, named by ident; the backing tree emptied
            for path, node in reversed(list(self.tree.root.walk())):
                if isinstance(node, File):
                    os.rename(self.real(path), self._stash(node))
                else:
                    os.rmdir(self.real(path))
            opened: list[int] = []

            def content_of(f: File) -> FdContent | None:
                p = self._stash(f)
                if not os.path.exists(p):
                    return None
                opened.append(os.open(p, os.O_RDWR))
                return FdContent(opened[-1])

            rng = random.Random(f"lazyfs:{seed}:{self.crashes}")
            self.crashes += 1
            try:
                files, lost = self.tree.crash(rng, content_of, mode)
            finally:
                for fd in opened:
                    os.close(fd)
            # the durable tree back in place
            placed: dict[int, str] = {}
            for path, node in self.tree.root.walk():
                if isinstance(node, Dir):
                    os.mkdir(self.real(path))
                elif node.ident in placed:  # named twice after the crash: give it its own copy
                    shutil.copyfile(self.real(placed[node.ident]), self.real(path))
                else:
                    src = self._stash(node)
                    if os.path.exists(src):
                        os.rename(src, self.real(path))
                    else:
                        open(self.real(path), "wb").close()  # noqa: SIM115
                    placed[node.ident] = path
            self._forget_stash()
            after = {p for p, _ in self.tree.root.walk()}
            return {"files": files, "bytes": lost, "entries": len(before ^ after)}
