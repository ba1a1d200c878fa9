"""A daemon started through faketime-run (real libfaketime, the fleet's settings) keeps working
under every clock fault the nemesis injects: its timed waits, sleeps and asyncio timers end.

Each case runs a Python child through the node-side wrapper exactly as a fleet node does, on
this host, and times each of its waits from outside (the parent's clock is not faked).
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tester.dbs import faketime

WAIT_S = 0.2
CHILD = r"""
import asyncio, queue, sys, threading, time
D = float(sys.argv[1])
cond = threading.Condition()

def condition():
    with cond:
        cond.wait(D)

def queue_get():
    try:
        queue.Queue().get(timeout=D)
    except queue.Empty:
        pass

async def wait_for():
    try:
        await asyncio.wait_for(asyncio.Event().wait(), D)
    except asyncio.TimeoutError:
        pass

print("clock", time.time(), flush=True)
for name, fn in [("event", lambda: threading.Event().wait(D)), ("condition", condition),
                 ("queue", queue_get), ("sleep", lambda: time.sleep(D)),
                 ("asyncio-sleep", lambda: asyncio.run(asyncio.sleep(D))),
                 ("asyncio-wait_for", lambda: asyncio.run(wait_for()))]:
    fn()
    print(name, flush=True)
"""
KINDS = ["event", "condition", "queue", "sleep", "asyncio-sleep", "asyncio-wait_for"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    if not glob.glob("/usr/lib/*/faketime/libfaketime.so.1"):
        pytest.skip("needs libfaketime (run scripts/bootstrap.sh)")
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler to build waitfix.so (run scripts/bootstrap.sh)")
    shutil.copy(faketime.WRAPPER_SOURCE, tmp_path / faketime.WRAPPER)
    (tmp_path / faketime.WRAPPER).chmod(0o755)
    shutil.copy(faketime.WAITFIX_SOURCE, tmp_path / "waitfix.c")
    (tmp_path / "child.py").write_text(CHILD)
    return tmp_path


def run_child(home: Path, clock: str, cache: int, during=None, timeout: float = 20.0
              ) -> tuple[float, dict[str, float]]:
    """Start the child under the wrapper with ``clock`` in its file; ``during(path)`` runs
    beside it. Returns the child's clock offset and the real seconds each wait took."""
    clock_file = home / "clock"
    clock_file.write_text(clock + "\n")
    argv = faketime.wrap(str(home), str(clock_file),
                         [sys.executable, str(home / "child.py"), str(WAIT_S)], cache_s=cache)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    helper = threading.Thread(target=during, args=(clock_file, stop)) if during else None
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append((time.monotonic(), line.strip()))

    reader = threading.Thread(target=read)
    reader.start()
    if helper:
        helper.start()
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    finally:
        stop.set()
        if helper:
            helper.join()
        reader.join()
    assert lines and lines[0][1].startswith("clock "), f"the child printed {lines}"
    offset = float(lines[0][1].split()[1]) - time.time()
    took = {name: t - lines[i][0] for i, (t, name) in enumerate(lines[1:])}
    return offset, took


def assert_every_wait_ends(took: dict[str, float], budget: float) -> None:
    assert list(took) == KINDS, f"waits that never ended: {sorted(set(KINDS) - set(took))}"
    slow = {k: round(v, 2) for k, v in took.items() if v > budget}
    assert not slow, f"waits that took longer than {budget} s: {slow}"


@pytest.mark.parametrize(("clock", "offset_s", "budget"), [
    ("+0", 0, 1.5),
    ("+300", 300, 1.5),           # a bump forward, as big as the nemesis makes them
    ("-300", -300, 1.5),          # and back
    ("+0 x0.25", 0, 4 * WAIT_S + 1.5),  # a slow clock: waits in its time take 4x as long
    ("+0 x2", 0, 1.5),            # a fast one
])
def test_waits_sleeps_and_asyncio_end_under_a_moved_clock(home, clock, offset_s, budget):
    offset, took = run_child(home, clock, faketime.DEFAULT_CACHE_S)
    assert abs(offset - offset_s) < 5, f"the child's clock is off by {offset:.1f} s, not {offset_s}"
    assert_every_wait_ends(took, budget)


def strobe(clock_file: Path, stop: threading.Event) -> None:
    """Flip the clock between +0.5 s and real time every 50 ms, as the strobe fault does."""
    flips = 0
    while not stop.is_set() and flips < 400:
        clock_file.write_text("+0.5\n" if flips % 2 == 0 else "+0\n")
        flips += 1
        time.sleep(0.05)


@pytest.mark.parametrize("cache", [0, 1])
def test_waits_end_while_the_clock_strobes(home, cache):
    _, took = run_child(home, "+0", cache, during=strobe)
    assert_every_wait_ends(took, WAIT_S + 0.5 + 1.5)


def test_a_thread_wait_in_progress_ends_on_time_when_the_clock_steps_back(home):
    def step_back_once(clock_file: Path, stop: threading.Event) -> None:
        time.sleep(0.1)  # inside the first wait
        clock_file.write_text("-300\n")

    _, took = run_child(home, "+0", 0, during=step_back_once)
    assert took["event"] < 1.5, f"Event.wait lasted {took['event']:.1f} s after a step back"


def test_without_waitfix_a_timed_wait_hangs_under_libfaketime(home):
    """The control: the hang waitfix.so exists for (so the cases above can fail)."""
    (home / "waitfix.c").unlink()
    _, took = run_child(home, "+0", 1, timeout=2.5)
    assert "event" not in took, "Event.wait ended without waitfix.so: is the fix still needed?"
