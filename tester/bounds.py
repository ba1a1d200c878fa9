"""Nothing in a run waits forever: a call or a set of threads gets a deadline, and whatever
has not finished by then is named and left behind (as a daemon thread) instead of hanging
the run. The runner uses it for its client and nemesis threads, the final heal and the
status queries of the liveness check; what was left behind makes the run ``unknown``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class Stuck(RuntimeError):
    """A call did not return within its bound (it may still be running, abandoned)."""


def join_all(threads: Iterable[threading.Thread], timeout: float,
             stop: Callable[[], bool] | None = None) -> list[threading.Thread]:
    """Join ``threads`` against one deadline, ``timeout`` seconds from now (not one timeout
    each); return those still running. Joins in short slices, so Ctrl-C reaches the caller;
    ``stop()`` true ends the wait early."""
    deadline = time.monotonic() + timeout
    pending = list(threads)
    for t in pending:
        while t.is_alive():
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop()):
                return [x for x in pending if x.is_alive()]
            t.join(min(0.2, left))
    return []


def call(fn: Callable[[], T], timeout: float, what: str) -> T:
    """``fn()``, or :class:`Stuck` naming ``what`` if it has not returned in ``timeout``
    seconds. Its exception, if any, is raised here."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=body, name=f"bounded {what}", daemon=True)
    t.start()
    if join_all([t], timeout):
        raise Stuck(f"{what} did not finish in {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]
