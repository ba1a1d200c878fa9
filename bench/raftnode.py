"""Benchmark: a 3-node raftnode cluster vs a 3-member etcd, on loopback, same load generator.

    .venv/bin/python bench/raftnode.py [--clients 1,16,64,256] [--duration 5] [--ops write,read]

Both clusters fsync (raftnode's safe build; etcd's default). The load generator is one asyncio
process with N concurrent clients, each sending one request and waiting for its answer before
the next (closed loop); clients are spread round-robin over the three nodes, which forward to
their leader. Writes are puts of 16-byte values to 1,000 keys; reads are linearizable gets
(raftnode ReadIndex, etcd's default linearizable range). etcd is driven through its HTTP/JSON
gateway (``/v3/kv/put``, ``/v3/kv/range``) over keep-alive connections.

Each point is the median of ``--repeat`` runs that alternate between the two systems, so
load from elsewhere on the machine hits both alike. Prints throughput, p50/p99 latency and
the raftnode/etcd ratios. Exit 0 whatever the numbers (a benchmark, not a test); 254 on bad arguments, 1 if a cluster does not start.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raftnode.localcluster import LocalCluster, free_ports  # noqa: E402

KEYS = 1000
VALUE = "v" * 16


# ---- the two protocols, behind one interface: `await conn.do(op, key)` -> ok? -------------


class RaftnodeConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.r, self.w, self.n = reader, writer, 0

    @classmethod
    async def open(cls, addr: str) -> RaftnodeConn:
        host, port = addr.rsplit(":", 1)
        r, w = await asyncio.open_connection(host, int(port))
        return cls(r, w)

    async def do(self, op: str, key: str) -> bool:
        self.n += 1
        req = {"id": self.n, "op": "put" if op == "write" else "get", "key": key}
        if op == "write":
            req["value"] = VALUE
        self.w.write(json.dumps(req).encode() + b"\n")
        resp = json.loads(await self.r.readline())
        if resp.get("status") != "ok":
            raise ValueError(f"{resp.get('status')}/{resp.get('error')}")
        return True

    def close(self) -> None:
        self.w.close()


class EtcdConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.r, self.w, self.host = reader, writer, host

    @classmethod
    async def open(cls, addr: str) -> EtcdConn:
        host, port = addr.rsplit(":", 1)
        r, w = await asyncio.open_connection(host, int(port))
        return cls(r, w, addr)

    async def do(self, op: str, key: str) -> bool:
        k = base64.b64encode(key.encode()).decode()
        if op == "write":
            path, body = "/v3/kv/put", {"key": k, "value": base64.b64encode(VALUE.encode()).decode()}
        else:
            path, body = "/v3/kv/range", {"key": k}
        data = json.dumps(body).encode()
        self.w.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data
        )
        status = await self.r.readline()
        length, chunked = 0, False
        while (h := await self.r.readline()) not in (b"\r\n", b""):
            name, _, val = h.decode().partition(":")
            if name.lower() == "content-length":
                length = int(val)
            elif name.lower() == "transfer-encoding" and "chunked" in val:
                chunked = True
        if chunked:
            payload = b""
            while (size := int((await self.r.readline()).strip(), 16)) > 0:
                payload += await self.r.readexactly(size + 2)
            await self.r.readline()
        else:
            payload = await self.r.readexactly(length)
        if status.split()[1] != b"200" or b'"error"' in payload[:20]:
            raise ValueError(f"http {status.split()[1].decode()}")
        return True

    def close(self) -> None:
        self.w.close()


# ---- the load generator -----------------------------------------------------------------


async def load(conn_cls, addrs: list[str], op: str, clients: int, duration: float) -> dict:
    conns = [await conn_cls.open(addrs[i % len(addrs)]) for i in range(clients)]
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    errors: dict[str, int] = {}
    warmup_end = loop.time() + min(1.0, duration / 5)
    end = warmup_end + duration

    async def worker(c, seed: int) -> None:
        rng = random.Random(seed)
        while (now := loop.time()) < end:
            t0 = time.perf_counter()
            err = None
            try:
                await asyncio.wait_for(c.do(op, f"key{rng.randrange(KEYS)}"), 10)
            except asyncio.TimeoutError:
                err = "client-timeout"
            except (OSError, ValueError) as e:
                err = str(e) or type(e).__name__
            if now >= warmup_end:
                if err is None:
                    lat.append(time.perf_counter() - t0)
                else:
                    errors[err] = errors.get(err, 0) + 1

    await asyncio.gather(*(worker(c, i) for i, c in enumerate(conns)))
    for c in conns:
        c.close()
    lat.sort()
    n = len(lat)
    return {
        "ops_s": n / duration,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))] if lat else float("nan"),
        "errors": errors,
    }


async def prefill(conn_cls, addrs: list[str]) -> None:
    conns = [await conn_cls.open(addrs[i % len(addrs)]) for i in range(16)]

    async def fill(c, keys):
        for k in keys:
            await c.do("write", f"key{k}")

    await asyncio.gather(*(fill(c, range(i, KEYS, 16)) for i, c in enumerate(conns)))
    for c in conns:
        c.close()


# ---- clusters ---------------------------------------------------------------------------


def start_etcd(base: Path) -> tuple[list[subprocess.Popen], list[str]]:
    ports = free_ports(6)
    names = ["e1", "e2", "e3"]
    peer = {n: f"http://127.0.0.1:{ports[3 + i]}" for i, n in enumerate(names)}
    client = [f"127.0.0.1:{ports[i]}" for i in range(3)]
    initial = ",".join(f"{n}={u}" for n, u in peer.items())
    procs = []
    for i, n in enumerate(names):
        d = base / n
        d.mkdir(parents=True)
        procs.append(subprocess.Popen(
            ["etcd", "--name", n, "--data-dir", str(d / "data"),
             "--listen-client-urls", f"http://{client[i]}", "--advertise-client-urls", f"http://{client[i]}",
             "--listen-peer-urls", peer[n], "--initial-advertise-peer-urls", peer[n],
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", "raftlab-bench", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"),  # noqa: SIM115
        ))
    return procs, client


async def wait_serving(conn_cls, addrs: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = await conn_cls.open(addrs[0])
            await asyncio.wait_for(c.do("write", "probe"), 2)
            c.close()
            return
        except (OSError, asyncio.TimeoutError, ValueError, IndexError):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"cluster at {addrs} did not serve within {timeout}s")


async def measure(systems: dict[str, tuple[type, list[str]]], args) -> dict:
    """Every point runs ``--repeat`` rounds, alternating the systems within each round, so a
    busy moment on the (shared) machine hits both alike; the median round is reported."""
    for conn_cls, addrs in systems.values():
        await wait_serving(conn_cls, addrs)
        await prefill(conn_cls, addrs)
    out: dict[str, dict] = {name: {} for name in systems}
    for op in args.ops:
        for c in args.clients:
            rounds: dict[str, list[dict]] = {name: [] for name in systems}
            for _ in range(args.repeat):
                for name, (conn_cls, addrs) in systems.items():
                    rounds[name].append(await load(conn_cls, addrs, op, c, args.duration))
            for name, rs in rounds.items():
                r = {k: statistics.median(x[k] for x in rs) for k in ("ops_s", "p50_ms", "p99_ms")}
                r["errors"] = {}
                for x in rs:
                    for e, n in x["errors"].items():
                        r["errors"][e] = r["errors"].get(e, 0) + n
                out[name][(op, c)] = r
                print(f"  {name:8} {op:5} {c:4d} clients: {r['ops_s']:8.0f} ops/s  "
                      f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                      f"errors {r['errors'] or 0}", flush=True)
    return out


def _ints(v: str) -> list[int]:
    try:
        out = [int(x) for x in v.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {v!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers: {v!r}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=_ints, default=[1, 16, 64, 256])
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per point")
    p.add_argument("--ops", type=lambda v: v.split(","), default=["write", "read"])
    p.add_argument("--repeat", type=int, default=3, help="alternating runs per point (median)")
    p.add_argument("--skip-etcd", action="store_true")
    try:
        args = p.parse_args()
    except SystemExit as e:
        return 0 if e.code == 0 else 254
    if set(args.ops) - {"write", "read"}:
        print("bench/raftnode.py: --ops takes write,read", file=sys.stderr)
        return 254
    base = Path(tempfile.mkdtemp(prefix="raftlab-bench-"))
    etcd_procs: list[subprocess.Popen] = []
    try:
        with LocalCluster(base / "raftnode", 3) as cl:
            systems = {"raftnode": (RaftnodeConn, list(cl.addrs.values()))}
            if args.skip_etcd:
                pass
            elif shutil.which("etcd") is None:
                print("etcd not installed (Debian etcd-server): skipping the comparison")
            else:
                etcd_procs, etcd_addrs = start_etcd(base / "etcd")
                systems["etcd"] = (EtcdConn, etcd_addrs)
            print(f"3-node raftnode and 3-member etcd, fsync on; {args.duration:g} s per run, "
                  f"median of {args.repeat} alternating runs:", flush=True)
            try:
                results = asyncio.run(measure(systems, args))
            except RuntimeError as e:
                print(f"bench/raftnode.py: {e}", file=sys.stderr)
                return 1
    finally:
        for pr in etcd_procs:
            pr.terminate()
        for pr in etcd_procs:
            pr.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
    if "etcd" in results:
        print("\nraftnode / etcd ratios (throughput: higher is better; p99: lower is better):")
        for key, r in results["raftnode"].items():
            e = results["etcd"][key]
            print(f"  {key[0]:5} {key[1]:4d} clients: throughput x{r['ops_s'] / e['ops_s']:.2f}  "
                  f"p50 x{r['p50_ms'] / e['p50_ms']:.2f}  p99 x{r['p99_ms'] / e['p99_ms']:.2f}")
        w = results["raftnode"].get(("write", 64)), results["etcd"].get(("write", 64))
        if all(w):
            ok = w[0]["ops_s"] >= w[1]["ops_s"] and w[0]["p99_ms"] <= 2 * w[1]["p99_ms"]
            print(f"\ntarget (64-client writes >= etcd's, p99 <= 2x etcd's): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
