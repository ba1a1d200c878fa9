"""Durable storage: what a node recovers after a crash, and how it refuses damaged data."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from raftnode.storage import HEADER, CorruptLog, Storage
from raftnode.types import Entry, HardState, Membership, Snapshot


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(term, i, data={"op": "put", "key": f"k{i}", "value": i}) for i in range(lo, hi + 1)]


def reopen(d: Path, unsafe: frozenset[str] = frozenset()):
    s = Storage(d, unsafe)
    return s, s.recover()


def wal(d: Path) -> Path:
    (path,) = d.glob("wal-*.log")
    return path


def test_hard_state_and_entries_survive_reopen(tmp_path: Path) -> None:
    s, rec = reopen(tmp_path)
    assert rec.hard_state == HardState() and rec.entries == [] and rec.snapshot is None
    s.save(HardState(3, "n2", 0), entries(1, 5, term=3))
    s.save(HardState(3, "n2", 4), [])
    # no close(): as after kill -9
    _, rec = reopen(tmp_path)
    assert rec.hard_state == HardState(3, "n2", 4)
    assert rec.entries == entries(1, 5, term=3)


def test_an_entry_at_a_stored_index_replaces_the_tail(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(HardState(1, "n1", 0), entries(1, 5, term=1))
    s.save(HardState(2, "n3", 0), entries(3, 3, term=2))  # conflict at 3: 3..5 replaced
    _, rec = reopen(tmp_path)
    assert [(e.index, e.term) for e in rec.entries] == [(1, 1), (2, 1), (3, 2)]


def test_torn_tail_is_truncated_and_reported(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(HardState(1, None, 0), entries(1, 3))
    s.close()
    size = wal(tmp_path).stat().st_size
    with open(wal(tmp_path), "ab") as f:
        f.write(HEADER.pack(500, 0) + b'{"e": {"ter')  # a record cut short by a crash
    _, rec = reopen(tmp_path)
    assert rec.entries == entries(1, 3)
    assert rec.truncated_bytes == HEADER.size + 11 and rec.truncated_file == str(wal(tmp_path))
    assert wal(tmp_path).stat().st_size == size


def test_bad_checksum_in_the_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(None, entries(1, 3))
    s.close()
    raw = bytearray(wal(tmp_path).read_bytes())
    raw[-2] ^= 0x55
    wal(tmp_path).write_bytes(bytes(raw))
    _, rec = reopen(tmp_path)
    assert [e.index for e in rec.entries] == [1, 2]
    assert rec.truncated_bytes > 0


def test_zero_filled_tail_is_a_torn_tail(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(HardState(1, None, 0), entries(1, 2))
    s.close()
    with open(wal(tmp_path), "ab") as f:
        f.write(b"\0" * 4096)  # the file grew but the data never reached the disk
    _, rec = reopen(tmp_path)
    assert [e.index for e in rec.entries] == [1, 2] and rec.truncated_bytes == 4096


def test_corrupt_record_mid_log_refuses_to_start_naming_file_and_offset(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(HardState(1, None, 0), entries(1, 1))
    second_record = wal(tmp_path).stat().st_size
    s.save(None, entries(2, 6))
    s.close()
    raw = bytearray(wal(tmp_path).read_bytes())
    raw[second_record + HEADER.size + 3] ^= 0xFF  # damage entry 2, entries 3..6 follow
    wal(tmp_path).write_bytes(bytes(raw))
    before = wal(tmp_path).read_bytes()
    with pytest.raises(CorruptLog) as info:
        reopen(tmp_path)
    assert info.value.offset == second_record
    assert str(wal(tmp_path)) in str(info.value) and f"at byte {second_record}" in str(info.value)
    assert wal(tmp_path).read_bytes() == before  # nothing was dropped or rewritten


def test_snapshot_compacts_the_log_and_keeps_later_entries(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(HardState(2, "n1", 8), entries(1, 10, term=2))
    m = Membership({"n1": "h:1", "n2": "h:2", "n3": "h:3"})
    s.save_snapshot(Snapshot(8, 2, m, {"data": {"k": 1}}))
    s.save(None, entries(11, 12, term=2))
    assert len(list(tmp_path.glob("wal-*.log"))) == 1
    _, rec = reopen(tmp_path)
    assert rec.snapshot == Snapshot(8, 2, m, {"data": {"k": 1}})
    assert [e.index for e in rec.entries] == [9, 10, 11, 12]
    assert rec.hard_state.term == 2 and rec.hard_state.vote == "n1"


def test_installed_snapshot_that_conflicts_with_the_log_discards_it(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(HardState(1, None, 0), entries(1, 10, term=1))
    s.save_snapshot(Snapshot(6, 3, Membership({"n1": "h:1"}), None))  # term 3 at 6: not ours
    _, rec = reopen(tmp_path)
    assert rec.snapshot is not None and rec.snapshot.index == 6 and rec.entries == []


def test_corrupt_snapshot_refuses_to_start(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path)
    s.save(HardState(1, None, 0), entries(1, 3))
    s.save_snapshot(Snapshot(3, 1, Membership({"n1": "h:1"}), {"x": 1}))
    (snap,) = tmp_path.glob("snap-*.snap")
    raw = bytearray(snap.read_bytes())
    raw[-3] ^= 1
    snap.write_bytes(bytes(raw))
    with pytest.raises(CorruptLog, match="snapshot checksum"):
        reopen(tmp_path)


def test_volatile_vote_forgets_term_and_vote(tmp_path: Path) -> None:
    s, _ = reopen(tmp_path, frozenset({"volatile-vote"}))
    s.save(HardState(7, "n2", 0), entries(1, 2, term=7))
    _, rec = reopen(tmp_path, frozenset({"volatile-vote"}))
    assert (rec.hard_state.term, rec.hard_state.vote) == (0, None)  # could vote again in term 7
    assert len(rec.entries) == 2
    # the safe build remembers both
    s, _ = reopen(tmp_path / "safe")
    s.save(HardState(7, "n2", 0), [])
    _, rec = reopen(tmp_path / "safe")
    assert (rec.hard_state.term, rec.hard_state.vote) == (7, "n2")


def test_ack_before_sync_loses_acknowledged_writes_on_a_crash(tmp_path: Path) -> None:
    unsafe = frozenset({"ack-before-sync"})
    s, _ = reopen(tmp_path, unsafe)
    s.save(HardState(1, "n1", 0), entries(1, 3))  # returns at once: only in the process
    assert os.path.getsize(wal(tmp_path)) == 0
    _, rec = reopen(tmp_path)  # a crash now (no close): nothing on disk
    assert rec.entries == []
    time.sleep(0.5)  # the timer flushes eventually
    _, rec = reopen(tmp_path)
    assert rec.entries == entries(1, 3)
    s.close()


def test_commit_only_change_is_written_without_waiting_for_fsync(tmp_path: Path, monkeypatch) -> None:
    s, _ = reopen(tmp_path)
    calls = []
    monkeypatch.setattr("raftnode.fs._sync", lambda fd: calls.append(fd))
    s.save(HardState(1, "n1", 0), entries(1, 2))
    s.save(HardState(1, "n1", 2), [])  # only commit moved
    s.save(HardState(2, None, 2), [])  # term moved: must be durable
    assert len(calls) == 2


def test_entry_and_hard_state_records_are_the_generic_json_records_byte_for_byte() -> None:
    from raftnode.storage import _entry_record, _hard_state_record, encode_record

    for e in [Entry(1, 2, data={"op": "put", "key": 'k"\\', "value": [1, "é", None]}),
              Entry(3, 4, "config", {"voters": {"a": "127.0.0.1:1"}}), Entry(2, 5, data=None)]:
        assert _entry_record(e) == encode_record({"e": e.to_dict()})
    for hs in [HardState(1, None, 0), HardState(5, "n1", 7)]:
        assert _hard_state_record(hs) == encode_record({"h": hs.to_dict()})
