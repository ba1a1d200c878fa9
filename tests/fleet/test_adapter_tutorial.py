"""docs/adapter-tutorial.md, followed: its code is the code of the files it names, and its
commands bring up a fleet, pass under every fault, catch the planted bug and clean up."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import skip_unless_root_tools

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "adapter-tutorial.md"
BLOCK = re.compile(r"<!-- (\S+) -->\n```(\w+)\n(.*?)```\n", re.S)


def blocks(kind: str) -> list[tuple[str, str]]:
    """The doc's fenced blocks of ``kind``, each with the name in the comment above it."""
    return [(name, text) for name, k, text in BLOCK.findall(DOC.read_text()) if k == kind]


def test_the_tutorial_shows_each_file_it_builds_whole_and_in_order():
    shown: dict[str, str] = {}
    for name, text in blocks("python"):
        shown[name] = shown.get(name, "") + text
    assert set(shown) == {"tester/dbs/example_server.py", "tester/dbs/example.py"}
    for name, text in shown.items():
        assert text == (ROOT / name).read_text(), f"docs/adapter-tutorial.md differs from {name}"


def tutorial_commands() -> list[list[str]]:
    """The commands of the tutorial's last step, ``$R`` being this checkout's raftlab."""
    (script,) = [text for name, text in blocks("sh") if name == "tutorial-run"]
    raftlab = [sys.executable, "-m", "tester.cli"]
    out = []
    for line in script.splitlines():
        if line.startswith("$R "):
            out.append(raftlab + shlex.split(line[3:]))
    return out


@pytest.mark.e2e
def test_following_the_tutorial_passes_under_faults_and_catches_the_planted_bug(tmp_path):
    skip_unless_root_tools()
    up, valid, unsafe, down = tutorial_commands()
    assert up[3:5] == ["fleet", "up"] and down[3:5] == ["fleet", "down"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=240)

    try:
        made = run(up)
        assert made.returncode == 0, made.stderr
        ok = run(valid)
        assert ok.returncode == 0 and "verdict: VALID" in ok.stdout, ok.stdout + ok.stderr
        bad = run(unsafe)
        assert bad.returncode == 1 and "verdict: INVALID" in bad.stdout, bad.stdout + bad.stderr
    finally:
        gone = run(down)
    assert gone.returncode == 0, gone.stderr
    runs = {p.parent.resolve() for p in (tmp_path / "reports").glob("*/*/history.jsonl")}
    assert len(runs) == 2 and all((r / "nodes" / "n1" / "events.jsonl").is_file() for r in runs)
