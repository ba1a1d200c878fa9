"""``raftlab check``: verdicts, exit codes, --json, and bad input (254, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tester.cli import main

ROOT = Path(__file__).resolve().parents[2]
VALID = str(ROOT / "examples" / "cas-register-valid.jsonl")
INVALID = str(ROOT / "examples" / "cas-register-invalid.jsonl")


def test_valid_history_exits_0(capsys):
    assert main(["check", VALID]) == 0
    out = capsys.readouterr().out
    assert "linearizable" in out and "1 linearizable, 0 not" in out


def test_invalid_history_exits_1_and_explains(capsys):
    assert main(["check", INVALID, "--model", "cas-register"]) == 1
    out = capsys.readouterr().out
    assert "cannot linearize op 2: process 2: read() -> 1" in out
    assert "longest linearizable prefix (2 ops)" in out


def test_worst_verdict_of_several_histories(capsys):
    assert main(["check", VALID, INVALID]) == 1
    assert main(["check", str(ROOT / "examples")]) == 1


def test_json_document(capsys):
    assert main(["check", VALID, INVALID, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False
    assert doc["summary"] == {"histories": 2, "valid": 1, "invalid": 1, "unknown": 0,
                              "errors": 0}
    bad = doc["histories"][1]
    assert bad["path"] == INVALID and bad["valid"] is False and bad["time_s"] >= 0
    assert bad["partitions"][0]["violation"]["op"] == 2


def test_model_without_the_historys_operation_is_bad_input(tmp_path, capsys):
    rows = [{"type": "invoke", "process": p, "f": "write", "value": p} for p in range(40)]
    rows += [{"type": "info", "process": p, "f": "write", "value": p} for p in range(40)]
    rows += [{"type": "invoke", "process": 99, "f": "read", "value": None},
             {"type": "ok", "process": 99, "f": "read", "value": 3}]
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    code = main(["check", str(p), "--model", "tests.checker.checker_helpers:Counter", "--timeout", "0.3"])
    # the Counter model has no 'write': that is bad input, caught before searching
    assert code == 254
    assert "has no operation 'write'" in capsys.readouterr().err


def test_users_model_by_import_path_and_timeout_exits_2(tmp_path):
    rows = [{"type": "invoke", "process": p, "f": "add", "value": 1 << p} for p in range(22)]
    rows += [{"type": "ok", "process": p, "f": "add", "value": 1 << p} for p in range(22)]
    rows += [{"type": "invoke", "process": 99, "f": "read", "value": None},
             {"type": "ok", "process": 99, "f": "read", "value": -1}]
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["check", str(p), "--model", "tests.checker.checker_helpers:Counter", "--timeout", "0.5"]) == 2


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tester.cli", "check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_program_that_ends_without_freeing_still_writes_all_its_output(tmp_path):
    # `raftlab check` as a program ends with os._exit (no freeing of the history): what
    # it printed into a file (block-buffered) and the HTML it drew must all be there
    out, html = tmp_path / "out.json", tmp_path / "v.html"
    with open(out, "w") as fh:
        r = subprocess.run([sys.executable, "-m", "tester.cli", "check", VALID, INVALID,
                            "--model", "cas-register", "--json", "--html", str(html)],
                           cwd=ROOT, stdout=fh, stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    assert doc["summary"]["invalid"] == 1 and doc["summary"]["valid"] == 1
    assert list(tmp_path.glob("v-*.html")) and all(
        p.read_text().rstrip().endswith("</html>") for p in tmp_path.glob("v-*.html"))


def test_bad_line_exits_254_naming_file_and_line_without_traceback(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"type":"invoke","process":0,"f":"read","value":null}\n{"type":"ok",\n')
    r = run(str(p))
    assert r.returncode == 254
    assert f"{p}:2: not valid JSON" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_bad_arguments_exit_254(tmp_path):
    assert run(VALID, "--initial", "{nope").returncode == 254
    assert run(VALID, "--model", "no-such-model").returncode == 254
    assert run(VALID, "--timeout", "-1").returncode == 254
    assert run(VALID, "--format", "xml").returncode == 254
    missing = run(str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 254 and "No such file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_one_bad_history_still_checks_the_others(tmp_path):
    p = tmp_path / "bad.edn"
    p.write_text("{:process 0 :type :invoke :f :read}\n{:process 0 :type :invoke :f :read}\n")
    r = run(VALID, str(p), "--json")
    assert r.returncode == 254
    doc = json.loads(r.stdout)
    assert doc["histories"][0]["valid"] is True
    err = doc["histories"][1]["error"]
    assert err["line"] == 2 and "in flight" in err["message"]


def test_output_piped_into_a_closed_pipe_keeps_the_verdicts_exit_code(peer_histories):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tester.cli", "check", str(peer_histories / "jepsen")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -c 10`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err


_INDEPENDENT = """\
{:type :invoke, :f :write, :value [1 5], :process 0, :time 0}
{:type :ok, :f :write, :value [1 5], :process 0, :time 10}
{:type :invoke, :f :write, :value [2 7], :process 1, :time 20}
{:type :ok, :f :write, :value [2 7], :process 1, :time 30}
{:type :invoke, :f :read, :value [1 nil], :process 0, :time 40}
{:type :ok, :f :read, :value [1 5], :process 0, :time 50}
{:type :info, :f :kill, :value nil, :process :nemesis, :time 55}
{:type :invoke, :f :read, :value #jepsen.independent.Tuple{:key 2 :value nil}, :process 1,
 :time 60}
{:type :ok, :f :read, :value #jepsen.independent.Tuple{:key 2 :value 5}, :process 1, :time 70}
"""


def test_independent_splits_jepsen_key_value_tuples_and_checks_each_key(tmp_path, capsys):
    path = tmp_path / "history.edn"
    path.write_text(_INDEPENDENT)
    assert main(["check", str(path), "--model", "cas-register", "--independent",
                 "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    keys = {str(p["key"]): p["valid"] for p in doc["histories"][0]["partitions"]}
    assert keys == {"1": True, "2": False}


def test_independent_on_a_value_that_is_no_pair_exits_254_naming_the_line(tmp_path, capsys):
    path = tmp_path / "history.edn"
    path.write_text(_INDEPENDENT.replace(":value [1 nil]", ":value 3"))
    assert main(["check", str(path), "--independent"]) == 254
    out = capsys.readouterr()
    assert f"{path}:5: --independent: expected :value [key value], got int 3" in out.out + out.err


def test_a_read_of_a_value_never_written_is_named_after_the_prefix_before_it(tmp_path, capsys):
    path = tmp_path / "history.jsonl"
    path.write_text(
        '{"index":0,"time":20,"type":"invoke","process":1,"f":"write","value":7}\n'
        '{"index":1,"time":30,"type":"ok","process":1,"f":"write","value":7}\n'
        '{"index":2,"time":60,"type":"invoke","process":1,"f":"read","value":null}\n'
        '{"index":3,"time":70,"type":"ok","process":1,"f":"read","value":5}\n')
    assert main(["check", str(path), "--model", "cas-register"]) == 1
    out = capsys.readouterr().out
    assert "cannot linearize op 1: process 1: read() -> 5" in out
    assert "longest linearizable prefix (1 ops)" in out and "write(7)" in out
