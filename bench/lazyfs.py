"""Benchmark: what lazyfs costs on raftnode's write path.

    .venv/bin/python bench/lazyfs.py [--writes 2000] [--repeat 3] [--batch 1]

raftnode's own storage (``raftnode.storage.Storage``, the code the zipapp runs) saves
``--writes`` Readies of ``--batch`` entries each -- one write and one fdatasync per Ready, as
a leader under load does -- into a plain directory and into a lazyfs mount over a directory on
the same disk, alternating ``--repeat`` times so load from elsewhere hits both alike. Prints
the median Readies/s, p50/p99 latency per Ready, the CPU time of the lazyfs daemon, and the
lazyfs/plain ratios. Needs root and FUSE (``/dev/fuse``, fusermount3); exit 0 whatever the
numbers, 254 on bad arguments, 1 when lazyfs cannot mount.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raftnode.fs import RealFS  # noqa: E402
from raftnode.storage import Storage  # noqa: E402
from raftnode.types import Entry, HardState  # noqa: E402
from tester.lazyfs.node import why_not  # noqa: E402


def one_run(path: str, writes: int, batch: int) -> list[float]:
    """Seconds per Ready."""
    st = Storage(path, fs=RealFS(), flusher=False)
    st.recover()
    lat, index = [], 0
    for _ in range(writes):
        ents = [Entry(1, index + i + 1, data={"op": "put", "key": "k", "value": "v" * 16})
                for i in range(batch)]
        index += batch
        t = time.perf_counter()
        st.save(HardState(1, "n1", index), ents)
        lat.append(time.perf_counter() - t)
    st.close()
    return lat


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    if a.writes < 1 or a.repeat < 1 or a.batch < 1:
        print("bench/lazyfs.py: --writes, --repeat and --batch must be at least 1", file=sys.stderr)
        return 254
    why = why_not()
    if why:
        print(f"bench/lazyfs.py: {why}", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="raftlab-lazyfs-bench-", dir="/var/tmp"))
    mnt, state = base / "mnt", base / "state"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tester.lazyfs.node", "mount", str(state),
                             str(mnt)], env=env)
    results: dict[str, list[tuple[float, float, float]]] = {"plain": [], "lazyfs": []}
    daemon_cpu: list[float] = []
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mnt):
            if proc.poll() is not None or time.monotonic() > deadline:
                print("bench/lazyfs.py: lazyfs did not mount", file=sys.stderr)
                return 1
            time.sleep(0.02)
        for r in range(a.repeat):
            for kind in ("plain", "lazyfs"):
                d = (mnt if kind == "lazyfs" else base) / f"run{r}"
                c0 = cpu_of(proc.pid)
                t0 = time.perf_counter()
                lat = one_run(str(d), a.writes, a.batch)
                wall = time.perf_counter() - t0
                if kind == "lazyfs":
                    daemon_cpu.append(cpu_of(proc.pid) - c0)
                lat.sort()
                results[kind].append((a.writes / wall, lat[len(lat) // 2],
                                      lat[int(len(lat) * 0.99)]))
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
        proc.wait(10)
        subprocess.run(["rm", "-rf", str(base)], check=False)
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in results.items()}
    print(f"{'':8} {'Readies/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for k, (rate, p50, p99) in med.items():
        print(f"{k:8} {rate:10.0f} {p50 * 1e3:8.3f} {p99 * 1e3:8.3f}")
    (pr, p50, p99), (lr, l50, l99) = med["plain"], med["lazyfs"]
    print(f"lazyfs/plain: rate x{lr / pr:.2f}, p50 x{l50 / p50:.2f}, p99 x{l99 / p99:.2f}; "
          f"lazyfs daemon CPU {statistics.median(daemon_cpu) / a.writes * 1e6:.0f} us per Ready "
          f"(median of {a.repeat}; batch {a.batch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
