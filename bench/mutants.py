"""Mutation score: how many of raftnode's catalogued bugs does raftlab catch, and how fast?

    .venv/bin/python bench/mutants.py [--seeds 10000] [--mutant NAME ...] [--nodes 3]
                                      [--real] [--real-runs 2] [--time-limit 30]
                                      [--test-arg=--nemesis=disk ...]

Each mutant of ``tester/mutation.py`` (one ordinary Raft bug in raftnode, no schedule written
for it) runs in a temporary copy of the project:

* through ``raftlab sim`` until the first violation or ``--seeds`` seeds; prints the seed and
  the property that killed it, or "survived";
* with ``--real``, through ``--real-runs`` short ``raftlab test`` runs with the default
  nemesis on a local 5-node fleet (root; fleet "mut" on 10.213.50.0/24 unless ``--fleet`` and
  ``--subnet`` say otherwise), killed when any run's verdict is invalid; ``--keep DIR`` keeps
  the run folders.

It ends with the mutation score of each and the survivors. With ``--control`` the unmutated
tree runs the same budget first: it must come out clean (no false alarm).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tester.mutation import (  # noqa: E402
    BY_NAME,
    MUTANTS,
    SIMULATED,
    Mutant,
    mutated_tree,
    run_sim,
    tree_env,
)

FLEET, SUBNET = "mut", "10.213.50.0/24"


def run_real(m: Mutant | None, runs: int, time_limit: float, fleet: str,
             extra: tuple[str, ...] = (), keep: Path | None = None) -> tuple[int, str]:
    """``runs`` short real tests of the mutated copy; (runs caught, one mark per run).
    ``extra``: more ``raftlab test`` arguments; ``keep``: copy the run folders there (one
    folder per mutant), to read why one survived."""
    caught, marks = 0, []
    with mutated_tree(m) as root:
        for seed in range(1, runs + 1):
            cmd = [sys.executable, "-m", "tester.cli", "test", "--fleet", fleet,
                   "--time-limit", str(time_limit), "--seed", str(seed),
                   "--store", str(root / "reports"), "--name", "mutant", *extra]
            p = subprocess.run(cmd, cwd=root, env=tree_env(root), capture_output=True,
                               text=True, check=False, timeout=time_limit * 10 + 300)
            marks.append({0: "valid", 1: "INVALID", 2: "unknown"}.get(p.returncode,
                                                                      f"exit{p.returncode}"))
            caught += p.returncode == 1
        if keep is not None and (root / "reports").is_dir():
            shutil.copytree(root / "reports", keep / (m.name if m else "control"),
                            dirs_exist_ok=True)
    return caught, " ".join(marks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10_000, help="simulated seeds per mutant")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--mutant", action="append", choices=sorted(BY_NAME), metavar="NAME")
    ap.add_argument("--sim-arg", action="append", default=[],
                    help="an extra argument for raftlab sim (repeatable), e.g. --sim-arg=--steps=400")
    ap.add_argument("--no-sim", action="store_true", help="skip the simulator")
    ap.add_argument("--test-arg", action="append", default=[],
                    help="an extra argument for the real runs' raftlab test (repeatable), "
                         "e.g. --test-arg=--nemesis=disk")
    ap.add_argument("--real", action="store_true", help="also run short real tests (root)")
    ap.add_argument("--real-runs", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--fleet", default=FLEET, help=f"the local fleet to bring up (default {FLEET})")
    ap.add_argument("--subnet", default=SUBNET, help=f"its subnet (default {SUBNET})")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="copy each mutant's real run folders under DIR/<mutant>")
    ap.add_argument("--with-equivalent", action="store_true",
                    help="also run the mutants marked equivalent (they cannot be killed)")
    ap.add_argument("--control", action="store_true",
                    help="run the unmutated tree first with the same budget (must be clean)")
    a = ap.parse_args()
    chosen: list[Mutant | None] = ([BY_NAME[n] for n in a.mutant] if a.mutant else
                                   [m for m in MUTANTS if a.with_equivalent or not m.equivalent])
    if a.control:
        chosen.insert(0, None)
    if a.real:
        from tester import fleet
        fleet.down(a.fleet)
        fleet.up(a.fleet, nodes=5, subnet=a.subnet)
    sim_kills = real_kills = 0
    survivors: list[str] = []
    t0 = time.monotonic()
    print(f"{'mutant':28} {'area':15} {'simulator':42} {'real runs' if a.real else ''}")
    try:
        for m in chosen:
            name = m.name if m else "(unmutated control)"
            cells = [f"{name:28}", f"{(m.area if m else '-'):15}"]
            killed = False
            if not a.no_sim and m is not None and m.path not in SIMULATED:
                # the simulator does not run this module: no seed can reach the bug
                cells.append(f"{'survives: module not simulated':42}")
            elif not a.no_sim:
                o = run_sim(m, a.seeds, jobs=a.jobs, nodes=a.nodes, extra=tuple(a.sim_arg),
                            timeout=120 + a.seeds / 10)
                if o.killed and o.prop == "crash":
                    cell = f"crash ({o.detail[:30]})"
                elif o.killed:
                    cell = f"killed: seed {o.seed} ({o.seeds} seeds) {o.prop}"
                else:
                    cell = f"survived {o.seeds} seeds ({o.seconds:.0f} s)"
                cells.append(f"{cell:42}")
                killed |= o.killed
                sim_kills += bool(m and o.killed)
            if a.real:
                c, marks = run_real(m, a.real_runs, a.time_limit, a.fleet, tuple(a.test_arg),
                                    a.keep)
                cells.append(f"{c}/{a.real_runs} {marks}")
                killed |= c > 0
                real_kills += bool(m and c)
            if m is not None and not killed:
                survivors.append(m.name)
            print(" ".join(cells), flush=True)
    finally:
        if a.real:
            from tester import fleet
            fleet.down(a.fleet)
    n = sum(1 for m in chosen if m is not None and not m.equivalent)
    if not a.no_sim:
        print(f"simulator mutation score: {sim_kills}/{n} = {100 * sim_kills / max(n, 1):.0f} %")
    if a.real:
        print(f"real-run mutation score: {real_kills}/{n} = {100 * real_kills / max(n, 1):.0f} %")
    print(f"survivors: {', '.join(survivors) or 'none'}")
    for name in survivors:
        m = BY_NAME[name]
        where = ("" if m.path in SIMULATED or a.no_sim
                 else " (not simulated: outside the modules tester.mutation.SIMULATED names)")
        print(f"  {name}: {m.why}{where}")
    for m in (x for x in chosen if x is not None and x.equivalent):
        print(f"  {m.name} is equivalent: {m.equivalent}")
    print(f"total {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
