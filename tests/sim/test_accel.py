"""The compiled simulator modules: the same traces as the source, and never a stale build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raftnode import accel

ROOT = Path(__file__).resolve().parents[2]

_TRACES = """
import json, sys
import raftnode.core
from raftnode.types import UNSAFE_SWITCHES
from tester.sim.simulator import run_seed
out = {"core": raftnode.core.__file__}
for seed in range(12):
    for sw in ("",) + UNSAFE_SWITCHES:
        r = run_seed(seed, nodes=3 + seed % 3, unsafe=frozenset({sw} - {""}))
        out[f"{seed}/{sw}"] = [r.trace_text(), [o.to_json() for o in r.history],
                               r.violation.prop if r.violation else None]
json.dump(out, sys.stdout)
"""


def _traces(pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "RAFTLAB_PURE"}
    if pure:
        env["RAFTLAB_PURE"] = "1"
    r = subprocess.run([sys.executable, "-c", _TRACES], cwd=ROOT, env=env, text=True,
                       capture_output=True, check=True)
    return json.loads(r.stdout)


@pytest.mark.skipif(not accel.status()[0], reason="compiled modules not built or stale "
                    "(raftlab compile)")
def test_compiled_modules_give_byte_identical_traces_histories_and_verdicts():
    pure, compiled = _traces(pure=True), _traces(pure=False)
    assert pure.pop("core").endswith("core.py")
    assert not compiled.pop("core").endswith(".py")  # really the extension module
    assert any(v[2] for v in pure.values())  # violations are part of what is compared
    assert [k for k in pure if pure[k] != compiled[k]] == []


def _fake_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: bool,
               stat: bool = True) -> None:
    """A project root with the group's sources, and (if ``built``) extensions and a stamp
    (recording each source's time and size too unless ``stat`` is false, as older builds
    did not)."""
    suffix = accel.importlib.machinery.EXTENSION_SUFFIXES[0]
    for rel in accel.MODULES:
        src = tmp_path / rel
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(f"# {rel}\n")
        if built:
            Path(str(src)[:-3] + suffix).write_bytes(b"")
    monkeypatch.setattr(accel, "ROOT", tmp_path)
    if built:
        (tmp_path / (accel.LIBRARY + suffix)).write_bytes(b"")
        stamp: dict = {"sources": {rel: accel._digest(rel) for rel in accel.MODULES}}
        if stat:
            stamp["stat"] = {rel: accel._stat(rel) for rel in accel.MODULES}
        (tmp_path / accel.STAMP).write_text(json.dumps(stamp))
    monkeypatch.setattr(accel, "_state", {})
    monkeypatch.delenv("RAFTLAB_PURE", raising=False)


def test_a_build_matching_its_sources_is_used(tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=True)
    assert accel.status() == (True, "compiled")


def test_sources_with_the_builds_time_and_size_are_not_hashed(tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=True)
    monkeypatch.setattr(accel, "_digest", lambda rel: pytest.fail(f"{rel} was hashed"))
    assert accel.status() == (True, "compiled")


def test_a_source_touched_but_unchanged_or_a_stamp_without_times_is_checked_by_hash(
        tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=True)
    core = tmp_path / "raftnode/core.py"
    os.utime(core, ns=(1, 1))
    assert accel.status() == (True, "compiled")
    _fake_tree(tmp_path, monkeypatch, built=True, stat=False)
    assert accel.status() == (True, "compiled")


def test_an_edit_that_keeps_the_size_is_still_stale(tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=True)
    core = tmp_path / "raftnode/core.py"
    core.write_text(core.read_text().upper())
    used, why = accel.status()
    assert not used and why == "stale build (changed since: raftnode/core.py)"


def test_no_build_means_the_sources_run(tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=False)
    assert accel.status() == (False, "not built")


def test_a_source_edited_after_the_build_makes_the_whole_group_run_from_source(
        tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=True)
    (tmp_path / "raftnode/core.py").write_text("# edited\n")
    used, why = accel.status()
    assert not used and why == "stale build (changed since: raftnode/core.py)"


def test_a_missing_shared_library_counts_as_stale(tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=True)
    for lib in tmp_path.glob("raftnode/accel_group__mypyc*"):
        lib.unlink()
    assert accel.status() == (False, "stale build (changed since: the shared library)")


def test_raftlab_pure_turns_a_good_build_off(tmp_path, monkeypatch):
    _fake_tree(tmp_path, monkeypatch, built=True)
    monkeypatch.setenv("RAFTLAB_PURE", "1")
    assert accel.status() == (False, "RAFTLAB_PURE=1")


def test_the_source_first_finder_loads_each_group_module_from_its_py_file():
    for name, rel in accel._SourceFirst.names.items():
        spec = accel._SourceFirst.find_spec(name)
        assert spec is not None and spec.origin == str(accel.ROOT / rel)
    assert accel._SourceFirst.find_spec("raftnode.server") is None


_EARLY_STOP = """
from tester.sim.scan import scan
for seed, prop, _ops in scan(range(100), unsafe=frozenset({"local-reads"}), jobs=2):
    if prop:
        break
print("stopped at", seed)
"""


def test_a_scan_stopped_early_shuts_its_workers_down_quietly():
    # A generator left early must stop its pool as Python does, compiled build or not.
    r = subprocess.run([sys.executable, "-c", _EARLY_STOP], cwd=ROOT, text=True,
                       capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("stopped at")
    assert r.stderr == ""
