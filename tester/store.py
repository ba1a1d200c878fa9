"""The run store: one folder per test run, laid out for the checker, the report and humans.

``<store>/<test>/<YYYYmmddTHHMMSS.fffZ>/`` (Jepsen's folder names, UTC to the millisecond;
runs stored before that are named ``<YYYYmmddTHHMMSS>`` and read alike)::

    test.json       the full configuration, the seed, the start wall time, the nodes
    history.jsonl   every operation, appended and flushed as it happens
    history.edn     the same history as Jepsen writes it (one op map a line)
    results.json    {"valid", "checker", "stats", "perf", ...}
    results.edn     the verdict and its main figures for Jepsen's tooling (``:valid?``)
    raftlab.log     the run's log: every lifecycle step with its timing
    nodes/<node>/   the logs downloaded from each node
    report.html     written by ``tester.report`` when that module is present

and ``<store>/<test>/latest`` -> the test's newest run folder, ``<store>/latest`` -> the
newest run of any test (as Jepsen's ``store/latest``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from checker.history import Op
from tester import jepsen_files

log = logging.getLogger("raftlab")


def _json_default(o: Any) -> Any:
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def write_atomic(path: Path, lines: Iterable[str]) -> Path:
    """Write ``lines`` (each ended with a newline) through a temporary file renamed into
    place, so a reader, or a run folder after a crash, never holds half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")
    os.replace(tmp, path)
    return path


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    write_atomic(path, [json.dumps(data, indent=2, default=_json_default)])


def run_stamp(started: float) -> str:
    """A run folder's name, as Jepsen names them: ``20261130T154337.102Z`` (UTC)."""
    ms = int(round(started * 1000))
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def link_latest(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (relative), replacing it atomically."""
    tmp = link.parent / f".{link.name}-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)


class RunStore:
    """One run's folder. Creating it also points the test's and the store's ``latest`` at it."""

    def __init__(self, root: str | os.PathLike[str], test: str, started: float | None = None):
        self.started = time.time() if started is None else started
        stamp = run_stamp(self.started)
        base = Path(root) / test
        base.mkdir(parents=True, exist_ok=True)
        path = base / stamp
        n = 1
        while path.exists():  # two runs in one second: keep both
            path = base / f"{stamp}-{n}"
            n += 1
        path.mkdir()
        self.path = path
        link_latest(base / "latest", path)
        link_latest(Path(root) / "latest", path)

    @classmethod
    def existing(cls, path: str | os.PathLike[str]) -> RunStore:
        """A run folder that already exists (to re-check it), links left as they are."""
        store = cls.__new__(cls)
        store.path = Path(path)
        store.started = store.path.stat().st_mtime
        return store

    @property
    def history(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def log_file(self) -> Path:
        return self.path / "raftlab.log"

    def node_dir(self, node: str) -> Path:
        d = self.path / "nodes" / node
        d.mkdir(parents=True, exist_ok=True)
        return d

    def write_test(self, config: dict[str, Any]) -> None:
        write_json(self.path / "test.json", config)

    def write_results(self, results: dict[str, Any]) -> None:
        """results.json, and results.edn beside it for Jepsen's tooling."""
        write_json(self.path / "results.json", results)
        try:
            write_atomic(self.path / "results.edn", jepsen_files.results_lines(results))
        except (OSError, ValueError) as e:  # the JSON is the record; the EDN is a courtesy
            log.warning("results.edn not written: %s", e)

    def write_history_edn(self, ops: list[Op]) -> None:
        """history.edn: the history as Jepsen writes it, once the run is over."""
        try:
            write_atomic(self.path / "history.edn", jepsen_files.history_lines(ops))
        except (OSError, ValueError) as e:
            log.warning("history.edn not written: %s", e)

    def write_report(self) -> Path | None:
        """Render report.html with ``tester.report.write_report`` if that module exists."""
        try:
            report = importlib.import_module("tester.report")
        except ImportError:
            return None
        writer = getattr(report, "write_report", None)
        if writer is None:
            return None
        try:
            return Path(writer(self.path))
        except Exception as e:  # a broken report must not lose the verdict
            log.warning("report generation failed: %s: %s", type(e).__name__, e)
            return None
