"""The adapter kit: options and --no-deploy reach the adapter, --unsafe is checked against the
chosen database's own switches, and the node-event helper's lines drive the Raft checks."""

from __future__ import annotations

from typing import Any

import pytest

from tester import campaign, nodeevents
from tester.cli import build_parser, main
from tester.db import load_db
from tester.nodeevents.emit import NodeEvents, entry
from tester.test_cli import BadInput


class RecordingDB:
    """An adapter that names its options, as the contract asks (tester/db.py)."""

    name = "recording"
    unsafe_switches = ("drop-acks",)
    made: list[dict[str, Any]] = []

    def __init__(self, deploy: bool = True, port: int = 9000, peers: list[str] | None = None):
        RecordingDB.made.append({"deploy": deploy, "port": port, "peers": peers})


class NoOptionsDB:
    name = "bare"

    def __init__(self) -> None:
        pass


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["test", *argv])
    return code, capsys.readouterr().err


def test_db_options_and_no_deploy_reach_the_adapters_constructor(capsys):
    RecordingDB.made.clear()
    code, err = run(capsys, "--fleet", "tsnofleet", "--db", f"{__name__}:RecordingDB",
                    "--db-opt", "port=9100", "--db-opt", 'peers=["a", "b"]', "--no-deploy")
    assert code == 254 and "no such fleet" in err  # got past the adapter: it was built
    assert RecordingDB.made == [{"deploy": False, "port": 9100, "peers": ["a", "b"]}]


def test_no_deploy_and_a_deploy_db_option_together_are_one_option(capsys):
    RecordingDB.made.clear()
    code, _ = run(capsys, "--fleet", "tsnofleet", "--db", f"{__name__}:RecordingDB",
                  "--db-opt", "deploy=true", "--no-deploy")
    assert code == 254 and RecordingDB.made == [{"deploy": False, "port": 9000, "peers": None}]


def test_the_runner_gets_the_db_options_for_setup_and_clients(monkeypatch, capsys):
    seen: dict[str, Any] = {}

    def fake_fleet(args):  # type: ignore[no-untyped-def]
        seen["db_opts"] = args.db_opts  # what RunConfig.db_opts is built from
        raise BadInput("stop before connecting")

    monkeypatch.setattr("tester.test_cli._fleet", fake_fleet)
    code, _ = run(capsys, "--fleet", "x", "--db-opt", "faketime_cache=0")
    assert code == 254 and seen["db_opts"] == {"faketime_cache": 0}


@pytest.mark.parametrize("argv,message", [
    (["--db-opt", "port"], "--db-opt 'port': expected KEY=JSON"),
    (["--db-opt", "port=90x"], "--db-opt 'port=90x'"),
    (["--db-opt", "colour=1"], "--db-opt colour: --db raftnode takes no option 'colour'"),
    (["--db", "etcd", "--unsafe", "local-reads"],
     "--unsafe 'local-reads': not a switch of --db etcd (it has no unsafe switches)"),
    (["--db", f"{__name__}:RecordingDB", "--unsafe", "local-reads"],
     "--unsafe 'local-reads': not a switch of --db recording (expected one of drop-acks)"),
    (["--db", "redis", "--db-opt", 'port="x"'],
     "--db redis: its options (port='x') were refused: invalid literal for int()"),
    (["--db", f"{__name__}:NoOptionsDB", "--no-deploy"],
     "--no-deploy: --db tests.tester.test_adapter_kit:NoOptionsDB takes no option 'deploy'"),
])
def test_bad_adapter_arguments_exit_254_naming_the_flag(capsys, argv, message):
    code, err = run(capsys, "--fleet", "tsnofleet", *argv)
    assert code == 254 and message in err and "Traceback" not in err


def test_an_unsafe_switch_is_accepted_when_the_chosen_db_has_it(capsys):
    for db, switch in (("raftnode", "local-reads"), (f"{__name__}:RecordingDB", "drop-acks")):
        code, err = run(capsys, "--fleet", "tsnofleet", "--db", db, "--unsafe", switch)
        assert code == 254 and "no such fleet" in err, err


class AnyOptionsDB:
    name = "any"

    def __init__(self, **options: Any):
        self.options = options


def test_an_adapter_taking_any_keyword_gets_every_option():
    db = load_db(f"{__name__}:AnyOptionsDB", deploy=False, anything=1)
    assert db.options == {"deploy": False, "anything": 1}


def test_a_campaign_file_with_db_options_runs_each_cell_with_them(tmp_path, capsys):
    f = tmp_path / "c.yml"
    f.write_text("name: c\ndbs: [redis]\nworkloads: [set]\nnemeses: [none]\nseeds: [1]\n"
                 "settings: {fleet: x, db_opt: {down_after_ms: 2000, min_replicas: 1}}\n")
    assert main(["campaign", str(f), "--dry-run"]) == 0
    line = capsys.readouterr().out
    assert "--db-opt down_after_ms=2000 --db-opt min_replicas=1" in line, line


def test_a_campaign_mapping_of_db_options_becomes_one_flag_per_key():
    argv = campaign.test_argv({"fleet": "x", "db": "raftnode",
                               "db_opt": {"faketime_cache": 0, "tick_ms": 20}})
    args = build_parser().parse_args(argv)
    assert args.db_opt == ["faketime_cache=0", "tick_ms=20"]


def write_node(tmp_path, node: str, term: int, role: str, leader: str | None,
               entries: list[list[Any]]) -> None:
    d = tmp_path / node
    d.mkdir()
    ev = NodeEvents(str(d / "events.jsonl"), node)
    ev.started(fresh=True)
    ev.role(role, term=term, leader=leader)
    ev.applied(entries, commit=len(entries), term=term)
    ev.close()


def test_events_written_with_the_helper_pass_the_checks_when_nodes_agree(tmp_path):
    log = [entry(1, 1, {"op": "put", "key": "k", "value": 1}, result="ok")]
    write_node(tmp_path, "n1", 1, "leader", "n1", log)
    write_node(tmp_path, "n2", 1, "follower", "n1", log)
    result = nodeevents.check(tmp_path)
    assert result is not None and result["valid"], result
    assert result["applied"] == 2 and result["terms"] == 1


def test_events_written_with_the_helper_expose_two_leaders_and_diverged_logs(tmp_path):
    write_node(tmp_path, "n1", 2, "leader", "n1", [entry(1, 2, {"op": "put", "value": 1})])
    write_node(tmp_path, "n2", 2, "leader", "n2", [entry(1, 2, {"op": "put", "value": 2})])
    result = nodeevents.check(tmp_path)
    assert result is not None
    broken = {v.split(" ")[0] for v in nodeevents.violated(result)}  # "name (count)"
    assert broken >= {"election-safety", "state-machine-safety"}, broken


def test_the_event_helper_refuses_a_role_the_checks_do_not_know(tmp_path):
    ev = NodeEvents(str(tmp_path / "e.jsonl"), "n1")
    with pytest.raises(ValueError, match="role 'boss'"):
        ev.role("boss", term=1, leader=None)
    ev.close()
