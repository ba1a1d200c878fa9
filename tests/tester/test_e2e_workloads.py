"""append and set end to end on a real local fleet: raftnode valid on the safe build under
partitions, kills and pauses, with the final reads judging every element; etcd's append (a
transaction on the key's revision) valid under partitions. The module has its own fleet name
and subnet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tester import control, fleet, inventory
from tester.db import load_db
from tester.runner import RunConfig, Runner
from tests.conftest import require_root_tools

pytestmark = pytest.mark.e2e

NAME, SUBNET = "hwl", "10.213.42.0/24"
TOOLS = ("ip", "sshd", "ssh-keygen", "unshare", "iptables", "python3")
FAULTS = ["partition", "kill", "pause"]


@pytest.fixture(scope="module")
def local_fleet() -> Iterator[tuple[inventory.Inventory, dict[str, control.Remote]]]:
    require_root_tools(*TOOLS)
    with fleet.session(NAME, nodes=5, subnet=SUBNET) as (_f, inv, remotes):
        yield inv, remotes


def run(local_fleet, tmp_path, workload: str, db: str = "raftnode", **kw: Any):
    inv, remotes = local_fleet
    base: dict[str, Any] = dict(name=f"e2e-{workload}", workload=workload, nemesis=FAULTS,
                                nemesis_interval=1.5, time_limit=12, concurrency=10, rate=200,
                                keys=6, ops_per_key=120, seed=5, store=str(tmp_path),
                                quiet=1.0, op_timeout=1.0)
    base.update(kw)
    out = Runner(RunConfig(db=db, **base), load_db(db), inv.nodes, remotes).run()
    assert out.results["errors"] == [], out.results["errors"]
    return out


def test_safe_raftnode_keeps_every_appended_element_in_order(local_fleet, tmp_path):
    out = run(local_fleet, tmp_path, "append")
    assert out.valid is True, out.results["checker"].get("reason")
    assert out.results["checker"]["model"] == "list-append"
    assert out.results["stats"]["by_f"]["append"]["ok"] > 200, out.results["stats"]
    finals = [op for op in map(json.loads, (out.run_dir / "history.jsonl").open())
              if op.get("final") and op["type"] == "ok"]
    # a key retired or created just before the end may have had no append: it reads null
    assert any(op["value"] for op in finals)
    assert all(op["value"] is None or isinstance(op["value"], list) for op in finals)


def test_safe_raftnode_loses_no_acknowledged_add(local_fleet, tmp_path):
    out = run(local_fleet, tmp_path, "set")
    assert out.valid is True, out.results["checker"].get("reason")
    found = out.results["checker"]["set"]
    assert found["acknowledged"] > 200
    assert found["lost"]["count"] == found["stale"]["count"] == found["never_written"][
        "count"] == 0
    assert "Set anomalies" in (out.run_dir / "report.html").read_text()


def test_etcd_appends_through_revision_checked_transactions_and_stays_valid(local_fleet,
                                                                             tmp_path):
    out = run(local_fleet, tmp_path, "append", db="etcd", nemesis=["partition"])
    assert out.valid is True, out.results["checker"].get("reason")
    assert out.results["stats"]["by_f"]["append"]["ok"] > 200, out.results["stats"]
