"""A real multi-host Dask cluster on one machine: ``raftlab cluster up`` puts a scheduler on the
host and a worker on each node of a local fleet (reached over the nodes' own addresses, over
SSH); ``raftlab sim --cluster`` runs seeds on it; a worker killed mid-run loses no seed range
and the total is exact; ``cluster down`` leaves no process behind. Fleet dk2 (10.213.71.0/24).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tester import fleet
from tester.cluster import cli as cluster_cli
from tester.cluster import connect
from tests.fleet.conftest import skip_unless_root_tools

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NAME, SUBNET = "dk2", "10.213.71.0/24"
SEEDS = 1500  # ~7 s of work on two idle cores: the kill lands mid-run


def _dask_pids() -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines()
            if f"raftlab-cluster-{NAME}-" in line or ("dask_scheduler" in line
                                                     and "10.213.71.1" in line)}


def test_sim_on_fleet_workers_loses_no_seed_range_when_a_worker_is_killed(tmp_path):
    skip_unless_root_tools()
    cluster_cli.down(NAME, say=lambda s: None)
    with fleet.session(NAME, nodes=2, subnet=SUBNET) as (_f, _inv, remotes):
        if not remotes["n1"].run(f"test -d {ROOT}/tester", check=False).ok:
            # a namespace node's /tmp and /root are its own: a checkout there is not on it
            pytest.skip(f"{ROOT} is not visible on a fleet node (a node's /tmp and /root "
                        "are private): workers there cannot import raftlab")
        try:
            started = cluster_cli.up(NAME, str(fleet.inventory_path(NAME)), say=lambda s: None)
            assert started.address.startswith("tcp://10.213.71.1:")  # the bridge: the host
            assert sorted(started.workers) == ["n1", "n2"]
            victim = started.workers["n1"]  # a pid in n1's own PID namespace
            cmdline = remotes["n1"].run(f"tr '\\0' ' ' < /proc/{victim}/cmdline").stdout
            assert "--host 10.213.71.11" in cmdline  # the worker listens on the node's address
            proc = subprocess.Popen(
                [sys.executable, "-m", "tester.cli", "sim", "--seeds", str(SEEDS),
                 "--cluster", started.address, "--out", str(tmp_path)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT)})
            err: list[str] = []
            killed = threading.Event()

            def watch() -> None:
                assert proc.stderr is not None
                while chunk := proc.stderr.read1(4096):  # type: ignore[attr-defined]
                    err.append(chunk.decode(errors="replace"))
                    done = re.findall(r"seeds (\d+)/", "".join(err))
                    if not killed.is_set() and done and 1 <= int(done[-1]) < SEEDS // 2:
                        # the worker and its nanny: gone (the node's own kill, its own pids)
                        remotes["n1"].run(f"kill -KILL -{victim}", check=False)
                        killed.set()  # mid-run: fewer than half the seeds reported

            t = threading.Thread(target=watch, daemon=True)
            t.start()
            out, _ = proc.communicate(timeout=240)
            t.join(5)
            text = "".join(err)
            assert killed.is_set()
            assert proc.returncode == 0, text
            assert f"{SEEDS} seeds clean (seeds 0..{SEEDS - 1}" in out.decode()
            # the worker is gone for good (no nanny to restart it): the rest ran on the other;
            # a range it held is run again (noted) unless it died between two ranges
            with connect(started.address) as c:
                assert [w["name"] for w in c.scheduler_info()["workers"].values()] == ["n2"]
        finally:
            cluster_cli.down(NAME, say=lambda s: None)
        deadline = time.monotonic() + 10
        while _dask_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _dask_pids()
        assert not cluster_cli.state_dir(NAME).exists()
        assert not any(Path(f"/tmp/raftlab-cluster-{NAME}-{n}").exists() for n in ("n1", "n2"))
        for n in ("n1", "n2"):  # the workers' logs, which cluster down keeps for a post-mortem
            Path(f"/tmp/raftlab-cluster-{NAME}-{n}.log").unlink(missing_ok=True)
