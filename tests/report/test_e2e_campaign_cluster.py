"""A campaign of real raftnode runs on a local Dask cluster of 2 workers, each worker on a local
fleet of its own (slots rlc*, 10.213.100.0/24 upward) that it keeps for its next run; one
worker is killed mid-run: its run is run again elsewhere, every verdict comes back, and no
fleet is left up (neither the dead worker's nor the kept ones)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from tester import campaign, fleet
from tester.cluster import connect
from tester.cluster.runs import SLOTS, slot_fleet
from tests.fleet.conftest import skip_unless_root_tools

pytestmark = pytest.mark.e2e


def _slot_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("rlc")]


def test_real_runs_on_two_workers_reuse_fleets_survive_a_killed_worker_and_leave_none(
        tmp_path):
    skip_unless_root_tools()
    camp = campaign.parse({
        "name": "dkc", "store": str(tmp_path / "store"), "dbs": ["raftnode"],
        "workloads": ["registers"], "nemeses": ["partition"], "seeds": [1, 2, 3],
        "fleet_nodes": 3, "settings": {"time_limit": 4}}, "dkc.yml")
    lines: list[str] = []
    with connect("local:2") as client:
        client.wait_for_workers(2, timeout=60)
        victim = sorted(client.run(os.getpid).values())[0]
        killed = threading.Event()

        def kill_mid_run() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed.is_set():
                if len(_slot_namespaces()) >= 6:  # both runs' fleets are up: runs under way
                    time.sleep(2)
                    os.kill(victim, signal.SIGKILL)
                    killed.set()
                time.sleep(0.2)

        t = threading.Thread(target=kill_mid_run, daemon=True)
        t.start()
        entries = campaign.run_campaign(camp, progress=lines.append,
                                        cluster=client.scheduler.address,
                                        provision=camp.provision())
        t.join(5)
    text = "\n".join(lines)
    assert killed.is_set(), text
    assert "died; running it again" in text
    assert [e.verdict for e in entries] == [True, True, True], text
    # the survivor ran a second run (the retried one, or seed 3) on the fleet it kept
    assert any(e.phases.get("fleet_reused") for e in entries), [e.phases for e in entries]
    for e in entries:  # the run folders came back into the campaign's store
        assert e.summary.dir is not None and e.summary.dir.parent.parent == tmp_path / "store"
        assert (e.summary.dir / "history.jsonl").stat().st_size > 0
    assert _slot_namespaces() == []
    assert all(not fleet.leftovers(slot_fleet(k)[0]) for k in range(SLOTS)
               if os.path.exists(f"/tmp/raftlab-fleet-slot-{k}.lock"))
