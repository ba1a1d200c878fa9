"""The run store: one folder per test run, laid out for the checker, the report and humans.

``<store>/<test>/<YYYYmmddTHHMMSS>/``::

    test.json       the full configuration, the seed, the start wall time, the nodes
    history.jsonl   every operation, appended and flushed as it happens
    results.json    {"valid", "checker", "stats", "perf", ...}
    raftlab.log     the run's log: every lifecycle step with its timing
    nodes/<node>/   the logs downloaded from each node
    report.html     written by ``tester.report`` when that module is present

and ``<store>/<test>/latest`` -> the newest run folder.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("raftlab")


def _json_default(o: Any) -> Any:
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (tmp + rename) so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=_json_default)
        fh.write("\n")
    os.replace(tmp, path)


class RunStore:
    """One run's folder. Creating it also points ``latest`` at it."""

    def __init__(self, root: str | os.PathLike[str], test: str, started: float | None = None):
        self.started = time.time() if started is None else started
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.started))
        base = Path(root) / test
        base.mkdir(parents=True, exist_ok=True)
        path = base / stamp
        n = 1
        while path.exists():  # two runs in one second: keep both
            path = base / f"{stamp}-{n}"
            n += 1
        path.mkdir()
        self.path = path
        self._link_latest()

    def _link_latest(self) -> None:
        link = self.path.parent / "latest"
        tmp = self.path.parent / f".latest-{os.getpid()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(self.path.name)
        os.replace(tmp, link)

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
        write_json(self.path / "results.json", results)

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
