"""Run statistics: counts per f, availability inside and outside fault windows, latencies."""

from __future__ import annotations

from checker.history import Op
from tester.runner import fault_windows, summarize

MS = 1_000_000


def op(i, t, typ, proc, f, value=None, error=None):
    return Op(i, t * MS, typ, proc, f, value, key=1 if proc != "nemesis" else None, error=error)


HISTORY = [
    op(0, 0, "invoke", 0, "write", 1), op(1, 10, "ok", 0, "write", 1),
    op(2, 20, "invoke", "nemesis", "start-partition"), op(3, 30, "info", "nemesis", "start-partition"),
    op(4, 40, "invoke", 0, "read"), op(5, 60, "fail", 0, "read", error="timeout"),
    op(6, 61, "invoke", 1, "cas", [1, 2]), op(7, 70, "fail", 1, "cas", [1, 2], "cas-mismatch"),
    op(8, 80, "invoke", "nemesis", "stop-partition"), op(9, 90, "info", "nemesis", "stop-partition"),
    op(10, 100, "invoke", 0, "read"), op(11, 104, "ok", 0, "read", 1),
    op(12, 105, "invoke", 1, "write", 3),  # never completes: indeterminate
]


def test_fault_windows_run_from_start_completion_to_stop_completion():
    assert fault_windows(HISTORY, 105 * MS) == [(30 * MS, 90 * MS, "partition")]


def test_counts_availability_and_latency():
    stats, perf = summarize(HISTORY)
    assert stats["by_f"] == {"write": {"ok": 1, "fail": 0, "info": 1},
                             "read": {"ok": 1, "fail": 1, "info": 0},
                             "cas": {"ok": 0, "fail": 1, "info": 0}}
    av = stats["availability"]
    assert av["during_faults"] == 0.5  # the timed-out read failed; cas-mismatch is an answer
    assert av["without_faults"] == 1.0
    assert av["fault_seconds"] == 0.06
    assert perf["latency_ms"]["write"]["0.5"] == 10.0
    assert perf["latency_ms"]["read"]["1"] == 4.0
