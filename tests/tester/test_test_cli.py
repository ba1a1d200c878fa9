"""`raftlab test` arguments: bad input is one clear line and exit 254, never a traceback."""

from __future__ import annotations

import pytest

from tester.cli import main
from tester.test_cli import BadInput, concurrency


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["test", *argv])
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("argv,message", [
    (["--fleet", "x", "--nemesis", "partition,flood"], "unknown fault 'flood'"),
    (["--fleet", "x", "--unsafe", "fast-and-loose"], "--unsafe 'fast-and-loose'"),
    (["--fleet", "x", "--concurrency", "0"], "--concurrency '0'"),
    (["--fleet", "x", "--time-limit", "-1"], "--time-limit must be positive"),
    (["--fleet", "x", "--db", "nosuchmodule:DB"], "cannot import module 'nosuchmodule'"),
    (["--fleet", "x", "--nemesis-targets", "everyone"], "unknown target 'everyone'"),
    (["--fleet", "x", "--nemesis-interval", "0"], "--nemesis-interval must be positive"),
    (["--fleet", "x", "--nemesis-opt", 'schedule="often"'], "schedule='often'"),
    (["--fleet", "tsnone"], "no such fleet"),
])
def test_bad_arguments_exit_254_with_a_message(capsys, argv, message):
    code, err = run(capsys, *argv)
    assert code == 254
    assert message in err and "Traceback" not in err


def test_a_fleet_or_an_inventory_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        main(["test"])
    assert e.value.code == 254 and "--fleet" in capsys.readouterr().err


def test_a_bad_inventory_names_the_file(capsys, tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    n1: {ansible_port: notaport}\n")
    code, err = run(capsys, "--inventory", str(inv))
    assert code == 254 and str(inv) in err and "Traceback" not in err


def test_concurrency_per_node():
    assert concurrency("2n", 5) == 10 and concurrency("7", 5) == 7
    with pytest.raises(BadInput):
        concurrency("n", 5)


def test_a_bad_nemesis_option_is_rejected(capsys):
    code, err = run(capsys, "--fleet", "x", "--nemesis-opt", "partitions=[leader")
    assert code == 254 and "--nemesis-opt" in err


def test_an_unreachable_node_is_a_clear_error(capsys, tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    n1: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    code, err = run(capsys, "--inventory", str(inv))
    assert code == 254 and "cannot reach" in err and "n1" in err and "Traceback" not in err


def test_system_clock_is_refused_on_a_local_fleet(capsys):
    code, err = run(capsys, "--fleet", "x", "--nemesis", "clock", "--nemesis-opt",
                    "system_clock=true")
    assert code == 254 and "shares this machine's clock" in err


class RegistersOnlyDB:
    """An adapter whose client speaks read/write/cas only."""

    name = "registers-only"
    workloads = ("registers",)


def test_a_workload_the_adapter_does_not_speak_is_refused_naming_both(capsys):
    code, err = run(capsys, "--fleet", "x", "--db", f"{__name__}:RegistersOnlyDB",
                    "--workload", "append")
    assert code == 254 and "--db registers-only does not support --workload append" in err
    assert "Traceback" not in err
