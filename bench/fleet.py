"""How fast a local fleet comes up, gets a database and goes away; what libfaketime costs.

    .venv/bin/python bench/fleet.py [--rounds 3] [--nodes 5] [--drivers namespace,docker]

Prints, per driver side by side, medians over the rounds of: fleet up, SSH connect, raftnode
deploy to a cluster with an agreed leader, etcd deploy to the same (namespace only), fleet
down; and the target check (up + connect + raftnode deploy + leader: namespace <= 2 s,
containers <= 15 s). The docker driver is included when its engine answers and the node image
exists (raftlab fleet image build). Then libfaketime's cost: nanoseconds per clock call without
it, with FAKETIME_NO_CACHE=1 and with FAKETIME_CACHE_DURATION=1, and raftnode put latency on the
fleet under each setting. Needs root (fleets flbench on 10.213.10.0/24 and flbenchc on
10.213.69.0/24).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tester import control, fleet, inventory  # noqa: E402
from tester.dbs.etcd import EtcdDB  # noqa: E402
from tester.dbs.raftnode import RaftnodeDB  # noqa: E402
from tester.fleet import container  # noqa: E402

NAME, SUBNET = "flbench", "10.213.10.0/24"
PLACES = {"namespace": (NAME, SUBNET), "docker": ("flbenchc", "10.213.69.0/24"),
          "podman": ("flbenchp", "10.213.69.0/24")}
TARGETS = {"namespace": 2.0, "docker": 15.0, "podman": 15.0}  # up+connect+deploy+leader, s
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def one_round(n: int, etcd_nodes: int, driver: str = "namespace") -> dict[str, float]:
    name, subnet = PLACES[driver]
    fleet.down(name)
    res: dict[str, float] = {}
    remotes: dict[str, control.Remote] = {}
    try:
        res["fleet up"], f = timed(lambda: fleet.up(name, nodes=n, subnet=subnet,
                                                    driver=driver))
        inv = inventory.load(f.inventory)
        res["ssh connect"], remotes = timed(lambda: control.connect(inv.nodes, inv.known_hosts))
        r1 = remotes[inv.nodes[0].name]
        res["ssh command (ms)"] = 1000 * statistics.median(
            timed(lambda: r1.run("true"))[0] for _ in range(50))
        db = RaftnodeDB()
        db.zipapp()  # built once per adapter; part of deploy below on the first round only

        def deploy(d, nodes):  # type: ignore[no-untyped-def]
            sub = {k: remotes[k] for k in (x.name for x in nodes)}
            control.on_all(sub, lambda r: d.setup(r, r.node, nodes, {}))
            d.wait_ready(sub, nodes, timeout=30)

        res["raftnode deploy+leader"], _ = timed(lambda: deploy(db, inv.nodes))
        control.on_all(remotes, lambda r: db.teardown(r, r.node))
        if etcd_nodes and driver == "namespace":  # etcd's binaries are the host's
            edb = EtcdDB()
            res["etcd deploy+leader"], _ = timed(lambda: deploy(edb, inv.nodes[:etcd_nodes]))
            control.on_all({k: remotes[k] for k in (x.name for x in inv.nodes[:etcd_nodes])},
                           lambda r: edb.teardown(r, r.node))
    finally:
        control.close_all(remotes)
        res["fleet down"], _ = timed(lambda: fleet.down(name))
    return res


def usable_drivers(wanted: list[str]) -> list[str]:
    """The drivers asked for whose engine answers and whose image exists (said when not)."""
    out = []
    for d in wanted:
        if d != "namespace":
            why = container.engine_running(d) if shutil.which(d) else "not installed"
            if why is None and not container.image_present(d, container.DEFAULT_IMAGE):
                why = "no node image (raftlab fleet image build)"
            if why:
                print(f"{d}: skipped ({why})")
                continue
        out.append(d)
    return out


CLOCK_LOOP = ("import time;n=200000;t=time.perf_counter()\n"
              "for _ in range(n): time.monotonic()\n"
              "print((time.perf_counter()-t)/n*1e9)")


def clock_call_ns(env: dict[str, str]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".faketime", delete=False) as f:
        f.write("+0\n")
    try:
        full = {**os.environ, **{k: v.replace("{file}", f.name) for k, v in env.items()}}
        samples = [float(subprocess.run([sys.executable, "-c", CLOCK_LOOP], env=full,
                                        capture_output=True, text=True, check=True).stdout)
                   for _ in range(3)]
        return statistics.median(samples)
    finally:
        os.unlink(f.name)


def put_latency(cache: int, n: int, puts: int) -> float:
    """Median latency (ms) of sequential puts on a raftnode cluster run with this cache."""
    fleet.down(NAME)
    remotes: dict[str, control.Remote] = {}
    try:
        f = fleet.up(NAME, nodes=n, subnet=SUBNET)
        inv = inventory.load(f.inventory)
        remotes = control.connect(inv.nodes, inv.known_hosts)
        db = RaftnodeDB(faketime_cache=cache)
        control.on_all(remotes, lambda r: db.setup(r, r.node, inv.nodes, {}))
        db.wait_ready(remotes, inv.nodes, timeout=30)
        lead = db.leader(inv.nodes)
        c = db.client({})
        c.open(inv.node(lead or inv.nodes[0].name))
        lat = []
        for i in range(puts):
            t = time.perf_counter()
            c.invoke("write", "k", i, 5)
            lat.append((time.perf_counter() - t) * 1000)
        c.close()
        return statistics.median(lat)
    finally:
        control.close_all(remotes)
        fleet.down(NAME)


def ansible_times(n: int) -> tuple[float, float] | None:
    """Seconds for a first ansible-playbook deploy and for an unchanged re-run."""
    playbook = Path(sys.executable).with_name("ansible-playbook")
    if not playbook.exists():
        return None
    site = Path(__file__).resolve().parent.parent / "ansible" / "site.yml"
    fleet.down(NAME)
    try:
        f = fleet.up(NAME, nodes=n, subnet=SUBNET)
        cmd = [str(playbook), "-i", str(f.inventory), str(site)]
        first, _ = timed(lambda: subprocess.run(cmd, capture_output=True, check=True))
        again, _ = timed(lambda: subprocess.run(cmd, capture_output=True, check=True))
        return first, again
    finally:
        fleet.down(NAME)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--etcd-nodes", type=int, default=3)
    ap.add_argument("--puts", type=int, default=300)
    ap.add_argument("--drivers", default="namespace,docker",
                    help="comma-separated fleet drivers to compare (default namespace,docker)")
    ap.add_argument("--skip-faketime", action="store_true")
    ap.add_argument("--ansible", action="store_true",
                    help="also time ansible-playbook ansible/site.yml (first run and re-run)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/fleet.py needs root (it creates a local fleet)", file=sys.stderr)
        return 254
    drivers = usable_drivers(args.drivers.split(","))
    # rounds interleave the drivers, so a noisy moment on the machine hits them alike
    rounds: dict[str, list[dict[str, float]]] = {d: [] for d in drivers}
    for _ in range(args.rounds):
        for d in drivers:
            rounds[d].append(one_round(args.nodes, args.etcd_nodes, d))
    print(f"local fleet, {args.nodes} nodes (etcd on {args.etcd_nodes}, namespace only), "
          f"{args.rounds} rounds, medians (min-max):")
    keys = list(dict.fromkeys(k for d in drivers for r in rounds[d] for k in r))
    print(f"  {'':<24}" + "".join(f"{d:>22}" for d in drivers))
    med: dict[str, dict[str, float]] = {}
    for k in keys:
        cells = []
        for d in drivers:
            vals = [r[k] for r in rounds[d] if k in r]
            if not vals:
                cells.append(f"{'-':>22}")
                continue
            med.setdefault(d, {})[k] = statistics.median(vals)
            unit = "ms" if "(ms)" in k else "s"
            cells.append(f"{med[d][k]:>8.2f} {unit:<2} ({min(vals):.2f}-{max(vals):.2f})")
        print(f"  {k:<24}" + "".join(f"{c:>22}" for c in cells))
    totals = {d: med[d]["fleet up"] + med[d]["ssh connect"] + med[d]["raftnode deploy+leader"]
              for d in drivers}
    for d in drivers:
        t = totals[d]
        print(f"  {d}: up + connect + raftnode deploy + leader {t:.2f} s (target <= "
              f"{TARGETS[d]:g} s: {'met' if t <= TARGETS[d] else 'MISSED'}, "
              f"{TARGETS[d] / t:.1f}x headroom)")
    if "namespace" in totals and len(totals) > 1:
        for d in drivers[1:]:
            print(f"  {d} / namespace: {totals[d] / totals['namespace']:.1f}x")
    if args.ansible:
        times = ansible_times(args.nodes)
        if times is None:
            print("ansible-playbook is not installed in the venv: skipping")
        else:
            print(f"ansible-playbook site.yml on {args.nodes} nodes: first deploy "
                  f"{times[0]:.1f} s, unchanged re-run {times[1]:.1f} s")
    if args.skip_faketime:
        return 0
    if not Path(FAKETIME_LIB).exists():
        print(f"libfaketime not found at {FAKETIME_LIB}: skipping its measurements")
        return 0
    pre = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": "{file}"}
    native = clock_call_ns({})
    nocache = clock_call_ns({**pre, "FAKETIME_NO_CACHE": "1"})
    cache1 = clock_call_ns({**pre, "FAKETIME_CACHE_DURATION": "1"})
    print("libfaketime, time.monotonic() cost (median of 3 x 200k calls):")
    print(f"  without libfaketime        {native:7.0f} ns/call")
    print(f"  FAKETIME_NO_CACHE=1        {nocache:7.0f} ns/call  ({nocache / native:.1f}x)")
    print(f"  FAKETIME_CACHE_DURATION=1  {cache1:7.0f} ns/call  ({cache1 / native:.1f}x)")
    lat0 = put_latency(0, args.nodes, args.puts)
    lat1 = put_latency(1, args.nodes, args.puts)
    print(f"raftnode put latency on the fleet, median of {args.puts} sequential puts:")
    print(f"  FAKETIME_NO_CACHE=1        {lat0:6.2f} ms")
    print(f"  FAKETIME_CACHE_DURATION=1  {lat1:6.2f} ms  (ratio no-cache/cache {lat0 / lat1:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
