"""The simulated disk (tester/sim/disk.py) loses what a real disk may lose on a crash, and
raftnode's real storage recovers from it: synced records survive, unsynced ones survive
whole, not at all or torn, and a torn tail is cut off by replay."""

from __future__ import annotations

import pytest

from raftnode.storage import CorruptLog, Storage
from raftnode.types import Entry, HardState
from tester.sim.disk import SimFS


def entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, i, data={"op": "put", "key": "k", "value": i})
            for i in range(first, last + 1)]


def durable_file(fs: SimFS, path: str, data: bytes):
    """A file written, fsynced and its directory fsynced: all of it survives a crash."""
    f = fs.create(path)
    f.write(data)
    f.sync()
    fs.sync_dir(path.rsplit("/", 1)[0])
    return f


def opened(fs: SimFS) -> Storage:
    s = Storage("/n1", fs=fs, flusher=False)
    s.recover()
    return s


def test_synced_data_survives_a_crash_and_a_file_never_dir_synced_does_not():
    fs = SimFS("t")
    durable_file(fs, "/n1/a", b"durable")
    g = fs.create("/n1/b")  # its name was never made durable
    g.write(b"x")
    g.sync()
    fs.crash()
    assert fs.read("/n1/a") == b"durable"
    assert not fs.exists("/n1/b")


def test_unsynced_appends_survive_whole_not_at_all_or_cut_anywhere():
    kept = set()
    for seed in range(60):
        fs = SimFS(str(seed))
        f = durable_file(fs, "/n1/a", b"base")
        f.write(b"0123456789")
        fs.crash()
        data = fs.read("/n1/a")
        assert data.startswith(b"base") and b"base0123456789".startswith(data)
        kept.add(len(data) - 4)
    assert 0 in kept and 10 in kept and kept - {0, 10}, kept  # lost, whole and torn all occur


def test_a_crash_is_decided_by_the_disk_seed_alone():
    def run(seed: str) -> list[bytes]:
        fs = SimFS(seed)
        f = fs.create("/n1/a")
        fs.sync_dir("/n1")
        out = []
        for i in range(20):
            f.write(bytes([65 + i]) * 7)
            fs.crash()
            out.append(fs.read("/n1/a"))
            f = fs.open_append("/n1/a")
        return out

    assert run("s") == run("s")
    assert run("s") != run("other")


def test_storage_keeps_fsynced_entries_and_term_across_any_crash():
    for seed in range(30):
        fs = SimFS(str(seed))
        s = opened(fs)
        s.save(HardState(2, "n1", 0), entries(1, 5))
        s.save(HardState(2, "n1", 3), [])  # commit alone: written, not fsynced
        fs.crash()
        rec = Storage("/n1", fs=fs, flusher=False).recover()
        assert [e.index for e in rec.entries] == [1, 2, 3, 4, 5]
        assert (rec.hard_state.term, rec.hard_state.vote) == (2, "n1")
        assert rec.hard_state.commit in (0, 3)


def test_replay_cuts_a_torn_tail_and_the_log_goes_on_after_it():
    torn = 0
    for seed in range(40):
        fs = SimFS(str(seed))
        s = opened(fs)
        s.save(HardState(1, "n1", 0), entries(1, 2))
        for c in range(1, 3):
            s.save(HardState(1, "n1", c), [])  # unsynced records at the tail
        fs.crash()
        s = Storage("/n1", fs=fs, flusher=False)
        rec = s.recover()
        torn += rec.truncated_bytes > 0
        s.save(None, entries(3, 3))
        fs.crash()
        rec = Storage("/n1", fs=fs, flusher=False).recover()  # no CorruptLog: tail was cut
        assert [e.index for e in rec.entries] == [1, 2, 3]
    assert torn > 0


def test_a_torn_record_followed_by_valid_data_is_refused_as_corrupt():
    fs = SimFS("t")
    s = opened(fs)
    s.save(HardState(1, "n1", 0), entries(1, 2))
    wal = next(n for n in fs.listdir("/n1") if n.startswith("wal-"))
    data = fs.raw(f"/n1/{wal}")
    data[12] ^= 0xFF  # damage the first record; valid ones follow
    with pytest.raises(CorruptLog, match="checksum"):
        Storage("/n1", fs=fs, flusher=False).recover()


def test_a_snapshot_and_the_compacted_log_survive_a_crash():
    from raftnode.types import Membership, Snapshot

    for seed in range(20):
        fs = SimFS(str(seed))
        s = opened(fs)
        s.save(HardState(1, "n1", 4), entries(1, 6))
        s.save_snapshot(Snapshot(4, 1, Membership(voters={"n1": "n1"}), {"data": {"k": 4}}))
        fs.crash()
        rec = Storage("/n1", fs=fs, flusher=False).recover()
        assert rec.snapshot is not None and rec.snapshot.index == 4
        assert [e.index for e in rec.entries] == [5, 6]
        assert rec.hard_state.term == 1


def test_ack_before_sync_buffers_in_the_process_until_the_simulators_flush():
    fs = SimFS("t")
    s = Storage("/n1", {"ack-before-sync"}, fs=fs, flusher=False)
    s.recover()
    s.save(HardState(1, "n1", 0), entries(1, 2))
    fs.crash()  # the process and its buffer are gone
    s = Storage("/n1", {"ack-before-sync"}, fs=fs, flusher=False)
    assert s.recover().entries == []
    s.save(HardState(1, "n1", 0), entries(1, 2))
    s.flush_pending()  # the flush timer: written and fsynced
    fs.crash()
    assert [e.index for e in Storage("/n1", fs=fs, flusher=False).recover().entries] == [1, 2]
