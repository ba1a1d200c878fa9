"""A raftnode cluster of real processes on 127.0.0.1, for end-to-end tests and the benchmark.

Each node is a separate ``raftnode serve`` process (from the package, or from a zipapp under a
given interpreter) with its own data directory, log file and a free port, so it can be killed
with SIGKILL and restarted like on a real machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from raftnode.client import Client

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def free_ports(n: int) -> list[int]:
    """Ports the kernel hands out now (kept bound until all are chosen, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalCluster:
    """N raftnode processes on loopback. Use as a context manager: every process is stopped."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        n: int = 3,
        *,
        zipapp: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        unsafe: tuple[str, ...] = (),
        extra_args: tuple[str, ...] = (),
        secret: bytes = b"local-cluster-secret",
    ):
        self.base = Path(base_dir)
        self.base.mkdir(parents=True, exist_ok=True)
        self.python = python
        self.zipapp = str(zipapp) if zipapp else None
        self.unsafe = unsafe
        self.extra_args = extra_args
        self.secret_file = self.base / "secret"
        self.secret_file.write_bytes(secret)
        ports = free_ports(n)
        self.addrs: dict[str, str] = {f"n{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
        self.initial = dict(self.addrs)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.joining: set[str] = set()
        self.node_env: dict[str, dict[str, str]] = {}  # extra environment per node

    # ---- processes ----------------------------------------------------------------------

    def command(self, node: str) -> list[str]:
        # -I: a zipapp runs isolated (no PYTHONPATH, no user site), as on a bare node
        head = [self.python, "-I", self.zipapp] if self.zipapp else [self.python, "-m", "raftnode.cli"]
        peers = self.initial if node not in self.joining else {**self.initial, node: self.addrs[node]}
        d = self.base / node
        cmd = [
            *head, "serve", "--id", node, "--listen", self.addrs[node],
            "--peers", ",".join(f"{k}={v}" for k, v in peers.items()),
            "--data-dir", str(d / "data"), "--secret-file", str(self.secret_file),
            "--log-file", str(d / "node.log"), "--pid-file", str(d / "pid"),
            *self.extra_args,
        ]
        for u in self.unsafe:
            cmd += ["--unsafe", u]
        if node in self.joining:
            cmd.append("--join")
        return cmd

    def start(self, node: str | None = None) -> None:
        """Start one node (or all that are not running)."""
        for n in [node] if node else list(self.addrs):
            if n in self.procs and self.procs[n].poll() is None:
                continue
            d = self.base / n
            d.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **self.node_env.get(n, {})}
            if not self.zipapp:
                root = str(Path(__file__).resolve().parent.parent)
                env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
            with open(d / "stderr", "ab") as err:
                self.procs[n] = subprocess.Popen(
                    self.command(n), stdout=subprocess.DEVNULL, stderr=err, env=env
                )

    def fake_clocks(self, lib: str = FAKETIME_LIB) -> dict[str, Path]:
        """Run every node under libfaketime; returns each node's offset file (write "+5s")."""
        files = {}
        for n in self.addrs:
            f = self.base / n / "faketime"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("+0s\n")
            files[n] = f
            self.node_env[n] = {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": str(f),
                                "FAKETIME_NO_CACHE": "1"}
        return files

    def new_node(self) -> str:
        """Reserve an id and port for a server that will join with ``--join``; start it."""
        node = f"n{len(self.addrs) + 1}"
        self.addrs[node] = f"127.0.0.1:{free_ports(1)[0]}"
        self.joining.add(node)
        self.start(node)
        return node

    def kill(self, node: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs.get(node)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL what does not exit within 5 s."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- observing ----------------------------------------------------------------------

    def client(self, node: str, timeout: float = 5.0) -> Client:
        return Client(self.addrs[node], timeout=timeout)

    def status(self, node: str) -> dict[str, Any] | None:
        with self.client(node, timeout=1.0) as c:
            r = c.status()
        return r.get("value") if r.get("status") == "ok" else None

    def running(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def wait_leader(self, among: list[str] | None = None, timeout: float = 10.0) -> str:
        """Wait until the running nodes agree on one leader; return its id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = among or self.running()
            sts = [self.status(n) for n in nodes]
            leaders = {s["leader"] for s in sts if s}
            if len(leaders) == 1 and all(sts):
                leader = leaders.pop()
                if leader in nodes and next(s for s in sts if s["id"] == leader)["role"] == "leader":
                    return leader
            time.sleep(0.05)
        raise TimeoutError(f"no agreed leader among {among or self.running()} in {timeout}s")

    def events(self, node: str) -> list[dict[str, Any]]:
        path = self.base / node / "node.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line cut short by kill -9
                out.append(json.loads(line))
        return out
