"""End to end on real local fleets: NATS JetStream KV and Redis with Sentinel, deployed and
faulted like raftnode, and what raftlab finds in each (docs/testing.md states it).

Redis: asynchronous replication with sentinel failover loses acknowledged writes when the
primary is cut off from the other nodes but not from its clients. NATS 2.9.10: concurrent
revision-conditioned updates of one key are all acknowledged, so read-modify-write adds are
lost even without faults. Each fleet is shared by its tests and always removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tester import fleet
from tester.cli import main as raftlab
from tests.conftest import require_root_tools

pytestmark = pytest.mark.e2e

TOOLS = ("ip", "sshd", "ssh-keygen", "unshare", "iptables", "python3")


def up(name: str, subnet: str, binary: str) -> Iterator[str]:
    require_root_tools(*TOOLS, binary)
    with fleet.session(name, nodes=3, subnet=subnet):
        yield name


@pytest.fixture(scope="module")
def nats_fleet() -> Iterator[str]:
    yield from up("nats", "10.213.62.0/24", "nats-server")


@pytest.fixture(scope="module")
def redis_fleet() -> Iterator[str]:
    yield from up("rds", "10.213.63.0/24", "redis-sentinel")


def run_test(store: Path, *argv: str) -> tuple[int, dict[str, Any], dict[str, Any], list[dict]]:
    """Run ``raftlab test``; its exit code, results.json, test.json and history."""
    code = raftlab(["test", "--store", str(store), "--seed", "1", *argv])
    (run,) = [p.parent for p in store.glob("*/2*/results.json")]
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return (code, json.loads((run / "results.json").read_text()),
            json.loads((run / "test.json").read_text()), history)


def set_anomalies(results: dict[str, Any], kind: str) -> list[Any]:
    return [x for p in results["checker"]["partitions"] for x in (p.get("set") or {})[kind]]


def faults_started(history: list[dict]) -> set[str]:
    return {h["f"].removeprefix("start-") for h in history
            if h["process"] == "nemesis" and h["type"] == "info" and h["f"].startswith("start-")}


def test_redis_loses_acknowledged_adds_when_its_primary_is_cut_off(redis_fleet, tmp_path):
    code, results, _, _ = run_test(
        tmp_path, "--fleet", redis_fleet, "--db", "redis", "--workload", "set",
        "--nemesis", "partition", "--nemesis-interval", "4",
        "--nemesis-opt", 'partitions=["leader"]', "--time-limit", "20")
    assert results["errors"] == [], results["errors"]
    assert code == 1 and results["valid"] is False
    lost = set_anomalies(results, "lost")
    assert len(lost) > 50, f"only {len(lost)} acknowledged adds lost"


def test_redis_runs_under_kills_pauses_and_clock_faults(redis_fleet, tmp_path):
    code, results, meta, history = run_test(
        tmp_path, "--fleet", redis_fleet, "--db", "redis", "--workload", "set",
        "--nemesis", "kill,pause,clock", "--time-limit", "10")
    assert results["errors"] == [] and code in (0, 1), results["errors"]
    assert not meta["nemesis_unsupported"]  # redis-server and sentinel run under libfaketime
    assert faults_started(history) >= {"kill", "pause", "clock"}
    assert sum(1 for h in history if h["type"] == "ok" and h["f"] == "add") > 50


def test_nats_acknowledges_concurrent_conditional_updates_and_loses_adds(nats_fleet, tmp_path):
    code, results, meta, history = run_test(
        tmp_path, "--fleet", nats_fleet, "--db", "nats", "--workload", "set", "--keys", "1",
        "--concurrency", "3n", "--rate", "0", "--nemesis", "partition,kill,pause,clock,loss",
        "--time-limit", "10")
    assert results["errors"] == [], results["errors"]
    assert "clock" in meta["nemesis_unsupported"]  # Go reads the clock past libfaketime
    assert faults_started(history) >= {"partition", "kill", "pause", "loss"}
    assert code == 1 and results["valid"] is False
    assert set_anomalies(results, "lost") or set_anomalies(results, "stale")
