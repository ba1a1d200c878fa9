"""End to end on loopback: real raftnode processes, started from the zipapp under plain python3.

These show what the issue asks of the whole system: 3 and 5 nodes elect a leader and
replicate, survive the leader's kill -9, keep every acknowledged write across a restart of all
nodes, add and remove a member; and that peers without the secret are refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from raftnode import wire
from raftnode.localcluster import FAKETIME_LIB, LocalCluster
from raftnode.types import MSG_VOTE, Message
from raftnode.zipapp import build
from tests.conftest import require_root_tools

# the system's python3 (not this venv's): the zipapp must need nothing but the interpreter
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3") or "python3"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("zipapp") / "raftnode.pyz")


def put_ok(cluster: LocalCluster, node: str, key: str, value: object, tries: int = 50) -> None:
    """Write through ``node``, retrying definite failures (e.g. during an election)."""
    with cluster.client(node) as c:
        for _ in range(tries):
            r = c.put(key, value)
            if r["status"] == "ok":
                return
            assert r["status"] == "fail", r  # an unknown outcome would make the test ambiguous
            time.sleep(0.1)
    raise AssertionError(f"put {key} through {node} never succeeded: {r}")


def read(cluster: LocalCluster, node: str, key: str) -> object:
    with cluster.client(node) as c:
        for _ in range(50):
            r = c.get(key)
            if r["status"] == "ok":
                return r["value"]
            time.sleep(0.1)
    raise AssertionError(f"get {key} through {node}: {r}")


@pytest.mark.parametrize("size", [3, 5])
def test_cluster_elects_replicates_and_survives_leader_kill(tmp_path: Path, app: Path, size: int) -> None:
    with LocalCluster(tmp_path, size, zipapp=app, python=PYTHON) as cl:
        leader = cl.wait_leader()
        follower = next(n for n in cl.addrs if n != leader)
        put_ok(cl, follower, "k", "v1")  # forwarded by the follower to the leader
        for n in cl.addrs:
            assert read(cl, n, "k") == "v1"  # linearizable from every node

        cl.kill(leader)  # kill -9
        survivors = [n for n in cl.addrs if n != leader]
        new_leader = cl.wait_leader(among=survivors)
        assert new_leader != leader
        put_ok(cl, survivors[0], "k", "v2")
        assert read(cl, survivors[-1], "k") == "v2"

        cl.start(leader)  # the old leader rejoins as a follower and catches up
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = cl.status(leader)
            if st and st["role"] == "follower" and st["applied"] >= cl.status(new_leader)["commit"]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{leader} did not catch up: {cl.status(leader)}")
        roles = [e for e in cl.events(new_leader) if e["event"] == "role"]
        assert any(e["role"] == "leader" for e in roles)


def test_every_acknowledged_write_survives_a_restart_of_all_nodes(tmp_path: Path, app: Path) -> None:
    with LocalCluster(tmp_path, 3, zipapp=app, python=PYTHON) as cl:
        cl.wait_leader()
        acked = {}
        with cl.client("n2") as c:
            for i in range(60):
                r = c.put(f"key{i % 7}", i)
                if r["status"] == "ok":
                    acked[f"key{i % 7}"] = i
        assert len(acked) == 7
        for n in list(cl.addrs):
            cl.kill(n)  # all at once, no clean shutdown
        cl.start()
        cl.wait_leader()
        for key, value in acked.items():
            assert read(cl, "n3", key) == value
        starts = [e for e in cl.events("n1") if e["event"] == "started"]
        assert len(starts) == 2 and starts[1]["last_index"] >= 60


def test_add_then_remove_a_member_while_serving(tmp_path: Path, app: Path) -> None:
    with LocalCluster(tmp_path, 3, zipapp=app, python=PYTHON) as cl:
        cl.wait_leader()
        put_ok(cl, "n1", "before", 1)
        n4 = cl.new_node()
        with cl.client("n2", timeout=30) as c:
            r = c.add_member(n4, cl.addrs[n4])
        assert r["status"] == "ok", r
        assert n4 in r["value"]["voters"]
        assert read(cl, n4, "before") == 1  # caught up as a learner before promotion
        assert any(e["event"] == "membership" for e in cl.events(n4))
        cl.kill(n4)  # the new voter restarts from its own log, which holds its membership
        cl.start(n4)
        put_ok(cl, "n1", "before", 2)
        deadline = time.monotonic() + 10
        while (st := cl.status(n4)) is None or st["applied"] < cl.status(cl.wait_leader())["commit"]:
            assert time.monotonic() < deadline, f"{n4} did not rejoin: {st}"
            time.sleep(0.05)
        assert n4 in st["members"]["voters"]

        leader = cl.wait_leader()
        with cl.client(n4, timeout=30) as c:
            r = c.remove_member(leader)  # removing the leader itself: it steps down
        assert r["status"] in ("ok", "unknown"), r
        rest = [n for n in cl.addrs if n != leader]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = cl.status(rest[0])
            if st and leader not in st["members"]["voters"] and st["leader"] in rest:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{leader} still a member: {cl.status(rest[0])}")
        put_ok(cl, rest[-1], "after", 2)
        assert read(cl, rest[0], "after") == 2
        assert set(cl.status(rest[0])["members"]["voters"]) == set(rest)


def test_peer_frames_with_a_wrong_secret_are_refused_and_logged(tmp_path: Path, app: Path) -> None:
    with LocalCluster(tmp_path, 3, zipapp=app, python=PYTHON) as cl:
        leader = cl.wait_leader()
        term = cl.status(leader)["term"]
        host, port = wire.parse_addr(cl.addrs[leader])
        forged = Message(MSG_VOTE, "n2", leader, term + 100, log_term=99, index=10**6)
        with socket.create_connection((host, port)) as s:
            s.sendall(wire.PEER_MAGIC + wire.encode_frame(b"not-the-secret", [forged]))
            s.settimeout(5)
            assert s.recv(1) == b""  # the node hangs up
        # also a correctly signed frame from an id outside the cluster
        stranger = Message(MSG_VOTE, "intruder", leader, term + 100, log_term=99, index=10**6)
        with socket.create_connection((host, port)) as s:
            s.sendall(wire.PEER_MAGIC + wire.encode_frame(cl.secret_file.read_bytes(), [stranger]))
            s.settimeout(5)
            assert s.recv(1) == b""
        rejected = [e for e in cl.events(leader) if e["event"] == "peer_rejected"]
        assert any("bad-mac" in e["reason"] for e in rejected)
        assert any("intruder" in e["reason"] for e in rejected)
        st = cl.status(leader)
        assert st["role"] == "leader" and st["term"] == term  # nothing was applied


def test_corrupt_record_mid_log_stops_the_node_naming_file_and_offset(tmp_path: Path, app: Path) -> None:
    with LocalCluster(tmp_path, 3, zipapp=app, python=PYTHON) as cl:
        cl.wait_leader()
        for i in range(10):
            put_ok(cl, "n1", f"k{i}", "x" * 50)
        cl.kill("n3", signal.SIGTERM)
    wal = next((tmp_path / "n3" / "data").glob("wal-*.log"))
    raw = bytearray(wal.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte in the middle
    wal.write_bytes(bytes(raw))
    proc = subprocess.run(cl.command("n3"), capture_output=True, text=True, timeout=30,
                          env={**os.environ})
    assert proc.returncode == 1
    assert "corrupt log" in proc.stderr and str(wal) in proc.stderr and "at byte" in proc.stderr


def test_zipapp_runs_under_plain_python3(tmp_path: Path, app: Path) -> None:
    out = subprocess.run([PYTHON, str(app), "client", "--addr", "nonsense", "status"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 254 and "HOST:PORT" in out.stderr
    out = subprocess.run([PYTHON, "-I", str(app), "zipapp", "--out", str(tmp_path / "again.pyz")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "again.pyz").stat().st_size > 1000


@pytest.mark.skipif(not Path(FAKETIME_LIB).exists(), reason="libfaketime not installed")
def test_ticks_follow_the_node_clock_so_a_clock_jump_triggers_a_campaign(tmp_path: Path) -> None:
    cl = LocalCluster(tmp_path, 3)
    clocks = cl.fake_clocks()
    with cl:
        leader = cl.wait_leader(timeout=20)
        follower = next(n for n in cl.addrs if n != leader)
        term = cl.status(leader)["term"]
        before = len(cl.events(follower))
        time.sleep(0.5)  # control: with a steady clock the follower does not campaign
        assert not [e for e in cl.events(follower)[before:] if e["event"] == "election"]
        clocks[follower].write_text("+10s\n")  # its election timer expires at once
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(e["event"] == "election" for e in cl.events(follower)[before:]):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no campaign on {follower} after its clock jumped")
        time.sleep(0.5)
        # PreVote: the others heard from the leader recently, so nobody's term moved
        st = cl.status(leader)
        assert st["role"] == "leader" and st["term"] == term


def test_lagging_node_catches_up_by_snapshot_and_recovers_from_it(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3, extra_args=("--snapshot-entries", "40")) as cl:
        leader = cl.wait_leader()
        lagging = next(n for n in cl.addrs if n != leader)
        cl.kill(lagging)
        with cl.client(leader) as c:
            for i in range(150):  # several snapshots and compactions while it is down
                assert c.put(f"k{i % 10}", i)["status"] == "ok"
        assert cl.status(leader)["snapshot_index"] >= 80
        cl.start(lagging)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            st = cl.status(lagging)
            if st and st["applied"] >= cl.status(leader)["commit"]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{lagging} did not catch up: {cl.status(lagging)}")
        assert any(e["event"] == "snapshot" and e.get("kind") == "installed" for e in cl.events(lagging))
        data = tmp_path / lagging / "data"
        assert list(data.glob("snap-*.snap")) and len(list(data.glob("wal-*.log"))) == 1
        for n in list(cl.addrs):
            cl.kill(n)
        cl.start()
        cl.wait_leader()
        for i in range(140, 150):
            assert read(cl, lagging, f"k{i % 10}") == i  # every node restarted from snapshot + log


def test_unsafe_ack_before_sync_loses_acknowledged_writes_on_kill_9(tmp_path: Path) -> None:
    """The switch the tester must catch: the same run as the restart test above loses data."""
    with LocalCluster(tmp_path, 3, unsafe=("ack-before-sync",)) as cl:
        # A kill that lands just after a flush tick can miss the window (the flusher runs
        # every 0.2 s), so a few rounds are allowed; the safe build keeps every write in all.
        for round_ in range(3):
            leader = cl.wait_leader()
            acked = {}
            with cl.client(leader) as c:
                for i in range(100):
                    if c.put(f"r{round_}k{i}", i)["status"] == "ok":
                        acked[f"r{round_}k{i}"] = i
            for p in cl.procs.values():  # every node at once, right after the last ack
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
            for n in list(cl.addrs):
                cl.kill(n)  # reaps them
            cl.start()
            cl.wait_leader()
            assert len(acked) == 100
            lost = [k for k, v in acked.items() if read(cl, "n1", k) != v]
            if lost:
                break
        assert lost, "ack-before-sync kept every write in 3 rounds"


CLIENT_IP = "127.0.0.2"  # loopback source address whose traffic a partition lets through


@contextlib.contextmanager
def isolated(cl: LocalCluster, node: str):
    """iptables: cut ``node``'s port off from its peers (clients from CLIENT_IP still reach it)."""
    require_root_tools("iptables")
    port = cl.addrs[node].rsplit(":", 1)[1]
    rules = [["-i", "lo", "-p", "tcp", "--dport", port, "!", "-s", CLIENT_IP, "-j", "DROP"],
             ["-i", "lo", "-p", "tcp", "--sport", port, "!", "-d", CLIENT_IP, "-j", "DROP"]]
    added = []
    try:
        for r in rules:
            subprocess.run(["iptables", "-w", "-I", "INPUT", *r], check=True)
            added.append(r)
        yield
    finally:
        for r in added:
            subprocess.run(["iptables", "-w", "-D", "INPUT", *r], check=False)


def request_from_client_ip(cl: LocalCluster, node: str, req: dict) -> dict:
    host, port = wire.parse_addr(cl.addrs[node])
    with socket.create_connection((host, port), timeout=10, source_address=(CLIENT_IP, 0)) as s:
        s.sendall(json.dumps(req).encode() + b"\n")
        return json.loads(s.makefile().readline())


@pytest.mark.e2e
def test_partitioned_leader_is_replaced_and_rejoins_soon_after_the_heal(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3) as cl:
        old = cl.wait_leader()
        with isolated(cl, old):
            new = cl.wait_leader(among=[n for n in cl.addrs if n != old], timeout=20)
            put_ok(cl, new, "during", 1)
            time.sleep(2)  # long enough for TCP to back off its retransmissions
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            st, lead = cl.status(old), cl.status(new)
            if st and st["role"] == "follower" and st["leader"] == lead["leader"] and \
                    st["applied"] >= lead["commit"]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{old} did not rejoin within 5 s of the heal: {cl.status(old)}")
        assert any(e["event"] == "check_quorum_lost" for e in cl.events(old))


@pytest.mark.e2e
@pytest.mark.parametrize("unsafe", [(), ("local-reads",)], ids=["safe", "local-reads"])
def test_isolated_old_leader_serves_stale_reads_only_with_local_reads(tmp_path: Path, unsafe) -> None:
    with LocalCluster(tmp_path, 3, unsafe=unsafe) as cl:
        old = cl.wait_leader()
        put_ok(cl, old, "k", "before")
        with isolated(cl, old):
            new = cl.wait_leader(among=[n for n in cl.addrs if n != old], timeout=20)
            put_ok(cl, new, "k", "after")
            r = request_from_client_ip(cl, old, {"id": 1, "op": "get", "key": "k"})
        if unsafe:
            assert (r["status"], r["value"]) == ("ok", "before")  # a stale read the tester must catch
        else:
            assert r["status"] == "fail", r  # ReadIndex cannot confirm leadership: no stale value


@pytest.mark.e2e
def test_a_deposed_leader_does_not_answer_a_membership_change_from_its_stale_configuration(
        tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 5) as cl:
        old = cl.wait_leader()
        with isolated(cl, old):
            rest = [n for n in cl.addrs if n != old]
            new = cl.wait_leader(among=rest, timeout=20)
            gone = next(n for n in rest if n != new)
            with cl.client(new, timeout=30) as c:
                assert c.remove_member(gone)["status"] == "ok"
            # the cut-off node still lists `gone` as a voter: "already a member" would be a lie
            r = request_from_client_ip(cl, old, {"id": 2, "op": "add-member", "key": gone,
                                                 "value": cl.addrs[gone]})
        assert r["status"] != "ok", r
