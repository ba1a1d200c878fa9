"""Bad input never gives a traceback: ``raftlab check`` exits 254 naming the file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALID = str(ROOT / "examples" / "cas-register-valid.jsonl")
OK_EDN = ("{:process 0, :type :invoke, :f :write, :value 1}\n"
          "{:process 0, :type :ok, :f :write, :value 1}\n")


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tester.cli", "check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def assert_bad_input(r: subprocess.CompletedProcess, *expected: str) -> None:
    assert r.returncode == 254, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    for text in expected:
        assert text in r.stderr, r.stderr


@pytest.mark.parametrize("name, text, line, message", [
    ("deep.edn", OK_EDN + "{:process 1, :type :invoke, :f :write, :value " + "[" * 5000 + "}",
     3, "nested too deeply"),
    ("deep.jsonl", '{"type":"invoke","process":0,"f":"write","value":' + "[" * 100000 + "\n",
     1, "nested too deeply"),
    ("inf.edn", OK_EDN + "{:process 1, :type :invoke, :f :write, :value ##Inf}\n", 3, "##Inf"),
    ("nan.edn", OK_EDN + "{:process 1, :type :invoke, :f :write, :value ##NaN}\n", 3, "##NaN"),
    ("nan.jsonl", '{"type":"invoke","process":0,"f":"write","value":NaN}\n', 1, "NaN"),
    ("inf.jsonl", '{"type":"invoke","process":0,"f":"write","value":-Infinity}\n', 1,
     "-Infinity"),
    ("set.edn", OK_EDN + "{:process 1, :type :invoke, :f :write, :value #{1 2 1}}\n", 3,
     "duplicate element 1 in a set"),
    ("keys.edn", OK_EDN + "{:process 1, :type :invoke, :type :ok, :f :write}\n", 3,
     "duplicate map key :type"),
    ("keys.jsonl", '{"type":"invoke","process":0,"f":"write","f":"read"}\n', 1,
     "duplicate key 'f'"),
    ("binary.edn", OK_EDN + "\x00\x01\x02", 3, "binary file"),
])
def test_bad_value_exits_254_naming_file_and_line(tmp_path, name, text, line, message):
    p = tmp_path / name
    p.write_text(text)
    assert_bad_input(check(str(p)), f"{p}:{line}: ", message)


def test_a_binary_file_that_is_not_utf8_names_its_line(tmp_path):
    p = tmp_path / "history.jsonl"
    p.write_bytes(b'{"type":"invoke","process":0,"f":"read"}\n\x89PNG\r\n\x1a\n\xff\xfe')
    assert_bad_input(check(str(p)), f"{p}:2: ", "not UTF-8")


@pytest.mark.parametrize("name, text", [
    ("history.txt", "0\t:invoke\t:read\tnil\n0\t:ok\t:read\t3\n"),
    ("jepsen.log", "2024-01-02 10:00:00,001{GMT}\tINFO\t[main] jepsen.cli - Test starts\n"),
    ("renamed.txt", "0\t:invoke\t:read\tnil\n"),
    ("renamed.log", "2024-01-02 10:00:00,001{GMT}\tINFO\t[main] jepsen.core - Running\n"),
])
def test_jepsen_text_history_and_log_are_named_as_unsupported(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    assert_bad_input(check(str(p)), str(p), "use history.edn")


def test_html_to_a_missing_folder_or_a_directory_exits_254_before_checking(tmp_path):
    missing = tmp_path / "no" / "such" / "out.html"
    assert_bad_input(check(VALID, "--html", str(missing)), "--html", "does not exist")
    assert_bad_input(check(VALID, "--html", str(tmp_path)), "--html", "is a directory")


def test_a_bad_file_in_a_directory_is_reported_and_the_others_checked(tmp_path):
    (tmp_path / "a.edn").write_text(OK_EDN)
    (tmp_path / "b.edn").write_text(OK_EDN + "{:process 1, :type :invoke, :value ##NaN}\n")
    (tmp_path / "c.jsonl").write_text(Path(VALID).read_text())
    r = check(str(tmp_path), "--json")
    assert r.returncode == 254 and "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    verdicts = {Path(h["path"]).name: (h["valid"], h["error"]) for h in doc["histories"]}
    assert verdicts["a.edn"] == (True, None) and verdicts["c.jsonl"] == (True, None)
    assert verdicts["b.edn"][1]["line"] == 3
