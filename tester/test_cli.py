"""``raftlab test``: run one Jepsen-style experiment against a fleet and print the verdict.

Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input, 255 internal error.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from checker.verdict import EXIT_BAD_INPUT, exit_code
from tester import liveness, nodeevents
from tester import nemesis as nem
from tester import workloads as wl
from tester.runner import RunConfig, Runner


class BadInput(ValueError):
    """A bad argument or input file: printed as one line, exit 254."""


def concurrency(spec: str, nodes: int) -> int:
    """``10`` -> 10 workers; ``2n`` -> two per node."""
    m = re.fullmatch(r"(\d+)(n?)", spec.strip())
    if not m or int(m.group(1)) < 1:
        raise BadInput(f"--concurrency {spec!r}: expected a positive integer or e.g. 2n")
    return int(m.group(1)) * (nodes if m.group(2) else 1)


def default_name(db: str, workload: str, unsafe: list[str]) -> str:
    """The default test name: what makes runs differ, so each kind keeps its own ``latest``
    (``raftnode-registers``, ``raftnode-registers-unsafe-local-reads``)."""
    name = f"{db.split(':')[-1].lower()}-{workload}"
    return name + "".join(f"-unsafe-{u}" for u in sorted(set(unsafe)))


def add_fleet_args(p: argparse.ArgumentParser) -> None:
    """Where the nodes are: a local fleet, an inventory, or Jepsen's quick ``--nodes``."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--fleet", metavar="NAME", help="a fleet made by `raftlab fleet up`")
    where.add_argument("--inventory", metavar="FILE", help="an inventory YAML file")
    where.add_argument("--nodes", metavar="H1,H2",
                       help="the nodes' host names or IPs (optionally host:port), instead of "
                            "an inventory")
    p.add_argument("--username", default="root", help="SSH user with --nodes (default root)")
    p.add_argument("--ssh-private-key", metavar="FILE", default=None,
                   help="SSH private key with --nodes (default: your agent and ~/.ssh keys)")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "test",
        help="run a test: clients + nemesis against a fleet, then check linearizability",
        description="Run a Jepsen-style test against a fleet and store it under "
        "<store>/<name>/<timestamp>/.",
    )
    add_fleet_args(p)
    p.add_argument("--db", default="raftnode", help="raftnode, etcd or package.module:Class")
    p.add_argument("--workload", default="registers", choices=wl.WORKLOADS + tuple(wl.ALIASES),
                   help="registers (alias: register), kv, append (lists: a lost write stays "
                        "visible) or set (lost/stale adds by name); default registers")
    p.add_argument("--nemesis", default="all",
                   help=f"none, all (default) or a comma list of {','.join(nem.PACKAGES)}")
    p.add_argument("--nemesis-interval", type=float, default=None, metavar="S",
                   help="one fault action every S seconds instead of the hunting schedule "
                        "(each family its own loop with random timings; the default)")
    p.add_argument("--nemesis-targets", default=None,
                   help="which nodes faults hit: " + ",".join(nem.TARGETS)
                        + " (default: each family's own choice)")
    p.add_argument("--time-limit", type=float, default=60.0, metavar="S")
    p.add_argument("--concurrency", default="2n", metavar="C|Nn",
                   help="client workers: a number, or Nn for N per node (default 2n)")
    p.add_argument("--rate", type=float, default=100.0, metavar="R",
                   help="operations per second over all clients; 0 = unlimited (default 100)")
    p.add_argument("--keys", type=int, default=10, help="keys in use at a time (default 10)")
    p.add_argument("--ops-per-key", type=int, default=200,
                   help="retire a key after this many ops (default 200)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--unsafe", action="append", default=[], metavar="NAME",
                   help="turn on one of the database's unsafe switches, a planted bug "
                        "(repeatable; raftnode's are in docs/raftnode.md)")
    p.add_argument("--db-opt", action="append", default=[], metavar="KEY=JSON",
                   help='an option for the database adapter, e.g. faketime_cache=0 '
                        '(repeatable; see docs/fleet.md)')
    p.add_argument("--store", default="reports", metavar="DIR")
    p.add_argument("--name", default=None, help="test name (default: <db>-<workload>)")
    p.add_argument("--no-deploy", action="store_true",
                   help="the database is already installed on the nodes")
    p.add_argument("--op-timeout", type=float, default=5.0, metavar="S")
    p.add_argument("--settle-timeout", type=float, default=10.0, metavar="S",
                   help="liveness: after the final heal the cluster must converge within S "
                        "seconds (one leader, every node applied to the same index), else "
                        "the run fails (default 10)")
    p.add_argument("--hang-timeout", type=float, default=60.0, metavar="S",
                   help="a client or nemesis step still running S seconds past the time "
                        "limit is abandoned and the run ends unknown (default 60)")
    p.add_argument("--leave-db-running", action="store_true")
    p.add_argument("--nemesis-opt", action="append", default=[], metavar="KEY=JSON",
                   help='a nemesis option, e.g. partitions=["leader"], clock_kinds=["rate"], '
                        'schedule="together" (repeatable; see docs/testing.md)')
    p.set_defaults(func=run)


def validate(args: argparse.Namespace) -> list[str]:
    """Check every option that needs no fleet (a campaign checks its runs with it before any
    starts); the nemesis families; BadInput naming the option otherwise."""
    for name in ("time_limit", "nemesis_interval", "op_timeout", "settle_timeout",
                 "hang_timeout"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise BadInput(f"--{name.replace('_', '-')} must be positive")
    if args.rate < 0:
        raise BadInput("--rate must be 0 (unlimited) or positive")
    concurrency(args.concurrency, 1)  # the syntax; the node count comes with the fleet
    if args.keys < 1 or args.ops_per_key < 1:
        raise BadInput("--keys and --ops-per-key must be at least 1")
    args.workload = wl.ALIASES.get(args.workload, args.workload)
    try:
        faults = nem.parse(args.nemesis)
    except ValueError as e:
        raise BadInput(str(e)) from None
    args.nemesis_opts = {}
    if args.nemesis_targets is not None:
        targets = [t.strip() for t in args.nemesis_targets.split(",") if t.strip()]
        bad = [t for t in targets if t not in nem.TARGETS]
        if bad or not targets:
            raise BadInput(f"--nemesis-targets: unknown target {bad[0] if bad else ''!r}; "
                           f"expected {', '.join(nem.TARGETS)}")
        args.nemesis_opts["targets"] = targets
    args.nemesis_opts.update(key_json(args.nemesis_opt, "--nemesis-opt"))
    args.db_opts = key_json(args.db_opt, "--db-opt")
    unknown = sorted(set(args.nemesis_opts) - set(nem.OPTIONS))
    if unknown:
        raise BadInput(f"--nemesis-opt: unknown key{'s' if len(unknown) > 1 else ''} "
                       f"{', '.join(unknown)}; expected {', '.join(sorted(nem.OPTIONS))}")
    if args.nemesis_opts.get("schedule", "hunt") not in nem.SCHEDULES:
        raise BadInput(f"--nemesis-opt schedule={args.nemesis_opts['schedule']!r}: expected "
                       f"one of {', '.join(nem.SCHEDULES)}")
    if args.nemesis_opts.get("system_clock") and args.fleet:
        raise BadInput("--nemesis-opt system_clock=true: a local fleet shares this machine's "
                       "clock; use it with --inventory on real VMs")
    return faults


def key_json(items: list[str], flag: str) -> dict[str, Any]:
    """``["k=1", 'ks=["a"]']`` -> ``{"k": 1, "ks": ["a"]}``; a bad item names ``flag``."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        try:
            if not eq or not key.strip():
                raise ValueError("expected KEY=JSON")
            out[key.strip()] = json.loads(raw)
        except ValueError as e:
            raise BadInput(f"{flag} {item!r}: {e}") from None
    return out


def connect_fleet(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any], str]:
    """(nodes, their SSH remotes, where they were described) from ``add_fleet_args``'
    options; BadInput when the fleet is missing, its description is bad or a node cannot be
    reached."""
    from tester import inventory

    if getattr(args, "nodes", None):
        if args.ssh_private_key and not Path(args.ssh_private_key).expanduser().is_file():
            raise BadInput(f"--ssh-private-key {args.ssh_private_key}: no such file")
        try:
            inv = inventory.from_nodes(args.nodes, args.username, args.ssh_private_key)
        except inventory.InventoryError as e:
            raise BadInput(str(e)) from None
        return _connect(inv, f"--nodes {args.nodes}")
    if args.fleet:
        from tester import fleet

        path = fleet.inventory_path(args.fleet)
        if not path.exists():
            raise BadInput(f"--fleet {args.fleet}: no such fleet ({path} is missing); "
                           f"run: raftlab fleet up --name {args.fleet}")
    else:
        path = args.inventory
    try:
        inv = inventory.load(path)
    except inventory.InventoryError as e:
        raise BadInput(str(e)) from None
    return _connect(inv, str(path))


def _connect(inv: Any, where: str) -> tuple[list[Any], dict[str, Any], str]:
    from tester import control

    known = inv.known_hosts if inv.known_hosts and inv.known_hosts.exists() else None
    try:
        remotes = control.connect(inv.nodes, known, accept_new=known is None)
    except control.ControlError as e:
        raise BadInput(f"{where}: cannot reach the fleet: {e}") from None
    return inv.nodes, remotes, where


def run(args: argparse.Namespace) -> int:
    from tester.db import check_unsafe, load_db

    try:
        faults = validate(args)
        db = load_db(args.db, **{**args.db_opts, **({"deploy": False} if args.no_deploy else {})})
        check_unsafe(db, args.unsafe)
        wl.require(db, args.workload)
    except (BadInput, ValueError) as e:
        print(f"raftlab test: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        nodes, remotes, inv_path = connect_fleet(args)
    except BadInput as e:
        print(f"raftlab test: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    try:
        cfg = RunConfig(
            name=args.name or default_name(args.db, args.workload, args.unsafe),
            db=args.db,
            workload=args.workload,
            nemesis=faults,
            nemesis_interval=args.nemesis_interval,
            time_limit=args.time_limit,
            concurrency=concurrency(args.concurrency, len(nodes)),
            rate=args.rate,
            keys=args.keys,
            ops_per_key=args.ops_per_key,
            seed=seed,
            unsafe=list(args.unsafe),
            store=args.store,
            deploy=not args.no_deploy,
            op_timeout=args.op_timeout,
            settle_timeout=args.settle_timeout,
            hang_timeout=args.hang_timeout,
            leave_db_running=args.leave_db_running,
            nemesis_opts=args.nemesis_opts,
            db_opts=args.db_opts,
        )
    except BadInput as e:
        print(f"raftlab test: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        runner = Runner(cfg, db, nodes, remotes,
                        config_extra={"inventory": inv_path, "fleet": args.fleet})
        print(f"raftlab test: seed {seed}, run folder {runner.store.path}", file=sys.stderr)
        runner.announce = lambda line: print(f"raftlab test: nemesis {line}", file=sys.stderr,
                                             flush=True)
        out = runner.run()
    finally:
        for r in remotes.values():
            r.close()
    print_summary(out)
    return exit_code(out.valid)


def print_summary(out: Any) -> None:
    """The verdict, the main counts and where the run is stored."""
    r = out.results
    st = r.get("stats", {})
    av = st.get("availability", {})
    word = {True: "VALID", False: "INVALID"}.get(out.valid, "UNKNOWN")
    print(f"verdict: {word}")
    print(f"ops: {st.get('ops', 0)} (ok {st.get('ok', 0)}, fail {st.get('fail', 0)}, "
          f"info {st.get('info', 0)}); availability {av.get('overall')} "
          f"(during faults {av.get('during_faults')})")
    bad = [k for k, v in (r.get("per_key") or {}).items() if v is False]
    found = (r.get("checker") or {}).get("set")
    if isinstance(found, dict):  # the set checker: what it found, by count
        print("set: " + ", ".join(
            f"{kind.replace('_', '-')} {(found.get(kind) or {}).get('count', 0)}"
            for kind in ("lost", "stale", "never_written"))
            + f" of {found.get('acknowledged', 0)} acknowledged adds")
        if bad:
            print(f"keys with anomalies: {', '.join(bad[:10])}")
    elif bad:
        print(f"non-linearizable keys: {', '.join(bad[:10])}")
    broken = nodeevents.violated(r.get("node_events"))
    if broken:
        print(f"node events violate: {', '.join(broken)}")
        for line in itertools.islice(nodeevents.iter_messages(r.get("node_events")), 3):
            print(f"  {line}")
    live = r.get("liveness")
    if isinstance(live, dict):
        print(f"liveness: {liveness.headline(live)}")
        for p in (live.get("problems") or [])[:8]:
            print(f"  {p.get('text')}")
    if r.get("errors"):
        print(f"errors: {'; '.join(r['errors'])}")
    print(f"run folder: {out.run_dir}")
    if out.report:
        print(f"report: {out.report}")
