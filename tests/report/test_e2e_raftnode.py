"""End to end: a short real test of raftnode, built with the unsafe ``local-reads`` switch, on
a local namespace fleet (rp1, 10.213.30.0/24) under partitions, then its report: real node logs
drawn as the cluster timeline and, when the stale reads were caught, the failure view."""

from __future__ import annotations

import json

import pytest

from checker.history import read_jsonl
from tester import report

pytestmark = pytest.mark.e2e
FLEET, SUBNET = "rp1", "10.213.30.0/24"


@pytest.fixture(scope="module")
def real_raftnode_run(tmp_path_factory):
    from tests.conftest import require_root_tools

    require_root_tools("ip", "sshd", "ssh-keygen", "unshare", "iptables")
    from tester import fleet
    from tester.cli import main

    store = tmp_path_factory.mktemp("store")
    fleet.down(FLEET)
    try:
        fleet.up(FLEET, nodes=3, subnet=SUBNET)
        code = main(["test", "--fleet", FLEET, "--db", "raftnode", "--nemesis", "partition",
                     "--unsafe", "local-reads", "--nemesis-interval", "1.5", "--time-limit", "6",
                     "--seed", "5",
                     "--store", str(store), "--name", "rp-e2e"])
    finally:
        left = fleet.down(FLEET)
    assert not fleet.leftovers(FLEET), left
    return code, (store / "rp-e2e" / "latest").resolve()


def test_real_run_report_draws_each_nodes_roles_from_its_log(real_raftnode_run, browser):
    code, run = real_raftnode_run
    results = json.loads((run / "results.json").read_text())
    assert code == {True: 0, False: 1}.get(results["valid"], 2)
    page = browser.open(run / "report.html")
    loaded = report.load_run(run)
    assert sorted(loaded.node_logs) == ["n1", "n2", "n3"]
    end = max(op.time for op in loaded.ops)
    lanes = report.node_lanes(loaded, report.fault_intervals(loaded.ops, ["n1", "n2", "n3"], end), end)
    segs = [s for lane in lanes for s in lane["segs"]]
    assert any(s[2] == "leader" for s in segs), "a leader must appear in the node logs"
    assert page.get_attribute("#timeline", "data-segments") == str(len(segs))
    ops = read_jsonl(run / "history.jsonl")
    done = sum(1 for op in ops if op.process != "nemesis" and op.type != "invoke")
    assert page.get_attribute("#latency", "data-points") == str(done)
    browser.screenshot("e2e-raftnode")
    assert browser.errors == []


def test_a_caught_stale_read_from_a_real_cluster_is_drawn_and_reachable(real_raftnode_run, browser):
    _, run = real_raftnode_run
    results = json.loads((run / "results.json").read_text())
    if results["valid"] is not False:
        pytest.skip(f"this run's reads happened to be fresh (verdict {results['valid']})")
    bad = [p for p in results["checker"]["partitions"] if p["valid"] is False]
    page = browser.open(run / "report.html")
    assert page.locator("details.lin").count() == len(bad)
    page.click("#first-error")
    page.hover(".lin[open] .bar.failing")
    tip = page.inner_text("#tooltip")
    first = sorted(bad, key=lambda p: report.natural(str(p["key"])))[0]["violation"]
    assert "CANNOT BE LINEARIZED" in tip
    if first["prefix"]:
        assert f"state before it: {first['prefix'][-1]['state']['text']}" in tip
    browser.screenshot("e2e-raftnode-stale-read", full_page=False)
    assert browser.errors == []
