"""``raftlab analyze RUN_DIR``: check a stored run again, as Jepsen's ``analyze`` does.

Re-reads the history and the node logs, runs the workload's checker and the node-event checks
with today's code, and rewrites ``results.json``/``results.edn``, ``history.edn`` and
``report.html``. What only the run itself knew (its step timings, errors, whether it was
interrupted, the nemesis summary) is kept from the old results. Useful after a checker fix,
with a longer ``--check-timeout`` for an unknown verdict, or for a run that was killed before
it could check (its history is flushed op by op). Exit codes as ``raftlab test``: 0 valid,
1 invalid, 2 unknown, 254 when RUN_DIR is not a run folder or its history cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from checker.history import HistoryError, read_jsonl
from checker.verdict import EXIT_BAD_INPUT, exit_code
from tester import workloads as wl
from tester.report_cli import resolve_run_dir
from tester.runner import Outcome, judge
from tester.store import RunStore

#: what a killed run (no results.json) is judged with: it stopped before its end
NOT_FINISHED = "results.json was missing: the run did not finish"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="check a stored run again and rewrite its results and report",
        description="Re-check RUN_DIR's history (and node logs) and rewrite results.json, "
        "results.edn, history.edn and report.html. Exit 0 valid, 1 invalid, 2 unknown, "
        "254 bad input.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="a run folder, a test folder or a store (uses its latest run)")
    p.add_argument("--check-timeout", type=float, default=None, metavar="S",
                   help="seconds the checker may search (default: the run's own setting)")
    p.set_defaults(func=run)


def _load_json(path: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read: {e}") from None


def analyze(run_dir: str, check_timeout: float | None = None) -> Outcome:
    """Re-check one stored run and rewrite its results and report; ValueError on bad input."""
    d = resolve_run_dir(run_dir)
    if d.is_symlink():  # a ``latest`` link: name the run itself
        d = Path(os.path.relpath(d.resolve()))
    test = _load_json(d / "test.json")
    test = test if isinstance(test, dict) else {}
    old = _load_json(d / "results.json")
    old = old if isinstance(old, dict) else None
    try:
        ops = read_jsonl(d / "history.jsonl")
    except FileNotFoundError:
        raise ValueError(f"{d}: no history.jsonl to check") from None
    except HistoryError as e:
        raise ValueError(str(e)) from None
    try:
        workload = wl.make(str(test.get("workload") or "registers"), 1, None)
    except ValueError as e:
        raise ValueError(f"{d / 'test.json'}: {e}") from None
    timeout = check_timeout or float(test.get("check_timeout") or 60.0)
    errors = list(old.get("errors") or []) if old else [NOT_FINISHED]
    live = (old or {}).get("liveness")
    live = live if isinstance(live, dict) and "valid" in live else None
    judged = judge(ops, workload, d / "nodes", bool(errors), timeout, live)
    results = {**(old or {"errors": errors, "interrupted": False, "partial": True}), **judged,
               "analyzed": {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "previous_valid": (old or {}).get("valid")}}
    store = RunStore.existing(d)
    store.write_results(results)
    store.write_history_edn(ops)
    return Outcome(judged["valid"], d, results, store.write_report())


def run(args: argparse.Namespace) -> int:
    from tester.test_cli import print_summary

    if args.check_timeout is not None and args.check_timeout <= 0:
        print("raftlab analyze: --check-timeout must be positive", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        out = analyze(args.run_dir, args.check_timeout)
    except ValueError as e:
        print(f"raftlab analyze: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    before = (out.results.get("analyzed") or {}).get("previous_valid")
    if before is not None and before != out.valid:
        print(f"the verdict changed: it was {before}, it is {out.valid}")
    print_summary(out)
    return exit_code(out.valid)
