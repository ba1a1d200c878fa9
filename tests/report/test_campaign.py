"""Campaigns: a matrix of runs, an index and JUnit XML that agree with the runs, the worst
verdict as the exit code, and a named field for every kind of bad campaign file."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tester import campaign
from tester.cli import build_parser, main
from tests.report.memruns import run_one as memdb_run_one
from tests.report.synthetic import make_run


def write(tmp_path: Path, doc: dict | str) -> Path:
    p = tmp_path / "campaign.yml"
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def junit(path: Path) -> ET.Element:
    return ET.parse(path).getroot().find("testsuite")


def index_rows(path: Path) -> list[tuple[str, str]]:
    """(row class, link) of every run in an index page."""
    html = path.read_text()
    body = html.split("<tbody>", 1)[1]
    return re.findall(r'<tr class="(\w+)">.*?<a href="([^"]+)">', body)


def test_a_campaign_of_real_runs_exits_invalid_and_its_index_and_junit_match_the_runs(tmp_path, capsys):
    doc = {"name": "gate", "store": str(tmp_path / "store"), "dbs": ["memdb", "memdb-stale-reads"],
           "workloads": ["registers"], "nemeses": ["none"], "seeds": [5],
           "out": str(tmp_path / "out")}
    code = campaign.main(str(write(tmp_path, doc)), run_one=memdb_run_one)
    assert code == 1
    summary = json.loads((tmp_path / "out" / "campaign.json").read_text())
    verdicts = {Path(r["run_dir"]).parent.name: r["valid"] for r in summary["runs"]}
    assert verdicts == {"gate-memdb-registers-none": True,
                        "gate-memdb-stale-reads-registers-none": False}
    for r in summary["runs"]:  # the campaign reports what each run's own results say
        assert json.loads((Path(r["run_dir"]) / "results.json").read_text())["valid"] == r["valid"]
    rows = index_rows(tmp_path / "out" / "index.html")
    expected = [("valid", os.path.relpath(Path(r["run_dir"]) / "report.html", tmp_path / "out"))
                if r["valid"] is True else
                ("invalid", os.path.relpath(Path(r["run_dir"]) / "report.html", tmp_path / "out")
                 + "#first-error")  # an invalid run's link opens at its first error
                for r in summary["runs"]]
    assert sorted(rows) == sorted(expected)
    for _, href in rows:
        assert (tmp_path / "out" / href.split("#")[0]).resolve().exists()
    suite = junit(tmp_path / "out" / "junit.xml")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [c.get("classname") for c in failed] == ["raftlab.memdb-stale-reads.registers"]
    err = capsys.readouterr().err
    assert "[1/2]" in err and "[2/2]" in err and "INVALID" in err


def fake_runs(tmp_path: Path, outcomes: dict[int, object]):
    """A run_one that writes a synthetic run whose verdict is chosen by seed (or raises)."""
    def run_one(cfg):
        what = outcomes[cfg["seed"]]
        if isinstance(what, Exception):
            raise what
        def result(ops):
            return {"valid": what, "partitions": [{"key": "k1", "valid": what}]}
        return make_run(Path(cfg["store"]), n_ops=40, seed=cfg["seed"], name=cfg["name"],
                        stamp=f"20251126T1500{cfg['seed']:02d}", checker_result=result)
    return run_one


def test_a_run_that_cannot_be_carried_out_is_unknown_and_a_junit_error(tmp_path):
    doc = {"name": "c", "store": str(tmp_path / "s"), "dbs": ["raftnode"], "workloads": ["registers"],
           "nemeses": ["partition"], "seeds": 3, "out": str(tmp_path / "o")}
    run_one = fake_runs(tmp_path, {1: True, 2: RuntimeError("fleet rp1 is down"), 3: "unknown"})
    lines: list[str] = []
    camp = campaign.load(write(tmp_path, doc))
    entries = campaign.run_campaign(camp, run_one, progress=lines.append)
    assert [e.verdict for e in entries] == [True, "unknown", "unknown"]
    assert "fleet rp1 is down" in entries[1].summary.error
    assert len(lines) == 6
    campaign.write_junit(camp, entries, tmp_path / "j.xml")
    suite = junit(tmp_path / "j.xml")
    assert (suite.get("failures"), suite.get("errors")) == ("0", "2")
    assert "fleet rp1 is down" in ET.tostring(suite, encoding="unicode")
    assert campaign.main(str(write(tmp_path, doc)), run_one=run_one) == 2


def test_a_campaign_on_a_fleet_that_does_not_exist_exits_254_before_any_run(tmp_path, capsys):
    doc = {"name": "nofleet", "store": str(tmp_path / "s"), "dbs": ["raftnode"],
           "workloads": ["registers"], "nemeses": ["none"], "seeds": [1],
           "settings": {"fleet": "rp-no-such-fleet", "time_limit": 1}, "out": str(tmp_path / "o")}
    assert campaign.main(str(write(tmp_path, doc))) == 254
    err = capsys.readouterr().err
    assert "field 'settings.fleet': no such fleet 'rp-no-such-fleet'" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


def test_the_real_test_command_failing_to_start_gives_unknown_not_a_crash(tmp_path):
    inv = tmp_path / "inv.yml"  # exists, but its host cannot be reached
    inv.write_text("all:\n  hosts:\n    n1: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    doc = {"name": "nohost", "store": str(tmp_path / "s"), "dbs": ["raftnode"],
           "workloads": ["registers"], "nemeses": ["none"], "seeds": [1],
           "settings": {"inventory": str(inv), "time_limit": 1}, "out": str(tmp_path / "o")}
    assert campaign.main(str(write(tmp_path, doc))) == 2
    suite = junit(tmp_path / "o" / "junit.xml")
    assert "exited 254" in suite.find("testcase/error").get("message")


def test_every_cell_becomes_a_valid_raftlab_test_command(tmp_path, capsys):
    doc = {"name": "m", "dbs": ["raftnode", "etcd"], "workloads": ["registers", "kv"],
           "nemeses": ["partition", "kill,pause", "none"], "seeds": [1, 2],
           "settings": {"fleet": "raftlab", "time_limit": 30, "concurrency": "2n",
                        "unsafe": ["local-reads"], "no_deploy": True}}
    camp = campaign.load(write(tmp_path, doc))
    cells = camp.matrix()
    assert len(cells) == 2 * 2 * 3 * 2
    parser = build_parser()
    for cfg in cells:
        args = parser.parse_args(campaign.test_argv(cfg))
        assert (args.db, args.workload, args.nemesis, args.seed) == (
            cfg["db"], cfg["workload"], cfg["nemesis"], cfg["seed"])
        assert args.unsafe == ["local-reads"] and args.no_deploy and args.time_limit == 30
    assert main(["campaign", str(write(tmp_path, doc)), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == len(cells)


BASE = {"name": "x", "dbs": ["raftnode"], "workloads": ["registers"], "nemeses": ["none"],
        "seeds": [1]}


@pytest.mark.parametrize("change, field", [
    ({"dbs": None}, "'dbs'"),
    ({"dbs": []}, "'dbs'"),
    ({"workloads": "nope"}, "'workloads[0]'"),
    ({"nemeses": ["partition", "tornado"]}, "'nemeses[1]'"),
    ({"seeds": "many"}, "'seeds'"),
    ({"seeds": 0}, "'seeds'"),
    ({"nemesis": ["kill"]}, "unknown field 'nemesis'"),
    ({"settings": {"seed": 3}}, "'settings.seed'"),
    ({"settings": {"time_limit": {"a": 1}}}, "'settings.time_limit'"),
    ({"settings": ["time_limit"]}, "'settings'"),
    ({"store": 5}, "'store'"),
    ({"settings": {"tme_limit": 30}}, "'settings.tme_limit': raftlab test has no option"),
    ({"settings": {"zz": 1, "tme_limit": 30, "time_limit": 5}},
     "fields 'settings.tme_limit', 'settings.zz': raftlab test has no options --tme-limit, --zz"),
    ({"nemesis": ["kill"], "dbz": ["x"]}, "unknown fields 'dbz', 'nemesis'"),
    ({"settings": {"time_limit": "soon"}}, "'settings.time_limit' must be a number, got 'soon'"),
    ({"settings": {"keys": 2.5}}, "'settings.keys' must be an integer, got 2.5"),
    ({"settings": {"no_deploy": "yes"}}, "'settings.no_deploy' must be true or false"),
    ({"settings": {"time_limit": [1, 2]}}, "'settings.time_limit' takes one value"),
    ({"settings": {"workload": "x"}}, "'settings.workload' is set by the matrix"),
    ({"settings": {"time_limit": -3}}, "'settings.time_limit': --time-limit must be positive"),
    ({"settings": {"concurrency": "lots"}}, "'settings.concurrency': --concurrency 'lots'"),
    ({"settings": {"nemesis_opt": ["often=1"]}}, "'settings.nemesis_opt': --nemesis-opt: unknown"),
])
def test_a_bad_campaign_file_exits_254_naming_the_field(tmp_path, capsys, change, field):
    doc = {**BASE, **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    assert main(["campaign", str(write(tmp_path, doc))]) == 254
    err = capsys.readouterr().err
    assert field in err and "campaign.yml" in err and "Traceback" not in err


def test_a_campaign_file_that_is_not_yaml_or_missing_exits_254(tmp_path, capsys):
    assert main(["campaign", str(write(tmp_path, "dbs: [raftnode\nworkloads: x"))]) == 254
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["campaign", str(tmp_path / "nope.yml")]) == 254
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["exception", "interrupted-run"])
def test_ctrl_c_stops_the_campaign_but_keeps_the_index_of_runs_so_far(tmp_path, how):
    doc = {"name": "c", "store": str(tmp_path / "s"), "dbs": ["raftnode"], "workloads": ["registers"],
           "nemeses": ["partition"], "seeds": 4, "out": str(tmp_path / "o")}
    fake = fake_runs(tmp_path, {1: True, 2: True, 3: True, 4: True})
    calls = []

    def run_one(cfg):
        calls.append(cfg["seed"])
        if cfg["seed"] == 2:
            if how == "exception":
                raise KeyboardInterrupt
            run = fake(cfg)  # the runner stopped cleanly after Ctrl-C and says so
            res = json.loads((run / "results.json").read_text())
            res.update(valid="unknown", interrupted=True)
            (run / "results.json").write_text(json.dumps(res))
            return run
        return fake(cfg)

    assert campaign.main(str(write(tmp_path, doc)), run_one=run_one) == 130
    assert calls == [1, 2]
    suite = junit(tmp_path / "o" / "junit.xml")
    assert suite.get("tests") == "2" and suite.get("errors") == "1"


def test_a_campaign_simulates_first_and_a_violation_there_fails_the_gate(tmp_path, capsys):
    # the real runs pass (the correct fake); the simulation of the same build with a planted
    # bug (local reads) finds a stale read within 100 seeds: the gate exits 1 and says where
    doc = {"name": "gate", "store": str(tmp_path / "store"), "dbs": ["memdb"],
           "workloads": ["registers"], "nemeses": ["partition"], "seeds": 1,
           "sim": {"seeds": 100, "nodes": [3]}, "settings": {"unsafe": ["local-reads"]},
           "out": str(tmp_path / "out")}
    assert campaign.main(str(write(tmp_path, doc)), run_one=memdb_run_one) == 1
    runs = json.loads((tmp_path / "out" / "campaign.json").read_text())["runs"]
    assert [r["valid"] for r in runs] == [False, True]
    sim_run = Path(runs[0]["run_dir"])
    assert (sim_run / "history.jsonl").exists() and (sim_run / "report.html").exists()
    assert "linearizability" in runs[0]["error"]
    case = junit(tmp_path / "out" / "junit.xml").find("testcase")
    assert case.get("classname") == "raftlab.sim"
    assert "simulation found a violation: linearizability" in case.find("failure").get("message")
    assert "1 simulation of 100 seeds, then" in (tmp_path / "out" / "index.html").read_text()


def test_a_clean_simulation_passes_without_a_run_folder(tmp_path):
    doc = {"name": "gate", "store": str(tmp_path / "store"), "dbs": ["memdb"],
           "workloads": ["registers"], "nemeses": ["none"], "seeds": 1,
           "sim": {"seeds": 20, "nodes": 5}, "out": str(tmp_path / "out")}
    assert campaign.main(str(write(tmp_path, doc)), run_one=memdb_run_one) == 0
    runs = json.loads((tmp_path / "out" / "campaign.json").read_text())["runs"]
    assert runs[0]["valid"] is True and runs[0]["run_dir"] is None
    assert runs[0]["config"]["nodes"] == 5


@pytest.mark.parametrize("sim, field", [
    ("nope", "sim"), ({"seeds": 0}, "sim.seeds"), ({"nodes": [2]}, "sim.nodes"),
    ({"nodes": [3], "jobs": 4}, "sim.jobs"),
])
def test_a_bad_sim_section_exits_254_naming_the_field(tmp_path, capsys, sim, field):
    doc = {"dbs": ["raftnode"], "workloads": ["registers"], "nemeses": ["none"], "sim": sim}
    assert main(["campaign", str(write(tmp_path, doc))]) == 254
    assert f"'{field}'" in capsys.readouterr().err
