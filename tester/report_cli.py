"""``raftlab report RUN_DIR``: (re)write a run's report.html from what the run folder holds.

Useful after a report template changed, after re-checking a history, or for a run whose
report was never written (an interrupted run still leaves its history). Exit 0 when the report
was written, 254 when RUN_DIR is not a run folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from checker.verdict import EXIT_BAD_INPUT


def resolve_run_dir(path: str) -> Path:
    """A run folder, or a test folder whose ``latest`` link names one; ValueError otherwise."""
    d = Path(path)
    if not d.is_dir():
        raise ValueError(f"{path}: no such directory")
    if not (d / "history.jsonl").exists() and (d / "latest").is_dir():
        d = (d / "latest").resolve()
    if not (d / "history.jsonl").exists() and not (d / "test.json").exists():
        raise ValueError(f"{path}: not a run folder (it has neither history.jsonl nor test.json)")
    return d


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write report.html for a stored run",
        description="Write RUN_DIR/report.html: verdict, per-key results, latency and "
        "throughput with faults shaded, the cluster timeline from the node logs, and a view "
        "of every linearizability violation. The page is self-contained and opens from disk.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="a run folder (reports/<test>/<timestamp>) or a test folder (uses latest)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tester.report import write_report

    try:
        d = resolve_run_dir(args.run_dir)
    except ValueError as e:
        print(f"raftlab report: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(write_report(d))
    return 0
