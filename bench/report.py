"""Report speed: a 100,000-operation run -> report size, write time, Chromium load time.

Targets (issue "Reports, campaigns and release gates"): report <= 20 MB, written in <= 10 s,
loaded by Chromium in <= 3 s. The run is synthetic (tests/report/synthetic.py: clients on
registers, partition/kill/pause/clock faults, three node logs, one stale read) and checked by
the real checker, so the failure view carries the checker's full explanation.

    .venv/bin/python bench/report.py [--ops 100000] [--repeat 3]

Load time is measured from navigation start to the end of the page's own drawing (the
report's script sets ``window.raftlabReport`` when the plots, timeline and first failure view
are drawn), in headless Debian Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "report"))

from synthetic import make_run  # noqa: E402

import checker  # noqa: E402
from tester.report import write_report  # noqa: E402

TARGETS = {"size_mb": 20.0, "write_s": 10.0, "load_s": 3.0}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def checked(ops):
    t = time.monotonic()
    res = checker.check([o for o in ops if o.process != "nemesis"],
                        checker.load_model("cas-register"), timeout=120).to_dict()
    print(f"check (not part of the report budget): {time.monotonic() - t:.1f} s, "
          f"valid={res['valid']}")
    return res


def load_times(report: Path, repeat: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    profile = tempfile.mkdtemp(prefix="raftlab-bench-")
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000})
            for _ in range(repeat + 1):  # the first load warms the browser up; not counted
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.goto(report.as_uri(), wait_until="load", timeout=60_000)
                page.wait_for_function("() => window.raftlabReport !== undefined")
                ms = page.evaluate("() => performance.now()")
                if errors:
                    raise SystemExit(f"page errors: {errors}")
                times.append(ms / 1000)
                page.close()
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return times[1:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keys", type=int, default=10, help="registers in the history")
    ap.add_argument("--bad-keys", type=int, default=1, help="keys with a stale read")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="raftlab-bench-report-"))
    try:
        t = time.monotonic()
        run = make_run(tmp, n_ops=args.ops, violate=args.bad_keys,
                       keys=[f"k{i}" for i in range(args.keys)],
                       duration_s=max(10.0, args.ops / 300), checker_result=checked)
        print(f"generated {args.ops} ops in {time.monotonic() - t:.1f} s")
        writes = []
        for _ in range(args.repeat):
            t = time.monotonic()
            out = write_report(run)
            writes.append(time.monotonic() - t)
        size_mb = out.stat().st_size / 1e6
        loads = load_times(out, args.repeat)
        figures = {"size_mb": size_mb, "write_s": statistics.median(writes),
                   "load_s": statistics.median(loads)}
        from checker.history import read_jsonl

        n = sum(1 for op in read_jsonl(run / "history.jsonl") if op.type == "invoke")
        print(f"history: {n} ops ({(run / 'history.jsonl').stat().st_size / 1e6:.1f} MB)")
        print(f"write times: {', '.join(f'{w:.2f}' for w in writes)} s")
        print(f"load times:  {', '.join(f'{x:.2f}' for x in loads)} s")
        ok = True
        for k, v in figures.items():
            ratio = v / TARGETS[k]
            ok &= ratio <= 1
            print(f"{k:8} {v:8.2f}   target {TARGETS[k]:5.1f}   ratio {ratio:.2f}"
                  f"{'' if ratio <= 1 else '   OVER TARGET'}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
