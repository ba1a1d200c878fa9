"""One campaign run as a task on a Dask worker: where it runs, and its run folder shipped back.

A worker runs ``raftlab test`` against either a local namespace fleet of its own, on a subnet
no other run on that machine holds (``10.213.100.0/24`` upward, one slot a fleet, claimed with
a lock file), or one of the inventories the campaign names, held exclusively for the run (a
Dask lock: its lease ends if the worker dies). The run writes into a temporary store on the
worker; its folder comes back as a tar archive and lands in the campaign's store, so a worker
on another machine needs no shared disk.

A worker keeps the fleet it brought up for its next run of the same campaign, as a serial
campaign keeps its one fleet: the second run skips the fleet's teardown and bring-up (and the
nodes' first-run work, such as building the faketime helper). A run that raised or recorded
errors (a fault it could not heal) gives its fleet up instead. The campaign releases every
kept fleet when it ends, also on failure or Ctrl-C (:func:`release_fleets` on every worker);
a worker killed mid-run cannot, so the campaign then sweeps every unclaimed slot on every
worker (:func:`sweep_slots`), and the next run that claims a slot removes leftovers first.
"""

from __future__ import annotations

import fcntl
import io
import json
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SLOTS = 100  # fleets rlc0..rlc99 on 10.213.100.0/24 .. 10.213.199.0/24
SLOT_LOCKS = Path("/tmp")
INVENTORY_WAIT = 3600.0  # seconds a run waits for one of the campaign's inventories


@dataclass(frozen=True)
class Provision:
    """What a run stands on: ``inventories`` to take one of, else a fleet of its own, kept by
    its worker for the next run of the same ``campaign`` (None: taken down after the run)."""

    inventories: tuple[str, ...] = ()
    fleet_nodes: int = 5
    campaign: str | None = None


@dataclass(frozen=True)
class Shipped:
    """A run's outcome as it travels back: its folder packed, or why there is none."""

    tar: bytes | None
    error: str | None
    seconds: float
    where: str
    phases: dict[str, float] = field(default_factory=dict)  # seconds: fleet, run, pack...


def slot_fleet(k: int) -> tuple[str, str]:
    """The fleet name and subnet of slot ``k``."""
    return f"rlc{k}", f"10.213.{100 + k}.0/24"


@dataclass
class Lease:
    """A fleet a run stands on; ``keep`` False gives it up after the run (it may be damaged)."""

    name: str
    nodes: int
    campaign: str | None
    lock: IO[str]
    busy: bool = True
    keep: bool = True
    runs: int = 1  # the runs it has stood (or stands) for
    slot: int = 0


_KEPT: list[Lease] = []  # this worker process's fleets, idle or in use
_RELEASED: set[str] = set()  # campaigns that ended: a fleet they still use goes down after
_KEPT_LOCK = threading.Lock()


@contextmanager
def own_fleet(nodes: int, campaign: str | None = None) -> Iterator[Lease]:
    """A local fleet for one run: the one this worker kept from its last run of ``campaign``,
    else a fresh one on a free slot. Afterwards it is kept for the next run of ``campaign``,
    or taken down (no campaign, the campaign released, or ``lease.keep`` set False)."""
    lease = _take_kept(nodes, campaign) or _bring_up(nodes, campaign)
    try:
        yield lease
    except BaseException:
        lease.keep = False
        raise
    finally:
        _give_back(lease)


def _take_kept(nodes: int, campaign: str | None) -> Lease | None:
    if campaign is None:
        return None
    with _KEPT_LOCK:
        idle = [k for k in _KEPT if not k.busy]
        for k in idle:
            if k.campaign == campaign and k.nodes == nodes:
                k.busy, k.keep, k.runs = True, True, k.runs + 1
                return k
        stale = [k for k in idle if k.campaign != campaign]  # another campaign's: it ended
        for k in stale:
            _KEPT.remove(k)
    for k in stale:
        _take_down(k)
    return None


def _bring_up(nodes: int, campaign: str | None) -> Lease:
    """A free slot's fleet: the spare the campaign brought up there (:func:`spare_fleets`),
    else a fresh one; kept in this process's list."""
    lease = _claim(nodes, campaign)
    with _KEPT_LOCK:
        _KEPT.append(lease)
    return lease


def _claim(nodes: int, campaign: str | None) -> Lease:
    from tester import fleet

    for k in range(SLOTS):
        fh = open(SLOT_LOCKS / f"raftlab-fleet-slot-{k}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        lease = Lease(slot_fleet(k)[0], nodes, campaign, fh, slot=k)
        spare = _spare_path(k)
        try:
            made_for = json.loads(spare.read_text()) if spare.exists() else None
            spare.unlink(missing_ok=True)
            if made_for == {"campaign": campaign, "nodes": nodes} and campaign is not None \
                    and fleet.inventory_path(lease.name).exists():
                return lease  # brought up for this campaign while its cluster started
            fleet.down(lease.name)  # what a worker killed while holding this slot left behind
            fleet.up(lease.name, nodes=nodes, subnet=slot_fleet(k)[1])
        except BaseException:
            _take_down(lease)
            raise
        return lease
    raise RuntimeError(f"no free fleet slot: {SLOTS} runs already hold one on this machine")


def _spare_path(k: int) -> Path:
    return SLOT_LOCKS / f"raftlab-fleet-slot-{k}.spare"


def spare_fleets(count: int, nodes: int, campaign: str) -> list[str]:
    """Bring up ``count`` fleets on this machine for ``campaign``'s workers to take (each the
    first run's fleet of a local worker), in parallel: a local campaign calls this while its
    cluster starts. A spare no worker takes is removed by :func:`sweep_slots`."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, count)) as pool:
        got = [pool.submit(_claim, nodes, campaign) for _ in range(count)]
    leases = [f.result() for f in got if f.exception() is None]
    errors = [e for f in got if (e := f.exception()) is not None]
    try:
        if errors:
            raise errors[0]
        for lease in leases:
            _spare_path(lease.slot).write_text(json.dumps({"campaign": campaign,
                                                           "nodes": nodes}))
    except BaseException:
        for lease in leases:
            _spare_path(lease.slot).unlink(missing_ok=True)
            _take_down(lease)
        raise
    for lease in leases:  # all up: free for the workers to claim (held until now, so that
        lease.lock.close()  # no thread here took another's spare for its own)
    return [lease.name for lease in leases]


def _give_back(lease: Lease) -> None:
    with _KEPT_LOCK:
        lease.busy = False
        keep = lease.keep and lease.campaign is not None and lease.campaign not in _RELEASED
        if not keep:
            _KEPT.remove(lease)
    if not keep:
        _take_down(lease)


def _take_down(lease: Lease) -> list[str]:
    from tester import fleet

    try:
        return fleet.down(lease.name)
    finally:
        lease.lock.close()


def release_fleets(campaign: str) -> list[str]:
    """Take down the fleets this worker kept for ``campaign`` (it ended); a run of it still
    going (a Ctrl-C'd campaign's task runs on) takes its fleet down when it ends. Returns the
    fleets taken down."""
    with _KEPT_LOCK:
        _RELEASED.add(campaign)
        mine = [k for k in _KEPT if k.campaign == campaign and not k.busy]
        for k in mine:
            _KEPT.remove(k)
    for k in mine:
        _take_down(k)
    return [k.name for k in mine]


def sweep_slots() -> list[str]:
    """Take down the fleets of slots no run holds (left by killed workers, or spares no worker
    took); what was removed."""
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
            _spare_path(k).unlink(missing_ok=True)  # a spare no worker took
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
    phases: dict[str, float] = {}
    where = socket.gethostname()
    # the run's own printout names a temporary folder: the campaign prints where it lands
    with tempfile.TemporaryDirectory(prefix="raftlab-run-") as tmp, \
            redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        cfg = {**cfg, "store": tmp}
        run_dir: Path | None = None
        error = None
        try:
            with _provisioned(cfg, provision) as (cfg, lease):
                where += f" ({cfg['fleet']})" if cfg.get("fleet") else ""
                if lease is not None:
                    phases["fleet_reused"] = float(lease.runs > 1)
                t = time.monotonic()
                phases["provision"] = round(t - t0, 3)
                try:
                    run_dir = run_one(cfg)
                finally:
                    phases["run"] = round(time.monotonic() - t, 3)
                    t = time.monotonic()
                if lease is not None and _had_errors(run_dir):
                    lease.keep = False  # a fault it could not heal may be left on the nodes
        except Exception as e:
            run_dir = getattr(e, "run_dir", None)
            error = str(e) if type(e).__name__ == "RunFailed" else f"{type(e).__name__}: {e}"
        phases["release"] = round(time.monotonic() - t, 3) if "run" in phases else 0.0
        t = time.monotonic()
        tar = _pack(run_dir) if run_dir is not None else None
        phases["pack"] = round(time.monotonic() - t, 3)
        return Shipped(tar, error, time.monotonic() - t0, where, phases)


@contextmanager
def _provisioned(cfg: dict[str, Any], provision: Provision | None
                 ) -> Iterator[tuple[dict[str, Any], Lease | None]]:
    if provision is None:
        yield cfg, None
    elif provision.inventories:
        with held_inventory(provision.inventories) as inv:
            yield {**{k: v for k, v in cfg.items() if k != "fleet"}, "inventory": inv}, None
    else:
        with own_fleet(provision.fleet_nodes, provision.campaign) as lease:
            yield {**{k: v for k, v in cfg.items() if k != "inventory"},
                   "fleet": lease.name}, lease


def _had_errors(run_dir: Path | None) -> bool:
    """The run recorded errors (or left no results): its fleet is not trusted again."""
    try:
        res = json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return True
    return not isinstance(res, dict) or bool(res.get("errors"))


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
