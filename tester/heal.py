"""``raftlab heal --fleet NAME``: undo every fault a killed run may have left on a fleet.

A run heals its faults itself, also on Ctrl-C; only a run killed outright (``kill -9``, a lost
terminal, a crashed machine) leaves them behind: iptables chains of partitions, flaps and
packet loss, netem qdiscs, moved clock files, SIGSTOPped database processes. This runs the
nemesis' own final heal (the one every run ends with) for every fault family on every node.
It does not restart processes a kill fault stopped (the next run's setup starts the database
afresh) and cannot add back members a membership fault removed (only the run knew which).
Exit 0 when every heal succeeded, 1 when one failed (the errors are printed), 254 for bad
input (a missing fleet, an unreachable node).
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from checker.verdict import EXIT_BAD_INPUT

#: families whose heal needs the run's own memory; the rest heal from nothing
NEEDS_THE_RUN = ("member",)


def add_parser(subparsers: Any) -> None:
    from tester.test_cli import add_fleet_args

    p = subparsers.add_parser(
        "heal",
        help="heal every fault on a fleet (after a run that was killed)",
        description="Remove partitions and packet loss, reset clocks, resume paused processes "
        "and remove netem delays on every node: the final heal of a run, for a run killed "
        "before it could heal. Exit 0 healed, 1 a heal failed, 254 bad input.",
    )
    add_fleet_args(p)
    p.add_argument("--db", default="raftnode",
                   help="the database the run tested (whose processes to resume and clock "
                        "files to reset): raftnode, etcd or package.module:Class")
    p.set_defaults(func=run)


def heal(db: Any, nodes: list[Any], remotes: dict[str, Any]) -> dict[str, Any]:
    """Heal every fault family on ``nodes``; the nemesis' ``{"healed", "errors"}``."""
    from tester import nemesis as nem

    env = nem.Env(db, nodes, remotes, random.Random(0))
    names = [n for n in nem.PACKAGES if n not in NEEDS_THE_RUN]
    return nem.Nemesis.build(env, names).heal_all()


def run(args: argparse.Namespace) -> int:
    from tester.db import load_db
    from tester.test_cli import BadInput, connect_fleet

    try:
        db = load_db(args.db, **({"deploy": False} if args.db in ("raftnode", "etcd") else {}))
        nodes, remotes, where = connect_fleet(args)
    except (BadInput, ValueError) as e:
        print(f"raftlab heal: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        res = heal(db, nodes, remotes)
    finally:
        for r in remotes.values():
            r.close()
    names = ", ".join(n.name for n in nodes)
    if res["errors"]:
        for family, errs in sorted(res["errors"].items()):
            print(f"raftlab heal: {family}: {'; '.join(errs)}", file=sys.stderr)
        print(f"not every fault was healed on {names} ({where})")
        return 1
    healed = [f for f in res["healed"] if f not in ("kill", *NEEDS_THE_RUN)]
    print(f"healed {', '.join(healed)} on {names} ({where}); processes a kill fault stopped "
          "are not restarted: the next run's setup starts the database afresh")
    return 0
