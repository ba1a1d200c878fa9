"""Durable Raft storage: a checksummed write-ahead log, the hard state, and snapshots.

Why it looks like this:

* One append-only file of records ``[u32 length][u32 crc32][JSON payload]``. A payload is an
  entry (``{"e": ...}``) or a hard state (``{"h": ...}``). Replaying it in order rebuilds the
  log, and an entry whose index is already present replaces it and everything after it, so
  conflict truncation costs no rewrite.
* ``save`` writes a whole Ready (hard state + entries) with one ``write`` and one ``fsync``:
  the group commit. Nothing that depends on it may be sent before it returns.
* Recovery cuts off a torn tail (a record cut short, or a bad checksum in the very last
  record) but refuses to start on a bad record followed by valid data: that is corruption,
  reported by file and byte offset, never silently dropped.
* Snapshots are whole files written to a temporary name, fsynced and renamed; compaction
  then rewrites the log as a new file with only the entries after the snapshot.

Two unsafe switches live here (see docs/raftnode.md): ``ack-before-sync`` buffers writes in the
process and flushes them on a timer, ``volatile-vote`` never persists term and vote.

Every file operation goes through a :class:`~raftnode.fs.FileSystem` (the real one by default),
so the simulator runs this very code against a disk that loses unsynced writes on a crash.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from raftnode.fs import File, FileSystem, RealFS
from raftnode.types import Entry, HardState, Snapshot

HEADER = struct.Struct(">II")  # payload length, crc32 of payload
MAX_RECORD = 256 * 1024 * 1024
WAL_RE = re.compile(r"^wal-(\d{8})\.log$")
SNAP_RE = re.compile(r"^snap-(\d{12})-(\d{12})\.snap$")
ACK_BEFORE_SYNC_FLUSH_S = 0.2


class CorruptLog(Exception):
    """A record in the middle of a file is damaged; the node must not start on it."""

    def __init__(self, path: str, offset: int, reason: str):
        super().__init__(f"corrupt log: {path} at byte {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


@dataclass
class Recovered:
    """What a node starts from: the last snapshot, then the hard state and the log after it."""

    hard_state: HardState
    snapshot: Snapshot | None
    entries: list[Entry]
    truncated_bytes: int = 0  # torn tail cut off during recovery
    truncated_file: str | None = None
    notes: list[str] = field(default_factory=list)


_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps builds one a call


def encode_record(payload: dict[str, Any]) -> bytes:
    """Frame one JSON payload with its length and checksum."""
    return _frame(_JSON.encode(payload).encode())


def _frame(data: bytes) -> bytes:
    return HEADER.pack(len(data), zlib.crc32(data)) + data


def _entry_record(e: Entry) -> bytes:
    """``encode_record({"e": e.to_dict()})``, byte for byte, without the two dicts (the
    hottest write: every entry of every Ready)."""
    enc = _JSON.encode
    return _frame(f'{{"e":{{"term":{e.term},"index":{e.index},"kind":{enc(e.kind)},'
                  f'"data":{enc(e.data)}}}}}'.encode())


def _hard_state_record(hs: HardState) -> bytes:
    """``encode_record({"h": hs.to_dict()})``, byte for byte."""
    vote = "null" if hs.vote is None else _JSON.encode(hs.vote)
    return _frame(f'{{"h":{{"term":{hs.term},"vote":{vote},"commit":{hs.commit}}}}}'.encode())


def _read_records(buf: bytes, path: str, *, last_file: bool) -> tuple[list[dict[str, Any]], int, int]:
    """Decode every record of ``buf`` (the file ``path``); return (payloads, good_length,
    torn_bytes).

    A damaged record counts as a torn tail only if nothing valid follows it and it sits in the
    last file; otherwise :class:`CorruptLog` is raised.
    """
    out: list[dict[str, Any]] = []
    off = 0
    n = len(buf)
    while off < n:
        problem = None
        if n - off < HEADER.size:
            problem = "record header cut short"
            end = n
        else:
            length, crc = HEADER.unpack_from(buf, off)
            end = off + HEADER.size + length
            if length > MAX_RECORD:
                problem = f"record length {length} is implausible"
                end = n
            elif end > n:
                problem = "record cut short"
                end = n
            else:
                data = buf[off + HEADER.size : end]
                if zlib.crc32(data) != crc:
                    problem = "checksum mismatch"
                else:
                    try:
                        payload = json.loads(data)
                        if not isinstance(payload, dict):
                            raise ValueError("payload is not an object")
                    except ValueError as e:
                        problem = f"undecodable payload ({e})"
        if problem is None:
            out.append(payload)
            off = end
            continue
        rest = buf[end:]
        torn = last_file and (end >= n or not rest.strip(b"\0"))
        if not torn:
            raise CorruptLog(path, off, problem)
        return out, off, n - off
    return out, off, 0


class Storage:
    """A node's durable state in one directory. Not thread-safe: one caller at a time."""

    def __init__(self, data_dir: str | os.PathLike[str], unsafe: frozenset[str] | set[str] = frozenset(),
                 fs: FileSystem | None = None, flusher: bool = True):
        """``fs``: the files (default: the real ones); ``flusher``: with ``ack-before-sync``,
        a thread flushes the buffer every 200 ms (a simulator calls :meth:`flush_pending`
        on its own clock instead)."""
        self.fs: FileSystem = fs if fs is not None else RealFS()
        self.dir = os.fspath(data_dir)
        self.fs.makedirs(self.dir)
        self._with_flusher = flusher
        self.ack_before_sync = "ack-before-sync" in unsafe
        self.volatile_vote = "volatile-vote" in unsafe
        self._entries: list[Entry] = []  # entries after the snapshot, contiguous
        self._hard = HardState()
        self._snapshot: Snapshot | None = None
        self._wal_seq = 0
        self._fh: File | None = None
        self._pending = bytearray()  # ack-before-sync: written only by the flusher
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    # ---- recovery -------------------------------------------------------------------------

    def recover(self) -> Recovered:
        """Load the snapshot and replay the log; cut a torn tail; raise CorruptLog on damage."""
        fs = self.fs
        names = fs.listdir(self.dir)
        snaps = sorted(
            (int(m.group(1)), self._path(n)) for n in names if (m := SNAP_RE.match(n))
        )
        for n in names:
            if n.endswith(".tmp"):
                fs.unlink(self._path(n))
        if snaps:
            self._snapshot = self._read_snapshot(snaps[-1][1])
            for _, p in snaps[:-1]:
                fs.unlink(p)
        wals = sorted(
            (int(m.group(1)), self._path(n)) for n in names if (m := WAL_RE.match(n))
        )
        rec = Recovered(hard_state=HardState(), snapshot=self._snapshot, entries=[])
        base = self._snapshot.index if self._snapshot else 0
        for i, (seq, path) in enumerate(wals):
            last = i == len(wals) - 1
            payloads, good, torn = _read_records(fs.read(path), path, last_file=last)
            if torn:
                fs.truncate(path, good)
                rec.truncated_bytes = torn
                rec.truncated_file = path
            for payload in payloads:
                if "h" in payload:
                    self._hard = HardState.from_dict(payload["h"])
                elif "e" in payload:
                    self._append_mem([Entry.from_dict(payload["e"])], base)
            self._wal_seq = seq
        if self.volatile_vote:
            self._hard = HardState(term=0, vote=None, commit=self._hard.commit)
        rec.hard_state = self._hard
        rec.entries = list(self._entries)
        # older wal files (left by a crash during compaction) are superseded by the newest
        for _seq, path in wals[:-1]:
            fs.unlink(path)
        if not wals:
            self._wal_seq = 1
        self._open_wal()
        if self.ack_before_sync and self._with_flusher:
            self._flusher = threading.Thread(target=self._flush_loop, name="wal-flusher", daemon=True)
            self._flusher.start()
        return rec

    def _path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def _read_snapshot(self, path: str) -> Snapshot:
        buf = self.fs.read(path)
        if len(buf) < HEADER.size:
            raise CorruptLog(path, 0, "snapshot header cut short")
        length, crc = HEADER.unpack_from(buf, 0)
        data = buf[HEADER.size : HEADER.size + length]
        if len(data) != length or zlib.crc32(data) != crc:
            raise CorruptLog(path, 0, "snapshot checksum mismatch")
        return Snapshot.from_dict(json.loads(data))

    def _append_mem(self, entries: list[Entry], base: int) -> None:
        for e in entries:
            if e.index <= base:
                continue
            pos = e.index - base - 1
            if pos < len(self._entries):
                del self._entries[pos:]
            if pos != len(self._entries):
                raise ValueError(f"log gap: entry {e.index} after {base + len(self._entries)}")
            self._entries.append(e)

    def _wal_path(self, seq: int) -> str:
        return self._path(f"wal-{seq:08d}.log")

    def _open_wal(self) -> None:
        path = self._wal_path(self._wal_seq)
        new = not self.fs.exists(path)
        self._fh = self.fs.open_append(path)  # held open for the node's life
        if new:
            self.fs.sync_dir(self.dir)

    def _wal(self) -> File:
        if self._fh is None:
            raise ValueError("storage is closed (or recover() was not called)")
        return self._fh

    # ---- writing --------------------------------------------------------------------------

    @property
    def hard_state(self) -> HardState:
        return self._hard

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def entries(self) -> list[Entry]:
        """The stored entries after the snapshot (for status and tests)."""
        return list(self._entries)

    def last_index(self) -> int:
        if self._entries:
            return self._entries[-1].index
        return self._snapshot.index if self._snapshot else 0

    def save(self, hard_state: HardState | None, entries: list[Entry]) -> None:
        """Make a Ready's hard state and entries durable: one write, one fsync (group commit)."""
        if hard_state is not None and self.volatile_vote:
            hard_state = HardState(term=0, vote=None, commit=hard_state.commit)
        parts: list[bytes] = []
        if entries:
            base = self._snapshot.index if self._snapshot else 0
            self._append_mem(entries, base)
            parts.extend([_entry_record(e) for e in entries])
        need_sync = bool(entries)
        if hard_state is not None and hard_state != self._hard:
            parts.append(_hard_state_record(hard_state))
            # a change of commit alone need not be fsynced: it is re-learned from the leader
            need_sync |= (hard_state.term, hard_state.vote) != (self._hard.term, self._hard.vote)
            self._hard = hard_state
        if not parts:
            return
        data = b"".join(parts)
        if self.ack_before_sync:
            with self._lock:
                self._pending += data
            return
        fh = self._wal()
        fh.write(data)
        if need_sync:
            fh.sync()

    def _flush_loop(self) -> None:
        while not self._stop.wait(ACK_BEFORE_SYNC_FLUSH_S):
            self.flush_pending()

    def flush_pending(self) -> None:
        """ack-before-sync: write out and fsync what the process has buffered."""
        with self._lock:
            data = bytes(self._pending)
            self._pending.clear()
            if data:
                fh = self._wal()
                fh.write(data)
                fh.sync()

    def save_snapshot(self, snap: Snapshot) -> None:
        """Persist a snapshot, then compact the log to the entries after it.

        Used both for snapshots this node takes and for ones received by InstallSnapshot (in
        which case a log that does not match the snapshot is discarded entirely).
        """
        if self._snapshot is not None and snap.index <= self._snapshot.index:
            return
        fs = self.fs
        data = _JSON.encode(snap.to_dict()).encode()
        final = self._snap_path(snap)
        tmp = final.removesuffix(".snap") + ".tmp"
        f = fs.create(tmp)
        f.write(HEADER.pack(len(data), zlib.crc32(data)) + data)
        f.sync()
        f.close()
        fs.replace(tmp, final)
        fs.sync_dir(self.dir)
        old_snap = self._snapshot
        base = old_snap.index if old_snap else 0
        keep: list[Entry] = []
        pos = snap.index - base - 1
        if 0 <= pos < len(self._entries) and self._entries[pos].term == snap.term:
            keep = self._entries[pos + 1 :]
        self._snapshot = snap
        self._entries = keep
        if self._hard.commit < snap.index:
            self._hard = HardState(self._hard.term, self._hard.vote, snap.index)
        self._rewrite_wal()
        if old_snap is not None:
            fs.unlink(self._snap_path(old_snap))

    def _snap_path(self, snap: Snapshot) -> str:
        return self._path(f"snap-{snap.index:012d}-{snap.term:012d}.snap")

    def _rewrite_wal(self) -> None:
        if self.ack_before_sync:
            self.flush_pending()
        fs = self.fs
        new_seq = self._wal_seq + 1
        path = self._wal_path(new_seq)
        parts = [encode_record({"h": self._hard.to_dict()})]
        parts.extend([_entry_record(e) for e in self._entries])
        f = fs.create(path)
        f.write(b"".join(parts))
        f.sync()
        f.close()
        fs.sync_dir(self.dir)
        old_fh, old_seq = self._wal(), self._wal_seq
        self._wal_seq = new_seq
        self._fh = fs.open_append(path)
        old_fh.close()
        fs.unlink(self._wal_path(old_seq))
        fs.sync_dir(self.dir)

    def close(self) -> None:
        """Flush what is buffered (ack-before-sync) and close the log."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=2)
        if self._fh is not None:
            if self.ack_before_sync:
                self.flush_pending()
            self._fh.close()
            self._fh = None
