"""raftnode's node events, end to end on loopback (real processes from the zipapp): they are
emitted, they satisfy every property on the safe build through kills, restarts and snapshots,
and they expose bugs no client read shows: a lost acknowledged write on a key that nobody
reads again, and a quorum one short before any client has come."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import raftnode
from raftnode.localcluster import LocalCluster
from raftnode.zipapp import build
from tester import nodeevents
from tests.raftnode.test_cluster_e2e import PYTHON, put_ok

SNAPSHOT_EVERY = ("--snapshot-entries", "20")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("zipapp") / "raftnode.pyz")


def write_keys(cl: LocalCluster, prefix: str, n: int) -> None:
    """n writes of distinct keys through the current leader (each acknowledged)."""
    leader = cl.wait_leader()
    for i in range(n):
        put_ok(cl, leader, f"{prefix}{i}", i)


def kill_all_and_restart(cl: LocalCluster) -> None:
    for n in list(cl.running()):
        cl.kill(n)
    cl.start()
    cl.wait_leader()


def converge(cl: LocalCluster, timeout: float = 10.0) -> None:
    """Wait until every node has applied the leader's commit index."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sts = [cl.status(n) for n in cl.running()]
        if all(sts) and len({s["applied"] for s in sts}) == 1:
            return
        time.sleep(0.1)
    raise AssertionError(f"nodes did not converge: {sts}")


def test_safe_raftnode_emits_node_events_that_hold_through_kills_restarts_and_snapshots(
        tmp_path: Path, app: Path) -> None:
    with LocalCluster(tmp_path, 3, zipapp=app, python=PYTHON, extra_args=SNAPSHOT_EVERY) as cl:
        write_keys(cl, "a", 30)
        leader = cl.wait_leader()
        lagging = next(n for n in cl.addrs if n != leader)
        cl.kill(lagging)
        write_keys(cl, "b", 50)  # the leader compacts past the lagging node's log
        cl.start(lagging)
        converge(cl)
        kill_all_and_restart(cl)  # every node restores its snapshot and re-applies the rest
        write_keys(cl, "c", 10)
        converge(cl)
        events = {n: cl.events(n) for n in cl.addrs}
    res = nodeevents.check(tmp_path)
    assert res is not None and res["valid"] is True, res["violations"]
    assert res["incarnations"] == 7 and res["indexes"] >= 90
    snaps = [e for e in events[lagging] if e["event"] == "snapshot" and e["kind"] == "installed"]
    assert snaps, "the lagging node should have caught up by a snapshot"
    restarts = [e for e in events[leader] if e["event"] == "started"][1:]
    assert restarts and restarts[-1]["snapshot_index"] > 0 and restarts[-1]["fresh"] is False
    won = [e for e in events[leader] if e["event"] == "election" and e["kind"] == "won"]
    assert won and {"last_index", "last_term", "votes", "voters"} <= set(won[0])
    assert len(won[0]["votes"]) >= 2 and len(won[0]["voters"]) == 3
    voted = [e for n in cl.addrs for e in events[n] if e["event"] == "vote"]
    assert any(e["for"] == leader and e["term"] == won[-1]["term"] for e in voted)
    commits = [e for e in events[leader] if e["event"] == "commit"]
    assert commits and all(len(c["acks"]) >= 2 and c["entry_term"] == c["term"] for c in commits)
    applied = next(e for e in events[leader] if e["event"] == "applied")
    index, term, entry_digest, result_digest, command, acked = applied["entries"][0]
    assert (index, command, acked) == (1, "noop", None)
    assert len(entry_digest) == len(result_digest) == 12
    acks = [r for e in events[leader] if e["event"] == "applied" for r in e["entries"] if r[5]]
    assert acks and all(r[5] == r[1] for r in acks)  # each write answered had its own term
    assert applied["commit"] >= index and applied["term"] >= term


def test_a_write_lost_by_ack_before_sync_is_caught_though_nobody_reads_it(
        tmp_path: Path, app: Path) -> None:
    """Acknowledged writes of keys that are never read again: a history of them is linearizable
    whatever the nodes lost. The nodes' own logs show it: they applied entries that their
    restart did not recover (durability), and later replaced them (state-machine-safety)."""
    with LocalCluster(tmp_path, 3, zipapp=app, python=PYTHON,
                      unsafe=("ack-before-sync",)) as cl:
        write_keys(cl, "a", 60)  # all killed right after: the last 200 ms were not on disk
        kill_all_and_restart(cl)
        write_keys(cl, "b", 60)
    res = nodeevents.check(tmp_path)
    assert res is not None and res["valid"] is False
    assert res["properties"]["durability"] >= 1, res["violations"]
    v = next(v for v in res["violations"] if v["property"] == "durability")
    assert v["recovered"] < v["index"]


def mutated_zipapp(tmp: Path, path: str, old: str, new: str) -> Path:
    """raftnode as a zipapp with one line of ``path`` replaced: an ordinary bug, planted."""
    src = tmp / "src"
    shutil.copytree(Path(raftnode.__file__).parent, src / "raftnode",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    f = src / path
    text = f.read_text()
    assert text.count(old) == 1, f"{path} no longer has the line this bug replaces: {old!r}"
    f.write_text(text.replace(old, new))
    out = tmp / "mutant.pyz"
    subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                    "from raftnode.zipapp import build; build(sys.argv[2])", str(src), str(out)],
                   check=True)
    return out


def test_a_quorum_one_short_is_caught_on_the_first_election_without_any_client(
        tmp_path: Path) -> None:
    """A quorum computed as voters // 2: every election and every commit of a 3-node cluster
    needs one node. Nothing a client could read has gone wrong yet; the node events show the
    elections and commits that no majority backed."""
    app = mutated_zipapp(tmp_path, "raftnode/core.py",
                         "return len(self.membership.voters) // 2 + 1",
                         "return len(self.membership.voters) // 2")
    with LocalCluster(tmp_path / "cluster", 3, zipapp=app, python=PYTHON):
        time.sleep(1.5)
    res = nodeevents.check(tmp_path / "cluster")
    assert res is not None and res["valid"] is False
    assert res["properties"]["election-quorum"] >= 1 and res["properties"]["commit-rule"] >= 1
    v = next(v for v in res["violations"] if v["property"] == "election-quorum")
    assert "1 of 3 voters" in v["message"]
