"""``raftlab heal --fleet``: after a run is killed with its faults in force (a partition, packet
loss, moved clocks, a SIGSTOPped raftnode), a new process heals every one on a real fleet."""

from __future__ import annotations

import random

import pytest

from tester import control
from tester import nemesis as nem
from tester.cli import main
from tester.dbs.raftnode import CLOCK, RaftnodeDB

from .conftest import skip_unless_root_tools

pytestmark = pytest.mark.e2e
NAME, SUBNET = "jux", "10.213.65.0/24"


def state(remote: control.Remote) -> tuple[str, str, str]:
    """(the raftlab iptables rules, the clock file, raftnode's process state letter)."""
    rules = remote.run("iptables -w -S | grep raftlab || true").stdout.strip()
    clock = remote.run(f"cat {CLOCK} 2>/dev/null || true").stdout.strip()
    proc = remote.run("ps -o stat= -p \"$(cat /var/lib/raftnode/raftnode.pid)\" || true",
                      check=False).stdout.strip()
    return rules, clock, proc[:1]


def test_heal_undoes_every_fault_a_killed_run_left_on_a_real_fleet(capsys):
    skip_unless_root_tools()
    from tester import fleet

    with fleet.session(NAME, nodes=3, subnet=SUBNET) as (_f, inv, remotes):
        db = RaftnodeDB()
        try:
            control.on_all(remotes, lambda r: db.setup(r, r.node, inv.nodes, {}))
            db.wait_ready(remotes, inv.nodes, timeout=20)
            env = nem.Env(db, inv.nodes, remotes, random.Random(5))
            run = nem.Nemesis.build(env, ["partition", "loss", "clock", "pause"],
                                    {"targets": ["all"], "partitions": ["halves"],
                                     "clock_kinds": ["bump"], "clock_offsets_ms": [-7000]})
            for fault in run.faults.values():  # ... and then the run is killed outright
                assert not fault.start(env).get("errors")
            left = {n: state(r) for n, r in remotes.items()}
            assert all("raftlab-loss" in s[0] for s in left.values()), left
            assert any("raftlab-part" in s[0] for s in left.values()), left
            assert all(float(s[1]) == -7 for s in left.values()), left
            assert all(s[2] == "T" for s in left.values()), left  # stopped (SIGSTOP)

            assert main(["heal", "--fleet", NAME]) == 0
            out = capsys.readouterr().out
            assert out.startswith("healed ") and "partition" in out and "pause" in out
            after = {n: state(r) for n, r in remotes.items()}
            assert all(s[0] == "" for s in after.values()), after
            assert all(float(s[1]) == 0 for s in after.values()), after  # clocks back
            assert all(s[2] in ("S", "R") for s in after.values()), after
            db.wait_ready(remotes, inv.nodes, 20)  # the cluster serves again
        finally:
            control.on_all(remotes, lambda r: db.teardown(r, r.node))
