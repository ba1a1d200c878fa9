"""Run a daemon on a node under libfaketime, its clock moved by writing one file.

The clock nemesis moves one node's clock by writing an offset ("+5", "-2.5", "+0 x0.5") into
the file ``DB.clock_file(node)`` returns. A daemon follows that file when it was started
through the node-side wrapper ``faketime-run`` (``faketime-run.sh`` here), which preloads
libfaketime and ``waitfix.so`` (``waitfix.c``: without it a Python daemon's timed waits never
return under libfaketime). raftnodectl runs raftnode through the same wrapper, so both the
raftnode adapter, the Ansible role and any other adapter share one recipe:

    faketime.install(remote, HOME)                       # in setup(), HOME private to the node
    DAEMON.start(remote, faketime.wrap(HOME, CLOCK, ["mykv", "--port", "9000"]))

and ``clock_file(node)`` returns ``CLOCK``. Only programs that read the clock through libc
are moved: Go programs (etcd, nats-server) read it through the vDSO and are not.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from tester.control import Remote

HERE = Path(__file__).parent
WRAPPER_SOURCE = HERE / "faketime-run.sh"
WAITFIX_SOURCE = HERE / "waitfix.c"
WRAPPER = "faketime-run"

#: libfaketime re-reads the clock file at most this often (seconds); 0 re-reads on every clock
#: call (22x the cost of a clock read, docs/fleet.md), needed only for strobes faster than 1 s.
DEFAULT_CACHE_S = 1


def install(remote: Remote, home: str) -> None:
    """Upload the wrapper and waitfix.c into ``home`` (a directory private to the node).

    waitfix.so is built on the node the first time the wrapper runs (a C compiler is needed
    there once; without one the daemon still runs, but Python timed waits may hang).
    """
    remote.run(f"mkdir -p {shlex.quote(home)}", timeout=15)
    remote.put(WRAPPER_SOURCE, f"{home}/{WRAPPER}", mode=0o755)
    remote.put(WAITFIX_SOURCE, f"{home}/waitfix.c", mode=0o644)


def wrap(home: str, clock_file: str, argv: Sequence[str], cache_s: int = DEFAULT_CACHE_S
         ) -> list[str]:
    """``argv`` prefixed so that it runs under libfaketime reading ``clock_file``."""
    return [f"{home}/{WRAPPER}", clock_file, str(int(cache_s)), *argv]


def reset_clock(remote: Remote, clock_file: str) -> None:
    """Put the node's clock back to real time (setup and teardown do, after a killed run)."""
    q = shlex.quote(clock_file)
    remote.run(f"mkdir -p \"$(dirname {q})\" && echo +0 > {q}", timeout=15)
