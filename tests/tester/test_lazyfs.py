"""lazyfs loses what a crashed machine's disk may lose, per the one durability model the
simulator's disk shares (tester/lazyfs/durable.py): the model itself, then a real FUSE mount in
a temporary directory, with raftnode's real storage recovering from what it left."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raftnode.fs import RealFS
from raftnode.storage import Storage
from raftnode.types import Entry, HardState
from tester.lazyfs.durable import Journal, Tree, keep_after_crash
from tester.lazyfs.node import request, why_not
from tester.sim.disk import _Bytes

ROOT = Path(__file__).resolve().parents[2]


# ---- the model ---------------------------------------------------------------------------
def _replayed(durable: bytes, changes: list, budget: int) -> bytes:
    """What keeping ``budget`` units of ``changes`` should leave (a write costs its length, a
    size change one)."""
    out = bytearray(durable)
    for offset, data in changes:
        if budget <= 0:
            break
        if data is None:
            out = out[:offset] + bytes(max(0, offset - len(out)))
            budget -= 1
            continue
        piece = data[:budget]
        out = out + bytes(max(0, offset - len(out)))
        out[offset:offset + len(piece)] = piece
        budget -= len(piece)
    return bytes(out)


def test_a_crash_keeps_the_durable_bytes_and_a_prefix_of_the_later_changes():
    for seed in range(300):
        rng = random.Random(seed)
        content, journal = _Bytes(), Journal()
        content.pwrite(0, bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
        durable = bytes(content.data)
        changes = []
        for _ in range(rng.randrange(1, 6)):
            if rng.random() < 0.25:
                size = rng.randrange(60)
                journal.truncate(content, size)
                changes.append((size, None))
            else:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
                offset = rng.randrange(len(content.data) + 5)
                journal.write(content, offset, data)
                changes.append((offset, data))
        final = bytes(content.data)
        keep = keep_after_crash(rng, journal.unsynced)
        whole = keep == journal.unsynced
        journal.crash(content, keep)
        assert bytes(content.data) == (final if whole else _replayed(durable, changes, keep))
        if keep == 0:
            assert bytes(content.data) == durable
        assert not journal.dirty()


def test_keep_modes_lose_everything_keep_everything_or_cut_strictly_inside():
    rng = random.Random(1)
    assert keep_after_crash(rng, 10, "lose") == 0
    assert keep_after_crash(rng, 10, "keep") == 10
    assert all(0 <= keep_after_crash(rng, 10, "torn") < 10 for _ in range(50))
    drawn = {keep_after_crash(rng, 10) for _ in range(200)}
    assert 0 in drawn and 10 in drawn and drawn - {0, 10}
    with pytest.raises(ValueError, match="crash mode 'x'"):
        keep_after_crash(rng, 10, "x")


def test_entries_not_followed_by_a_directory_fsync_are_undone_and_synced_ones_kept():
    t = Tree()
    t.link("/d", t.new_dir(), durable=True)
    a, b = t.new_file(), t.new_file()
    t.link("/d/a", a)
    t.dir("/d").sync()
    t.link("/d/b.tmp", b)
    t.rename("/d/b.tmp", "/d/b")  # renamed into place, directory never fsynced
    t.unlink("/d/a")  # removed, never fsynced
    t.crash(random.Random(0), lambda f: None)
    assert t.lookup("/d/a") is a and t.lookup("/d/b") is None


# ---- a real mount --------------------------------------------------------------------------
@pytest.fixture
def mounted(tmp_path):
    """lazyfs mounted at tmp/m over state tmp/s, unmounted and stopped after the test."""
    why = why_not()
    if why or os.geteuid() != 0:
        pytest.skip(f"lazyfs needs root and FUSE: {why or 'not root'}")
    m, s = tmp_path / "m", tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tester.lazyfs.node", "mount", str(s), str(m)],
                            env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(m):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "lazyfs did not mount in 10 s"
            time.sleep(0.02)
        yield m, s
    finally:
        subprocess.run(["fusermount3", "-u", str(m)], check=False, capture_output=True)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert not os.path.ismount(m)


def _fsync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def test_a_mount_loses_unsynced_appends_and_undoes_an_unsynced_rename(mounted):
    m, s = mounted
    with open(m / "log", "ab") as f:
        f.write(b"durable")
        f.flush()
        os.fsync(f.fileno())
        f.write(b"-lost")
    _fsync_dir(m)
    with open(m / "snap.tmp", "wb") as f:
        f.write(b"snapshot")
        f.flush()
        os.fsync(f.fileno())
    os.rename(m / "snap.tmp", m / "snap")  # no directory fsync after it
    (m / "gone").mkdir()
    assert (m / "log").read_bytes() == b"durable-lost"  # reads see the page cache
    out = request(str(s), {"op": "crash", "mode": "lose", "seed": 1})
    assert out["ok"] and out["bytes"] >= len(b"-lost"), out
    assert (m / "log").read_bytes() == b"durable"
    assert sorted(os.listdir(m)) == ["log"]
    assert sorted(os.listdir(s / "root")) == ["log"]  # the backing tree itself


def test_a_torn_crash_keeps_a_strict_prefix_of_the_unsynced_bytes(mounted):
    m, s = mounted
    kept = set()
    with open(m / "log", "ab") as f:
        f.write(b"base")
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(m)
    for seed in range(8):
        with open(m / "log", "ab") as f:
            f.write(b"0123456789")
        assert request(str(s), {"op": "crash", "mode": "torn", "seed": seed})["ok"]
        data = (m / "log").read_bytes()
        assert data.startswith(b"base") and len(data) < 14 and b"base0123456789".startswith(data)
        kept.add(len(data))
        with open(m / "log", "r+b") as f:  # back to the base, durably, for the next round
            f.truncate(4)
            os.fsync(f.fileno())
    assert len(kept) > 1


def test_raftnode_storage_recovers_the_fsynced_log_from_a_crashed_mount(mounted):
    m, s = mounted
    st = Storage(str(m), fs=RealFS(), flusher=False)
    st.recover()
    st.save(HardState(1, "n1", 0), [Entry(1, i, data={"op": "put", "key": "k", "value": i})
                                     for i in (1, 2, 3)])
    st.close()
    assert request(str(s), {"op": "crash", "mode": "random", "seed": 3})["ok"]
    rec = Storage(str(m), fs=RealFS(), flusher=False).recover()
    assert [e.index for e in rec.entries] == [1, 2, 3]


# ---- where it cannot run -------------------------------------------------------------------
def test_a_node_without_dev_fuse_is_told_so_in_one_line(monkeypatch):
    real = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if p == "/dev/fuse" else real(p))
    why = why_not()
    assert why and "/dev/fuse" in why and "\n" not in why


def test_the_disk_family_is_left_out_for_an_adapter_without_a_data_directory():
    from tester.nemesis import Disk, Env

    class NoDataDir:
        name = "nodir"

        def kill(self, remote, node): ...

        def start(self, remote, node): ...

    env = Env(NoDataDir(), [], {}, random.Random(0))
    assert Disk({}).probe(env) == "the database adapter (nodir) names no data directory (data_dir)"
    with pytest.raises(ValueError, match="disk_modes: unknown mode 'gone'"):
        Disk({"disk_modes": ["gone"]})


def test_an_unknown_disk_mode_is_refused_up_front(capsys):
    from tester.cli import main as raftlab

    code = raftlab(["test", "--nodes", "127.0.0.1", "--nemesis", "disk",
                    "--nemesis-opt", 'disk_modes=["gone"]'])
    assert code == 254
    assert "disk_modes: unknown mode 'gone'" in capsys.readouterr().err
