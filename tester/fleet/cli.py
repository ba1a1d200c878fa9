"""``raftlab fleet up|down|status``: the local namespace fleet from the command line."""

from __future__ import annotations

import argparse
import sys
import time

from checker.verdict import EXIT_BAD_INPUT
from tester import fleet

EXIT_ERROR = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fleet", help="create, inspect or remove a local fleet of namespace nodes",
        description="A local fleet: N nodes on this machine, each with its own network and "
                    "mount namespace, IP, hostname and sshd; driven over SSH like real VMs.")
    sub = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--name", default=fleet.DEFAULT_NAME,
                        help=f"fleet name (default {fleet.DEFAULT_NAME})")

    up = sub.add_parser("up", help="create the fleet and write its inventory")
    common(up)
    up.add_argument("--nodes", type=int, default=5, help="number of nodes (default 5)")
    up.add_argument("--subnet", default=fleet.DEFAULT_SUBNET,
                    help=f"private IPv4 subnet for the bridge (default {fleet.DEFAULT_SUBNET})")
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="remove everything the fleet made (idempotent)")
    common(down)
    down.set_defaults(func=_down)
    st = sub.add_parser("status", help="show each node: reachable over SSH, its processes")
    common(st)
    st.set_defaults(func=_status)


def _guard(fn):  # type: ignore[no-untyped-def]
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except fleet.NotRoot as e:
            print(f"raftlab fleet: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except fleet.FleetError as e:
            print(f"raftlab fleet: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT if _is_usage(e) else EXIT_ERROR
    return wrapped


def _is_usage(e: Exception) -> bool:
    s = str(e)
    return s.startswith(("fleet name", "--", "raftlab fleet needs")) or "already" in s \
        or "is not up" in s


@_guard
def _up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    f = fleet.up(args.name, nodes=args.nodes, subnet=args.subnet)
    print(f"fleet {f.name}: {len(f.nodes)} nodes up in {time.monotonic() - t0:.1f} s")
    for n in f.nodes:
        print(f"  {n.name}  {n.host}  ssh -i {f.key_file} -o UserKnownHostsFile={f.known_hosts}"
              f" root@{n.host}")
    print(f"inventory:   {f.inventory}")
    print(f"known_hosts: {f.known_hosts}")
    print(f"key:         {f.key_file}")
    print(f"next:        raftlab test --fleet {f.name} --db raftnode   |   "
          f"raftlab fleet down --name {f.name}")
    return 0


@_guard
def _down(args: argparse.Namespace) -> int:
    removed = fleet.down(args.name)
    if removed:
        print(f"fleet {args.name}: removed {len(removed)} things:")
        for r in removed:
            print(f"  {r}")
    else:
        print(f"fleet {args.name}: nothing to remove")
    return 0


@_guard
def _status(args: argparse.Namespace) -> int:
    rows = fleet.status(args.name)
    bad = 0
    for s in rows:
        state = "reachable" if s.reachable else f"UNREACHABLE ({s.error})"
        if not s.namespace:
            state = "namespace missing; " + state
        bad += not s.reachable
        print(f"{s.name}  {s.host}  {state}")
        for pid, cmd in s.processes:
            print(f"    {pid:>7}  {cmd[:110]}")
    return EXIT_ERROR if bad else 0
