"""Fan-out of independent work (simulation seed ranges, campaign runs) over a Dask cluster.

One code path serves a laptop and a cluster: ``connect(None, n)`` starts a local Dask cluster
of ``n`` worker processes (one thread each: the simulator is CPU-bound Python), and
``connect("tcp://host:8786")`` joins a running one (``raftlab cluster up``, or any Dask
deployment). ``fan_out`` submits one task per item and yields results as workers report them.

Nothing is silently lost: a task whose worker dies (killed, out of memory) is run once more on
another worker; if that one dies too, the item comes back as :class:`Lost` with the reason.
``bounded_map`` gives every item of a task a time bound, so work that never ends is reported
(:class:`Stuck`) rather than waited on; the stuck worker is then restarted, which ends it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: the scheduler setting that makes a worker's death surface at once, so ``fan_out`` decides
#: where the retry goes (Dask's own default re-runs a task up to 3 times, wherever it likes)
ALLOWED_FAILURES_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
LOCAL = "local"


class ClusterError(RuntimeError):
    """The cluster cannot be reached or used; the message names the address."""


class Stuck(RuntimeError):
    """An item ran past its time bound; ``worker`` still runs it and must be restarted."""

    def __init__(self, message: str, worker: str | None = None):
        super().__init__(message)
        self.worker = worker


@dataclass(frozen=True)
class Lost:
    """An item that has no result: why (its worker died twice, or it ran past its bound)."""

    reason: str


def parse_address(address: str | None) -> tuple[str | None, int | None]:
    """``None``/``local``/``local:N`` -> (None, N or None); ``tcp://h:p`` or ``h:p`` -> address."""
    if address is None or address == LOCAL:
        return None, None
    if address.startswith(LOCAL + ":"):
        n = address.split(":", 1)[1]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise ClusterError(f"--cluster {address}: expected local:N with N workers (1-256)")
        return None, int(n)
    if "://" not in address:
        address = "tcp://" + address
    host_port = address.split("://", 1)[1]
    if ":" not in host_port or not host_port.rsplit(":", 1)[1].isdigit():
        raise ClusterError(f"--cluster {address}: expected tcp://HOST:PORT (what raftlab "
                           f"cluster up prints), or local:N")
    return address, None


@contextmanager
def connect(address: str | None = None, workers: int | None = None,
            timeout: float = 20.0) -> Iterator[Any]:
    """A ``distributed.Client``: to the scheduler at ``address``; to a private local cluster
    for ``local:N``, shut down on exit; or, without an address, to this process's own local
    cluster of ``workers`` processes (default: one per CPU), started on first use."""
    from distributed import Client

    address, local_n = parse_address(address)
    if address is not None:
        _probe(address, timeout)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"--cluster {address}: cannot reach the scheduler: {e}") from None
        for w in caught:
            if not _python_patch_only(str(w.message)):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        try:
            if not client.scheduler_info().get("workers"):
                try:
                    client.wait_for_workers(1, timeout=timeout)
                except TimeoutError:
                    raise ClusterError(f"--cluster {address}: the scheduler has no workers "
                                       f"(none joined within {timeout:g} s)") from None
            yield client
        finally:
            client.close()
        return
    n = workers or local_n or os.cpu_count() or 1
    if local_n is None:  # the default: one local cluster per process, started on first use
        yield _shared_local(n)
        return
    early = _EARLY.pop(n, None)
    cluster = early.result() if early is not None else _local_cluster(n)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


_SHARED: dict[int, Any] = {}
_EARLY: dict[int, Future[Any]] = {}  # local:N clusters starting in the background, by N


def start_early(address: str | None, preload: Sequence[str] = ()) -> None:
    """Start the private local cluster of ``local:N`` in the background now, so that its start
    overlaps the caller's own preparation (reading and checking a campaign); the next
    ``connect(address)`` takes it over, and :func:`discard_early` closes one never used.
    ``preload`` names modules every worker imports before its first task (once, in the
    process the workers fork from). Nothing for any other address."""
    try:
        remote, n = parse_address(address)
    except ClusterError:
        return  # connect() says what is wrong with it
    if remote is not None or n is None or n in _EARLY:
        return
    fut: Future[Any] = Future()

    def start() -> None:
        try:
            fut.set_result(_local_cluster(n, preload))
        except BaseException as e:  # handed to connect(), which raises it
            fut.set_exception(e)

    threading.Thread(target=start, daemon=True, name="raftlab-cluster-start").start()
    _EARLY[n] = fut


def discard_early() -> None:
    """Close the clusters :func:`start_early` started that nothing connected to."""
    while _EARLY:
        _, fut = _EARLY.popitem()
        with suppress(Exception):  # one that failed to start has nothing to close
            fut.result().close()


def _shared_local(n: int) -> Any:
    """A local cluster of ``n`` workers kept for the life of this process (Dask closes it at
    exit), so the seed scans of a campaign, a test session or a bench pay its start-up once."""
    from distributed import Client

    if n not in _SHARED:
        _SHARED[n] = Client(_local_cluster(n))
    return _SHARED[n]


def _local_cluster(n: int, preload: Sequence[str] = ()) -> Any:
    import dask
    from distributed import LocalCluster

    # forkserver: a worker process starts as a fork of a clean server process (measured here
    # about as fast as a plain fork, and up to twice as fast as spawning under load); a plain
    # fork would copy the client's event loop state, which breaks a worker the nanny restarts
    # after a death
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.worker.multiprocessing-method": "forkserver"}):
        if preload:
            _preload_forkserver(preload)
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                            dashboard_address=":0", worker_dashboard_address=None,
                            silence_logs=logging.ERROR)


def _preload_forkserver(modules: Sequence[str]) -> None:
    """Have the fork server import ``modules`` once, before it forks the workers, rather than
    each worker importing them on its first task (a no-op once the fork server runs)."""
    import multiprocessing.forkserver

    from distributed.utils import get_mp_context

    ctx = get_mp_context()  # Dask's own preload (distributed and its dependencies) set first
    have = list(getattr(multiprocessing.forkserver._forkserver, "_preload_modules", []))
    ctx.set_forkserver_preload(have + [m for m in modules if m not in have])


def _python_patch_only(message: str) -> bool:
    """Dask's version-mismatch table differs only in Python's patch level (3.11.2 on a fleet
    node's python3, 3.11.7 here): harmless, so not shown."""
    rows = re.findall(r"^\|\s*(\S+)\s*\|(.*)\|\s*$", message, re.M)
    rows = [(name, cells) for name, cells in rows if name != "Package"]
    if [name for name, _ in rows] != ["python"]:
        return False
    versions = {".".join(v.strip().split(".")[:2]) for v in rows[0][1].split("|") if v.strip()}
    return len(versions) == 1


def _probe(address: str, timeout: float) -> None:
    """Fail at once on a refused port, where Dask's client would retry until its timeout."""
    import socket

    host, port = address.split("://", 1)[1].rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterError(f"--cluster {address}: cannot reach the scheduler: "
                           f"{e.strerror or e}") from None


def workers(client: Any) -> list[str]:
    """The addresses of the cluster's live workers."""
    return sorted(client.scheduler_info(n_workers=-1).get("workers", {}))


def threads(client: Any) -> int:
    """How many tasks the cluster's live workers run at once (at least 1)."""
    info = client.scheduler_info(n_workers=-1).get("workers", {})
    return max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))


def fan_out(client: Any, fn: Callable[[T], R], items: Sequence[T],
            describe: Callable[[T], str] = str,
            note: Callable[[str], None] = lambda s: None,
            one_per_thread: bool = False) -> Iterator[tuple[int, R | Lost]]:
    """Run ``fn(item)`` for every item as a task; yield ``(index, result)`` as each finishes.

    A task whose worker died is submitted once more, to the other workers; a second death, or
    an exception from ``fn`` (a :class:`Stuck` restarts the worker that still runs it), gives
    ``Lost(reason)``. ``note`` hears each retry and loss as it happens.

    The scheduler charges a worker's death to every task assigned to it, queued ones too. Long
    tasks that must not be blamed for a neighbour's death (a campaign's runs) pass
    ``one_per_thread``: no more tasks are submitted than the live workers have threads, counted
    anew at each submission, so only the task that ran on the dead worker is charged.
    """
    from distributed import as_completed

    todo: list[tuple[int, int]] = [(i, 0) for i in reversed(range(len(items)))]  # a stack
    futures: dict[Any, tuple[int, int]] = {}
    pending = as_completed()

    def refill() -> None:
        cap = threads(client) if one_per_thread else len(todo) + len(futures)
        while todo and len(futures) < cap:
            i, tries = todo.pop()
            fut = client.submit(fn, items[i], pure=False)
            futures[fut] = (i, tries)
            pending.add(fut)

    refill()
    try:
        yield from _results(client, items, futures, pending, todo, refill, describe, note)
    finally:  # the caller stopped early (a violation found): free the workers at once
        todo.clear()
        client.cancel(list(futures))


_AGAIN = object()  # a task that will run again: nothing to yield yet


def _results(client: Any, items: Sequence[T], futures: dict[Any, Any], pending: Any,
             todo: list[tuple[int, int]], refill: Callable[[], None],
             describe: Callable[[T], str], note: Callable[[str], None]
             ) -> Iterator[tuple[int, Any]]:
    from distributed.scheduler import KilledWorker

    for fut in pending:
        i, tries = futures.pop(fut)
        out: Any
        try:
            out = fut.result()
        except KilledWorker as e:
            dead = _address(getattr(e, "last_worker", None))
            if tries == 0:
                note(f"{describe(items[i])}: its worker {dead or '?'} died; running it again "
                     "on another worker")
                todo.append((i, 1))  # next in line, before the items not yet started
                out = _AGAIN
            else:
                reason = f"its worker died twice (last {dead or '?'}): killed or out of memory"
                note(f"{describe(items[i])}: {reason}")
                out = Lost(reason)
        except Stuck as e:
            if e.worker:
                try:
                    client.restart_workers([e.worker], raise_for_error=False)
                except Exception as err:  # the worker may be gone already
                    note(f"could not restart worker {e.worker}: {err}")
            note(f"{describe(items[i])}: {e}")
            out = Lost(str(e))
        except Exception as e:
            note(f"{describe(items[i])}: {type(e).__name__}: {e}")
            out = Lost(f"{type(e).__name__}: {e}")
        finally:
            fut.release()
        refill()
        if out is not _AGAIN:
            yield i, out


def _address(w: Any) -> str | None:
    if w is None:
        return None
    return w if isinstance(w, str) else getattr(w, "address", None)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], bound: float,
                describe: Callable[[T], str] = str) -> list[R]:
    """``[fn(x) for x in items]``, raising :class:`Stuck` when one item runs past ``bound``
    seconds. The items run on a helper thread, which is left behind (a Python thread cannot be
    stopped): inside a worker the caller restarts the worker, in a command the process exits."""
    items = list(items)
    out: list[R] = []
    state: dict[str, Any] = {"i": 0, "since": time.monotonic(), "error": None}
    done = threading.Event()

    def work() -> None:
        try:
            for x in items:
                out.append(fn(x))
                now = time.monotonic()
                if now - state["since"] > bound:  # overran, though the watchdog, waiting
                    # for the interpreter lock compiled code held, did not see it in time
                    raise Stuck(f"{describe(x)} ran past its bound of {bound:g} s "
                                f"({now - state['since']:.3g} s)", _this_worker())
                state["i"] += 1
                state["since"] = now
        except BaseException as e:  # handed to the waiting thread
            state["error"] = e
        finally:
            done.set()

    threading.Thread(target=work, daemon=True, name="raftlab-bounded").start()
    while not done.wait(min(bound, 1.0)):
        if time.monotonic() - state["since"] > bound:
            raise Stuck(f"{describe(items[state['i']])} ran past its bound of {bound:g} s",
                        _this_worker())
    if state["error"] is not None:
        raise state["error"]
    return out


def _this_worker() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None
