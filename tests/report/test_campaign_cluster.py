"""A campaign on a local Dask cluster of 2 workers: every run a task, its run folder back in the
campaign's store, the index, JUnit XML and exit code as a serial campaign gives them; a run
whose worker dies is run once more elsewhere, then reported unknown with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tester import campaign
from tester.cluster import connect
from tester.cluster.runs import Provision
from tests.report.memruns import run_one as memdb_run_one


def _dies_at_seed_2(config: dict[str, Any]) -> Path:
    if config["seed"] == 2:
        os._exit(9)  # the worker is killed mid-run, every time
    return memdb_run_one(config)


def _dies_once_at_seed_2(config: dict[str, Any]) -> Path:
    marker = Path(config["marker"])
    if config["seed"] == 2 and not marker.exists():
        marker.write_text("died")
        os._exit(9)
    return memdb_run_one(config)


@pytest.fixture(scope="module")
def address():
    with connect("local:2") as client:
        client.wait_for_workers(2, timeout=30)
        yield client.scheduler.address


def _campaign(tmp_path: Path, dbs: list[str], seeds: list[int], **extra: Any) -> Path:
    doc = {"name": "gate", "store": str(tmp_path / "store"), "dbs": dbs,
           "workloads": ["registers"], "nemeses": ["none"], "seeds": seeds,
           "out": str(tmp_path / "out"), **extra}
    p = tmp_path / "campaign.yml"
    p.write_text(yaml.safe_dump(doc))
    return p


def _runs(tmp_path: Path) -> list[dict[str, Any]]:
    return json.loads((tmp_path / "out" / "campaign.json").read_text())["runs"]


def test_a_campaign_on_two_workers_gives_the_verdicts_index_and_junit_of_a_serial_one(
        tmp_path, address):
    path = _campaign(tmp_path, ["memdb", "memdb-stale-reads"], [1, 2], sim={"seeds": 30})
    assert campaign.main(str(path), run_one=memdb_run_one, cluster=address) == 1
    runs = _runs(tmp_path)
    assert [(r["config"]["db"], r["config"]["seed"], r["valid"]) for r in runs] == [
        ("raftnode (simulated)", "0..29", True),
        ("memdb", 1, True), ("memdb", 2, True),
        ("memdb-stale-reads", 1, False), ("memdb-stale-reads", 2, False)]
    store = tmp_path / "store"
    for r in runs[1:]:  # each run folder came back into the campaign's own store
        d = Path(r["run_dir"])
        assert d.parent.parent == store and (d / "report.html").exists()
        assert json.loads((d / "results.json").read_text())["valid"] == r["valid"]
        assert (d.parent / "latest").resolve().parent == d.parent
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "0")


def test_a_run_whose_worker_dies_twice_is_unknown_with_the_reason_and_the_rest_count(
        tmp_path, address, capsys):
    path = _campaign(tmp_path, ["memdb"], [1, 2, 3])
    assert campaign.main(str(path), run_one=_dies_at_seed_2, cluster=address) == 2
    runs = {r["config"]["seed"]: r for r in _runs(tmp_path)}
    assert (runs[1]["valid"], runs[2]["valid"], runs[3]["valid"]) == (True, "unknown", True)
    assert "died twice" in runs[2]["error"]
    err = capsys.readouterr().err
    assert "seed=2: its worker" in err and "running it again" in err
    case = [c for c in ET.parse(tmp_path / "out" / "junit.xml").iter("testcase")
            if c.get("name") == "nemesis=none seed=2"][0]
    assert "died twice" in case.find("error").get("message")


def test_a_run_whose_worker_dies_once_is_run_again_and_counts(tmp_path, address):
    path = _campaign(tmp_path, ["memdb"], [1, 2],
                     settings={"marker": str(tmp_path / "died")})
    # settings.marker is no raftlab test option: bypass the name check, as a run_one may
    camp = campaign.parse(yaml.safe_load(path.read_text()) | {"settings": {}}, str(path))
    camp.settings = {"marker": str(tmp_path / "died")}
    entries = campaign.run_campaign(camp, _dies_once_at_seed_2, progress=lambda s: None,
                                    cluster=address)
    assert (tmp_path / "died").exists()
    assert [e.verdict for e in entries] == [True, True]


def test_a_campaign_rejects_a_bad_cluster_address_with_exit_254(tmp_path, capsys):
    path = _campaign(tmp_path, ["memdb"], [1])
    assert campaign.main(str(path), run_one=memdb_run_one, cluster="local:x") == 254
    assert "--cluster local:x" in capsys.readouterr().err


def test_fleet_nodes_and_inventories_are_checked_and_name_their_field(tmp_path):
    doc = {"name": "g", "dbs": ["raftnode"], "workloads": ["registers"], "nemeses": ["none"]}
    with pytest.raises(campaign.CampaignError, match="field 'fleet_nodes'"):
        campaign.parse({**doc, "fleet_nodes": 0}, "c.yml")
    with pytest.raises(campaign.CampaignError, match="field 'inventories'"):
        campaign.parse({**doc, "inventories": [""]}, "c.yml")
    camp = campaign.parse({**doc, "inventories": ["a.yml", "b.yml"], "fleet_nodes": 3}, "c.yml")
    assert camp.provision().inventories == ("a.yml", "b.yml")
    assert campaign.parse({**doc, "fleet_nodes": 3}, "c.yml").provision().fleet_nodes == 3


def _hold_inventory(config: dict[str, Any]) -> Path:
    t0 = time.time()
    time.sleep(0.4)
    with open(config["log"], "a") as fh:  # one line per run: which inventory, when
        fh.write(json.dumps([config.get("inventory"), config.get("fleet"), t0, time.time()])
                 + "\n")
    return memdb_run_one(config)


def test_runs_on_a_cluster_hold_the_campaigns_inventories_one_run_each(tmp_path, address):
    log = tmp_path / "held.jsonl"
    camp = campaign.parse({"name": "inv", "store": str(tmp_path / "store"), "dbs": ["memdb"],
                           "workloads": ["registers"], "nemeses": ["none"],
                           "seeds": [1, 2, 3, 4]}, "inv.yml")
    camp.settings = {"log": str(log), "fleet": "ignored"}
    entries = campaign.run_campaign(camp, _hold_inventory, progress=lambda s: None,
                                    cluster=address,
                                    provision=Provision(("rack1.yml", "rack2.yml")))
    assert [e.verdict for e in entries] == [True] * 4
    held = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(held) == 4 and {h[0] for h in held} <= {"rack1.yml", "rack2.yml"}
    assert all(h[1] is None for h in held)  # an inventory replaces the fleet setting
    for inv in ("rack1.yml", "rack2.yml"):
        spans = sorted((a, b) for i, _f, a, b in held if i == inv)  # never two at once
        assert all(b1 <= a2 for (_a1, b1), (a2, _b2) in zip(spans, spans[1:], strict=False))


class _FakeCluster:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_campaign_refused_by_preflight_closes_the_local_cluster_it_started_early(
        tmp_path, monkeypatch, capsys):
    import tester.cluster as cl

    started: list[tuple[int, tuple[str, ...]]] = []
    fake = _FakeCluster()

    def fake_local(n: int, preload: tuple[str, ...] = ()) -> _FakeCluster:
        started.append((n, tuple(preload)))
        return fake

    monkeypatch.setattr(cl, "_local_cluster", fake_local)
    path = _campaign(tmp_path, ["raftnode"], [1], settings={"fleet": "no-such-fleet"})
    assert campaign.main(str(path), cluster="local:2") == 254
    assert "no such fleet 'no-such-fleet'" in capsys.readouterr().err
    assert started == [(2, campaign.RUN_MODULES)]  # started while preflight ran...
    assert fake.closed and cl._EARLY == {}  # ...and closed, since nothing connected to it


def test_connect_takes_over_the_local_cluster_started_early():
    import tester.cluster as cl

    cl.start_early("local:1")
    early = cl._EARLY[1]
    with connect("local:1") as client:
        assert cl._EARLY == {} and client.cluster is early.result()
        assert client.submit(sum, [1, 2], pure=False).result() == 3


_PRELOADED = """
import sys
if __name__ == "__main__":
    from tester.cluster import connect, start_early
    start_early("local:1", ("tester.campaign",))
    with connect("local:1") as client:
        print(client.submit(lambda: "tester.campaign" in sys.modules, pure=False).result())
"""


def test_the_workers_of_an_early_cluster_have_the_run_modules_before_their_first_task():
    # a fresh process: the fork server the workers come from starts once per process
    out = subprocess.run([sys.executable, "-c", _PRELOADED], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert out.stdout.strip().splitlines()[-1:] == ["True"], out.stderr[-2000:]
