"""tester.bounds: a set of calls against one deadline never waits on the one that hangs."""

import threading
import time

import pytest

from tester import bounds


def test_each_returns_values_errors_and_leaves_a_hung_call_behind():
    release = threading.Event()

    def fn(x):
        if x == "hang":
            release.wait(30)
        if x == "boom":
            raise ValueError("boom")
        return x * 2

    t0 = time.monotonic()
    ok, boom, hung = bounds.each(["ok", "boom", "hang"], fn, timeout=0.5)
    took = time.monotonic() - t0
    release.set()
    assert took < 5  # one deadline, not the hung call's 30 s
    assert (ok.done, ok.value, ok.error) == (True, "okok", None)
    assert boom.done and isinstance(boom.error, ValueError)
    assert not hung.done and hung.value is None


def test_each_runs_the_calls_at_once():
    met = threading.Barrier(5, timeout=10)  # breaks unless all five are in flight together

    outs = bounds.each(range(5), lambda x: met.wait() and x or x, timeout=20)
    assert [o.value for o in outs] == [0, 1, 2, 3, 4]
    assert all(o.error is None for o in outs)


def test_call_raises_stuck_naming_what_hung_and_passes_errors_through():
    with pytest.raises(bounds.Stuck, match="status of n3 did not finish"):
        bounds.call(lambda: time.sleep(5), 0.2, "status of n3")
    with pytest.raises(KeyError):
        bounds.call(lambda: {}["x"], 1, "lookup")
    assert bounds.call(lambda: 7, 1, "seven") == 7
