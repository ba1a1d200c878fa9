"""One campaign run as a task on a Dask worker: where it runs, and its run folder shipped back.

A worker runs ``raftlab test`` against either a local namespace fleet of its own, brought up
for the run on a subnet no other run on that machine holds (``10.213.100.0/24`` upward, one
slot a run, claimed with a lock file) and taken down afterwards, or one of the inventories the
campaign names, held exclusively for the run (a Dask lock: its lease ends if the worker dies).
The run writes into a temporary store on the worker; its folder comes back as a tar archive
and lands in the campaign's store, so a worker on another machine needs no shared disk.

A worker killed mid-run cannot take its fleet down; the next run that claims the slot removes
the leftovers first, and the campaign sweeps every unclaimed slot on every worker at the end.
"""

from __future__ import annotations

import fcntl
import io
import json
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SLOTS = 100  # fleets rlc0..rlc99 on 10.213.100.0/24 .. 10.213.199.0/24
SLOT_LOCKS = Path("/tmp")
INVENTORY_WAIT = 3600.0  # seconds a run waits for one of the campaign's inventories


@dataclass(frozen=True)
class Provision:
    """What a run stands on: ``inventories`` to take one of, else a fleet of its own."""

    inventories: tuple[str, ...] = ()
    fleet_nodes: int = 5


@dataclass(frozen=True)
class Shipped:
    """A run's outcome as it travels back: its folder packed, or why there is none."""

    tar: bytes | None
    error: str | None
    seconds: float
    where: str


def slot_fleet(k: int) -> tuple[str, str]:
    """The fleet name and subnet of slot ``k``."""
    return f"rlc{k}", f"10.213.{100 + k}.0/24"


@contextmanager
def own_fleet(nodes: int) -> Iterator[str]:
    """A fresh local fleet on a free slot, taken down afterwards whatever happens."""
    from tester import fleet

    for k in range(SLOTS):
        fh = open(SLOT_LOCKS / f"raftlab-fleet-slot-{k}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        name, subnet = slot_fleet(k)
        try:
            fleet.down(name)  # what a worker killed while holding this slot left behind
            fleet.up(name, nodes=nodes, subnet=subnet)
            yield name
        finally:
            fleet.down(name)
            fh.close()
        return
    raise RuntimeError(f"no free fleet slot: {SLOTS} runs already hold one on this machine")


def sweep_slots() -> list[str]:
    """Take down the fleets of slots no run holds (left by killed workers); what was removed."""
    from tester import fleet

    removed = []
    for k in range(SLOTS):
        path = SLOT_LOCKS / f"raftlab-fleet-slot-{k}.lock"
        if not path.exists():
            continue
        with open(path, "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            name = slot_fleet(k)[0]
            if fleet.leftovers(name):
                removed += fleet.down(name)
    return removed


@contextmanager
def held_inventory(paths: tuple[str, ...], wait: float = INVENTORY_WAIT) -> Iterator[str]:
    """One of ``paths``, held by this run alone (across the whole cluster) until it ends."""
    from distributed import Lock

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for p in paths:
            lock = Lock(f"raftlab-inventory:{p}")
            if lock.acquire(blocking=False):
                try:
                    yield p
                finally:
                    lock.release()
                return
        time.sleep(1.0)
    raise RuntimeError(f"none of the inventories {', '.join(paths)} came free in {wait:g} s")


def run_on_worker(job: tuple[dict[str, Any], Callable[[dict[str, Any]], Path],
                             Provision | None]) -> Shipped:
    """The task: run one configuration where ``provision`` says, pack its run folder."""
    import socket

    cfg, run_one, provision = job
    t0 = time.monotonic()
    where = socket.gethostname()
    # the run's own printout names a temporary folder: the campaign prints where it lands
    with tempfile.TemporaryDirectory(prefix="raftlab-run-") as tmp, \
            redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        cfg = {**cfg, "store": tmp}
        run_dir: Path | None = None
        error = None
        try:
            with _provisioned(cfg, provision) as cfg:
                where += f" ({cfg['fleet']})" if cfg.get("fleet") else ""
                run_dir = run_one(cfg)
        except Exception as e:
            run_dir = getattr(e, "run_dir", None)
            error = str(e) if type(e).__name__ == "RunFailed" else f"{type(e).__name__}: {e}"
        tar = _pack(run_dir) if run_dir is not None else None
        return Shipped(tar, error, time.monotonic() - t0, where)


@contextmanager
def _provisioned(cfg: dict[str, Any], provision: Provision | None) -> Iterator[dict[str, Any]]:
    if provision is None:
        yield cfg
    elif provision.inventories:
        with held_inventory(provision.inventories) as inv:
            yield {**{k: v for k, v in cfg.items() if k != "fleet"}, "inventory": inv}
    else:
        with own_fleet(provision.fleet_nodes) as name:
            yield {**{k: v for k, v in cfg.items() if k != "inventory"}, "fleet": name}


def _pack(run_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(run_dir, arcname=".")
    return buf.getvalue()


def unpack(tar: bytes, store: str, name: str) -> Path:
    """Put a shipped run folder into ``store/name/<its start time>/`` and point latest at it."""
    from tester.store import RunStore

    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:gz") as t:
        started = None
        member = t.extractfile("./test.json") if "./test.json" in t.getnames() else None
        if member is not None:
            try:
                started = float(json.load(member).get("start_time"))
            except (ValueError, TypeError, AttributeError):
                started = None
        dest = RunStore(store, name, started=started).path
        # only plain files and folders inside dest (the filter exists from Python 3.11.4)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        t.extractall(dest, **safe)  # noqa: S202
    return dest
