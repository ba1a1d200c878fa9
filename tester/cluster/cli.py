"""``raftlab cluster up|down``: a Dask cluster for ``--cluster``, on the hosts of an inventory.

``up`` starts a Dask scheduler on this machine and one worker per inventory host (or several:
``--workers-per-host``) over the tester's own SSH control (``tester/control.py``): the same
inventory, keys and known_hosts as ``raftlab test``. It prints the address to pass to
``raftlab sim --cluster`` and ``raftlab campaign --cluster``. ``down`` stops every process
``up`` started, found through the state it wrote (``/var/lib/raftlab/clusters/NAME``).

A worker needs a Python with ``distributed`` and raftlab importable. ``up`` tries this
interpreter first (hosts that share this machine's filesystem), then the host's ``python3``
with this installation's packages on ``PYTHONPATH`` (a local fleet node: its private /root
hides a pyenv interpreter, /usr and /work it shares), or the one ``--python`` names, and says
which host lacks what when none works.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.verdict import EXIT_BAD_INPUT
from tester.cluster import ALLOWED_FAILURES_ENV

STATE_ROOT = Path(os.environ.get("RAFTLAB_CLUSTER_DIR", "/var/lib/raftlab/clusters"))
ROOT = Path(__file__).resolve().parents[2]  # what a worker imports raftlab from
EXIT_ERROR = 1
WORKER_MODULE = "distributed.cli.dask_worker"


class ClusterUpError(RuntimeError):
    """``cluster up`` or ``down`` cannot proceed; the message says why and where."""


@dataclass(frozen=True)
class Started:
    name: str
    address: str
    workers: dict[str, int]  # host name -> worker process group on that host


def state_dir(name: str) -> Path:
    return STATE_ROOT / name


def _route_to(host: str) -> str:
    """This machine's address on the way to ``host`` (what the workers must call back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))  # UDP: no packet is sent, the kernel just picks the route
        return str(s.getsockname()[0])


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pythons(explicit: str | None) -> list[tuple[str, str]]:
    """(interpreter, PYTHONPATH) candidates for the workers, most direct first."""
    if explicit:
        return [(explicit, str(ROOT))]
    return [(sys.executable, str(ROOT)),
            ("python3", f"{ROOT}:{sysconfig.get_paths()['purelib']}")]


def _worker_python(remote: Any, explicit: str | None) -> tuple[str, str]:
    tried = []
    for py, path in _pythons(explicit):
        probe = (f"cd /tmp || exit 1; PYTHONPATH={shlex.quote(path)} {shlex.quote(py)} -c "
                 f"'import distributed, tester.sim.scan'")
        r = remote.run(probe, timeout=60, check=False)
        if r.ok:
            return py, path
        tried.append(f"{py}: {(r.stderr.strip() or r.stdout.strip()).splitlines()[-1:]}")
    raise ClusterUpError(f"{remote.name}: no Python there imports distributed and raftlab "
                         f"(tried {'; '.join(tried)}); install raftlab with its dependencies "
                         f"on the host and pass --python (on a local fleet, a checkout under "
                         f"/tmp or /root is not visible: those are each node's own)")


def up(name: str, inventory_path: str, per_host: int = 1, host: str | None = None,
       port: int = 0, python: str | None = None, timeout: float = 60.0,
       say: Any = print) -> Started:
    """Start the scheduler here and the workers on every inventory host; undo all on failure."""
    from tester import control, inventory

    d = state_dir(name)
    if (d / "state.json").exists():
        raise ClusterUpError(f"cluster {name!r} is already up ({d}); run: raftlab cluster "
                             f"down --name {name}")
    try:
        inv = inventory.load(inventory_path)
    except inventory.InventoryError as e:
        raise ClusterUpError(str(e)) from None
    host = host or _route_to(inv.nodes[0].host)
    port = port or _free_port(host)
    address = f"tcp://{host}:{port}"
    d.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"name": name, "address": address, "inventory": str(inventory_path),
                             "workers": {}, "scheduler_pid": None}
    remotes: dict[str, Any] = {}
    try:
        with open(d / "scheduler.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", host,
                 "--port", str(port), "--no-dashboard"], cwd=d, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, **ALLOWED_FAILURES_ENV})
        state["scheduler_pid"] = proc.pid
        _save(d, state)
        _wait_port(host, port, proc, d / "scheduler.log", timeout)
        say(f"scheduler {address} (pid {proc.pid})")
        try:
            remotes = control.connect(inv.nodes, inv.known_hosts)
        except control.ControlError as e:
            raise ClusterUpError(f"cannot reach the inventory's hosts: {e}") from None
        env = " ".join(f"{k}={v}" for k, v in ALLOWED_FAILURES_ENV.items())
        for node in inv.nodes:
            r = remotes[node.name]
            py, path = _worker_python(r, python)
            tag = f"/tmp/raftlab-cluster-{name}-{node.name}"
            cmd = (f"cd /tmp || exit 1; PYTHONPATH={shlex.quote(path)} {env} setsid nohup "
                   f"{shlex.quote(py)} -m {WORKER_MODULE} {address} --name {node.name} "
                   f"--host {node.host} --nworkers {per_host} --nthreads 1 --no-dashboard "
                   f"--local-directory {tag} > {tag}.log 2>&1 < /dev/null & echo $!")
            pid = int(r.run(cmd, timeout=30).stdout.strip())
            state["workers"][node.name] = {"pid": pid, "host": node.host, "log": f"{tag}.log",
                                           "dir": tag}
            _save(d, state)
            say(f"worker {node.name} ({node.host}): {per_host} process(es), pid {pid}, "
                f"python {py}")
        _wait_workers(address, len(inv.nodes) * per_host, timeout)
    except BaseException as e:  # undo all, Ctrl-C included
        control.close_all(remotes)
        down(name, say=lambda s: None)
        if isinstance(e, control.ControlError):
            raise ClusterUpError(str(e)) from None
        raise
    control.close_all(remotes)
    return Started(name, address, {n: w["pid"] for n, w in state["workers"].items()})


def _save(d: Path, state: dict[str, Any]) -> None:
    tmp = d / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(d / "state.json")


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], log: Path,
               timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise ClusterUpError(f"the scheduler exited ({proc.returncode}): {' | '.join(tail)}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise ClusterUpError(f"the scheduler did not listen on {host}:{port} within {timeout:g} s")


def _wait_workers(address: str, n: int, timeout: float) -> None:
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        try:
            client.wait_for_workers(n, timeout=timeout)
        except TimeoutError:
            got = len(client.scheduler_info().get("workers", {}))
            raise ClusterUpError(f"only {got} of {n} workers joined {address} within "
                                 f"{timeout:g} s; see /tmp/raftlab-cluster-*.log on the "
                                 f"hosts") from None


def down(name: str, say: Any = print) -> list[str]:
    """Stop the workers (over SSH) and the scheduler; idempotent. Returns what it stopped."""
    from tester import control, inventory

    d = state_dir(name)
    try:
        state = json.loads((d / "state.json").read_text())
    except (OSError, ValueError):
        shutil.rmtree(d, ignore_errors=True)
        return []
    stopped: list[str] = []
    if state.get("workers"):
        try:
            inv = inventory.load(state["inventory"])
            nodes = [n for n in inv.nodes if n.name in state["workers"]]
            remotes = control.connect(nodes, inv.known_hosts)
        except (inventory.InventoryError, control.ControlError) as e:
            say(f"cannot reach the workers' hosts ({e}); stop them by hand: "
                f"{json.dumps(state['workers'])}")
            remotes = {}
        try:
            for node, w in state["workers"].items():
                if node in remotes:
                    scratch = f"; rm -rf {shlex.quote(w['dir'])}" if w.get("dir") else ""
                    remotes[node].run(_stop_group(int(w["pid"]), "dask_worker") + scratch,
                                      timeout=30, check=False)
                    stopped.append(f"worker {node} (pid {w['pid']})")
        finally:
            control.close_all(remotes)
    pid = state.get("scheduler_pid")
    if pid:
        subprocess.run(["sh", "-c", _stop_group(int(pid), "dask_scheduler")], check=False)
        stopped.append(f"scheduler {state['address']} (pid {pid})")
    shutil.rmtree(d, ignore_errors=True)
    for s in stopped:
        say(f"stopped {s}")
    return stopped


def _stop_group(pid: int, marker: str) -> str:
    """Shell: TERM the process group ``pid`` leads if it still runs ``marker``, then KILL."""
    return (f"if grep -q {marker} /proc/{pid}/cmdline 2>/dev/null; then "
            f"kill -TERM -{pid} 2>/dev/null; "
            f"for i in $(seq 50); do kill -0 -{pid} 2>/dev/null || break; sleep 0.1; done; "
            f"kill -0 -{pid} 2>/dev/null && "
            f"kill -KILL -{pid} 2>/dev/null; fi; true")


# --------------------------------------------------------------------------- the command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cluster", help="start or stop a Dask cluster on an inventory's hosts (for --cluster)",
        description="A Dask scheduler on this machine and workers on the hosts of an "
                    "inventory, started over SSH; raftlab sim and raftlab campaign run on it "
                    "with --cluster ADDRESS.")
    sub = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    u = sub.add_parser("up", help="start the scheduler and the workers; print the address")
    where = u.add_mutually_exclusive_group(required=True)
    where.add_argument("--inventory", metavar="FILE", help="the hosts to run workers on")
    where.add_argument("--fleet", metavar="NAME", help="the nodes of a local fleet")
    u.add_argument("--name", default="raftlab", help="cluster name (default raftlab)")
    u.add_argument("--workers-per-host", type=int, default=1, metavar="N",
                   help="worker processes per host, one thread each (default 1)")
    u.add_argument("--scheduler-host", metavar="ADDR",
                   help="address the scheduler listens on (default: this machine's address "
                        "on the route to the first host)")
    u.add_argument("--port", type=int, default=0, help="scheduler port (default: a free one)")
    u.add_argument("--python", metavar="PATH",
                   help="the hosts' interpreter with raftlab and distributed installed "
                        "(default: this one, else the host's python3 with this "
                        "installation's packages)")
    u.set_defaults(func=_up)
    dn = sub.add_parser("down", help="stop every process cluster up started (idempotent)")
    dn.add_argument("--name", default="raftlab", help="cluster name (default raftlab)")
    dn.set_defaults(func=_down)


def _up(args: argparse.Namespace) -> int:
    if not 1 <= args.workers_per_host <= 64:
        print(f"raftlab cluster: --workers-per-host must be 1-64, got {args.workers_per_host}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    path = args.inventory
    if args.fleet:
        from tester import fleet

        path = str(fleet.inventory_path(args.fleet))
        if not Path(path).exists():
            print(f"raftlab cluster: --fleet {args.fleet}: no such fleet ({path} is missing)",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
    t0 = time.monotonic()
    try:
        s = up(args.name, path, args.workers_per_host, args.scheduler_host, args.port,
               args.python)
    except ClusterUpError as e:
        print(f"raftlab cluster: {e}", file=sys.stderr)
        bad = "already up" in str(e) or str(e).startswith(str(path))
        return EXIT_BAD_INPUT if bad else EXIT_ERROR
    print(f"cluster {s.name}: {len(s.workers)} host(s) up in {time.monotonic() - t0:.1f} s")
    print(f"address: {s.address}")
    print(f"next:    raftlab sim --cluster {s.address}   |   raftlab cluster down --name "
          f"{s.name}")
    return 0


def _down(args: argparse.Namespace) -> int:
    if not down(args.name):
        print(f"cluster {args.name}: nothing to stop")
    return 0

