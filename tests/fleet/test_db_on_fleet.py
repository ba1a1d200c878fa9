"""A database deployed to a local fleet: every node serves, a killed or paused leader is replaced.

The same experiment runs against raftnode on 5 nodes and Debian's etcd on 3.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tester import control, fleet
from tester.db import DBError
from tester.dbs.etcd import EtcdDB
from tester.dbs.raftnode import RaftnodeDB

from .conftest import local_fleet, skip_unless_root_tools
from .test_local_fleet import host_state, nothing_left

pytestmark = pytest.mark.e2e
DBS = {"raftnode": (RaftnodeDB, 5, "flraft", ()), "etcd": (EtcdDB, 3, "fletcd", ("etcd",))}


@pytest.fixture(scope="module", params=list(DBS))
def cluster(request) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    cls, n, name, tools = DBS[request.param]
    skip_unless_root_tools(*tools)
    with local_fleet(name, n) as (_f, inv, remotes):
        db = cls()
        control.on_all(remotes, lambda r: db.setup(r, r.node, inv.nodes, {}))
        db.wait_ready(remotes, inv.nodes, timeout=20)
        yield {"db": db, "inv": inv, "remotes": remotes, "name": name}


def new_leader(db: Any, nodes: list, old: str | None, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lead = db.leader(nodes)
        if lead and lead != old:
            return lead
        time.sleep(0.05)
    raise AssertionError(f"no new leader in {timeout} s (old {old})")


def test_write_through_every_node_and_read_it_back_from_every_node(cluster) -> None:  # type: ignore[no-untyped-def]
    db, inv = cluster["db"], cluster["inv"]
    clients = {}
    for n in inv.nodes:
        clients[n.name] = db.client({})
        clients[n.name].open(n)
    try:
        for i, n in enumerate(inv.nodes):
            assert clients[n.name].invoke("write", f"k-{n.name}", i, 5) == ("ok", i, None)
        for reader in inv.nodes:
            for i, n in enumerate(inv.nodes):
                assert clients[reader.name].invoke("read", f"k-{n.name}", None, 5) == \
                    ("ok", i, None)
        c = clients[inv.nodes[1].name]
        assert c.invoke("cas", "k-n1", [0, 10], 5) == ("ok", [0, 10], None)
        assert c.invoke("cas", "k-n1", [0, 11], 5) == ("fail", [0, 11], "cas-mismatch")
        assert clients[inv.nodes[-1].name].invoke("read", "k-n1", None, 5) == ("ok", 10, None)
        assert c.invoke("read", "never-written", None, 5) == ("ok", None, None)
    finally:
        for cl in clients.values():
            cl.close()


def test_nodes_run_under_libfaketime_with_their_own_clock_file(cluster) -> None:  # type: ignore[no-untyped-def]
    db, inv, remotes = cluster["db"], cluster["inv"], cluster["remotes"]
    if db.clock_file(inv.nodes[0]) is None:
        pytest.skip(f"{db.name} reads the clock without libc (Go): libfaketime cannot move it")
    n1 = inv.node("n1")
    env = remotes["n1"].run(
        "tr '\\0' '\\n' < /proc/$(cat /var/lib/raftnode/raftnode.pid)/environ").stdout
    assert "libfaketime.so" in env
    assert "/waitfix-" in env, "Python timed waits need waitfix.so preloaded beside libfaketime"
    assert f"FAKETIME_TIMESTAMP_FILE={db.clock_file(n1)}" in env
    assert remotes["n1"].run(f"cat {db.clock_file(n1)}").stdout.strip() == "+0"


def test_writing_a_nodes_clock_file_moves_that_nodes_clock_only(cluster) -> None:  # type: ignore[no-untyped-def]
    db, inv, remotes = cluster["db"], cluster["inv"], cluster["remotes"]
    if db.clock_file(inv.nodes[0]) is None:
        pytest.skip(f"{db.name} has no clock file")
    old = db.leader(inv.nodes)
    skewed, steady = [n for n in inv.nodes if n.name != old][:2]
    remotes[skewed.name].run(f"echo +100 > {db.clock_file(skewed)}")
    try:
        time.sleep(2.5)  # libfaketime re-reads the file at most once a second (a loaded
        # machine may schedule the node's next clock reading late)
        db.kill(remotes[old], inv.node(old))
        new_leader(db, [n for n in inv.nodes if n.name != old], old)
        now = time.time()

        def last_ts(n) -> float:  # type: ignore[no-untyped-def]
            import json

            lines = remotes[n.name].run("tail -n 1 /var/log/raftnode/node.log").stdout
            return float(json.loads(lines)["ts"])

        assert last_ts(skewed) > now + 50, "the skewed node's events carry its moved clock"
        assert abs(last_ts(steady) - now) < 20, "other nodes keep the real clock"
    finally:
        remotes[skewed.name].run(f"echo +0 > {db.clock_file(skewed)}")
        db.start(remotes[old], inv.node(old))
        time.sleep(1.2)
        db.wait_ready(remotes, inv.nodes, timeout=20)


def test_killed_leader_is_replaced_and_rejoins_after_restart(cluster) -> None:  # type: ignore[no-untyped-def]
    db, inv, remotes = cluster["db"], cluster["inv"], cluster["remotes"]
    old = db.leader(inv.nodes)
    assert old is not None
    db.kill(remotes[old], inv.node(old))
    others = [n for n in inv.nodes if n.name != old]
    lead = new_leader(db, others, old)
    assert lead in {n.name for n in others}
    c = db.client({})
    c.open(inv.node(lead))
    assert c.invoke("write", "after-kill", "v", 5) == ("ok", "v", None)
    c.close()
    db.start(remotes[old], inv.node(old))
    db.wait_ready(remotes, inv.nodes, timeout=20)
    c.open(inv.node(old))
    assert c.invoke("read", "after-kill", None, 5) == ("ok", "v", None)
    c.close()


def test_paused_leader_is_replaced_and_resumes(cluster) -> None:  # type: ignore[no-untyped-def]
    db, inv, remotes = cluster["db"], cluster["inv"], cluster["remotes"]
    old = db.leader(inv.nodes)
    assert old is not None
    db.pause(remotes[old], inv.node(old))
    try:
        others = [n for n in inv.nodes if n.name != old]
        new_leader(db, others, old)
        c = db.client({"client_retries": False})  # one request per op, to the paused node
        c.open(inv.node(old))
        t, _v, err = c.invoke("read", "x", None, 0.5)
        assert (t, err) == ("fail", "timeout")  # a timed-out read is a definite fail
        t, _v, err = c.invoke("write", "x", 1, 0.5)
        assert (t, err) == ("info", "timeout")  # a timed-out write may still happen
        c.close()
        if db.name == "raftnode":  # its client retries (sessions make that safe); etcd's doesn't
            c = db.client({})  # a retrying client resends the request to the next node
            c.open(inv.node(old))
            assert c.invoke("write", "x", 2, 3) == ("ok", 2, None)
            c.close()
    finally:
        db.resume(remotes[old], inv.node(old))
    db.wait_ready(remotes, inv.nodes, timeout=20)


def test_removed_member_is_wiped_and_rejoins_when_added_back(cluster) -> None:  # type: ignore[no-untyped-def]
    db, inv, remotes = cluster["db"], cluster["inv"], cluster["remotes"]
    lead = db.leader(inv.nodes)
    victim = next(n for n in reversed(inv.nodes) if n.name != lead)
    rest = [n for n in inv.nodes if n.name != victim.name]
    db.remove_member(remotes, inv.nodes, victim)
    c = db.client({})
    c.open(rest[0])
    assert c.invoke("write", "membership", "without", 5) == ("ok", "without", None)
    c.close()
    single = db.client({"client_retries": False})
    single.open(victim)
    assert single.invoke("read", "membership", None, 1)[0] == "fail"  # stopped and wiped
    single.close()
    db.add_member(remotes, inv.nodes, victim)
    db.wait_ready(remotes, inv.nodes, timeout=30)
    c.open(victim)
    deadline = time.monotonic() + 10
    while (r := c.invoke("read", "membership", None, 2)) != ("ok", "without", None):
        assert time.monotonic() < deadline, r
        time.sleep(0.1)
    c.close()


def test_fleet_down_leaves_no_namespace_link_mount_or_process(cluster) -> None:  # type: ignore[no-untyped-def]
    name = cluster["name"]
    procs = host_state(name)["processes"]
    assert any("sshd" in p for p in procs)
    db_procs = control.run_all(cluster["remotes"], f"cat {pid_file(cluster['db'])}")
    assert all(r.stdout.strip().isdigit() for r in db_procs.values())
    # the pid files hold node-local pids (each node has its own PID namespace): the host's
    # pids of everything in the fleet's network namespaces, the databases included
    host_pids = [int(p) for n in cluster["inv"].nodes for p in subprocess.run(
        ["ip", "netns", "pids", n.var("raftlab_namespace")], capture_output=True,
        text=True).stdout.split()]
    assert len(host_pids) > 2 * len(db_procs)  # sshd and its wrapper, the databases, ...
    control.close_all(cluster["remotes"])
    fleet.down(name)
    assert nothing_left(name), host_state(name)
    assert not [p for p in host_pids if running(p)], "a process survived down"


def running(pid: int) -> bool:
    """A process that still runs (a killed one waiting to be reaped by init does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def pid_file(db: Any) -> str:
    from tester.dbs import etcd, raftnode

    return etcd.DAEMON.pid_file if isinstance(db, EtcdDB) else raftnode.PID_FILE


def test_a_node_that_cannot_start_is_reported_with_its_error_not_a_timeout() -> None:
    skip_unless_root_tools()
    from tester.dbs.raftnode import NodeExited

    with local_fleet("flbadcfg", 2) as (_f, inv, remotes):
        db = RaftnodeDB(election_timeout_ms="soon")  # raftnode serve rejects this flag value
        control.on_all(remotes, lambda r: db.setup(r, r.node, inv.nodes, {}))
        with pytest.raises(NodeExited, match=r"(?s)n\d: raftnode is not running: .*--election-timeout-ms"):
            db.wait_ready(remotes, inv.nodes, timeout=60)
        with pytest.raises(DBError, match="unknown raftnode unsafe switch 'bogus'"):
            RaftnodeDB(unsafe=["bogus"]).setup(remotes["n1"], inv.node("n1"), inv.nodes, {})
