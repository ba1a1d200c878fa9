"""``raftlab fleet up|down|status|image build``: local fleets from the command line."""

from __future__ import annotations

import argparse
import sys
import time

from checker.verdict import EXIT_BAD_INPUT
from tester import fleet
from tester.fleet import container
from tester.fleet.base import driver_of

EXIT_ERROR = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fleet", help="create, inspect or remove a local fleet (namespaces or containers)",
        description="A local fleet: N nodes on this machine, each with its own network, PID "
                    "and mount namespace (or container), IP, hostname and sshd; driven over "
                    "SSH like real VMs.")
    sub = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--name", default=fleet.DEFAULT_NAME,
                        help=f"fleet name (default {fleet.DEFAULT_NAME})")

    up = sub.add_parser("up", help="create the fleet and write its inventory")
    common(up)
    up.add_argument("--nodes", type=int, default=5, help="number of nodes (default 5)")
    up.add_argument("--subnet", default=None,
                    help="private IPv4 subnet for the bridge (default: a free /24 in "
                         "10.213.0.0/16)")
    up.add_argument("--driver", choices=fleet.DRIVERS, default="namespace",
                    help="namespace (default): Linux namespaces around this machine's files; "
                         "docker or podman: a container per node with its own root filesystem")
    up.add_argument("--image", default=container.DEFAULT_IMAGE,
                    help=f"container image of a node (default {container.DEFAULT_IMAGE}, made "
                         "by: raftlab fleet image build)")
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="remove everything the fleet made (idempotent)")
    common(down)
    down.add_argument("--remove-image", action="store_true",
                      help="also remove the node image, if raftlab built it")
    down.set_defaults(func=_down)
    image = sub.add_parser("image", help="build the container fleet's node image offline")
    isub = image.add_subparsers(dest="image_command", metavar="ACTION", required=True)
    build = isub.add_parser("build", help="debootstrap a minimal Debian with sshd, iptables, "
                                          "libfaketime, python3 and import it into the engine")
    build.add_argument("--engine", choices=container.ENGINES, default="docker")
    build.add_argument("--image", default=container.DEFAULT_IMAGE)
    build.add_argument("--suite", default="bookworm", help="Debian release (default bookworm)")
    build.add_argument("--mirror", default=None,
                       help="Debian mirror (default: the one this machine's apt uses)")
    build.set_defaults(func=_image_build)
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
    f = fleet.up(args.name, nodes=args.nodes, subnet=args.subnet, driver=args.driver,
                 image=args.image, log=lambda s: print(s, file=sys.stderr))
    print(f"fleet {f.name}: {len(f.nodes)} {f.driver} nodes up on {f.subnet} in "
          f"{time.monotonic() - t0:.1f} s")
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
    made_by = driver_of(args.name)
    removed = fleet.down(args.name)
    if args.remove_image:
        removed += container.remove_built_image(
            [made_by] if made_by in container.ENGINES else container.ENGINES)
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
            state = "namespace or container missing; " + state
        bad += not s.reachable
        print(f"{s.name}  {s.host}  {state}")
        for pid, cmd in s.processes:
            print(f"    {pid:>7}  {cmd[:110]}")
    return EXIT_ERROR if bad else 0


@_guard
def _image_build(args: argparse.Namespace) -> int:
    from tester.fleet import image

    took = image.build(args.engine, args.image, suite=args.suite, mirror=args.mirror,
                       log=lambda s: print(s, file=sys.stderr))
    print(f"image {args.image}: built in {took:.0f} s; use it with: raftlab fleet up "
          f"--driver {args.engine}")
    return 0
