"""Nothing in a run waits forever: a call or a set of threads gets a deadline, and whatever
has not finished by then is named and left behind (as a daemon thread) instead of hanging
the run. The runner uses it for its client and nemesis threads, the final heal and the
status queries of the liveness check; what was left behind makes the run ``unknown``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")


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


@dataclass
class Outcome(Generic[T]):
    """What one bounded call came to: its value, its exception, or (``done`` false) nothing
    yet, its thread abandoned."""

    value: T | None = None
    error: BaseException | None = None
    done: bool = False


def each(items: Iterable[Item], fn: Callable[[Item], T], timeout: float,
         what: str = "step") -> list[Outcome[T]]:
    """``fn(item)`` for every item at once, each on a daemon thread, against one deadline
    ``timeout`` seconds from now; the outcomes in the items' order. A call that has not
    returned by then is left behind, so a hung node costs one bound, never a hang."""
    items = list(items)
    outcomes: list[Outcome[T]] = [Outcome() for _ in items]

    def body(item: Item, out: Outcome[T]) -> None:
        try:
            out.value = fn(item)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            out.error = e
        out.done = True

    threads = [threading.Thread(target=body, args=(item, out), name=f"bounded {what}",
                                daemon=True) for item, out in zip(items, outcomes, strict=True)]
    for t in threads:
        t.start()
    join_all(threads, timeout)
    return outcomes


def call(fn: Callable[[], T], timeout: float, what: str) -> T:
    """``fn()``, or :class:`Stuck` naming ``what`` if it has not returned in ``timeout``
    seconds. Its exception, if any, is raised here."""
    [out] = each([None], lambda _: fn(), timeout, what)
    if not out.done:
        raise Stuck(f"{what} did not finish in {timeout:g} s")
    if out.error is not None:
        raise out.error
    return out.value  # type: ignore[return-value]
